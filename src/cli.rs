//! Command line: `validate`, `accounts`, `plan`, `apply`.

use crate::aws::{CallLimits, Fleet};
use crate::desired::names::AccountId;
use crate::desired::{self, DesiredState};
use crate::inventory::{self, Inventory};
use crate::journal::{self, Journal};
use crate::plan::Mode;
use crate::report::{FleetReport, Format, RunReport};
use crate::run::{run, run_listed, RunOptions};
use clap::{Args, Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

/// Accounts worked on at once unless told otherwise: twice the default fleet-wide call
/// limit (32) over the per-account one (4).
const DEFAULT_PARALLEL_ACCOUNTS: usize = 16;

#[derive(Parser, Debug)]
#[command(
    name = "cm-baseline",
    version,
    about = "Keeps a security baseline on every member account of an AWS Organization"
)]
pub struct Cli {
    /// The desired-state directory.
    #[arg(long, global = true, default_value = "./desired-state", env = "CM_DESIRED_STATE")]
    pub desired_state: PathBuf,
    /// Work on one share of the fleet: INDEX/COUNT (0-based), so that COUNT processes cover
    /// it once. Also from CM_SHARD, or JOB_COMPLETION_INDEX with CM_SHARD_COUNT.
    #[arg(long, global = true, value_parser = crate::inventory::Shard::parse)]
    pub shard: Option<crate::inventory::Shard>,
    /// Where the journal (runs and ownership records), reports and announcements are kept.
    /// `plan` reads the journal's ownership records, `apply` and the daemon write them: give
    /// every command of one fleet the same directory.
    #[arg(long, global = true, default_value = "./state", env = "CM_STATE_DIR")]
    pub state_dir: PathBuf,
    /// Where the journal is kept: `sqlite:PATH` (default: journal.sqlite in the state
    /// directory), `dynamodb:TABLE`, or `dynamodb:TABLE,s3://BUCKET/PREFIX` (large values in
    /// S3). Every process of one fleet gives the same (the daemon, `apply`, `runs approve`).
    #[arg(long, global = true, env = "CM_JOURNAL", value_parser = journal::Location::parse)]
    pub journal: Option<journal::Location>,
    /// Log format: human on a terminal, JSON lines otherwise (auto).
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Auto,
    Human,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check desired state; print every problem with file:line:col.
    Validate,
    /// List member accounts with tier, opt-ins and enrolment.
    Accounts(AccountsArgs),
    /// Show what a reconcile would change, per account (a dry run).
    Plan(RunArgs),
    /// Make the changes, then plan again to check each account converged.
    Apply(RunArgs),
    /// An account leaving the service: removes what desired state marks `on_leaving: remove`
    /// (only what is provably ours, what depends on something first) and lists what stays,
    /// with why. A plan by default; `--apply --plan FILE` carries out the plan reviewed.
    Offboard(OffboardArgs),
    /// The long-running service: weekly maintenance and announcements, journal, /metrics.
    Daemon(DaemonArgs),
    /// Runs recorded in the daemon's journal.
    Runs(RunsArgs),
    /// Exit 0 when the daemon at ADDR answers /healthz, 1 otherwise (for container health
    /// checks, where no curl is at hand).
    Healthcheck {
        #[arg(long, default_value = "127.0.0.1:9464", env = "CM_LISTEN")]
        listen: std::net::SocketAddr,
    },
    /// Write the announcement of the next maintenance now (R5): a fleet-wide dry run as
    /// Markdown and JSON, with summaries by feature and by account.
    Announce {
        /// Directory the files are written to.
        #[arg(long, default_value = "./state/announcements")]
        out_dir: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "127.0.0.1:9464", env = "CM_LISTEN")]
    pub listen: std::net::SocketAddr,
    /// A file of named bearer tokens (`NAME TOKEN` per line) allowed to approve braked runs
    /// with `POST /runs/ID/approve`; without it that endpoint does not exist.
    #[arg(long, env = "CM_APPROVAL_TOKENS")]
    pub approval_tokens: Option<PathBuf>,
    /// A Slack-compatible webhook URL told when a run is braked, fails or is refused,
    /// finishes with failures, or when the announcement finds changes (keep it secret: give
    /// it through the environment).
    #[arg(long, env = "CM_NOTIFY_WEBHOOK", hide_env_values = true)]
    pub notify_webhook: Option<String>,
    /// The URL at which the people notified reach this daemon's listener; notifications link
    /// the reports under it (without it they name the report's path on this host).
    #[arg(long, env = "CM_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Also start a maintenance run now.
    #[arg(long)]
    pub run_now: bool,
    /// Where announcements are written (default: <state-dir>/announcements).
    #[arg(long, env = "CM_ANNOUNCE_DIR")]
    pub announce_dir: Option<PathBuf>,
    /// Seconds in-flight accounts may take to finish after SIGTERM.
    #[arg(long, default_value_t = 300)]
    pub stop_deadline: u64,
    /// Seconds between checks for accounts pending onboarding (enrolled, never set up):
    /// their initial setup is planned and, when it only creates, applied at once.
    #[arg(long, default_value_t = 300)]
    pub onboard_every: u64,
    #[arg(long, default_value_t = DEFAULT_PARALLEL_ACCOUNTS)]
    pub parallel_accounts: usize,
    #[arg(long, default_value_t = 32)]
    pub max_calls: usize,
    #[arg(long, default_value_t = 4)]
    pub account_calls: usize,
    #[arg(long, default_value_t = 8)]
    pub max_attempts: u32,
}

#[derive(Args, Debug)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub command: Option<RunsCommand>,
}

#[derive(Subcommand, Debug)]
pub enum RunsCommand {
    /// List runs, newest first (the default).
    List,
    /// A run's report.
    Show {
        id: i64,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Let a run stopped by the blast-radius brake go ahead (the daemon picks it up).
    Approve { id: i64 },
    /// Write everything the journal holds (runs, approvals, pins, kept desired state,
    /// ownership records) as JSON lines, to move it to another store (`runs import`).
    Export {
        /// The file written (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Read what `runs export` wrote into this journal, which must hold no run yet
    /// (`--journal` names it: for example SQLite on a host, exported, into DynamoDB for ECS).
    Import {
        /// The file `runs export` wrote.
        file: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct OffboardArgs {
    /// The account leaving.
    #[arg(long, value_parser = parse_account)]
    pub account: AccountId,
    /// Carry out the offboarding plan given with --plan. It deletes: it runs only as reviewed.
    #[arg(long)]
    pub apply: bool,
    /// With --apply: the plan reviewed (`offboard --account ID --format json --out FILE`).
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Also write the report to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "changed")]
    pub diff: DiffDetail,
}

#[derive(Args, Debug)]
pub struct AccountsArgs {
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffDetail {
    Changed,
    Full,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Only this account (repeatable).
    #[arg(long = "account", value_parser = parse_account)]
    pub accounts: Vec<AccountId>,
    /// Initial setup: apply everything of the tier, initial-only items included.
    #[arg(long)]
    pub initial: bool,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Also write the report to this file. A JSON plan written this way can be applied as
    /// approved with `apply --plan FILE`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// How much of each change the text and Markdown reports show: `changed` (the default:
    /// the field-level diff of what changes, one line for a created resource) or `full`
    /// (also the whole body of created resources). JSON always has everything.
    #[arg(long, value_enum, default_value = "changed")]
    pub diff: DiffDetail,
    /// apply: carry out exactly this saved JSON plan (`plan --format json --out FILE`);
    /// an account whose fresh plan no longer matches it is refused, and nothing is changed there.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Exit 0 when nothing changes, 2 when something would, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// With --initial and --account: redo initial setup on an account already set up. It
    /// recreates what the customer may have removed on purpose since (the initial IAM admin
    /// user and group) and deletes default VPCs unused since; without it, such an account is
    /// refused, and a fleet-wide --initial leaves it out.
    #[arg(long)]
    pub force_initial: bool,
    /// Accounts worked on at once. Twice --max-calls / --account-calls by default, so that
    /// the fleet-wide limit stays full while some accounts wait on calls that depend on
    /// each other (enter the account, list its regions, then read).
    #[arg(long, default_value_t = DEFAULT_PARALLEL_ACCOUNTS)]
    pub parallel_accounts: usize,
    /// AWS calls in flight at once, fleet-wide.
    #[arg(long, default_value_t = 32)]
    pub max_calls: usize,
    /// AWS calls in flight at once within one account.
    #[arg(long, default_value_t = 4)]
    pub account_calls: usize,
    /// Attempts per AWS call (throttling and transient errors are retried with backoff).
    #[arg(long, default_value_t = 8)]
    pub max_attempts: u32,
}

fn parse_account(s: &str) -> Result<AccountId, String> {
    AccountId::parse(s)
}

/// What the process exits with.
pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_CHANGES: i32 = 2;

fn load(dir: &std::path::Path) -> Result<DesiredState, i32> {
    desired::load(dir).map_err(|e| {
        eprintln!("{e}");
        EXIT_ERROR
    })
}

async fn fleet_inventory(
    desired: &DesiredState,
    limits: CallLimits,
    shard: crate::inventory::Shard,
) -> Result<(Fleet, Inventory), i32> {
    let fleet = Fleet::from_env(desired.settings.home_region.as_str(), limits).await;
    let inv = fleet_inventory_of(&fleet, desired, shard).await?;
    Ok((fleet, inv))
}

async fn fleet_inventory_of(
    fleet: &Fleet,
    desired: &DesiredState,
    shard: crate::inventory::Shard,
) -> Result<Inventory, i32> {
    match inventory::inventory(fleet, desired).await {
        Ok(mut inv) => {
            inv.enrolled.retain(|a| shard.contains(a.account_id.as_str()));
            Ok(inv)
        }
        Err(e) => {
            eprintln!("error: {}", inventory::cannot_list(&e));
            Err(EXIT_ERROR)
        }
    }
}

pub async fn main(cli: Cli) -> i32 {
    let shard = match cli
        .shard
        .map(Ok)
        .unwrap_or_else(|| crate::inventory::Shard::from_env().map(|s| s.unwrap_or(crate::inventory::Shard::ALL)))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: shard: {e}");
            return EXIT_ERROR;
        }
    };
    let journal_at = cli.journal.clone().unwrap_or_else(|| journal::Location::in_state_dir(&cli.state_dir));
    match cli.command {
        Command::Validate => match load(&cli.desired_state) {
            Ok(d) => {
                println!(
                    "{}: valid ({} features, {} tiers, {} accounts)",
                    cli.desired_state.display(),
                    d.features.len(),
                    d.tiers.len(),
                    d.accounts.len()
                );
                EXIT_OK
            }
            Err(code) => code,
        },
        Command::Accounts(args) => {
            let Ok(d) = load(&cli.desired_state) else {
                return EXIT_ERROR;
            };
            let Ok((_, inv)) = fleet_inventory(&d, CallLimits::default(), shard).await else {
                return EXIT_ERROR;
            };
            let Ok(journal) = open_journal(&journal_at, false).await else { return EXIT_ERROR };
            let mut inv = inv;
            let mut onboarding = std::collections::BTreeMap::new();
            if let Some(j) = &journal {
                if let Err(e) = journal::drop_offboarded(&**j, &mut inv).await {
                    eprintln!("error: cannot read the journal: {e}");
                    return EXIT_ERROR;
                }
                for a in &inv.enrolled {
                    match journal::onboarding(&**j, a.account_id.as_str()).await {
                        Ok(o) => onboarding.insert(a.account_id.to_string(), o.to_string()),
                        Err(e) => {
                            eprintln!("error: cannot read the journal: {e}");
                            return EXIT_ERROR;
                        }
                    };
                }
            }
            print!("{}", render_accounts(&d, &inv, &onboarding, args.format));
            EXIT_OK
        }
        Command::Plan(args) => {
            reconcile(&cli.desired_state, &journal_at, args, false, shard, progress_shown(cli.log_format)).await
        }
        Command::Apply(args) => {
            reconcile(&cli.desired_state, &journal_at, args, true, shard, progress_shown(cli.log_format)).await
        }
        Command::Offboard(o) => {
            if o.apply && o.plan.is_none() {
                eprintln!(
                    "error: an offboarding deletes, so it runs only as reviewed: write its plan with \
                     `cm-baseline offboard --account {id} --format json --out offboard-{id}.json`, read it, then \
                     `cm-baseline offboard --account {id} --apply --plan offboard-{id}.json`. Nothing was changed",
                    id = o.account
                );
                return EXIT_ERROR;
            }
            if o.plan.is_some() && !o.apply {
                eprintln!("error: --plan goes with --apply");
                return EXIT_ERROR;
            }
            let args = RunArgs {
                accounts: vec![o.account],
                initial: false,
                format: o.format,
                out: o.out,
                diff: o.diff,
                plan: o.plan,
                detailed_exitcode: false,
                force_initial: false,
                parallel_accounts: 1,
                max_calls: 32,
                account_calls: 4,
                max_attempts: 8,
            };
            let progress = progress_shown(cli.log_format);
            reconcile_as(&cli.desired_state, &journal_at, args, o.apply, crate::inventory::Shard::ALL, progress, true)
                .await
        }
        Command::Daemon(args) => {
            let opts = crate::daemon::DaemonOptions {
                desired_dir: cli.desired_state.clone(),
                announce_dir: args.announce_dir.unwrap_or_else(|| cli.state_dir.join("announcements")),
                state_dir: cli.state_dir.clone(),
                journal: journal_at.clone(),
                listen: args.listen,
                run_now: args.run_now,
                limits: CallLimits {
                    fleet_concurrency: args.max_calls,
                    account_concurrency: args.account_calls,
                    max_attempts: args.max_attempts,
                },
                parallel_accounts: args.parallel_accounts,
                stop_deadline: std::time::Duration::from_secs(args.stop_deadline),
                onboard_every: std::time::Duration::from_secs(args.onboard_every.max(1)),
                shard,
                approval_tokens: args.approval_tokens,
                notify_webhook: args.notify_webhook,
                public_url: args.public_url,
            };
            crate::daemon::main(opts).await
        }
        Command::Runs(args) => runs(&journal_at, args).await,
        Command::Healthcheck { listen } => healthcheck(listen),
        Command::Announce { out_dir } => {
            let Ok(d) = load(&cli.desired_state) else { return EXIT_ERROR };
            let Ok((fleet, inv)) = fleet_inventory(&d, CallLimits::default(), shard).await else { return EXIT_ERROR };
            let Ok(journal) = open_journal(&journal_at, false).await else { return EXIT_ERROR };
            let opts = RunOptions {
                mode: Mode::Maintenance,
                apply: false,
                accounts: vec![],
                parallel_accounts: DEFAULT_PARALLEL_ACCOUNTS,
                approved: None,
                journal,
                progress: progress_shown(cli.log_format),
            };
            let report = match run(&fleet, &d, &inv, &opts).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: cannot write the report: {e}");
                    return EXIT_ERROR;
                }
            };
            let next = d.settings.daemon.maintenance_schedule().next_after(chrono::Utc::now());
            match crate::daemon::write_announcement(&out_dir, &d.settings.daemon, &report, next, None) {
                Ok(paths) => {
                    for p in &paths {
                        println!("{}", p.display());
                    }
                    // Also under daemon.announce_s3: the files just written, as they are.
                    let mut published = true;
                    if let Some(dest) = &d.settings.daemon.announce_s3 {
                        let home = d.settings.home_region.as_str();
                        for u in crate::daemon::publish::upload(&fleet, dest, home, &paths).await {
                            match u.result {
                                Ok(()) => println!("{}", u.uri),
                                Err(e) => {
                                    eprintln!("error: {e} (the local file {} is kept)", u.path.display());
                                    published = false;
                                }
                            }
                        }
                    }
                    if report.has_failures() || !published {
                        EXIT_ERROR
                    } else {
                        EXIT_OK
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    EXIT_ERROR
                }
            }
        }
    }
}

/// Whether a run shows its progress line: on a terminal, with human logs (JSON logs are for
/// machines, and a progress line would break their lines).
fn progress_shown(log_format: LogFormat) -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && log_format != LogFormat::Json
}

/// The journal at `at`: a SQLite file is created by a command that writes (`apply`); a
/// command that only reads opens it when it exists.
async fn open_journal(at: &journal::Location, create: bool) -> Result<Option<Arc<dyn Journal>>, i32> {
    journal::open_at(at, create).await.map_err(|e| {
        eprintln!("error: {e} (journal {at}; see --journal, --state-dir)");
        EXIT_ERROR
    })
}

async fn reconcile(
    dir: &std::path::Path,
    journal_at: &journal::Location,
    args: RunArgs,
    apply: bool,
    shard: crate::inventory::Shard,
    progress: bool,
) -> i32 {
    reconcile_as(dir, journal_at, args, apply, shard, progress, false).await
}

/// `plan`, `apply` and (`offboarding`) `offboard`.
async fn reconcile_as(
    dir: &std::path::Path,
    journal_at: &journal::Location,
    args: RunArgs,
    apply: bool,
    shard: crate::inventory::Shard,
    progress: bool,
    offboarding: bool,
) -> i32 {
    let Ok(mut d) = load(dir) else { return EXIT_ERROR };
    let Ok(journal) = open_journal(journal_at, apply).await else { return EXIT_ERROR };
    let limits = CallLimits {
        fleet_concurrency: args.max_calls,
        account_concurrency: args.account_calls,
        max_attempts: args.max_attempts,
    };
    let mut opts = RunOptions {
        mode: if offboarding {
            Mode::Offboarding
        } else if args.initial {
            Mode::Initial
        } else {
            Mode::Maintenance
        },
        apply,
        accounts: args.accounts.clone(),
        parallel_accounts: args.parallel_accounts,
        approved: None,
        journal,
        progress,
    };
    if let Some(path) = &args.plan {
        if !apply {
            eprintln!("error: --plan goes with apply");
            return EXIT_ERROR;
        }
        let saved = match read_saved_plan(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_ERROR;
            }
        };
        opts.mode = saved.mode;
        let approved: std::collections::BTreeMap<AccountId, Vec<crate::plan::Change>> = saved
            .accounts
            .iter()
            .filter(|a| args.accounts.is_empty() || args.accounts.iter().any(|x| x.as_str() == a.account_id))
            .filter_map(|a| AccountId::parse(&a.account_id).ok().map(|id| (id, a.changes.clone())))
            .collect();
        opts.accounts = approved.keys().cloned().collect();
        opts.approved = Some(std::sync::Arc::new(approved));
    }
    if offboarding && opts.mode != Mode::Offboarding {
        eprintln!(
            "error: {}: not an offboarding plan",
            args.plan.as_deref().unwrap_or(std::path::Path::new("")).display()
        );
        return EXIT_ERROR;
    }
    if opts.mode == Mode::Offboarding {
        // Whatever the command, an offboarding plan is made and carried out against desired
        // state's `on_leaving`, for the accounts it names, never fleet-wide.
        if !offboarding || opts.accounts.is_empty() {
            eprintln!(
                "error: an offboarding plan is carried out by `cm-baseline offboard --account ID --apply --plan FILE`"
            );
            return EXIT_ERROR;
        }
        desired::offboarding(&mut d);
    }
    if args.force_initial && (opts.mode != Mode::Initial || opts.accounts.is_empty()) {
        eprintln!(
            "error: --force-initial goes with --initial (or a saved initial plan) and --account: \
             initial setup is redone one named account at a time, never fleet-wide"
        );
        return EXIT_ERROR;
    }
    // A fleet-wide maintenance pass starts on each account as soon as its page of the
    // Organization's listing arrives; a pass over named accounts, an approved plan's,
    // initial setup and offboarding check their accounts against the whole inventory first.
    let listed = !offboarding && opts.accounts.is_empty() && opts.approved.is_none() && opts.mode == Mode::Maintenance;
    let fleet = Fleet::from_env(d.settings.home_region.as_str(), limits).await;
    let mut inv = Inventory::default();
    let mut caller = None;
    if listed {
        match inventory::caller(&fleet).await {
            Ok(c) => caller = Some(c),
            Err(e) => {
                eprintln!("error: {}", inventory::cannot_list(&e));
                return EXIT_ERROR;
            }
        }
    } else {
        inv = match fleet_inventory_of(&fleet, &d, shard).await {
            Ok(inv) => inv,
            Err(code) => return code,
        };
        // Offboarded accounts are no longer maintained; `offboard` may finish one again.
        if let (Some(j), false) = (opts.journal.as_deref(), offboarding) {
            if let Err(e) = journal::drop_offboarded(j, &mut inv).await {
                eprintln!("error: cannot read the journal: {e}");
                return EXIT_ERROR;
            }
        }
        for id in &args.accounts {
            if !inv.enrolled.iter().any(|a| &a.account_id == id) {
                eprintln!("error: --account {id}: not an enrolled, active account (see `cm-baseline accounts`)");
                return EXIT_ERROR;
            }
        }
    }
    if opts.mode == Mode::Initial {
        if let Err(code) =
            initial_only_once(opts.journal.as_deref(), &mut inv, &opts.accounts, apply, args.force_initial).await
        {
            return code;
        }
    }
    // An apply changes the fleet: one process at a time per state directory.
    let lease = match (&opts.journal, apply) {
        (Some(j), true) => match journal::Lease::take(j.clone(), "apply", shard).await {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("error: cannot apply: {e}");
                return EXIT_ERROR;
            }
        },
        _ => None,
    };
    let run = match &caller {
        Some(caller) => match run_listed(&fleet, &d, caller, shard, &opts).await {
            Ok((report, None)) => Ok(report),
            Ok((report, Some(why))) => {
                // What was started is reported; the run failed.
                eprintln!(
                    "error: {why}: the accounts of the pages listed before it were run and are reported, no other"
                );
                emit(&report, &args);
                Err(EXIT_ERROR)
            }
            Err(e) => {
                eprintln!("error: cannot write the report: {e}");
                Err(EXIT_ERROR)
            }
        },
        None => run(&fleet, &d, &inv, &opts).await.map_err(|e| {
            eprintln!("error: cannot write the report: {e}");
            EXIT_ERROR
        }),
    };
    let code = match run {
        Ok(report) => emit(&report, &args),
        Err(code) => code,
    };
    let Some(lease) = lease else { return code };
    let lost = lease.lost();
    if let Err(e) = lease.release().await {
        eprintln!("error: cannot give the fleet's lease up ({e}); it runs out by itself");
        return EXIT_ERROR;
    }
    if lost {
        eprintln!("error: the fleet's lease was lost during the apply: another process may have worked on it");
        return EXIT_ERROR;
    }
    code
}

/// Reads a plan saved by `plan --format json --out FILE`.
fn read_saved_plan(path: &std::path::Path) -> Result<FleetReport, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let saved: FleetReport = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}:{}:{}: not a saved plan: {e}; hint: write one with `plan --format json --out FILE`",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    if saved.command != "plan" || saved.format_version != crate::report::FORMAT_VERSION {
        return Err(format!(
            "{}: a {} report of format {}, not a plan of format {}",
            path.display(),
            saved.command,
            saved.format_version,
            crate::report::FORMAT_VERSION
        ));
    }
    // The file must hold exactly the changes the plan wrote: an edit by hand is refused
    // before anything is compared with AWS.
    let digest = crate::report::plan_digest(&saved.accounts).map_err(|e| e.to_string())?;
    match &saved.plan_digest {
        Some(d) if *d == digest => Ok(saved),
        Some(_) => Err(format!(
            "{}: its changes are not the ones the plan wrote (plan_digest does not match): nothing was applied; \
             hint: plan again and approve the new file",
            path.display()
        )),
        None => Err(format!(
            "{}: no plan_digest; hint: write the plan with `plan --format json --out FILE`",
            path.display()
        )),
    }
}

fn emit(report: &RunReport, args: &RunArgs) -> i32 {
    use std::io::Write;
    let colour =
        args.format == Format::Text && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let full = args.diff == DiffDetail::Full;
    if let Err(e) = report.write_with(&mut out, args.format, colour, full).and_then(|()| out.flush()) {
        // A closed pipe (`| head`) is not worth a message; anything else is.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write the report: {e}");
        }
        return EXIT_ERROR;
    }
    if let Some(path) = &args.out {
        if let Err(e) = report.write_file(path, args.format, full) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return EXIT_ERROR;
        }
    }
    if report.has_failures() {
        EXIT_ERROR
    } else if args.detailed_exitcode && report.has_changes() && report.command == "plan" {
        EXIT_CHANGES
    } else {
        EXIT_OK
    }
}

/// Initial setup happens once per account: an account set up already is refused when named
/// (unless `force`), and left out of a fleet-wide initial setup, which then covers the
/// accounts pending onboarding only. Without a journal nothing was recorded: every account
/// is pending.
async fn initial_only_once(
    journal: Option<&dyn Journal>,
    inv: &mut Inventory,
    named: &[AccountId],
    apply: bool,
    force: bool,
) -> Result<(), i32> {
    let Some(j) = journal else { return Ok(()) };
    let mut done = std::collections::BTreeMap::new();
    for a in &inv.enrolled {
        if !named.is_empty() && !named.contains(&a.account_id) {
            continue;
        }
        let id = a.account_id.as_str();
        match journal::onboarding(j, id).await {
            Ok(o) if o.is_done() => {
                done.insert(id.to_string(), o);
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("error: cannot read the journal: {e}");
                return Err(EXIT_ERROR);
            }
        }
    }
    if done.is_empty() {
        return Ok(());
    }
    let list = done.iter().map(|(id, o)| format!("{id} ({o})")).collect::<Vec<_>>().join(", ");
    if named.is_empty() {
        eprintln!(
            "note: initial setup covers the accounts pending onboarding only; {} account(s) set up already are \
             left out: {list}. Maintenance keeps their baseline (`cm-baseline apply`)",
            done.len()
        );
        inv.enrolled.retain(|a| !done.contains_key(a.account_id.as_str()));
        return Ok(());
    }
    if force {
        eprintln!("warning: --force-initial: initial setup is redone on {list}");
        return Ok(());
    }
    if !apply {
        eprintln!("note: initial setup is done already on {list}: applying this would need --force-initial");
        return Ok(());
    }
    eprintln!(
        "error: initial setup is done already on {list}: it is not redone, as it would recreate what the \
         customer may have removed on purpose since (the initial IAM admin user and group) and delete default \
         VPCs unused since. Maintenance keeps the baseline: `cm-baseline apply --account ID`. To redo initial \
         setup anyway, add --force-initial. Nothing was changed"
    );
    Err(EXIT_ERROR)
}

/// `onboarding`: each enrolled account's initial setup as the journal has it.
fn render_accounts(
    d: &DesiredState,
    inv: &Inventory,
    onboarding: &std::collections::BTreeMap<String, String>,
    format: Format,
) -> String {
    #[derive(serde::Serialize)]
    struct Row<'a> {
        account_id: &'a str,
        name: Option<&'a str>,
        tier: &'a str,
        opted_in: Vec<String>,
        initial_setup: &'a str,
    }
    let rows: Vec<Row> = inv
        .enrolled
        .iter()
        .map(|a| Row {
            account_id: a.account_id.as_str(),
            name: a.name.as_deref(),
            tier: a.tier.as_str(),
            opted_in: d.features.keys().filter(|f| d.opted_in(a, f)).map(|f| f.to_string()).collect(),
            initial_setup: onboarding.get(a.account_id.as_str()).map(String::as_str).unwrap_or("pending"),
        })
        .collect();
    match format {
        Format::Json => {
            let v = serde_json::json!({ "enrolled": rows, "inventory": inv });
            format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
        }
        Format::Markdown => {
            let cell = crate::report::md_cell;
            let mut out = String::from(
                "| account | name | tier | opted in | initial setup | enrolment |\n|---|---|---|---|---|---|\n",
            );
            for r in &rows {
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {} | enrolled |\n",
                    r.account_id,
                    cell(r.name.unwrap_or("")),
                    r.tier,
                    r.opted_in.join(", "),
                    r.initial_setup
                ));
            }
            for a in &inv.not_enrolled {
                out.push_str(&format!(
                    "| {} | {} | - | - | - | not enrolled: no account file |\n",
                    a.id,
                    cell(&a.name)
                ));
            }
            for id in &inv.missing {
                out.push_str(&format!("| {id} |  | - | - | - | account file, but not in the Organization |\n"));
            }
            for id in &inv.suspended {
                out.push_str(&format!("| {id} |  | - | - | - | suspended |\n"));
            }
            for id in &inv.offboarded {
                out.push_str(&format!("| {id} |  | - | - | - | offboarded: no longer maintained |\n"));
            }
            out
        }
        Format::Text => {
            let mut out = String::from("ACCOUNT       TIER     OPTED IN                          NAME\n");
            for r in &rows {
                out.push_str(&format!(
                    "{:<13} {:<8} {:<33} {} (initial setup: {})\n",
                    r.account_id,
                    r.tier,
                    r.opted_in.join(","),
                    r.name.unwrap_or(""),
                    r.initial_setup
                ));
            }
            for a in &inv.not_enrolled {
                out.push_str(&format!(
                    "{:<13} {:<8} {:<33} {} (not enrolled: no account file)\n",
                    a.id, "-", "-", a.name
                ));
            }
            for id in &inv.missing {
                out.push_str(&format!(
                    "{id:<13} -        -                                 (account file, but not in the Organization)\n"
                ));
            }
            for id in &inv.suspended {
                out.push_str(&format!("{id:<13} -        -                                 (suspended)\n"));
            }
            for id in &inv.offboarded {
                out.push_str(&format!(
                    "{id:<13} -        -                                 (offboarded: no longer maintained)\n"
                ));
            }
            out
        }
    }
}

async fn runs(at: &journal::Location, args: RunsArgs) -> i32 {
    if let Some(RunsCommand::Import { file }) = &args.command {
        return import(at, file).await;
    }
    let j = match journal::open_at(at, false).await {
        Ok(Some(j)) => j,
        Ok(None) => {
            eprintln!("error: no journal at {at} (see --journal, --state-dir)");
            return EXIT_ERROR;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_ERROR;
        }
    };
    match args.command.unwrap_or(RunsCommand::List) {
        RunsCommand::List => {
            println!("{:>5}  {:<12} {:<9} {:<21} {:<21} DETAIL", "ID", "KIND", "STATUS", "STARTED", "FINISHED");
            let listed = match j.runs(50).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_ERROR;
                }
            };
            for r in listed {
                let accounts = match j.accounts(r.id).await {
                    Ok(a) => a,
                    Err(e) => {
                        eprintln!("error: run {}: {e}", r.id);
                        return EXIT_ERROR;
                    }
                };
                let done = accounts.iter().filter(|a| a.status == "done").count();
                println!(
                    "{:>5}  {:<12} {:<9} {:<21} {:<21} {done}/{} accounts done{}",
                    r.id,
                    r.kind,
                    r.status,
                    r.started_at,
                    r.finished_at.as_deref().unwrap_or("-"),
                    accounts.len(),
                    r.detail.map(|d| format!("; {d}")).unwrap_or_default()
                );
            }
            EXIT_OK
        }
        RunsCommand::Show { id, format } => {
            let Ok(Some(run)) = j.run(id).await else {
                eprintln!("error: no run {id}");
                return EXIT_ERROR;
            };
            let rows = match j.accounts(id).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_ERROR;
                }
            };
            if format == Format::Json {
                let v = serde_json::json!({ "run": run, "accounts": rows.iter().map(|r| serde_json::json!({
                    "account_id": r.account_id, "status": r.status, "attempts": r.attempts, "done_count": r.done_count,
                    "changes": r.changes, "api_calls": r.api_calls, "error": r.error,
                    "report": r.report.as_deref().and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok()),
                })).collect::<Vec<_>>() });
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                return EXIT_OK;
            }
            println!(
                "run {} ({}) {}: started {}, finished {}{}",
                run.id,
                run.kind,
                run.status,
                run.started_at,
                run.finished_at.as_deref().unwrap_or("-"),
                run.detail.map(|d| format!("; {d}")).unwrap_or_default()
            );
            match j.run_desired(id).await {
                Ok(Some((digest, how))) => println!("  desired state {digest}: {how}"),
                Ok(None) => {}
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_ERROR;
                }
            }
            match j.approval(id).await {
                Ok(Some((by, at))) => println!("  approved by {by} at {at}"),
                Ok(None) => {}
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_ERROR;
                }
            }
            for r in rows.iter().filter(|r| r.report.is_none()) {
                match &r.error {
                    Some(why) => println!("  {} {} (not done): {why}", r.account_id, r.status),
                    None => println!("  {} {} (not done)", r.account_id, r.status),
                }
            }
            let report = crate::report::FleetReport::of_run(run.id, &rows);
            print!("{}", report.render(format, false));
            EXIT_OK
        }
        RunsCommand::Import { .. } => EXIT_ERROR, // handled above: the journal may not exist yet
        RunsCommand::Export { out } => {
            let entries = match journal::export(&*j).await {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_ERROR;
                }
            };
            let mut text = String::new();
            for e in &entries {
                match serde_json::to_string(e) {
                    Ok(line) => {
                        text.push_str(&line);
                        text.push('\n');
                    }
                    Err(e) => {
                        eprintln!("error: cannot write the export: {e}");
                        return EXIT_ERROR;
                    }
                }
            }
            let written = match &out {
                Some(path) => std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display())),
                None => {
                    use std::io::Write;
                    std::io::stdout().write_all(text.as_bytes()).map_err(|e| e.to_string())
                }
            };
            match written {
                Ok(()) => {
                    eprintln!("exported {} entries from {at}", entries.len());
                    EXIT_OK
                }
                Err(e) => {
                    eprintln!("error: cannot write the export: {e}");
                    EXIT_ERROR
                }
            }
        }
        RunsCommand::Approve { id } => {
            let by = format!("{} (command line)", os_user());
            match j.approve(id, &by).await {
                Ok(true) => {
                    println!(
                        "run {id} approved by {by}: the daemon applies exactly its braked plan within seconds \
                         (an account changed since is refused)"
                    );
                    EXIT_OK
                }
                Ok(false) => {
                    match j.run(id).await {
                        Ok(Some(r)) => eprintln!("error: run {id} is {}, not braked", r.status),
                        Ok(None) => eprintln!("error: no run {id}"),
                        Err(e) => eprintln!("error: {e}"),
                    }
                    EXIT_ERROR
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    EXIT_ERROR
                }
            }
        }
    }
}

/// `runs import FILE` into the journal at `at` (created when it is a SQLite file). Every
/// line is read and checked before anything is written.
async fn import(at: &journal::Location, file: &std::path::Path) -> i32 {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            return EXIT_ERROR;
        }
    };
    let mut entries = vec![];
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        match serde_json::from_str::<journal::Exported>(line) {
            Ok(e) => entries.push(e),
            Err(e) => {
                eprintln!("error: {}:{}:{}: {e} (not a line of `runs export`)", file.display(), n + 1, e.column());
                return EXIT_ERROR;
            }
        }
    }
    let Ok(Some(j)) = open_journal(at, true).await else { return EXIT_ERROR };
    match journal::import(&*j, &entries).await {
        Ok(()) => {
            eprintln!("imported {} entries into {at}", entries.len());
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_ERROR
        }
    }
}

/// Who runs this command: `USER` or `LOGNAME`, else the name of this process's user id in
/// /etc/passwd, else `uid N`.
fn os_user() -> String {
    if let Some(u) = ["USER", "LOGNAME"].iter().find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty())) {
        return u;
    }
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return "an unknown user".into();
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == uid.to_string())
        .map(|f| f[0].to_string())
        .unwrap_or_else(|| format!("uid {uid}"))
}

fn healthcheck(addr: std::net::SocketAddr) -> i32 {
    use std::io::{Read, Write};
    let timeout = std::time::Duration::from_secs(5);
    let answer = std::net::TcpStream::connect_timeout(&addr, timeout).and_then(|mut s| {
        s.set_read_timeout(Some(timeout))?;
        s.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        Ok(text)
    });
    match answer {
        Ok(t) if t.starts_with("HTTP/1.1 200") => EXIT_OK,
        Ok(t) => {
            eprintln!("unhealthy: {}", t.lines().next().unwrap_or(""));
            EXIT_ERROR
        }
        Err(e) => {
            eprintln!("unhealthy: {addr}: {e}");
            EXIT_ERROR
        }
    }
}
