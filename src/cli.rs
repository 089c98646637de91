//! Command line: `validate`, `accounts`, `plan`, `apply`.

use crate::aws::{CallLimits, Fleet};
use crate::desired::names::AccountId;
use crate::desired::{self, DesiredState};
use crate::inventory::{self, Inventory};
use crate::plan::Mode;
use crate::report::{FleetReport, Format};
use crate::run::{run, RunOptions};
use clap::{Args, Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;

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
}

#[derive(Args, Debug)]
pub struct AccountsArgs {
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
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
    /// Also write the report to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Exit 0 when nothing changes, 2 when something would, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Accounts worked on at once.
    #[arg(long, default_value_t = 8)]
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

async fn fleet_inventory(desired: &DesiredState, limits: CallLimits) -> Result<(Fleet, Inventory), i32> {
    let fleet = Fleet::from_env(desired.settings.home_region.as_str(), limits).await;
    match inventory::inventory(&fleet, desired).await {
        Ok(inv) => Ok((fleet, inv)),
        Err(e) => {
            eprintln!("error: cannot list the Organization's accounts: {e}");
            Err(EXIT_ERROR)
        }
    }
}

pub async fn main(cli: Cli) -> i32 {
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
            let Ok((_, inv)) = fleet_inventory(&d, CallLimits::default()).await else {
                return EXIT_ERROR;
            };
            print!("{}", render_accounts(&d, &inv, args.format));
            EXIT_OK
        }
        Command::Plan(args) => reconcile(&cli.desired_state, args, false).await,
        Command::Apply(args) => reconcile(&cli.desired_state, args, true).await,
    }
}

async fn reconcile(dir: &std::path::Path, args: RunArgs, apply: bool) -> i32 {
    let Ok(d) = load(dir) else { return EXIT_ERROR };
    let limits = CallLimits {
        fleet_concurrency: args.max_calls,
        account_concurrency: args.account_calls,
        max_attempts: args.max_attempts,
    };
    let Ok((fleet, inv)) = fleet_inventory(&d, limits).await else {
        return EXIT_ERROR;
    };
    for id in &args.accounts {
        if !inv.enrolled.iter().any(|a| &a.account_id == id) {
            eprintln!("error: --account {id}: not an enrolled, active account (see `cm-baseline accounts`)");
            return EXIT_ERROR;
        }
    }
    let opts = RunOptions {
        mode: if args.initial { Mode::Initial } else { Mode::Maintenance },
        apply,
        accounts: args.accounts.clone(),
        parallel_accounts: args.parallel_accounts,
    };
    let report = run(&fleet, &d, &inv, &opts).await;
    emit(&report, &args)
}

fn emit(report: &FleetReport, args: &RunArgs) -> i32 {
    let colour =
        args.format == Format::Text && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    print!("{}", report.render(args.format, colour));
    if let Some(path) = &args.out {
        if let Err(e) = std::fs::write(path, report.render(args.format, false)) {
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

fn render_accounts(d: &DesiredState, inv: &Inventory, format: Format) -> String {
    #[derive(serde::Serialize)]
    struct Row<'a> {
        account_id: &'a str,
        name: Option<&'a str>,
        tier: &'a str,
        opted_in: Vec<String>,
    }
    let rows: Vec<Row> = inv
        .enrolled
        .iter()
        .map(|a| Row {
            account_id: a.account_id.as_str(),
            name: a.name.as_deref(),
            tier: a.tier.as_str(),
            opted_in: d.features.keys().filter(|f| d.opted_in(a, f)).map(|f| f.to_string()).collect(),
        })
        .collect();
    match format {
        Format::Json => {
            let v = serde_json::json!({ "enrolled": rows, "inventory": inv });
            format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
        }
        _ => {
            let mut out = String::from("ACCOUNT       TIER     OPTED IN                          NAME\n");
            for r in &rows {
                out.push_str(&format!(
                    "{:<13} {:<8} {:<33} {}\n",
                    r.account_id,
                    r.tier,
                    r.opted_in.join(","),
                    r.name.unwrap_or("")
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
            out
        }
    }
}
