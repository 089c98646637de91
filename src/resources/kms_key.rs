//! `kms_key`: a symmetric KMS key found by its alias, with key policy and rotation (F09).

use super::{owner_of, Cx, Observation, ResourceType, Scope};
use crate::aws::{code_of, AwsError};
use crate::desired::names::{OwnerTag, OWNER_TAG_KEY};
use crate::desired::policy::PolicyDoc;
use aws_sdk_kms::types::{KeySpec, KeyState, KeyUsageType, Tag};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmsKey {
    /// `alias/...`: how the key is found.
    pub alias: String,
    #[serde(default)]
    pub description: Option<String>,
    pub key_policy: PolicyDoc,
    #[serde(default)]
    pub enable_key_rotation: Option<bool>,
    /// The key behind the alias, once observed.
    #[serde(skip)]
    pub key_id: Option<String>,
}

/// The key id an alias points to in this account and region, if the alias exists. The
/// aliases of a region are listed once per observation.
pub async fn alias_target(cx: &Cx<'_>, alias: &str) -> Result<Option<String>, AwsError> {
    let aliases =
        cx.session
            .memo(&format!("kms:ListAliases:{}", cx.region), || async {
                let kms = cx.session.kms(cx.region);
                let mut all: Vec<(String, Option<String>)> = vec![];
                let mut marker = None;
                loop {
                    let out = cx.session.call(kms.list_aliases().set_marker(marker).send()).await?;
                    all.extend(out.aliases().iter().filter_map(|a| {
                        a.alias_name().map(|n| (n.to_string(), a.target_key_id().map(str::to_string)))
                    }));
                    if !out.truncated() {
                        return Ok(all);
                    }
                    marker = out.next_marker;
                }
            })
            .await?;
    Ok(aliases.into_iter().find(|(n, _)| n == alias).and_then(|(_, t)| t))
}

/// Whether the key reference `observed` (an id, key ARN, alias or alias ARN, as a service
/// returned it) names the same key as `desired` (usually an alias).
pub async fn same_key(cx: &Cx<'_>, desired: &str, observed: &str) -> Result<bool, AwsError> {
    if desired == observed || observed.ends_with(&format!(":{desired}")) {
        return Ok(true);
    }
    if !desired.starts_with("alias/") {
        return Ok(observed.ends_with(desired));
    }
    Ok(match alias_target(cx, desired).await? {
        Some(id) => observed == id || observed.ends_with(&format!("key/{id}")),
        None => false,
    })
}

fn owner_tag(tag: OwnerTag) -> Result<Tag, AwsError> {
    Tag::builder()
        .tag_key(OWNER_TAG_KEY)
        .tag_value(tag.as_str())
        .build()
        .map_err(|e| AwsError::new("construction", e.to_string()))
}

impl ResourceType for KmsKey {
    const KIND: &'static str = "kms_key";
    const DEFAULT_SCOPE: Scope = Scope::Home;
    const TAGGABLE: bool = true;

    fn name(&self) -> String {
        self.alias.clone()
    }

    async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let Some(key_id) = alias_target(cx, &self.alias).await? else {
            return Ok(Observation::Absent { quota: None });
        };
        let kms = cx.session.kms(cx.region);
        let meta = cx.session.call(kms.describe_key().key_id(&key_id).send()).await?;
        let state = meta.key_metadata().and_then(|m| m.key_state().cloned());
        if matches!(state, Some(KeyState::PendingDeletion) | Some(KeyState::PendingReplicaDeletion)) {
            // An alias left on a key that is being deleted: the key is gone for our purposes.
            return Ok(Observation::Absent { quota: None });
        }
        let description = meta.key_metadata().and_then(|m| m.description()).unwrap_or_default().to_string();
        let policy = cx.session.call(kms.get_key_policy().key_id(&key_id).policy_name("default").send()).await?;
        let key_policy =
            PolicyDoc::from_aws(policy.policy().unwrap_or("{}")).map_err(|e| AwsError::new("response", e))?;
        let enable_key_rotation = match self.enable_key_rotation {
            Some(_) => Some(
                cx.session.call(kms.get_key_rotation_status().key_id(&key_id).send()).await?.key_rotation_enabled(),
            ),
            None => None,
        };
        let tags = cx.session.call(kms.list_resource_tags().key_id(&key_id).send()).await?;
        let owner = owner_of(tags.tags().iter().map(|t| (t.tag_key(), t.tag_value())));
        Ok(Observation::Present {
            state: KmsKey {
                alias: self.alias.clone(),
                description: Some(description),
                key_policy,
                enable_key_rotation,
                key_id: Some(key_id),
            },
            owner,
        })
    }

    async fn create(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let kms = cx.session.kms(cx.region);
        let out = cx
            .session
            .call(
                kms.create_key()
                    .key_spec(KeySpec::SymmetricDefault)
                    .key_usage(KeyUsageType::EncryptDecrypt)
                    .set_description(self.description.clone())
                    .policy(self.key_policy.to_json_string())
                    .tags(owner_tag(tag)?)
                    .send(),
            )
            .await?;
        let key_id = out
            .key_metadata()
            .map(|m| m.key_id().to_string())
            .ok_or_else(|| AwsError::new("response", "CreateKey returned no key id"))?;
        // The alias may still point at a key scheduled for deletion: move it.
        let moved = cx.session.call(kms.update_alias().alias_name(&self.alias).target_key_id(&key_id).send()).await;
        if let Err(e) = moved {
            if code_of(&e) != Some("NotFoundException") {
                return Err(e.into());
            }
            cx.session.call(kms.create_alias().alias_name(&self.alias).target_key_id(&key_id).send()).await?;
        }
        if self.enable_key_rotation == Some(true) {
            cx.session.call(kms.enable_key_rotation().key_id(&key_id).send()).await?;
        }
        Ok(())
    }

    async fn update(&self, cx: &Cx<'_>, observed: &Self) -> Result<(), AwsError> {
        let kms = cx.session.kms(cx.region);
        let key_id = observed.key_id.clone().ok_or_else(|| AwsError::new("internal", "observed key has no id"))?;
        if self.key_policy != observed.key_policy {
            cx.session
                .call(
                    kms.put_key_policy()
                        .key_id(&key_id)
                        .policy_name("default")
                        .policy(self.key_policy.to_json_string())
                        .send(),
                )
                .await?;
        }
        if let Some(d) = &self.description {
            if Some(d) != observed.description.as_ref() {
                cx.session.call(kms.update_key_description().key_id(&key_id).description(d).send()).await?;
            }
        }
        match (self.enable_key_rotation, observed.enable_key_rotation) {
            (Some(true), Some(false)) => {
                cx.session.call(kms.enable_key_rotation().key_id(&key_id).send()).await?;
            }
            (Some(false), Some(true)) => {
                cx.session.call(kms.disable_key_rotation().key_id(&key_id).send()).await?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn delete(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
        let Some(key_id) = alias_target(cx, &self.alias).await? else {
            return Ok(());
        };
        let kms = cx.session.kms(cx.region);
        cx.session.call(kms.delete_alias().alias_name(&self.alias).send()).await?;
        cx.session.call(kms.schedule_key_deletion().key_id(&key_id).pending_window_in_days(30).send()).await?;
        Ok(())
    }

    async fn retag(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let Some(key_id) = alias_target(cx, &self.alias).await? else {
            return Err(AwsError::new("NotFoundException", format!("{} does not exist", self.alias)));
        };
        let kms = cx.session.kms(cx.region);
        cx.session.call(kms.tag_resource().key_id(&key_id).tags(owner_tag(tag)?).send()).await?;
        Ok(())
    }
}
