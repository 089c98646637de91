//! [`RunReport`]: a run's report, its accounts spooled to an unnamed temporary file as
//! they finish, so that memory holds a line of figures per account and not the accounts'
//! changes, diffs and skips.

use super::{write, AccountReport, AccountStatus, Accounts, ApiCalls, Format, Head};
use crate::inventory::Inventory;
use crate::plan::{Action, Mode};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

/// What is kept in memory of one account.
#[derive(Debug, Clone)]
pub struct AccountLine {
    pub account_id: String,
    pub name: Option<String>,
    pub tier: String,
    pub status: AccountStatus,
    pub changes: usize,
    pub deletes: usize,
    pub skips: usize,
    /// Where the account's report is in the spool.
    offset: u64,
    len: usize,
}

/// A run's report (see the module docs).
pub struct RunReport {
    pub format_version: u32,
    /// `plan` or `apply`.
    pub command: String,
    pub mode: Mode,
    pub inventory: Inventory,
    pub api_calls: ApiCalls,
    spool: BufWriter<File>,
    written: u64,
    lines: Vec<AccountLine>,
    /// (feature, action) → (changes, accounts), for the announcement's summary.
    by_feature: BTreeMap<(String, String), (usize, usize)>,
}

impl RunReport {
    pub fn new(command: &str, mode: Mode, inventory: Inventory) -> io::Result<Self> {
        Ok(Self {
            format_version: super::FORMAT_VERSION,
            command: command.to_string(),
            mode,
            inventory,
            api_calls: ApiCalls::default(),
            spool: BufWriter::new(tempfile::tempfile()?),
            written: 0,
            lines: vec![],
            by_feature: BTreeMap::new(),
        })
    }

    /// Adds an account's report, which is written out and not kept.
    pub fn push(&mut self, a: &AccountReport) -> io::Result<()> {
        let bytes = serde_json::to_vec(a).map_err(io::Error::other)?;
        self.spool.write_all(&bytes)?;
        let mut features: BTreeMap<(String, String), usize> = BTreeMap::new();
        for c in &a.changes {
            *features.entry((c.feature.to_string(), action_name(c.action))).or_default() += 1;
        }
        for (k, n) in features {
            let e = self.by_feature.entry(k).or_default();
            e.0 += n;
            e.1 += 1;
        }
        self.lines.push(AccountLine {
            account_id: a.account_id.clone(),
            name: a.name.clone(),
            tier: a.tier.clone(),
            status: a.status,
            changes: a.changes.len(),
            deletes: a.changes.iter().filter(|c| c.action == Action::Delete).count(),
            skips: a.skips.len(),
            offset: self.written,
            len: bytes.len(),
        });
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Puts the accounts in account-id order; called once every account is in.
    pub fn finish(&mut self, api_calls: ApiCalls) -> io::Result<()> {
        self.spool.flush()?;
        self.lines.sort_by(|a, b| a.account_id.cmp(&b.account_id));
        self.api_calls = api_calls;
        Ok(())
    }

    /// One line of figures per account, in account-id order.
    pub fn lines(&self) -> &[AccountLine] {
        &self.lines
    }

    pub fn has_changes(&self) -> bool {
        self.lines.iter().any(|a| a.changes > 0)
    }

    pub fn has_failures(&self) -> bool {
        self.lines.iter().any(|a| matches!(a.status, AccountStatus::Failed | AccountStatus::NotConverged))
    }

    /// Writes the report in `format`, reading the accounts back one at a time.
    pub fn write(&self, w: &mut dyn Write, format: Format, colour: bool) -> io::Result<()> {
        self.write_with(w, format, colour, false)
    }

    /// [`write`](Self::write), with the bodies of created resources when `full_diffs`.
    pub fn write_with(&self, w: &mut dyn Write, format: Format, colour: bool, full_diffs: bool) -> io::Result<()> {
        let head = Head {
            format_version: self.format_version,
            command: &self.command,
            mode: self.mode,
            inventory: &self.inventory,
            api_calls: &self.api_calls,
            full_diffs,
        };
        write(&head, self, w, format, colour)
    }

    /// The whole report as a string (for tests and small fleets).
    pub fn render(&self, format: Format, colour: bool) -> io::Result<String> {
        let mut out = Vec::new();
        self.write(&mut out, format, colour)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Writes the report to `path`.
    pub fn write_file(&self, path: &std::path::Path, format: Format, full_diffs: bool) -> io::Result<()> {
        let mut w = BufWriter::new(File::create(path)?);
        self.write_with(&mut w, format, false, full_diffs)?;
        w.flush()
    }

    /// Summary tables for announcements: changes by feature (and action), and by account.
    pub fn summary_markdown(&self) -> String {
        let mut out =
            String::from("## Summary by feature\n\n| feature | action | changes | accounts |\n|---|---|---:|---:|\n");
        for ((f, action), (n, accounts)) in &self.by_feature {
            let title = crate::desired::names::FeatureId::parse(f).map(|id| id.title()).unwrap_or("");
            let _ = writeln!(out, "| {f} {title} | {action} | {n} | {accounts} |");
        }
        if self.by_feature.is_empty() {
            out.push_str("| (none) | | 0 | 0 |\n");
        }
        out.push_str(
            "\n## Summary by account\n\n| account | name | tier | changes | skips | status |\n|---|---|---|---:|---:|---|\n",
        );
        for a in &self.lines {
            let status = crate::report::wire_name(&a.status);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {status} |",
                a.account_id,
                crate::report::md_cell(a.name.as_deref().unwrap_or("")),
                a.tier,
                a.changes,
                a.skips
            );
        }
        out
    }
}

fn action_name(a: Action) -> String {
    crate::report::wire_name(&a)
}

impl Accounts for RunReport {
    fn count(&self) -> usize {
        self.lines.len()
    }

    /// Reads every account's report back, in account-id order.
    fn each(&self, f: &mut dyn FnMut(&AccountReport) -> io::Result<()>) -> io::Result<()> {
        let mut file = self.spool.get_ref();
        let mut buf = Vec::new();
        for line in &self.lines {
            buf.resize(line.len, 0);
            file.seek(SeekFrom::Start(line.offset))?;
            file.read_exact(&mut buf)?;
            let a: AccountReport = serde_json::from_slice(&buf).map_err(io::Error::other)?;
            f(&a)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::FleetReport;

    fn account(id: &str, status: AccountStatus) -> AccountReport {
        AccountReport {
            error: (status == AccountStatus::Failed).then(|| "AccessDenied".to_string()),
            api_calls: ApiCalls { total: 3, ..Default::default() },
            ..crate::report::sample_account(id, status)
        }
    }

    #[test]
    fn a_spooled_report_renders_as_the_same_report_held_in_memory() {
        let accounts =
            vec![account("333333333333", AccountStatus::Failed), account("111111111111", AccountStatus::NoChanges)];
        let mut spooled = RunReport::new("plan", Mode::Maintenance, Inventory::default()).expect("spool");
        for a in &accounts {
            spooled.push(a).expect("push");
        }
        let calls = ApiCalls { total: 7, ..Default::default() };
        spooled.finish(calls.clone()).expect("finish");
        let mut sorted = accounts.clone();
        sorted.sort_by(|a, b| a.account_id.cmp(&b.account_id));
        let digest = super::super::plan_digest(&sorted).expect("digest");
        let held = FleetReport {
            format_version: super::super::FORMAT_VERSION,
            command: "plan".into(),
            mode: Mode::Maintenance,
            accounts: sorted,
            inventory: Inventory::default(),
            api_calls: calls,
            plan_digest: Some(digest),
        };
        for format in [Format::Json, Format::Text, Format::Markdown] {
            let a = spooled.render(format, false).expect("render");
            assert_eq!(a, held.render(format, false), "{format:?}");
        }
        let json = spooled.render(Format::Json, false).expect("render");
        let derived = serde_json::to_string_pretty(&held).expect("serialise");
        assert_eq!(json, format!("{derived}\n"), "streamed JSON is laid out as the report type serialises");
        let back: FleetReport = serde_json::from_str(&json).expect("the JSON reads back as a report");
        assert_eq!(
            back.accounts.iter().map(|a| a.account_id.as_str()).collect::<Vec<_>>(),
            ["111111111111", "333333333333"]
        );
        assert!(spooled.has_failures());
        assert!(!spooled.has_changes());
        assert_eq!(spooled.lines()[1].account_id, "333333333333");
    }
}
