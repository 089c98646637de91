//! The daemon's counters, rendered in the Prometheus text format for `/metrics`.

use crate::aws::CallStats;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Metrics {
    /// (kind, status) → runs.
    runs: Mutex<BTreeMap<(String, String), u64>>,
    /// outcome → accounts.
    accounts: Mutex<BTreeMap<String, u64>>,
    /// (feature, action) → changes applied.
    changes: Mutex<BTreeMap<(String, String), u64>>,
    /// kind → seconds of the last run.
    last_duration: Mutex<BTreeMap<String, f64>>,
    /// job → Unix time of its next run.
    next_run: Mutex<BTreeMap<String, i64>>,
    /// outcome (`ok`, `failed`) → announcement files uploaded to S3.
    announce_uploads: Mutex<BTreeMap<String, u64>>,
    /// (event, outcome) → webhook notifications.
    notifications: Mutex<BTreeMap<(String, String), u64>>,
    pub desired_state_valid: AtomicBool,
    pub aws_ok: AtomicBool,
    /// False from a journal error until the journal works again.
    pub journal_ok: AtomicBool,
    /// An unfinished maintenance run waits for the maintenance window.
    pub maintenance_waiting: AtomicBool,
    pub journal_errors: AtomicU64,
    pub brake_stops: AtomicU64,
    pub stats: Arc<CallStats>,
}

fn bump<K: Ord>(m: &Mutex<BTreeMap<K, u64>>, k: K, by: u64) {
    *m.lock().unwrap_or_else(|p| p.into_inner()).entry(k).or_default() += by;
}

/// Escapes a label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    pub fn new(stats: Arc<CallStats>) -> Self {
        Self { stats, ..Default::default() }
    }
    pub fn run_finished(&self, kind: &str, status: &str, seconds: f64) {
        bump(&self.runs, (kind.to_string(), status.to_string()), 1);
        self.last_duration.lock().unwrap_or_else(|p| p.into_inner()).insert(kind.to_string(), seconds);
    }
    pub fn account_finished(&self, outcome: &str) {
        bump(&self.accounts, outcome.to_string(), 1);
    }
    pub fn change_applied(&self, feature: &str, action: &str) {
        bump(&self.changes, (feature.to_string(), action.to_string()), 1);
    }
    pub fn announcement_uploaded(&self, ok: bool) {
        bump(&self.announce_uploads, if ok { "ok" } else { "failed" }.to_string(), 1);
    }
    pub fn notified(&self, event: &str, ok: bool) {
        bump(&self.notifications, (event.to_string(), if ok { "ok" } else { "failed" }.to_string()), 1);
    }
    pub fn set_next_run(&self, job: &str, unix: i64) {
        self.next_run.lock().unwrap_or_else(|p| p.into_inner()).insert(job.to_string(), unix);
    }
    pub fn ready(&self) -> bool {
        self.desired_state_valid.load(Ordering::Relaxed)
            && self.aws_ok.load(Ordering::Relaxed)
            && self.journal_ok.load(Ordering::Relaxed)
    }

    pub fn render(&self) -> String {
        let mut o = String::new();
        let mut lines = vec![];
        let n = family(&mut o, "cm_runs_total", "counter", "Runs finished, by kind and status.");
        for ((k, s), v) in self.runs.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            lines.push(format!("{n}{{kind=\"{}\",status=\"{}\"}} {v}", label(k), label(s)));
        }
        flush(&mut o, &mut lines);
        let n = family(&mut o, "cm_accounts_total", "counter", "Accounts finished within runs, by outcome.");
        for (k, v) in self.accounts.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            lines.push(format!("{n}{{outcome=\"{}\"}} {v}", label(k)));
        }
        flush(&mut o, &mut lines);
        let n = family(&mut o, "cm_changes_total", "counter", "Changes applied, by feature and action.");
        for ((f, a), v) in self.changes.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            lines.push(format!("{n}{{feature=\"{}\",action=\"{}\"}} {v}", label(f), label(a)));
        }
        flush(&mut o, &mut lines);
        let n = family(&mut o, "cm_run_duration_seconds", "gauge", "Duration of the last run, by kind.");
        for (k, v) in self.last_duration.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            lines.push(format!("{n}{{kind=\"{}\"}} {v:.3}", label(k)));
        }
        flush(&mut o, &mut lines);
        let n =
            family(&mut o, "cm_next_run_timestamp_seconds", "gauge", "Unix time of the next scheduled run, by job.");
        for (k, v) in self.next_run.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            lines.push(format!("{n}{{job=\"{}\"}} {v}", label(k)));
        }
        flush(&mut o, &mut lines);
        let n = family(
            &mut o,
            "cm_announcement_uploads_total",
            "counter",
            "Announcement files uploaded to daemon.announce_s3, by outcome.",
        );
        for (k, v) in self.announce_uploads.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            lines.push(format!("{n}{{outcome=\"{}\"}} {v}", label(k)));
        }
        flush(&mut o, &mut lines);
        let n = family(
            &mut o,
            "cm_notifications_total",
            "counter",
            "Webhook notifications, by event and outcome (failed: not delivered after every attempt).",
        );
        for ((e, k), v) in self.notifications.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            lines.push(format!("{n}{{event=\"{}\",outcome=\"{}\"}} {v}", label(e), label(k)));
        }
        flush(&mut o, &mut lines);

        // AWS calls, without the account and region labels (bounded cardinality).
        let mut calls: BTreeMap<(String, String, String), u64> = BTreeMap::new();
        let (mut throttled, mut retries) = (0, 0);
        for (k, c) in self.stats.totals() {
            *calls.entry((k.service, k.operation, k.outcome)).or_default() += c.calls;
            throttled += c.throttled;
            retries += c.retries;
        }
        let n = family(&mut o, "cm_api_calls_total", "counter", "AWS API calls, by service, operation and outcome.");
        for ((s, op, out), v) in calls {
            lines.push(format!(
                "{n}{{service=\"{}\",operation=\"{}\",outcome=\"{}\"}} {v}",
                label(&s),
                label(&op),
                label(&out)
            ));
        }
        flush(&mut o, &mut lines);
        let n = family(&mut o, "cm_api_throttles_total", "counter", "AWS API attempts answered with throttling.");
        let _ = writeln!(o, "{n} {throttled}");
        let n = family(&mut o, "cm_api_retries_total", "counter", "AWS API attempts beyond the first.");
        let _ = writeln!(o, "{n} {retries}");
        let n = family(&mut o, "cm_brake_stops_total", "counter", "Runs stopped by the blast-radius brake.");
        let _ = writeln!(o, "{n} {}", self.brake_stops.load(Ordering::Relaxed));
        let n = family(
            &mut o,
            "cm_desired_state_valid",
            "gauge",
            "1 when desired state loaded without error at the last check.",
        );
        let _ = writeln!(o, "{n} {}", u8::from(self.desired_state_valid.load(Ordering::Relaxed)));
        let n = family(&mut o, "cm_aws_ok", "gauge", "1 when the last Organizations read succeeded.");
        let _ = writeln!(o, "{n} {}", u8::from(self.aws_ok.load(Ordering::Relaxed)));
        let n = family(
            &mut o,
            "cm_maintenance_waiting",
            "gauge",
            "1 while an unfinished maintenance run waits for the maintenance window.",
        );
        let _ = writeln!(o, "{n} {}", u8::from(self.maintenance_waiting.load(Ordering::Relaxed)));
        let n = family(&mut o, "cm_journal_ok", "gauge", "0 from a journal error until the journal works again.");
        let _ = writeln!(o, "{n} {}", u8::from(self.journal_ok.load(Ordering::Relaxed)));
        let n = family(&mut o, "cm_journal_errors_total", "counter", "Journal reads and writes that failed.");
        let _ = writeln!(o, "{n} {}", self.journal_errors.load(Ordering::Relaxed));
        o
    }
}

/// Writes the HELP and TYPE lines of a metric family; returns its name.
fn family(o: &mut String, name: &str, kind: &str, help: &str) -> String {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
    name.to_string()
}

fn flush(o: &mut String, lines: &mut Vec<String>) {
    for l in lines.drain(..) {
        o.push_str(&l);
        o.push('\n');
    }
}
