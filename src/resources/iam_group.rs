//! `iam_group`: an IAM group and its managed policies (F02). IAM groups cannot carry tags.

use super::{untaggable, Cx, Observation, Ownership, ResourceType, Scope};
use crate::aws::{code_of, AwsError};
use crate::desired::names::OwnerTag;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamGroup {
    pub name: String,
    /// ARNs of managed policies kept attached (others are left alone).
    #[serde(default)]
    pub managed_policies: BTreeSet<String>,
}

impl ResourceType for IamGroup {
    const KIND: &'static str = "iam_group";
    const DEFAULT_SCOPE: Scope = Scope::Global;
    const TAGGABLE: bool = false;
    const OWNERSHIP: Ownership = Ownership::Recorded;

    fn name(&self) -> String {
        self.name.clone()
    }

    async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let iam = cx.session.iam();
        let mut managed_policies = BTreeSet::new();
        let mut marker = None;
        loop {
            let r = cx
                .session
                .call(iam.list_attached_group_policies().group_name(&self.name).set_marker(marker).send())
                .await;
            let out = match r {
                Ok(o) => o,
                Err(e) if code_of(&e) == Some("NoSuchEntity") => return Ok(Observation::Absent { quota: None }),
                Err(e) => return Err(e.into()),
            };
            managed_policies.extend(
                out.attached_policies()
                    .iter()
                    .filter_map(|p| p.policy_arn())
                    .filter(|a| self.managed_policies.contains(*a))
                    .map(str::to_string),
            );
            if !out.is_truncated() {
                break;
            }
            marker = out.marker;
        }
        Ok(Observation::Present { state: IamGroup { name: self.name.clone(), managed_policies }, owner: None })
    }

    async fn create(&self, cx: &Cx<'_>, _tag: OwnerTag) -> Result<(), AwsError> {
        let iam = cx.session.iam();
        cx.session.call(iam.create_group().group_name(&self.name).send()).await?;
        self.update(cx, &IamGroup { name: self.name.clone(), managed_policies: BTreeSet::new() }).await
    }

    async fn update(&self, cx: &Cx<'_>, observed: &Self) -> Result<(), AwsError> {
        let iam = cx.session.iam();
        for arn in self.managed_policies.difference(&observed.managed_policies) {
            cx.session.call(iam.attach_group_policy().group_name(&self.name).policy_arn(arn).send()).await?;
        }
        Ok(())
    }

    async fn delete(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
        let iam = cx.session.iam();
        for arn in &self.managed_policies {
            let _ = cx.session.call(iam.detach_group_policy().group_name(&self.name).policy_arn(arn).send()).await;
        }
        cx.session.call(iam.delete_group().group_name(&self.name).send()).await?;
        Ok(())
    }

    async fn retag(&self, _cx: &Cx<'_>, _tag: OwnerTag) -> Result<(), AwsError> {
        Err(untaggable(Self::KIND))
    }
}
