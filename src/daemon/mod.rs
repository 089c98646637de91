//! `cm-baseline daemon`: the long-running service.
//!
//! - Two weekly jobs, armed by tokio-cron-scheduler at instants computed by [`schedule`]:
//!   the **maintenance** (default Saturday 02:00 Asia/Tokyo) and the **announcement** (R5: a
//!   fleet-wide dry run of what the next maintenance would change, written as Markdown and
//!   JSON).
//! - Desired state is re-read and validated at the start of every run; an invalid edit
//!   makes that run refuse to start (journal, log, metric) and the daemon keeps running.
//! - A maintenance run plans the whole fleet first: if it would change more than the
//!   configured share of accounts, or delete anything, the **brake** stops it before the
//!   first change, until an operator approves that run (`cm-baseline runs approve ID`).
//! - Accounts are worked through with bounded concurrency, each recorded in the
//!   [`crate::journal`] as it finishes; a restarted daemon resumes an unfinished run.
//! - SIGTERM/SIGINT: no new accounts are started, in-flight ones may finish until the stop
//!   deadline, the rest stay pending (not done) for the next start; exit 0.
//! - `/readyz` reflects a check of desired state and of AWS (an Organizations read) made
//!   at start and every five minutes, besides the checks every run makes.

pub mod http;
pub mod metrics;
pub mod notify;
pub mod publish;
pub mod schedule;
pub mod status;

use crate::aws::{CallLimits, CallStats, Fleet};
use crate::desired::{self, Brake, DesiredState, Settings};
use crate::inventory::{self, Inventory};
use crate::journal::{self, run_status, Journal};
use crate::plan::{Mode, SkipReason};
use crate::report::{AccountReport, AccountStatus, Format, RunReport};
use crate::run::{run, Pass, RunOptions};
use futures::stream::{self, StreamExt};
use metrics::Metrics;
use schedule::Schedule;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_cron_scheduler::{Job, JobScheduler};

#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub desired_dir: PathBuf,
    /// Reports, announcements and the local copy of pinned desired state.
    pub state_dir: PathBuf,
    /// The journal (`--journal`; by default SQLite in the state directory).
    pub journal: journal::Location,
    /// Where announcements are written.
    pub announce_dir: PathBuf,
    pub listen: SocketAddr,
    /// Start a maintenance run at once, besides the schedule.
    pub run_now: bool,
    pub limits: CallLimits,
    pub parallel_accounts: usize,
    /// How long in-flight accounts may take to finish after SIGTERM.
    pub stop_deadline: Duration,
    /// How often accounts pending onboarding are looked for.
    pub onboard_every: Duration,
    /// The share of the fleet this daemon works on.
    pub shard: crate::inventory::Shard,
    /// Named bearer tokens that may approve braked runs over HTTP (none: no endpoint).
    pub approval_tokens: Option<PathBuf>,
    /// A Slack-compatible webhook told of brakes, failures and announcements with changes.
    pub notify_webhook: Option<String>,
    /// The daemon's listener as the people notified reach it (links to reports).
    pub public_url: Option<String>,
}

const MAINTENANCE: &str = "maintenance";
const ONBOARDING: &str = "onboarding";
const ANNOUNCE: &str = "announce";
/// How often desired state and AWS are checked for `/readyz` between runs.
const READINESS_INTERVAL: Duration = Duration::from_secs(300);

struct Daemon {
    opts: DaemonOptions,
    journal: Arc<dyn Journal>,
    metrics: Arc<Metrics>,
    stats: Arc<CallStats>,
    stopping: watch::Receiver<bool>,
    /// The settings of the last desired state that loaded without error.
    last_valid: Mutex<Option<Settings>>,
    /// Set when this daemon's lease on the fleet could not be kept: nothing more is changed.
    lease_lost: Arc<std::sync::atomic::AtomicBool>,
    notifier: Option<notify::Notifier>,
    /// The next scheduled runs, for the status page.
    next_runs: status::NextRuns,
    /// A shared run whose accounts of this shard are all done: not resumed by this shard.
    part_done: Mutex<Option<i64>>,
    /// Accounts known to be set up (onboarded): not looked up again.
    onboarded: Mutex<std::collections::HashSet<String>>,
    /// Accounts pending onboarding whose initial setup waits for an operator: told once.
    onboarding_held: Mutex<std::collections::HashSet<String>>,
}

/// Runs the daemon until SIGTERM/SIGINT. Returns the exit code.
pub async fn main(opts: DaemonOptions) -> i32 {
    let journal = match journal::open_at(&opts.journal, true).await {
        Ok(Some(j)) => j,
        Ok(None) => {
            eprintln!("error: no journal at {}", opts.journal);
            return 1;
        }
        Err(e) => {
            eprintln!("error: cannot open the journal {}: {e}", opts.journal);
            return 1;
        }
    };
    // One process changes the fleet of a state directory at a time.
    let lease = match journal::Lease::take(journal.clone(), "daemon", opts.shard).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return 1;
        }
    };
    let notifier = match &opts.notify_webhook {
        Some(url) => {
            match notify::Notifier::new(url, opts.public_url.as_deref(), &opts.state_dir, &opts.announce_dir) {
                Ok(n) => Some(n),
                Err(e) => {
                    eprintln!("error: --notify-webhook: {e}");
                    return 1;
                }
            }
        }
        None => None,
    };
    let stats = Arc::new(CallStats::default());
    let metrics = Arc::new(Metrics::new(stats.clone()));
    metrics.journal_ok.store(true, Ordering::Relaxed);
    let (stop_tx, stopping) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stop requested: no new accounts; in-flight accounts may finish");
        let _ = stop_tx.send(true);
    });

    let listener = match tokio::net::TcpListener::bind(opts.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", opts.listen);
            return 1;
        }
    };
    let mut http_stop = stopping.clone();
    let approvers = match &opts.approval_tokens {
        Some(path) => match http::Approvers::read(path) {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("error: approval tokens: {e}");
                return 1;
            }
        },
        None => None,
    };
    let files = http::Files { reports: opts.state_dir.join("reports"), announcements: opts.announce_dir.clone() };
    let next_runs = status::NextRuns::default();
    let app = http::router(metrics.clone(), journal.clone(), approvers, files, next_runs.clone());
    let server = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                // The sender lives as long as the signal task; its end is a stop as well.
                let _ = http_stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the HTTP listener failed");
        }
    });
    tracing::info!(listen = %opts.listen, state_dir = %opts.state_dir.display(), "daemon started");

    let lease_lost = lease.lost_flag();
    let d = Arc::new(Daemon {
        opts,
        journal,
        metrics,
        stats,
        stopping,
        last_valid: Mutex::new(None),
        lease_lost,
        notifier,
        next_runs,
        part_done: Mutex::new(None),
        onboarded: Mutex::new(Default::default()),
        onboarding_held: Mutex::new(Default::default()),
    });
    tokio::spawn(d.clone().watch_readiness());
    let code = d.clone().serve().await;
    if let Err(e) = server.await {
        tracing::error!(error = %e, "the HTTP listener ended abnormally");
    }
    if let Err(e) = lease.release().await {
        tracing::error!(error = %e, "cannot give the fleet's lease up: it runs out by itself");
    }
    code
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

impl Daemon {
    fn stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Loads desired state, recording validity for `/readyz` and the metrics.
    fn load(&self) -> Result<DesiredState, String> {
        let r = desired::load(&self.opts.desired_dir).map_err(|e| e.to_string());
        self.metrics.desired_state_valid.store(r.is_ok(), Ordering::Relaxed);
        if let Ok(d) = &r {
            *self.last_valid.lock().unwrap_or_else(|p| p.into_inner()) = Some(d.settings.clone());
        }
        r
    }

    fn last_valid(&self) -> Option<Settings> {
        self.last_valid.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Where the desired state of `digest` is kept.
    fn pinned_dir(&self, digest: &str) -> PathBuf {
        self.opts.state_dir.join("pinned").join(digest)
    }

    /// Keeps `snap` in the journal (once per digest), so that the run it pins can load it
    /// wherever it runs, and in the state directory, where it is loaded from; returns its
    /// digest.
    async fn keep(&self, snap: &desired::snapshot::Snapshot) -> journal::Result<String> {
        let digest = snap.digest();
        self.journal.keep_desired(&digest, &snap.to_bytes()).await?;
        self.unpack(snap, &digest)?;
        Ok(digest)
    }

    /// The pinned desired state of `digest` in the state directory: written there from the
    /// journal when missing (a replaced task starts with an empty disk).
    async fn pinned(&self, digest: &str) -> journal::Result<Result<PathBuf, String>> {
        let dir = self.pinned_dir(digest);
        if dir.exists() {
            return Ok(Ok(dir));
        }
        let Some(bytes) = self.journal.desired_kept(digest).await? else {
            return Ok(Err(format!(
                "the desired state pinned as {digest} is neither in the journal nor in {}",
                dir.display()
            )));
        };
        let snap = match desired::snapshot::Snapshot::from_bytes(&bytes) {
            Ok(s) if s.digest() == digest => s,
            Ok(_) => {
                return Ok(Err(format!(
                    "the journal's copy of the desired state pinned as {digest} has another digest"
                )))
            }
            Err(e) => return Ok(Err(format!("the journal's copy of the desired state pinned as {digest}: {e}"))),
        };
        self.unpack(&snap, digest)?;
        Ok(Ok(dir))
    }

    /// Writes `snap` under the state directory's `pinned/<digest>` (once).
    fn unpack(&self, snap: &desired::snapshot::Snapshot, digest: &str) -> journal::Result<()> {
        let digest = digest.to_string();
        let dir = self.pinned_dir(&digest);
        if !dir.exists() {
            let tmp = self.opts.state_dir.join("pinned").join(format!(".{digest}.tmp"));
            match std::fs::remove_dir_all(&tmp) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(journal::JournalError(format!("cannot clear {}: {e}", tmp.display())))
                }
                _ => {}
            }
            snap.write(&tmp)
                .and_then(|()| std::fs::rename(&tmp, &dir))
                .map_err(|e| journal::JournalError(format!("cannot keep desired state in {}: {e}", dir.display())))?;
        }
        Ok(())
    }

    /// The desired state a maintenance run applies, its digest and how it was chosen: a
    /// resumed run's own; an operator's explicit run, what is on disk; a scheduled run, what
    /// its announcement pinned (edits made since wait for the next cycle and are named), or
    /// without an announcement, refused unless `daemon.require_announcement` is false.
    /// The inner `Err` refuses the run, saying why.
    async fn desired_for_run(
        &self,
        resume: Option<i64>,
        forced: bool,
    ) -> journal::Result<Result<(DesiredState, String, String), String>> {
        let on_disk = self.load();
        let snap = desired::snapshot::Snapshot::read(&self.opts.desired_dir)
            .map_err(|e| journal::JournalError(format!("cannot read desired state: {e}")));
        let load_pinned = |dir: Result<PathBuf, String>, digest: &str| {
            dir.and_then(|dir| desired::load(&dir).map_err(|e| format!("the desired state pinned as {digest}: {e}")))
        };
        if let Some(id) = resume {
            if let Some((digest, how)) = self.journal.run_desired(id).await? {
                return Ok(load_pinned(self.pinned(&digest).await?, &digest).map(|d| (d, digest, how)));
            }
        }
        let d = match on_disk {
            Ok(d) => d,
            Err(e) => return Ok(Err(format!("desired state is invalid: {e}"))),
        };
        let snap = snap?;
        if forced || resume.is_some() {
            let how = if forced {
                "unannounced: started by an operator with --run-now, with desired state as on disk"
            } else {
                "desired state as on disk (a run started before desired state was pinned)"
            };
            return Ok(Ok((d, self.keep(&snap).await?, how.to_string())));
        }
        let now = chrono::Utc::now();
        let window_start = (now - chrono::Duration::days(7)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let until = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match self.journal.pin_between(&window_start, &until).await? {
            Some((at, digest)) => {
                let pinned = match load_pinned(self.pinned(&digest).await?, &digest) {
                    Ok(p) => p,
                    Err(e) => return Ok(Err(e)),
                };
                let kept = desired::snapshot::Snapshot::read(&self.pinned_dir(&digest))
                    .map_err(|e| journal::JournalError(format!("cannot read the pinned desired state: {e}")))?;
                let deferred = kept.changed_in(&snap);
                let how = if deferred.is_empty() {
                    format!("as announced for {at}")
                } else {
                    tracing::warn!(files = ?deferred, "desired state edited after the announcement: those edits wait for the next cycle");
                    format!("as announced for {at}; edited since, deferred to the next cycle: {}", deferred.join(", "))
                };
                Ok(Ok((pinned, digest, how)))
            }
            None if d.settings.daemon.require_announcement => Ok(Err(
                "no announcement pins this maintenance: nothing unannounced is applied (the announcement job runs \
                 a week ahead; an operator can run it explicitly with --run-now, or set \
                 daemon.require_announcement: false)"
                    .into(),
            )),
            None => Ok(Ok((
                d,
                self.keep(&snap).await?,
                "unannounced: daemon.require_announcement is false, desired state as on disk".into(),
            ))),
        }
    }

    /// Whether the maintenance window (of the last valid desired state) is open now.
    fn window_open(&self) -> bool {
        let d = self.last_valid().map(|s| s.daemon).unwrap_or_default();
        d.window.contains(chrono::Utc::now(), d.timezone)
    }

    fn window_text(&self) -> String {
        let d = self.last_valid().map(|s| s.daemon).unwrap_or_default();
        format!("{} to {} {}", d.window.from, d.window.to, d.timezone.0.name())
    }

    /// Resumes the unfinished run, if there is one that may go on: approved, or left
    /// unfinished by a stop, a crash or the window's end; only inside the window. Outside
    /// it, the run waits: its detail and `cm_maintenance_waiting` say so.
    async fn resume_if_due(&self) {
        let run = match self.journal.unfinished_run().await {
            Ok(Some(r)) => r,
            Ok(None) => {
                self.metrics.maintenance_waiting.store(false, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the journal");
                self.metrics.journal_errors.fetch_add(1, Ordering::Relaxed);
                self.metrics.journal_ok.store(false, Ordering::Relaxed);
                return;
            }
        };
        if run.kind != MAINTENANCE {
            // An onboarding cut short is not resumed: its accounts are not recorded set up,
            // and the next onboarding check plans them again.
            let why = "cut short (the daemon stopped); its accounts are set up by the next onboarding check";
            if let Err(e) = self.journal.finish_run(run.id, run_status::STOPPED, Some(why)).await {
                tracing::error!(error = %e, "cannot write the journal");
                self.metrics.journal_errors.fetch_add(1, Ordering::Relaxed);
                self.metrics.journal_ok.store(false, Ordering::Relaxed);
            }
            return;
        }
        match self.my_part_waits(&run).await {
            Ok(false) => {}
            Ok(true) => return,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the journal");
                self.metrics.journal_errors.fetch_add(1, Ordering::Relaxed);
                self.metrics.journal_ok.store(false, Ordering::Relaxed);
                return;
            }
        }
        // The window comes from desired state as it is now (read only when a run waits); an
        // invalid edit is reported by `load` and the last valid window applies.
        if let Err(e) = self.load() {
            tracing::warn!(error = %e, "desired state is invalid: the last valid maintenance window applies");
        }
        if self.window_open() {
            self.metrics.maintenance_waiting.store(false, Ordering::Relaxed);
            tracing::info!(run = run.id, status = %run.status, "resuming unfinished run");
            self.maintenance(Some(run.id), false, None).await;
            return;
        }
        let why = format!("waiting for the maintenance window ({})", self.window_text());
        if !self.metrics.maintenance_waiting.swap(true, Ordering::Relaxed) {
            tracing::warn!(run = run.id, status = %run.status, "{why}");
        }
        if run.detail.as_deref() != Some(why.as_str()) {
            if let Err(e) = self.journal.set_run_status(run.id, &run.status, Some(&why)).await {
                tracing::error!(error = %e, "cannot write the journal");
                self.metrics.journal_errors.fetch_add(1, Ordering::Relaxed);
                self.metrics.journal_ok.store(false, Ordering::Relaxed);
            }
        }
    }

    /// Looks for accounts pending onboarding (enrolled, their initial setup never recorded)
    /// and sets them up, without waiting for the weekly maintenance:
    /// - an account whose baseline roles (F01) are there, ours, and whose initial setup was
    ///   never started here, was set up before the journal recorded it: recorded as
    ///   recognised, nothing applied;
    /// - an account whose initial setup takes nothing of the customer's over and deletes
    ///   nothing but AWS's unused default VPCs is set up at once (an `onboarding` run);
    /// - an account whose initial setup would take over the customer's settings or delete
    ///   something else waits for an operator: told once (log, webhook), with the commands
    ///   to read and apply its plan.
    async fn onboard(&self) {
        if self.stopping() || self.lease_lost.load(Ordering::SeqCst) {
            return;
        }
        let Ok(d) = self.load() else { return };
        let Ok((fleet, inv)) = self.fleet(&d).await else { return };
        match self.onboard_run(&d, &fleet, &inv).await {
            Ok(()) => {}
            Err(e) => {
                tracing::error!(error = %e, "onboarding stopped: the journal failed");
                self.metrics.journal_errors.fetch_add(1, Ordering::Relaxed);
                self.metrics.journal_ok.store(false, Ordering::Relaxed);
            }
        }
    }

    async fn onboard_run(&self, d: &DesiredState, fleet: &Fleet, inv: &Inventory) -> journal::Result<()> {
        let started = Instant::now();
        let mut pending = vec![];
        for a in &inv.enrolled {
            let id = a.account_id.as_str();
            if self.onboarded.lock().unwrap_or_else(|p| p.into_inner()).contains(id) {
                continue;
            }
            match journal::onboarding(&*self.journal, id).await? {
                o if o.is_done() => {
                    self.onboarded.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string());
                }
                o => pending.push((a.account_id.clone(), o)),
            }
        }
        let held = self.onboarding_held.lock().unwrap_or_else(|p| p.into_inner()).clone();
        pending.retain(|(id, _)| !held.contains(id.as_str()));
        if pending.is_empty() {
            return Ok(());
        }
        let mut opts = self.options(pending.iter().map(|(id, _)| id.clone()).collect(), false);
        opts.mode = Mode::Initial;
        let planned = match run(fleet, d, inv, &opts).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "onboarding: the plan could not be written");
                return Ok(());
            }
        };
        let mut ready = vec![];
        let mut told = vec![];
        {
            use crate::report::Accounts as _;
            let read = planned.each(&mut |a| {
                let Some((id, state)) = pending.iter().find(|(id, _)| id.as_str() == a.account_id) else { return Ok(()) };
                if a.status == AccountStatus::Failed {
                    tracing::warn!(account = %id, error = a.error.as_deref().unwrap_or(""), "onboarding: the account could not be planned; tried again at the next check");
                    return Ok(());
                }
                let f01 = |f: &crate::desired::names::FeatureId| f.as_str() == "F01";
                let roles_ours = !a.changes.iter().any(|c| f01(&c.feature) && c.action == crate::plan::Action::Create)
                    && !a.skips.iter().any(|s| f01(&s.feature) && s.reason == SkipReason::NotOwned);
                // The customer's things taken over, or anything deleted but AWS's own unused
                // default VPCs (which initial setup removes, as the specification says). An
                // update here is of an account setting still at AWS's default: the planner
                // updates nothing else that is not provably ours, and a setting the
                // customer chose is an adoption.
                let existing = |c: &crate::plan::Change| match c.action {
                    crate::plan::Action::Adopt => true,
                    crate::plan::Action::Delete => c.resource_type != "default_vpc",
                    _ => false,
                };
                let touches_existing =
                    a.changes.iter().any(existing) || a.skips.iter().any(|s| s.reason == SkipReason::Adoption);
                if *state == journal::Onboarding::Pending && roles_ours {
                    told.push((id.clone(), None));
                } else if touches_existing {
                    let what: Vec<String> = a
                        .changes
                        .iter()
                        .filter(|c| existing(c))
                        .map(|c| format!("{} {} {} ({})", crate::report::wire_name(&c.action), c.resource_type, c.resource, c.region))
                        .chain(a.skips.iter().filter(|s| s.reason == SkipReason::Adoption).map(|s| {
                            format!("take over {} ({})", s.resource, s.region)
                        }))
                        .collect();
                    told.push((id.clone(), Some(what)));
                } else {
                    ready.push(id.clone());
                }
                Ok(())
            });
            if let Err(e) = read {
                tracing::error!(error = %e, "onboarding: the plan could not be read back");
                return Ok(());
            }
        }
        let digest = crate::desired::snapshot::Snapshot::read(&d.dir)
            .map(|s| s.digest())
            .map_err(|e| journal::JournalError(format!("cannot read desired state {}: {e}", d.dir.display())))?;
        for (id, held) in told {
            match held {
                None => {
                    journal::record_onboarding(&*self.journal, id.as_str(), &digest, journal::how::RECOGNISED).await?;
                    tracing::info!(account = %id, "onboarding: the baseline's roles are there and ours: recognised as set up before, nothing applied");
                    self.onboarded.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string());
                }
                Some(what) => {
                    self.onboarding_held.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string());
                    let headline = format!(
                        "account {id} is pending onboarding, but its initial setup would change what is there \
                         already ({}): it waits for an operator. Read `cm-baseline plan --initial --account {id}`, \
                         then run `cm-baseline apply --initial --account {id}`",
                        what.join(", ")
                    );
                    tracing::warn!(account = %id, changes_to_existing = what.len(), "{headline}");
                    self.notify(notify::Event::Braked, &headline, None).await;
                }
            }
        }
        if ready.is_empty() || self.stopping() {
            return Ok(());
        }
        let ids: Vec<String> = ready.iter().map(|a| a.to_string()).collect();
        let run_id = self.journal.start_run(ONBOARDING, run_status::RUNNING, &ids).await?;
        tracing::info!(run = run_id, accounts = ?ids, "onboarding: initial setup of accounts pending onboarding");
        for id in &ids {
            self.journal.account_started(run_id, id).await?;
        }
        let mut opts = self.options(ready, true);
        opts.mode = Mode::Initial;
        let applied = match run(fleet, d, inv, &opts).await {
            Ok(r) => r,
            Err(e) => {
                let why = format!("the report could not be written: {e}");
                self.journal.requeue_running(run_id, None).await?;
                self.journal.finish_run(run_id, run_status::STOPPED, Some(&why)).await?;
                return Ok(());
            }
        };
        let mut reports = vec![];
        {
            use crate::report::Accounts as _;
            let read = applied.each(&mut |a| {
                reports.push(a.clone());
                Ok(())
            });
            if let Err(e) = read {
                let why = format!("the report could not be read back: {e}");
                self.journal.finish_run(run_id, run_status::STOPPED, Some(&why)).await?;
                return Ok(());
            }
        }
        let mut failed = 0;
        for a in &reports {
            self.record(run_id, a).await?;
            if matches!(a.status, AccountStatus::Converged | AccountStatus::NoChanges) {
                self.onboarded.lock().unwrap_or_else(|p| p.into_inner()).insert(a.account_id.clone());
            } else {
                failed += 1;
            }
        }
        let detail = (failed > 0).then(|| format!("{failed} account(s) failed; tried again at the next check"));
        self.journal.finish_run(run_id, run_status::DONE, detail.as_deref()).await?;
        self.metrics.run_finished(ONBOARDING, run_status::DONE, started.elapsed().as_secs_f64());
        self.write_run_report(run_id).await?;
        Ok(())
    }

    /// Whether this shard has nothing to do in a shared run for now: its accounts are all
    /// done (the others' shards finish the run), or it has planned its part and the other
    /// shards have not all planned theirs yet.
    async fn my_part_waits(&self, run: &journal::RunRow) -> journal::Result<bool> {
        let shard = self.opts.shard;
        if !shard.is_part() {
            return Ok(false);
        }
        if *self.part_done.lock().unwrap_or_else(|p| p.into_inner()) == Some(run.id) {
            return Ok(true);
        }
        if run.status == run_status::PLANNING {
            let parts = self.journal.shards_planned(run.id).await?;
            let me = shard.to_string();
            let waits = parts.iter().any(|p| p.shard == me)
                && matches!(fleet_verdict(&desired::Brake::default(), shard, &parts), Barrier::Wait(_));
            return Ok(waits);
        }
        let rows = self.journal.accounts(run.id).await?;
        if rows.iter().any(|r| journal::is_open(&r.status) && shard.contains(&r.account_id)) {
            return Ok(false);
        }
        *self.part_done.lock().unwrap_or_else(|p| p.into_inner()) = Some(run.id);
        Ok(true)
    }

    /// Checks readiness at start and then every [`READINESS_INTERVAL`] until stopped, so
    /// that `/readyz` answers for the present, not for the last run (a week ago at worst).
    async fn watch_readiness(self: Arc<Self>) {
        let mut stopping = self.stopping.clone();
        loop {
            self.check_readiness().await;
            tokio::select! {
                _ = stopping.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(READINESS_INTERVAL) => {}
            }
        }
    }

    /// Desired state loads, and the management account can read the Organization (with
    /// the home region of the last valid desired state; not checked before there is one).
    async fn check_readiness(&self) {
        if let Err(e) = self.load() {
            tracing::warn!(error = %e, "readiness: desired state is invalid");
        }
        let Some(settings) = self.last_valid() else { return };
        let fleet =
            Fleet::with_stats(settings.home_region.as_str(), self.opts.limits.clone(), self.stats.clone()).await;
        let ok = inventory::reachable(&fleet).await;
        self.metrics.aws_ok.store(ok.is_ok(), Ordering::Relaxed);
        match ok {
            Ok(()) => tracing::debug!("readiness: AWS reachable"),
            Err(e) => tracing::warn!(error = %e, "readiness: cannot read the Organization"),
        }
    }

    async fn serve(self: Arc<Self>) -> i32 {
        // Resume what a previous process left unfinished (inside the maintenance window), then
        // the manual run if asked: an operator's explicit run goes ahead at any time.
        self.resume_if_due().await;
        if self.opts.run_now && !self.stopping() {
            tracing::info!("maintenance run started by --run-now (the maintenance window does not apply)");
            // Shards started together with --run-now share one run.
            self.maintenance(None, true, Some("run-now".into())).await;
        }

        let scheduler = match JobScheduler::new().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the scheduler");
                return 1;
            }
        };
        if let Err(e) = scheduler.start().await {
            tracing::error!(error = %e, "cannot start the scheduler");
            return 1;
        }
        // Each firing carries its scheduled instant: the slot shards share a run by.
        let (fire_tx, mut fire) = mpsc::channel::<(&'static str, String)>(4);
        for job in [MAINTENANCE, ANNOUNCE] {
            self.arm(&scheduler, job, &fire_tx).await;
        }
        let mut stopping = self.stopping.clone();
        let mut approvals = tokio::time::interval(Duration::from_secs(5));
        // The first check one period after start: a run resumed or started now goes first.
        let every = self.opts.onboard_every;
        let mut onboarding = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                _ = stopping.wait_for(|s| *s) => break,
                _ = onboarding.tick() => self.onboard().await,
                Some((job, slot)) = fire.recv() => {
                    match job {
                        MAINTENANCE if self.window_open() => self.maintenance(None, false, Some(slot)).await,
                        MAINTENANCE => tracing::warn!(
                            window = %self.window_text(),
                            "the maintenance schedule fired outside the maintenance window: no run started"
                        ),
                        _ => self.announce().await,
                    }
                    self.arm(&scheduler, job, &fire_tx).await;
                }
                _ = approvals.tick() => {
                    if self.lease_lost.load(Ordering::SeqCst) {
                        tracing::error!("the fleet's lease was lost: this daemon stops");
                        return 1;
                    }
                    // A run approved meanwhile, or one waiting for the window, goes ahead now.
                    self.resume_if_due().await;
                }
            }
        }
        let mut scheduler = scheduler;
        let _ = scheduler.shutdown().await;
        tracing::info!("daemon stopped");
        0
    }

    /// Arms a one-shot job for the next run of `job`, from the schedule in desired state
    /// (the last valid one is used while desired state is invalid: defaults at worst).
    async fn arm(&self, scheduler: &JobScheduler, job: &'static str, fire: &mpsc::Sender<(&'static str, String)>) {
        let _ = self.load();
        let settings = self.last_valid().map(|s| s.daemon).unwrap_or_default();
        let schedule = Schedule {
            cron: if job == MAINTENANCE { settings.maintenance } else { settings.announce },
            zone: settings.timezone,
        };
        let now = chrono::Utc::now();
        let Some(next) = schedule.next_after(now) else {
            tracing::error!(job, cron = schedule.cron.as_str(), "schedule has no next run");
            return;
        };
        self.metrics.set_next_run(job, next.timestamp());
        self.next_runs.set(job, next.timestamp());
        let wait = (next - now).to_std().unwrap_or_default();
        let tx = fire.clone();
        let slot = next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let one_shot = Job::new_one_shot_async(wait, move |_id, _sched| {
            let (tx, slot) = (tx.clone(), slot.clone());
            Box::pin(async move {
                let _ = tx.send((job, slot)).await;
            })
        });
        match one_shot {
            Ok(j) => match scheduler.add(j).await {
                Ok(_) => tracing::info!(job, next = %next, "next run scheduled"),
                Err(e) => tracing::error!(job, error = %e, "cannot schedule"),
            },
            Err(e) => tracing::error!(job, error = %e, "cannot schedule"),
        }
    }

    async fn fleet(&self, d: &DesiredState) -> Result<(Fleet, Inventory), String> {
        let fleet =
            Fleet::with_stats(d.settings.home_region.as_str(), self.opts.limits.clone(), self.stats.clone()).await;
        let inv = inventory::inventory(&fleet, d).await.map(|mut i| {
            i.enrolled.retain(|a| self.opts.shard.contains(a.account_id.as_str()));
            i
        });
        self.metrics.aws_ok.store(inv.is_ok(), Ordering::Relaxed);
        let mut inv = inv.map_err(|e| inventory::cannot_list(&e))?;
        // Offboarded accounts are no longer maintained, nor onboarded.
        journal::drop_offboarded(&*self.journal, &mut inv)
            .await
            .map_err(|e| format!("cannot read the journal: {e}"))?;
        Ok((fleet, inv))
    }

    fn options(&self, accounts: Vec<crate::desired::names::AccountId>, apply: bool) -> RunOptions {
        RunOptions {
            mode: Mode::Maintenance,
            apply,
            accounts,
            parallel_accounts: self.opts.parallel_accounts,
            approved: None,
            journal: Some(self.journal.clone()),
            progress: false,
        }
    }

    fn write_report(&self, name: &str, report: &RunReport) {
        let dir = self.opts.state_dir.join("reports");
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::error!(path = %dir.display(), error = %e, "cannot write reports");
            return;
        }
        for (fmt, ext) in [(Format::Markdown, "md"), (Format::Json, "json")] {
            let path = dir.join(format!("{name}.{ext}"));
            if let Err(e) = report.write_file(&path, fmt, false) {
                tracing::error!(path = %path.display(), error = %e, "cannot write report");
            }
        }
    }

    /// Writes `reports/run-<id>.md` and `.json`: the run as the journal holds it.
    async fn write_run_report(&self, run_id: i64) -> journal::Result<()> {
        let rows = self.journal.accounts(run_id).await?;
        let report = crate::report::FleetReport::of_run(run_id, &rows);
        let dir = self.opts.state_dir.join("reports");
        let written = std::fs::create_dir_all(&dir).and_then(|()| {
            for (fmt, ext) in [(Format::Markdown, "md"), (Format::Json, "json")] {
                std::fs::write(dir.join(format!("run-{run_id}.{ext}")), report.render(fmt, false))?;
            }
            Ok(())
        });
        if let Err(e) = written {
            tracing::error!(path = %dir.display(), error = %e, "cannot write the run's report");
        }
        Ok(())
    }

    /// Tells the webhook, if one is configured; a message not delivered is logged and counted.
    async fn notify(&self, event: notify::Event, headline: &str, link: Option<notify::Link>) {
        let Some(n) = &self.notifier else { return };
        match n.send(event, headline, link.as_ref()).await {
            Ok(()) => self.metrics.notified(event.as_str(), true),
            Err(e) => {
                tracing::error!(event = event.as_str(), error = %e, "notification not delivered");
                self.metrics.notified(event.as_str(), false);
            }
        }
    }

    /// One maintenance run: a new one, or `resume` of an unfinished one. A journal error
    /// stops it where it is: nothing further is applied, the error is logged and counted,
    /// and `/readyz` fails until the journal works again; what the journal holds is resumed
    /// at the next start.
    /// `forced`: an operator's explicit run (`--run-now`), which the window does not hold back.
    /// `slot`: what a new run is for (the scheduled instant, or `run-now`): the shards of a
    /// fleet (`--shard`) share one run per slot.
    async fn maintenance(&self, resume: Option<i64>, forced: bool, slot: Option<String>) {
        let started = Instant::now();
        match self.maintenance_run(resume, forced, slot, started).await {
            Ok(()) => self.metrics.journal_ok.store(true, Ordering::Relaxed),
            Err(e) => {
                tracing::error!(error = %e, "the journal failed: the run stopped, nothing further is applied");
                self.metrics.journal_errors.fetch_add(1, Ordering::Relaxed);
                self.metrics.journal_ok.store(false, Ordering::Relaxed);
                self.metrics.run_finished(MAINTENANCE, "journal_error", started.elapsed().as_secs_f64());
                let headline = format!("the maintenance run stopped: {e}. Nothing further is applied until it is resolved (/readyz fails meanwhile)");
                self.notify(notify::Event::Failed, &headline, None).await;
            }
        }
    }

    async fn maintenance_run(
        &self,
        resume: Option<i64>,
        forced: bool,
        slot: Option<String>,
        started: Instant,
    ) -> journal::Result<()> {
        let (mut d, digest, how) = match self.desired_for_run(resume, forced).await? {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "maintenance refused, nothing changed");
                journal::refuse_run(&*self.journal, MAINTENANCE, &e).await?;
                self.metrics.run_finished(MAINTENANCE, run_status::REFUSED, started.elapsed().as_secs_f64());
                self.notify(notify::Event::Failed, &format!("maintenance refused, nothing changed: {e}"), None).await;
                return Ok(());
            }
        };
        let (fleet, inv) = match self.fleet(&d).await {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "maintenance refused");
                journal::refuse_run(&*self.journal, MAINTENANCE, &e).await?;
                self.metrics.run_finished(MAINTENANCE, run_status::REFUSED, started.elapsed().as_secs_f64());
                self.notify(notify::Event::Failed, &format!("maintenance refused, nothing changed: {e}"), None).await;
                return Ok(());
            }
        };
        let enrolled: Vec<String> = inv.enrolled.iter().map(|a| a.account_id.to_string()).collect();
        let resumed = match resume {
            Some(id) => self.journal.run(id).await?,
            None => None,
        };
        let shard = self.opts.shard;
        let (run_id, status) = match resumed {
            Some(r) => (r.id, r.status),
            None => {
                let (id, created) = match &slot {
                    Some(slot) if shard.is_part() => {
                        self.journal.join_run(MAINTENANCE, slot, run_status::PLANNING, &enrolled).await?
                    }
                    _ => (self.journal.start_run(MAINTENANCE, run_status::PLANNING, &enrolled).await?, true),
                };
                if created {
                    self.journal.set_run_desired(id, &digest, &how).await?;
                    tracing::info!(run = id, desired_state = %digest, how = %how, "maintenance run started");
                    // This run covers the fleet again: an older unfinished one must never be
                    // resumed (or approved) after it.
                    let old = self.journal.supersede_older(MAINTENANCE, id).await?;
                    if !old.is_empty() {
                        tracing::warn!(run = id, superseded = ?old, "older unfinished runs superseded");
                    }
                } else {
                    tracing::info!(run = id, shard = %shard, "joined the maintenance run another shard started");
                    // The run applies one desired state on every shard: the one it started with.
                    if let Some((theirs, _)) = self.journal.run_desired(id).await? {
                        if theirs != digest {
                            tracing::warn!(run = id, ours = %digest, theirs = %theirs, "this shard's desired state differs from the run's: the run's applies");
                            match self.pinned(&theirs).await?.and_then(|dir| {
                                desired::load(&dir).map_err(|e| format!("the desired state pinned as {theirs}: {e}"))
                            }) {
                                Ok(theirs) => d = theirs,
                                Err(e) => {
                                    tracing::error!(run = id, error = %e, "cannot load the run's desired state: this shard leaves the run");
                                    return Ok(());
                                }
                            }
                        }
                    }
                }
                let status = self.journal.run(id).await?.map(|r| r.status);
                (id, status.unwrap_or_else(|| run_status::PLANNING.to_string()))
            }
        };
        // Resumed from an earlier reading, the run may have moved since: another shard may
        // have braked it (a braked run goes on only once approved), finished it, or a newer
        // run superseded it. Only a run to plan, to apply, or approved goes on here.
        let open = [run_status::PLANNING, run_status::RUNNING, run_status::STOPPED, run_status::APPROVED];
        if !open.contains(&status.as_str()) {
            tracing::info!(run = run_id, status = %status, "the run moved on meanwhile: nothing to do here");
            return Ok(());
        }
        // Accounts a dead process left running did not finish: pending again (a shard's
        // own only: the others are in other hands).
        let rows = self.journal.accounts(run_id).await?;
        let mine: Vec<String> =
            rows.iter().filter(|r| shard.contains(&r.account_id)).map(|r| r.account_id.clone()).collect();
        self.journal.requeue_running(run_id, shard.is_part().then_some(mine.as_slice())).await?;
        let rows = self.journal.accounts(run_id).await?;
        let mut todo: Vec<crate::desired::names::AccountId> = vec![];
        for r in rows.iter().filter(|r| journal::is_open(&r.status) && shard.contains(&r.account_id)) {
            match inv.enrolled.iter().find(|a| a.account_id.as_str() == r.account_id) {
                Some(a) => todo.push(a.account_id.clone()),
                None => {
                    // Resumed after the account left the fleet: recorded, so that the run can finish.
                    let has_file = d.accounts.keys().any(|k| k.as_str() == r.account_id);
                    let why = not_enrolled_reason(&r.account_id, &inv, has_file);
                    tracing::warn!(run = run_id, account = %r.account_id, reason = why, "account skipped");
                    self.journal.account_skipped(run_id, &r.account_id, why).await?;
                    self.metrics.account_finished(journal::SKIPPED);
                }
            }
        }

        if status == run_status::PLANNING {
            // The brake's pass only reads: a stop abandons it, and the run stays `planning`,
            // to be planned again at the next start.
            // With shards, the brake weighs the whole fleet's plan: each shard plans its
            // accounts, and the run goes on (or stops) once every shard has.
            let mut stopping = self.stopping.clone();
            let verdict = tokio::select! {
                v = self.brake(&d, &fleet, &inv, &todo, run_id) => v?,
                _ = stopping.wait_for(|s| *s) => {
                    tracing::info!(run = run_id, "stop requested while planning: nothing was changed; the run is planned again at the next start");
                    self.metrics.run_finished(MAINTENANCE, run_status::PLANNING, started.elapsed().as_secs_f64());
                    return Ok(());
                }
            };
            let verdict = match verdict {
                Barrier::Wait(why) => {
                    tracing::info!(run = run_id, "{why}");
                    self.journal.move_run(run_id, run_status::PLANNING, run_status::PLANNING, Some(&why)).await?;
                    return Ok(());
                }
                Barrier::Decided(v) => v,
            };
            if let Some(why) = verdict {
                tracing::error!(run = run_id, reason = %why, "blast-radius brake: run stopped before any change; approve with `cm-baseline runs approve {run_id}`");
                // Of several shards, the one that moves the run tells the operators.
                if !self.journal.move_run(run_id, run_status::PLANNING, run_status::BRAKED, Some(&why)).await? {
                    return Ok(());
                }
                self.metrics.brake_stops.fetch_add(1, Ordering::Relaxed);
                self.metrics.run_finished(MAINTENANCE, run_status::BRAKED, started.elapsed().as_secs_f64());
                let how = if self.opts.approval_tokens.is_some() {
                    format!("`cm-baseline runs approve {run_id}` or POST /runs/{run_id}/approve")
                } else {
                    format!("`cm-baseline runs approve {run_id}`")
                };
                let headline = format!(
                    "maintenance run {run_id} stopped at the blast-radius brake before any change: {why}. \
                     Read the plan, then approve with {how}"
                );
                let link = notify::Link::Report(format!("run-{run_id}-plan.md"));
                self.notify(notify::Event::Braked, &headline, Some(link)).await;
                return Ok(());
            }
        }
        // An approved run applies exactly what was approved: each account's braked plan,
        // refused where the account's fresh plan no longer matches it.
        let approved = if self.journal.approval(run_id).await?.is_some() {
            let mut map = std::collections::BTreeMap::new();
            for (account, plan) in self.journal.plans(run_id).await? {
                let changes: Vec<crate::plan::Change> = serde_json::from_str(&plan)
                    .map_err(|e| journal::JournalError(format!("the approved plan of {account}: {e}")))?;
                if let Ok(id) = crate::desired::names::AccountId::parse(&account) {
                    map.insert(id, changes);
                }
            }
            if let Some((by, at)) = self.journal.approval(run_id).await? {
                tracing::info!(run = run_id, approved_by = %by, approved_at = %at, accounts = map.len(), "applying the approved plan");
            }
            Some(Arc::new(map))
        } else {
            None
        };
        // Of several shards, one moves the run on; the others find it moved. The move is
        // conditional on the status read above: a run another process braked, finished or
        // superseded since is left as it is, never set running over that.
        let detail = (status == run_status::PLANNING && shard.is_part())
            .then(|| format!("all {} shards planned; the brake let the run go ahead", shard.count));
        let moved = self.journal.move_run(run_id, &status, run_status::RUNNING, detail.as_deref()).await?;
        if !moved && self.journal.run(run_id).await?.is_none_or(|r| r.status != run_status::RUNNING) {
            tracing::warn!(run = run_id, was = %status, "the run moved on while this process planned: it leaves the run as it is");
            return Ok(());
        }

        let files: Vec<_> = inv.enrolled.iter().filter(|a| todo.contains(&a.account_id)).cloned().collect();
        let mut opts = self.options(vec![], true);
        opts.approved = approved;
        // The first journal error stops the run: no account is started after it.
        let failure: Mutex<Option<journal::JournalError>> = Mutex::new(None);
        let halted = || failure.lock().unwrap_or_else(|p| p.into_inner()).is_some();
        let fail = |e: journal::JournalError| {
            let mut f = failure.lock().unwrap_or_else(|p| p.into_inner());
            if f.is_none() {
                *f = Some(e);
            }
        };
        let pass = Pass::new(&fleet, &d, &inv, &opts);
        let gave_up: Mutex<Option<String>> = Mutex::new(None);
        let work = stream::iter(files)
            .map(|account| {
                let opts = &opts;
                let (pass, gave_up) = (&pass, &gave_up);
                let (halted, fail) = (&halted, &fail);
                async move {
                    if self.stopping() || halted() || self.lease_lost.load(Ordering::SeqCst) {
                        return;
                    }
                    // No account is started once the maintenance window has closed.
                    if !forced && !self.window_open() {
                        return;
                    }
                    let id = account.account_id.to_string();
                    if let Err(e) = self.journal.account_started(run_id, &id).await {
                        return fail(e);
                    }
                    // Not in the approved plan (new since the brake): nothing is applied there.
                    if opts.approved.as_ref().is_some_and(|a| !a.contains_key(&account.account_id)) {
                        tracing::warn!(run = run_id, account = %id, "not in the approved plan: skipped");
                        if let Err(e) = self.journal.account_skipped(run_id, &id, "not in the approved plan").await {
                            fail(e);
                        }
                        return;
                    }
                    let report = match pass.account(account.clone()).await {
                        Ok(r) => r,
                        Err(why) => {
                            // The whole fleet is out of reach: the account stays to be done.
                            gave_up.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(why);
                            return;
                        }
                    };
                    log_skips(&report);
                    if let Err(e) = self.record(run_id, &report).await {
                        fail(e);
                    }
                }
            })
            .buffer_unordered(self.opts.parallel_accounts.max(1))
            .collect::<Vec<()>>();
        let mut stopping = self.stopping.clone();
        let deadline = self.opts.stop_deadline;
        // Past the deadline the work is dropped, at the end of this block: accounts in
        // flight are cut off there, and none is recorded after.
        let finished = {
            tokio::pin!(work);
            tokio::select! {
                _ = &mut work => true,
                _ = async {
                    let _ = stopping.wait_for(|s| *s).await;
                    tokio::time::sleep(deadline).await;
                } => false,
            }
        };
        if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        if self.lease_lost.load(Ordering::SeqCst) {
            return Err(journal::JournalError("the fleet's lease was lost: no account is started".into()));
        }
        let gave_up = gave_up.into_inner().unwrap_or_else(|p| p.into_inner());
        let only = shard.is_part().then_some(mine.as_slice());
        if gave_up.is_some() {
            self.journal.requeue_running(run_id, only).await?;
        }
        if !finished {
            let cut = self.journal.requeue_running(run_id, only).await?;
            tracing::warn!(
                run = run_id,
                accounts = cut,
                "stop deadline passed: accounts in flight are recorded not done (pending)"
            );
        }
        let rows = self.journal.accounts(run_id).await?;
        let open = rows.iter().filter(|r| journal::is_open(&r.status));
        let left = open.clone().filter(|r| shard.contains(&r.account_id)).count();
        let others = open.count() - left;
        if left == 0 && others > 0 {
            // This shard's part is done; the last shard to finish finishes the run.
            tracing::info!(run = run_id, shard = %shard, others, "this shard's accounts are done; other shards still work on theirs");
            *self.part_done.lock().unwrap_or_else(|p| p.into_inner()) = Some(run_id);
            self.metrics.run_finished(MAINTENANCE, run_status::DONE, started.elapsed().as_secs_f64());
            return self.write_run_report(run_id).await;
        }
        let status = if left == 0 { run_status::DONE } else { run_status::STOPPED };
        let detail = (left > 0).then(|| {
            if let Some(why) = &gave_up {
                format!("{left} account(s) not done: {why}; resumed at the next start")
            } else if !forced && !self.window_open() && !self.stopping() {
                format!("the maintenance window closed: {left} account(s) not done; resumed when it opens again")
            } else {
                format!("{left} account(s) not done; resumed at the next start")
            }
        });
        self.journal.finish_run(run_id, status, detail.as_deref()).await?;
        self.metrics.run_finished(MAINTENANCE, status, started.elapsed().as_secs_f64());
        tracing::info!(run = run_id, status, left, "maintenance finished");
        self.write_run_report(run_id).await?;
        if let Some(why) = &gave_up {
            let headline = format!("maintenance run {run_id} stopped with {left} account(s) not done: {why}");
            self.notify(notify::Event::Failed, &headline, Some(notify::Link::Report(format!("run-{run_id}.md")))).await;
        }
        let rows = self.journal.accounts(run_id).await?;
        let failed: Vec<&str> =
            rows.iter().filter(|r| r.status == journal::FAILED).map(|r| r.account_id.as_str()).collect();
        if !failed.is_empty() {
            let headline = format!(
                "maintenance run {run_id} {status} with {} of {} account(s) failed: {}",
                failed.len(),
                rows.len(),
                failed.join(", ")
            );
            let link = notify::Link::Report(format!("run-{run_id}.md"));
            self.notify(notify::Event::FinishedWithFailures, &headline, Some(link)).await;
        }
        Ok(())
    }

    /// Uploads the announcement files to `daemon.announce_s3`, if set; each file's outcome
    /// is counted. A failure is logged (by [`publish::upload`]) and the local files stay.
    async fn publish(&self, fleet: &Fleet, d: &DesiredState, paths: &[PathBuf]) {
        let Some(dest) = &d.settings.daemon.announce_s3 else { return };
        for u in publish::upload(fleet, dest, d.settings.home_region.as_str(), paths).await {
            self.metrics.announcement_uploaded(u.result.is_ok());
        }
    }

    async fn record(&self, run_id: i64, report: &AccountReport) -> journal::Result<()> {
        let done = matches!(report.status, AccountStatus::Converged | AccountStatus::NoChanges);
        let outcome = if done { journal::DONE } else { journal::FAILED };
        let applied: Vec<_> =
            report.applied.iter().flatten().filter(|a| a.outcome == crate::apply::ChangeOutcome::Done).collect();
        for a in &applied {
            let action = crate::report::wire_name(&a.action);
            self.metrics.change_applied(&a.feature, &action);
        }
        self.metrics.account_finished(outcome);
        let json =
            serde_json::to_string(report).map_err(|e| journal::JournalError(format!("the account report: {e}")))?;
        let o = journal::Outcome {
            account: &report.account_id,
            status: outcome,
            changes: applied.len(),
            api_calls: report.api_calls.total,
            error: report.error.as_deref(),
            report: &json,
        };
        self.journal.account_finished(run_id, &o).await
    }

    /// The blast-radius brake: plans `accounts` and says why the run must not go ahead, if
    /// it must not. The dry-run report is kept in the state directory either way. With
    /// shards, this shard's plan is recorded as its part of the run (once) and the verdict
    /// waits until every shard's part is in: it then weighs the whole fleet's plan, the same
    /// on every shard.
    async fn brake(
        &self,
        d: &DesiredState,
        fleet: &Fleet,
        inv: &Inventory,
        accounts: &[crate::desired::names::AccountId],
        run_id: i64,
    ) -> journal::Result<Barrier> {
        let shard = self.opts.shard;
        if shard.is_part() {
            let me = shard.to_string();
            if !self.journal.shards_planned(run_id).await?.iter().any(|p| p.shard == me) {
                let planned = self.plan_part(d, fleet, inv, accounts, run_id, true).await?;
                let part = journal::ShardPlan {
                    shard: me,
                    accounts: planned.accounts as i64,
                    changed: planned.changed as i64,
                    deletes: planned.deletes as i64,
                    failed: planned.failed,
                    planned_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                };
                self.journal.shard_planned(run_id, &part).await?;
            }
            let parts = self.journal.shards_planned(run_id).await?;
            return Ok(fleet_verdict(&d.settings.daemon.brake, shard, &parts));
        }
        if accounts.is_empty() {
            return Ok(Barrier::Decided(None));
        }
        let p = self.plan_part(d, fleet, inv, accounts, run_id, false).await?;
        Ok(Barrier::Decided(p.failed.or(p.verdict)))
    }

    /// Plans `accounts` for the brake, keeps the dry-run report in the state directory and,
    /// when the brake stops it (or `keep` says so, for a shard whose verdict is the fleet's),
    /// each account's plan in the journal: what an approval lets run, and nothing else.
    async fn plan_part(
        &self,
        d: &DesiredState,
        fleet: &Fleet,
        inv: &Inventory,
        accounts: &[crate::desired::names::AccountId],
        run_id: i64,
        keep: bool,
    ) -> journal::Result<Planned> {
        let mut planned = Planned { accounts: accounts.len(), ..Planned::default() };
        if accounts.is_empty() {
            return Ok(planned);
        }
        let report = match run(fleet, d, inv, &self.options(accounts.to_vec(), false)).await {
            Ok(r) => r,
            Err(e) => {
                planned.failed = Some(format!("the plan of the run could not be written: {e}"));
                return Ok(planned);
            }
        };
        self.write_report(&format!("run-{run_id}-plan"), &report);
        let lines = report.lines();
        planned.changed = lines.iter().filter(|a| a.changes > 0).count();
        planned.deletes = lines.iter().map(|a| a.deletes).sum();
        planned.verdict = brake_verdict(&d.settings.daemon.brake, lines.len(), planned.changed, planned.deletes);
        if keep || planned.verdict.is_some() {
            use crate::report::Accounts as _;
            let mut plans = vec![];
            let kept = report.each(&mut |a| {
                let changes = serde_json::to_string(&a.changes).map_err(std::io::Error::other)?;
                plans.push((a.account_id.clone(), changes));
                Ok(())
            });
            if let Err(e) = kept {
                planned.failed = Some(format!("the plan of the run could not be read back: {e}"));
                return Ok(planned);
            }
            self.journal.save_plans(run_id, &plans).await?;
        }
        Ok(planned)
    }

    /// R5: a fleet-wide dry run of what the next maintenance would change.
    async fn announce(&self) {
        let started = Instant::now();
        let d = match self.load() {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "desired state is invalid: announcement not written");
                self.metrics.run_finished(ANNOUNCE, run_status::REFUSED, started.elapsed().as_secs_f64());
                return;
            }
        };
        let (fleet, inv) = match self.fleet(&d).await {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "announcement not written");
                self.metrics.run_finished(ANNOUNCE, run_status::REFUSED, started.elapsed().as_secs_f64());
                return;
            }
        };
        let mut stopping = self.stopping.clone();
        let opts = self.options(vec![], false);
        let dry_run = tokio::select! {
            r = run(&fleet, &d, &inv, &opts) => r,
            // A dry run only reads: a stop abandons it.
            _ = stopping.wait_for(|s| *s) => {
                tracing::info!("stop requested: announcement not written");
                self.metrics.run_finished(ANNOUNCE, run_status::STOPPED, started.elapsed().as_secs_f64());
                return;
            }
        };
        let report = match dry_run {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "announcement not written: cannot spool the dry run");
                self.metrics.run_finished(ANNOUNCE, run_status::REFUSED, started.elapsed().as_secs_f64());
                return;
            }
        };
        // By default this runs Saturday 12:00, after the weekend's maintenance has started:
        // the next maintenance is the one a week ahead (R5).
        let next = d.settings.daemon.maintenance_schedule().next_after(chrono::Utc::now());
        // What is announced is pinned: that maintenance applies exactly this desired state.
        let pinned = match (desired::snapshot::Snapshot::read(&d.dir), next) {
            (Ok(snap), Some(at)) => match self.keep(&snap).await {
                Ok(digest) => {
                    let at = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                    match self.journal.pin(&at, &digest).await {
                        Ok(()) => Some(digest),
                        Err(e) => {
                            tracing::error!(error = %e, "announcement not pinned: cannot write the journal");
                            self.metrics.journal_errors.fetch_add(1, Ordering::Relaxed);
                            self.metrics.journal_ok.store(false, Ordering::Relaxed);
                            None
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "announcement not pinned");
                    None
                }
            },
            (Err(e), _) => {
                tracing::error!(error = %e, "announcement not pinned: cannot read desired state");
                None
            }
            (_, None) => None,
        };
        let Some(digest) = pinned else {
            self.metrics.run_finished(ANNOUNCE, run_status::REFUSED, started.elapsed().as_secs_f64());
            return;
        };
        let status = match write_announcement(&self.opts.announce_dir, &d.settings.daemon, &report, next, Some(&digest))
        {
            Ok(paths) => {
                self.publish(&fleet, &d, &paths).await;
                let lines = report.lines();
                let changed = lines.iter().filter(|a| a.changes > 0).count();
                if changed > 0 {
                    let changes: usize = lines.iter().map(|a| a.changes).sum();
                    let deletes: usize = lines.iter().map(|a| a.deletes).sum();
                    let when =
                        next.map(|n| n.with_timezone(&d.settings.daemon.timezone.0).to_rfc2822()).unwrap_or_default();
                    let headline = format!(
                        "the maintenance of {when} would make {changes} change(s) ({deletes} delete(s)) in {changed} of {} account(s)",
                        lines.len()
                    );
                    let link = paths
                        .iter()
                        .find(|p| p.extension().is_some_and(|e| e == "md"))
                        .and_then(|p| p.file_name())
                        .map(|n| notify::Link::Announcement(n.to_string_lossy().into_owned()));
                    self.notify(notify::Event::Announced, &headline, link).await;
                }
                run_status::DONE
            }
            Err(e) => {
                tracing::error!(error = %e, "announcement not written");
                run_status::REFUSED
            }
        };
        self.metrics.run_finished(ANNOUNCE, status, started.elapsed().as_secs_f64());
    }
}

/// What planning some accounts for the brake found.
#[derive(Debug, Default)]
struct Planned {
    accounts: usize,
    changed: usize,
    deletes: usize,
    /// Why the plan could not be made: the run must not go ahead.
    failed: Option<String>,
    /// The brake's verdict on these accounts alone.
    verdict: Option<String>,
}

/// Where the brake stands on a run.
#[derive(Debug, PartialEq)]
pub enum Barrier {
    /// Not every shard has planned its part yet: why the run waits.
    Wait(String),
    /// Decided: why the run must stop, if it must.
    Decided(Option<String>),
}

/// The brake's verdict on a run planned in parts by the shards of `me`'s count: the whole
/// fleet's plan weighed at once, the same on every shard, once every shard's part is in.
/// A part that could not be planned, or shards that disagree on their count, stop the run.
pub fn fleet_verdict(b: &Brake, me: crate::inventory::Shard, parts: &[journal::ShardPlan]) -> Barrier {
    let count = me.count;
    let of_count = |p: &journal::ShardPlan| crate::inventory::Shard::parse(&p.shard).ok().map(|s| s.count);
    if let Some(p) = parts.iter().find(|p| of_count(p) != Some(count)) {
        return Barrier::Decided(Some(format!(
            "shard {} planned this run as part of another split than {count} shards: the fleet's plan is not one whole",
            p.shard
        )));
    }
    let missing: Vec<String> =
        (0..count).map(|i| format!("{i}/{count}")).filter(|s| !parts.iter().any(|p| &p.shard == s)).collect();
    if !missing.is_empty() {
        return Barrier::Wait(format!(
            "planned by {} of {count} shards; waiting for shard(s) {} to plan before the brake decides",
            count as usize - missing.len(),
            missing.join(", ")
        ));
    }
    if let Some(p) = parts.iter().find(|p| p.failed.is_some()) {
        return Barrier::Decided(Some(format!("shard {}: {}", p.shard, p.failed.as_deref().unwrap_or_default())));
    }
    let sum = |f: fn(&journal::ShardPlan) -> i64| parts.iter().map(f).sum::<i64>().max(0) as usize;
    Barrier::Decided(brake_verdict(b, sum(|p| p.accounts), sum(|p| p.changed), sum(|p| p.deletes)))
}

/// The blast-radius brake's decision on a plan of `accounts` accounts, `changed` of which
/// would change, with `deletes` deletions in all: why the run must stop, if it must.
/// Any delete stops it unless deletes are allowed; so does a changed share of the fleet
/// above the allowed one (exactly the allowed share goes ahead).
pub fn brake_verdict(b: &Brake, accounts: usize, changed: usize, deletes: usize) -> Option<String> {
    if deletes > 0 && !b.allow_deletes {
        return Some(format!("the plan deletes {deletes} resource(s)"));
    }
    let share = changed as f64 / accounts.max(1) as f64;
    if share > b.max_changed_share {
        return Some(format!(
            "the plan changes {changed} of {accounts} accounts ({:.0} %), more than the {:.0} % allowed",
            share * 100.0,
            b.max_changed_share * 100.0
        ));
    }
    None
}

/// Why an account of a resumed run is no longer worked on (it is not among the enrolled
/// accounts of this daemon any more).
pub fn not_enrolled_reason(account: &str, inv: &Inventory, has_file: bool) -> &'static str {
    if !has_file {
        "its account file was removed from desired state"
    } else if inv.missing.iter().any(|a| a.as_str() == account) {
        "no longer in the Organization"
    } else if inv.suspended.iter().any(|a| a.as_str() == account) {
        "suspended or closing in the Organization"
    } else {
        "not in this daemon's shard of the fleet"
    }
}

/// Logs what the planner left alone in an account, one event per resource, with account,
/// region, feature and resource as fields: a resource the customer owns (`not_owned`) or a
/// change refused to keep access (`self_lockout`) as a warning; a quota, a blocked
/// dependency, a Control Tower account or a default resource in use as info; opted-out and
/// initial-only features, skipped by design at every maintenance, at debug level.
fn log_skips(report: &AccountReport) {
    for s in &report.skips {
        let reason = crate::report::wire_name(&s.reason);
        let (account, region, feature, resource) = (&report.account_id, &s.region, &s.feature, &s.resource);
        match s.reason {
            SkipReason::NotOwned | SkipReason::SelfLockout | SkipReason::Conflict | SkipReason::Adoption => {
                tracing::warn!(
                    %account, %region, %feature, %resource, reason, detail = %s.detail, "skipped: conflict, left alone"
                )
            }
            SkipReason::OptedOut | SkipReason::InitialOnly => {
                tracing::debug!(%account, %region, %feature, %resource, reason, detail = %s.detail, "skipped")
            }
            _ => tracing::info!(%account, %region, %feature, %resource, reason, detail = %s.detail, "skipped"),
        }
    }
}

/// Writes `announce-<date of the maintenance>.md` (summaries by feature and by account,
/// then the full dry run) and `.json` (the JSON report) into `dir`; returns their paths.
pub fn write_announcement(
    dir: &Path,
    settings: &crate::desired::DaemonSettings,
    report: &RunReport,
    next: Option<chrono::DateTime<chrono::Utc>>,
    pinned: Option<&str>,
) -> Result<Vec<PathBuf>, String> {
    use std::io::Write;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let name = match next {
        Some(n) => format!("announce-{}", n.with_timezone(&settings.timezone.0).format("%Y-%m-%d")),
        None => "announce".to_string(),
    };
    let mut head = String::from("# Announcement: changes at the next maintenance\n\n");
    if let Some(n) = next {
        head.push_str(&format!(
            "Maintenance: {} ({}), {} UTC\n\n",
            n.with_timezone(&settings.timezone.0).format("%Y-%m-%d %H:%M"),
            settings.timezone.0.name(),
            n.format("%Y-%m-%d %H:%M")
        ));
    }
    match pinned {
        Some(digest) => head.push_str(&format!(
            "Desired state: `{digest}`, pinned: that maintenance applies exactly this; edits made after \
             this announcement wait for the next cycle.\n\n"
        )),
        None => head.push_str("Desired state: not pinned (a dry run by hand; the daemon's announcement pins).\n\n"),
    }
    head.push_str(&report.summary_markdown());
    head.push('\n');
    let md = dir.join(format!("{name}.md"));
    let written = std::fs::File::create(&md).and_then(|f| {
        let mut w = std::io::BufWriter::new(f);
        w.write_all(head.as_bytes())?;
        report.write(&mut w, Format::Markdown, false)?;
        w.flush()
    });
    written.map_err(|e| format!("cannot write {}: {e}", md.display()))?;
    let json = dir.join(format!("{name}.json"));
    report.write_file(&json, Format::Json, false).map_err(|e| format!("cannot write {}: {e}", json.display()))?;
    for path in [&md, &json] {
        tracing::info!(path = %path.display(), "announcement written");
    }
    Ok(vec![md, json])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brake(share: f64, allow_deletes: bool) -> Brake {
        Brake { max_changed_share: share, allow_deletes }
    }

    fn part(shard: &str, accounts: i64, changed: i64, deletes: i64) -> journal::ShardPlan {
        journal::ShardPlan {
            shard: shard.into(),
            accounts,
            changed,
            deletes,
            failed: None,
            planned_at: "2026-12-05T17:01:00Z".into(),
        }
    }

    #[test]
    fn the_fleet_brake_waits_for_every_shard_then_weighs_the_whole_fleet() {
        let s = |t: &str| crate::inventory::Shard::parse(t).unwrap();
        let b = brake(0.2, false);
        // One shard in: no verdict yet, whatever its part says.
        let one = [part("1/3", 10, 10, 0)];
        assert_eq!(
            fleet_verdict(&b, s("0/3"), &one),
            Barrier::Wait(
                "planned by 1 of 3 shards; waiting for shard(s) 0/3, 2/3 to plan before the brake decides".into()
            )
        );
        // 3 of 15 accounts change: 20 %, allowed. 4 of 15 is not, though no shard alone
        // has more than 2 of its 5.
        let under = [part("0/3", 5, 1, 0), part("1/3", 5, 1, 0), part("2/3", 5, 1, 0)];
        assert_eq!(fleet_verdict(&b, s("2/3"), &under), Barrier::Decided(None));
        let over = [part("0/3", 5, 1, 0), part("1/3", 5, 1, 0), part("2/3", 5, 2, 0)];
        let Barrier::Decided(Some(why)) = fleet_verdict(&b, s("0/3"), &over) else { panic!("not braked") };
        assert!(why.contains("4 of 15 accounts"), "{why}");
        // The same verdict on every shard.
        for i in 0..3 {
            assert_eq!(fleet_verdict(&b, s(&format!("{i}/3")), &over), fleet_verdict(&b, s("0/3"), &over));
        }
        // A delete anywhere, a part that could not be planned, or a part of another split stops it.
        let delete = [part("0/2", 5, 0, 0), part("1/2", 5, 1, 1)];
        assert_eq!(
            fleet_verdict(&b, s("0/2"), &delete),
            Barrier::Decided(Some("the plan deletes 1 resource(s)".into()))
        );
        let mut failed = [part("0/2", 5, 0, 0), part("1/2", 0, 0, 0)];
        failed[1].failed = Some("the plan of the run could not be written: disk full".into());
        let Barrier::Decided(Some(why)) = fleet_verdict(&b, s("0/2"), &failed) else { panic!("not braked") };
        assert!(why.starts_with("shard 1/2: the plan of the run could not be written"), "{why}");
        let mixed = [part("0/2", 5, 0, 0), part("1/3", 5, 0, 0)];
        let Barrier::Decided(Some(why)) = fleet_verdict(&b, s("0/2"), &mixed) else { panic!("not braked") };
        assert!(why.contains("shard 1/3 planned this run as part of another split"), "{why}");
    }

    #[test]
    fn the_brake_stops_above_the_allowed_share_of_accounts() {
        let b = brake(0.2, false);
        assert_eq!(brake_verdict(&b, 10, 0, 0), None);
        assert_eq!(brake_verdict(&b, 10, 2, 0), None, "exactly the allowed share goes ahead");
        assert_eq!(
            brake_verdict(&b, 10, 3, 0).as_deref(),
            Some("the plan changes 3 of 10 accounts (30 %), more than the 20 % allowed")
        );
        assert_eq!(
            brake_verdict(&b, 10, 5, 0).as_deref(),
            Some("the plan changes 5 of 10 accounts (50 %), more than the 20 % allowed")
        );
        assert!(brake_verdict(&b, 1, 1, 0).is_some(), "one account of one is all of them");
        assert_eq!(brake_verdict(&b, 0, 0, 0), None, "an empty fleet changes nothing");
        assert_eq!(brake_verdict(&brake(1.0, false), 10, 10, 0), None);
        assert!(brake_verdict(&brake(0.0, false), 1000, 1, 0).is_some());
    }

    #[test]
    fn the_brake_stops_any_delete_unless_deletes_are_allowed() {
        assert_eq!(brake_verdict(&brake(0.2, false), 10, 1, 1).as_deref(), Some("the plan deletes 1 resource(s)"));
        assert_eq!(brake_verdict(&brake(1.0, false), 10, 1, 3).as_deref(), Some("the plan deletes 3 resource(s)"));
        assert_eq!(brake_verdict(&brake(0.2, true), 10, 1, 3), None);
        // Allowing deletes does not lift the share limit.
        assert!(brake_verdict(&brake(0.2, true), 10, 5, 3).unwrap().contains("5 of 10 accounts"));
    }

    #[test]
    fn accounts_gone_from_the_fleet_are_skipped_with_the_reason() {
        let id = |s: &str| crate::desired::names::AccountId::parse(s).unwrap();
        let inv =
            Inventory { missing: vec![id("111111111111")], suspended: vec![id("222222222222")], ..Default::default() };
        assert_eq!(not_enrolled_reason("111111111111", &inv, true), "no longer in the Organization");
        assert_eq!(not_enrolled_reason("222222222222", &inv, true), "suspended or closing in the Organization");
        assert_eq!(not_enrolled_reason("333333333333", &inv, false), "its account file was removed from desired state");
        assert_eq!(not_enrolled_reason("444444444444", &inv, true), "not in this daemon's shard of the fleet");
    }
}
