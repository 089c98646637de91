//! One reconcile pass over the fleet: for each enrolled account, enter it, resolve its
//! baseline, observe, plan, and (when applying) apply and verify by planning again.
//! Accounts run concurrently up to a limit; one account's failure never stops the others.

use crate::apply::{apply, ChangeOutcome};
use crate::aws::Fleet;
use crate::desired::names::AccountId;
use crate::desired::resolve::{resolve, AccountBaseline};
use crate::desired::{AccountFile, DesiredState};
use crate::inventory::{active_regions, Inventory};
use crate::journal::Journal;
use crate::observe::{control_tower, observe};
use crate::plan::{features_to_observe, plan, AccountPlan, Action, Change, Mode};
use crate::report::{change_views, AccountReport, AccountStatus, ApiCalls, RunReport};
use futures::stream::{self, StreamExt};
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub mode: Mode,
    pub apply: bool,
    /// Only these accounts (all enrolled accounts when empty).
    pub accounts: Vec<AccountId>,
    pub parallel_accounts: usize,
    /// Apply exactly these approved changes per account (a saved plan), refusing an account
    /// whose fresh plan no longer matches them.
    pub approved: Option<std::sync::Arc<std::collections::BTreeMap<AccountId, Vec<Change>>>>,
    /// The journal, whose ownership records the planner weighs and apply writes. A plan
    /// made without one (no state directory yet) proves ownership by tags and anchors
    /// alone; apply always has one.
    pub journal: Option<std::sync::Arc<dyn Journal>>,
}

/// What identifies a planned change, what it was planned against and what it writes: an
/// approved change matches a fresh one only if it would write the same (desired state and
/// tag) over the same (observed state). So a plan edited by hand, or desired state edited
/// after the approval, is refused; and what runs is always a change the planner, with all
/// its guards, made itself.
type ChangeKey = (String, String, String, String, Action, serde_json::Value, serde_json::Value, String);

fn change_key(c: &Change) -> ChangeKey {
    (
        c.feature.to_string(),
        c.region.clone(),
        c.resource_type.clone(),
        c.resource.clone(),
        c.action,
        c.observed.as_ref().map(|o| o.fields()).unwrap_or(serde_json::Value::Null),
        c.desired.fields(),
        c.tag.as_str().to_string(),
    )
}

/// Why a fresh plan no longer matches the approved one, if it does not.
fn mismatch(approved: &[Change], fresh: &[Change]) -> Option<String> {
    let a: Vec<_> = approved.iter().map(change_key).collect();
    let f: Vec<_> = fresh.iter().map(change_key).collect();
    if a == f {
        return None;
    }
    let describe = |k: &ChangeKey| format!("{:?} {} {} {} {}", k.4, k.0, k.1, k.2, k.3);
    let gone: Vec<String> = a.iter().filter(|k| !f.contains(k)).map(describe).collect();
    let new: Vec<String> = f.iter().filter(|k| !a.contains(k)).map(describe).collect();
    Some(format!(
        "refused: the account or desired state changed since the plan was approved (approved but no longer matching: [{}]; needed now but not approved: [{}]); nothing was changed here; plan again",
        gone.join(", "),
        new.join(", ")
    ))
}

async fn plan_account(
    desired: &DesiredState,
    session: &crate::aws::AccountSession,
    baseline: &AccountBaseline,
    mode: Mode,
    journal: Option<&dyn Journal>,
) -> Result<AccountPlan, String> {
    session.forget();
    let ct = control_tower(session, baseline).await.map_err(|e| e.to_string())?;
    let features = features_to_observe(baseline, mode, ct);
    let mut observed =
        observe(session, baseline, &features, ct, &desired.settings.quotas).await.map_err(|e| e.to_string())?;
    if let Some(j) = journal {
        let records = j.records(baseline.account_id.as_str()).await.map_err(|e| e.to_string())?;
        observed.records = records
            .into_iter()
            .map(|r| crate::desired::resolve::ResourceKey { kind: r.kind, region: r.region, name: r.name })
            .collect();
    }
    Ok(plan(baseline, &observed, mode))
}

pub async fn run_account(
    fleet: &Fleet,
    desired: &DesiredState,
    inv: &Inventory,
    account: &AccountFile,
    opts: &RunOptions,
) -> AccountReport {
    let mut report = AccountReport::empty(
        account.account_id.to_string(),
        account.name.clone(),
        account.tier.to_string(),
        AccountStatus::Failed,
    );
    let s = &desired.settings;
    let result: Result<(), String> = async {
        let session = fleet
            .enter(account.account_id.as_str(), &s.member_role_name, s.external_id.as_deref(), &s.session_name)
            .await
            .map_err(|e| e.to_string())?;
        let regions = active_regions(&session).await.map_err(|e| format!("listing regions: {e}"))?;
        let baseline = resolve(desired, account, &regions, &inv.management_account_id, &inv.caller_arn)?;
        report.regions = baseline.regions.clone();
        let journal = opts.journal.as_deref();
        let p = plan_account(desired, &session, &baseline, opts.mode, journal).await?;
        if let Some(approved) = &opts.approved {
            let mine = approved.get(&account.account_id).map(Vec::as_slice).unwrap_or_default();
            if let Some(why) = mismatch(mine, &p.changes) {
                report.changes = change_views(&p);
                return Err(why);
            }
            // What runs is what was approved: the fresh plan equals it in all it writes and
            // all it was planned against. Its own changes are applied because they also
            // carry what AWS names a resource by (a key's id, a rule's ARN), which a saved
            // plan does not hold.
        }
        report.control_tower = p.control_tower;
        report.changes = change_views(&p);
        report.skips = p.skips.clone();
        if !p.errors.is_empty() {
            return Err(p.errors.join("; "));
        }
        if !opts.apply {
            report.status = if p.has_changes() { AccountStatus::Changes } else { AccountStatus::NoChanges };
            return Ok(());
        }
        if p.changes.is_empty() {
            // Nothing to apply, so nothing to verify: the plan just made is the proof.
            report.applied = Some(vec![]);
            report.remaining = Some(vec![]);
            report.status = AccountStatus::Converged;
            return Ok(());
        }
        let Some(journal) = journal else {
            return Err("apply needs the journal (its ownership records); none was opened".into());
        };
        session.forget();
        let applied = apply(&session, &baseline, &p, &s.quotas, journal).await;
        let failed = applied.iter().find(|a| a.outcome == ChangeOutcome::Failed).and_then(|a| a.error.clone());
        report.applied = Some(applied);
        let after = plan_account(desired, &session, &baseline, opts.mode, Some(journal))
            .await
            .map_err(|e| format!("verifying: {e}"))?;
        report.remaining = Some(change_views(&after));
        if let Some(e) = failed {
            return Err(e);
        }
        report.status = if after.has_changes() { AccountStatus::NotConverged } else { AccountStatus::Converged };
        Ok(())
    }
    .instrument(tracing::info_span!("account", account = %account.account_id))
    .await;
    if let Err(e) = result {
        tracing::error!(account = %account.account_id, error = %e, "account failed");
        report.status = AccountStatus::Failed;
        report.error = Some(e);
    }
    report.api_calls = ApiCalls::of_account(&fleet.stats.take_account(account.account_id.as_str()));
    report
}

/// Runs the pass. Each account's report is spooled as the account finishes (see
/// [`RunReport`]); the report lists the accounts by id. Fails only when the spool cannot be
/// written.
pub async fn run(
    fleet: &Fleet,
    desired: &DesiredState,
    inv: &Inventory,
    opts: &RunOptions,
) -> std::io::Result<RunReport> {
    let before = fleet.stats.totals();
    let command = if opts.apply { "apply" } else { "plan" };
    let mut report = RunReport::new(command, opts.mode, inv.clone())?;
    let selected = inv.enrolled.iter().filter(|a| opts.accounts.is_empty() || opts.accounts.contains(&a.account_id));
    let mut finished = stream::iter(selected)
        .map(|a| run_account(fleet, desired, inv, a, opts))
        .buffer_unordered(opts.parallel_accounts.max(1));
    // Accounts in flight are always let finish, even when the spool fails: an apply is
    // never cut off half-way. The error is returned once they have.
    let mut spool_error = None;
    while let Some(account) = finished.next().await {
        if spool_error.is_some() {
            tracing::error!(account = %account.account_id, status = ?account.status, "account finished; its report is lost (the report spool failed)");
        } else if let Err(e) = report.push(&account) {
            tracing::error!(account = %account.account_id, status = ?account.status, error = %e, "cannot spool the account's report");
            spool_error = Some(e);
        }
    }
    if let Some(e) = spool_error {
        return Err(e);
    }
    report.finish(ApiCalls::of_totals(&crate::aws::counter::since(&before, &fleet.stats.totals())))?;
    Ok(report)
}
