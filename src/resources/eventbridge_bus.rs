//! `eventbridge_bus`: a custom EventBridge event bus (F15), found by name in its region.

use super::{owner_of, Cx, Observation, Ownership, ResourceType, Scope};
use crate::aws::{code_of, AwsError};
use crate::desired::names::{OwnerTag, OWNER_TAG_KEY};
use aws_sdk_eventbridge::types::Tag;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventbridgeBus {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

pub(crate) fn owner_tag(tag: OwnerTag) -> Result<Tag, AwsError> {
    Tag::builder()
        .key(OWNER_TAG_KEY)
        .value(tag.as_str())
        .build()
        .map_err(|e| AwsError::new("construction", e.to_string()))
}

/// The `cm:Members` value on an EventBridge resource (bus or rule).
pub(crate) async fn owner(cx: &Cx<'_>, arn: &str) -> Result<Option<String>, AwsError> {
    let eb = cx.session.eventbridge(cx.region);
    let tags = cx.session.call(eb.list_tags_for_resource().resource_arn(arn).send()).await?;
    Ok(owner_of(tags.tags().iter().map(|t| (t.key(), t.value()))))
}

impl ResourceType for EventbridgeBus {
    const KIND: &'static str = "eventbridge_bus";
    const DEFAULT_SCOPE: Scope = Scope::Home;
    const TAGGABLE: bool = true;
    const OWNERSHIP: Ownership = Ownership::Tag;

    fn name(&self) -> String {
        self.name.clone()
    }

    async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let eb = cx.session.eventbridge(cx.region);
        let bus = match cx.session.call(eb.describe_event_bus().name(&self.name).send()).await {
            Ok(out) => out,
            Err(e) if code_of(&e) == Some("ResourceNotFoundException") => {
                return Ok(Observation::Absent { quota: None })
            }
            Err(e) => return Err(e.into()),
        };
        let owner = owner(cx, bus.arn().unwrap_or_default()).await?;
        Ok(Observation::Present {
            state: EventbridgeBus {
                name: self.name.clone(),
                description: Some(bus.description().unwrap_or_default().to_string()),
            },
            owner,
        })
    }

    async fn create(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let eb = cx.session.eventbridge(cx.region);
        cx.session
            .call(
                eb.create_event_bus()
                    .name(&self.name)
                    .set_description(self.description.clone())
                    .tags(owner_tag(tag)?)
                    .send(),
            )
            .await?;
        Ok(())
    }

    async fn update(&self, cx: &Cx<'_>, observed: &Self) -> Result<(), AwsError> {
        if self.description.is_some() && self.description != observed.description {
            let eb = cx.session.eventbridge(cx.region);
            cx.session
                .call(eb.update_event_bus().name(&self.name).set_description(self.description.clone()).send())
                .await?;
        }
        Ok(())
    }

    async fn delete(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
        let eb = cx.session.eventbridge(cx.region);
        cx.session.call(eb.delete_event_bus().name(&self.name).send()).await?;
        Ok(())
    }

    async fn retag(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let eb = cx.session.eventbridge(cx.region);
        let bus = cx.session.call(eb.describe_event_bus().name(&self.name).send()).await?;
        let arn = bus.arn().unwrap_or_default().to_string();
        cx.session.call(eb.tag_resource().resource_arn(arn).tags(owner_tag(tag)?).send()).await?;
        Ok(())
    }
}
