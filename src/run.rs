//! One reconcile pass over the fleet: for each enrolled account, enter it, resolve its
//! baseline, observe, plan, and (when applying) apply and verify by planning again.
//! Accounts run concurrently up to a limit; one account's failure never stops the others.

use crate::apply::{apply, ChangeOutcome};
use crate::aws::{fault_of, AwsError, Fault, Fleet};
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
    /// Show a progress line on stderr (a terminal, human logs, more than one account).
    pub progress: bool,
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

/// Why an account failed, and how that is handled.
struct Failure {
    why: String,
    fault: Fault,
}

impl From<String> for Failure {
    fn from(why: String) -> Self {
        Failure { why, fault: Fault::Account }
    }
}

impl From<AwsError> for Failure {
    fn from(e: AwsError) -> Self {
        Failure { fault: e.fault(), why: e.to_string() }
    }
}

impl Failure {
    fn context(self, what: &str) -> Self {
        Failure { why: format!("{what}: {}", self.why), fault: self.fault }
    }
}

/// The digest of the desired state `d` was loaded from: what an initial setup is recorded with.
fn desired_digest(d: &DesiredState) -> Result<String, String> {
    crate::desired::snapshot::Snapshot::read(&d.dir)
        .map(|s| s.digest())
        .map_err(|e| format!("cannot read desired state {}: {e}", d.dir.display()))
}

async fn plan_account(
    desired: &DesiredState,
    session: &crate::aws::AccountSession,
    baseline: &AccountBaseline,
    mode: Mode,
    journal: Option<&dyn Journal>,
) -> Result<AccountPlan, Failure> {
    session.forget();
    let ct = control_tower(session, baseline).await?;
    let features = features_to_observe(baseline, mode, ct);
    let mut observed = observe(session, baseline, &features, ct, &desired.settings.quotas).await?;
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
    let result: Result<(), Failure> = async {
        let session = fleet
            .enter(account.account_id.as_str(), &s.member_role_name, s.external_id.as_deref(), &s.session_name)
            .await
            .map_err(|e| {
                // The management account's own call: no answer at all is the fleet's fault too.
                let fault = if matches!(e.code.as_str(), "dispatch" | "timeout") { Fault::Fleet } else { e.fault() };
                Failure { fault, why: e.to_string() }
            })?;
        let regions = active_regions(&session).await.map_err(|e| Failure::from(e).context("listing regions"))?;
        let baseline = resolve(desired, account, &regions, &inv.management_account_id, &inv.caller_arn)?;
        report.regions = baseline.regions.clone();
        let journal = opts.journal.as_deref();
        let p = plan_account(desired, &session, &baseline, opts.mode, journal).await?;
        if let Some(approved) = &opts.approved {
            let mine = approved.get(&account.account_id).map(Vec::as_slice).unwrap_or_default();
            if let Some(why) = mismatch(mine, &p.changes) {
                report.changes = change_views(&p);
                return Err(why.into());
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
            return Err(p.errors.join("; ").into());
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
            return Err(String::from("apply needs the journal (its ownership records); none was opened").into());
        };
        if opts.mode == Mode::Initial {
            // Recorded before the first change: an initial setup cut short is carried on by
            // the next one, never taken for one done before.
            let digest = desired_digest(desired)?;
            crate::journal::record_onboarding(
                journal,
                account.account_id.as_str(),
                &digest,
                crate::journal::how::CREATING,
            )
            .await
            .map_err(|e| format!("cannot record the start of initial setup: {e}"))?;
        }
        session.forget();
        let applied = apply(&session, &baseline, &p, &s.quotas, journal).await;
        // Every failure, and how many changes each blocked (R3); independent ones were made.
        let failures: Vec<String> = applied
            .iter()
            .filter(|a| a.outcome == ChangeOutcome::Failed)
            .map(|a| {
                let what = a.describe();
                let blocked = applied.iter().filter(|b| b.blocked_by.as_deref() == Some(what.as_str())).count();
                let blocked =
                    if blocked > 0 { format!(" [{blocked} dependent change(s) not attempted]") } else { String::new() };
                format!("{what}: {}{blocked}", a.error.as_deref().unwrap_or("failed"))
            })
            .collect();
        // Passing only if every failure passes; one credential failure is the fleet's.
        let faults: Vec<Fault> = applied
            .iter()
            .filter(|a| a.outcome == ChangeOutcome::Failed)
            .map(|a| fault_of(a.error.as_deref().and_then(|e| e.split(':').next()).unwrap_or("")))
            .collect();
        let fault = if faults.contains(&Fault::Fleet) {
            Fault::Fleet
        } else if !faults.is_empty() && faults.iter().all(|f| *f == Fault::Transient) {
            Fault::Transient
        } else {
            Fault::Account
        };
        let failed = (!failures.is_empty()).then(|| {
            let done = applied.iter().filter(|a| a.outcome == ChangeOutcome::Done).count();
            let why = format!("{} change(s) failed ({done} made): {}", failures.len(), failures.join("; "));
            Failure { why, fault }
        });
        report.applied = Some(applied);
        let after = plan_account(desired, &session, &baseline, opts.mode, Some(journal))
            .await
            .map_err(|e| e.context("verifying"))?;
        report.remaining = Some(change_views(&after));
        if let Some(e) = failed {
            return Err(e);
        }
        report.status = if after.has_changes() { AccountStatus::NotConverged } else { AccountStatus::Converged };
        Ok(())
    }
    .instrument(tracing::info_span!("account", account = %account.account_id))
    .await;
    let result = match (result, opts.journal.as_deref()) {
        (Ok(()), Some(j))
            if opts.apply && opts.mode == Mode::Offboarding && report.status == AccountStatus::Converged =>
        {
            // Left: recorded, so that the account is no longer maintained.
            let recorded = match desired_digest(desired) {
                Ok(digest) => crate::journal::record_offboarded(j, account.account_id.as_str(), &digest)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            recorded.map_err(|e| Failure::from(format!("offboarding done, but not recorded as done: {e}")))
        }
        (Ok(()), Some(j)) if opts.apply && opts.mode == Mode::Initial && report.status == AccountStatus::Converged => {
            // The account is set up: recorded, so that initial setup is not done again.
            let recorded = match desired_digest(desired) {
                Ok(digest) => crate::journal::record_onboarding(
                    j,
                    account.account_id.as_str(),
                    &digest,
                    crate::journal::how::MADE,
                )
                .await
                .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            recorded.map_err(|e| Failure::from(format!("initial setup done, but not recorded as done: {e}")))
        }
        (r, _) => r,
    };
    if let Err(f) = result {
        tracing::error!(account = %account.account_id, error = %f.why, fault = ?f.fault, "account failed");
        report.status = AccountStatus::Failed;
        report.error = Some(f.why);
        report.fault = f.fault;
    }
    report.api_calls = ApiCalls::of_account(&fleet.stats.take_account(account.account_id.as_str()));
    report
}

/// Waits between probes of the management account after a fault of the whole fleet
/// (254 s in all), before the run gives up on the accounts not yet done.
const FLEET_PROBES: [u64; 7] = [2, 4, 8, 16, 32, 64, 128];
/// Waits before an account whose failure passes (throttling, AWS errors, no answer) is
/// tried again within the run; after the last, its failure is reported.
const ACCOUNT_RETRIES: [u64; 2] = [5, 20];

/// Shared by the accounts of one run: a fault of the whole fleet (the management account's
/// credentials refused, AWS unreachable) closes it, so that no further account is started;
/// the first account to meet the fault probes the management account with backoff and
/// opens it again, or gives up, and the fault is reported once.
#[derive(Default)]
pub struct FleetGate {
    probing: tokio::sync::Mutex<()>,
    /// Bumped each time the gate opens again after a fault.
    generation: std::sync::atomic::AtomicU64,
    gave_up: std::sync::Mutex<Option<String>>,
}

impl FleetGate {
    fn given_up(&self) -> Option<String> {
        self.gave_up.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits while the fleet is being probed; the generation to report a fault against, or
    /// why the run gave up.
    async fn pass(&self) -> Result<u64, String> {
        drop(self.probing.lock().await);
        match self.given_up() {
            Some(why) => Err(why),
            None => Ok(self.generation.load(std::sync::atomic::Ordering::SeqCst)),
        }
    }

    /// A fault of the whole fleet, met by an account that started at `generation`: probes
    /// the management account until it answers (`Ok`: try again) or the probes run out.
    async fn fault(&self, fleet: &Fleet, account: &str, why: &str, generation: u64) -> Result<(), String> {
        let _probing = self.probing.lock().await;
        if let Some(why) = self.given_up() {
            return Err(why);
        }
        if self.generation.load(std::sync::atomic::Ordering::SeqCst) != generation {
            return Ok(()); // another account met it, and the fleet answered again since
        }
        tracing::error!(account, error = %why, "a fault of the whole fleet, not of one account: no further account is started until the management account answers again");
        let mut last = String::new();
        for wait in FLEET_PROBES {
            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
            match crate::inventory::reachable(fleet).await {
                Ok(()) => {
                    tracing::warn!("the management account answers again: accounts are started again");
                    self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the management account still does not answer");
                    last = e.to_string();
                }
            }
        }
        // Said of the fleet, once: the error met first was another account's, so it is
        // named as such, and the management account's own answer leads.
        let gave_up = format!(
            "not started: the management account did not answer for {} s ({last}); first met by account {account}: {why}",
            FLEET_PROBES.iter().sum::<u64>()
        );
        tracing::error!(error = %gave_up, "the run gives up on the accounts not yet done");
        *self.gave_up.lock().unwrap_or_else(|p| p.into_inner()) = Some(gave_up.clone());
        Err(gave_up)
    }
}

/// One account, as [`run_account`], through `gate`: tried again when its failure passes
/// (twice, with backoff) or was the fleet's (once the management account answers again).
/// `Err`: not done, because the whole fleet stayed out of reach (the daemon leaves such an
/// account pending; a CLI run reports it failed with [`not_started`]).
pub async fn run_account_gated(
    fleet: &Fleet,
    desired: &DesiredState,
    inv: &Inventory,
    account: &AccountFile,
    opts: &RunOptions,
    gate: &FleetGate,
) -> Result<AccountReport, String> {
    let mut retries = ACCOUNT_RETRIES.into_iter();
    // What earlier attempts made, and their calls: the account's report covers them all.
    let mut earlier = Attempts::default();
    loop {
        let generation = gate.pass().await?;
        let report = run_account(fleet, desired, inv, account, opts).await;
        match (report.status, report.fault) {
            (AccountStatus::Failed, Fault::Fleet) => {
                earlier.keep(&report);
                let why = report.error.as_deref().unwrap_or("fleet fault");
                gate.fault(fleet, account.account_id.as_str(), why, generation).await?;
            }
            (AccountStatus::Failed, Fault::Transient) => match retries.next() {
                Some(wait) => {
                    tracing::warn!(account = %account.account_id, error = report.error.as_deref().unwrap_or(""),
                        retry_in_seconds = wait, "the account's failure may pass: tried again within the run");
                    earlier.keep(&report);
                    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
                }
                None => return Ok(earlier.into_report(report)),
            },
            _ => return Ok(earlier.into_report(report)),
        }
    }
}

/// What the accounts of one pass share, owned, so that each account can run as a task of
/// its own ([`Pass::account`]).
///
/// Polled together in one task, every account's work (observing, planning, and signing,
/// sending and parsing its calls) ran on one thread, and a call's answer waited for that
/// thread before the account could release its permits and go on. As tasks, the accounts
/// spread over the runtime's workers.
pub struct Pass {
    pub fleet: Fleet,
    pub desired: DesiredState,
    pub inv: Inventory,
    pub opts: RunOptions,
    pub gate: FleetGate,
}

impl Pass {
    pub fn new(fleet: &Fleet, desired: &DesiredState, inv: &Inventory, opts: &RunOptions) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            fleet: fleet.clone(),
            desired: desired.clone(),
            inv: inv.clone(),
            opts: opts.clone(),
            gate: FleetGate::default(),
        })
    }

    /// [`run_account_gated`] for `account`, as a task. Dropping the returned future (a
    /// daemon run cut off at its stop deadline) aborts the task: the account is cut off
    /// just as it was when it ran in its caller's task.
    pub fn account(
        self: &std::sync::Arc<Self>,
        account: AccountFile,
    ) -> impl std::future::Future<Output = Result<AccountReport, String>> + Send + 'static {
        let pass = std::sync::Arc::clone(self);
        // The task keeps its caller's span, as the account's work did in the caller's task.
        let work = async move {
            run_account_gated(&pass.fleet, &pass.desired, &pass.inv, &account, &pass.opts, &pass.gate).await
        };
        crate::aws::AbortOnDrop(tokio::spawn(work.instrument(tracing::Span::current())))
    }
}

/// The changes earlier attempts at an account made, and the calls they spent.
#[derive(Default)]
struct Attempts {
    made: Vec<(Change, crate::apply::AppliedChange)>,
    calls: Vec<ApiCalls>,
}

impl Attempts {
    fn keep(&mut self, r: &AccountReport) {
        if let Some(applied) = &r.applied {
            let done = r.changes.iter().zip(applied).filter(|(_, a)| a.outcome == ChangeOutcome::Done);
            self.made.extend(done.map(|(c, a)| (c.clone(), a.clone())));
        }
        self.calls.push(r.api_calls.clone());
    }

    /// The last attempt's report, with what the earlier ones made listed first.
    fn into_report(self, mut last: AccountReport) -> AccountReport {
        if !self.made.is_empty() {
            let (mut changes, mut applied): (Vec<Change>, Vec<crate::apply::AppliedChange>) =
                self.made.into_iter().unzip();
            let planned = std::mem::take(&mut last.changes);
            let outcomes = last
                .applied
                .take()
                .unwrap_or_else(|| planned.iter().map(crate::apply::AppliedChange::not_attempted).collect());
            changes.extend(planned);
            applied.extend(outcomes);
            last.changes = changes;
            last.applied = Some(applied);
        }
        if !self.calls.is_empty() {
            let all: Vec<ApiCalls> = self.calls.into_iter().chain(std::iter::once(last.api_calls.clone())).collect();
            last.api_calls = ApiCalls::sum(all.iter());
        }
        last
    }
}

/// The report of an account a run gave up on before doing it.
pub fn not_started(account: &AccountFile, why: String) -> AccountReport {
    let mut r = AccountReport::empty(
        account.account_id.to_string(),
        account.name.clone(),
        account.tier.to_string(),
        AccountStatus::Failed,
    );
    r.error = Some(why);
    r.fault = Fault::Fleet;
    r
}

/// The progress line of a run over `total` accounts, on stderr: accounts done of total,
/// changes made, failures, elapsed time and the estimate.
fn progress_bar(total: usize, command: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(Some(total as u64), indicatif::ProgressDrawTarget::stderr());
    let template = format!("{command} {{pos}}/{{len}} accounts  {{msg}}  {{elapsed}} elapsed, about {{eta}} left");
    let style =
        indicatif::ProgressStyle::with_template(&template).unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(std::time::Duration::from_secs(1));
    bar
}

/// Runs the pass over the inventory's enrolled accounts (those of `opts.accounts`, when it
/// names any). Each account's report is spooled as the account finishes (see
/// [`RunReport`]); the report lists the accounts by id. Fails only when the spool cannot be
/// written.
pub async fn run(
    fleet: &Fleet,
    desired: &DesiredState,
    inv: &Inventory,
    opts: &RunOptions,
) -> std::io::Result<RunReport> {
    let before = fleet.stats.totals();
    let paced_before = fleet.pacing.held().0;
    let mut report = RunReport::new(command(opts), opts.mode, inv.clone())?;
    let selected: Vec<AccountFile> = inv
        .enrolled
        .iter()
        .filter(|a| opts.accounts.is_empty() || opts.accounts.contains(&a.account_id))
        .cloned()
        .collect();
    let bar = (opts.progress && selected.len() > 1).then(|| progress_bar(selected.len(), command(opts)));
    pass_over(Pass::new(fleet, desired, inv, opts), stream::iter(selected), bar, &mut report).await?;
    // The inventory's own calls were made before this pass began; they are this run's too.
    let mut totals = crate::aws::counter::since(&before, &fleet.stats.totals());
    crate::aws::counter::add_into(&mut totals, &inv.calls);
    let mut calls = ApiCalls::of_totals(&totals);
    calls.paced = fleet.pacing.held().0 - paced_before;
    report.finish(calls)?;
    Ok(report)
}

/// A fleet-wide pass over the Organization while it is listed: each enrolled account of
/// `shard` starts as soon as its page of the listing arrives ([`crate::inventory::list`]),
/// not once every page has. Accounts the journal has offboarded are left out, as
/// [`crate::journal::drop_offboarded`] leaves them out of an inventory.
///
/// Returns the report and, when the listing was cut short (an error listing the
/// Organization, or reading the journal), why: the accounts started before are let finish
/// and reported, no further one is started, and the report's inventory names the caller
/// only, as which accounts are missing or not enrolled is not known. Fails only when the
/// spool cannot be written.
pub async fn run_listed(
    fleet: &Fleet,
    desired: &DesiredState,
    caller: &crate::inventory::Caller,
    shard: crate::inventory::Shard,
    opts: &RunOptions,
) -> std::io::Result<(RunReport, Option<String>)> {
    let paced_before = fleet.pacing.held().0;
    let mut report = RunReport::new(command(opts), opts.mode, caller.inventory())?;
    let (listed, ready) = futures::channel::mpsc::unbounded::<AccountFile>();
    let listing = async move {
        let mine = |a: &AccountFile| {
            shard.contains(a.account_id.as_str()) && (opts.accounts.is_empty() || opts.accounts.contains(&a.account_id))
        };
        crate::inventory::list(fleet, desired, caller, |a| {
            // Refused only once the pass takes no further account (it was cut short,
            // which it reports): the rest of the listing is then for the report alone.
            if mine(a) && listed.unbounded_send(a.clone()).is_err() {
                tracing::debug!(account = %a.account_id, "listed after the pass stopped taking accounts");
            }
        })
        .await
    };
    let offboarded = std::sync::Mutex::new(Vec::<AccountId>::new());
    let journal_error = std::sync::Mutex::new(None::<String>);
    let journal = opts.journal.as_deref();
    // The progress line counts the accounts listed so far.
    let bar = opts.progress.then(|| progress_bar(0, command(opts)));
    let taken = |account: AccountFile, ready| {
        if let Some(bar) = &bar {
            bar.inc_length(1);
        }
        Some((account, ready))
    };
    let accounts = stream::unfold(ready, |mut ready| async {
        loop {
            let account = ready.next().await?;
            let Some(j) = journal else { return taken(account, ready) };
            match crate::journal::is_offboarded(j, account.account_id.as_str()).await {
                Ok(false) => return taken(account, ready),
                Ok(true) => offboarded.lock().unwrap_or_else(|p| p.into_inner()).push(account.account_id.clone()),
                Err(e) => {
                    *journal_error.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(format!("cannot read the journal: {e}"));
                    return None;
                }
            }
        }
    });
    let pass = Pass::new(fleet, desired, &caller.inventory(), opts);
    let (listing, passed) = tokio::join!(listing, pass_over(pass, Box::pin(accounts), bar.clone(), &mut report));
    passed?;
    let offboarded = offboarded.into_inner().unwrap_or_else(|p| p.into_inner());
    let cut_short = match (listing, journal_error.into_inner().unwrap_or_else(|p| p.into_inner())) {
        (_, Some(why)) => Some(why),
        (Err(e), None) => Some(crate::inventory::cannot_list(&e)),
        (Ok(mut inv), None) => {
            inv.enrolled.retain(|a| shard.contains(a.account_id.as_str()) && !offboarded.contains(&a.account_id));
            if !offboarded.is_empty() {
                tracing::info!(accounts = ?offboarded, "offboarded accounts are no longer maintained");
            }
            inv.offboarded = offboarded;
            report.inventory = inv;
            None
        }
    };
    // Every call since the caller was asked is this run's: the listing's and the pass's.
    let mut calls = ApiCalls::of_totals(&crate::aws::counter::since(caller.counted_from(), &fleet.stats.totals()));
    calls.paced = fleet.pacing.held().0 - paced_before;
    report.finish(calls)?;
    Ok((report, cut_short))
}

fn command(opts: &RunOptions) -> &'static str {
    if opts.apply {
        "apply"
    } else {
        "plan"
    }
}

/// Runs `accounts` through `pass`, at most `opts.parallel_accounts` at a time, each
/// spooled to `report` as it finishes.
async fn pass_over(
    pass: std::sync::Arc<Pass>,
    accounts: impl futures::Stream<Item = AccountFile> + Unpin,
    bar: Option<indicatif::ProgressBar>,
    report: &mut RunReport,
) -> std::io::Result<()> {
    let (mut changed, mut failed) = (0, 0);
    let pass = &pass;
    let bar = &bar;
    let mut finished = accounts
        .map(|a: AccountFile| async move { pass.account(a.clone()).await.unwrap_or_else(|why| not_started(&a, why)) })
        .buffer_unordered(pass.opts.parallel_accounts.max(1));
    // Accounts in flight are always let finish, even when the spool fails: an apply is
    // never cut off half-way. The error is returned once they have.
    let mut spool_error = None;
    while let Some(account) = finished.next().await {
        if let Some(bar) = bar {
            changed += account
                .applied
                .as_ref()
                .map_or(account.changes.len(), |ap| ap.iter().filter(|r| r.outcome == ChangeOutcome::Done).count());
            failed += usize::from(matches!(account.status, AccountStatus::Failed | AccountStatus::NotConverged));
            let verb = if pass.opts.apply { "made" } else { "planned" };
            bar.set_message(format!("{changed} changes {verb}, {failed} failed"));
            bar.inc(1);
        }
        if spool_error.is_some() {
            tracing::error!(account = %account.account_id, status = ?account.status, "account finished; its report is lost (the report spool failed)");
        } else if let Err(e) = report.push(&account) {
            tracing::error!(account = %account.account_id, status = ?account.status, error = %e, "cannot spool the account's report");
            spool_error = Some(e);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    match spool_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::AppliedChange;
    use crate::desired::names::{FeatureId, OwnerTag};
    use crate::resources::iam_password_policy::IamPasswordPolicy;
    use crate::resources::ResourceSpec;

    fn change(resource: &str) -> Change {
        Change {
            feature: FeatureId::parse("F03").unwrap(),
            region: "global".into(),
            resource_type: "iam_password_policy".into(),
            resource: resource.into(),
            action: Action::Update,
            diff: String::new(),
            tag: OwnerTag::Initialized,
            desired: ResourceSpec::IamPasswordPolicy(IamPasswordPolicy::default()),
            observed: None,
        }
    }

    fn outcome(c: &Change, outcome: ChangeOutcome) -> AppliedChange {
        AppliedChange { outcome, ..AppliedChange::not_attempted(c) }
    }

    fn report(changes: Vec<Change>, outcomes: &[ChangeOutcome], calls: u64) -> AccountReport {
        let mut r = AccountReport::empty("111111111111".into(), None, "basic".into(), AccountStatus::Failed);
        r.applied = Some(changes.iter().zip(outcomes).map(|(c, o)| outcome(c, o.clone())).collect());
        r.changes = changes;
        r.api_calls.total = calls;
        r
    }

    #[test]
    fn an_account_tried_again_reports_what_every_attempt_made() {
        // The first attempt made one change and failed on the next (a passing error); the
        // second finds only that one left, and makes it.
        let first = report(vec![change("a"), change("b")], &[ChangeOutcome::Done, ChangeOutcome::Failed], 40);
        let mut second = report(vec![change("b")], &[ChangeOutcome::Done], 25);
        second.status = AccountStatus::Converged;
        let mut earlier = Attempts::default();
        earlier.keep(&first);
        let r = earlier.into_report(second);
        let made: Vec<(&str, ChangeOutcome)> = r
            .changes
            .iter()
            .zip(r.applied.as_deref().unwrap_or_default())
            .map(|(c, a)| (c.resource.as_str(), a.outcome.clone()))
            .collect();
        assert_eq!(made, [("a", ChangeOutcome::Done), ("b", ChangeOutcome::Done)]);
        assert_eq!((r.status, r.api_calls.total), (AccountStatus::Converged, 65));
    }
}
