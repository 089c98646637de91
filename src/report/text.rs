//! The terminal report: one block per account, each change with its diff.

use super::{plural, AccountReport, AccountStatus, Accounts, Head};
use crate::apply::ChangeOutcome;
use crate::plan::Action;
use std::fmt::Write;
use std::io;

struct Paint(bool);

impl Paint {
    fn c(&self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

fn action_mark(a: Action) -> (&'static str, &'static str) {
    match a {
        Action::Create => ("+", "32"),
        Action::Update => ("~", "33"),
        Action::Delete => ("-", "31"),
        Action::Tag => ("#", "36"),
    }
}

fn status_word(s: AccountStatus) -> (&'static str, &'static str) {
    match s {
        AccountStatus::NoChanges => ("no changes", "32"),
        AccountStatus::Changes => ("changes pending", "33"),
        AccountStatus::Converged => ("converged", "32"),
        AccountStatus::NotConverged => ("NOT converged", "31"),
        AccountStatus::Failed => ("FAILED", "31"),
    }
}

fn account(out: &mut String, a: &AccountReport, p: &Paint) {
    let (word, colour) = status_word(a.status);
    let name = a.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
    let _ = writeln!(
        out,
        "{} {}{name}  tier {}  {}  {}, {} skipped",
        p.c("1", "Account"),
        p.c("1", &a.account_id),
        a.tier,
        p.c(colour, word),
        plural(a.changes.len(), "change"),
        a.skips.len()
    );
    if let Some(e) = &a.error {
        let _ = writeln!(out, "  {} {e}", p.c("31", "error:"));
    }
    for (i, c) in a.changes.iter().enumerate() {
        let (mark, colour) = action_mark(c.action);
        let outcome = a
            .applied
            .as_ref()
            .and_then(|ap| ap.get(i))
            .map(|r| match r.outcome {
                ChangeOutcome::Done => p.c("32", "  [done]"),
                ChangeOutcome::Failed => p.c("31", &format!("  [failed: {}]", r.error.as_deref().unwrap_or(""))),
                ChangeOutcome::NotAttempted => p.c("33", "  [not attempted]"),
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {} {:?} {} {} {} {}{outcome}",
            p.c(colour, mark),
            c.action,
            c.feature,
            c.region,
            c.resource_type,
            c.resource
        );
        for line in c.diff.lines() {
            let coloured = match line.chars().next() {
                Some('+') if !line.starts_with("+++") => p.c("32", line),
                Some('-') if !line.starts_with("---") => p.c("31", line),
                Some('@') => p.c("36", line),
                _ => line.to_string(),
            };
            let _ = writeln!(out, "      {coloured}");
        }
    }
    for s in &a.skips {
        let reason =
            serde_json::to_value(s.reason).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let what = if s.resource == "*" { String::new() } else { format!(" {} {}", s.region, s.resource) };
        let _ = writeln!(out, "  {} {}{what}: {} — {}", p.c("2", "skip"), s.feature, p.c("35", &reason), s.detail);
    }
    if let Some(rem) = &a.remaining {
        if !rem.is_empty() {
            let _ = writeln!(out, "  {} a fresh plan still finds:", p.c("31", "remaining"));
            for c in rem {
                let _ =
                    writeln!(out, "    {:?} {} {} {} {}", c.action, c.feature, c.region, c.resource_type, c.resource);
            }
        }
    }
    let _ = writeln!(out, "  API calls: {}", a.api_calls.total);
    out.push('\n');
}

pub(crate) fn write(r: &Head<'_>, accounts: &dyn Accounts, w: &mut dyn io::Write, colour: bool) -> io::Result<()> {
    let p = Paint(colour);
    let mut by_status: std::collections::BTreeMap<AccountStatus, usize> = Default::default();
    accounts.each(&mut |a| {
        *by_status.entry(a.status).or_default() += 1;
        let mut out = String::new();
        account(&mut out, a, &p);
        w.write_all(out.as_bytes())
    })?;
    let mut out = String::new();
    let inv = r.inventory;
    for a in &inv.not_enrolled {
        let _ = writeln!(
            out,
            "{} {} ({}) is in the Organization but has no account file: not enrolled",
            p.c("33", "note:"),
            a.id,
            a.name
        );
    }
    for id in &inv.missing {
        let _ = writeln!(out, "{} account file {id} has no account in the Organization", p.c("33", "note:"));
    }
    for id in &inv.suspended {
        let _ = writeln!(out, "{} account {id} is suspended: skipped", p.c("33", "note:"));
    }
    let count = |s: AccountStatus| by_status.get(&s).copied().unwrap_or(0);
    let _ = writeln!(
        out,
        "{}: {} accounts; {} with changes, {} without, {} converged, {} not converged, {} failed; {} API calls ({} retries, {} throttled)",
        r.command,
        accounts.count(),
        count(AccountStatus::Changes),
        count(AccountStatus::NoChanges),
        count(AccountStatus::Converged),
        count(AccountStatus::NotConverged),
        count(AccountStatus::Failed),
        r.api_calls.total,
        r.api_calls.retries,
        r.api_calls.throttled
    );
    w.write_all(out.as_bytes())
}
