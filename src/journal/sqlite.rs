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
             CREATE TABLE IF NOT EXISTS desired_kept (
                 digest TEXT PRIMARY KEY,
                 content BLOB NOT NULL
             );
             CREATE TABLE IF NOT EXISTS run_slots (
                 kind TEXT NOT NULL,
                 slot TEXT NOT NULL,
                 run_id INTEGER NOT NULL REFERENCES runs(id),
                 PRIMARY KEY (kind, slot)
             );
             CREATE TABLE IF NOT EXISTS shard_plans (
                 run_id INTEGER NOT NULL REFERENCES runs(id),
                 shard TEXT NOT NULL,
                 accounts INTEGER NOT NULL,
                 changed INTEGER NOT NULL,
                 deletes INTEGER NOT NULL,
                 failed TEXT,
                 planned_at TEXT NOT NULL,
                 PRIMARY KEY (run_id, shard)
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

    fn join_run<'a>(
        &'a self,
        kind: &'a str,
        slot: &'a str,
        status: &'a str,
        accounts: &'a [String],
    ) -> Fut<'a, (i64, bool)> {
        Box::pin(async move {
            self.with(|db| {
                // One transaction: shards on one host (one file) serialise here.
                let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let joined: Option<i64> = tx
                    .query_row(
                        "SELECT r.id FROM run_slots s JOIN runs r ON r.id = s.run_id
                         WHERE s.kind = ?1 AND s.slot = ?2
                         AND r.status IN ('planning', 'running', 'stopped', 'approved')",
                        params![kind, slot],
                        |r| r.get(0),
                    )
                    .optional()?;
                let (id, created) = match joined {
                    Some(id) => (id, false),
                    None => {
                        tx.execute(
                            "INSERT INTO runs (kind, status, started_at) VALUES (?1, ?2, ?3)",
                            params![kind, status, now()],
                        )?;
                        let id = tx.last_insert_rowid();
                        tx.execute(
                            "INSERT INTO run_slots (kind, slot, run_id) VALUES (?1, ?2, ?3)
                             ON CONFLICT(kind, slot) DO UPDATE SET run_id = excluded.run_id",
                            params![kind, slot, id],
                        )?;
                        (id, true)
                    }
                };
                for a in accounts {
                    tx.execute(
                        "INSERT INTO run_accounts (run_id, account_id, status, updated_at) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT(run_id, account_id) DO NOTHING",
                        params![id, a, PENDING, now()],
                    )?;
                }
                tx.commit()?;
                Ok((id, created))
            })
        })
    }

    fn shard_planned<'a>(&'a self, run_id: i64, part: &'a super::ShardPlan) -> Fut<'a, ()> {
        Box::pin(async move {
            self.with(|db| {
                db.execute(
                    "INSERT OR REPLACE INTO shard_plans (run_id, shard, accounts, changed, deletes, failed, planned_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        run_id,
                        part.shard,
                        part.accounts,
                        part.changed,
                        part.deletes,
                        part.failed,
                        part.planned_at
                    ],
                )?;
                Ok(())
            })
        })
    }

    fn shards_planned(&self, run_id: i64) -> Fut<'_, Vec<super::ShardPlan>> {
        Box::pin(async move {
            self.with(|db| {
                let mut q = db.prepare(
                    "SELECT shard, accounts, changed, deletes, failed, planned_at FROM shard_plans
                     WHERE run_id = ?1 ORDER BY shard",
                )?;
                let rows = q.query_map([run_id], |r| {
                    Ok(super::ShardPlan {
                        shard: r.get(0)?,
                        accounts: r.get(1)?,
                        changed: r.get(2)?,
                        deletes: r.get(3)?,
                        failed: r.get(4)?,
                        planned_at: r.get(5)?,
                    })
                })?;
                rows.collect()
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

    fn move_run<'a>(&'a self, id: i64, from: &'a str, to: &'a str, detail: Option<&'a str>) -> Fut<'a, bool> {
        Box::pin(async move {
            self.with(|db| {
                let n = db.execute(
                    "UPDATE runs SET status = ?3, detail = COALESCE(?4, detail) WHERE id = ?1 AND status = ?2",
                    params![id, from, to, detail],
                )?;
                Ok(n == 1)
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
    fn requeue_running<'a>(&'a self, run_id: i64, only: Option<&'a [String]>) -> Fut<'a, usize> {
        Box::pin(async move {
            self.with(|db| {
                let Some(only) = only else {
                    return db.execute(
                        "UPDATE run_accounts SET status = ?2, updated_at = ?3 WHERE run_id = ?1 AND status = ?4",
                        params![run_id, PENDING, now(), RUNNING],
                    );
                };
                let tx = db.transaction()?;
                let mut n = 0;
                for a in only {
                    n += tx.execute(
                        "UPDATE run_accounts SET status = ?2, updated_at = ?3
                         WHERE run_id = ?1 AND status = ?4 AND account_id = ?5",
                        params![run_id, PENDING, now(), RUNNING, a],
                    )?;
                }
                tx.commit()?;
                Ok(n)
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

    /// Marks an account started; never one already done in the run.
    fn account_started<'a>(&'a self, run_id: i64, account: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            let n = self.with(|db| {
                let n = db.execute(
                    "UPDATE run_accounts SET status = ?3, attempts = attempts + 1, updated_at = ?4
                     WHERE run_id = ?1 AND account_id = ?2 AND status <> 'done'",
                    params![run_id, account, RUNNING, now()],
                )?;
                Ok(n)
            })?;
            if n == 0 {
                return Err(JournalError::not_startable(account, run_id));
            }
            Ok(())
        })
    }

    /// Records an account's outcome with its report; never twice once done.
    fn account_finished<'a>(&'a self, run_id: i64, o: &'a Outcome<'a>) -> Fut<'a, ()> {
        Box::pin(async move {
            let n = self.with(|db| {
                db.execute(
                    "UPDATE run_accounts SET status = ?3, done_count = done_count + (?3 = 'done'), changes = ?4,
                     api_calls = ?5, error = ?6, report = ?7, updated_at = ?8
                     WHERE run_id = ?1 AND account_id = ?2 AND status <> 'done'",
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
                )
            })?;
            if n == 0 {
                return Err(JournalError::already_done(o.account, run_id));
            }
            Ok(())
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
                for (account, plan) in plans {
                    tx.execute(
                        "INSERT OR REPLACE INTO plans (run_id, account_id, plan) VALUES (?1, ?2, ?3)",
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

    fn acquire_lease<'a>(
        &'a self,
        scope: &'a str,
        holder: &'a str,
        ttl_secs: i64,
    ) -> Fut<'a, Option<(String, String)>> {
        Box::pin(async move {
            self.with(|db| {
                let now = chrono::Utc::now().timestamp();
                let n = db.execute(
                    "INSERT INTO lease (name, holder, expires_at) VALUES (?4, ?1, ?2)
                     ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                     WHERE lease.holder = excluded.holder OR lease.expires_at < ?3",
                    params![holder, now + ttl_secs, now, scope],
                )?;
                if n == 1 {
                    return Ok(None);
                }
                let (other, until): (String, i64) =
                    db.query_row("SELECT holder, expires_at FROM lease WHERE name = ?1", [scope], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?;
                Ok(Some((other, super::unix_text(until))))
            })
        })
    }

    fn release_lease<'a>(&'a self, scope: &'a str, holder: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            self.with(|db| {
                db.execute("DELETE FROM lease WHERE name = ?1 AND holder = ?2", [scope, holder])?;
                Ok(())
            })
        })
    }

    fn leases(&self) -> Fut<'_, Vec<super::LeaseRow>> {
        Box::pin(async move {
            self.with(|db| {
                let mut q = db.prepare("SELECT name, holder, expires_at FROM lease ORDER BY name")?;
                let rows = q.query_map([], |r| {
                    Ok(super::LeaseRow { scope: r.get(0)?, holder: r.get(1)?, expires_at: r.get(2)? })
                })?;
                rows.collect()
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

    fn pins(&self) -> Fut<'_, Vec<(String, String)>> {
        Box::pin(async move {
            self.with(|db| {
                let mut st = db.prepare("SELECT maintenance_at, digest FROM pins ORDER BY maintenance_at")?;
                let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Sql<Vec<_>>>()?;
                Ok(rows)
            })
        })
    }

    fn record_accounts(&self) -> Fut<'_, Vec<String>> {
        Box::pin(async move {
            self.with(|db| {
                let mut st = db.prepare("SELECT DISTINCT account_id FROM records ORDER BY account_id")?;
                let rows = st.query_map([], |r| r.get(0))?.collect::<Sql<Vec<_>>>()?;
                Ok(rows)
            })
        })
    }

    fn restore_run<'a>(&'a self, e: &'a super::ExportedRun) -> Fut<'a, ()> {
        Box::pin(async move {
            self.with(|db| {
                let tx = db.transaction()?;
                let r = &e.run;
                tx.execute(
                    "INSERT INTO runs (id, kind, status, started_at, finished_at, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![r.id, r.kind, r.status, r.started_at, r.finished_at, r.detail],
                )?;
                for a in &e.accounts {
                    tx.execute(
                        "INSERT INTO run_accounts (run_id, account_id, status, attempts, done_count, changes, api_calls,
                         error, report, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                        params![
                            r.id,
                            a.account_id,
                            a.status,
                            a.attempts,
                            a.done_count,
                            a.changes,
                            a.api_calls,
                            a.error,
                            a.report,
                            now()
                        ],
                    )?;
                }
                for (account, plan) in &e.plans {
                    tx.execute(
                        "INSERT INTO plans (run_id, account_id, plan) VALUES (?1, ?2, ?3)",
                        params![r.id, account, plan],
                    )?;
                }
                if let Some((by, at)) = &e.approval {
                    tx.execute(
                        "INSERT INTO approvals (run_id, approved_by, approved_at) VALUES (?1, ?2, ?3)",
                        params![r.id, by, at],
                    )?;
                }
                if let Some((digest, how)) = &e.desired {
                    tx.execute(
                        "INSERT INTO run_desired (run_id, digest, how) VALUES (?1, ?2, ?3)",
                        params![r.id, digest, how],
                    )?;
                }
                tx.commit()
            })
        })
    }

    fn keep_desired<'a>(&'a self, digest: &'a str, content: &'a [u8]) -> Fut<'a, ()> {
        Box::pin(async move {
            self.with(|db| {
                db.execute(
                    "INSERT OR IGNORE INTO desired_kept (digest, content) VALUES (?1, ?2)",
                    params![digest, content],
                )?;
                Ok(())
            })
        })
    }

    fn desired_kept<'a>(&'a self, digest: &'a str) -> Fut<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            self.with(|db| {
                db.query_row("SELECT content FROM desired_kept WHERE digest = ?1", [digest], |r| r.get(0)).optional()
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
    use std::sync::Arc;

    /// The journal contract, on SQLite files (each store opened twice: two processes).
    #[tokio::test]
    async fn the_sqlite_store_keeps_the_journal_contract() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        crate::journal::contract::all(|name| {
            let path = root.join(format!("{name}.sqlite"));
            async move { Arc::new(SqliteJournal::open(&path).unwrap()) as Arc<dyn Journal> }
        })
        .await;
    }
}
