//! `kms_key`: a symmetric KMS key found by its alias, with key policy and rotation (F09).
//!
//! A key is created with its `cm:Members` tag in the same call, then given its alias. When
//! the alias call did not happen (the run was cut short, AWS refused it), the next run finds
//! the key by its tag and description among the keys that have no alias, and gives it the
//! alias, instead of making another key each week.

use super::{owner_of, Cx, Observation, Ownership, ResourceType, Scope};
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
    Ok(aliases(cx).await?.into_iter().find(|(n, _)| n == alias).and_then(|(_, t)| t))
}

/// Every alias of the region with its key, listed once per observation.
async fn aliases(cx: &Cx<'_>) -> Result<Vec<(String, Option<String>)>, AwsError> {
    cx.session
        .memo(&format!("kms:ListAliases:{}", cx.region), || async {
            let kms = cx.session.kms(cx.region);
            let mut all: Vec<(String, Option<String>)> = vec![];
            let mut marker = None;
            loop {
                let out = cx.session.call(kms.list_aliases().set_marker(marker).send()).await?;
                all.extend(
                    out.aliases()
                        .iter()
                        .filter_map(|a| a.alias_name().map(|n| (n.to_string(), a.target_key_id().map(str::to_string)))),
                );
                if !out.truncated() {
                    return Ok(all);
                }
                marker = out.next_marker;
            }
        })
        .await
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

impl KmsKey {
    /// A key of ours left without its alias: customer-managed, enabled, tagged
    /// `cm:Members`, with this key's description, and no alias at all. Read only when the
    /// alias is missing.
    async fn unaliased(&self, cx: &Cx<'_>) -> Result<Option<(String, String)>, AwsError> {
        let aliased: std::collections::BTreeSet<String> =
            aliases(cx).await?.into_iter().filter_map(|(_, t)| t).collect();
        let kms = cx.session.kms(cx.region);
        let mut marker = None;
        loop {
            let out = cx.session.call(kms.list_keys().set_marker(marker).send()).await?;
            for id in out.keys().iter().filter_map(|k| k.key_id()).filter(|id| !aliased.contains(*id)) {
                let meta = cx.session.call(kms.describe_key().key_id(id).send()).await?;
                let Some(m) = meta.key_metadata() else { continue };
                let ours_shape = m.key_manager() == Some(&aws_sdk_kms::types::KeyManagerType::Customer)
                    && m.key_state() == Some(&KeyState::Enabled)
                    && self.description.as_deref().is_none_or(|d| m.description() == Some(d));
                if !ours_shape {
                    continue;
                }
                let tags = cx.session.call(kms.list_resource_tags().key_id(id).send()).await?;
                if let Some(owner) = owner_of(tags.tags().iter().map(|t| (t.tag_key(), t.tag_value()))) {
                    return Ok(Some((id.to_string(), owner)));
                }
            }
            if !out.truncated() {
                return Ok(None);
            }
            marker = out.next_marker;
        }
    }
}

impl ResourceType for KmsKey {
    const KIND: &'static str = "kms_key";
    const DEFAULT_SCOPE: Scope = Scope::Home;
    const TAGGABLE: bool = true;
    const OWNERSHIP: Ownership = Ownership::Tag;

    fn name(&self) -> String {
        self.alias.clone()
    }

    async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let (key_id, alias) = match alias_target(cx, &self.alias).await? {
            Some(id) => (id, self.alias.clone()),
            None => match self.unaliased(cx).await? {
                // Ours, half made: observed without an alias, which the update adds.
                Some((id, _)) => (id, String::new()),
                None => return Ok(Observation::Absent { quota: None }),
            },
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
                alias,
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
        if observed.alias != self.alias {
            // A key of ours whose alias was never made.
            cx.session.call(kms.create_alias().alias_name(&self.alias).target_key_id(&key_id).send()).await?;
        }
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
