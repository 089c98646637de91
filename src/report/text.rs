//! The terminal report. It leads with the fleet (accounts by status, what needs a person's
//! attention one by one, changes by feature and action, skips by reason), then one block per
//! account: one line per change, with the field-level diff of what is changed (an update,
//! a tag, an adoption, a delete); a created resource's whole body only with `--diff full`.
//! Skips a person must look at are listed one by one, the others counted by reason.

use super::summary::Summary;
use super::{plural, wire_name, AccountReport, AccountStatus, Accounts, Head};
use crate::apply::ChangeOutcome;
use crate::plan::{Action, SkipReason};
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

fn account(out: &mut String, a: &AccountReport, p: &Paint, full_diffs: bool) {
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
        if c.action == Action::Create && !full_diffs {
            continue; // its whole body: with --diff full, and in the JSON report
        }
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
    // Skips a person must look at one by one; those of the baseline working as designed
    // (opted out, Control Tower's, initial only, ...) counted by reason, with their features.
    let mut counted: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = Default::default();
    for s in &a.skips {
        let reason = wire_name(&s.reason);
        let what = if s.resource == "*" { String::new() } else { format!(" {} {}", s.region, s.resource) };
        if matches!(
            s.reason,
            SkipReason::NotOwned
                | SkipReason::Conflict
                | SkipReason::Adoption
                | SkipReason::SelfLockout
                | SkipReason::Quota
        ) {
            let _ = writeln!(out, "  {} {}{what}: {} — {}", p.c("2", "skip"), s.feature, p.c("35", &reason), s.detail);
            if let Some(d) = &s.diff {
                for line in d.lines() {
                    let _ = writeln!(out, "      {line}");
                }
            }
        } else {
            counted.entry(reason).or_default().insert(s.feature.to_string());
        }
    }
    for (reason, features) in &counted {
        let n = a.skips.iter().filter(|s| wire_name(&s.reason) == *reason).count();
        let features: Vec<&str> = features.iter().map(String::as_str).collect();
        let _ = writeln!(out, "  {} {} {n}: {}", p.c("2", "skipped"), p.c("35", reason), features.join(" "));
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

/// The fleet first: what needs attention, then changes and skips in numbers.
fn summary(out: &mut String, r: &Head<'_>, s: &Summary, p: &Paint) {
    let _ =
        writeln!(out, "{} ({:?}): {} — {}", p.c("1", r.command), r.mode, plural(s.accounts, "account"), s.statuses());
    if s.attention.is_empty() {
        let _ = writeln!(out, "Needs attention: nothing (no delete, adoption, conflict or failure)");
    } else {
        let n = s.attention.len() + s.attention_more;
        let _ = writeln!(out, "{} ({n}):", p.c("31;1", "Needs attention"));
        for x in &s.attention {
            let _ = writeln!(out, "  {} {} {}{}", p.c("31", &format!("{:<9}", x.kind)), x.account, x.what, x.where_());
        }
        if s.attention_more > 0 {
            let _ = writeln!(out, "  ... and {} more (the JSON report lists every one)", s.attention_more);
        }
    }
    if !s.changes.is_empty() {
        let _ = writeln!(out, "Changes by feature:");
        let mut by_feature: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for ((f, action), (n, accounts)) in &s.changes {
            by_feature.entry(f).or_default().push(format!("{action} {n} ({})", plural(*accounts, "account")));
        }
        for (f, actions) in by_feature {
            let title = crate::desired::names::FeatureId::parse(f).map(|id| id.title()).unwrap_or("");
            let _ = writeln!(out, "  {f} {title:<40} {}", actions.join(", "));
        }
    }
    if !s.skips.is_empty() {
        let parts: Vec<String> = s.skips.iter().map(|(reason, (n, _))| format!("{reason} {n}")).collect();
        let _ = writeln!(out, "Skips by reason: {}", parts.join(", "));
    }
    out.push('\n');
}

pub(crate) fn write(r: &Head<'_>, accounts: &dyn Accounts, w: &mut dyn io::Write, colour: bool) -> io::Result<()> {
    let p = Paint(colour);
    let s = Summary::of(accounts)?;
    let mut out = String::new();
    summary(&mut out, r, &s, &p);
    w.write_all(out.as_bytes())?;
    accounts.each(&mut |a| {
        let mut out = String::new();
        account(&mut out, a, &p, r.full_diffs);
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
    let count = |st: AccountStatus| s.count(st);
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
            "\x1b[2mskipped\x1b[0m \x1b[35mopted_out\x1b[0m 1: F11",
            "\x1b[31mFAILED\x1b[0m",
            "\x1b[31merror:\x1b[0m AccessDenied: cannot assume",
        ] {
            assert!(coloured.contains(painted), "no {painted:?} in\n{coloured}");
        }
        assert_eq!(strip(&coloured), plain);
    }

    #[test]
    fn a_fleet_report_leads_with_what_needs_attention_and_stays_short() {
        use crate::plan::{Action, Skip};
        // 300 accounts, each with creates of long bodies, an update and skips; one delete.
        let body: String = (0..80).map(|i| format!("+line {i}\n")).collect();
        let template = report().accounts[0].clone();
        let mut accounts = vec![];
        for n in 0..300 {
            let mut a = AccountReport { account_id: format!("{:012}", 100_000_000_000u64 + n), ..template.clone() };
            let update = a.changes[0].clone();
            let mut create = update.clone();
            create.action = Action::Create;
            create.diff = format!("--- observed\n+++ desired\n@@ -0,0 +1,80 @@\n{body}");
            let mut delete = update.clone();
            delete.action = Action::Delete;
            a.changes = if n == 7 { vec![delete, create, update] } else { vec![create.clone(), create, update] };
            let tower = Skip { reason: crate::plan::SkipReason::ControlTower, ..a.skips[0].clone() };
            a.skips.extend(std::iter::repeat_n(tower, 4));
            accounts.push(a);
        }
        let r = FleetReport { accounts, ..report() };
        let text = r.render(Format::Text, false);
        let lines: Vec<&str> = text.lines().collect();
        // The delete comes first, before any account block.
        let attention = lines.iter().position(|l| l.starts_with("Needs attention (1)")).unwrap();
        assert!(lines[attention + 1].contains("DELETE") && lines[attention + 1].contains("100000000007"), "{text}");
        let first_account = lines.iter().position(|l| l.starts_with("Account ")).unwrap();
        assert!(attention < first_account);
        // Per account: its line, three change lines, the update's 5-line diff, two skip lines,
        // the calls: bounded whatever the size of the created bodies.
        assert!(lines.len() < 300 * 13 + 20, "{} lines", lines.len());
        assert!(!text.contains("+line 40"), "a created body was printed without --diff full");
        let mut full = Vec::new();
        r.write_with(&mut full, Format::Text, false, true).unwrap();
        assert!(String::from_utf8_lossy(&full).contains("+line 40"), "--diff full shows created bodies");
        // Markdown: the same order, the delete listed first.
        let md = r.render(Format::Markdown, false);
        let (att, table) = (md.find("## Needs attention (1)").unwrap(), md.find("## Accounts").unwrap());
        assert!(att < table && md[att..table].contains("**DELETE** 100000000007"), "{md}");
        assert!(!md.contains("+line 40"));
    }
}
