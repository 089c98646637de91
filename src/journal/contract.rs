//! What every journal store must do, as checks any store can be put through: the SQLite
//! store's unit tests and the DynamoDB store's tests against the emulator (tests/journal.rs)
//! run the same ones. Each takes the store twice where it matters, opened twice on the same
//! file or table, as two processes (a daemon and a one-off `runs approve`, or a task and the
//! task that replaced it) would.
//!
//! Test support: every check panics on what it finds wrong.

use super::{is_open, run_status, Journal, Outcome, Record, DONE, PENDING, SKIPPED};

const A: &str = "111111111111";
const B: &str = "222222222222";
const C: &str = "333333333333";

fn accounts(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn done<'a>(account: &'a str) -> Outcome<'a> {
    Outcome { account, status: DONE, changes: 3, api_calls: 40, error: None, report: "{\"account_id\":\"x\"}" }
}

async fn statuses(j: &dyn Journal, run: i64) -> Vec<(String, String, Option<String>)> {
    j.accounts(run).await.unwrap().into_iter().map(|r| (r.account_id, r.status, r.error)).collect()
}

/// A run is resumed where it stopped: by another process, after the first died.
pub async fn a_run_is_resumed_where_it_stopped(first: &dyn Journal, after: &dyn Journal) {
    let id = first.start_run("maintenance", run_status::RUNNING, &accounts(&[A, B, C])).await.unwrap();
    first.account_started(id, A).await.unwrap();
    first.account_finished(id, &done(A)).await.unwrap();
    first.account_started(id, B).await.unwrap();
    // The process dies here; another opens the same journal.
    let run = after.unfinished_run().await.unwrap().unwrap();
    assert_eq!(run.id, id);
    let rows = after.accounts(run.id).await.unwrap();
    let status: Vec<(&str, &str)> = rows.iter().map(|r| (r.account_id.as_str(), r.status.as_str())).collect();
    assert_eq!(status, [(A, "done"), (B, "running"), (C, "pending")]);
    assert_eq!((rows[0].done_count, rows[0].changes, rows[0].api_calls), (1, 3, 40));
    assert_eq!(rows[0].report.as_deref(), Some("{\"account_id\":\"x\"}"));
    assert_eq!(rows[1].attempts, 1);
    after.finish_run(run.id, run_status::DONE, None).await.unwrap();
    assert!(after.unfinished_run().await.unwrap().is_none());
    let latest = &after.runs(10).await.unwrap()[0];
    assert_eq!((latest.id, latest.status.as_str()), (id, "done"));
    assert!(latest.finished_at.is_some());
}

/// An account recorded done is never started nor recorded finished again in its run: a
/// second process resuming the run cannot do it twice.
pub async fn an_account_done_is_never_done_twice(first: &dyn Journal, other: &dyn Journal) {
    let id = first.start_run("maintenance", run_status::RUNNING, &accounts(&[A])).await.unwrap();
    first.account_started(id, A).await.unwrap();
    first.account_finished(id, &done(A)).await.unwrap();
    assert!(other.account_started(id, A).await.is_err(), "a done account was started again");
    assert!(other.account_finished(id, &done(A)).await.is_err(), "a done account was recorded done twice");
    let row = &first.accounts(id).await.unwrap()[0];
    assert_eq!((row.status.as_str(), row.done_count, row.attempts), (DONE, 1, 1));
    // A failed account may be tried again in the run, and then be done once.
    let id = first.start_run("maintenance", run_status::RUNNING, &accounts(&[B])).await.unwrap();
    first.account_started(id, B).await.unwrap();
    let failed = Outcome { account: B, status: "failed", changes: 0, api_calls: 2, error: Some("boom"), report: "{}" };
    first.account_finished(id, &failed).await.unwrap();
    assert_eq!(statuses(first, id).await, [(B.into(), "failed".into(), Some("boom".into()))]);
    other.account_started(id, B).await.unwrap();
    other.account_finished(id, &done(B)).await.unwrap();
    let row = &first.accounts(id).await.unwrap()[0];
    assert_eq!((row.status.as_str(), row.done_count, row.attempts, row.error.as_deref()), (DONE, 1, 2, None));
}

pub async fn accounts_cut_off_go_back_to_pending_and_gone_ones_are_skipped(j: &dyn Journal) {
    let id = j.start_run("maintenance", run_status::RUNNING, &accounts(&[A, B, C])).await.unwrap();
    j.account_started(id, A).await.unwrap();
    j.account_started(id, B).await.unwrap();
    j.account_finished(id, &done(B)).await.unwrap();
    // The stop deadline passes with A still in flight; a shard requeues only its own.
    assert_eq!(j.requeue_running(id, Some(&accounts(&[B, C]))).await.unwrap(), 0, "A is not that shard's");
    assert_eq!(j.requeue_running(id, None).await.unwrap(), 1);
    j.account_skipped(id, C, "no longer in the Organization").await.unwrap();
    assert_eq!(
        statuses(j, id).await,
        [
            (A.into(), PENDING.into(), None),
            (B.into(), DONE.into(), None),
            (C.into(), SKIPPED.into(), Some("no longer in the Organization".into())),
        ]
    );
    let open: Vec<String> =
        j.accounts(id).await.unwrap().into_iter().filter(|r| is_open(&r.status)).map(|r| r.account_id).collect();
    assert_eq!(open, [A]);
    assert_eq!(j.accounts(id).await.unwrap()[0].attempts, 1, "requeued, its attempt is still counted");
}

pub async fn a_newer_run_supersedes_older_unfinished_ones_so_they_are_never_resumed(j: &dyn Journal) {
    let both = accounts(&[A, B]);
    let stopped = j.start_run("maintenance", run_status::RUNNING, &both).await.unwrap();
    j.account_finished(stopped, &done(A)).await.unwrap();
    j.finish_run(stopped, run_status::STOPPED, Some("1 account(s) not done")).await.unwrap();
    let braked = j.start_run("maintenance", run_status::PLANNING, &both).await.unwrap();
    j.set_run_status(braked, run_status::BRAKED, Some("too many")).await.unwrap();
    let other_kind = j.start_run("onboarding", run_status::RUNNING, &both).await.unwrap();
    let finished = j.start_run("maintenance", run_status::RUNNING, &[]).await.unwrap();
    j.finish_run(finished, run_status::DONE, None).await.unwrap();
    j.finish_run(other_kind, run_status::DONE, None).await.unwrap();
    assert_eq!(j.unfinished_run().await.unwrap().map(|r| r.id), Some(stopped), "the stale run would be resumed");

    let newer = j.start_run("maintenance", run_status::PLANNING, &both).await.unwrap();
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
    assert_eq!(statuses(j, stopped).await, [(A.into(), DONE.into(), None), (B.into(), SKIPPED.into(), why)]);
    assert!(j.accounts(braked).await.unwrap().iter().all(|r| r.status == SKIPPED));
    assert_eq!(j.run(finished).await.unwrap().unwrap().status, "done", "finished runs are left as they are");
    j.finish_run(newer, run_status::DONE, None).await.unwrap();
    assert!(j.unfinished_run().await.unwrap().is_none());
    let ids: Vec<i64> = j.runs(3).await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(ids, [newer, finished, other_kind], "newest first, at most the limit");
    assert!(j.run(newer + 100).await.unwrap().is_none());
}

pub async fn ownership_records_are_kept_per_account(j: &dyn Journal, reopened: &dyn Journal) {
    let r = |kind: &str, region: &str, how: &str| Record {
        kind: kind.into(),
        region: region.into(),
        name: "account".into(),
        feature: "F03".into(),
        how: how.into(),
        at: "2026-12-01T00:00:00Z".into(),
    };
    j.record(A, &r("iam_password_policy", "global", "made")).await.unwrap();
    j.record(A, &r("ebs_default_encryption", "us-east-1", "creating")).await.unwrap();
    // Written again: replaced, not doubled.
    j.record(A, &r("ebs_default_encryption", "us-east-1", "made")).await.unwrap();
    j.record(B, &r("iam_password_policy", "global", "adopted")).await.unwrap();
    let mine = reopened.records(A).await.unwrap();
    assert_eq!(mine, [r("ebs_default_encryption", "us-east-1", "made"), r("iam_password_policy", "global", "made")]);
    reopened.forget(A, "ebs_default_encryption", "us-east-1", "account").await.unwrap();
    assert_eq!(j.records(A).await.unwrap(), [r("iam_password_policy", "global", "made")]);
    assert_eq!(j.records(B).await.unwrap(), [r("iam_password_policy", "global", "adopted")]);
    assert!(j.records(C).await.unwrap().is_empty());
}

/// Approval by one process (`runs approve`) is seen by another (the daemon), once.
pub async fn approval_is_atomic_and_seen_by_every_process(daemon: &dyn Journal, operator: &dyn Journal) {
    let id = daemon.start_run("maintenance", run_status::PLANNING, &accounts(&[A])).await.unwrap();
    assert!(!operator.approve(id, "alice").await.unwrap(), "a run that is not braked cannot be approved");
    daemon.set_run_status(id, run_status::BRAKED, Some("too many")).await.unwrap();
    daemon.save_plans(id, &[(A.into(), "[]".into()), (B.into(), "[1]".into())]).await.unwrap();
    assert!(operator.approve(id, "alice").await.unwrap());
    assert!(!operator.approve(id, "bob").await.unwrap(), "approved once only");
    let run = daemon.run(id).await.unwrap().unwrap();
    assert_eq!((run.status.as_str(), run.detail.as_deref()), (run_status::APPROVED, Some("too many")));
    let (by, at) = daemon.approval(id).await.unwrap().unwrap();
    assert_eq!(by, "alice");
    assert!(at.ends_with('Z'), "{at}");
    assert_eq!(
        daemon.plans(id).await.unwrap(),
        [(A.to_string(), "[]".to_string()), (B.to_string(), "[1]".to_string())]
    );
    // Saved again, as each shard saves its own accounts' plans: those accounts' replaced,
    // the others' kept.
    daemon.save_plans(id, &[(A.into(), "[2]".into())]).await.unwrap();
    assert_eq!(
        operator.plans(id).await.unwrap(),
        [(A.to_string(), "[2]".to_string()), (B.to_string(), "[1]".to_string())]
    );
    assert!(daemon.approval(id + 1).await.unwrap().is_none());
}

/// One holder at a time; a holder that died loses the lease after its expiry. Leases of
/// different scopes are kept apart.
pub async fn the_lease_is_held_by_one_holder_until_released_or_expired(a: &dyn Journal, b: &dyn Journal) {
    assert_eq!(a.acquire_lease("fleet", "daemon a", 60).await.unwrap(), None);
    assert_eq!(a.acquire_lease("fleet", "daemon a", 60).await.unwrap(), None, "renewed by its holder");
    let held = b.acquire_lease("fleet", "apply b", 60).await.unwrap().unwrap();
    assert_eq!(held.0, "daemon a");
    assert!(held.1.ends_with('Z'), "{held:?}");
    b.release_lease("fleet", "apply b").await.unwrap(); // not b's: nothing happens
    assert_eq!(b.acquire_lease("fleet", "apply b", 60).await.unwrap().map(|h| h.0).as_deref(), Some("daemon a"));
    // Another scope is another lease.
    assert_eq!(b.acquire_lease("shard 1/2", "daemon c", 60).await.unwrap(), None);
    let mut leases: Vec<(String, String)> =
        a.leases().await.unwrap().into_iter().map(|l| (l.scope, l.holder)).collect();
    leases.sort();
    assert_eq!(
        leases,
        [("fleet".to_string(), "daemon a".to_string()), ("shard 1/2".to_string(), "daemon c".to_string())]
    );
    b.release_lease("shard 1/2", "daemon c").await.unwrap();
    a.release_lease("fleet", "daemon a").await.unwrap();
    assert!(b.leases().await.unwrap().is_empty(), "released leases are gone");
    assert_eq!(b.acquire_lease("fleet", "apply b", -1).await.unwrap(), None);
    // b's lease has run out (its holder died): the next one takes it.
    assert_eq!(a.acquire_lease("fleet", "daemon a", 60).await.unwrap(), None);
    a.release_lease("fleet", "daemon a").await.unwrap();
}

/// Shards starting one maintenance share its run: the first starts it, the others join it
/// with their accounts; once it is finished, the slot's next run is a new one.
pub async fn shards_of_one_slot_share_one_run(a: &dyn Journal, b: &dyn Journal) {
    let slot = "2026-12-04T17:00:00Z";
    let (id, created) = a.join_run("maintenance", slot, run_status::PLANNING, &accounts(&[A])).await.unwrap();
    assert!(created);
    a.account_started(id, A).await.unwrap();
    a.account_finished(id, &done(A)).await.unwrap();
    // Shard b joins, with an account of its own, and A again: A stays done.
    let (joined, created) = b.join_run("maintenance", slot, run_status::PLANNING, &accounts(&[B, A])).await.unwrap();
    assert_eq!((joined, created), (id, false));
    assert_eq!(statuses(a, id).await, [(A.into(), DONE.into(), None), (B.into(), PENDING.into(), None)]);
    // Another slot, or another kind, is another run.
    let (other, created) = b.join_run("maintenance", "2026-12-11T17:00:00Z", "planning", &[]).await.unwrap();
    assert!(created && other != id);
    let (other_kind, _) = b.join_run("onboarding", slot, "planning", &[]).await.unwrap();
    assert!(other_kind != id && other_kind != other);
    // The fleet-wide brake's parts.
    let part = |shard: &str, changed| super::ShardPlan {
        shard: shard.into(),
        accounts: 5,
        changed,
        deletes: 0,
        failed: (changed > 4).then(|| "no".to_string()),
        planned_at: "2026-12-04T17:01:00Z".into(),
    };
    a.shard_planned(id, &part("0/2", 1)).await.unwrap();
    b.shard_planned(id, &part("1/2", 5)).await.unwrap();
    b.shard_planned(id, &part("1/2", 2)).await.unwrap(); // planned again: replaced
    assert_eq!(a.shards_planned(id).await.unwrap(), [part("0/2", 1), part("1/2", 2)]);
    assert!(a.shards_planned(other).await.unwrap().is_empty());
    // One of several shards moves the run on.
    assert!(a.move_run(id, run_status::PLANNING, run_status::BRAKED, Some("too many")).await.unwrap());
    assert!(!b.move_run(id, run_status::PLANNING, run_status::RUNNING, None).await.unwrap(), "moved already");
    let run = b.run(id).await.unwrap().unwrap();
    assert_eq!((run.status.as_str(), run.detail.as_deref()), (run_status::BRAKED, Some("too many")));
    assert!(b.approve(id, "ops").await.unwrap());
    assert!(!a.move_run(id, run_status::PLANNING, run_status::BRAKED, None).await.unwrap(), "approved stays so");
    assert_eq!(a.run(id).await.unwrap().unwrap().status, run_status::APPROVED);
    // Finished: the slot's run is not joined again.
    a.finish_run(id, run_status::DONE, None).await.unwrap();
    let (again, created) = b.join_run("maintenance", slot, run_status::PLANNING, &accounts(&[B])).await.unwrap();
    assert!(created && again != id, "a finished run is not joined");
    assert_eq!(b.join_run("maintenance", slot, "planning", &[]).await.unwrap(), (again, false));
}

/// Pins, the desired state a run applies, and the desired state kept for it.
pub async fn pins_and_kept_desired_state_are_found_by_another_process(j: &dyn Journal, other: &dyn Journal) {
    j.pin("2026-12-05T17:00:00Z", "d1").await.unwrap();
    j.pin("2026-12-12T17:00:00Z", "d2").await.unwrap();
    let found = other.pin_between("2026-12-01T00:00:00Z", "2026-12-06T00:00:00Z").await.unwrap();
    assert_eq!(found, Some(("2026-12-05T17:00:00Z".to_string(), "d1".to_string())));
    let latest = other.pin_between("2026-12-01T00:00:00Z", "2026-12-31T00:00:00Z").await.unwrap();
    assert_eq!(latest.map(|p| p.1).as_deref(), Some("d2"), "the latest pin of the range");
    assert!(other.pin_between("2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z").await.unwrap().is_none());

    let id = j.start_run("maintenance", run_status::RUNNING, &[]).await.unwrap();
    j.set_run_desired(id, "d1", "as announced").await.unwrap();
    assert_eq!(other.run_desired(id).await.unwrap(), Some(("d1".to_string(), "as announced".to_string())));
    assert!(other.run_desired(id + 1).await.unwrap().is_none());

    let content: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    j.keep_desired("d1", &content).await.unwrap();
    j.keep_desired("d1", &content).await.unwrap(); // kept once
    assert_eq!(other.desired_kept("d1").await.unwrap(), Some(content));
    assert!(other.desired_kept("d9").await.unwrap().is_none());
}

/// Runs every check on stores made by `open` (each call: the same store, opened again).
pub async fn all<F, Fut>(open: F)
where
    F: Fn(&'static str) -> Fut,
    Fut: std::future::Future<Output = std::sync::Arc<dyn Journal>>,
{
    let (x, y) = (open("resume").await, open("resume").await);
    a_run_is_resumed_where_it_stopped(&*x, &*y).await;
    let (x, y) = (open("once").await, open("once").await);
    an_account_done_is_never_done_twice(&*x, &*y).await;
    accounts_cut_off_go_back_to_pending_and_gone_ones_are_skipped(&*open("cutoff").await).await;
    a_newer_run_supersedes_older_unfinished_ones_so_they_are_never_resumed(&*open("supersede").await).await;
    let (x, y) = (open("records").await, open("records").await);
    ownership_records_are_kept_per_account(&*x, &*y).await;
    let (x, y) = (open("approval").await, open("approval").await);
    approval_is_atomic_and_seen_by_every_process(&*x, &*y).await;
    let (x, y) = (open("lease").await, open("lease").await);
    the_lease_is_held_by_one_holder_until_released_or_expired(&*x, &*y).await;
    let (x, y) = (open("shards").await, open("shards").await);
    shards_of_one_slot_share_one_run(&*x, &*y).await;
    let (x, y) = (open("pins").await, open("pins").await);
    pins_and_kept_desired_state_are_found_by_another_process(&*x, &*y).await;
}
