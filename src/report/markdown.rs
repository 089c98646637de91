//! The Markdown report, for announcements and review: the fleet first (what needs a
//! person's attention one by one, changes by feature and action, skips by reason), then a
//! table of the accounts, then per account the changes (the field-level diff of what
//! changes; a created resource's whole body only with `--diff full`) and the skips.

use super::summary::Summary;
use super::{md_cell as cell, plural, wire_name, AccountReport, Accounts, Head};
use std::fmt::Write;
use std::io;

fn status(a: &AccountReport) -> String {
    wire_name(&a.status)
}

pub(crate) fn write(r: &Head<'_>, accounts: &dyn Accounts, w: &mut dyn io::Write) -> io::Result<()> {
    let s = Summary::of(accounts)?;
    let mut out = String::new();
    let _ = writeln!(out, "# cm-baseline {} ({:?})\n", r.command, r.mode);
    let _ = writeln!(out, "{}: {}.\n", plural(s.accounts, "account"), s.statuses());
    if s.attention.is_empty() {
        let _ = writeln!(out, "**Needs attention:** nothing (no delete, adoption, conflict or failure).\n");
    } else {
        let _ = writeln!(out, "## Needs attention ({})\n", s.attention.len() + s.attention_more);
        for x in &s.attention {
            let _ = writeln!(out, "- **{}** {} {}{}", x.kind, x.account, cell(&x.what), x.where_());
        }
        if s.attention_more > 0 {
            let _ = writeln!(out, "- ... and {} more (the JSON report lists every one)", s.attention_more);
        }
        out.push('\n');
    }
    if !s.changes.is_empty() {
        let _ =
            writeln!(out, "## Changes by feature\n\n| feature | action | changes | accounts |\n|---|---|---:|---:|");
        for ((f, action), (n, accounts)) in &s.changes {
            let title = crate::desired::names::FeatureId::parse(f).map(|id| id.title()).unwrap_or("");
            let _ = writeln!(out, "| {f} {title} | {action} | {n} | {accounts} |");
        }
        out.push('\n');
    }
    if !s.skips.is_empty() {
        let parts: Vec<String> = s.skips.iter().map(|(reason, (n, _))| format!("{reason} {n}")).collect();
        let _ = writeln!(out, "Skips by reason: {}.\n", parts.join(", "));
    }
    let _ = writeln!(out, "## Accounts\n");
    let _ = writeln!(out, "| account | name | tier | status | changes | skips | API calls |");
    let _ = writeln!(out, "|---|---|---|---|---:|---:|---:|");
    w.write_all(out.as_bytes())?;
    // The summary table, then the details: two passes over the accounts.
    accounts.each(&mut |a| {
        let row = format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            a.account_id,
            cell(a.name.as_deref().unwrap_or("")),
            a.tier,
            status(a),
            a.changes.len(),
            a.skips.len(),
            a.api_calls.total
        );
        w.write_all(row.as_bytes())
    })?;
    w.write_all(b"\n")?;
    accounts.each(&mut |a| w.write_all(details(a, r.full_diffs).as_bytes()))?;
    let mut out = String::new();
    let inv = r.inventory;
    if !inv.not_enrolled.is_empty() || !inv.missing.is_empty() || !inv.suspended.is_empty() {
        let _ = writeln!(out, "## Inventory notes\n");
        for a in &inv.not_enrolled {
            let _ =
                writeln!(out, "- {} ({}): in the Organization, no account file (not enrolled)", a.id, cell(&a.name));
        }
        for id in &inv.missing {
            let _ = writeln!(out, "- {id}: account file without an account in the Organization");
        }
        for id in &inv.suspended {
            let _ = writeln!(out, "- {id}: suspended, skipped");
        }
    }
    w.write_all(out.as_bytes())
}

/// One account's section: its error, its changes with their diffs, its skips.
fn details(a: &AccountReport, full_diffs: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## {} {}\n", a.account_id, a.name.as_deref().unwrap_or(""));
    if let Some(e) = &a.error {
        let _ = writeln!(out, "**Error:** {}\n", cell(e));
    }
    if a.changes.is_empty() {
        let _ = writeln!(out, "No changes.\n");
    } else {
        let _ = writeln!(out, "{}:\n", plural(a.changes.len(), "change"));
        for c in &a.changes {
            if c.action == crate::plan::Action::Create && !full_diffs {
                let _ =
                    writeln!(out, "- {:?} {} `{} {}` ({})", c.action, c.feature, c.resource_type, c.resource, c.region);
                continue;
            }
            let _ = writeln!(
                out,
                "\n### {:?} {} `{} {}` ({})\n\n```diff\n{}```\n",
                c.action, c.feature, c.resource_type, c.resource, c.region, c.diff
            );
        }
        out.push('\n');
    }
    if !a.skips.is_empty() {
        let _ = writeln!(out, "| feature | region | resource | reason | detail |\n|---|---|---|---|---|");
        for s in &a.skips {
            let reason = wire_name(&s.reason);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {reason} | {} |",
                s.feature,
                s.region,
                cell(&s.resource),
                cell(&s.detail)
            );
        }
        out.push('\n');
    }
    out
}
