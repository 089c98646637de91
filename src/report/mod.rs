//! Reports: what a plan would change and what an apply did, per account, in three
//! formats. The JSON form is a versioned contract (see `docs/report-format.md`).

mod markdown;
mod text;

use crate::apply::AppliedChange;
use crate::aws::counter::{CallCount, CallKey};
use crate::inventory::Inventory;
use crate::plan::{AccountPlan, Mode, Skip};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the JSON report; bumped when a field changes meaning or disappears.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Text,
    Markdown,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    pub by_service: BTreeMap<String, u64>,
    /// `service:Operation` → calls.
    pub by_operation: BTreeMap<String, u64>,
}

impl ApiCalls {
    pub fn from_counts<'a>(counts: impl IntoIterator<Item = (&'a CallKey, &'a CallCount)>) -> Self {
        let mut a = ApiCalls::default();
        for (k, c) in counts {
            a.total += c.calls;
            a.retries += c.retries;
            a.throttled += c.throttled;
            match k.outcome.as_str() {
                "ok" => {}
                "not_found" => a.not_found += c.calls,
                _ => a.errors += c.calls,
            }
            *a.by_service.entry(k.service.clone()).or_default() += c.calls;
            *a.by_operation.entry(format!("{}:{}", k.service, k.operation)).or_default() += c.calls;
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
}

impl FleetReport {
    pub fn render(&self, format: Format, colour: bool) -> String {
        match format {
            Format::Text => text::render(self, colour),
            Format::Markdown => markdown::render(self),
            Format::Json => {
                let mut s = serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
                s.push('\n');
                s
            }
        }
    }

    pub fn has_changes(&self) -> bool {
        self.accounts.iter().any(|a| !a.changes.is_empty())
    }

    pub fn has_failures(&self) -> bool {
        self.accounts.iter().any(|a| matches!(a.status, AccountStatus::Failed | AccountStatus::NotConverged))
    }
}

/// `1 change`, `2 changes`.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Summary tables for announcements: changes by feature (and action), and by account.
pub fn summary_markdown(r: &FleetReport) -> String {
    use std::fmt::Write;
    let mut by_feature: BTreeMap<(String, String), (usize, std::collections::BTreeSet<String>)> = BTreeMap::new();
    for a in &r.accounts {
        for c in &a.changes {
            let action =
                serde_json::to_value(c.action).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            let e = by_feature.entry((c.feature.to_string(), action)).or_default();
            e.0 += 1;
            e.1.insert(a.account_id.clone());
        }
    }
    let mut out =
        String::from("## Summary by feature\n\n| feature | action | changes | accounts |\n|---|---|---:|---:|\n");
    for ((f, action), (n, accts)) in &by_feature {
        let title = crate::desired::names::FeatureId::parse(f).map(|id| id.title()).unwrap_or("");
        let _ = writeln!(out, "| {f} {title} | {action} | {n} | {} |", accts.len());
    }
    if by_feature.is_empty() {
        out.push_str("| (none) | | 0 | 0 |\n");
    }
    out.push_str("\n## Summary by account\n\n| account | name | tier | changes | skips | status |\n|---|---|---|---:|---:|---|\n");
    for a in &r.accounts {
        let status =
            serde_json::to_value(a.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {status} |",
            a.account_id,
            a.name.as_deref().unwrap_or("").replace('|', "\\|"),
            a.tier,
            a.changes.len(),
            a.skips.len()
        );
    }
    out
}
