//! The daemon as a service, against the emulated Organization: scheduled runs, the
//! journal and resume after kill -9, graceful stop, metrics, the brake, invalid edits.

mod support;

use cm_baseline::journal::{AccountRow, Journal, RunRow, SqliteJournal};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};
use support::{http_get, port, terminate, wait_until, Fleet, HOME};

/// Waits for one journal call, from a test's plain thread.
fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().build().expect("a runtime").block_on(f)
}

fn journal(state: &Path) -> SqliteJournal {
    SqliteJournal::open(&state.join("journal.sqlite")).expect("the journal opens")
}

fn runs(state: &Path) -> Vec<RunRow> {
    SqliteJournal::open(&state.join("journal.sqlite")).ok().and_then(|j| block(j.runs(100)).ok()).unwrap_or_default()
}

fn accounts(state: &Path, run: i64) -> Vec<AccountRow> {
    SqliteJournal::open(&state.join("journal.sqlite"))
        .ok()
        .and_then(|j| block(j.accounts(run)).ok())
        .unwrap_or_default()
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
    daemon_settings_with(fleet, maintenance, "\"0 0 0 1 1 *\"", share, "");
}

/// The daemon's settings: schedules (UTC), brake share, and `extra` lines under `daemon:`;
/// the maintenance window is the whole week unless `extra` sets one.
fn daemon_settings_with(fleet: &Fleet, maintenance: &str, announce: &str, share: f64, extra: &str) {
    let window = if extra.contains("window:") { "" } else { "  window: {from: \"Mon 00:00\", to: \"Sun 23:59\"}\n" };
    let window = if extra.contains("require_announcement:") {
        window.to_string()
    } else {
        format!("{window}  require_announcement: false\n")
    };
    fleet.edit_settings(
        "variables: {}",
        &format!(
            "variables: {{}}\ndaemon:\n  timezone: UTC\n  maintenance: {maintenance}\n  announce: {announce}\n  brake:\n    max_changed_share: {share}\n{window}{extra}"
        ),
    );
}

/// The emulator's fault hook: `POST` of `body` (a new period: latency, tally), or `GET`
/// of what happened in the period when `body` is `None`.
fn faults(fleet: &Fleet, body: Option<Value>) -> Value {
    use std::io::{Read, Write};
    let addr = fleet.emu.endpoint.trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&addr).expect("emulator");
    match &body {
        Some(b) => {
            let b = b.to_string();
            write!(
                s,
                "POST /cm-emulator/faults HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
                b.len()
            )
        }
        None => write!(s, "GET /cm-emulator/faults HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    }
    .expect("write");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    let (head, json) = answer.split_once("\r\n\r\n").unwrap_or_else(|| panic!("faults hook: {answer}"));
    assert!(head.contains(" 200 "), "faults hook: {answer}");
    serde_json::from_str(json).unwrap_or_else(|e| panic!("faults hook: {e}: {json}"))
}

/// Requests of a tally period made as `account`, of `operation` (`None`: any).
fn tallied(period: &Value, account: &str, operation: Option<&str>) -> u64 {
    period["by_operation"]
        .as_array()
        .map(|ops| {
            ops.iter()
                .filter(|o| o["account"] == account && operation.is_none_or(|op| o["operation"] == op))
                .filter_map(|o| o["requests"].as_u64())
                .sum()
        })
        .unwrap_or_default()
}

/// The accounts of `rows` with `status`.
fn with_status(rows: &[AccountRow], status: &str) -> Vec<String> {
    rows.iter().filter(|r| r.status == status).map(|r| r.account_id.clone()).collect()
}

/// Runs the binary against the fleet with `CM_LOG=info` and JSON logs.
fn run_logged(fleet: &Fleet, args: &[&str]) -> Output {
    fleet.command(args).env("CM_LOG", "info").output().expect("run cm-baseline")
}

/// Every line of `log` parsed as JSON (panics on a line that is not).
fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {l}")))
        .collect()
}

/// The `applied` events of a JSON log, each checked to carry account, region, feature and
/// resource, within the span of its account.
fn applied_events(log: &str) -> Vec<Value> {
    let events: Vec<Value> = json_lines(log).into_iter().filter(|e| e["fields"]["message"] == "applied").collect();
    for e in &events {
        let f = &e["fields"];
        for key in ["account", "region", "feature", "resource_type", "resource", "action"] {
            assert!(f[key].as_str().is_some_and(|v| !v.is_empty()), "no {key} in {e}");
        }
        assert_eq!(e["span"]["name"], "account", "{e}");
        assert_eq!(e["span"]["account"], f["account"], "{e}");
    }
    events
}

/// `cm-baseline runs approve ID` against `state`, as the OS user `user`.
fn approve(state: &Path, id: i64, user: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cm-baseline"))
        .args(["runs", "--state-dir"])
        .arg(state)
        .args(["approve", &id.to_string()])
        .env("USER", user)
        .output()
        .expect("run cm-baseline runs approve")
}

fn runs_show(state: &Path, id: i64, format: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cm-baseline"))
        .args(["runs", "--state-dir"])
        .arg(state)
        .args(["show", &id.to_string(), "--format", format])
        .output()
        .unwrap();
    assert!(out.status.success(), "runs show --format {format}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The description of `account`'s cm-helpdesk role (the tests' drift and repair).
fn helpdesk_description(fleet: &Fleet, account: &str) -> String {
    fleet.emu.call(account, "iam", "get_role", json!({"RoleName": "cm-helpdesk"}))["Role"]["Description"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Whether the baseline's roles were made in `account`: cm-helpdesk, which only
/// cm-baseline makes (the member role cm-policymaintainer is there from the StackSet on).
fn managed_role(fleet: &Fleet, account: &str) -> bool {
    fleet.emu.aws(account, "iam", "get_role", json!({"RoleName": "cm-helpdesk"})).is_ok()
}

#[test]
fn a_scheduled_maintenance_runs_is_journaled_and_shows_in_metrics() {
    let fleet = Fleet::new(&[("one-co", "basic"), ("two-co", "basic")]);
    // The announcement is due at the same time, to an S3 bucket that does not exist.
    let at = in_seconds(12);
    daemon_settings_with(&fleet, &at, &at, 1.0, "  announce_s3: s3://no-such-bucket-cm/weekly\n");
    let state = fleet.dir.path().join("state");
    let p = port();
    let mut d = fleet.daemon(&state, p, &[]);
    wait_until(30, "the endpoint", || http_get(p, "/healthz").is_some_and(|(s, _)| s == 200));
    // Ready within seconds of the start, before any run: desired state and AWS are checked
    // at start, not only by runs.
    wait_until(10, "/readyz", || http_get(p, "/readyz").is_some_and(|(s, _)| s == 200));
    assert!(runs(&state).is_empty(), "a run before its time");
    let (_, metrics) = http_get(p, "/metrics").unwrap();
    assert!(metrics.contains("cm_next_run_timestamp_seconds{job=\"maintenance\"}"), "{metrics}");
    for line in ["cm_aws_ok 1", "cm_desired_state_valid 1"] {
        assert!(metrics.contains(line), "metrics lack {line}:\n{metrics}");
    }

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
    // The announcement could not be published: counted, and the local files are kept.
    wait_until(60, "the announcement", || {
        http_get(p, "/metrics").is_some_and(|(_, m)| m.contains("cm_announcement_uploads_total{outcome=\"failed\"} 2"))
    });
    let announced: Vec<String> = std::fs::read_dir(state.join("announcements"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(announced.len(), 2, "{announced:?}");
    let (_, metrics) = http_get(p, "/metrics").unwrap();
    for line in [
        "cm_runs_total{kind=\"maintenance\",status=\"done\"} 1",
        "cm_runs_total{kind=\"announce\",status=\"done\"} 1",
        "cm_accounts_total{outcome=\"done\"} 2",
        "cm_changes_total{feature=\"F01\",action=\"create\"} 6",
        "cm_api_calls_total{service=\"iam\",operation=\"CreateRole\",outcome=\"ok\"} 6",
        "cm_desired_state_valid 1",
        "cm_aws_ok 1",
    ] {
        assert!(metrics.contains(line), "metrics lack {line}:\n{metrics}");
    }
    assert!(!metrics.contains("cm_announcement_uploads_total{outcome=\"ok\"}"), "{metrics}");
    // Read by the Prometheus project's own parser: exactly the families the alert rules and
    // the dashboard are checked against (deploy/monitoring/metrics.txt), of their types.
    let families = prometheus_families(&metrics);
    let listed = std::fs::read_to_string(support::repo().join("deploy/monitoring/metrics.txt")).unwrap();
    let want: std::collections::BTreeMap<String, String> = listed
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| {
            // OpenMetrics names a counter's family without the `_total` of its samples.
            let family = if kind == "counter" { name.strip_suffix("_total").unwrap_or(name) } else { name };
            (family.to_string(), kind.to_string())
        })
        .collect();
    let got: std::collections::BTreeMap<String, String> = families
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["type"].as_str().unwrap_or("").to_string()))
        .collect();
    // Every family is listed, of its type; a labelled counter nothing has counted yet has no
    // sample, and no family: this daemon has no webhook to notify.
    let missing: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    assert_eq!(missing, ["cm_notifications"], "{got:?}");
    assert!(got.iter().all(|(k, t)| want.get(k) == Some(t)), "/metrics has families metrics.txt lacks: {got:?}");
    let has = |family: &str, key: &str, value: &str| {
        families[family]["labels"].as_array().is_some_and(|sets| sets.iter().any(|l| l[key] == value))
    };
    assert!(has("cm_aws_call_duration_seconds", "service", "iam"), "{families}");
    assert!(has("cm_aws_call_duration_seconds", "le", "+Inf"), "{families}");
    assert!(has("cm_run_duration_seconds", "kind", "maintenance"), "{families}");
    assert!(has("cm_latest_run_accounts", "status", "done"), "{families}");
    assert!(has("cm_last_successful_run_timestamp_seconds", "kind", "maintenance"), "{families}");
    assert!(metrics.contains("cm_pending_approvals 0"), "{metrics}");
    assert_eq!(terminate(&mut d), Some(0));

    // The daemon's log: JSON lines, each change applied with its account, region, feature
    // and resource.
    let log = std::fs::read_to_string(state.join("daemon.log")).unwrap();
    let applied = applied_events(&log);
    // (The fourth, the member role cm-policymaintainer, was there from the StackSet on.)
    assert_eq!(applied.len(), 6, "three roles in each of two accounts:\n{log}");
    for a in &fleet.accounts {
        assert_eq!(applied.iter().filter(|e| e["fields"]["account"] == a.as_str()).count(), 3, "{a}");
    }
    assert!(json_lines(&log)
        .iter()
        .any(|e| e["fields"]["message"] == "announcement not published to S3; the local file is kept"));

    // `runs show` prints the run's accounts in every format.
    let text = runs_show(&state, run.id, "text");
    let markdown = runs_show(&state, run.id, "markdown");
    for out in [&text, &markdown] {
        assert!(out.contains(&format!("run {} (maintenance) done", run.id)), "{out}");
        for a in &fleet.accounts {
            assert!(out.contains(a.as_str()), "{a} missing from:\n{out}");
        }
    }
    assert!(text.contains("one-co") && text.contains("two-co"), "{text}");
    let shown: Value = serde_json::from_str(&runs_show(&state, run.id, "json")).unwrap();
    assert_eq!(shown["run"]["id"], run.id);
    assert_eq!(shown["run"]["status"], "done");
    let rows = shown["accounts"].as_array().unwrap();
    let mut ids: Vec<&str> = rows.iter().filter_map(|r| r["account_id"].as_str()).collect();
    ids.sort();
    let mut want: Vec<&str> = fleet.accounts.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(ids, want);
    for r in rows {
        assert_eq!((r["status"].as_str(), r["done_count"].as_i64()), (Some("done"), Some(1)), "{r}");
        assert_eq!(r["report"]["account_id"], r["account_id"], "{r}");
        assert_eq!(r["report"]["applied"].as_array().map(Vec::len), Some(3), "{r}");
    }
    // The run's summary line counts the journaled accounts' calls.
    let calls: u64 = rows.iter().filter_map(|r| r["report"]["api_calls"]["total"].as_u64()).sum();
    assert!(calls > 0, "{shown}");
    assert!(text.contains(&format!("; {calls} API calls (")), "{calls} calls not in:\n{text}");

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
    // The emulator counts every request by account and operation from here on.
    faults(&fleet, Some(json!({"tally": true})));
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
    // What the emulator saw up to the kill; then a new tally period for the restart.
    let first = faults(&fleet, None);
    faults(&fleet, Some(json!({"tally": true})));

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
    // The emulator's side: each account's three cm-* roles (the member role came with the
    // StackSet) were created once, across the kill (an account cut off mid-apply has its
    // remaining roles created after the restart, never one twice), and an account done
    // before the kill saw no request at all after the restart.
    let second = faults(&fleet, None);
    for a in &fleet.accounts {
        assert!(managed_role(&fleet, a), "{a} was forgotten");
    }
    let done_first: Vec<String> = with_status(&before, "done");
    let mut resumed = 0;
    for a in &fleet.accounts {
        let creates = tallied(&first, a, Some("CreateRole")) + tallied(&second, a, Some("CreateRole"));
        assert_eq!(creates, 3, "{a}: CreateRole {creates} times");
        let later = tallied(&second, a, None);
        if done_first.contains(a) {
            assert_eq!(later, 0, "{a} was done before the kill, yet worked on after the restart");
        } else {
            assert!(later > 0, "{a} was not done before the kill and not worked on after the restart");
            resumed += 1;
        }
    }
    assert_eq!(resumed, 10 - done_before);
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
    let mut periods = vec![];
    // 50 ms per request: an account takes seconds, so that some are surely in flight.
    faults(&fleet, Some(json!({"tally": true, "latency_ms": 50})));
    let mut d = fleet.daemon(&state, port(), &["--run-now", "--parallel-accounts", "2"]);
    let mut at_term = vec![];
    wait_until(120, "accounts in flight and accounts not started", || {
        at_term = runs(&state).first().map(|r| accounts(&state, r.id)).unwrap_or_default();
        count(&at_term, "running") >= 1 && count(&at_term, "pending") >= 3
    });
    assert_eq!(terminate(&mut d), Some(0));
    let run = runs(&state)[0].clone();
    let rows = accounts(&state, run.id);
    assert_eq!(count(&rows, "running"), 0, "an in-flight account was left running: {rows:?}");
    for a in with_status(&at_term, "running") {
        assert!(with_status(&rows, "done").contains(&a), "{a} was in flight at SIGTERM and did not finish: {rows:?}");
    }
    // Nothing else was started: the rest are pending, not done.
    let pending = with_status(&rows, "pending");
    assert!(!pending.is_empty() && count(&rows, "done") + pending.len() == 6, "{rows:?}");
    for a in &pending {
        assert!(with_status(&at_term, "pending").contains(a), "{a}");
        assert_eq!(rows.iter().find(|r| &r.account_id == a).map(|r| r.attempts), Some(0), "{a} was started");
    }
    assert_eq!(run.status, "stopped", "{run:?}");
    assert!(run.detail.as_deref().unwrap_or("").contains("not done"), "{run:?}");

    // A stop deadline that passes cuts the accounts in flight off: they are recorded
    // pending (not done, not running), and the daemon still exits 0.
    periods.push(faults(&fleet, None));
    faults(&fleet, Some(json!({"tally": true, "latency_ms": 300})));
    let mut d = fleet.daemon(&state, port(), &["--parallel-accounts", "2", "--stop-deadline", "1"]);
    let mut cut = vec![];
    wait_until(60, "the resumed run's accounts in flight", || {
        cut = with_status(&accounts(&state, run.id), "running");
        !cut.is_empty()
    });
    let t = std::time::Instant::now();
    assert_eq!(terminate(&mut d), Some(0));
    assert!(t.elapsed().as_secs() < 30, "the stop deadline was not kept: {:?}", t.elapsed());
    let rows = accounts(&state, run.id);
    assert_eq!(count(&rows, "running"), 0, "{rows:?}");
    for a in &cut {
        let r = rows.iter().find(|r| &r.account_id == a).unwrap();
        assert_eq!((r.status.as_str(), r.attempts, r.done_count), ("pending", 1, 0), "{a} was cut off: {r:?}");
    }
    assert_eq!(runs(&state)[0].status, "stopped");

    // The next start resumes the run and finishes it: every account done exactly once,
    // each of its three roles created once (the cut-off ones' rest after the restart).
    periods.push(faults(&fleet, None));
    faults(&fleet, Some(json!({"tally": true})));
    let p = port();
    let mut d = fleet.daemon(&state, p, &[]);
    wait_until(120, "the resumed run to finish", || runs(&state).first().is_some_and(|r| r.status == "done"));
    assert_eq!(terminate(&mut d), Some(0));
    periods.push(faults(&fleet, None));
    assert_eq!(runs(&state).len(), 1);
    let rows = accounts(&state, run.id);
    assert!(rows.iter().all(|r| r.status == "done" && r.done_count == 1), "{rows:?}");
    for a in &fleet.accounts {
        let creates: u64 = periods.iter().map(|p| tallied(p, a, Some("CreateRole"))).sum();
        assert_eq!(creates, 3, "{a}: CreateRole {creates} times");
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
    let description = |a: &str| helpdesk_description(&fleet, a);
    for a in &drifted {
        fleet.emu.call(a, "iam", "update_role", json!({"RoleName": "cm-helpdesk", "Description": "changed by hand"}));
    }

    let state = fleet.dir.path().join("state");
    // A stop while the brake's pass plans the fleet (a second per request here) abandons the
    // pass at once: the daemon exits 0, nothing is changed, and the run is still `planning`.
    faults(&fleet, Some(json!({"latency_ms": 1000})));
    let mut d = fleet.daemon(&state, port(), &["--run-now", "--stop-deadline", "300"]);
    wait_until(60, "the brake's pass", || runs(&state).first().is_some_and(|r| r.status == "planning"));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let t = std::time::Instant::now();
    assert_eq!(terminate(&mut d), Some(0));
    assert!(t.elapsed().as_secs() < 20, "a stop waited for the brake's pass: {:?}", t.elapsed());
    faults(&fleet, Some(json!({})));
    assert_eq!(runs(&state).len(), 1);
    assert_eq!(runs(&state)[0].status, "planning", "{:?}", runs(&state));
    for a in &drifted {
        assert_eq!(description(a), "changed by hand");
    }

    // The next start plans the same run again and stops at the brake.
    let p = port();
    let mut d = fleet.daemon(&state, p, &[]);
    wait_until(120, "the brake", || runs(&state).first().is_some_and(|r| r.status == "braked"));
    assert_eq!(runs(&state).len(), 1, "the run planned anew is the same run");
    let run = runs(&state)[0].clone();
    assert!(run.detail.as_deref().unwrap_or("").contains("5 of 10 accounts (50 %)"), "{run:?}");
    for a in &drifted {
        assert_eq!(description(a), "changed by hand", "the brake let a change through");
    }
    let (_, metrics) = http_get(p, "/metrics").unwrap();
    assert!(metrics.contains("cm_brake_stops_total 1"), "{metrics}");
    assert!(state.join(format!("reports/run-{}-plan.md", run.id)).exists());

    // An operator approves that run: it goes ahead, past the brake.
    let out = approve(&state, run.id, "operator");
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
    let a = fleet.accounts[0].clone();
    // A maintenance every 3 seconds.
    daemon_settings(&fleet, "\"*/3 * * * * *\"", 1.0);
    let state = fleet.dir.path().join("state");
    let p = port();
    let mut d = fleet.daemon(&state, p, &[]);
    wait_until(60, "a first run", || runs(&state).first().is_some_and(|r| r.status == "done"));
    assert!(managed_role(&fleet, &a));

    // While the daemon runs, an operator breaks tiers.yaml: the next run refuses.
    let f = fleet.desired().join("tiers.yaml");
    let valid = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, valid.replacen("opt_in_default: false", "opt_in_default: nope", 1)).unwrap();
    wait_until(30, "a refused run", || runs(&state).first().is_some_and(|r| r.status == "refused"));
    // Drift the account now; the next run, refused too, must leave it alone.
    let description = || helpdesk_description(&fleet, &a);
    fleet.emu.call(&a, "iam", "update_role", json!({"RoleName": "cm-helpdesk", "Description": "changed by hand"}));
    let drifted_at = runs(&state)[0].id;
    wait_until(30, "another refused run", || runs(&state).first().is_some_and(|r| r.id > drifted_at));
    let refused = runs(&state)[0].clone();
    assert_eq!(refused.status, "refused", "{refused:?}");
    assert!(refused.detail.as_deref().unwrap_or("").contains("tiers.yaml:"), "{refused:?}");
    assert!(accounts(&state, refused.id).is_empty(), "a refused run works on no account");
    assert_eq!(description(), "changed by hand", "a run with invalid desired state changed the account");
    assert_eq!(http_get(p, "/readyz").unwrap().0, 503);
    assert_eq!(http_get(p, "/healthz").unwrap().0, 200, "the daemon must keep running");
    let (_, metrics) = http_get(p, "/metrics").unwrap();
    assert!(metrics.contains("cm_runs_total{kind=\"maintenance\",status=\"refused\"}"), "{metrics}");
    assert!(metrics.contains("cm_desired_state_valid 0"), "{metrics}");

    // Fixed, the following run goes ahead, on the schedule it had.
    std::fs::write(&f, &valid).unwrap();
    wait_until(30, "a run after the fix", || {
        runs(&state).first().is_some_and(|r| r.id > refused.id && r.status == "done")
    });
    assert_eq!(description(), "Operations team access (CM-managed)");
    assert_eq!(http_get(p, "/readyz").unwrap().0, 200);
    let (_, metrics) = http_get(p, "/metrics").unwrap();
    assert!(metrics.contains("cm_desired_state_valid 1"), "{metrics}");
    assert_eq!(terminate(&mut d), Some(0));
}

#[test]
fn a_resumed_run_skips_accounts_no_longer_enrolled_and_finishes() {
    let fleet = Fleet::new(&[("stays-co", "basic"), ("leaves-co", "basic")]);
    daemon_settings(&fleet, "\"0 0 0 1 1 *\"", 1.0);
    let (stays, leaves) = (fleet.accounts[0].clone(), fleet.accounts[1].clone());
    // An account file for an account the Organization does not have (any more).
    let gone = "999999999999".to_string();
    fleet.enrol(&gone, "gone-co", "basic", &[]);
    // A run a dead process left behind: `leaves` was in flight, the rest pending; since
    // then the operators removed the account file of `leaves`.
    let state = fleet.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let run = {
        let j = journal(&state);
        let id = block(j.start_run("maintenance", "running", &[stays.clone(), leaves.clone(), gone.clone()])).unwrap();
        block(j.account_started(id, &leaves)).unwrap();
        id
    };
    std::fs::remove_file(fleet.desired().join(format!("accounts/{leaves}.yaml"))).unwrap();

    let p = port();
    let mut d = fleet.daemon(&state, p, &[]);
    wait_until(60, "the resumed run to finish", || runs(&state).first().is_some_and(|r| r.status == "done"));
    assert_eq!(runs(&state).len(), 1);
    let rows = accounts(&state, run);
    let status = |a: &str| {
        let r = rows.iter().find(|r| r.account_id == a).unwrap();
        (r.status.clone(), r.error.clone().unwrap_or_default())
    };
    assert_eq!(status(&stays).0, "done");
    assert_eq!(status(&leaves), ("skipped".into(), "its account file was removed from desired state".into()));
    assert_eq!(status(&gone), ("skipped".into(), "no longer in the Organization".into()));
    assert!(managed_role(&fleet, &stays) && !managed_role(&fleet, &leaves), "only the enrolled account is worked on");
    let shown = runs_show(&state, run, "text");
    assert!(shown.contains(&format!("{gone} skipped (not done): no longer in the Organization")), "{shown}");
    let (_, metrics) = http_get(p, "/metrics").unwrap();
    assert!(metrics.contains("cm_accounts_total{outcome=\"skipped\"} 2"), "{metrics}");
    assert_eq!(terminate(&mut d), Some(0));
    // Finished, it is not resumed again.
    assert!(block(journal(&state).unfinished_run()).unwrap().is_none());
}

#[test]
fn the_announcement_summarises_what_the_next_maintenance_would_change() {
    let fleet = Fleet::new(&[("one-co", "basic"), ("two-co", "basic")]);
    // Logs are JSON lines, with account, region, feature and resource on each change.
    let out = run_logged(&fleet, &["apply", "--initial"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let applied = applied_events(&stderr);
    for a in &fleet.accounts {
        let mine: Vec<&Value> = applied.iter().filter(|e| e["fields"]["account"] == a.as_str()).collect();
        assert!(mine.len() >= 4, "{a}: {mine:?}");
        let helpdesk =
            mine.iter().find(|e| e["fields"]["resource"] == "cm-helpdesk").unwrap_or_else(|| panic!("{mine:?}"));
        let f = &helpdesk["fields"];
        assert_eq!(
            (&f["feature"], &f["region"], &f["resource_type"], &f["action"]),
            (&json!("F01"), &json!("global"), &json!("iam_role"), &json!("Create")),
            "{helpdesk}"
        );
    }
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

    // With daemon.announce_s3, the files written are also uploaded, as they are, with the
    // management account's credentials.
    fleet.emu.call(
        "management",
        "s3",
        "create_bucket",
        json!({"Bucket": "cm-announcements-test", "CreateBucketConfiguration": {"LocationConstraint": HOME}}),
    );
    daemon_settings_with(
        &fleet,
        "\"0 0 2 * * Sat\"",
        "\"0 0 12 * * Sat\"",
        0.2,
        "  announce_s3: s3://cm-announcements-test/weekly/\n",
    );
    let dir = fleet.dir.path().join("published");
    let out = fleet.run(&["announce", "--out-dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    let (local, uris): (Vec<&String>, Vec<&String>) = lines.iter().partition(|l| !l.starts_with("s3://"));
    assert_eq!((local.len(), uris.len()), (2, 2), "{lines:?}");
    let listed = fleet.emu.call("management", "s3", "list_objects_v2", json!({"Bucket": "cm-announcements-test"}));
    let mut keys: Vec<&str> = listed["Contents"].as_array().unwrap().iter().filter_map(|o| o["Key"].as_str()).collect();
    keys.sort();
    assert_eq!(keys.len(), 2, "{listed}");
    for path in local {
        let name = Path::new(path).file_name().unwrap().to_string_lossy().to_string();
        let key = format!("weekly/{name}");
        assert!(
            keys.contains(&key.as_str()) && uris.contains(&&format!("s3://cm-announcements-test/{key}")),
            "{key}: {keys:?} {uris:?}"
        );
        let object =
            fleet.emu.call("management", "s3", "get_object", json!({"Bucket": "cm-announcements-test", "Key": key}));
        assert_eq!(
            object["Body"].as_str().unwrap(),
            std::fs::read_to_string(path).unwrap(),
            "{key} is not the file written"
        );
        let kind = if name.ends_with(".md") { "text/markdown; charset=utf-8" } else { "application/json" };
        assert_eq!(object["ContentType"], kind);
    }

    // A bucket that cannot be written: exit 1, said on stderr, the local files kept.
    fleet.edit_settings("s3://cm-announcements-test/weekly/", "s3://cm-announcements-missing/weekly");
    let dir = fleet.dir.path().join("unpublished");
    let out = fleet.run(&["announce", "--out-dir", dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("NoSuchBucket") && stderr.contains("is kept"), "{stderr}");
    let files: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|f| Path::new(f).starts_with(&dir) && Path::new(f).exists()), "{files:?}");
}

#[test]
fn daemon_settings_are_checked_where_they_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let copy = Command::new("cp").arg("-r").arg(support::repo().join("desired-state/.")).arg(dir.path()).status();
    assert!(copy.unwrap().success());
    let settings = dir.path().join("settings.yaml");
    let shipped = std::fs::read_to_string(&settings).unwrap();
    let lines = shipped.lines().count();
    let load = |daemon: &str| {
        std::fs::write(&settings, format!("{shipped}daemon:\n{daemon}")).unwrap();
        cm_baseline::desired::load(dir.path()).map(|d| d.settings.daemon).map_err(|e| e.to_string())
    };
    let ok = load("  announce_s3: s3://cm-announcements/weekly\n").unwrap();
    assert_eq!(ok.announce_s3.map(|p| p.to_string()).as_deref(), Some("s3://cm-announcements/weekly"));
    assert_eq!(load("  timezone: Asia/Tokyo\n").unwrap().announce_s3, None, "no upload unless asked");

    let e = load("  timezone: UTC\n  announce_s3: cm-announcements/weekly\n").unwrap_err();
    let at = format!(
        "settings.yaml:{}:16: daemon.announce_s3: `cm-announcements/weekly` is not an s3:// location",
        lines + 3
    );
    assert!(e.contains(&at) && e.contains("hint: write s3://BUCKET/PREFIX"), "{e}");
    let e = load("  announce_s3: s3://Bad_Bucket/x\n").unwrap_err();
    assert!(e.contains(&format!("settings.yaml:{}:16:", lines + 2)) && e.contains("not a valid S3 bucket name"), "{e}");
    let e = load("  brake:\n    max_changed_share: 20\n").unwrap_err();
    assert!(
        e.contains(&format!("settings.yaml:{}:5: daemon.brake.max_changed_share: 20 is not a share", lines + 3)),
        "{e}"
    );
}

#[test]
fn one_process_works_on_a_fleet_at_a_time() {
    let fleet = Fleet::new(&[("one-co", "basic")]);
    daemon_settings(&fleet, "\"0 0 0 1 1 *\"", 1.0);
    let state = fleet.state();
    let p = port();
    let mut first = fleet.daemon(&state, p, &[]);
    // It listens once it holds the lease.
    wait_until(30, "the first daemon", || http_get(p, "/healthz").is_some());
    // A second daemon on the same state directory refuses to start, naming the first.
    let second = fleet.daemon(&state, port(), &[]).wait_with_output().expect("the second daemon ends by itself");
    assert_eq!(second.status.code(), Some(1));
    let log = std::fs::read_to_string(state.join("daemon.log")).unwrap();
    assert!(log.contains("cannot start: the fleet is in use by cm-baseline daemon (pid"), "{log}");
    // So does a CLI apply, before it changes anything.
    let out = fleet.run(&["apply", "--initial"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot apply: the fleet is in use by cm-baseline daemon"), "{err}");
    assert!(!managed_role(&fleet, &fleet.accounts[0]), "the refused apply changed something");
    // Once the daemon stops, its lease is given up and the apply goes ahead.
    assert_eq!(terminate(&mut first), Some(0));
    assert_eq!(fleet.report(&["apply", "--initial"]).0, 0);
    assert!(managed_role(&fleet, &fleet.accounts[0]));
}

#[test]
fn an_approved_run_applies_only_the_braked_plan_and_refuses_what_changed_since() {
    let fleet = Fleet::new(&[("a-co", "basic"), ("b-co", "basic")]);
    daemon_settings(&fleet, "\"0 0 0 1 1 *\"", 0.2);
    assert_eq!(fleet.report(&["apply", "--initial"]).0, 0);
    let description = |a: &str| helpdesk_description(&fleet, a);
    for a in &fleet.accounts {
        fleet.emu.call(a, "iam", "update_role", json!({"RoleName": "cm-helpdesk", "Description": "changed by hand"}));
    }
    let state = fleet.state();
    let mut d = fleet.daemon(&state, port(), &["--run-now"]);
    wait_until(120, "the brake", || runs(&state).first().is_some_and(|r| r.status == "braked"));
    let run = runs(&state)[0].clone();

    // Between the brake and the approval an operator edits desired state (the run keeps
    // the desired state it was planned with: the edit waits), and someone changes b-co
    // again (what b-co's plan was made against is gone: refused there).
    let f01 = fleet.desired().join("features/F01-cm-roles.yaml");
    let text = std::fs::read_to_string(&f01).unwrap();
    std::fs::write(&f01, text.replacen("Operations team access (CM-managed)", "Edited after the brake", 1)).unwrap();
    let (a_co, b_co) = (&fleet.accounts[0], &fleet.accounts[1]);
    fleet.emu.call(b_co, "iam", "update_role", json!({"RoleName": "cm-helpdesk", "Description": "changed again"}));
    let out = approve(&state, run.id, "alice");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_until(120, "the approved run", || runs(&state).first().is_some_and(|r| r.status == "done"));
    assert_eq!(description(a_co), "Operations team access (CM-managed)", "the approved change, not the edit");
    assert_eq!(description(b_co), "changed again", "an account changed since the approval was touched");
    let rows = accounts(&state, run.id);
    let row = |id: &str| rows.iter().find(|r| r.account_id == id).unwrap().clone();
    assert_eq!(row(a_co).status, "done", "{rows:?}");
    assert_eq!(row(b_co).status, "failed", "{rows:?}");
    let why = row(b_co).error.unwrap_or_default();
    assert!(why.starts_with("refused: the account or desired state changed since the plan was approved"), "{why}");
    let shown = runs_show(&state, run.id, "text");
    assert!(shown.contains("approved by alice (command line) at "), "{shown}");
    // Approved once only.
    let again = approve(&state, run.id, "alice");
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(terminate(&mut d), Some(0));
}

#[test]
fn an_unfinished_run_waits_for_the_maintenance_window() {
    use chrono::Datelike;
    let fleet = Fleet::new(&[("weekday-co", "basic")]);
    let a = fleet.accounts[0].clone();
    // A window of one minute, two days ago: closed now.
    let day = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        [(chrono::Utc::now() - chrono::Duration::days(2)).weekday().num_days_from_monday() as usize];
    let closed = format!("  window: {{from: \"{day} 00:00\", to: \"{day} 00:01\"}}");
    daemon_settings_with(&fleet, "\"0 0 0 1 1 *\"", "\"0 0 0 1 1 *\"", 1.0, &format!("{closed}\n"));
    // A run a process stopped (a redeploy mid-week): its account still pending.
    let state = fleet.state();
    std::fs::create_dir_all(&state).unwrap();
    let run = block(journal(&state).start_run("maintenance", "stopped", std::slice::from_ref(&a))).unwrap();

    let p = port();
    let mut d = fleet.daemon(&state, p, &[]);
    wait_until(60, "the wait to be journaled", || {
        runs(&state)
            .first()
            .and_then(|r| r.detail.clone())
            .is_some_and(|t| t.contains("waiting for the maintenance window"))
    });
    let (_, metrics) = http_get(p, "/metrics").unwrap();
    assert!(metrics.contains("cm_maintenance_waiting 1"), "{metrics}");
    std::thread::sleep(std::time::Duration::from_secs(6));
    assert_eq!(runs(&state)[0].status, "stopped", "{:?}", runs(&state));
    assert!(!managed_role(&fleet, &a), "a run went ahead outside the window");

    // The window opens (here: the operators widen it): the run goes ahead within seconds.
    fleet.edit_settings(&closed, "  window: {from: \"Mon 00:00\", to: \"Sun 23:59\"}");
    wait_until(120, "the resumed run", || runs(&state).first().is_some_and(|r| r.status == "done"));
    assert_eq!(runs(&state)[0].id, run, "the same run, resumed");
    assert!(managed_role(&fleet, &a));
    let (_, metrics) = http_get(p, "/metrics").unwrap();
    assert!(metrics.contains("cm_maintenance_waiting 0"), "{metrics}");
    assert_eq!(terminate(&mut d), Some(0));
}

#[test]
fn the_maintenance_applies_what_was_announced_and_defers_later_edits() {
    let fleet = Fleet::new(&[("announced-co", "basic")]);
    let a = fleet.accounts[0].clone();
    assert_eq!(fleet.report(&["apply", "--initial"]).0, 0);
    let description = || helpdesk_description(&fleet, &a);
    fleet.emu.call(&a, "iam", "update_role", json!({"RoleName": "cm-helpdesk", "Description": "changed by hand"}));
    // The announcement in a few seconds, the maintenance it announces after it.
    let maintenance = in_seconds(40);
    daemon_settings_with(&fleet, &maintenance, &in_seconds(8), 1.0, "  require_announcement: true\n");
    let state = fleet.state();
    let mut d = fleet.daemon(&state, port(), &[]);
    let announced = || {
        std::fs::read_dir(state.join("announcements"))
            .map(|r| r.flatten().any(|e| e.file_name().to_string_lossy().ends_with(".md")))
            .unwrap_or(false)
    };
    wait_until(60, "the announcement", announced);
    let md = std::fs::read_dir(state.join("announcements"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".md"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .unwrap();
    assert!(md.contains("pinned: that maintenance applies exactly this"), "{md}");
    // After the announcement, an operator edits desired state.
    let f01 = fleet.desired().join("features/F01-cm-roles.yaml");
    let text = std::fs::read_to_string(&f01).unwrap();
    std::fs::write(&f01, text.replacen("Operations team access (CM-managed)", "Edited after the announcement", 1))
        .unwrap();

    wait_until(120, "the maintenance", || runs(&state).first().is_some_and(|r| r.status == "done"));
    assert_eq!(description(), "Operations team access (CM-managed)", "what runs is what was announced");
    let run = runs(&state)[0].id;
    let shown = runs_show(&state, run, "text");
    assert!(
        shown.contains("as announced for") && shown.contains("deferred to the next cycle: features/F01-cm-roles.yaml"),
        "{shown}"
    );
    assert_eq!(terminate(&mut d), Some(0));

    // With no announcement for it, a scheduled maintenance is refused: nothing unannounced runs.
    let fresh = fleet.dir.path().join("state-without-announcement");
    fleet.edit_settings(&format!("maintenance: {maintenance}"), &format!("maintenance: {}", in_seconds(8)));
    let mut d = fleet.daemon(&fresh, port(), &[]);
    wait_until(60, "the refused run", || runs(&fresh).first().is_some_and(|r| r.status == "refused"));
    assert!(runs(&fresh)[0].detail.as_deref().unwrap_or("").contains("no announcement pins this maintenance"));
    assert_eq!(description(), "Operations team access (CM-managed)");
    assert_eq!(terminate(&mut d), Some(0));
}

#[test]
fn a_braked_run_is_approved_over_http_only_with_a_named_token() {
    let fleet = Fleet::new(&[("a-co", "basic"), ("b-co", "basic")]);
    daemon_settings(&fleet, "\"0 0 0 1 1 *\"", 0.2);
    assert_eq!(fleet.report(&["apply", "--initial"]).0, 0);
    let a = fleet.accounts[0].clone();
    fleet.emu.call(&a, "iam", "update_role", json!({"RoleName": "cm-helpdesk", "Description": "changed by hand"}));
    let state = fleet.state();
    std::fs::create_dir_all(&state).unwrap();
    let tokens = fleet.dir.path().join("approvers");
    std::fs::write(&tokens, "# who may approve\nops-oncall s3cr3t-0123456789abcdef\n").unwrap();
    let p = port();
    let mut d = fleet.daemon(&state, p, &["--run-now", "--approval-tokens", tokens.to_str().unwrap()]);
    wait_until(120, "the brake", || runs(&state).first().is_some_and(|r| r.status == "braked"));
    let run = runs(&state)[0].id;
    let path = format!("/runs/{run}/approve");
    let post = |headers: &str| support::http(p, "POST", &path, headers).map(|(s, _)| s);
    assert_eq!(post(""), Some(401));
    assert_eq!(post("Authorization: Bearer wrong-token-0123456789\r\n"), Some(401));
    assert_eq!(runs(&state)[0].status, "braked", "approved without a valid token");
    assert_eq!(post("Authorization: Bearer s3cr3t-0123456789abcdef\r\n"), Some(200));
    wait_until(120, "the approved run", || runs(&state).first().is_some_and(|r| r.status == "done"));
    assert!(runs_show(&state, run, "text").contains("approved by ops-oncall (HTTP) at "));
    assert_eq!(post("Authorization: Bearer s3cr3t-0123456789abcdef\r\n"), Some(409), "approved twice");
    assert_eq!(terminate(&mut d), Some(0));

    // Without tokens, the endpoint does not exist.
    let p = port();
    let mut d = fleet.daemon(&state, p, &[]);
    wait_until(30, "the daemon", || http_get(p, "/healthz").is_some());
    assert_eq!(
        support::http(p, "POST", &path, "Authorization: Bearer s3cr3t-0123456789abcdef\r\n").map(|r| r.0),
        Some(404)
    );
    assert_eq!(terminate(&mut d), Some(0));
}

/// A webhook receiver on 127.0.0.1: every JSON body POSTed to it, in order of arrival.
struct Hook {
    port: u16,
    got: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl Hook {
    fn start() -> Hook {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the webhook receiver");
        let port = listener.local_addr().expect("address").port();
        let got = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
        let g = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let g = g.clone();
                std::thread::spawn(move || Hook::serve(stream, g));
            }
        });
        Hook { port, got }
    }

    /// Answers each request of one connection (the client keeps it alive) with 200.
    fn serve(stream: std::net::TcpStream, got: std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
        use std::io::{BufRead, Read, Write};
        let Ok(mut out) = stream.try_clone() else { return };
        let mut r = std::io::BufReader::new(stream);
        loop {
            let (mut line, mut len) = (String::new(), 0usize);
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) if line == "\r\n" => break,
                    Ok(_) => {
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
            }
            let mut body = vec![0; len];
            if r.read_exact(&mut body).is_err() {
                return;
            }
            got.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
            if out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").is_err() {
                return;
            }
        }
    }

    /// The messages of `event` received so far.
    fn of(&self, event: &str) -> Vec<Value> {
        self.got.lock().unwrap().iter().filter(|m| m["event"] == event).cloned().collect()
    }
}

/// The path of a link under `http://127.0.0.1:<port>` in a message's text.
fn linked_path(message: &Value, port: u16) -> String {
    let text = message["text"].as_str().unwrap_or_default();
    let base = format!("Report: http://127.0.0.1:{port}");
    let at = text.find(&base).unwrap_or_else(|| panic!("no link under {base}: {text}"));
    text[at + base.len()..].split_whitespace().next().unwrap_or_default().to_string()
}

#[test]
fn the_webhook_is_told_of_refusals_brakes_failures_and_announced_changes_with_links() {
    let fleet = Fleet::new(&[("a-co", "basic"), ("b-co", "basic")]);
    assert_eq!(fleet.report(&["apply", "--initial"]).0, 0);
    for a in &fleet.accounts {
        fleet.emu.call(a, "iam", "update_role", json!({"RoleName": "cm-helpdesk", "Description": "changed by hand"}));
    }
    let hook = Hook::start();
    let webhook = format!("http://127.0.0.1:{}/services/T000/B000/XXXX", hook.port);
    let state = fleet.state();

    // A scheduled maintenance with no announcement pinning it is refused: "failed".
    daemon_settings_with(&fleet, &in_seconds(4), "\"0 0 0 1 1 *\"", 0.2, "  require_announcement: true\n");
    let p = port();
    let public = format!("http://127.0.0.1:{p}");
    let args = ["--notify-webhook", &webhook, "--public-url", &public];
    let mut d = fleet.daemon(&state, p, &args);
    wait_until(60, "the refusal's notification", || !hook.of("failed").is_empty());
    assert_eq!(runs(&state)[0].status, "refused");
    let text = hook.of("failed")[0]["text"].as_str().unwrap_or_default().to_string();
    assert!(text.contains("maintenance refused, nothing changed: no announcement pins this maintenance"), "{text}");
    assert_eq!(terminate(&mut d), Some(0));

    // An operator's run stops at the brake (2 of 2 accounts): "braked", linking the plan,
    // which the daemon serves.
    let mut d = fleet.daemon(&state, p, &[&args[..], &["--run-now"]].concat());
    wait_until(120, "the brake's notification", || !hook.of("braked").is_empty());
    let run = runs(&state)[0].clone();
    assert_eq!(run.status, "braked");
    let braked = &hook.of("braked")[0];
    let text = braked["text"].as_str().unwrap_or_default();
    assert!(text.contains(&format!("maintenance run {} stopped at the blast-radius brake", run.id)), "{text}");
    assert!(text.contains(&format!("cm-baseline runs approve {}", run.id)), "{text}");
    let link = linked_path(braked, p);
    assert_eq!(link, format!("/reports/run-{}-plan.md", run.id));
    let (status, plan) = http_get(p, &link).unwrap();
    assert_eq!(status, 200);
    assert!(plan.contains("cm-helpdesk") && plan.contains(&fleet.accounts[1]), "{plan}");
    assert_eq!(http_get(p, "/reports/..%2Fjournal.sqlite").map(|r| r.0), Some(404));

    // b-co changes again before the approval: refused there, so the run finishes with a
    // failure: "finished_with_failures", linking the run's report.
    let b_co = fleet.accounts[1].clone();
    fleet.emu.call(&b_co, "iam", "update_role", json!({"RoleName": "cm-helpdesk", "Description": "changed again"}));
    let out = approve(&state, run.id, "operator");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_until(120, "the failure's notification", || !hook.of("finished_with_failures").is_empty());
    let failed = &hook.of("finished_with_failures")[0];
    let text = failed["text"].as_str().unwrap_or_default();
    assert!(text.contains(&format!("maintenance run {} done with 1 of 2 account(s) failed: {b_co}", run.id)), "{text}");
    let (status, report) = http_get(p, &linked_path(failed, p)).unwrap();
    assert_eq!(status, 200);
    assert!(report.contains("changed since the plan was approved"), "{report}");
    assert_eq!(terminate(&mut d), Some(0));

    // The announcement finds b-co's drift: "announced", linking the announcement.
    fleet.edit_settings("announce: \"0 0 0 1 1 *\"", &format!("announce: {}", in_seconds(5)));
    let mut d = fleet.daemon(&state, p, &args);
    wait_until(120, "the announcement's notification", || !hook.of("announced").is_empty());
    let announced = &hook.of("announced")[0];
    let text = announced["text"].as_str().unwrap_or_default();
    assert!(text.contains("would make 1 change(s) (0 delete(s)) in 1 of 2 account(s)"), "{text}");
    let link = linked_path(announced, p);
    assert!(link.starts_with("/announcements/announce-") && link.ends_with(".md"), "{link}");
    let (status, md) = http_get(p, &link).unwrap();
    assert_eq!(status, 200);
    assert!(md.contains(&format!("| {b_co} | b-co | basic | 1 |")), "{md}");
    let (_, metrics) = http_get(p, "/metrics").unwrap();
    assert!(metrics.contains("cm_notifications_total{event=\"announced\",outcome=\"ok\"} 1"), "{metrics}");
    assert_eq!(terminate(&mut d), Some(0));
    // Each event was told once, and nothing else.
    let events: Vec<String> =
        hook.got.lock().unwrap().iter().map(|m| m["event"].as_str().unwrap_or("?").to_string()).collect();
    assert_eq!(events, ["failed", "braked", "finished_with_failures", "announced"], "{events:?}");
}

#[test]
fn a_journal_that_cannot_be_written_mid_run_stops_the_run_and_loses_nothing() {
    let members: Vec<(String, &str)> = (0..6).map(|i| (format!("co-{i}"), "basic")).collect();
    let members: Vec<(&str, &str)> = members.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let fleet = Fleet::new(&members);
    daemon_settings(&fleet, "\"0 0 0 1 1 *\"", 1.0);
    faults(&fleet, Some(json!({"latency_ms": 100})));
    let state = fleet.state();
    let p = port();
    let mut d = fleet.daemon(&state, p, &["--run-now", "--parallel-accounts", "1"]);
    wait_until(120, "two accounts done", || {
        runs(&state).first().is_some_and(|r| count(&accounts(&state, r.id), "done") >= 2)
    });

    // Another process holds the journal's write lock (a backup, an operator's sqlite3
    // shell): every write of the daemon fails after SQLite's busy timeout.
    let lock = rusqlite::Connection::open(state.join("journal.sqlite")).unwrap();
    lock.busy_timeout(std::time::Duration::from_secs(30)).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    wait_until(60, "/readyz to fail", || http_get(p, "/readyz").is_some_and(|(s, _)| s == 503));
    let (_, metrics) = http_get(p, "/metrics").unwrap();
    assert!(!metrics.contains("cm_journal_errors_total 0"), "{metrics}");
    assert!(metrics.contains("cm_journal_ok 0"), "{metrics}");
    let run = runs(&state)[0].clone();
    let before = accounts(&state, run.id);
    assert!(count(&before, "done") < 6, "the run finished before the journal failed: {before:?}");
    // Stopped: while the journal cannot be written, no member account sees a request (the
    // daemon tries to resume every few seconds, and stops at the first write).
    faults(&fleet, Some(json!({"latency_ms": 100, "tally": true})));
    std::thread::sleep(std::time::Duration::from_secs(8));
    let held = faults(&fleet, None);
    for a in &fleet.accounts {
        assert_eq!(tallied(&held, a, None), 0, "{a} was worked on while the journal could not record it");
    }
    assert_eq!(accounts(&state, run.id), before, "the journal changed while locked");
    lock.execute_batch("COMMIT").unwrap();
    drop(lock);

    // Resolved: the daemon (still the same process) resumes the same run by itself, and
    // every account is done exactly once; the one in flight when the journal failed is
    // done again (its changes were made; the second pass finds nothing to change).
    faults(&fleet, Some(json!({})));
    wait_until(120, "the run to finish", || runs(&state).first().is_some_and(|r| r.status == "done"));
    assert_eq!(runs(&state).len(), 1, "a new run instead of the resumed one");
    let after = accounts(&state, run.id);
    assert!(after.iter().all(|r| r.status == "done" && r.done_count == 1), "{after:?}");
    for a in &fleet.accounts {
        assert!(managed_role(&fleet, a), "{a} was forgotten");
    }
    wait_until(30, "/readyz to pass", || http_get(p, "/readyz").is_some_and(|(s, _)| s == 200));
    assert_eq!(terminate(&mut d), Some(0), "the daemon kept its lease through the busy journal");
}

/// The metric families of a scrape, as the Prometheus client's OpenMetrics parser reads
/// them (tests/support/promparse.py): name → type, sample names, label sets.
fn prometheus_families(scrape: &str) -> Value {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), scrape).unwrap();
    let out = Command::new(support::python())
        .arg(support::repo().join("tests/support/promparse.py"))
        .arg(file.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "the Prometheus parser refused the scrape: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The DynamoDB journal of `journal` (a `--journal` value), opened as another process would.
fn dynamo(fleet: &Fleet, journal: &str) -> std::sync::Arc<dyn Journal> {
    let at = cm_baseline::journal::Location::parse(journal).expect("a journal location");
    support::block_on(async {
        // The test process has no AWS environment: the emulator's endpoint, given here.
        let sdk = fleet.emu.sdk().await;
        let cm_baseline::journal::Location::DynamoDb { table, s3 } = at else { panic!("not DynamoDB") };
        std::sync::Arc::new(cm_baseline::journal::dynamodb::DynamoJournal::open(&sdk, &table, s3).await.unwrap())
            as std::sync::Arc<dyn Journal>
    })
}

#[test]
fn a_replaced_task_resumes_its_run_from_dynamodb_with_an_empty_disk_and_does_nothing_twice() {
    let members: Vec<(String, &str)> = (0..6).map(|i| (format!("co-{i}"), "basic")).collect();
    let members: Vec<(&str, &str)> = members.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let fleet = Fleet::new(&members);
    daemon_settings(&fleet, "\"0 0 0 1 1 *\"", 1.0);
    let journal = support::block_on(fleet.emu.journal_table("cm-baseline-journal"));
    let env = [("CM_JOURNAL", journal.as_str())];
    let j = dynamo(&fleet, &journal);
    let runs = || support::block_on(j.runs(10)).unwrap();
    let rows = |id| support::block_on(j.accounts(id)).unwrap();
    faults(&fleet, Some(json!({"tally": true})));

    // The first task, on a disk of its own.
    let disk = tempfile::tempdir().unwrap();
    let p = port();
    let mut d = fleet.daemon_with(&disk.path().join("state"), p, &["--run-now", "--parallel-accounts", "1"], &env);
    wait_until(120, "two accounts done", || runs().first().is_some_and(|r| count(&rows(r.id), "done") >= 2));
    // A second daemon on the same table is refused by the lease, whatever its disk.
    let other = tempfile::tempdir().unwrap();
    let mut second = fleet.daemon_with(other.path(), port(), &[], &env);
    wait_until(60, "the second daemon to give up", || second.try_wait().ok().flatten().is_some());
    assert_eq!(second.wait().unwrap().code(), Some(1));
    let said = std::fs::read_to_string(other.path().join("daemon.log")).unwrap();
    assert!(said.contains("the fleet is in use by cm-baseline daemon"), "{said}");

    // The task is replaced: killed, and its disk gone with it.
    d.kill().unwrap();
    let _ = d.wait();
    drop(disk);
    let run = runs()[0].clone();
    let before = rows(run.id);
    let done_before = count(&before, "done");
    assert!((2..6).contains(&done_before), "{before:?}");
    let first = faults(&fleet, None);
    faults(&fleet, Some(json!({"tally": true})));

    // The new task starts with an empty disk: the lease of the dead one is taken over, the
    // run resumed with the desired state it pinned (kept in the journal), and finished.
    let fresh = tempfile::tempdir().unwrap();
    let mut d = fleet.daemon_with(&fresh.path().join("state"), p, &[], &env);
    wait_until(180, "the resumed run to finish", || runs().first().is_some_and(|r| r.status == "done"));
    assert_eq!(runs().len(), 1, "the new task started a new run instead of resuming");
    let after = rows(run.id);
    assert!(after.iter().all(|r| r.status == "done" && r.done_count == 1), "{after:?}");
    for b in before.iter().filter(|b| b.status == "done") {
        let a = after.iter().find(|a| a.account_id == b.account_id).unwrap();
        assert_eq!(a.attempts, b.attempts, "{} was redone", a.account_id);
    }
    let second_period = faults(&fleet, None);
    let done_first = with_status(&before, "done");
    for a in &fleet.accounts {
        let creates = tallied(&first, a, Some("CreateRole")) + tallied(&second_period, a, Some("CreateRole"));
        assert_eq!(creates, 3, "{a}: CreateRole {creates} times");
        if done_first.contains(a) {
            assert_eq!(tallied(&second_period, a, None), 0, "{a} was done before the kill, yet worked on again");
        }
    }
    let log = std::fs::read_to_string(fresh.path().join("state/daemon.log")).unwrap();
    assert!(log.contains("resum"), "{log}");
    eprintln!("task replacement: {done_before} of 6 done before kill -9, 6 after, each once");
    assert_eq!(terminate(&mut d), Some(0));
}

#[test]
fn two_shards_share_one_run_braked_for_the_whole_fleet_and_approved_once() {
    let members: Vec<(String, &str)> = (0..6).map(|i| (format!("co-{i}"), "basic")).collect();
    let members: Vec<(&str, &str)> = members.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let fleet = Fleet::new(&members);
    // Every account changes at its first maintenance: 6 of 6, above the 50 % allowed.
    daemon_settings(&fleet, "\"0 0 0 1 1 *\"", 0.5);
    let journal = support::block_on(fleet.emu.journal_table("cm-baseline-journal"));
    let env = [("CM_JOURNAL", journal.as_str())];
    let j = dynamo(&fleet, &journal);
    let runs = || support::block_on(j.runs(10)).unwrap();
    let rows = |id| support::block_on(j.accounts(id)).unwrap();
    let shard = |i: u32| cm_baseline::inventory::Shard { index: i, count: 2 };
    let mine = |i: u32| fleet.accounts.iter().filter(|a| shard(i).contains(a)).count();
    assert!(mine(0) > 0 && mine(1) > 0, "the test needs accounts in both shards");

    // Two shard daemons on one table, each with a disk of its own, started together.
    let (disk0, disk1) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (p0, p1) = (port(), port());
    let mut d0 = fleet.daemon_with(disk0.path(), p0, &["--run-now", "--shard", "0/2"], &env);
    let mut d1 = fleet.daemon_with(disk1.path(), p1, &["--run-now", "--shard", "1/2"], &env);
    wait_until(120, "the fleet-wide brake", || runs().iter().any(|r| r.status == "braked"));
    let braked: Vec<_> = runs().into_iter().filter(|r| r.status != "superseded").collect();
    assert_eq!(braked.len(), 1, "the shards did not share one run: {braked:?}");
    let run = braked[0].clone();
    // The brake weighed the whole fleet, not one shard's share.
    assert!(run.detail.as_deref().unwrap_or("").contains("6 of 6 accounts"), "{run:?}");
    let parts = support::block_on(j.shards_planned(run.id)).unwrap();
    let planned: Vec<(&str, i64)> = parts.iter().map(|p| (p.shard.as_str(), p.accounts)).collect();
    assert_eq!(planned, [("0/2", mine(0) as i64), ("1/2", mine(1) as i64)]);
    assert_eq!(rows(run.id).len(), 6, "the run holds the whole fleet's accounts");
    assert!(rows(run.id).iter().all(|r| r.status == "pending"), "the brake let a change through");
    // A daemon on the whole fleet overlaps both shards: refused.
    let whole = tempfile::tempdir().unwrap();
    let mut third = fleet.daemon_with(whole.path(), port(), &[], &env);
    wait_until(60, "the whole-fleet daemon to give up", || third.try_wait().ok().flatten().is_some());
    assert_eq!(third.wait().unwrap().code(), Some(1));
    let said = std::fs::read_to_string(whole.path().join("daemon.log")).unwrap();
    assert!(said.contains("shard 0/2 is in use by cm-baseline daemon"), "{said}");

    // One approval, from another process, lets both shards go ahead.
    let approved = support::block_on(j.approve(run.id, "ops")).unwrap();
    let logs = || {
        [disk0.path(), disk1.path()]
            .map(|d| std::fs::read_to_string(d.join("daemon.log")).unwrap_or_default())
            .join("\n")
    };
    assert!(approved, "not braked when approved: {:?}\n{}", runs(), logs());
    wait_until(180, "the approved run to finish", || runs().iter().any(|r| r.id == run.id && r.status == "done"));
    let after = rows(run.id);
    assert!(after.iter().all(|r| r.status == "done" && r.done_count == 1 && r.attempts == 1), "{after:?}");
    for (log, i) in [(disk0.path(), 0), (disk1.path(), 1)] {
        let log = std::fs::read_to_string(log.join("daemon.log")).unwrap();
        let worked = fleet.accounts.iter().filter(|a| log.contains(&format!("\"account\":\"{a}\""))).count();
        assert_eq!(worked, mine(i), "shard {i}/2 worked on another shard's accounts:\n{log}");
    }
    // Either shard's status page shows the whole fleet's run.
    let (_, page) = http_get(p1, "/").unwrap();
    assert!(fleet.accounts.iter().all(|a| page.contains(a.as_str())), "{page}");
    assert_eq!(terminate(&mut d0), Some(0));
    assert_eq!(terminate(&mut d1), Some(0));
}

#[test]
fn a_new_account_is_set_up_once_by_the_daemon_and_initial_setup_is_never_redone_by_surprise() {
    let fleet = Fleet::new(&[("old-co", "basic")]);
    daemon_settings(&fleet, "\"0 0 0 1 1 *\"", 1.0);
    let old = fleet.accounts[0].clone();
    let user_name = |a: &str| format!("initial-admin-user-{a}");
    let has_user = |a: &str| fleet.emu.aws(a, "iam", "get_user", json!({"UserName": user_name(a)})).is_ok();
    let delete_user = |a: &str| {
        let (user, group) = (user_name(a), format!("admin-group-{a}"));
        fleet.emu.call(a, "iam", "remove_user_from_group", json!({"UserName": user, "GroupName": group}));
        fleet.emu.call(a, "iam", "delete_user", json!({"UserName": user}));
    };
    assert_eq!(fleet.report(&["apply", "--initial"]).0, 0);
    assert!(has_user(&old));
    // The customer deletes the initial admin user, as the specification allows.
    delete_user(&old);

    // A fleet-wide initial setup leaves the account set up already out; named, it is refused.
    let out = fleet.run(&["apply", "--initial"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("set up already are left out") && err.contains(&old), "{err}");
    assert!(!has_user(&old), "a fleet-wide --initial recreated the user the customer deleted");
    let out = fleet.run(&["apply", "--initial", "--account", &old]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("initial setup is done already on {old}")) && err.contains("--force-initial"),
        "{err}"
    );
    assert!(!has_user(&old), "a refused --initial changed something");
    let out = fleet.run(&["apply", "--initial", "--force-initial"]);
    assert_eq!(out.status.code(), Some(1), "--force-initial fleet-wide must be refused");
    let listed = String::from_utf8_lossy(&fleet.run(&["accounts"]).stdout).to_string();
    assert!(listed.contains("(initial setup: done "), "{listed}");

    // A new account joins mid-week: the daemon sets it up without waiting for the maintenance.
    let new = fleet.emu.add_members(&["new-co"]).remove(0);
    fleet.enrol(&new, "new-co", "basic", &[]);
    let listed = String::from_utf8_lossy(&fleet.run(&["accounts"]).stdout).to_string();
    assert!(listed.lines().any(|l| l.starts_with(new.as_str()) && l.ends_with("(initial setup: pending)")), "{listed}");
    let state = fleet.state();
    let onboardings = || runs(&state).into_iter().filter(|r| r.kind == "onboarding").collect::<Vec<_>>();
    let mut d = fleet.daemon(&state, port(), &["--onboard-every", "2"]);
    let started = std::time::Instant::now();
    while !onboardings().iter().any(|r| r.status == "done") {
        let log = std::fs::read_to_string(state.join("daemon.log")).unwrap_or_default();
        assert!(started.elapsed().as_secs() < 120, "no onboarding: {:?}\n{log}", runs(&state));
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    assert!(has_user(&new), "the new account did not get its initial admin user");
    assert!(!has_user(&old), "onboarding redid an account set up already");
    let runs_now = onboardings();
    assert_eq!(runs_now.len(), 1, "{runs_now:?}");
    let rows = accounts(&state, runs_now[0].id);
    let rows: Vec<(&str, &str, i64)> =
        rows.iter().map(|r| (r.account_id.as_str(), r.status.as_str(), r.done_count)).collect();
    assert_eq!(rows, [(new.as_str(), "done", 1)]);
    assert_eq!(terminate(&mut d), Some(0));

    // A second start does not set it up again, whatever the customer removed since.
    delete_user(&new);
    let mut d = fleet.daemon(&state, port(), &["--onboard-every", "1"]);
    std::thread::sleep(std::time::Duration::from_secs(6));
    assert_eq!(terminate(&mut d), Some(0));
    assert_eq!(onboardings().len(), 1, "{:?}", onboardings());
    assert!(!has_user(&new) && !has_user(&old));

    // A journal that never recorded them (accounts set up before initial setup was
    // recorded): their tagged roles are there, so they are recognised, and nothing applied.
    let fresh = tempfile::tempdir().unwrap();
    let mut d = fleet.daemon(fresh.path(), port(), &["--onboard-every", "1"]);
    let log = || std::fs::read_to_string(fresh.path().join("daemon.log")).unwrap_or_default();
    wait_until(60, "both accounts recognised", || log().matches("recognised as set up before").count() == 2);
    assert_eq!(terminate(&mut d), Some(0));
    assert!(!has_user(&new) && !has_user(&old), "recognised accounts were set up again");
    assert!(runs(fresh.path()).is_empty(), "{:?}", runs(fresh.path()));
}
