//! Reports: what a plan would change and what an apply did, per account, in three
//! formats. The JSON form is a versioned contract (see `docs/report-format.md`).

//!
//! A run's report is a [`RunReport`]: each account's report goes to a spool file as the
//! account finishes, and only a line of figures per account stays in memory, so that a run
//! over thousands of accounts holds no more than the accounts in flight. Rendering reads the
//! spool back in account-id order. [`FleetReport`] is the same report held in memory (a
//! saved plan read back, a run from the journal); both render through the same writers.

mod markdown;
mod spool;
pub mod summary;
mod text;

pub use spool::RunReport;

use crate::apply::AppliedChange;
use crate::aws::counter::{CallCount, CallKey, TotalKey};
use crate::inventory::Inventory;
use crate::plan::{AccountPlan, Mode, Skip};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Write};

/// Version of the JSON report; bumped when a field changes meaning or disappears.
pub const FORMAT_VERSION: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Text,
    Markdown,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// Plan: already in line with the baseline.
    NoChanges,
    /// Plan: changes pending.
    Changes,
    /// Apply: changes made, and a fresh plan shows none left.
    Converged,
    /// Apply: a fresh plan still shows changes.
    NotConverged,
    /// The account could not be planned or applied (see `error`).
    Failed,
}

/// A change as reports show it: the planner's own [`Change`](crate::plan::Change), with the
/// desired and observed resource, so that a saved JSON plan can be applied as approved.
pub type ChangeView = crate::plan::Change;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ApiCalls {
    pub total: u64,
    /// Calls that failed (after retries), "not found" answers excluded.
    pub errors: u64,
    /// Calls answered "no such resource": how observation learns that something is absent.
    pub not_found: u64,
    pub retries: u64,
    pub throttled: u64,
    /// Calls held back to keep to AWS's documented rates (run totals only).
    #[serde(default)]
    pub paced: u64,
    pub by_service: BTreeMap<String, u64>,
    /// `service:Operation` → calls.
    pub by_operation: BTreeMap<String, u64>,
}

impl ApiCalls {
    fn add(&mut self, service: &str, operation: &str, outcome: &str, c: &CallCount) {
        self.total += c.calls;
        self.retries += c.retries;
        self.throttled += c.throttled;
        match outcome {
            "ok" => {}
            "not_found" => self.not_found += c.calls,
            _ => self.errors += c.calls,
        }
        *self.by_service.entry(service.to_string()).or_default() += c.calls;
        *self.by_operation.entry(format!("{service}:{operation}")).or_default() += c.calls;
    }

    /// One account's calls.
    pub fn of_account(counts: &BTreeMap<CallKey, CallCount>) -> Self {
        let mut a = ApiCalls::default();
        for (k, c) in counts {
            a.add(&k.service, &k.operation, &k.outcome, c);
        }
        a
    }

    /// Fleet-wide calls.
    pub fn of_totals(counts: &BTreeMap<TotalKey, CallCount>) -> Self {
        let mut a = ApiCalls::default();
        for (k, c) in counts {
            a.add(&k.service, &k.operation, &k.outcome, c);
        }
        a
    }

    /// The calls of several reports together (a journaled run keeps its accounts' calls only).
    pub fn sum<'a>(parts: impl IntoIterator<Item = &'a ApiCalls>) -> Self {
        let mut a = ApiCalls::default();
        for p in parts {
            a.total += p.total;
            a.errors += p.errors;
            a.not_found += p.not_found;
            a.retries += p.retries;
            a.throttled += p.throttled;
            a.paced += p.paced;
            for (k, n) in &p.by_service {
                *a.by_service.entry(k.clone()).or_default() += n;
            }
            for (k, n) in &p.by_operation {
                *a.by_operation.entry(k.clone()).or_default() += n;
            }
        }
        a
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountReport {
    pub account_id: String,
    pub name: Option<String>,
    pub tier: String,
    pub status: AccountStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub regions: Vec<String>,
    pub control_tower: bool,
    /// Plan: the changes to make. Apply: the changes planned before applying.
    pub changes: Vec<ChangeView>,
    pub skips: Vec<Skip>,
    /// Apply only: what happened to each change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<Vec<AppliedChange>>,
    /// Apply only: changes a fresh plan still finds after applying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<Vec<ChangeView>>,
    pub api_calls: ApiCalls,
    /// For a failed account: how its failure is handled (not part of the report).
    #[serde(skip)]
    pub fault: crate::aws::Fault,
}

impl AccountReport {
    /// A report with nothing observed, planned or applied yet.
    pub fn empty(account_id: String, name: Option<String>, tier: String, status: AccountStatus) -> Self {
        AccountReport {
            account_id,
            name,
            tier,
            status,
            error: None,
            regions: vec![],
            control_tower: false,
            changes: vec![],
            skips: vec![],
            applied: None,
            remaining: None,
            api_calls: ApiCalls::default(),
            fault: crate::aws::Fault::Account,
        }
    }
}

pub fn change_views(plan: &AccountPlan) -> Vec<ChangeView> {
    plan.changes.clone()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FleetReport {
    pub format_version: u32,
    /// `plan` or `apply`.
    pub command: String,
    pub mode: Mode,
    pub accounts: Vec<AccountReport>,
    pub inventory: Inventory,
    pub api_calls: ApiCalls,
    /// A plan's digest of its accounts' changes ([`plan_digest`]); apply of a saved plan
    /// refuses a file whose changes no longer match it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_digest: Option<String>,
}

impl FleetReport {
    /// The report of a journaled run: each account's report as the journal keeps it (the
    /// journal keeps each account's calls; the management account's are not kept).
    pub fn of_run(run_id: i64, rows: &[crate::journal::AccountRow]) -> FleetReport {
        let accounts: Vec<AccountReport> = rows
            .iter()
            .filter_map(|r| r.report.as_deref())
            .filter_map(|t| serde_json::from_str::<AccountReport>(t).ok())
            .collect();
        let api_calls = ApiCalls::sum(accounts.iter().map(|a| &a.api_calls));
        FleetReport {
            format_version: FORMAT_VERSION,
            command: format!("run {run_id}"),
            mode: Mode::Maintenance,
            accounts,
            inventory: Default::default(),
            api_calls,
            plan_digest: None,
        }
    }
}

/// SHA-256 (hex) over each account's id and its changes as JSON, in account order: what a
/// saved plan's `plan_digest` holds.
pub fn plan_digest(accounts: &dyn Accounts) -> io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    accounts.each(&mut |a| {
        let changes = serde_json::to_vec(&a.changes).map_err(io::Error::other)?;
        h.update((a.account_id.len() as u64).to_be_bytes());
        h.update(a.account_id.as_bytes());
        h.update((changes.len() as u64).to_be_bytes());
        h.update(&changes);
        Ok(())
    })?;
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

impl FleetReport {
    pub fn render(&self, format: Format, colour: bool) -> String {
        let mut out = Vec::new();
        // Writing to memory cannot fail.
        let _ = self.write(&mut out, format, colour);
        String::from_utf8_lossy(&out).into_owned()
    }

    pub fn write(&self, w: &mut dyn Write, format: Format, colour: bool) -> io::Result<()> {
        self.write_with(w, format, colour, false)
    }

    /// [`write`](Self::write), with the bodies of created resources when `full_diffs`.
    pub fn write_with(&self, w: &mut dyn Write, format: Format, colour: bool, full_diffs: bool) -> io::Result<()> {
        let head = Head { full_diffs, ..self.head() };
        write(&head, &self.accounts, w, format, colour)
    }

    fn head(&self) -> Head<'_> {
        Head {
            format_version: self.format_version,
            command: &self.command,
            mode: self.mode,
            inventory: &self.inventory,
            api_calls: &self.api_calls,
            full_diffs: false,
        }
    }

    pub fn has_changes(&self) -> bool {
        self.accounts.iter().any(|a| !a.changes.is_empty())
    }

    pub fn has_failures(&self) -> bool {
        self.accounts.iter().any(|a| matches!(a.status, AccountStatus::Failed | AccountStatus::NotConverged))
    }
}

/// What a report says besides its accounts.
#[derive(Serialize)]
pub(crate) struct Head<'a> {
    pub format_version: u32,
    pub command: &'a str,
    pub mode: Mode,
    pub inventory: &'a Inventory,
    pub api_calls: &'a ApiCalls,
    /// Show the whole body of created resources (`--diff full`), not only their line.
    pub full_diffs: bool,
}

/// The accounts of a report, in account-id order: from memory, or read back from a spool.
pub trait Accounts {
    fn count(&self) -> usize;
    /// Calls `f` with each account in turn; stops at the first error.
    fn each(&self, f: &mut dyn FnMut(&AccountReport) -> io::Result<()>) -> io::Result<()>;
}

impl Accounts for Vec<AccountReport> {
    fn count(&self) -> usize {
        self.len()
    }
    fn each(&self, f: &mut dyn FnMut(&AccountReport) -> io::Result<()>) -> io::Result<()> {
        self.iter().try_for_each(f)
    }
}

/// Writes a report in `format`, one account at a time.
pub(crate) fn write(
    head: &Head<'_>,
    accounts: &dyn Accounts,
    w: &mut dyn Write,
    format: Format,
    colour: bool,
) -> io::Result<()> {
    match format {
        Format::Text => text::write(head, accounts, w, colour),
        Format::Markdown => markdown::write(head, accounts, w),
        Format::Json => {
            // The layout `FleetReport` serialises to, with the accounts streamed.
            #[derive(Serialize)]
            struct Doc<'a> {
                format_version: u32,
                command: &'a str,
                mode: Mode,
                accounts: Streamed<'a>,
                inventory: &'a Inventory,
                api_calls: &'a ApiCalls,
                #[serde(skip_serializing_if = "Option::is_none")]
                plan_digest: Option<String>,
            }
            let plan_digest = if head.command == "plan" { Some(plan_digest(accounts)?) } else { None };
            let doc = Doc {
                format_version: head.format_version,
                command: head.command,
                mode: head.mode,
                accounts: Streamed(accounts),
                inventory: head.inventory,
                api_calls: head.api_calls,
                plan_digest,
            };
            serde_json::to_writer_pretty(&mut *w, &doc).map_err(io::Error::other)?;
            w.write_all(b"\n")
        }
    }
}

/// Serialises the accounts as a JSON array without holding them all.
struct Streamed<'a>(&'a dyn Accounts);

impl Serialize for Streamed<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeSeq};
        let mut seq = serializer.serialize_seq(Some(self.0.count()))?;
        let mut failed = None;
        let read = self.0.each(&mut |a| {
            seq.serialize_element(a).map_err(|e| {
                failed = Some(e);
                io::Error::other("serialising an account")
            })
        });
        if let Some(e) = failed {
            return Err(e);
        }
        read.map_err(S::Error::custom)?;
        seq.end()
    }
}

/// An account's report with nothing in it yet, for the report's own tests.
#[cfg(test)]
pub(crate) fn sample_account(id: &str, status: AccountStatus) -> AccountReport {
    AccountReport {
        regions: vec!["ap-northeast-1".into()],
        ..AccountReport::empty(id.into(), Some(format!("name of {id}")), "secure".into(), status)
    }
}

/// The name a value has in the JSON report (`no_changes`, `not_owned`, `update`), for the
/// text and Markdown renderings and for logs.
pub fn wire_name(v: &impl Serialize) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// Text made safe for one Markdown table cell.
pub fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// `1 change`, `2 changes`.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}
