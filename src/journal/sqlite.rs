//! The journal in SQLite, for a single host (systemd): one file in the state directory, in
//! WAL mode, every write synchronous.

use super::run_status;
use super::{now, AccountRow, Fut, Journal, JournalError, Outcome, Record, RunRow, PENDING, RUNNING, SKIPPED};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::Mutex;

type Sql<T> = std::result::Result<T, rusqlite::Error>;

impl From<rusqlite::Error> for JournalError {
    fn from(e: rusqlite::Error) -> Self {
        JournalError(e.to_string())
    }
}

#[derive(Debug)]
pub struct SqliteJournal {
    db: Mutex<Connection>,
}

impl SqliteJournal {
    pub fn open(path: &Path) -> super::Result<Self> {
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
             );
             CREATE TABLE IF NOT EXISTS approvals (
                 run_id INTEGER PRIMARY KEY REFERENCES runs(id),
                 approved_by TEXT NOT NULL,
                 approved_at TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS plans (
                 run_id INTEGER NOT NULL REFERENCES runs(id),
                 account_id TEXT NOT NULL,
                 plan TEXT NOT NULL,
                 PRIMARY KEY (run_id, account_id)
             );
             CREATE TABLE IF NOT EXISTS lease (
                 name TEXT PRIMARY KEY,
                 holder TEXT NOT NULL,
                 expires_at INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS pins (
                 maintenance_at TEXT PRIMARY KEY,
                 digest TEXT NOT NULL,
                 pinned_at TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS run_desired (
                 run_id INTEGER PRIMARY KEY REFERENCES runs(id),
                 digest TEXT NOT NULL,
                 how TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS records (
                 account_id TEXT NOT NULL,
                 kind TEXT NOT NULL,
                 region TEXT NOT NULL,
                 name TEXT NOT NULL,
                 feature TEXT NOT NULL,
                 how TEXT NOT NULL,
                 at TEXT NOT NULL,
                 PRIMARY KEY (account_id, kind, region, name)
             );",
        )?;
        Ok(Self { db: Mutex::new(db) })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Sql<T>) -> super::Result<T> {
        Ok(f(&mut self.db.lock().unwrap_or_else(|p| p.into_inner()))?)
    }
}

impl Journal for SqliteJournal {
    /// Starts a run over `accounts`, all pending.
    fn start_run<'a>(&'a self, kind: &'a str, status: &'a str, accounts: &'a [String]) -> Fut<'a, i64> {
        Box::pin(async move {
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
        })
    }

    fn set_run_status<'a>(&'a self, id: i64, status: &'a str, detail: Option<&'a str>) -> Fut<'a, ()> {
        Box::pin(async move {
            self.with(|db| {
                db.execute(
                    "UPDATE runs SET status = ?2, detail = COALESCE(?3, detail) WHERE id = ?1",
                    params![id, status, detail],
                )?;
                Ok(())
            })
        })
    }

    fn finish_run<'a>(&'a self, id: i64, status: &'a str, detail: Option<&'a str>) -> Fut<'a, ()> {
        Box::pin(async move {
            self.with(|db| {
                db.execute(
                    "UPDATE runs SET status = ?2, finished_at = ?3, detail = COALESCE(?4, detail) WHERE id = ?1",
                    params![id, status, now(), detail],
                )?;
                Ok(())
            })
        })
    }

    /// The run to resume at start: the latest one not finished (planning, running,
    /// stopped or approved).
    fn unfinished_run(&self) -> Fut<'_, Option<RunRow>> {
        Box::pin(async move {
            self.with(|db| {
                db.query_row(
                    "SELECT id, kind, status, started_at, finished_at, detail FROM runs
                     WHERE status IN ('planning', 'running', 'stopped', 'approved') ORDER BY id DESC LIMIT 1",
                    [],
                    run_row,
                )
                .optional()
            })
        })
    }

    fn run(&self, id: i64) -> Fut<'_, Option<RunRow>> {
        Box::pin(async move {
            self.with(|db| {
                db.query_row(
                    "SELECT id, kind, status, started_at, finished_at, detail FROM runs WHERE id = ?1",
                    [id],
                    run_row,
                )
                .optional()
            })
        })
    }

    fn runs(&self, limit: usize) -> Fut<'_, Vec<RunRow>> {
        Box::pin(async move {
            self.with(|db| {
                let mut st = db.prepare(
                    "SELECT id, kind, status, started_at, finished_at, detail FROM runs ORDER BY id DESC LIMIT ?1",
                )?;
                let rows = st.query_map([limit as i64], run_row)?.collect::<Sql<Vec<_>>>()?;
                Ok(rows)
            })
        })
    }

    fn accounts(&self, run_id: i64) -> Fut<'_, Vec<AccountRow>> {
        Box::pin(async move {
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
                    .collect::<Sql<Vec<_>>>()?;
                Ok(rows)
            })
        })
    }

    /// Records that an account is not worked on in this run, and why.
    fn account_skipped<'a>(&'a self, run_id: i64, account: &'a str, why: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            self.with(|db| {
                db.execute(
                    "UPDATE run_accounts SET status = ?3, error = ?4, updated_at = ?5 WHERE run_id = ?1 AND account_id = ?2",
                    params![run_id, account, SKIPPED, why, now()],
                )?;
                Ok(())
            })
        })
    }

    /// Puts the accounts of `run_id` recorded running back to pending (they did not
    /// finish: the stop deadline passed, or the process died); returns how many.
    fn requeue_running(&self, run_id: i64) -> Fut<'_, usize> {
        Box::pin(async move {
            self.with(|db| {
                db.execute(
                    "UPDATE run_accounts SET status = ?2, updated_at = ?3 WHERE run_id = ?1 AND status = ?4",
                    params![run_id, PENDING, now(), RUNNING],
                )
            })
        })
    }

    /// Closes every unfinished or braked run of `kind` older than `newer`: a new run covers
    /// the fleet again, so an old one must never be resumed (or approved) after it. Their
    /// open accounts are recorded skipped. Returns the ids of the runs closed.
    fn supersede_older<'a>(&'a self, kind: &'a str, newer: i64) -> Fut<'a, Vec<i64>> {
        Box::pin(async move {
            self.with(|db| {
                let tx = db.transaction()?;
                let ids: Vec<i64> = {
                    let mut st = tx.prepare(
                        "SELECT id FROM runs WHERE kind = ?1 AND id < ?2
                         AND status IN ('planning', 'running', 'stopped', 'approved', 'braked')",
                    )?;
                    let ids = st.query_map(params![kind, newer], |r| r.get(0))?.collect::<Sql<Vec<i64>>>()?;
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
        })
    }

    /// Marks an account started.
    fn account_started<'a>(&'a self, run_id: i64, account: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            self.with(|db| {
                db.execute(
                    "UPDATE run_accounts SET status = ?3, attempts = attempts + 1, updated_at = ?4
                     WHERE run_id = ?1 AND account_id = ?2",
                    params![run_id, account, RUNNING, now()],
                )?;
                Ok(())
            })
        })
    }

    /// Records an account's outcome with its report.
    fn account_finished<'a>(&'a self, run_id: i64, o: &'a Outcome<'a>) -> Fut<'a, ()> {
        Box::pin(async move {
            self.with(|db| {
                db.execute(
                    "UPDATE run_accounts SET status = ?3, done_count = done_count + (?3 = 'done'), changes = ?4,
                     api_calls = ?5, error = ?6, report = ?7, updated_at = ?8 WHERE run_id = ?1 AND account_id = ?2",
                    params![
                        run_id,
                        o.account,
                        o.status,
                        o.changes as i64,
                        o.api_calls as i64,
                        o.error,
                        o.report,
                        now()
                    ],
                )?;
                Ok(())
            })
        })
    }
    fn approve<'a>(&'a self, id: i64, by: &'a str) -> Fut<'a, bool> {
        Box::pin(async move {
            self.with(|db| {
                let tx = db.transaction()?;
                let n = tx.execute(
                    "UPDATE runs SET status = ?2 WHERE id = ?1 AND status = ?3",
                    params![id, run_status::APPROVED, run_status::BRAKED],
                )?;
                if n == 1 {
                    tx.execute(
                        "INSERT OR REPLACE INTO approvals (run_id, approved_by, approved_at) VALUES (?1, ?2, ?3)",
                        params![id, by, now()],
                    )?;
                }
                tx.commit()?;
                Ok(n == 1)
            })
        })
    }

    fn approval(&self, id: i64) -> Fut<'_, Option<(String, String)>> {
        Box::pin(async move {
            self.with(|db| {
                db.query_row("SELECT approved_by, approved_at FROM approvals WHERE run_id = ?1", [id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
            })
        })
    }

    fn save_plans<'a>(&'a self, run_id: i64, plans: &'a [(String, String)]) -> Fut<'a, ()> {
        Box::pin(async move {
            self.with(|db| {
                let tx = db.transaction()?;
                tx.execute("DELETE FROM plans WHERE run_id = ?1", [run_id])?;
                for (account, plan) in plans {
                    tx.execute(
                        "INSERT INTO plans (run_id, account_id, plan) VALUES (?1, ?2, ?3)",
                        params![run_id, account, plan],
                    )?;
                }
                tx.commit()
            })
        })
    }

    fn plans(&self, run_id: i64) -> Fut<'_, Vec<(String, String)>> {
        Box::pin(async move {
            self.with(|db| {
                let mut st = db.prepare("SELECT account_id, plan FROM plans WHERE run_id = ?1 ORDER BY account_id")?;
                let rows = st.query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Sql<Vec<_>>>()?;
                Ok(rows)
            })
        })
    }

    fn acquire_lease<'a>(&'a self, holder: &'a str, ttl_secs: i64) -> Fut<'a, Option<(String, String)>> {
        Box::pin(async move {
            self.with(|db| {
                let now = chrono::Utc::now().timestamp();
                let n = db.execute(
                    "INSERT INTO lease (name, holder, expires_at) VALUES ('fleet', ?1, ?2)
                     ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                     WHERE lease.holder = excluded.holder OR lease.expires_at < ?3",
                    params![holder, now + ttl_secs, now],
                )?;
                if n == 1 {
                    return Ok(None);
                }
                let (other, until): (String, i64) =
                    db.query_row("SELECT holder, expires_at FROM lease WHERE name = 'fleet'", [], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?;
                let until = chrono::DateTime::from_timestamp(until, 0)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_else(|| until.to_string());
                Ok(Some((other, until)))
            })
        })
    }

    fn release_lease<'a>(&'a self, holder: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            self.with(|db| {
                db.execute("DELETE FROM lease WHERE name = 'fleet' AND holder = ?1", [holder])?;
                Ok(())
            })
        })
    }

    fn pin<'a>(&'a self, maintenance_at: &'a str, digest: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            self.with(|db| {
                db.execute(
                    "INSERT OR REPLACE INTO pins (maintenance_at, digest, pinned_at) VALUES (?1, ?2, ?3)",
                    params![maintenance_at, digest, now()],
                )?;
                Ok(())
            })
        })
    }

    fn pin_between<'a>(&'a self, from: &'a str, to: &'a str) -> Fut<'a, Option<(String, String)>> {
        Box::pin(async move {
            self.with(|db| {
                db.query_row(
                    "SELECT maintenance_at, digest FROM pins WHERE maintenance_at >= ?1 AND maintenance_at <= ?2
                     ORDER BY maintenance_at DESC LIMIT 1",
                    params![from, to],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
            })
        })
    }

    fn set_run_desired<'a>(&'a self, run_id: i64, digest: &'a str, how: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            self.with(|db| {
                db.execute(
                    "INSERT OR REPLACE INTO run_desired (run_id, digest, how) VALUES (?1, ?2, ?3)",
                    params![run_id, digest, how],
                )?;
                Ok(())
            })
        })
    }

    fn run_desired(&self, run_id: i64) -> Fut<'_, Option<(String, String)>> {
        Box::pin(async move {
            self.with(|db| {
                db.query_row("SELECT digest, how FROM run_desired WHERE run_id = ?1", [run_id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
            })
        })
    }

    fn records<'a>(&'a self, account: &'a str) -> Fut<'a, Vec<Record>> {
        Box::pin(async move {
            self.with(|db| {
                let mut st = db.prepare(
                    "SELECT kind, region, name, feature, how, at FROM records WHERE account_id = ?1
                     ORDER BY kind, region, name",
                )?;
                let rows = st
                    .query_map([account], |r| {
                        Ok(Record {
                            kind: r.get(0)?,
                            region: r.get(1)?,
                            name: r.get(2)?,
                            feature: r.get(3)?,
                            how: r.get(4)?,
                            at: r.get(5)?,
                        })
                    })?
                    .collect::<Sql<Vec<_>>>()?;
                Ok(rows)
            })
        })
    }

    fn record<'a>(&'a self, account: &'a str, r: &'a Record) -> Fut<'a, ()> {
        Box::pin(async move {
            self.with(|db| {
                db.execute(
                    "INSERT OR REPLACE INTO records (account_id, kind, region, name, feature, how, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![account, r.kind, r.region, r.name, r.feature, r.how, r.at],
                )?;
                Ok(())
            })
        })
    }

    fn forget<'a>(&'a self, account: &'a str, kind: &'a str, region: &'a str, name: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            self.with(|db| {
                db.execute(
                    "DELETE FROM records WHERE account_id = ?1 AND kind = ?2 AND region = ?3 AND name = ?4",
                    params![account, kind, region, name],
                )?;
                Ok(())
            })
        })
    }
}

fn run_row(r: &rusqlite::Row<'_>) -> Sql<RunRow> {
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
    use crate::journal::{is_open, DONE};

    #[tokio::test]
    async fn a_run_is_resumed_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite");
        let accounts: Vec<String> =
            ["111111111111", "222222222222", "333333333333"].iter().map(|s| s.to_string()).collect();
        {
            let j = SqliteJournal::open(&path).unwrap();
            let id = j.start_run("maintenance", run_status::RUNNING, &accounts).await.unwrap();
            j.account_started(id, "111111111111").await.unwrap();
            let o =
                Outcome { account: "111111111111", status: DONE, changes: 3, api_calls: 40, error: None, report: "{}" };
            j.account_finished(id, &o).await.unwrap();
            j.account_started(id, "222222222222").await.unwrap();
            // The process dies here.
        }
        let j = SqliteJournal::open(&path).unwrap();
        let run = j.unfinished_run().await.unwrap().unwrap();
        let rows = j.accounts(run.id).await.unwrap();
        let status: Vec<(&str, &str)> = rows.iter().map(|r| (r.account_id.as_str(), r.status.as_str())).collect();
        assert_eq!(status, [("111111111111", "done"), ("222222222222", "running"), ("333333333333", "pending")]);
        assert_eq!(rows[0].done_count, 1);
        j.finish_run(run.id, run_status::DONE, None).await.unwrap();
        assert!(j.unfinished_run().await.unwrap().is_none());
        assert_eq!(j.runs(10).await.unwrap()[0].status, "done");
    }

    async fn statuses(j: &SqliteJournal, run: i64) -> Vec<(String, String, Option<String>)> {
        j.accounts(run).await.unwrap().into_iter().map(|r| (r.account_id, r.status, r.error)).collect()
    }

    #[tokio::test]
    async fn accounts_cut_off_go_back_to_pending_and_gone_ones_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let j = SqliteJournal::open(&dir.path().join("journal.sqlite")).unwrap();
        let accounts: Vec<String> = ["111111111111", "222222222222", "333333333333"].map(String::from).to_vec();
        let id = j.start_run("maintenance", run_status::RUNNING, &accounts).await.unwrap();
        j.account_started(id, "111111111111").await.unwrap();
        j.account_started(id, "222222222222").await.unwrap();
        let o = Outcome { account: "222222222222", status: DONE, changes: 1, api_calls: 9, error: None, report: "{}" };
        j.account_finished(id, &o).await.unwrap();
        // The stop deadline passes with 111111111111 still in flight.
        assert_eq!(j.requeue_running(id).await.unwrap(), 1);
        j.account_skipped(id, "333333333333", "no longer in the Organization").await.unwrap();
        let pending = |s: &str| (s.to_string(), PENDING.to_string(), None);
        assert_eq!(
            statuses(&j, id).await,
            [
                pending("111111111111"),
                ("222222222222".into(), DONE.into(), None),
                ("333333333333".into(), SKIPPED.into(), Some("no longer in the Organization".into())),
            ]
        );
        let open: Vec<String> =
            j.accounts(id).await.unwrap().into_iter().filter(|r| is_open(&r.status)).map(|r| r.account_id).collect();
        assert_eq!(open, ["111111111111"]);
        assert_eq!(j.accounts(id).await.unwrap()[0].attempts, 1, "requeued, its attempt is still counted");
    }

    #[tokio::test]
    async fn a_newer_run_supersedes_older_unfinished_ones_so_they_are_never_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let j = SqliteJournal::open(&dir.path().join("journal.sqlite")).unwrap();
        let accounts: Vec<String> = ["111111111111", "222222222222"].map(String::from).to_vec();
        let stopped = j.start_run("maintenance", run_status::RUNNING, &accounts).await.unwrap();
        let o = Outcome { account: "111111111111", status: DONE, changes: 1, api_calls: 9, error: None, report: "{}" };
        j.account_finished(stopped, &o).await.unwrap();
        j.finish_run(stopped, run_status::STOPPED, Some("1 account(s) not done")).await.unwrap();
        let braked = j.start_run("maintenance", run_status::PLANNING, &accounts).await.unwrap();
        j.set_run_status(braked, run_status::BRAKED, Some("too many")).await.unwrap();
        let done = j.start_run("maintenance", run_status::RUNNING, &[]).await.unwrap();
        j.finish_run(done, run_status::DONE, None).await.unwrap();
        assert_eq!(j.unfinished_run().await.unwrap().map(|r| r.id), Some(stopped), "the stale run would be resumed");

        let newer = j.start_run("maintenance", run_status::PLANNING, &accounts).await.unwrap();
        assert_eq!(j.supersede_older("maintenance", newer).await.unwrap(), [stopped, braked]);
        assert_eq!(j.unfinished_run().await.unwrap().map(|r| r.id), Some(newer));
        for old in [stopped, braked] {
            let r = j.run(old).await.unwrap().unwrap();
            assert_eq!(
                (r.status.as_str(), r.detail.as_deref()),
                ("superseded", Some(&*format!("superseded by run {newer}")))
            );
            assert!(r.finished_at.is_some());
        }
        let why = Some(format!("superseded by run {newer}"));
        assert_eq!(
            statuses(&j, stopped).await,
            [("111111111111".into(), DONE.into(), None), ("222222222222".into(), SKIPPED.into(), why)]
        );
        assert!(j.accounts(braked).await.unwrap().iter().all(|r| r.status == SKIPPED));
        assert_eq!(j.run(done).await.unwrap().unwrap().status, "done", "finished runs are left as they are");
        j.finish_run(newer, run_status::DONE, None).await.unwrap();
        assert!(j.unfinished_run().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn ownership_records_are_kept_per_account_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite");
        let r = |kind: &str, region: &str, how: &str| Record {
            kind: kind.into(),
            region: region.into(),
            name: "account".into(),
            feature: "F03".into(),
            how: how.into(),
            at: "2026-12-01T00:00:00Z".into(),
        };
        {
            let j = SqliteJournal::open(&path).unwrap();
            j.record("111111111111", &r("iam_password_policy", "global", "made")).await.unwrap();
            j.record("111111111111", &r("ebs_default_encryption", "us-east-1", "creating")).await.unwrap();
            // Written again: replaced, not doubled.
            j.record("111111111111", &r("ebs_default_encryption", "us-east-1", "made")).await.unwrap();
            j.record("222222222222", &r("iam_password_policy", "global", "adopted")).await.unwrap();
        }
        let j = SqliteJournal::open(&path).unwrap();
        let mine = j.records("111111111111").await.unwrap();
        assert_eq!(
            mine,
            [r("ebs_default_encryption", "us-east-1", "made"), r("iam_password_policy", "global", "made")]
        );
        j.forget("111111111111", "ebs_default_encryption", "us-east-1", "account").await.unwrap();
        assert_eq!(j.records("111111111111").await.unwrap(), [r("iam_password_policy", "global", "made")]);
        assert_eq!(j.records("222222222222").await.unwrap(), [r("iam_password_policy", "global", "adopted")]);
        assert!(j.records("333333333333").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn approval_is_atomic_and_says_who_and_when() {
        let dir = tempfile::tempdir().unwrap();
        let j = SqliteJournal::open(&dir.path().join("journal.sqlite")).unwrap();
        let id = j.start_run("maintenance", run_status::PLANNING, &["111111111111".into()]).await.unwrap();
        assert!(!j.approve(id, "alice").await.unwrap(), "a run that is not braked cannot be approved");
        j.set_run_status(id, run_status::BRAKED, Some("too many")).await.unwrap();
        assert!(j.approve(id, "alice").await.unwrap());
        assert!(!j.approve(id, "bob").await.unwrap(), "approved once only");
        assert_eq!(j.run(id).await.unwrap().unwrap().status, run_status::APPROVED);
        let (by, at) = j.approval(id).await.unwrap().unwrap();
        assert_eq!(by, "alice");
        assert!(at.ends_with('Z'), "{at}");
        j.save_plans(id, &[("111111111111".into(), "[]".into())]).await.unwrap();
        assert_eq!(j.plans(id).await.unwrap(), [("111111111111".to_string(), "[]".to_string())]);
    }

    #[tokio::test]
    async fn the_lease_is_held_by_one_holder_until_released_or_expired() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite");
        let a = SqliteJournal::open(&path).unwrap();
        let b = SqliteJournal::open(&path).unwrap();
        assert_eq!(a.acquire_lease("daemon a", 60).await.unwrap(), None);
        assert_eq!(a.acquire_lease("daemon a", 60).await.unwrap(), None, "renewed by its holder");
        let held = b.acquire_lease("apply b", 60).await.unwrap().unwrap();
        assert_eq!(held.0, "daemon a");
        a.release_lease("daemon a").await.unwrap();
        assert_eq!(b.acquire_lease("apply b", -1).await.unwrap(), None);
        // b's lease has run out (its holder died): the next one takes it.
        assert_eq!(a.acquire_lease("daemon a", 60).await.unwrap(), None);
    }
}
