//! `securityhub_hub`: Security Hub enabled in one region (F13), with its account-wide
//! settings. The hub carries tags (on its ARN), so a hub the customer enabled is theirs.
//!
//! Never disassociates the account from a Security Hub administrator (the specification's
//! 2024-07-11 change): nothing here calls DisassociateFromAdministratorAccount, and the hub is
//! not disabled while the account is linked to an administrator.

use super::{owner_of, Cx, Observation, Ownership, ResourceType, Scope};
use crate::aws::{code_of, AwsError};
use crate::desired::names::{OwnerTag, OWNER_TAG_KEY};
use aws_sdk_securityhub::types::ControlFindingGenerator;
use serde::{Deserialize, Serialize};

/// Security Hub's answer to any call in a region where it is not enabled.
pub(crate) fn not_subscribed(code: Option<&str>) -> bool {
    code == Some("InvalidAccessException")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FindingGenerator {
    /// Consolidated control findings: one finding per control across standards.
    SecurityControl,
    /// One finding per control per standard.
    StandardControl,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityhubHub {
    /// `SECURITY_CONTROL` turns consolidated control findings on.
    #[serde(default)]
    pub control_finding_generator: Option<FindingGenerator>,
    /// New controls of enabled standards are enabled automatically.
    #[serde(default)]
    pub auto_enable_controls: Option<bool>,
    #[serde(skip)]
    pub arn: Option<String>,
}

fn generator(g: FindingGenerator) -> ControlFindingGenerator {
    match g {
        FindingGenerator::SecurityControl => ControlFindingGenerator::SecurityControl,
        FindingGenerator::StandardControl => ControlFindingGenerator::StandardControl,
    }
}

impl SecurityhubHub {
    async fn hub_arn(&self, cx: &Cx<'_>) -> Result<Option<String>, AwsError> {
        let sh = cx.session.securityhub(cx.region);
        match cx.session.call(sh.describe_hub().send()).await {
            Ok(out) => Ok(out.hub_arn().map(str::to_string)),
            Err(e) if not_subscribed(code_of(&e)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

impl ResourceType for SecurityhubHub {
    const KIND: &'static str = "securityhub_hub";
    const DEFAULT_SCOPE: Scope = Scope::All;
    const TAGGABLE: bool = true;
    const OWNERSHIP: Ownership = Ownership::Tag;

    fn name(&self) -> String {
        "hub".into()
    }

    async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let sh = cx.session.securityhub(cx.region);
        let hub = match cx.session.call(sh.describe_hub().send()).await {
            Ok(out) => out,
            Err(e) if not_subscribed(code_of(&e)) => return Ok(Observation::Absent { quota: None }),
            Err(e) => return Err(e.into()),
        };
        let arn = hub.hub_arn().unwrap_or_default().to_string();
        let tags = cx.session.call(sh.list_tags_for_resource().resource_arn(&arn).send()).await?;
        let owner = owner_of(tags.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())));
        let control_finding_generator = match hub.control_finding_generator() {
            Some(ControlFindingGenerator::StandardControl) => Some(FindingGenerator::StandardControl),
            Some(ControlFindingGenerator::SecurityControl) => Some(FindingGenerator::SecurityControl),
            _ => None,
        };
        Ok(Observation::Present {
            state: SecurityhubHub {
                control_finding_generator,
                auto_enable_controls: hub.auto_enable_controls(),
                arn: Some(arn),
            },
            owner,
        })
    }

    async fn create(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let sh = cx.session.securityhub(cx.region);
        // The baseline's standards are `securityhub_standard` entries: AWS's default standards
        // are not enabled with the hub.
        cx.session
            .call_paced(
                cx.region,
                "securityhub:EnableSecurityHub",
                sh.enable_security_hub()
                    .enable_default_standards(false)
                    .set_control_finding_generator(self.control_finding_generator.map(generator))
                    .tags(OWNER_TAG_KEY, tag.as_str())
                    .send(),
            )
            .await?;
        // AWS enables a new hub with AutoEnableControls on.
        if self.auto_enable_controls == Some(false) {
            cx.session.call(sh.update_security_hub_configuration().auto_enable_controls(false).send()).await?;
        }
        Ok(())
    }

    async fn update(&self, cx: &Cx<'_>, observed: &Self) -> Result<(), AwsError> {
        let sh = cx.session.securityhub(cx.region);
        let generator_differs = self.control_finding_generator.is_some()
            && self.control_finding_generator != observed.control_finding_generator;
        let auto_differs =
            self.auto_enable_controls.is_some() && self.auto_enable_controls != observed.auto_enable_controls;
        if generator_differs || auto_differs {
            cx.session
                .call(
                    sh.update_security_hub_configuration()
                        .set_control_finding_generator(
                            self.control_finding_generator.filter(|_| generator_differs).map(generator),
                        )
                        .set_auto_enable_controls(self.auto_enable_controls.filter(|_| auto_differs))
                        .send(),
                )
                .await?;
        }
        Ok(())
    }

    async fn delete(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
        let sh = cx.session.securityhub(cx.region);
        // Disabling Security Hub must never break the link to an administrator account.
        match cx.session.call(sh.get_administrator_account().send()).await {
            Ok(out) => {
                if let Some(admin) = out.administrator().and_then(|a| a.account_id()) {
                    return Err(AwsError::new(
                        "Conflict",
                        format!("the account is linked to the Security Hub administrator {admin}: Security Hub is not disabled"),
                    ));
                }
            }
            Err(e) if not_subscribed(code_of(&e)) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        cx.session.call(sh.disable_security_hub().send()).await?;
        Ok(())
    }

    async fn retag(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let Some(arn) = self.hub_arn(cx).await? else {
            return Err(AwsError::new("InvalidAccessException", "Security Hub is not enabled"));
        };
        let sh = cx.session.securityhub(cx.region);
        cx.session.call(sh.tag_resource().resource_arn(arn).tags(OWNER_TAG_KEY, tag.as_str()).send()).await?;
        Ok(())
    }
}
