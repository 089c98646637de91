//! The daemon as a service, against the emulated Organization: scheduled runs, the
//! journal and resume after kill -9, graceful stop, metrics, the brake, invalid edits.

mod support;

use cm_baseline::daemon::journal::{AccountRow, Journal, RunRow};
use serde_json::json;
use std::path::Path;
use support::{http_get, port, terminate, wait_until, Fleet};

fn runs(state: &Path) -> Vec<RunRow> {
    Journal::open(&state.join("journal.sqlite")).and_then(|j| j.runs(100)).unwrap_or_default()
}

fn accounts(state: &Path, run: i64) -> Vec<AccountRow> {
    Journal::open(&state.join("journal.sqlite")).and_then(|j| j.accounts(run)).unwrap_or_default()
}

fn count(rows: &[AccountRow], status: &str) -> usize {
    rows.iter().filter(|r| r.status == status).count()
}

/// A cron expression (UTC) firing `secs` seconds from now.
fn in_seconds(secs: i64) -> String {
    let t = chrono::Utc::now() + chrono::Duration::seconds(secs);
    use chrono::Timelike;
    format!("\"{} {} {} * * *\"", t.second(), t.minute(), t.hour())
}

fn daemon_settings(fleet: &Fleet, maintenance: &str, share: f64) {
    fleet.edit_settings(
        "variables: {}",
        &format!(
            "variables: {{}}\ndaemon:\n  timezone: UTC\n  maintenance: {maintenance}\n  announce: \"0 0 0 1 1 *\"\n  brake:\n    max_changed_share: {share}\n"
        ),
    );
}

fn managed_role(fleet: &Fleet, account: &str) -> bool {
    fleet.emu.aws(account, "iam", "get_role", json!({"RoleName": "cm-policymaintainer"})).is_ok()
}

#[test]
fn a_scheduled_maintenance_runs_is_journaled_and_shows_in_metrics() {
    let fleet = Fleet::new(&[("one-co", "basic"), ("two-co", "basic")]);
    daemon_settings(&fleet, &in_seconds(6), 1.0);
    let state = fleet.dir.path().join("state");
    let p = port();
    let mut d = fleet.daemon(&state, p, &[]);
    wait_until(30, "the endpoint", || http_get(p, "/healthz").is_some_and(|(s, _)| s == 200));
    let (_, metrics) = http_get(p, "/metrics").unwrap();
    assert!(metrics.contains("cm_next_run_timestamp_seconds{job=\"maintenance\"}"), "{metrics}");
    assert!(runs(&state).is_empty(), "a run before its time");

    wait_until(90, "the scheduled run to finish", || runs(&state).first().is_some_and(|r| r.status == "done"));
    let run = &runs(&state)[0];
    assert_eq!(run.kind, "maintenance");
    let rows = accounts(&state, run.id);
    assert_eq!(count(&rows, "done"), 2, "{rows:?}");
    for a in &fleet.accounts {
        assert!(managed_role(&fleet, a), "maintenance did not apply the managed roles in {a}");
    }

    let (status, _) = http_get(p, "/readyz").unwrap();
    assert_eq!(status, 200);
    let health = |port: u16| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cm-baseline"))
            .args(["healthcheck", "--listen", &format!("127.0.0.1:{port}")])
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(health(p), Some(0));
    assert_eq!(health(support::port()), Some(1), "nothing listens there");
    let (_, metrics) = http_get(p, "/metrics").unwrap();
    for line in [
        "cm_runs_total{kind=\"maintenance\",status=\"done\"} 1",
        "cm_accounts_total{outcome=\"done\"} 2",
        "cm_changes_total{feature=\"F01\",action=\"create\"} 8",
        "cm_api_calls_total{service=\"iam\",operation=\"CreateRole\",outcome=\"ok\"} 8",
        "cm_desired_state_valid 1",
    ] {
        assert!(metrics.contains(line), "metrics lack {line}:\n{metrics}");
    }
    assert_eq!(terminate(&mut d), Some(0));

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cm-baseline"))
        .args(["runs", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("maintenance  done") && listing.contains("2/2 accounts done"), "{listing}");
}

#[test]
fn killed_mid_run_the_daemon_resumes_and_every_account_is_done_exactly_once() {
    let members: Vec<(String, &str)> = (0..10).map(|i| (format!("co-{i}"), "basic")).collect();
    let members: Vec<(&str, &str)> = members.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let fleet = Fleet::new(&members);
    daemon_settings(&fleet, "\"0 0 0 1 1 *\"", 1.0);
    let state = fleet.dir.path().join("state");
    let p = port();
    let mut d = fleet.daemon(&state, p, &["--run-now", "--parallel-accounts", "1"]);
    wait_until(120, "three accounts done", || {
        runs(&state).first().is_some_and(|r| count(&accounts(&state, r.id), "done") >= 3)
    });
    d.kill().unwrap(); // SIGKILL: no chance to clean up
    let _ = d.wait();
    let run = runs(&state)[0].clone();
    let before = accounts(&state, run.id);
    assert_eq!(run.status, "running");
    let done_before = count(&before, "done");
    assert!(done_before < 10, "the run finished before the kill: {before:?}");

    let mut d = fleet.daemon(&state, p, &[]);
    wait_until(180, "the resumed run to finish", || runs(&state).first().is_some_and(|r| r.status == "done"));
    assert_eq!(runs(&state).len(), 1, "the restart started a new run instead of resuming");
    let after = accounts(&state, run.id);
    assert_eq!(after.len(), 10);
    assert!(after.iter().all(|r| r.status == "done" && r.done_count == 1), "{after:?}");
    // Accounts done before the kill were not started again.
    for b in before.iter().filter(|b| b.status == "done") {
        let a = after.iter().find(|a| a.account_id == b.account_id).unwrap();
        assert_eq!(a.attempts, b.attempts, "{} was redone", a.account_id);
    }
    for a in &fleet.accounts {
        assert!(managed_role(&fleet, a), "{a} was forgotten");
    }
    eprintln!("resume: {done_before} of 10 done before kill -9, {} after restart", count(&after, "done"));
    assert_eq!(terminate(&mut d), Some(0));
}

#[test]
fn sigterm_mid_run_finishes_in_flight_accounts_and_exits_zero() {
    let members: Vec<(String, &str)> = (0..6).map(|i| (format!("co-{i}"), "basic")).collect();
    let members: Vec<(&str, &str)> = members.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let fleet = Fleet::new(&members);
    daemon_settings(&fleet, "\"0 0 0 1 1 *\"", 1.0);
    let state = fleet.dir.path().join("state");
    let mut d = fleet.daemon(&state, port(), &["--run-now", "--parallel-accounts", "2"]);
    wait_until(120, "an account done", || {
        runs(&state).first().is_some_and(|r| count(&accounts(&state, r.id), "done") >= 1)
    });
    assert_eq!(terminate(&mut d), Some(0));
    let run = runs(&state)[0].clone();
    let rows = accounts(&state, run.id);
    assert_eq!(count(&rows, "running"), 0, "an in-flight account was cut off: {rows:?}");
    assert!(count(&rows, "done") >= 1);
    if count(&rows, "pending") > 0 {
        assert_eq!(run.status, "stopped", "{run:?}");
        assert!(run.detail.as_deref().unwrap_or("").contains("not done"), "{run:?}");
    }
}

#[test]
fn the_brake_stops_a_run_that_would_change_half_the_fleet_until_approved() {
    let members: Vec<(String, &str)> = (0..10).map(|i| (format!("co-{i}"), "basic")).collect();
    let members: Vec<(&str, &str)> = members.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let fleet = Fleet::new(&members);
    daemon_settings(&fleet, "\"0 0 0 1 1 *\"", 0.2);
    assert_eq!(fleet.report(&["apply", "--initial"]).0, 0);
    let drifted: Vec<&String> = fleet.accounts.iter().take(5).collect();
    let description = |a: &str| {
        fleet.emu.call(a, "iam", "get_role", json!({"RoleName": "cm-helpdesk"}))["Role"]["Description"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    for a in &drifted {
        fleet.emu.call(a, "iam", "update_role", json!({"RoleName": "cm-helpdesk", "Description": "changed by hand"}));
    }

    let state = fleet.dir.path().join("state");
    let p = port();
    let mut d = fleet.daemon(&state, p, &["--run-now"]);
    wait_until(120, "the brake", || runs(&state).first().is_some_and(|r| r.status == "braked"));
    let run = runs(&state)[0].clone();
    assert!(run.detail.as_deref().unwrap_or("").contains("5 of 10 accounts (50 %)"), "{run:?}");
    for a in &drifted {
        assert_eq!(description(a), "changed by hand", "the brake let a change through");
    }
    let (_, metrics) = http_get(p, "/metrics").unwrap();
    assert!(metrics.contains("cm_brake_stops_total 1"), "{metrics}");
    assert!(state.join(format!("reports/run-{}-plan.md", run.id)).exists());

    // An operator approves that run: it goes ahead, past the brake.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cm-baseline"))
        .args(["runs", "--state-dir"])
        .arg(&state)
        .args(["approve", &run.id.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_until(120, "the approved run", || runs(&state).first().is_some_and(|r| r.status == "done"));
    for a in &drifted {
        assert_eq!(description(a), "Operations team access (CM-managed)");
    }
    assert_eq!(terminate(&mut d), Some(0));
}

#[test]
fn an_invalid_desired_state_edit_refuses_the_run_and_changes_nothing() {
    let fleet = Fleet::new(&[("one-co", "basic")]);
    daemon_settings(&fleet, "\"0 0 0 1 1 *\"", 1.0);
    let f = fleet.desired().join("tiers.yaml");
    std::fs::write(
        &f,
        std::fs::read_to_string(&f).unwrap().replacen("opt_in_default: false", "opt_in_default: nope", 1),
    )
    .unwrap();
    let state = fleet.dir.path().join("state");
    let p = port();
    let mut d = fleet.daemon(&state, p, &["--run-now"]);
    wait_until(60, "the refused run", || runs(&state).first().is_some_and(|r| r.status == "refused"));
    let run = runs(&state)[0].clone();
    assert!(run.detail.as_deref().unwrap_or("").contains("tiers.yaml:"), "{run:?}");
    assert!(!managed_role(&fleet, &fleet.accounts[0]), "an invalid desired state changed an account");
    assert_eq!(http_get(p, "/readyz").unwrap().0, 503);
    assert_eq!(http_get(p, "/healthz").unwrap().0, 200, "the daemon must keep running");
    let (_, metrics) = http_get(p, "/metrics").unwrap();
    assert!(metrics.contains("cm_runs_total{kind=\"maintenance\",status=\"refused\"} 1"), "{metrics}");
    assert!(metrics.contains("cm_desired_state_valid 0"), "{metrics}");
    assert_eq!(terminate(&mut d), Some(0));
}

#[test]
fn the_announcement_summarises_what_the_next_maintenance_would_change() {
    let fleet = Fleet::new(&[("one-co", "basic"), ("two-co", "basic")]);
    assert_eq!(fleet.report(&["apply", "--initial"]).0, 0);
    fleet.emu.call(
        &fleet.accounts[1],
        "iam",
        "update_role",
        json!({"RoleName": "cm-helpdesk", "Description": "changed"}),
    );
    let dir = fleet.dir.path().join("announcements");
    let out = fleet.run(&["announce", "--out-dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let files: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let md = std::fs::read_to_string(files.iter().find(|f| f.ends_with(".md")).unwrap()).unwrap();
    assert!(md.contains("Maintenance: ") && md.contains("02:00 (Asia/Tokyo)"), "{md}");
    assert!(md.contains("| F01 cm-* IAM roles | update | 1 | 1 |"), "{md}");
    assert!(md.contains(&format!("| {} | two-co | basic | 1 |", fleet.accounts[1])), "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(files.iter().find(|f| f.ends_with(".json")).unwrap()).unwrap())
            .unwrap();
    assert_eq!(json["command"], "plan");
    // A dry run: nothing was changed.
    let role = fleet.emu.call(&fleet.accounts[1], "iam", "get_role", json!({"RoleName": "cm-helpdesk"}));
    assert_eq!(role["Role"]["Description"], "changed");
}
