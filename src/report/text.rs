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
        Action::Adopt => ("@", "35"),
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
                ChangeOutcome::NotAttempted => match &r.blocked_by {
                    Some(b) => p.c("33", &format!("  [not attempted: blocked by {b}]")),
                    None => p.c("33", "  [not attempted]"),
                },
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
        let reason = crate::report::wire_name(&s.reason);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::names::{FeatureId, OwnerTag};
    use crate::plan::{Change, Mode, Skip, SkipReason};
    use crate::report::{ApiCalls, FleetReport, Format};
    use crate::resources::iam_password_policy::IamPasswordPolicy;
    use crate::resources::ResourceSpec;

    fn account(id: &str, status: AccountStatus) -> AccountReport {
        AccountReport { name: Some("example".into()), ..crate::report::sample_account(id, status) }
    }

    fn report() -> FleetReport {
        let spec = ResourceSpec::IamPasswordPolicy(IamPasswordPolicy::default());
        let mut changed = account("111111111111", AccountStatus::Changes);
        changed.changes.push(Change {
            feature: FeatureId::parse("F03").unwrap(),
            region: "global".into(),
            resource_type: "iam_password_policy".into(),
            resource: "account".into(),
            action: Action::Update,
            diff: "--- observed\n+++ desired\n@@ -1 +1 @@\n-minimum_password_length: 6\n+minimum_password_length: 8\n"
                .into(),
            tag: OwnerTag::Initialized,
            desired: spec.clone(),
            observed: Some(spec),
        });
        changed.skips.push(Skip {
            feature: FeatureId::parse("F11").unwrap(),
            region: "*".into(),
            resource: "*".into(),
            reason: SkipReason::OptedOut,
            detail: "not opted in".into(),
            diff: None,
        });
        let mut failed = account("222222222222", AccountStatus::Failed);
        failed.error = Some("AccessDenied: cannot assume arn:aws:iam::222222222222:role/cm-policymaintainer".into());
        FleetReport {
            format_version: crate::report::FORMAT_VERSION,
            command: "plan".into(),
            mode: Mode::Maintenance,
            accounts: vec![changed, failed],
            inventory: Default::default(),
            api_calls: ApiCalls::default(),
            plan_digest: None,
        }
    }

    /// `text` without its ANSI colour sequences.
    fn strip(text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("\x1b[") {
            out.push_str(&rest[..i]);
            rest = &rest[i..];
            rest = rest.find('m').map(|m| &rest[m + 1..]).unwrap_or("");
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn colour_marks_additions_removals_status_and_errors_and_adds_nothing_else() {
        let r = report();
        let plain = r.render(Format::Text, false);
        let coloured = r.render(Format::Text, true);
        assert!(!plain.contains('\x1b'), "{plain}");
        for painted in [
            "\x1b[1mAccount\x1b[0m \x1b[1m111111111111\x1b[0m",
            "\x1b[33mchanges pending\x1b[0m",
            "\x1b[33m~\x1b[0m Update F03 global iam_password_policy account",
            "      \x1b[31m-minimum_password_length: 6\x1b[0m\n",
            "      \x1b[32m+minimum_password_length: 8\x1b[0m\n",
            "      \x1b[36m@@ -1 +1 @@\x1b[0m\n",
            "      --- observed\n      +++ desired\n",
            "\x1b[2mskip\x1b[0m F11: \x1b[35mopted_out\x1b[0m — not opted in",
            "\x1b[31mFAILED\x1b[0m",
            "\x1b[31merror:\x1b[0m AccessDenied: cannot assume",
        ] {
            assert!(coloured.contains(painted), "no {painted:?} in\n{coloured}");
        }
        assert_eq!(strip(&coloured), plain);
    }
}
