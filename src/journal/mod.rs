//! The journal: the tool's own memory, kept outside AWS. It holds every run and, per
//! account, what happened (so that a daemon killed mid-run resumes the same run and no
//! account is done twice), and the **ownership records**: what this tool made, wrote or
//! took over in each account. A record is the proof of ownership for what cannot carry the
//! `cm:Members` tag (an account setting, an IAM group, a Config recorder), and of a create
//! cut short before its tag was written.
//!
//! The daemon, the CLI (`plan`, `apply`, `runs`) and the planner's inputs reach it only
//! through the [`Journal`] trait, so that the store is chosen in one place ([`Location`],
//! `--journal`) and the rest of the code does not know which it has: SQLite on one host
//! (systemd; the default, a file in the state directory), or a DynamoDB table where the
//! service has no disk of its own and shards share one fleet (ECS, Kubernetes). Every
//! method is asynchronous and every error is returned: a journal that cannot be written
//! stops what depends on it, it is never ignored. [`contract`] holds the checks every store
//! passes.

#[doc(hidden)]
pub mod contract;
pub mod dynamodb;
mod sqlite;

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

pub use sqlite::SqliteJournal;

/// Account status within a run.
pub const PENDING: &str = "pending";
pub const RUNNING: &str = "running";
pub const DONE: &str = "done";
pub const FAILED: &str = "failed";
/// Not worked on in this run, with the reason in `error`: no longer enrolled when the run
/// was resumed (gone from the Organization, suspended, account file removed), or the run
/// was superseded by a newer one.
pub const SKIPPED: &str = "skipped";

/// Whether an account still has to be worked on in its run (pending, or running when the
/// process died).
pub fn is_open(status: &str) -> bool {
    !matches!(status, DONE | FAILED | SKIPPED)
}

/// Run status.
pub mod run_status {
    /// Planning the fleet for the blast-radius brake.
    pub const PLANNING: &str = "planning";
    /// Applying, account by account.
    pub const RUNNING: &str = "running";
    pub const DONE: &str = "done";
    /// Stopped by SIGTERM/SIGINT before every account was done; resumed at the next start.
    pub const STOPPED: &str = "stopped";
    /// Desired state was invalid, or the fleet could not be listed: nothing was changed.
    pub const REFUSED: &str = "refused";
    /// Stopped by the blast-radius brake before any change.
    pub const BRAKED: &str = "braked";
    /// A braked run an operator approved: resumed, past the brake.
    pub const APPROVED: &str = "approved";
    /// Left unfinished (stopped, braked, ...) when a newer maintenance run started: never
    /// resumed; its open accounts are recorded skipped.
    pub const SUPERSEDED: &str = "superseded";
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRow {
    pub id: i64,
    pub kind: String,
    pub status: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccountRow {
    pub account_id: String,
    pub status: String,
    /// How many times the account was started in this run (more than once after a crash).
    pub attempts: i64,
    /// How many times it was recorded done (never more than once).
    pub done_count: i64,
    pub changes: i64,
    pub api_calls: i64,
    pub error: Option<String>,
    /// The account's report, JSON, as in `cm-baseline apply --format json`.
    pub report: Option<String>,
}

/// What became of one account in a run.
pub struct Outcome<'a> {
    pub account: &'a str,
    /// `done` or `failed`.
    pub status: &'a str,
    pub changes: usize,
    pub api_calls: u64,
    pub error: Option<&'a str>,
    /// The account's JSON report.
    pub report: &'a str,
}

/// How a record came to be.
pub mod how {
    /// A create was started: kept if the create was cut short with the resource made
    /// (its tag or alias not yet written), so that the next run finishes it.
    pub const CREATING: &str = "creating";
    /// Made or written by this tool.
    pub const MADE: &str = "made";
    /// The customer's, taken over as desired state said (`adopt: overwrite`).
    pub const ADOPTED: &str = "adopted";
    /// Of an account's initial setup ([`INITIAL_SETUP`](super::INITIAL_SETUP)): found done
    /// already (the baseline's tagged roles present) when the journal had no record of it,
    /// as for an account set up before initial setup was recorded.
    pub const RECOGNISED: &str = "recognised";
}

/// The record kind of an account's initial setup (onboarding): `how` is
/// [`how::CREATING`] once it started, [`how::MADE`] once the account converged, or
/// [`how::RECOGNISED`]; `name` is the digest of the desired state it applied.
pub const INITIAL_SETUP: &str = "initial_setup";

/// The record kind of an account's offboarding: once recorded, the account is no longer
/// maintained (nor onboarded), even if its account file remains.
pub const OFFBOARDED: &str = "offboarded";

/// Records that `account` was offboarded with desired state `digest`.
pub async fn record_offboarded(j: &dyn Journal, account: &str, digest: &str) -> Result<()> {
    let r = Record {
        kind: OFFBOARDED.into(),
        region: "global".into(),
        name: digest.into(),
        feature: "offboarding".into(),
        how: how::MADE.into(),
        at: now(),
    };
    j.record(account, &r).await
}

/// Moves the offboarded accounts of `inv` from enrolled to offboarded.
pub async fn drop_offboarded(j: &dyn Journal, inv: &mut crate::inventory::Inventory) -> Result<()> {
    let mut gone = vec![];
    for a in &inv.enrolled {
        if is_offboarded(j, a.account_id.as_str()).await? {
            gone.push(a.account_id.clone());
        }
    }
    if !gone.is_empty() {
        tracing::info!(accounts = ?gone, "offboarded accounts are no longer maintained");
        inv.enrolled.retain(|a| !gone.contains(&a.account_id));
        inv.offboarded = gone;
    }
    Ok(())
}

/// Whether `account` was offboarded (`cm-baseline offboard`), and so is no longer maintained.
pub async fn is_offboarded(j: &dyn Journal, account: &str) -> Result<bool> {
    Ok(j.records(account).await?.iter().any(|r| r.kind == OFFBOARDED))
}

/// An account's initial setup as the journal has it.
#[derive(Debug, Clone, PartialEq)]
pub enum Onboarding {
    /// Never started: the account is pending onboarding.
    Pending,
    /// Started, not finished (a crash, a failure): it is carried on, never "recognised".
    Started { at: String },
    /// Done (`made`) or found done (`recognised`), at `at`, with desired state `digest`.
    Done { at: String, digest: String, how: String },
}

impl Onboarding {
    pub fn is_done(&self) -> bool {
        matches!(self, Onboarding::Done { .. })
    }

    /// The account's onboarding from its ownership records.
    pub fn of(records: &[Record]) -> Onboarding {
        match records.iter().find(|r| r.kind == INITIAL_SETUP) {
            None => Onboarding::Pending,
            Some(r) if r.how == how::CREATING => Onboarding::Started { at: r.at.clone() },
            Some(r) => Onboarding::Done { at: r.at.clone(), digest: r.name.clone(), how: r.how.clone() },
        }
    }
}

impl std::fmt::Display for Onboarding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Onboarding::Pending => write!(f, "pending"),
            Onboarding::Started { at } => write!(f, "started {at}, not finished"),
            Onboarding::Done { at, how, .. } if how == how::RECOGNISED => write!(f, "recognised as set up {at}"),
            Onboarding::Done { at, .. } => write!(f, "done {at}"),
        }
    }
}

/// An account's onboarding, as `j` has it.
pub async fn onboarding(j: &dyn Journal, account: &str) -> Result<Onboarding> {
    Ok(Onboarding::of(&j.records(account).await?))
}

/// Records that `account`'s initial setup started, was done or was recognised (`how`).
pub async fn record_onboarding(j: &dyn Journal, account: &str, digest: &str, how: &str) -> Result<()> {
    let r = Record {
        kind: INITIAL_SETUP.into(),
        region: "global".into(),
        name: digest.into(),
        feature: "initial setup".into(),
        how: how.into(),
        at: now(),
    };
    // One record per account: written, then the earlier one (of another digest) goes.
    let earlier: Vec<Record> =
        j.records(account).await?.into_iter().filter(|o| o.kind == INITIAL_SETUP && o.name != digest).collect();
    j.record(account, &r).await?;
    for old in earlier {
        j.forget(account, INITIAL_SETUP, &old.region, &old.name).await?;
    }
    Ok(())
}

/// One resource of one account that this tool made, wrote or took over.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Record {
    pub kind: String,
    /// A region, or `global`.
    pub region: String,
    pub name: String,
    /// The feature it was made for.
    pub feature: String,
    /// One of [`how`].
    pub how: String,
    /// When (RFC 3339, UTC).
    pub at: String,
}

#[derive(Debug, thiserror::Error)]
#[error("journal: {0}")]
pub struct JournalError(pub String);

impl JournalError {
    /// An account recorded done in its run, written again: every store refuses it.
    pub(crate) fn already_done(account: &str, run_id: i64) -> Self {
        JournalError(format!("account {account} of run {run_id} is already recorded done: it is not done twice"))
    }

    /// An account started that is done in its run already, or not in it.
    pub(crate) fn not_startable(account: &str, run_id: i64) -> Self {
        JournalError(format!("account {account} of run {run_id} is already done (or not in the run)"))
    }
}

pub type Result<T> = std::result::Result<T, JournalError>;

/// What every journal method returns.
pub type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// The journal's interface: runs, their accounts, and ownership records.
pub trait Journal: Send + Sync + std::fmt::Debug {
    /// Starts a run over `accounts`, all pending; returns its id.
    fn start_run<'a>(&'a self, kind: &'a str, status: &'a str, accounts: &'a [String]) -> Fut<'a, i64>;
    /// The run of `slot` (a scheduled maintenance, or an explicit run, that several shards
    /// work on together): joined while it is unfinished (planning, running, stopped or
    /// approved), its missing `accounts` added pending and those it has left as they are;
    /// otherwise a new run (in `status`) becomes the slot's run, atomically, so that shards
    /// starting at once all get the same one. Returns its id and whether it was started here.
    fn join_run<'a>(
        &'a self,
        kind: &'a str,
        slot: &'a str,
        status: &'a str,
        accounts: &'a [String],
    ) -> Fut<'a, (i64, bool)>;
    /// Records that one shard has planned its accounts of a run, for the fleet-wide brake.
    fn shard_planned<'a>(&'a self, run_id: i64, part: &'a ShardPlan) -> Fut<'a, ()>;
    /// What [`shard_planned`](Journal::shard_planned) recorded for a run, by shard.
    fn shards_planned(&self, run_id: i64) -> Fut<'_, Vec<ShardPlan>>;
    fn set_run_status<'a>(&'a self, id: i64, status: &'a str, detail: Option<&'a str>) -> Fut<'a, ()>;
    /// Moves a run from status `from` to `to` (with `detail`), atomically: only while it is
    /// `from`. Returns whether it was, so that of several shards one makes the move.
    fn move_run<'a>(&'a self, id: i64, from: &'a str, to: &'a str, detail: Option<&'a str>) -> Fut<'a, bool>;
    fn finish_run<'a>(&'a self, id: i64, status: &'a str, detail: Option<&'a str>) -> Fut<'a, ()>;
    /// The run to resume at start: the latest one not finished (planning, running,
    /// stopped or approved).
    fn unfinished_run(&self) -> Fut<'_, Option<RunRow>>;
    fn run(&self, id: i64) -> Fut<'_, Option<RunRow>>;
    /// The latest `limit` runs, newest first.
    fn runs(&self, limit: usize) -> Fut<'_, Vec<RunRow>>;
    fn accounts(&self, run_id: i64) -> Fut<'_, Vec<AccountRow>>;
    /// Records that an account is not worked on in this run, and why.
    fn account_skipped<'a>(&'a self, run_id: i64, account: &'a str, why: &'a str) -> Fut<'a, ()>;
    /// Puts the accounts of `run_id` recorded running back to pending (they did not
    /// finish: the stop deadline passed, or the process died), only those of `only` when
    /// given (a shard's: the other shards' are in other hands); returns how many.
    fn requeue_running<'a>(&'a self, run_id: i64, only: Option<&'a [String]>) -> Fut<'a, usize>;
    /// Closes every unfinished or braked run of `kind` older than `newer`: a new run covers
    /// the fleet again, so an old one must never be resumed (or approved) after it. Their
    /// open accounts are recorded skipped. Returns the ids of the runs closed.
    fn supersede_older<'a>(&'a self, kind: &'a str, newer: i64) -> Fut<'a, Vec<i64>>;
    /// Marks an account started.
    fn account_started<'a>(&'a self, run_id: i64, account: &'a str) -> Fut<'a, ()>;
    /// Records an account's outcome with its report.
    fn account_finished<'a>(&'a self, run_id: i64, o: &'a Outcome<'a>) -> Fut<'a, ()>;

    /// Lets a braked run go ahead, atomically: only while it is still braked. Records who
    /// approved it and when. Returns whether it was braked (and is now approved).
    fn approve<'a>(&'a self, id: i64, by: &'a str) -> Fut<'a, bool>;
    /// Who approved a run, and when (RFC 3339).
    fn approval(&self, id: i64) -> Fut<'_, Option<(String, String)>>;
    /// Keeps each account's planned changes (JSON) of a run as the brake saw them: what an
    /// approval lets run, and nothing else. Each account's plan replaces its earlier one;
    /// other accounts' plans (another shard's) are kept.
    fn save_plans<'a>(&'a self, run_id: i64, plans: &'a [(String, String)]) -> Fut<'a, ()>;
    /// The plans [`save_plans`](Journal::save_plans) kept, by account.
    fn plans(&self, run_id: i64) -> Fut<'_, Vec<(String, String)>>;
    /// Takes or renews the lease of `scope` (see [`lease_scope`]) for `holder` until
    /// `ttl_secs` from now. Returns who else holds it, and until when, if someone does.
    /// Leases of overlapping scopes are [`Lease::take`]'s concern.
    fn acquire_lease<'a>(&'a self, scope: &'a str, holder: &'a str, ttl_secs: i64)
        -> Fut<'a, Option<(String, String)>>;
    /// Gives the lease of `scope` up, if `holder` has it.
    fn release_lease<'a>(&'a self, scope: &'a str, holder: &'a str) -> Fut<'a, ()>;
    /// Every lease recorded, held or run out.
    fn leases(&self) -> Fut<'_, Vec<LeaseRow>>;

    /// Pins desired state (by its digest) for the maintenance at `maintenance_at` (RFC 3339):
    /// what the announcement of that maintenance showed.
    fn pin<'a>(&'a self, maintenance_at: &'a str, digest: &'a str) -> Fut<'a, ()>;
    /// The latest pin of a maintenance due from `from` to `to` (RFC 3339, UTC): its
    /// maintenance time and digest.
    fn pin_between<'a>(&'a self, from: &'a str, to: &'a str) -> Fut<'a, Option<(String, String)>>;
    /// Records which desired state a run applies (its digest) and how it was chosen.
    fn set_run_desired<'a>(&'a self, run_id: i64, digest: &'a str, how: &'a str) -> Fut<'a, ()>;
    /// The desired state a run applies: digest and how it was chosen.
    fn run_desired(&self, run_id: i64) -> Fut<'_, Option<(String, String)>>;

    /// Keeps desired state as an announcement pinned it (a [`Snapshot`] as bytes), under its
    /// digest, so that the run it pins can load it wherever it runs (a replaced task has an
    /// empty disk). Kept once per digest.
    ///
    /// [`Snapshot`]: crate::desired::snapshot::Snapshot
    fn keep_desired<'a>(&'a self, digest: &'a str, content: &'a [u8]) -> Fut<'a, ()>;
    /// What [`keep_desired`](Journal::keep_desired) kept under `digest`.
    fn desired_kept<'a>(&'a self, digest: &'a str) -> Fut<'a, Option<Vec<u8>>>;

    /// Every pin, oldest first: (maintenance time, digest).
    fn pins(&self) -> Fut<'_, Vec<(String, String)>>;
    /// The accounts that have ownership records.
    fn record_accounts(&self) -> Fut<'_, Vec<String>>;
    /// Writes a run as another journal had it, with its id (`runs import`): refused when
    /// the run exists; later runs are numbered after it.
    fn restore_run<'a>(&'a self, run: &'a ExportedRun) -> Fut<'a, ()>;

    /// Every ownership record of `account`.
    fn records<'a>(&'a self, account: &'a str) -> Fut<'a, Vec<Record>>;
    /// Writes (or replaces) the record of one resource.
    fn record<'a>(&'a self, account: &'a str, r: &'a Record) -> Fut<'a, ()>;
    /// Removes the record of one resource (deleted, or never made).
    fn forget<'a>(&'a self, account: &'a str, kind: &'a str, region: &'a str, name: &'a str) -> Fut<'a, ()>;
}

/// One shard's part of a run's plan: what the fleet-wide brake adds up.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShardPlan {
    /// `INDEX/COUNT`.
    pub shard: String,
    /// Accounts the shard planned, and how many of them would change.
    pub accounts: i64,
    pub changed: i64,
    /// Deletions planned in all.
    pub deletes: i64,
    /// Why the shard's plan could not be made, if it could not: the run must not go ahead.
    pub failed: Option<String>,
    pub planned_at: String,
}

/// One lease as the journal holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseRow {
    /// See [`lease_scope`].
    pub scope: String,
    pub holder: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// What a lease covers, as the journal names it: `fleet` for the whole fleet, `shard I/N`
/// for one shard (`--shard`).
pub fn lease_scope(shard: &crate::inventory::Shard) -> String {
    if shard.is_part() {
        format!("shard {shard}")
    } else {
        "fleet".into()
    }
}

/// The shard a lease scope covers; a name this release does not know covers the fleet.
fn scope_shard(scope: &str) -> crate::inventory::Shard {
    scope
        .strip_prefix("shard ")
        .and_then(|s| crate::inventory::Shard::parse(s).ok())
        .unwrap_or(crate::inventory::Shard::ALL)
}

/// A run with everything the journal holds of it, as `runs export` writes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExportedRun {
    pub run: RunRow,
    pub accounts: Vec<AccountRow>,
    /// (account, plan JSON) kept by the brake.
    pub plans: Vec<(String, String)>,
    /// (who, when).
    pub approval: Option<(String, String)>,
    /// (digest, how it was chosen) of the desired state it applies.
    pub desired: Option<(String, String)>,
}

/// One line of `runs export`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Exported {
    Run(Box<ExportedRun>),
    Pin {
        maintenance_at: String,
        digest: String,
    },
    /// A kept desired state, its bytes in hex.
    DesiredKept {
        digest: String,
        content_hex: String,
    },
    Records {
        account: String,
        records: Vec<Record>,
    },
}

/// Everything `j` holds, oldest run first, as `runs export` writes it.
pub async fn export(j: &dyn Journal) -> Result<Vec<Exported>> {
    let mut out = vec![];
    let mut digests = std::collections::BTreeSet::new();
    let mut runs = j.runs(usize::MAX).await?;
    runs.reverse();
    for run in runs {
        let id = run.id;
        let desired = j.run_desired(id).await?;
        if let Some((d, _)) = &desired {
            digests.insert(d.clone());
        }
        let (accounts, plans, approval) = (j.accounts(id).await?, j.plans(id).await?, j.approval(id).await?);
        out.push(Exported::Run(Box::new(ExportedRun { run, accounts, plans, approval, desired })));
    }
    for (maintenance_at, digest) in j.pins().await? {
        digests.insert(digest.clone());
        out.push(Exported::Pin { maintenance_at, digest });
    }
    for digest in digests {
        if let Some(bytes) = j.desired_kept(&digest).await? {
            let content_hex = bytes.iter().map(|b| format!("{b:02x}")).collect();
            out.push(Exported::DesiredKept { digest, content_hex });
        }
    }
    for account in j.record_accounts().await? {
        let records = j.records(&account).await?;
        out.push(Exported::Records { account, records });
    }
    Ok(out)
}

/// Writes `entries` (from [`export`]) into `j`, which must hold no run yet.
pub async fn import(j: &dyn Journal, entries: &[Exported]) -> Result<()> {
    if let Some(r) = j.runs(1).await?.first() {
        return Err(JournalError(format!("the journal to import into is not empty (it has run {})", r.id)));
    }
    for e in entries {
        match e {
            Exported::Run(r) => j.restore_run(r).await?,
            Exported::Pin { maintenance_at, digest } => j.pin(maintenance_at, digest).await?,
            Exported::DesiredKept { digest, content_hex } => {
                let bytes = (0..content_hex.len())
                    .step_by(2)
                    .map(|i| content_hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                    .collect::<Option<Vec<u8>>>()
                    .ok_or_else(|| JournalError(format!("kept desired state {digest}: content_hex is not hex")))?;
                j.keep_desired(digest, &bytes).await?
            }
            Exported::Records { account, records } => {
                for r in records {
                    j.record(account, r).await?;
                }
            }
        }
    }
    Ok(())
}

/// A run refused before it started: recorded with why, and no accounts.
pub async fn refuse_run(j: &dyn Journal, kind: &str, why: &str) -> Result<i64> {
    let id = j.start_run(kind, run_status::REFUSED, &[]).await?;
    j.finish_run(id, run_status::REFUSED, Some(why)).await?;
    Ok(id)
}

/// The lease on a fleet, or on one shard of it, held while a daemon runs or a CLI `apply`
/// works: one process at a time changes an account. Shards of one count hold leases of
/// their own side by side; a lease on the whole fleet, or on a shard of another count,
/// excludes every lease it overlaps. Renewed in the background; when a renewal fails or
/// someone else took the lease, [`Lease::lost`] says so and the holder stops.
pub struct Lease {
    journal: Arc<dyn Journal>,
    scope: String,
    holder: String,
    lost: Arc<std::sync::atomic::AtomicBool>,
    renewal: tokio::task::JoinHandle<()>,
}

/// How long a lease lasts without renewal: a holder that died frees the fleet after this.
pub const LEASE_SECONDS: i64 = 60;
/// How soon a renewal that failed is tried again.
const LEASE_RETRY_SECONDS: u64 = 5;

/// A lease someone else holds.
struct Held {
    scope: String,
    holder: String,
    until: String,
}

fn unix_text(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| t.to_string())
}

/// Takes or renews the lease of `scope` for `holder`, then makes sure nobody else holds a
/// live lease of an overlapping scope. Written first and checked after: of two processes
/// claiming overlapping scopes at once, each writes before it reads, so at least one sees
/// the other and gives its own up.
async fn claim(journal: &dyn Journal, scope: &str, holder: &str) -> Result<Option<Held>> {
    if let Some((other, until)) = journal.acquire_lease(scope, holder, LEASE_SECONDS).await? {
        return Ok(Some(Held { scope: scope.into(), holder: other, until }));
    }
    let now = chrono::Utc::now().timestamp();
    let mine = scope_shard(scope);
    for l in journal.leases().await? {
        if l.scope != scope && l.holder != holder && l.expires_at >= now && scope_shard(&l.scope).overlaps(&mine) {
            journal.release_lease(scope, holder).await?;
            return Ok(Some(Held { scope: l.scope, holder: l.holder, until: unix_text(l.expires_at) }));
        }
    }
    Ok(None)
}

impl Lease {
    /// Takes the lease on `shard` (the whole fleet: [`Shard::ALL`]) for `what` (`daemon`,
    /// `apply`), or says who holds what stands in the way.
    ///
    /// [`Shard::ALL`]: crate::inventory::Shard::ALL
    pub async fn take(
        journal: Arc<dyn Journal>,
        what: &str,
        shard: crate::inventory::Shard,
    ) -> std::result::Result<Lease, String> {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()))
            .unwrap_or_else(|| "this host".into());
        let scope = lease_scope(&shard);
        let holder = format!("cm-baseline {what} (pid {} on {host}, since {})", std::process::id(), now());
        let mut taken = claim(&*journal, &scope, &holder).await;
        if let Ok(Some(other)) = &taken {
            // A holder on this host whose process is gone (killed, crashed) frees the fleet
            // at once; elsewhere its lease runs out after LEASE_SECONDS.
            if holder_is_dead(&other.holder, &host) {
                tracing::warn!(holder = %other.holder, scope = %other.scope, "a lease was held by a process that is gone: taken over");
                if let Err(e) = journal.release_lease(&other.scope, &other.holder).await {
                    return Err(e.to_string());
                }
                taken = claim(&*journal, &scope, &holder).await;
            }
        }
        match taken {
            Ok(None) => {}
            Ok(Some(other)) => {
                let what = if other.scope == "fleet" { "the fleet".to_string() } else { other.scope.clone() };
                return Err(format!(
                    "{what} is in use by {} (its lease runs until {}, renewed while it works); \
                     stop it first, or wait for its lease to run out if it died",
                    other.holder, other.until
                ));
            }
            Err(e) => return Err(e.to_string()),
        }
        let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let renewal = {
            let (journal, scope, holder, lost) = (journal.clone(), scope.clone(), holder.clone(), lost.clone());
            tokio::spawn(async move {
                // A renewal that fails is tried again every few seconds while the lease still
                // runs (a journal busy for a moment does not cost it); once it could have run
                // out, another process may hold the fleet: lost.
                let mut renewed = std::time::Instant::now();
                let mut wait = LEASE_SECONDS as u64 / 3;
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
                    // Only its own lease is renewed: a process that claims an overlapping
                    // scope meanwhile finds this one live and gives up its own.
                    let renewed_now = journal.acquire_lease(&scope, &holder, LEASE_SECONDS).await;
                    match renewed_now
                        .map(|o| o.map(|(holder, _)| Held { scope: scope.clone(), holder, until: String::new() }))
                    {
                        Ok(None) => {
                            renewed = std::time::Instant::now();
                            wait = LEASE_SECONDS as u64 / 3;
                        }
                        Ok(Some(other)) => {
                            tracing::error!(holder = %other.holder, scope = %other.scope, "the lease was taken by another process");
                            lost.store(true, std::sync::atomic::Ordering::SeqCst);
                        }
                        Err(e) if renewed.elapsed().as_secs() + LEASE_RETRY_SECONDS < LEASE_SECONDS as u64 => {
                            tracing::warn!(error = %e, "cannot renew the lease yet: trying again");
                            wait = LEASE_RETRY_SECONDS;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "cannot renew the lease before it runs out");
                            lost.store(true, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                }
            })
        };
        Ok(Lease { journal, scope, holder, lost, renewal })
    }

    /// Whether the lease could not be kept: nothing more may be changed.
    pub fn lost(&self) -> bool {
        self.lost.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The flag behind [`lost`](Lease::lost), for whoever works under the lease.
    pub fn lost_flag(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.lost.clone()
    }

    /// Gives the lease up.
    pub async fn release(self) -> Result<()> {
        self.renewal.abort();
        self.journal.release_lease(&self.scope, &self.holder).await
    }
}

/// Whether a lease holder (as [`Lease::take`] names it) ran on `host` in a process that no
/// longer exists.
fn holder_is_dead(holder: &str, host: &str) -> bool {
    let Some((_, rest)) = holder.split_once("(pid ") else { return false };
    let Some((pid, rest)) = rest.split_once(" on ") else { return false };
    let Some((their_host, _)) = rest.split_once(", since ") else { return false };
    let Ok(pid) = pid.parse::<u32>() else { return false };
    their_host == host && pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// The journal file of a state directory.
pub fn sqlite_path(state_dir: &Path) -> std::path::PathBuf {
    state_dir.join("journal.sqlite")
}

/// Where the journal is kept: `--journal` / `CM_JOURNAL`.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    /// `sqlite:PATH`; by default `<state dir>/journal.sqlite`.
    Sqlite(std::path::PathBuf),
    /// `dynamodb:TABLE` or `dynamodb:TABLE,s3://BUCKET/PREFIX` (large values in S3), in the
    /// region of the AWS environment (`AWS_REGION`).
    DynamoDb { table: String, s3: Option<dynamodb::S3Location> },
}

impl Location {
    /// Parses `sqlite:PATH`, `dynamodb:TABLE` or `dynamodb:TABLE,s3://BUCKET[/PREFIX]`.
    pub fn parse(text: &str) -> std::result::Result<Location, String> {
        let hint = "expected sqlite:PATH, dynamodb:TABLE or dynamodb:TABLE,s3://BUCKET/PREFIX";
        if let Some(path) = text.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err(format!("`{text}`: no path; {hint}"));
            }
            return Ok(Location::Sqlite(path.into()));
        }
        let Some(rest) = text.strip_prefix("dynamodb:") else {
            return Err(format!("`{text}`: unknown journal store; {hint}"));
        };
        let (table, s3) = match rest.split_once(',') {
            Some((t, s3)) => (t, Some(s3)),
            None => (rest, None),
        };
        // DynamoDB's rule for table names.
        if table.len() < 3
            || table.len() > 255
            || !table.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(format!(
                "`{table}` is not a DynamoDB table name (3 to 255 of a-z, A-Z, 0-9, `_`, `-`, `.`); {hint}"
            ));
        }
        let s3 = match s3 {
            None => None,
            Some(uri) => {
                let Some(rest) = uri.strip_prefix("s3://").filter(|r| !r.is_empty() && !r.starts_with('/')) else {
                    return Err(format!("`{uri}`: expected s3://BUCKET/PREFIX; {hint}"));
                };
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                let prefix =
                    if prefix.is_empty() || prefix.ends_with('/') { prefix.to_string() } else { format!("{prefix}/") };
                Some(dynamodb::S3Location { bucket: bucket.to_string(), prefix })
            }
        };
        Ok(Location::DynamoDb { table: table.to_string(), s3 })
    }

    /// The default: SQLite in the state directory.
    pub fn in_state_dir(state_dir: &Path) -> Location {
        Location::Sqlite(sqlite_path(state_dir))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            Location::DynamoDb { table, s3: None } => write!(f, "dynamodb:{table}"),
            Location::DynamoDb { table, s3: Some(l) } => write!(f, "dynamodb:{table},s3://{}/{}", l.bucket, l.prefix),
        }
    }
}

/// Opens the journal at `at`. A SQLite file that does not exist is created when `create`
/// (a command that writes), else `Ok(None)` (a command that only reads creates nothing). A
/// DynamoDB table is never created here: it must exist.
pub async fn open_at(at: &Location, create: bool) -> Result<Option<Arc<dyn Journal>>> {
    match at {
        Location::Sqlite(path) => {
            if !create && !path.exists() {
                return Ok(None);
            }
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| JournalError(format!("cannot create the directory {}: {e}", dir.display())))?;
            }
            Ok(Some(Arc::new(SqliteJournal::open(path)?)))
        }
        Location::DynamoDb { table, s3 } => {
            let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(8))
                .timeout_config(
                    aws_config::timeout::TimeoutConfig::builder()
                        .connect_timeout(std::time::Duration::from_secs(10))
                        .operation_attempt_timeout(std::time::Duration::from_secs(30))
                        .build(),
                )
                .load()
                .await;
            Ok(Some(Arc::new(dynamodb::DynamoJournal::open(&sdk, table, s3.clone()).await?)))
        }
    }
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_locations_are_parsed_and_bad_ones_say_what_is_expected() {
        assert_eq!(Location::parse("sqlite:/var/lib/j.sqlite"), Ok(Location::Sqlite("/var/lib/j.sqlite".into())));
        assert_eq!(
            Location::parse("dynamodb:cm-journal"),
            Ok(Location::DynamoDb { table: "cm-journal".into(), s3: None })
        );
        let with_s3 = Location::parse("dynamodb:cm-journal,s3://bucket/a/b").unwrap();
        let s3 = Some(dynamodb::S3Location { bucket: "bucket".into(), prefix: "a/b/".into() });
        assert_eq!(with_s3, Location::DynamoDb { table: "cm-journal".into(), s3 });
        assert_eq!(with_s3.to_string(), "dynamodb:cm-journal,s3://bucket/a/b/");
        let bare = Location::parse("dynamodb:t-1,s3://bucket").unwrap();
        assert_eq!(bare.to_string(), "dynamodb:t-1,s3://bucket/");
        for (bad, says) in [
            ("postgres:x", "unknown journal store"),
            ("sqlite:", "no path"),
            ("dynamodb:a", "is not a DynamoDB table name"),
            ("dynamodb:bad/name", "is not a DynamoDB table name"),
            ("dynamodb:table,bucket", "expected s3://BUCKET/PREFIX"),
        ] {
            let e = Location::parse(bad).unwrap_err();
            assert!(e.contains(says) && e.contains("expected sqlite:PATH"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_holder_on_this_host_whose_process_is_gone_is_dead() {
        let me = std::process::id();
        assert!(!holder_is_dead(&format!("cm-baseline daemon (pid {me} on h1, since x)"), "h1"), "this process");
        // pid_max is far below this on Linux: no such process.
        assert!(holder_is_dead("cm-baseline daemon (pid 4194999 on h1, since x)", "h1"));
        assert!(!holder_is_dead("cm-baseline daemon (pid 4194999 on h2, since x)", "h1"), "another host: expiry only");
        assert!(!holder_is_dead("something else", "h1"));
    }
}
