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
}
