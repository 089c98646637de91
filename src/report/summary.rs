//! What a person reads first: the fleet in a few lines. Accounts by status, changes by
//! feature and action, skips by reason, and what needs a person's attention (deletes,
//! adoptions, conflicts with the customer's resources, failures) listed one by one, ahead
//! of everything else. The text and Markdown reports both start with it; it takes one pass
//! over the accounts, which a spooled report reads back without holding them.

use super::{wire_name, AccountReport, AccountStatus, Accounts};
use crate::apply::ChangeOutcome;
use crate::plan::{Action, SkipReason};
use std::collections::BTreeMap;
use std::io;

/// How many items needing attention are listed one by one; the rest are counted.
pub const ATTENTION_LISTED: usize = 50;

/// Something a person should look at before anything else: the same thing in several
/// regions of one account is one item, with its regions.
#[derive(Debug, Clone, PartialEq)]
pub struct Attention {
    /// `DELETE`, `ADOPT`, `FAILED`, `CONFLICT`, ...
    pub kind: &'static str,
    pub account: String,
    pub what: String,
    /// The regions (or `global`) it concerns; empty for the account as a whole.
    pub regions: Vec<String>,
}

impl Attention {
    /// `in us-east-1`, or `in 20 regions: af-south-1, ap-northeast-1, ... (+17)`.
    pub fn where_(&self) -> String {
        match self.regions.len() {
            0 => String::new(),
            1 => format!(" in {}", self.regions[0]),
            n => {
                let shown: Vec<&str> = self.regions.iter().take(3).map(String::as_str).collect();
                let more = if n > 3 { format!(", ... (+{})", n - 3) } else { String::new() };
                format!(" in {n} regions: {}{more}", shown.join(", "))
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct Summary {
    pub accounts: usize,
    pub by_status: BTreeMap<AccountStatus, usize>,
    /// (feature, action) → (changes, accounts).
    pub changes: BTreeMap<(String, String), (usize, usize)>,
    /// reason → (skips, accounts).
    pub skips: BTreeMap<String, (usize, usize)>,
    pub attention: Vec<Attention>,
    /// Items needing attention beyond [`ATTENTION_LISTED`].
    pub attention_more: usize,
    /// (kind, account, what) → index in `attention`.
    index: BTreeMap<(&'static str, String, String), usize>,
}

/// Skips that are a conflict with something of the customer's, or a refusal a person must
/// resolve, rather than the baseline working as designed.
fn needs_attention(reason: &SkipReason) -> Option<&'static str> {
    match reason {
        SkipReason::NotOwned => Some("NOT OWNED"),
        SkipReason::Conflict => Some("CONFLICT"),
        SkipReason::Adoption => Some("ADOPTION"),
        SkipReason::SelfLockout => Some("LOCKOUT"),
        SkipReason::Quota => Some("QUOTA"),
        _ => None,
    }
}

impl Summary {
    pub fn of(accounts: &dyn Accounts) -> io::Result<Summary> {
        let mut s = Summary::default();
        accounts.each(&mut |a| {
            s.add(a);
            Ok(())
        })?;
        Ok(s)
    }

    fn flag(&mut self, kind: &'static str, account: &str, what: String, region: Option<&str>) {
        let key = (kind, account.to_string(), what);
        if let Some(&i) = self.index.get(&key) {
            self.attention[i].regions.extend(region.map(str::to_string));
        } else if self.attention.len() < ATTENTION_LISTED {
            self.index.insert(key.clone(), self.attention.len());
            let regions = region.map(str::to_string).into_iter().collect();
            self.attention.push(Attention { kind, account: key.1, what: key.2, regions });
        } else {
            self.attention_more += 1;
        }
    }

    fn add(&mut self, a: &AccountReport) {
        self.accounts += 1;
        *self.by_status.entry(a.status).or_default() += 1;
        if let Some(e) = &a.error {
            self.flag("FAILED", &a.account_id, e.clone(), None);
        }
        let mut seen_change = std::collections::BTreeSet::new();
        for (i, c) in a.changes.iter().enumerate() {
            let key = (c.feature.to_string(), wire_name(&c.action));
            let e = self.changes.entry(key.clone()).or_default();
            e.0 += 1;
            if seen_change.insert(key) {
                e.1 += 1;
            }
            let line = format!("{} {} {}", c.feature, c.resource_type, c.resource);
            let region = Some(c.region.as_str());
            match c.action {
                Action::Delete => self.flag("DELETE", &a.account_id, line.clone(), region),
                Action::Adopt => self.flag("ADOPT", &a.account_id, line.clone(), region),
                _ => {}
            }
            if let Some(r) = a.applied.as_ref().and_then(|ap| ap.get(i)) {
                if r.outcome == ChangeOutcome::Failed {
                    let why = r.error.as_deref().unwrap_or("");
                    self.flag("FAILED", &a.account_id, format!("{:?} {line}: {why}", c.action), region);
                }
            }
        }
        let mut seen_skip = std::collections::BTreeSet::new();
        for sk in &a.skips {
            let reason = wire_name(&sk.reason);
            let e = self.skips.entry(reason.clone()).or_default();
            e.0 += 1;
            if seen_skip.insert(reason) {
                e.1 += 1;
            }
            if let Some(kind) = needs_attention(&sk.reason) {
                let region = (sk.region != "*").then_some(sk.region.as_str());
                self.flag(kind, &a.account_id, format!("{} {}: {}", sk.feature, sk.resource, sk.detail), region);
            }
        }
    }

    pub fn count(&self, s: AccountStatus) -> usize {
        self.by_status.get(&s).copied().unwrap_or(0)
    }

    /// `2 with changes, 1 without` (non-zero statuses only).
    pub fn statuses(&self) -> String {
        let word = |s: &AccountStatus| match s {
            AccountStatus::NoChanges => "without changes",
            AccountStatus::Changes => "with changes",
            AccountStatus::Converged => "converged",
            AccountStatus::NotConverged => "not converged",
            AccountStatus::Failed => "failed",
        };
        let parts: Vec<String> = self.by_status.iter().map(|(s, n)| format!("{n} {}", word(s))).collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::AppliedChange;
    use crate::desired::names::{FeatureId, OwnerTag};
    use crate::plan::{Change, Skip};
    use crate::resources::iam_password_policy::IamPasswordPolicy;
    use crate::resources::ResourceSpec;

    fn change(action: Action, feature: &str) -> Change {
        Change {
            feature: FeatureId::parse(feature).unwrap(),
            region: "global".into(),
            resource_type: "iam_password_policy".into(),
            resource: "account".into(),
            action,
            diff: String::new(),
            tag: OwnerTag::Initialized,
            desired: ResourceSpec::IamPasswordPolicy(IamPasswordPolicy::default()),
            observed: None,
        }
    }

    #[test]
    fn deletes_adoptions_conflicts_and_failures_are_flagged_and_counted() {
        let mut a = crate::report::sample_account("111111111111", AccountStatus::Changes);
        a.changes = vec![change(Action::Create, "F03"), change(Action::Delete, "F10"), change(Action::Create, "F03")];
        a.skips = vec![Skip {
            feature: FeatureId::parse("F07").unwrap(),
            region: "us-east-1".into(),
            resource: "trail".into(),
            reason: SkipReason::NotOwned,
            detail: "the customer's".into(),
            diff: None,
        }];
        let mut b = crate::report::sample_account("222222222222", AccountStatus::NotConverged);
        b.changes = vec![change(Action::Update, "F03")];
        let mut failed = AppliedChange::not_attempted(&b.changes[0]);
        failed.outcome = ChangeOutcome::Failed;
        failed.error = Some("AccessDenied".into());
        b.applied = Some(vec![failed]);
        let s = Summary::of(&vec![a, b]).unwrap();
        assert_eq!(s.accounts, 2);
        assert_eq!(s.changes[&("F03".to_string(), "create".to_string())], (2, 1));
        assert_eq!(s.changes[&("F03".to_string(), "update".to_string())], (1, 1));
        assert_eq!(s.skips["not_owned"], (1, 1));
        let kinds: Vec<&str> = s.attention.iter().map(|x| x.kind).collect();
        assert_eq!(kinds, ["DELETE", "NOT OWNED", "FAILED"]);
        assert!(s.attention[2].what.contains("AccessDenied"), "{:?}", s.attention);
        assert_eq!(s.attention[0].where_(), " in global");
        assert_eq!(s.statuses(), "1 with changes, 1 not converged");
    }
}
