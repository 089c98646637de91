//! `cloudtrail_trail`: a CloudTrail trail in the home region, usually multi-region (F07).

use super::{owner_of, Cx, Observation, Ownership, Quota, ResourceType, Scope};
use crate::aws::AwsError;
use crate::desired::names::{OwnerTag, OWNER_TAG_KEY};
use aws_sdk_cloudtrail::types::{EventSelector, ReadWriteType, Tag};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ManagementEvents {
    All,
    ReadOnly,
    WriteOnly,
    /// No management events are logged.
    None,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudtrailTrail {
    pub name: String,
    pub s3_bucket: String,
    #[serde(default)]
    pub multi_region: Option<bool>,
    #[serde(default)]
    pub include_global_service_events: Option<bool>,
    #[serde(default)]
    pub log_file_validation: Option<bool>,
    /// KMS key for the log files (SSE-KMS), usually an alias.
    #[serde(default)]
    pub kms_key: Option<String>,
    #[serde(default)]
    pub management_events: Option<ManagementEvents>,
    /// Whether the trail is logging.
    #[serde(default)]
    pub logging: Option<bool>,
    #[serde(skip)]
    pub arn: Option<String>,
}

fn owner_tag(tag: OwnerTag) -> Result<Tag, AwsError> {
    Tag::builder()
        .key(OWNER_TAG_KEY)
        .value(tag.as_str())
        .build()
        .map_err(|e| AwsError::new("construction", e.to_string()))
}

impl CloudtrailTrail {
    fn selectors(&self) -> Option<EventSelector> {
        let rw = match self.management_events? {
            ManagementEvents::All => ReadWriteType::All,
            ManagementEvents::ReadOnly => ReadWriteType::ReadOnly,
            ManagementEvents::WriteOnly => ReadWriteType::WriteOnly,
            ManagementEvents::None => return Some(EventSelector::builder().include_management_events(false).build()),
        };
        Some(EventSelector::builder().include_management_events(true).read_write_type(rw).build())
    }
}

impl ResourceType for CloudtrailTrail {
    const KIND: &'static str = "cloudtrail_trail";
    const DEFAULT_SCOPE: Scope = Scope::Home;
    const TAGGABLE: bool = true;
    const OWNERSHIP: Ownership = Ownership::Tag;

    fn name(&self) -> String {
        self.name.clone()
    }

    async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let ct = cx.session.cloudtrail(cx.region);
        // One call lists every trail visible in the region, multi-region trails of other
        // home regions included: they all count against the per-region limit.
        let all = cx.session.call(ct.describe_trails().include_shadow_trails(true).send()).await?;
        let trails = all.trail_list();
        let ours = trails.iter().find(|t| t.name() == Some(self.name.as_str()) && t.home_region() == Some(cx.region));
        let Some(t) = ours else {
            let quota = Quota {
                name: format!("CloudTrail trails in {}", cx.region),
                used: trails.len(),
                limit: cx.quotas.trails_per_region,
            };
            return Ok(Observation::Absent { quota: Some(quota) });
        };
        let arn = t.trail_arn().unwrap_or_default().to_string();
        let tags = cx.session.call(ct.list_tags().resource_id_list(&arn).send()).await?;
        let owner = owner_of(
            tags.resource_tag_list()
                .iter()
                .flat_map(|r| r.tags_list())
                .map(|t| (t.key(), t.value().unwrap_or_default())),
        );
        let kms_key = match (&self.kms_key, t.kms_key_id()) {
            (Some(w), Some(g)) if super::kms_key::same_key(cx, w, g).await? => Some(w.clone()),
            (_, g) => g.map(str::to_string),
        };
        let logging = match self.logging {
            Some(_) => {
                Some(cx.session.call(ct.get_trail_status().name(&arn).send()).await?.is_logging().unwrap_or(false))
            }
            None => None,
        };
        let management_events = match self.management_events {
            Some(_) => {
                let sel = cx.session.call(ct.get_event_selectors().trail_name(&arn).send()).await?;
                let mgmt = sel.event_selectors().iter().find(|s| s.include_management_events().unwrap_or(false));
                Some(match mgmt.and_then(|s| s.read_write_type()) {
                    Some(ReadWriteType::All) => ManagementEvents::All,
                    Some(ReadWriteType::ReadOnly) => ManagementEvents::ReadOnly,
                    Some(ReadWriteType::WriteOnly) => ManagementEvents::WriteOnly,
                    _ if mgmt.is_some() => ManagementEvents::All,
                    _ => ManagementEvents::None,
                })
            }
            None => None,
        };
        Ok(Observation::Present {
            state: CloudtrailTrail {
                name: self.name.clone(),
                s3_bucket: t.s3_bucket_name().unwrap_or_default().to_string(),
                multi_region: t.is_multi_region_trail(),
                include_global_service_events: t.include_global_service_events(),
                log_file_validation: t.log_file_validation_enabled(),
                kms_key,
                management_events,
                logging,
                arn: Some(arn),
            },
            owner,
        })
    }

    async fn create(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let ct = cx.session.cloudtrail(cx.region);
        let out = cx
            .session
            .call(
                ct.create_trail()
                    .name(&self.name)
                    .s3_bucket_name(&self.s3_bucket)
                    .set_is_multi_region_trail(self.multi_region)
                    .set_include_global_service_events(self.include_global_service_events)
                    .set_enable_log_file_validation(self.log_file_validation)
                    .set_kms_key_id(self.kms_key.clone())
                    .tags_list(owner_tag(tag)?)
                    .send(),
            )
            .await?;
        let arn = out.trail_arn().unwrap_or(&self.name).to_string();
        if let Some(sel) = self.selectors() {
            cx.session.call(ct.put_event_selectors().trail_name(&arn).event_selectors(sel).send()).await?;
        }
        if self.logging == Some(true) {
            cx.session.call(ct.start_logging().name(&arn).send()).await?;
        }
        Ok(())
    }

    async fn update(&self, cx: &Cx<'_>, observed: &Self) -> Result<(), AwsError> {
        let ct = cx.session.cloudtrail(cx.region);
        let name = observed.arn.clone().unwrap_or_else(|| self.name.clone());
        let differs = |a: &Option<bool>, b: &Option<bool>| a.is_some() && a != b;
        if self.s3_bucket != observed.s3_bucket
            || differs(&self.multi_region, &observed.multi_region)
            || differs(&self.include_global_service_events, &observed.include_global_service_events)
            || differs(&self.log_file_validation, &observed.log_file_validation)
            || (self.kms_key.is_some() && self.kms_key != observed.kms_key)
        {
            cx.session
                .call(
                    ct.update_trail()
                        .name(&self.name)
                        .s3_bucket_name(&self.s3_bucket)
                        .set_is_multi_region_trail(self.multi_region)
                        .set_include_global_service_events(self.include_global_service_events)
                        .set_enable_log_file_validation(self.log_file_validation)
                        .set_kms_key_id(self.kms_key.clone())
                        .send(),
                )
                .await?;
        }
        if self.management_events.is_some() && self.management_events != observed.management_events {
            if let Some(sel) = self.selectors() {
                cx.session.call(ct.put_event_selectors().trail_name(&name).event_selectors(sel).send()).await?;
            }
        }
        match (self.logging, observed.logging) {
            (Some(true), Some(false)) => {
                cx.session.call(ct.start_logging().name(&name).send()).await?;
            }
            (Some(false), Some(true)) => {
                cx.session.call(ct.stop_logging().name(&name).send()).await?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn delete(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
        let ct = cx.session.cloudtrail(cx.region);
        cx.session.call(ct.delete_trail().name(&self.name).send()).await?;
        Ok(())
    }

    async fn retag(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let ct = cx.session.cloudtrail(cx.region);
        let arn = format!("arn:aws:cloudtrail:{}:{}:trail/{}", cx.region, cx.account_id, self.name);
        cx.session.call(ct.add_tags().resource_id(arn).tags_list(owner_tag(tag)?).send()).await?;
        Ok(())
    }
}
