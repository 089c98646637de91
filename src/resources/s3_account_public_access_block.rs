//! `s3_account_public_access_block`: the account-level S3 public access block (F04).
//! An account setting without tags.

use super::{untaggable, Cx, Observation, Ownership, ResourceType, Scope};
use crate::aws::{code_of, AwsError};
use crate::desired::names::OwnerTag;
use aws_sdk_s3control::types::PublicAccessBlockConfiguration;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3AccountPublicAccessBlock {
    #[serde(default)]
    pub block_public_acls: Option<bool>,
    #[serde(default)]
    pub ignore_public_acls: Option<bool>,
    #[serde(default)]
    pub block_public_policy: Option<bool>,
    #[serde(default)]
    pub restrict_public_buckets: Option<bool>,
}

impl ResourceType for S3AccountPublicAccessBlock {
    const KIND: &'static str = "s3_account_public_access_block";
    const DEFAULT_SCOPE: Scope = Scope::Global;
    const TAGGABLE: bool = false;
    const OWNERSHIP: Ownership = Ownership::Setting;

    fn name(&self) -> String {
        "account".into()
    }

    /// Nothing blocked is what an account has before anyone sets the block.
    fn is_aws_default(&self) -> bool {
        [self.block_public_acls, self.ignore_public_acls, self.block_public_policy, self.restrict_public_buckets]
            .iter()
            .all(|b| *b != Some(true))
    }

    async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let c = cx.session.s3control(cx.region);
        let out = match cx.session.call(c.get_public_access_block().account_id(cx.account_id).send()).await {
            Ok(out) => out,
            Err(e) if code_of(&e) == Some("NoSuchPublicAccessBlockConfiguration") => {
                return Ok(Observation::Absent { quota: None })
            }
            Err(e) => return Err(e.into()),
        };
        let Some(p) = out.public_access_block_configuration else {
            return Ok(Observation::Absent { quota: None });
        };
        Ok(Observation::Present {
            state: S3AccountPublicAccessBlock {
                block_public_acls: Some(p.block_public_acls().unwrap_or(false)),
                ignore_public_acls: Some(p.ignore_public_acls().unwrap_or(false)),
                block_public_policy: Some(p.block_public_policy().unwrap_or(false)),
                restrict_public_buckets: Some(p.restrict_public_buckets().unwrap_or(false)),
            },
            owner: None,
        })
    }

    async fn create(&self, cx: &Cx<'_>, _tag: OwnerTag) -> Result<(), AwsError> {
        self.update(cx, &Self::default()).await
    }

    async fn update(&self, cx: &Cx<'_>, observed: &Self) -> Result<(), AwsError> {
        let c = cx.session.s3control(cx.region);
        let conf = PublicAccessBlockConfiguration::builder()
            .set_block_public_acls(self.block_public_acls.or(observed.block_public_acls))
            .set_ignore_public_acls(self.ignore_public_acls.or(observed.ignore_public_acls))
            .set_block_public_policy(self.block_public_policy.or(observed.block_public_policy))
            .set_restrict_public_buckets(self.restrict_public_buckets.or(observed.restrict_public_buckets))
            .build();
        cx.session
            .call(c.put_public_access_block().account_id(cx.account_id).public_access_block_configuration(conf).send())
            .await?;
        Ok(())
    }

    async fn delete(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
        let c = cx.session.s3control(cx.region);
        cx.session.call(c.delete_public_access_block().account_id(cx.account_id).send()).await?;
        Ok(())
    }

    async fn retag(&self, _cx: &Cx<'_>, _tag: OwnerTag) -> Result<(), AwsError> {
        Err(untaggable(Self::KIND))
    }
}
