//! `securityhub_standard`: a Security Hub standard enabled in one region, and the status of
//! the controls desired state names (F13). A standard subscription cannot carry tags: it
//! belongs to the region's hub, and is changed while its feature is active. Controls that
//! desired state does not name are neither read nor changed.

use super::securityhub_hub::not_subscribed;
use super::{untaggable, Cx, Observation, Ownership, ResourceType, Scope};
use crate::aws::{code_of, AwsError};
use crate::desired::names::OwnerTag;
use aws_sdk_securityhub::types::{
    AssociationStatus, StandardsControlAssociationId, StandardsControlAssociationUpdate, StandardsStatus,
    StandardsSubscriptionRequest,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Security Hub reads and writes at most 100 control associations per call.
const BATCH: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ControlStatus {
    Enabled,
    Disabled,
}

/// The status of one control in the standard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    pub status: ControlStatus,
    /// Why the status was set (AWS requires one to disable a control).
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityhubStandard {
    /// The standard's ARN (`arn:aws:securityhub:<region>::standards/...`).
    pub standards_arn: String,
    /// Controls by security control id (`IAM.6`): only these are compared and changed.
    #[serde(default)]
    pub controls: Option<BTreeMap<String, Control>>,
    #[serde(skip)]
    pub subscription_arn: Option<String>,
}

fn live(status: Option<&StandardsStatus>) -> bool {
    matches!(status, Some(StandardsStatus::Ready | StandardsStatus::Pending | StandardsStatus::Incomplete))
}

impl SecurityhubStandard {
    /// The subscription to this standard: `Ok(None)` when it is not enabled (or the hub is not).
    async fn subscription(&self, cx: &Cx<'_>) -> Result<Option<(String, Option<StandardsStatus>)>, AwsError> {
        let sh = cx.session.securityhub(cx.region);
        let mut token = None;
        loop {
            let out = match cx.session.call(sh.get_enabled_standards().set_next_token(token).send()).await {
                Ok(out) => out,
                Err(e) if not_subscribed(code_of(&e)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let found = out
                .standards_subscriptions()
                .iter()
                .find(|s| s.standards_arn() == Some(self.standards_arn.as_str()) && live(s.standards_status()));
            if let Some(s) = found {
                let arn = s.standards_subscription_arn().unwrap_or_default().to_string();
                return Ok(Some((arn, s.standards_status().cloned())));
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(None),
            }
        }
    }

    /// Waits (up to about two minutes, polling every 3 seconds) for a standard just enabled
    /// to accept control updates; still `PENDING` after that is an error (AWS refuses
    /// control updates meanwhile).
    async fn wait_ready(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
        for attempt in 0..40 {
            match self.subscription(cx).await? {
                Some((_, Some(StandardsStatus::Pending))) => {
                    if attempt == 0 {
                        tracing::info!(account = cx.account_id, region = cx.region, standard = %self.standards_arn,
                            "the standard is PENDING: waiting for it to be READY");
                    }
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
                _ => return Ok(()),
            }
        }
        Err(AwsError::new(
            "Pending",
            format!(
                "the standard {} is still PENDING after 2 minutes: its controls are not updatable yet",
                self.standards_arn
            ),
        ))
    }

    async fn put_controls(&self, cx: &Cx<'_>, observed: Option<&BTreeMap<String, Control>>) -> Result<(), AwsError> {
        let Some(want) = &self.controls else {
            return Ok(());
        };
        let updates: Vec<StandardsControlAssociationUpdate> = want
            .iter()
            .filter(|(id, c)| {
                let seen = observed.and_then(|o| o.get(*id));
                match seen {
                    None => true,
                    Some(s) => s.status != c.status || (c.reason.is_some() && c.reason != s.reason),
                }
            })
            .map(|(id, c)| {
                StandardsControlAssociationUpdate::builder()
                    .standards_arn(&self.standards_arn)
                    .security_control_id(id)
                    .association_status(match c.status {
                        ControlStatus::Enabled => AssociationStatus::Enabled,
                        ControlStatus::Disabled => AssociationStatus::Disabled,
                    })
                    .set_updated_reason(c.reason.clone())
                    .build()
            })
            .collect();
        let sh = cx.session.securityhub(cx.region);
        for chunk in updates.chunks(BATCH) {
            let out = cx
                .session
                .call_paced(
                    cx.region,
                    "securityhub:BatchUpdateStandardsControlAssociations",
                    sh.batch_update_standards_control_associations()
                        .set_standards_control_association_updates(Some(chunk.to_vec()))
                        .send(),
                )
                .await?;
            if let Some(u) = out.unprocessed_association_updates().first() {
                let id = u.standards_control_association_update().and_then(|x| x.security_control_id()).unwrap_or("?");
                return Err(AwsError::new(
                    u.error_code().map(|c| c.as_str().to_string()).unwrap_or_else(|| "Unprocessed".into()),
                    format!("control {id} was not updated: {}", u.error_reason().unwrap_or("no reason given")),
                ));
            }
        }
        Ok(())
    }
}

impl ResourceType for SecurityhubStandard {
    const KIND: &'static str = "securityhub_standard";
    const DEFAULT_SCOPE: Scope = Scope::All;
    const TAGGABLE: bool = false;
    const OWNERSHIP: Ownership = Ownership::Parent("securityhub_hub");

    fn name(&self) -> String {
        match self.standards_arn.split_once(":standards/").or_else(|| self.standards_arn.split_once(":ruleset/")) {
            Some((_, path)) => path.to_string(),
            None => self.standards_arn.clone(),
        }
    }

    async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let Some((subscription_arn, status)) = self.subscription(cx).await? else {
            return Ok(Observation::Absent { quota: None });
        };
        // While PENDING, AWS reports none of the standard's controls: read them once READY.
        if self.controls.is_some() && status == Some(StandardsStatus::Pending) {
            self.wait_ready(cx).await?;
        }
        let mut seen = SecurityhubStandard {
            standards_arn: self.standards_arn.clone(),
            controls: None,
            subscription_arn: Some(subscription_arn),
        };
        if let Some(want) = &self.controls {
            let sh = cx.session.securityhub(cx.region);
            let ids: Vec<StandardsControlAssociationId> = want
                .keys()
                .map(|id| {
                    StandardsControlAssociationId::builder()
                        .standards_arn(&self.standards_arn)
                        .security_control_id(id)
                        .build()
                })
                .collect();
            let mut controls = BTreeMap::new();
            for chunk in ids.chunks(BATCH) {
                let out = cx
                    .session
                    .call(
                        sh.batch_get_standards_control_associations()
                            .set_standards_control_association_ids(Some(chunk.to_vec()))
                            .send(),
                    )
                    .await?;
                for d in out.standards_control_association_details() {
                    let status = match d.association_status() {
                        Some(AssociationStatus::Disabled) => ControlStatus::Disabled,
                        _ => ControlStatus::Enabled,
                    };
                    if let Some(id) = d.security_control_id() {
                        controls.insert(
                            id.to_string(),
                            Control {
                                status,
                                reason: d.updated_reason().filter(|r| !r.is_empty()).map(str::to_string),
                            },
                        );
                    }
                }
                // Controls AWS does not know in this standard stay out of the map: the diff
                // shows them missing, and the update reports AWS's reason.
            }
            seen.controls = Some(controls);
        }
        Ok(Observation::Present { state: seen, owner: None })
    }

    async fn create(&self, cx: &Cx<'_>, _tag: OwnerTag) -> Result<(), AwsError> {
        let sh = cx.session.securityhub(cx.region);
        let out = cx
            .session
            .call_paced(
                cx.region,
                "securityhub:BatchEnableStandards",
                sh.batch_enable_standards()
                    .standards_subscription_requests(
                        StandardsSubscriptionRequest::builder().standards_arn(&self.standards_arn).build(),
                    )
                    .send(),
            )
            .await?;
        if out.standards_subscriptions().iter().any(|s| s.standards_status() == Some(&StandardsStatus::Pending)) {
            self.wait_ready(cx).await?;
        }
        self.put_controls(cx, None).await
    }

    async fn update(&self, cx: &Cx<'_>, observed: &Self) -> Result<(), AwsError> {
        self.wait_ready(cx).await?;
        self.put_controls(cx, observed.controls.as_ref()).await
    }

    async fn delete(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
        let Some((subscription_arn, _)) = self.subscription(cx).await? else {
            return Ok(());
        };
        let sh = cx.session.securityhub(cx.region);
        cx.session.call(sh.batch_disable_standards().standards_subscription_arns(subscription_arn).send()).await?;
        Ok(())
    }

    async fn retag(&self, _cx: &Cx<'_>, _tag: OwnerTag) -> Result<(), AwsError> {
        Err(untaggable(Self::KIND))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_the_standards_path() {
        let s = SecurityhubStandard {
            standards_arn:
                "arn:aws:securityhub:ap-northeast-1::standards/aws-foundational-security-best-practices/v/1.0.0".into(),
            controls: None,
            subscription_arn: None,
        };
        assert_eq!(s.name(), "aws-foundational-security-best-practices/v/1.0.0");
        let cis = SecurityhubStandard {
            standards_arn: "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0".into(),
            ..s
        };
        assert_eq!(cis.name(), "cis-aws-foundations-benchmark/v/1.2.0");
    }
}
