//! `detective_graph`: the Detective behavior graph of a region (F14). One graph per account
//! and region, found with ListGraphs; it has no settings of its own, only its tags.

use super::{owner_of, Cx, Observation, Ownership, ResourceType, Scope};
use crate::aws::AwsError;
use crate::desired::names::{OwnerTag, OWNER_TAG_KEY};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectiveGraph {
    /// The graph found, once observed.
    #[serde(skip)]
    pub arn: Option<String>,
}

/// The ARN of the region's behavior graph, if Detective is enabled there.
async fn graph_arn(cx: &Cx<'_>) -> Result<Option<String>, AwsError> {
    let dt = cx.session.detective(cx.region);
    let mut token = None;
    loop {
        let out = cx.session.call(dt.list_graphs().set_next_token(token).send()).await?;
        if let Some(arn) = out.graph_list().iter().find_map(|g| g.arn()) {
            return Ok(Some(arn.to_string()));
        }
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(None),
        }
    }
}

async fn arn_of(cx: &Cx<'_>, known: &Option<String>) -> Result<String, AwsError> {
    match known {
        Some(a) => Ok(a.clone()),
        None => graph_arn(cx)
            .await?
            .ok_or_else(|| AwsError::new("ResourceNotFoundException", format!("no behavior graph in {}", cx.region))),
    }
}

impl ResourceType for DetectiveGraph {
    const KIND: &'static str = "detective_graph";
    const DEFAULT_SCOPE: Scope = Scope::All;
    const TAGGABLE: bool = true;
    const OWNERSHIP: Ownership = Ownership::Tag;

    fn name(&self) -> String {
        "account".into()
    }

    async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let Some(arn) = graph_arn(cx).await? else {
            return Ok(Observation::Absent { quota: None });
        };
        let dt = cx.session.detective(cx.region);
        let tags = cx.session.call(dt.list_tags_for_resource().resource_arn(&arn).send()).await?;
        let owner = owner_of(tags.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())));
        Ok(Observation::Present { state: DetectiveGraph { arn: Some(arn) }, owner })
    }

    async fn create(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let dt = cx.session.detective(cx.region);
        cx.session.call(dt.create_graph().tags(OWNER_TAG_KEY, tag.as_str()).send()).await?;
        Ok(())
    }

    async fn update(&self, _cx: &Cx<'_>, _observed: &Self) -> Result<(), AwsError> {
        // A behavior graph has no settings that desired state describes.
        Ok(())
    }

    async fn delete(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
        let arn = match &self.arn {
            Some(a) => a.clone(),
            None => match graph_arn(cx).await? {
                Some(a) => a,
                None => return Ok(()),
            },
        };
        let dt = cx.session.detective(cx.region);
        cx.session.call(dt.delete_graph().graph_arn(arn).send()).await?;
        Ok(())
    }

    async fn retag(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let arn = arn_of(cx, &self.arn).await?;
        let dt = cx.session.detective(cx.region);
        cx.session.call(dt.tag_resource().resource_arn(arn).tags(OWNER_TAG_KEY, tag.as_str()).send()).await?;
        Ok(())
    }
}
