//! The fleet: member accounts listed by Organizations, joined with the account files of
//! desired state, and each account's active regions.

use crate::aws::counter::{CallCount, TotalKey};
use crate::aws::{AccountSession, AwsError, Fleet};
use crate::desired::names::AccountId;
use crate::desired::{AccountFile, DesiredState};
use aws_sdk_ec2::types::Filter;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OrgAccount {
    pub id: String,
    pub name: String,
    pub status: String,
}

/// Accounts to work on, and the mismatches between Organizations and desired state.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Inventory {
    pub management_account_id: String,
    /// The identity cm-baseline runs as (`GetCallerIdentity`'s ARN).
    #[serde(default)]
    pub caller_arn: String,
    /// Account files whose account is ACTIVE in the Organization.
    #[serde(skip, default)]
    pub enrolled: Vec<AccountFile>,
    /// In the Organization, without an account file.
    pub not_enrolled: Vec<OrgAccount>,
    /// Account files with no account of that id in the Organization.
    pub missing: Vec<AccountId>,
    /// Account files whose account is suspended or closing.
    pub suspended: Vec<AccountId>,
    /// Accounts offboarded (`cm-baseline offboard`): no longer maintained, even with their
    /// account file still there.
    #[serde(default)]
    pub offboarded: Vec<AccountId>,
    /// The management account's calls that made this inventory (GetCallerIdentity,
    /// ListAccounts), counted into the report of the run that uses it.
    #[serde(skip, default)]
    pub calls: BTreeMap<TotalKey, CallCount>,
}

/// What a run says when the Organization cannot be listed (or its caller not asked).
pub fn cannot_list(e: &AwsError) -> String {
    format!("cannot list the Organization's accounts: {}", e.explain().unwrap_or_else(|| e.to_string()))
}

/// Who cm-baseline runs as: the first thing an inventory asks (`GetCallerIdentity`).
#[derive(Debug, Clone)]
pub struct Caller {
    pub management_account_id: String,
    pub caller_arn: String,
    /// The fleet's call counts before this call: the inventory's calls are counted from here.
    before: BTreeMap<TotalKey, CallCount>,
}

impl Caller {
    /// The fleet's call counts before the caller was asked.
    pub fn counted_from(&self) -> &BTreeMap<TotalKey, CallCount> {
        &self.before
    }

    /// An inventory of no accounts yet, naming the caller.
    pub fn inventory(&self) -> Inventory {
        Inventory {
            management_account_id: self.management_account_id.clone(),
            caller_arn: self.caller_arn.clone(),
            ..Default::default()
        }
    }
}

pub async fn caller(fleet: &Fleet) -> Result<Caller, AwsError> {
    let before = fleet.stats.totals();
    let mgmt = fleet.management();
    let who = mgmt.call(mgmt.sts().get_caller_identity().send()).await?;
    let (Some(management_account_id), Some(caller_arn)) = (who.account(), who.arn()) else {
        return Err(AwsError::new("response", "sts:GetCallerIdentity answered without an account or an ARN"));
    };
    Ok(Caller { management_account_id: management_account_id.to_string(), caller_arn: caller_arn.to_string(), before })
}

/// Lists the Organization's accounts (all pages) and joins them with desired state.
pub async fn inventory(fleet: &Fleet, desired: &DesiredState) -> Result<Inventory, AwsError> {
    let who = caller(fleet).await?;
    list(fleet, desired, &who, |_| {}).await
}

/// The listing and join of [`inventory`], for `caller`. Each account listed ACTIVE that has
/// an account file (what the inventory holds as enrolled) is passed to `listed_early` as
/// soon as its page arrives, once, so that a pass can start on it while the rest is listed:
/// Organizations lists 20 accounts a page, each page after the previous one (50 pages,
/// 2.5 s at 50 ms a call, for 1,000 accounts).
pub async fn list(
    fleet: &Fleet,
    desired: &DesiredState,
    caller: &Caller,
    mut listed_early: impl FnMut(&AccountFile),
) -> Result<Inventory, AwsError> {
    let mgmt = fleet.management();
    let org = mgmt.organizations();
    let mut listed: BTreeMap<String, OrgAccount> = BTreeMap::new();
    let mut token = None;
    loop {
        let out = mgmt.call(org.list_accounts().set_next_token(token).send()).await?;
        for a in out.accounts() {
            let id = a.id().unwrap_or_default().to_string();
            let status = a.status().map(|s| s.as_str().to_string()).unwrap_or_else(|| "UNKNOWN".into());
            let file = AccountId::parse(&id).ok().and_then(|k| desired.accounts.get(&k));
            if let (Some(file), "ACTIVE", false) = (file, status.as_str(), listed.contains_key(&id)) {
                listed_early(file);
            }
            listed.insert(id.clone(), OrgAccount { id, name: a.name().unwrap_or_default().to_string(), status });
        }
        token = out.next_token;
        if token.is_none() {
            break;
        }
    }
    let mut inv = join(caller.management_account_id.clone(), &listed, desired);
    inv.caller_arn = caller.caller_arn.clone();
    inv.calls = crate::aws::counter::since(&caller.before, &fleet.stats.totals());
    Ok(inv)
}

/// Whether the management account can read the Organization: the cheapest read its
/// policy allows (one account of ListAccounts). For the daemon's readiness.
pub async fn reachable(fleet: &Fleet) -> Result<(), AwsError> {
    let mgmt = fleet.management();
    let org = mgmt.organizations();
    mgmt.call(org.list_accounts().max_results(1).send()).await?;
    Ok(())
}

/// The join itself, without AWS.
pub fn join(management_account_id: String, listed: &BTreeMap<String, OrgAccount>, desired: &DesiredState) -> Inventory {
    let mut inv = Inventory { management_account_id, ..Default::default() };
    for (id, file) in &desired.accounts {
        match listed.get(id.as_str()) {
            None => inv.missing.push(id.clone()),
            Some(a) if a.status == "ACTIVE" => inv.enrolled.push(file.clone()),
            Some(_) => inv.suspended.push(id.clone()),
        }
    }
    inv.not_enrolled = listed
        .values()
        .filter(|a| a.id != inv.management_account_id && a.status == "ACTIVE")
        .filter(|a| AccountId::parse(&a.id).map(|id| !desired.accounts.contains_key(&id)).unwrap_or(true))
        .cloned()
        .collect();
    inv
}

/// The regions enabled for the account (opted in, or needing no opt-in).
pub async fn active_regions(session: &AccountSession) -> Result<Vec<String>, AwsError> {
    let ec2 = session.ec2(session.home_region());
    let out = session
        .call(
            ec2.describe_regions()
                .all_regions(true)
                .filters(
                    Filter::builder().name("opt-in-status").values("opt-in-not-required").values("opted-in").build(),
                )
                .send(),
        )
        .await?;
    let mut regions: Vec<String> = out
        .regions()
        .iter()
        // The filter is applied here too: not every endpoint honours it.
        .filter(|r| matches!(r.opt_in_status(), Some("opt-in-not-required") | Some("opted-in") | None))
        .filter_map(|r| r.region_name().map(str::to_string))
        .collect();
    regions.sort();
    Ok(regions)
}

/// A stable share of the fleet for one of `count` processes: `--shard INDEX/COUNT`
/// (0-based). Every account falls in exactly one shard, decided by a hash of its id alone,
/// so n processes with shards 0/n .. n-1/n cover the fleet once, on any machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    pub fn parse(s: &str) -> Result<Self, String> {
        let (i, n) = s.split_once('/').ok_or_else(|| format!("`{s}`: expected INDEX/COUNT, such as 0/4"))?;
        let index: u32 = i.trim().parse().map_err(|_| format!("`{s}`: INDEX is not a number"))?;
        let count: u32 = n.trim().parse().map_err(|_| format!("`{s}`: COUNT is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!("`{s}`: INDEX must be from 0 to COUNT-1"));
        }
        Ok(Self { index, count })
    }

    /// The shard from the environment of an orchestrator: `CM_SHARD` (`INDEX/COUNT`), or a
    /// Kubernetes Indexed Job's `JOB_COMPLETION_INDEX` with `CM_SHARD_COUNT`.
    pub fn from_env() -> Result<Option<Self>, String> {
        if let Ok(s) = std::env::var("CM_SHARD") {
            return Self::parse(&s).map(Some);
        }
        match (std::env::var("JOB_COMPLETION_INDEX"), std::env::var("CM_SHARD_COUNT")) {
            (Ok(i), Ok(n)) => Self::parse(&format!("{i}/{n}")).map(Some),
            (Ok(_), Err(_)) => Err("JOB_COMPLETION_INDEX is set but CM_SHARD_COUNT is not".into()),
            _ => Ok(None),
        }
    }

    /// Whether this is one share of several (`--shard` with COUNT above 1).
    pub fn is_part(&self) -> bool {
        self.count > 1
    }

    /// Whether an account could be in both shards: the whole fleet meets every shard, and
    /// shards of different counts split the fleet differently; only distinct shards of one
    /// count are disjoint.
    pub fn overlaps(&self, other: &Shard) -> bool {
        !self.is_part() || !other.is_part() || self.count != other.count || self.index == other.index
    }

    pub fn contains(&self, account_id: &str) -> bool {
        // FNV-1a: tiny, and the same on every platform and release.
        let h =
            account_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        h % u64::from(self.count) == u64::from(self.index)
    }
}

#[cfg(test)]
mod shard_tests {
    use super::Shard;

    #[test]
    fn shards_cover_the_fleet_exactly_once_and_evenly() {
        let ids: Vec<String> = (0..10_000u64).map(|i| format!("{:012}", 100_000_000_000 + i * 7919)).collect();
        let shards: Vec<Shard> = (0..4).map(|i| Shard { index: i, count: 4 }).collect();
        let mut sizes = [0usize; 4];
        for id in &ids {
            let owners: Vec<usize> = (0..4).filter(|i| shards[*i].contains(id)).collect();
            assert_eq!(owners.len(), 1, "{id} is in {owners:?}");
            sizes[owners[0]] += 1;
        }
        assert!(sizes.iter().all(|s| (2_300..2_700).contains(s)), "{sizes:?}");
        assert!(ids.iter().all(|id| Shard::ALL.contains(id)));
    }

    #[test]
    fn shard_syntax_is_checked() {
        assert_eq!(Shard::parse("2/5"), Ok(Shard { index: 2, count: 5 }));
        assert!(Shard::parse("5/5").is_err());
        assert!(Shard::parse("1").is_err());
        assert!(Shard::parse("a/2").is_err());
        assert!(Shard::parse("0/0").is_err());
    }

    #[test]
    fn only_distinct_shards_of_one_count_are_disjoint() {
        let s = |t: &str| Shard::parse(t).unwrap();
        assert!(!s("0/2").overlaps(&s("1/2")));
        assert!(s("0/2").overlaps(&s("0/2")));
        assert!(s("0/2").overlaps(&s("0/3")), "another count splits the fleet another way");
        assert!(Shard::ALL.overlaps(&s("1/4")) && s("1/4").overlaps(&Shard::ALL));
        assert!(Shard::ALL.overlaps(&Shard::ALL));
    }
}
