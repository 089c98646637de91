//! `ebs_default_encryption`: EBS encryption by default, per region (F11). A regional
//! account setting without tags.

use super::{untaggable, Cx, Observation, Ownership, ResourceType, Scope};
use crate::aws::AwsError;
use crate::desired::names::OwnerTag;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EbsDefaultEncryption {
    pub enabled: bool,
    /// The default key (`alias/aws/ebs` is AWS's own, set with ResetEbsDefaultKmsKeyId).
    /// The shipped F11 sets it at initial setup only (`initial_only_fields`): the
    /// specification lets customers switch to their own key afterwards.
    #[serde(default)]
    pub kms_key: Option<String>,
}

/// AWS's own EBS key, by its alias (alone or as an alias ARN).
fn is_aws_managed(key: &str) -> bool {
    key == AWS_MANAGED_KEY || key.ends_with(&format!(":{AWS_MANAGED_KEY}"))
}

/// The alias of the AWS managed key for EBS.
const AWS_MANAGED_KEY: &str = "alias/aws/ebs";

impl ResourceType for EbsDefaultEncryption {
    const KIND: &'static str = "ebs_default_encryption";
    const DEFAULT_SCOPE: Scope = Scope::All;
    const TAGGABLE: bool = false;
    const OWNERSHIP: Ownership = Ownership::Setting;

    fn name(&self) -> String {
        "account".into()
    }

    /// Off, with AWS's own key: nobody chose it.
    fn is_aws_default(&self) -> bool {
        !self.enabled && self.kms_key.as_deref().is_none_or(is_aws_managed)
    }

    async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let ec2 = cx.session.ec2(cx.region);
        let enabled = cx.session.call(ec2.get_ebs_encryption_by_default().send()).await?;
        let kms_key = match &self.kms_key {
            Some(want) => {
                let out = cx.session.call(ec2.get_ebs_default_kms_key_id().send()).await?;
                let got = out.kms_key_id().unwrap_or_default().to_string();
                if super::kms_key::same_key(cx, want, &got).await? {
                    Some(want.clone())
                } else {
                    Some(got)
                }
            }
            None => None,
        };
        Ok(Observation::Present {
            state: EbsDefaultEncryption { enabled: enabled.ebs_encryption_by_default().unwrap_or(false), kms_key },
            owner: None,
        })
    }

    async fn create(&self, cx: &Cx<'_>, _tag: OwnerTag) -> Result<(), AwsError> {
        self.update(cx, &Self::default()).await
    }

    async fn update(&self, cx: &Cx<'_>, observed: &Self) -> Result<(), AwsError> {
        let ec2 = cx.session.ec2(cx.region);
        if self.enabled != observed.enabled {
            if self.enabled {
                cx.session.call(ec2.enable_ebs_encryption_by_default().send()).await?;
            } else {
                cx.session.call(ec2.disable_ebs_encryption_by_default().send()).await?;
            }
        }
        if let Some(k) = &self.kms_key {
            if Some(k) != observed.kms_key.as_ref() {
                if is_aws_managed(k) {
                    // AWS's own key is set back with the reset call, the documented way.
                    cx.session.call(ec2.reset_ebs_default_kms_key_id().send()).await?;
                } else {
                    cx.session.call(ec2.modify_ebs_default_kms_key_id().kms_key_id(k).send()).await?;
                }
            }
        }
        Ok(())
    }

    async fn delete(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
        let ec2 = cx.session.ec2(cx.region);
        cx.session.call(ec2.disable_ebs_encryption_by_default().send()).await?;
        Ok(())
    }

    async fn retag(&self, _cx: &Cx<'_>, _tag: OwnerTag) -> Result<(), AwsError> {
        Err(untaggable(Self::KIND))
    }
}
