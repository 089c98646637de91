//! Carries out a plan, change by change, in the plan's order (dependencies first). It
//! decides nothing: what to change was decided by the planner. The first failure stops
//! the account; the changes after it are reported as not attempted.

use crate::aws::AccountSession;
use crate::desired::resolve::AccountBaseline;
use crate::desired::Quotas;
use crate::observe::call_region;
use crate::plan::{AccountPlan, Action};
use crate::resources::Cx;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOutcome {
    Done,
    Failed,
    NotAttempted,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppliedChange {
    pub feature: String,
    pub region: String,
    pub resource_type: String,
    pub resource: String,
    pub action: Action,
    pub outcome: ChangeOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Applies `plan`; returns what happened to each change.
pub async fn apply(
    session: &AccountSession,
    baseline: &AccountBaseline,
    plan: &AccountPlan,
    quotas: &Quotas,
) -> Vec<AppliedChange> {
    let mut out = Vec::with_capacity(plan.changes.len());
    let mut failed = false;
    for c in &plan.changes {
        let mut record = AppliedChange {
            feature: c.feature.to_string(),
            region: c.region.clone(),
            resource_type: c.resource_type.clone(),
            resource: c.resource.clone(),
            action: c.action,
            outcome: ChangeOutcome::NotAttempted,
            error: None,
        };
        if !failed {
            let cx = Cx {
                session,
                account_id: baseline.account_id.as_str(),
                region: call_region(baseline, &c.region),
                quotas,
            };
            let result = match (c.action, &c.observed) {
                (Action::Create, _) => c.desired.create(&cx, c.tag).await,
                (Action::Update, Some(seen)) => c.desired.update(&cx, seen).await,
                // What is deleted is what was observed (its ids are known only from there).
                (Action::Delete, seen) => seen.as_ref().unwrap_or(&c.desired).delete(&cx).await,
                (Action::Tag, _) => c.desired.retag(&cx, c.tag).await,
                (Action::Update, None) => {
                    Err(crate::aws::AwsError::new("internal", "update without an observed state"))
                }
            };
            // A change may make any memoised list stale (a new alias, a new bucket).
            session.forget();
            match result {
                Ok(()) => {
                    tracing::info!(account = %baseline.account_id, feature = %c.feature, region = %c.region,
                        resource_type = %c.resource_type, resource = %c.resource, action = ?c.action, "applied");
                    record.outcome = ChangeOutcome::Done;
                }
                Err(e) => {
                    tracing::warn!(account = %baseline.account_id, feature = %c.feature, region = %c.region,
                        resource_type = %c.resource_type, resource = %c.resource, action = ?c.action, error = %e,
                        "change failed");
                    record.outcome = ChangeOutcome::Failed;
                    record.error = Some(e.to_string());
                    failed = true;
                }
            }
        }
        out.push(record);
    }
    out
}
