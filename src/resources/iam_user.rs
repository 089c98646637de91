//! `iam_user`: an IAM user and the groups it belongs to (F02).

use super::{owner_of, Cx, Observation, Ownership, ResourceType, Scope};
use crate::aws::{code_of, AwsError};
use crate::desired::names::{OwnerTag, OWNER_TAG_KEY};
use aws_sdk_iam::types::Tag;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamUser {
    pub name: String,
    /// Groups the user is kept in (other memberships are left alone).
    #[serde(default)]
    pub groups: BTreeSet<String>,
}

fn owner_tag(tag: OwnerTag) -> Result<Tag, AwsError> {
    Tag::builder()
        .key(OWNER_TAG_KEY)
        .value(tag.as_str())
        .build()
        .map_err(|e| AwsError::new("construction", e.to_string()))
}

impl ResourceType for IamUser {
    const KIND: &'static str = "iam_user";
    const DEFAULT_SCOPE: Scope = Scope::Global;
    const TAGGABLE: bool = true;
    const OWNERSHIP: Ownership = Ownership::Tag;

    fn name(&self) -> String {
        self.name.clone()
    }

    async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let iam = cx.session.iam();
        let user = match cx.session.call(iam.get_user().user_name(&self.name).send()).await {
            Ok(out) => out.user,
            Err(e) if code_of(&e) == Some("NoSuchEntity") => return Ok(Observation::Absent { quota: None }),
            Err(e) => return Err(e.into()),
        };
        let Some(user) = user else {
            return Ok(Observation::Absent { quota: None });
        };
        let owner = owner_of(user.tags().iter().map(|t| (t.key(), t.value())));
        let mut groups = BTreeSet::new();
        let mut marker = None;
        loop {
            let out =
                cx.session.call(iam.list_groups_for_user().user_name(&self.name).set_marker(marker).send()).await?;
            // Only the groups desired state names are compared; others are the customer's.
            groups.extend(out.groups().iter().map(|g| g.group_name().to_string()).filter(|g| self.groups.contains(g)));
            if !out.is_truncated() {
                break;
            }
            marker = out.marker;
        }
        Ok(Observation::Present { state: IamUser { name: self.name.clone(), groups }, owner })
    }

    async fn create(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let iam = cx.session.iam();
        cx.session.call(iam.create_user().user_name(&self.name).tags(owner_tag(tag)?).send()).await?;
        self.update(cx, &IamUser { name: self.name.clone(), groups: BTreeSet::new() }).await
    }

    async fn update(&self, cx: &Cx<'_>, observed: &Self) -> Result<(), AwsError> {
        let iam = cx.session.iam();
        for g in self.groups.difference(&observed.groups) {
            cx.session.call(iam.add_user_to_group().user_name(&self.name).group_name(g).send()).await?;
        }
        Ok(())
    }

    async fn delete(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
        let iam = cx.session.iam();
        for g in &self.groups {
            let r = cx.session.call(iam.remove_user_from_group().user_name(&self.name).group_name(g).send()).await;
            if let Err(e) = r {
                if code_of(&e) != Some("NoSuchEntity") {
                    return Err(e.into());
                }
            }
        }
        cx.session.call(iam.delete_user().user_name(&self.name).send()).await?;
        Ok(())
    }

    async fn retag(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let iam = cx.session.iam();
        cx.session.call(iam.tag_user().user_name(&self.name).tags(owner_tag(tag)?).send()).await?;
        Ok(())
    }
}
