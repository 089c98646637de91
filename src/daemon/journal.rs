//! The journal: every run and, per account, what happened, in SQLite. It is written as
//! each account finishes, so that a daemon killed mid-run resumes the same run after a
//! restart: accounts already done are not done again, and none is forgotten.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::path::Path;
use std::sync::Mutex;

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

pub struct Journal {
    db: Mutex<Connection>,
}

pub type Result<T> = std::result::Result<T, rusqlite::Error>;

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Journal {
    pub fn open(path: &Path) -> Result<Self> {
        let db = Connection::open(path)?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS runs (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 kind TEXT NOT NULL,
                 status TEXT NOT NULL,
                 started_at TEXT NOT NULL,
                 finished_at TEXT,
                 detail TEXT
             );
             CREATE TABLE IF NOT EXISTS run_accounts (
                 run_id INTEGER NOT NULL REFERENCES runs(id),
                 account_id TEXT NOT NULL,
                 status TEXT NOT NULL,
                 attempts INTEGER NOT NULL DEFAULT 0,
                 done_count INTEGER NOT NULL DEFAULT 0,
                 changes INTEGER NOT NULL DEFAULT 0,
                 api_calls INTEGER NOT NULL DEFAULT 0,
                 error TEXT,
                 report TEXT,
                 updated_at TEXT NOT NULL,
                 PRIMARY KEY (run_id, account_id)
             );",
        )?;
        Ok(Self { db: Mutex::new(db) })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        f(&mut self.db.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Starts a run over `accounts`, all pending.
    pub fn start_run(&self, kind: &str, status: &str, accounts: &[String]) -> Result<i64> {
        self.with(|db| {
            let tx = db.transaction()?;
            tx.execute(
                "INSERT INTO runs (kind, status, started_at) VALUES (?1, ?2, ?3)",
                params![kind, status, now()],
            )?;
            let id = tx.last_insert_rowid();
            for a in accounts {
                tx.execute(
                    "INSERT INTO run_accounts (run_id, account_id, status, updated_at) VALUES (?1, ?2, ?3, ?4)",
                    params![id, a, PENDING, now()],
                )?;
            }
            tx.commit()?;
            Ok(id)
        })
    }

    /// A refused run: recorded with why, and no accounts.
    pub fn refuse_run(&self, kind: &str, why: &str) -> Result<i64> {
        let id = self.start_run(kind, run_status::REFUSED, &[])?;
        self.finish_run(id, run_status::REFUSED, Some(why))?;
        Ok(id)
    }

    pub fn set_run_status(&self, id: i64, status: &str, detail: Option<&str>) -> Result<()> {
        self.with(|db| {
            db.execute(
                "UPDATE runs SET status = ?2, detail = COALESCE(?3, detail) WHERE id = ?1",
                params![id, status, detail],
            )?;
            Ok(())
        })
    }

    pub fn finish_run(&self, id: i64, status: &str, detail: Option<&str>) -> Result<()> {
        self.with(|db| {
            db.execute(
                "UPDATE runs SET status = ?2, finished_at = ?3, detail = COALESCE(?4, detail) WHERE id = ?1",
                params![id, status, now(), detail],
            )?;
            Ok(())
        })
    }

    /// The run to resume at start: the latest one not finished (planning, running,
    /// stopped or approved).
    pub fn unfinished_run(&self) -> Result<Option<RunRow>> {
        self.with(|db| {
            db.query_row(
                "SELECT id, kind, status, started_at, finished_at, detail FROM runs
                 WHERE status IN ('planning', 'running', 'stopped', 'approved') ORDER BY id DESC LIMIT 1",
                [],
                run_row,
            )
            .optional()
        })
    }

    pub fn run(&self, id: i64) -> Result<Option<RunRow>> {
        self.with(|db| {
            db.query_row(
                "SELECT id, kind, status, started_at, finished_at, detail FROM runs WHERE id = ?1",
                [id],
                run_row,
            )
            .optional()
        })
    }

    pub fn runs(&self, limit: usize) -> Result<Vec<RunRow>> {
        self.with(|db| {
            let mut st = db.prepare(
                "SELECT id, kind, status, started_at, finished_at, detail FROM runs ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = st.query_map([limit as i64], run_row)?.collect::<Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    pub fn accounts(&self, run_id: i64) -> Result<Vec<AccountRow>> {
        self.with(|db| {
            let mut st = db.prepare(
                "SELECT account_id, status, attempts, done_count, changes, api_calls, error, report
                 FROM run_accounts WHERE run_id = ?1 ORDER BY account_id",
            )?;
            let rows = st
                .query_map([run_id], |r| {
                    Ok(AccountRow {
                        account_id: r.get(0)?,
                        status: r.get(1)?,
                        attempts: r.get(2)?,
                        done_count: r.get(3)?,
                        changes: r.get(4)?,
                        api_calls: r.get(5)?,
                        error: r.get(6)?,
                        report: r.get(7)?,
                    })
                })?
                .collect::<Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Records that an account is not worked on in this run, and why.
    pub fn account_skipped(&self, run_id: i64, account: &str, why: &str) -> Result<()> {
        self.with(|db| {
            db.execute(
                "UPDATE run_accounts SET status = ?3, error = ?4, updated_at = ?5 WHERE run_id = ?1 AND account_id = ?2",
                params![run_id, account, SKIPPED, why, now()],
            )?;
            Ok(())
        })
    }

    /// Puts the accounts of `run_id` recorded running back to pending (they did not
    /// finish: the stop deadline passed, or the process died); returns how many.
    pub fn requeue_running(&self, run_id: i64) -> Result<usize> {
        self.with(|db| {
            db.execute(
                "UPDATE run_accounts SET status = ?2, updated_at = ?3 WHERE run_id = ?1 AND status = ?4",
                params![run_id, PENDING, now(), RUNNING],
            )
        })
    }

    /// Closes every unfinished or braked run of `kind` older than `newer`: a new run covers
    /// the fleet again, so an old one must never be resumed (or approved) after it. Their
    /// open accounts are recorded skipped. Returns the ids of the runs closed.
    pub fn supersede_older(&self, kind: &str, newer: i64) -> Result<Vec<i64>> {
        self.with(|db| {
            let tx = db.transaction()?;
            let ids: Vec<i64> = {
                let mut st = tx.prepare(
                    "SELECT id FROM runs WHERE kind = ?1 AND id < ?2
                     AND status IN ('planning', 'running', 'stopped', 'approved', 'braked')",
                )?;
                let ids = st.query_map(params![kind, newer], |r| r.get(0))?.collect::<Result<Vec<i64>>>()?;
                ids
            };
            let why = format!("superseded by run {newer}");
            for id in &ids {
                tx.execute(
                    "UPDATE run_accounts SET status = ?2, error = ?3, updated_at = ?4
                     WHERE run_id = ?1 AND status NOT IN ('done', 'failed', 'skipped')",
                    params![id, SKIPPED, why, now()],
                )?;
                tx.execute(
                    "UPDATE runs SET status = ?2, finished_at = ?3, detail = ?4 WHERE id = ?1",
                    params![id, run_status::SUPERSEDED, now(), why],
                )?;
            }
            tx.commit()?;
            Ok(ids)
        })
    }

    /// Marks an account started.
    pub fn account_started(&self, run_id: i64, account: &str) -> Result<()> {
        self.with(|db| {
            db.execute(
                "UPDATE run_accounts SET status = ?3, attempts = attempts + 1, updated_at = ?4
                 WHERE run_id = ?1 AND account_id = ?2",
                params![run_id, account, RUNNING, now()],
            )?;
            Ok(())
        })
    }

    /// Records an account's outcome with its report.
    pub fn account_finished(&self, run_id: i64, o: &Outcome<'_>) -> Result<()> {
        self.with(|db| {
            db.execute(
                "UPDATE run_accounts SET status = ?3, done_count = done_count + (?3 = 'done'), changes = ?4,
                 api_calls = ?5, error = ?6, report = ?7, updated_at = ?8 WHERE run_id = ?1 AND account_id = ?2",
                params![run_id, o.account, o.status, o.changes as i64, o.api_calls as i64, o.error, o.report, now()],
            )?;
            Ok(())
        })
    }
}

fn run_row(r: &rusqlite::Row<'_>) -> Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        status: r.get(2)?,
        started_at: r.get(3)?,
        finished_at: r.get(4)?,
        detail: r.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_resumed_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite");
        let accounts: Vec<String> =
            ["111111111111", "222222222222", "333333333333"].iter().map(|s| s.to_string()).collect();
        {
            let j = Journal::open(&path).unwrap();
            let id = j.start_run("maintenance", run_status::RUNNING, &accounts).unwrap();
            j.account_started(id, "111111111111").unwrap();
            let o =
                Outcome { account: "111111111111", status: DONE, changes: 3, api_calls: 40, error: None, report: "{}" };
            j.account_finished(id, &o).unwrap();
            j.account_started(id, "222222222222").unwrap();
            // The process dies here.
        }
        let j = Journal::open(&path).unwrap();
        let run = j.unfinished_run().unwrap().unwrap();
        let rows = j.accounts(run.id).unwrap();
        let status: Vec<(&str, &str)> = rows.iter().map(|r| (r.account_id.as_str(), r.status.as_str())).collect();
        assert_eq!(status, [("111111111111", "done"), ("222222222222", "running"), ("333333333333", "pending")]);
        assert_eq!(rows[0].done_count, 1);
        j.finish_run(run.id, run_status::DONE, None).unwrap();
        assert!(j.unfinished_run().unwrap().is_none());
        assert_eq!(j.runs(10).unwrap()[0].status, "done");
    }

    fn statuses(j: &Journal, run: i64) -> Vec<(String, String, Option<String>)> {
        j.accounts(run).unwrap().into_iter().map(|r| (r.account_id, r.status, r.error)).collect()
    }

    #[test]
    fn accounts_cut_off_go_back_to_pending_and_gone_ones_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("journal.sqlite")).unwrap();
        let accounts: Vec<String> = ["111111111111", "222222222222", "333333333333"].map(String::from).to_vec();
        let id = j.start_run("maintenance", run_status::RUNNING, &accounts).unwrap();
        j.account_started(id, "111111111111").unwrap();
        j.account_started(id, "222222222222").unwrap();
        let o = Outcome { account: "222222222222", status: DONE, changes: 1, api_calls: 9, error: None, report: "{}" };
        j.account_finished(id, &o).unwrap();
        // The stop deadline passes with 111111111111 still in flight.
        assert_eq!(j.requeue_running(id).unwrap(), 1);
        j.account_skipped(id, "333333333333", "no longer in the Organization").unwrap();
        let pending = |s: &str| (s.to_string(), PENDING.to_string(), None);
        assert_eq!(
            statuses(&j, id),
            [
                pending("111111111111"),
                ("222222222222".into(), DONE.into(), None),
                ("333333333333".into(), SKIPPED.into(), Some("no longer in the Organization".into())),
            ]
        );
        let open: Vec<String> =
            j.accounts(id).unwrap().into_iter().filter(|r| is_open(&r.status)).map(|r| r.account_id).collect();
        assert_eq!(open, ["111111111111"]);
        assert_eq!(j.accounts(id).unwrap()[0].attempts, 1, "requeued, its attempt is still counted");
    }

    #[test]
    fn a_newer_run_supersedes_older_unfinished_ones_so_they_are_never_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("journal.sqlite")).unwrap();
        let accounts: Vec<String> = ["111111111111", "222222222222"].map(String::from).to_vec();
        let stopped = j.start_run("maintenance", run_status::RUNNING, &accounts).unwrap();
        let o = Outcome { account: "111111111111", status: DONE, changes: 1, api_calls: 9, error: None, report: "{}" };
        j.account_finished(stopped, &o).unwrap();
        j.finish_run(stopped, run_status::STOPPED, Some("1 account(s) not done")).unwrap();
        let braked = j.start_run("maintenance", run_status::PLANNING, &accounts).unwrap();
        j.set_run_status(braked, run_status::BRAKED, Some("too many")).unwrap();
        let done = j.start_run("maintenance", run_status::RUNNING, &[]).unwrap();
        j.finish_run(done, run_status::DONE, None).unwrap();
        assert_eq!(j.unfinished_run().unwrap().map(|r| r.id), Some(stopped), "the stale run would be resumed");

        let newer = j.start_run("maintenance", run_status::PLANNING, &accounts).unwrap();
        assert_eq!(j.supersede_older("maintenance", newer).unwrap(), [stopped, braked]);
        assert_eq!(j.unfinished_run().unwrap().map(|r| r.id), Some(newer));
        for old in [stopped, braked] {
            let r = j.run(old).unwrap().unwrap();
            assert_eq!(
                (r.status.as_str(), r.detail.as_deref()),
                ("superseded", Some(&*format!("superseded by run {newer}")))
            );
            assert!(r.finished_at.is_some());
        }
        let why = Some(format!("superseded by run {newer}"));
        assert_eq!(
            statuses(&j, stopped),
            [("111111111111".into(), DONE.into(), None), ("222222222222".into(), SKIPPED.into(), why)]
        );
        assert!(j.accounts(braked).unwrap().iter().all(|r| r.status == SKIPPED));
        assert_eq!(j.run(done).unwrap().unwrap().status, "done", "finished runs are left as they are");
        j.finish_run(newer, run_status::DONE, None).unwrap();
        assert!(j.unfinished_run().unwrap().is_none());
    }
}
