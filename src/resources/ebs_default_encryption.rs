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
    /// The default key (`alias/aws/ebs` is AWS's own). Left out, the customer's choice of
    /// key is kept: the specification lets customers switch to their own key.
    #[serde(default)]
    pub kms_key: Option<String>,
}

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
        !self.enabled && self.kms_key.as_deref().is_none_or(|k| k.ends_with("alias/aws/ebs"))
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
                cx.session.call(ec2.modify_ebs_default_kms_key_id().kms_key_id(k).send()).await?;
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
