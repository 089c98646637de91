//! `eventbridge_rule`: an EventBridge rule with an event pattern and its targets (F15),
//! found by name on its event bus. Only the targets desired state names (by target id) are
//! compared and written; other targets on the rule are the customer's and are left alone.

use super::eventbridge_bus::{owner, owner_tag};
use super::{Cx, Observation, Ownership, ResourceType, Scope};
use crate::aws::{code_of, AwsError};
use crate::desired::names::OwnerTag;
use crate::desired::policy::PolicyDoc;
use aws_sdk_eventbridge::types::{RuleState, Target as SdkTarget};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

fn default_bus() -> String {
    "default".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Enabled,
    Disabled,
}

/// Where matching events go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// ARN of the target (state machine, event bus, ...). Always compared.
    pub arn: String,
    /// Role EventBridge assumes to reach the target.
    #[serde(default)]
    pub role_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventbridgeRule {
    pub name: String,
    /// Name of the event bus the rule is on; `default` when left out.
    #[serde(default = "default_bus")]
    pub event_bus: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The event pattern (a JSON document: path or inline mapping). Always compared.
    pub event_pattern: PolicyDoc,
    #[serde(default)]
    pub state: Option<State>,
    /// Targets by target id. Only these ids are compared and written.
    #[serde(default)]
    pub targets: Option<BTreeMap<String, Target>>,
}

fn sdk_state(s: State) -> RuleState {
    match s {
        State::Enabled => RuleState::Enabled,
        State::Disabled => RuleState::Disabled,
    }
}

impl EventbridgeRule {
    async fn put_targets(&self, cx: &Cx<'_>, observed: Option<&BTreeMap<String, Target>>) -> Result<(), AwsError> {
        let Some(want) = &self.targets else {
            return Ok(());
        };
        let mut targets = vec![];
        for (id, t) in want {
            let seen = observed.and_then(|o| o.get(id));
            let differs = match seen {
                None => true,
                Some(s) => s.arn != t.arn || (t.role_arn.is_some() && t.role_arn != s.role_arn),
            };
            if differs {
                // PutTargets replaces the target of that id: keep its role when desired has no opinion.
                let role = t.role_arn.clone().or_else(|| seen.and_then(|s| s.role_arn.clone()));
                let target = SdkTarget::builder()
                    .id(id)
                    .arn(&t.arn)
                    .set_role_arn(role)
                    .build()
                    .map_err(|e| AwsError::new("construction", e.to_string()))?;
                targets.push(target);
            }
        }
        let eb = cx.session.eventbridge(cx.region);
        // PutTargets takes at most 10 targets per call.
        for chunk in targets.chunks(10) {
            let out = cx
                .session
                .call(
                    eb.put_targets()
                        .rule(&self.name)
                        .event_bus_name(&self.event_bus)
                        .set_targets(Some(chunk.to_vec()))
                        .send(),
                )
                .await?;
            if let Some(f) = out.failed_entries().first() {
                return Err(AwsError::new(
                    f.error_code().unwrap_or("FailedEntry").to_string(),
                    format!(
                        "target {} of rule {} not written: {}",
                        f.target_id().unwrap_or("?"),
                        self.name,
                        f.error_message().unwrap_or("no reason given")
                    ),
                ));
            }
        }
        Ok(())
    }

    async fn put_rule(&self, cx: &Cx<'_>, observed: Option<&Self>, tag: Option<OwnerTag>) -> Result<(), AwsError> {
        let eb = cx.session.eventbridge(cx.region);
        // PutRule replaces the rule's settings: keep those desired state has no opinion on.
        let description = self.description.clone().or_else(|| observed.and_then(|o| o.description.clone()));
        let state = self.state.or_else(|| observed.and_then(|o| o.state));
        let mut req = eb
            .put_rule()
            .name(&self.name)
            .event_bus_name(&self.event_bus)
            .event_pattern(self.event_pattern.to_json_string())
            .set_description(description)
            .set_state(state.map(sdk_state));
        if let Some(tag) = tag {
            req = req.tags(owner_tag(tag)?);
        }
        cx.session.call(req.send()).await?;
        Ok(())
    }
}

impl ResourceType for EventbridgeRule {
    const KIND: &'static str = "eventbridge_rule";
    const DEFAULT_SCOPE: Scope = Scope::Home;
    const TAGGABLE: bool = true;
    const OWNERSHIP: Ownership = Ownership::Tag;

    fn name(&self) -> String {
        self.name.clone()
    }

    async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let eb = cx.session.eventbridge(cx.region);
        let rule =
            match cx.session.call(eb.describe_rule().name(&self.name).event_bus_name(&self.event_bus).send()).await {
                Ok(out) => out,
                // The bus itself missing is answered the same way: nothing to observe yet.
                Err(e) if code_of(&e) == Some("ResourceNotFoundException") => {
                    return Ok(Observation::Absent { quota: None })
                }
                Err(e) => return Err(e.into()),
            };
        let owner = owner(cx, rule.arn().unwrap_or_default()).await?;
        let event_pattern = PolicyDoc::from_aws(rule.event_pattern().unwrap_or("{}"))
            .map_err(|e| AwsError::new("response", format!("event pattern of rule {}: {e}", self.name)))?;
        let state = match rule.state() {
            Some(RuleState::Enabled) => Some(State::Enabled),
            Some(RuleState::Disabled) => Some(State::Disabled),
            _ => None,
        };
        let targets = match &self.targets {
            Some(_) => {
                let mut all = BTreeMap::new();
                let mut token = None;
                loop {
                    let out = cx
                        .session
                        .call(
                            eb.list_targets_by_rule()
                                .rule(&self.name)
                                .event_bus_name(&self.event_bus)
                                .set_next_token(token)
                                .send(),
                        )
                        .await?;
                    for t in out.targets() {
                        all.insert(
                            t.id().to_string(),
                            Target { arn: t.arn().to_string(), role_arn: t.role_arn().map(str::to_string) },
                        );
                    }
                    match out.next_token() {
                        Some(t) if !t.is_empty() => token = Some(t.to_string()),
                        _ => break,
                    }
                }
                Some(all)
            }
            None => None,
        };
        Ok(Observation::Present {
            state: EventbridgeRule {
                name: self.name.clone(),
                event_bus: self.event_bus.clone(),
                description: Some(rule.description().unwrap_or_default().to_string()),
                event_pattern,
                state,
                targets,
            },
            owner,
        })
    }

    async fn create(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        self.put_rule(cx, None, Some(tag)).await?;
        self.put_targets(cx, None).await
    }

    async fn update(&self, cx: &Cx<'_>, observed: &Self) -> Result<(), AwsError> {
        let rule_differs = self.event_pattern != observed.event_pattern
            || (self.description.is_some() && self.description != observed.description)
            || (self.state.is_some() && self.state != observed.state);
        if rule_differs {
            self.put_rule(cx, Some(observed), None).await?;
        }
        self.put_targets(cx, observed.targets.as_ref()).await
    }

    async fn delete(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
        let eb = cx.session.eventbridge(cx.region);
        // Only our targets are removed; a rule that still has the customer's targets is not
        // deletable, and AWS says so.
        if let Some(ids) = self.targets.as_ref().map(|t| t.keys().cloned().collect::<Vec<_>>()) {
            if !ids.is_empty() {
                cx.session
                    .call(
                        eb.remove_targets().rule(&self.name).event_bus_name(&self.event_bus).set_ids(Some(ids)).send(),
                    )
                    .await?;
            }
        }
        cx.session.call(eb.delete_rule().name(&self.name).event_bus_name(&self.event_bus).send()).await?;
        Ok(())
    }

    async fn retag(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let eb = cx.session.eventbridge(cx.region);
        let rule = cx.session.call(eb.describe_rule().name(&self.name).event_bus_name(&self.event_bus).send()).await?;
        let arn = rule.arn().unwrap_or_default().to_string();
        cx.session.call(eb.tag_resource().resource_arn(arn).tags(owner_tag(tag)?).send()).await?;
        Ok(())
    }
}
