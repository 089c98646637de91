//! The journal: the tool's own memory, kept outside AWS. It holds every run and, per
//! account, what happened (so that a daemon killed mid-run resumes the same run and no
//! account is done twice), and the **ownership records**: what this tool made, wrote or
//! took over in each account. A record is the proof of ownership for what cannot carry the
//! `cm:Members` tag (an account setting, an IAM group, a Config recorder), and of a create
//! cut short before its tag was written.
//!
//! The daemon, the CLI (`plan`, `apply`, `runs`) and the planner's inputs reach it only
//! through the [`Journal`] trait, so that the store (SQLite on one host today) can be
//! another (a DynamoDB table on ECS) without the rest of the code knowing. Every method is
//! asynchronous and every error is returned: a journal that cannot be written stops what
//! depends on it, it is never ignored.

mod sqlite;

use serde::Serialize;
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

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunRow {
    pub id: i64,
    pub kind: String,
    pub status: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
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
}

/// One resource of one account that this tool made, wrote or took over.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
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

pub type Result<T> = std::result::Result<T, JournalError>;

/// What every journal method returns.
pub type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// The journal's interface: runs, their accounts, and ownership records.
pub trait Journal: Send + Sync + std::fmt::Debug {
    /// Starts a run over `accounts`, all pending; returns its id.
    fn start_run<'a>(&'a self, kind: &'a str, status: &'a str, accounts: &'a [String]) -> Fut<'a, i64>;
    fn set_run_status<'a>(&'a self, id: i64, status: &'a str, detail: Option<&'a str>) -> Fut<'a, ()>;
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
    /// finish: the stop deadline passed, or the process died); returns how many.
    fn requeue_running(&self, run_id: i64) -> Fut<'_, usize>;
    /// Closes every unfinished or braked run of `kind` older than `newer`: a new run covers
    /// the fleet again, so an old one must never be resumed (or approved) after it. Their
    /// open accounts are recorded skipped. Returns the ids of the runs closed.
    fn supersede_older<'a>(&'a self, kind: &'a str, newer: i64) -> Fut<'a, Vec<i64>>;
    /// Marks an account started.
    fn account_started<'a>(&'a self, run_id: i64, account: &'a str) -> Fut<'a, ()>;
    /// Records an account's outcome with its report.
    fn account_finished<'a>(&'a self, run_id: i64, o: &'a Outcome<'a>) -> Fut<'a, ()>;

    /// Every ownership record of `account`.
    fn records<'a>(&'a self, account: &'a str) -> Fut<'a, Vec<Record>>;
    /// Writes (or replaces) the record of one resource.
    fn record<'a>(&'a self, account: &'a str, r: &'a Record) -> Fut<'a, ()>;
    /// Removes the record of one resource (deleted, or never made).
    fn forget<'a>(&'a self, account: &'a str, kind: &'a str, region: &'a str, name: &'a str) -> Fut<'a, ()>;
}

/// A run refused before it started: recorded with why, and no accounts.
pub async fn refuse_run(j: &dyn Journal, kind: &str, why: &str) -> Result<i64> {
    let id = j.start_run(kind, run_status::REFUSED, &[]).await?;
    j.finish_run(id, run_status::REFUSED, Some(why)).await?;
    Ok(id)
}

/// The journal file of a state directory.
pub fn sqlite_path(state_dir: &Path) -> std::path::PathBuf {
    state_dir.join("journal.sqlite")
}

/// Opens (creating when missing) the SQLite journal of `state_dir`.
pub fn open(state_dir: &Path) -> Result<Arc<dyn Journal>> {
    std::fs::create_dir_all(state_dir)
        .map_err(|e| JournalError(format!("cannot create the state directory {}: {e}", state_dir.display())))?;
    Ok(Arc::new(SqliteJournal::open(&sqlite_path(state_dir))?))
}

/// Opens the journal of `state_dir` if there is one; a command that only reads (`plan`)
/// creates nothing.
pub fn open_existing(state_dir: &Path) -> Result<Option<Arc<dyn Journal>>> {
    let path = sqlite_path(state_dir);
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(Arc::new(SqliteJournal::open(&path)?)))
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
