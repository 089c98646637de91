//! `sfn_state_machine`: a Step Functions state machine (F15), found by name in its region.
//! Created as a STANDARD state machine.

use super::{owner_of, Cx, Observation, Ownership, ResourceType, Scope};
use crate::aws::{code_of, AwsError};
use crate::desired::names::{OwnerTag, OWNER_TAG_KEY};
use crate::desired::policy::PolicyDoc;
use aws_sdk_sfn::types::Tag;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SfnStateMachine {
    pub name: String,
    /// Role the state machine runs as. Always compared.
    pub role_arn: String,
    /// The Amazon States Language definition (a JSON document: path or inline mapping).
    /// Always compared, as JSON structure.
    pub definition: PolicyDoc,
    #[serde(skip)]
    pub arn: Option<String>,
}

fn owner_tag(tag: OwnerTag) -> Tag {
    Tag::builder().key(OWNER_TAG_KEY).value(tag.as_str()).build()
}

/// A role made moments ago that Step Functions cannot assume yet (IAM is eventually consistent).
fn role_not_ready(e: &AwsError) -> bool {
    e.code == "AccessDeniedException" && e.message.contains("assume")
}

impl SfnStateMachine {
    /// The ARN of the state machine of this name in the region, if any.
    async fn find(&self, cx: &Cx<'_>) -> Result<Option<String>, AwsError> {
        let sfn = cx.session.sfn(cx.region);
        let mut token = None;
        loop {
            let out = cx.session.call(sfn.list_state_machines().set_next_token(token).send()).await?;
            if let Some(m) = out.state_machines().iter().find(|m| m.name() == self.name) {
                return Ok(Some(m.state_machine_arn().to_string()));
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(None),
            }
        }
    }
}

impl ResourceType for SfnStateMachine {
    const KIND: &'static str = "sfn_state_machine";
    const DEFAULT_SCOPE: Scope = Scope::Home;
    const TAGGABLE: bool = true;
    const OWNERSHIP: Ownership = Ownership::Tag;

    fn name(&self) -> String {
        self.name.clone()
    }

    async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let Some(arn) = self.find(cx).await? else {
            return Ok(Observation::Absent { quota: None });
        };
        let sfn = cx.session.sfn(cx.region);
        let m = match cx.session.call(sfn.describe_state_machine().state_machine_arn(&arn).send()).await {
            Ok(m) => m,
            Err(e) if code_of(&e) == Some("StateMachineDoesNotExist") => {
                return Ok(Observation::Absent { quota: None })
            }
            Err(e) => return Err(e.into()),
        };
        let definition = PolicyDoc::from_aws(m.definition())
            .map_err(|e| AwsError::new("response", format!("definition of state machine {}: {e}", self.name)))?;
        let tags = cx.session.call(sfn.list_tags_for_resource().resource_arn(&arn).send()).await?;
        let owner = owner_of(tags.tags().iter().filter_map(|t| Some((t.key()?, t.value().unwrap_or_default()))));
        Ok(Observation::Present {
            state: SfnStateMachine {
                name: self.name.clone(),
                role_arn: m.role_arn().to_string(),
                definition,
                arn: Some(arn),
            },
            owner,
        })
    }

    async fn create(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let sfn = cx.session.sfn(cx.region);
        // The role of the same feature was created moments ago.
        super::while_role_settles(role_not_ready, || async {
            cx.session
                .call(
                    sfn.create_state_machine()
                        .name(&self.name)
                        .role_arn(&self.role_arn)
                        .definition(self.definition.to_json_string())
                        .tags(owner_tag(tag))
                        .send(),
                )
                .await?;
            Ok(())
        })
        .await
    }

    async fn update(&self, cx: &Cx<'_>, observed: &Self) -> Result<(), AwsError> {
        let Some(arn) = observed.arn.clone() else {
            return Err(AwsError::new("internal", "state machine observed without its ARN"));
        };
        let sfn = cx.session.sfn(cx.region);
        let definition = (self.definition != observed.definition).then(|| self.definition.to_json_string());
        let role = (self.role_arn != observed.role_arn).then(|| self.role_arn.clone());
        // A new role may have been created moments ago, in the same apply.
        super::while_role_settles(role_not_ready, || async {
            cx.session
                .call(
                    sfn.update_state_machine()
                        .state_machine_arn(arn.clone())
                        .set_definition(definition.clone())
                        .set_role_arn(role.clone())
                        .send(),
                )
                .await?;
            Ok(())
        })
        .await
    }

    async fn delete(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
        let Some(arn) = self.find(cx).await? else {
            return Ok(());
        };
        let sfn = cx.session.sfn(cx.region);
        cx.session.call(sfn.delete_state_machine().state_machine_arn(arn).send()).await?;
        Ok(())
    }

    async fn retag(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let Some(arn) = self.find(cx).await? else {
            return Err(AwsError::new("StateMachineDoesNotExist", format!("no state machine {}", self.name)));
        };
        let sfn = cx.session.sfn(cx.region);
        cx.session.call(sfn.tag_resource().resource_arn(arn).tags(owner_tag(tag)).send()).await?;
        Ok(())
    }
}
