//! The daemon's metrics, for `/metrics`, through the `prometheus-client` crate (OpenMetrics
//! text). What the daemon counts as it goes is kept in the crate's metric types; what other
//! parts hold (AWS call counts, the journal's runs and approvals, health flags) is read when
//! scraped, by a collector, so it cannot drift from its source. The families are listed in
//! deploy/monitoring/metrics.txt, which the alert rules and the dashboard are checked
//! against, and a test checks that list against a scrape.

use crate::aws::CallStats;
use crate::journal::{run_status, Journal};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

type Labels = Vec<(&'static str, String)>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

fn labels<const N: usize>(pairs: [(&'static str, &str); N]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

/// Run durations: 1 s to about 9 h.
fn run_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
}

/// AWS call durations (retries included): 5 ms to about 40 s.
fn call_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// What the collector reads when scraped.
#[derive(Default)]
pub struct Live {
    pub desired_state_valid: AtomicBool,
    pub aws_ok: AtomicBool,
    /// False from a journal error until the journal works again.
    pub journal_ok: AtomicBool,
    /// An unfinished maintenance run waits for the maintenance window.
    pub maintenance_waiting: AtomicBool,
    pub journal_errors: AtomicU64,
    pub brake_stops: AtomicU64,
    /// The journal as last read by [`Metrics::refresh`].
    journal: Mutex<JournalView>,
    stats: Arc<CallStats>,
}

#[derive(Default, Clone)]
struct JournalView {
    /// Accounts of the latest maintenance run, by status.
    accounts: BTreeMap<String, i64>,
    pending_approvals: i64,
    /// When the oldest braked, unapproved run started (Unix seconds); 0 when none.
    oldest_pending: i64,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

pub struct Metrics {
    live: Arc<Live>,
    registry: Registry,
    runs: Family<Labels, Counter>,
    accounts: Family<Labels, Counter>,
    changes: Family<Labels, Counter>,
    run_duration: Histograms,
    last_success: Family<Labels, Gauge>,
    next_run: Family<Labels, Gauge>,
    announce_uploads: Family<Labels, Counter>,
    notifications: Family<Labels, Counter>,
}

impl std::ops::Deref for Metrics {
    type Target = Live;
    fn deref(&self) -> &Live {
        &self.live
    }
}

impl Metrics {
    pub fn new(stats: Arc<CallStats>) -> Self {
        let live = Arc::new(Live { stats: stats.clone(), ..Default::default() });
        let mut registry = Registry::default();
        let runs = Family::<Labels, Counter>::default();
        registry.register("cm_runs", "Runs finished, by kind and status.", runs.clone());
        let accounts = Family::<Labels, Counter>::default();
        registry.register("cm_accounts", "Accounts finished within runs, by outcome.", accounts.clone());
        let changes = Family::<Labels, Counter>::default();
        registry.register("cm_changes", "Changes applied, by feature and action.", changes.clone());
        let run_duration: Histograms = Family::new_with_constructor(run_buckets);
        registry.register("cm_run_duration_seconds", "Duration of runs, by kind.", run_duration.clone());
        let last_success = Family::<Labels, Gauge>::default();
        registry.register(
            "cm_last_successful_run_timestamp_seconds",
            "Unix time the last run of each kind finished done.",
            last_success.clone(),
        );
        let next_run = Family::<Labels, Gauge>::default();
        registry.register(
            "cm_next_run_timestamp_seconds",
            "Unix time of the next scheduled run, by job.",
            next_run.clone(),
        );
        let announce_uploads = Family::<Labels, Counter>::default();
        registry.register(
            "cm_announcement_uploads",
            "Announcement files uploaded to daemon.announce_s3, by outcome.",
            announce_uploads.clone(),
        );
        let notifications = Family::<Labels, Counter>::default();
        registry.register(
            "cm_notifications",
            "Webhook notifications, by event and outcome (failed: not delivered after every attempt).",
            notifications.clone(),
        );
        let call_duration: Histograms = Family::new_with_constructor(call_buckets);
        registry.register(
            "cm_aws_call_duration_seconds",
            "Duration of AWS calls, retries and backoff included, by service.",
            call_duration.clone(),
        );
        stats.on_latency(move |service, secs| {
            call_duration.get_or_create(&labels([("service", service)])).observe(secs);
        });
        registry.register_collector(Box::new(live.clone()));
        Self {
            live,
            registry,
            runs,
            accounts,
            changes,
            run_duration,
            last_success,
            next_run,
            announce_uploads,
            notifications,
        }
    }

    pub fn run_finished(&self, kind: &str, status: &str, seconds: f64) {
        self.runs.get_or_create(&labels([("kind", kind), ("status", status)])).inc();
        self.run_duration.get_or_create(&labels([("kind", kind)])).observe(seconds);
        if status == run_status::DONE {
            self.last_success.get_or_create(&labels([("kind", kind)])).set(chrono::Utc::now().timestamp());
        }
    }
    pub fn account_finished(&self, outcome: &str) {
        self.accounts.get_or_create(&labels([("outcome", outcome)])).inc();
    }
    pub fn change_applied(&self, feature: &str, action: &str) {
        self.changes.get_or_create(&labels([("feature", feature), ("action", action)])).inc();
    }
    pub fn announcement_uploaded(&self, ok: bool) {
        self.announce_uploads.get_or_create(&labels([("outcome", if ok { "ok" } else { "failed" })])).inc();
    }
    pub fn notified(&self, event: &str, ok: bool) {
        self.notifications
            .get_or_create(&labels([("event", event), ("outcome", if ok { "ok" } else { "failed" })]))
            .inc();
    }
    pub fn set_next_run(&self, job: &str, unix: i64) {
        self.next_run.get_or_create(&labels([("job", job)])).set(unix);
    }
    pub fn ready(&self) -> bool {
        self.desired_state_valid.load(Ordering::Relaxed)
            && self.aws_ok.load(Ordering::Relaxed)
            && self.journal_ok.load(Ordering::Relaxed)
    }

    /// Reads what the metrics show of the journal: the latest maintenance run's accounts by
    /// status, and the braked runs waiting for approval. A journal that cannot be read keeps
    /// the last figures (and the error is returned, for the caller to count).
    pub async fn refresh(&self, journal: &dyn Journal) -> crate::journal::Result<()> {
        let runs = journal.runs(50).await?;
        let mut view = JournalView::default();
        if let Some(latest) = runs.iter().find(|r| r.kind == "maintenance") {
            for a in journal.accounts(latest.id).await? {
                *view.accounts.entry(a.status).or_default() += 1;
            }
        }
        let braked: Vec<i64> = runs
            .iter()
            .filter(|r| r.status == run_status::BRAKED)
            .filter_map(|r| chrono::DateTime::parse_from_rfc3339(&r.started_at).ok().map(|t| t.timestamp()))
            .collect();
        view.pending_approvals = braked.len() as i64;
        view.oldest_pending = braked.iter().copied().min().unwrap_or(0);
        *self.live.journal.lock().unwrap_or_else(|p| p.into_inner()) = view;
        Ok(())
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        out
    }
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> std::fmt::Result {
    let c = ConstCounter::new(value);
    c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> std::fmt::Result {
    let g = ConstGauge::new(value);
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        // AWS calls, without the account and region labels (bounded cardinality).
        let mut calls: BTreeMap<(String, String, String), u64> = BTreeMap::new();
        let (mut throttled, mut retries) = (0, 0);
        for (k, c) in self.stats.totals() {
            *calls.entry((k.service, k.operation, k.outcome)).or_default() += c.calls;
            throttled += c.throttled;
            retries += c.retries;
        }
        {
            let kind = ConstCounter::new(0u64).metric_type();
            let mut family = encoder.encode_descriptor(
                "cm_api_calls",
                "AWS API calls, by service, operation and outcome.",
                None,
                kind,
            )?;
            for ((service, op, outcome), v) in calls {
                let l = [("service", service), ("operation", op), ("outcome", outcome)];
                ConstCounter::new(v).encode(family.encode_family(&l)?)?;
            }
        }
        counter(&mut encoder, "cm_api_throttles", "AWS API attempts answered with throttling.", throttled)?;
        counter(&mut encoder, "cm_api_retries", "AWS API attempts beyond the first.", retries)?;
        let brakes = self.brake_stops.load(Ordering::Relaxed);
        counter(&mut encoder, "cm_brake_stops", "Runs stopped by the blast-radius brake.", brakes)?;
        let errors = self.journal_errors.load(Ordering::Relaxed);
        counter(&mut encoder, "cm_journal_errors", "Journal reads and writes that failed.", errors)?;
        for (name, help, flag) in [
            (
                "cm_desired_state_valid",
                "1 when desired state loaded without error at the last check.",
                &self.desired_state_valid,
            ),
            ("cm_aws_ok", "1 when the last Organizations read succeeded.", &self.aws_ok),
            (
                "cm_maintenance_waiting",
                "1 while an unfinished maintenance run waits for the maintenance window.",
                &self.maintenance_waiting,
            ),
            ("cm_journal_ok", "0 from a journal error until the journal works again.", &self.journal_ok),
        ] {
            gauge(&mut encoder, name, help, i64::from(flag.load(Ordering::Relaxed)))?;
        }
        let view = self.journal.lock().unwrap_or_else(|p| p.into_inner()).clone();
        {
            let kind = ConstGauge::new(0i64).metric_type();
            let mut family = encoder.encode_descriptor(
                "cm_latest_run_accounts",
                "Accounts of the latest maintenance run, by current status.",
                None,
                kind,
            )?;
            for (status, n) in &view.accounts {
                ConstGauge::new(*n).encode(family.encode_family(&[("status", status.as_str())])?)?;
            }
        }
        gauge(&mut encoder, "cm_pending_approvals", "Braked runs waiting for an approval.", view.pending_approvals)?;
        gauge(
            &mut encoder,
            "cm_oldest_pending_approval_timestamp_seconds",
            "Unix time the oldest braked, unapproved run started; 0 when none.",
            view.oldest_pending,
        )
    }
}
