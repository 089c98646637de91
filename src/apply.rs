//! Carries out a plan, change by change, in the plan's order (dependencies first). It
//! decides nothing: what to change was decided by the planner, and what a failure blocks
//! too ([`crate::plan::dependencies`], R3): a failed change stops only the changes that
//! build on it, which are reported not attempted with the failure that blocked them; every
//! independent change is still made. A journal error stops the account.
//!
//! It keeps the journal's ownership records, which are the planner's proof for what
//! cannot carry the `cm:Members` tag: a create is recorded before it starts (so that a
//! create cut short, a bucket made but not yet tagged, is finished by the next run and
//! never duplicated), what was written to an untaggable resource or setting is recorded
//! once done, and a delete removes the record. A record that cannot be written fails the
//! change and stops the account.

use crate::aws::{AccountSession, AwsError};
use crate::desired::resolve::AccountBaseline;
use crate::desired::Quotas;
use crate::journal::{how, Journal, Record};
use crate::observe::call_region;
use crate::plan::{differing_fields, AccountPlan, Action, Change};
use crate::resources::{Cx, Observation};
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
    /// For a change not attempted: the failed change that blocked it ([`describe`](Self::describe)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
}

impl AppliedChange {
    /// `c`, not (yet) attempted.
    pub fn not_attempted(c: &Change) -> Self {
        AppliedChange {
            feature: c.feature.to_string(),
            region: c.region.clone(),
            resource_type: c.resource_type.clone(),
            resource: c.resource.clone(),
            action: c.action,
            outcome: ChangeOutcome::NotAttempted,
            error: None,
            blocked_by: None,
        }
    }

    /// `F08 create config_recorder default (us-east-1)`: how a change is named in reports.
    pub fn describe(&self) -> String {
        let action = format!("{:?}", self.action).to_lowercase();
        format!("{} {action} {} {} ({})", self.feature, self.resource_type, self.resource, self.region)
    }
}

/// Error codes with which AWS refuses a create because the resource, or the one of its
/// kind AWS allows, already exists: it is someone else's, never ours to finish.
const ALREADY_EXISTS: [&str; 10] = [
    "BucketAlreadyExists",
    "TrailAlreadyExistsException",
    "BucketAlreadyOwnedByYou",
    "EntityAlreadyExists",
    "AlreadyExistsException",
    "ResourceConflictException",
    "ConflictException",
    "ServiceQuotaExceededException",
    "MaxNumberOfConfigurationRecordersExceededException",
    "MaxNumberOfDeliveryChannelsExceededException",
];

fn record_of(c: &Change, how: &str) -> Record {
    Record {
        kind: c.resource_type.clone(),
        region: c.region.clone(),
        name: c.resource.clone(),
        feature: c.feature.to_string(),
        how: how.to_string(),
        at: crate::journal::now(),
    }
}

fn journal_error(e: crate::journal::JournalError) -> AwsError {
    AwsError::new("JournalError", e.to_string())
}

/// Carries out one change, keeping its ownership record.
async fn apply_change(cx: &Cx<'_>, c: &Change, journal: &dyn Journal) -> Result<(), AwsError> {
    let account = cx.account_id;
    let forget = || journal.forget(account, &c.resource_type, &c.region, &c.resource);
    let untaggable = !c.desired.taggable();
    match (c.action, &c.observed) {
        (Action::Create, _) => {
            journal.record(account, &record_of(c, how::CREATING)).await.map_err(journal_error)?;
            match c.desired.create(cx, c.tag).await {
                // What carries the tag is proven ours by it; what cannot, by the record.
                Ok(()) if untaggable => journal.record(account, &record_of(c, how::MADE)).await.map_err(journal_error),
                Ok(()) => forget().await.map_err(journal_error),
                Err(e) => {
                    // Cut short: the record stays only if the resource was made (and is not
                    // someone else's that appeared meanwhile), for the next run to finish.
                    cx.session.forget();
                    let made = !ALREADY_EXISTS.contains(&e.code.as_str())
                        && matches!(c.desired.observe(cx).await, Ok(Observation::Present { owner: None, .. }));
                    if !made {
                        forget().await.map_err(journal_error)?;
                    }
                    Err(e)
                }
            }
        }
        (Action::Update, Some(seen)) => {
            c.desired.update(cx, seen).await?;
            if untaggable {
                // A setting written over AWS's default is ours from now on.
                journal.record(account, &record_of(c, how::MADE)).await.map_err(journal_error)?;
            }
            Ok(())
        }
        (Action::Adopt, Some(seen)) => {
            if !differing_fields(&c.desired, seen).is_empty() {
                c.desired.update(cx, seen).await?;
            }
            if !untaggable {
                c.desired.retag(cx, c.tag).await?;
            }
            journal.record(account, &record_of(c, how::ADOPTED)).await.map_err(journal_error)
        }
        // What is deleted is what was observed (its ids are known only from there).
        (Action::Delete, seen) => {
            seen.as_ref().unwrap_or(&c.desired).delete(cx).await?;
            forget().await.map_err(journal_error)
        }
        (Action::Tag, _) => c.desired.retag(cx, c.tag).await,
        (Action::Update | Action::Adopt, None) => Err(AwsError::new("internal", "update without an observed state")),
    }
}

/// Applies `plan`; returns what happened to each change.
pub async fn apply(
    session: &AccountSession,
    baseline: &AccountBaseline,
    plan: &AccountPlan,
    quotas: &Quotas,
    journal: &dyn Journal,
) -> Vec<AppliedChange> {
    let deps = crate::plan::dependencies(baseline, &plan.changes);
    let mut out: Vec<AppliedChange> = Vec::with_capacity(plan.changes.len());
    // The failed change at the root of each change that was not done.
    let mut root: Vec<Option<String>> = Vec::with_capacity(plan.changes.len());
    let mut journal_failed: Option<String> = None;
    for (k, c) in plan.changes.iter().enumerate() {
        let mut record = AppliedChange::not_attempted(c);
        let blocker = journal_failed.clone().or_else(|| deps[k].iter().find_map(|&i| root[i].clone()));
        if let Some(why) = blocker {
            tracing::warn!(account = %baseline.account_id, feature = %c.feature, region = %c.region,
                resource_type = %c.resource_type, resource = %c.resource, action = ?c.action, blocked_by = %why,
                "change not attempted");
            record.blocked_by = Some(why.clone());
            root.push(Some(why));
            out.push(record);
            continue;
        }
        let cx =
            Cx { session, account_id: baseline.account_id.as_str(), region: call_region(baseline, &c.region), quotas };
        let result = apply_change(&cx, c, journal).await;
        // A change may make any memoised list stale (a new alias, a new bucket).
        session.forget();
        match result {
            Ok(()) => {
                tracing::info!(account = %baseline.account_id, feature = %c.feature, region = %c.region,
                    resource_type = %c.resource_type, resource = %c.resource, action = ?c.action, "applied");
                record.outcome = ChangeOutcome::Done;
                root.push(None);
            }
            Err(e) => {
                tracing::warn!(account = %baseline.account_id, feature = %c.feature, region = %c.region,
                    resource_type = %c.resource_type, resource = %c.resource, action = ?c.action, error = %e,
                    "change failed");
                let what = record.describe();
                if e.code == "JournalError" {
                    journal_failed = Some(what.clone());
                }
                record.outcome = ChangeOutcome::Failed;
                record.error = Some(e.to_string());
                root.push(Some(what));
            }
        }
        out.push(record);
    }
    out
}
