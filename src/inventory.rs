//! The fleet: member accounts listed by Organizations, joined with the account files of
//! desired state, and each account's active regions.

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
    /// Account files whose account is ACTIVE in the Organization.
    #[serde(skip, default)]
    pub enrolled: Vec<AccountFile>,
    /// In the Organization, without an account file.
    pub not_enrolled: Vec<OrgAccount>,
    /// Account files with no account of that id in the Organization.
    pub missing: Vec<AccountId>,
    /// Account files whose account is suspended or closing.
    pub suspended: Vec<AccountId>,
}

/// Lists the Organization's accounts (all pages) and joins them with desired state.
pub async fn inventory(fleet: &Fleet, desired: &DesiredState) -> Result<Inventory, AwsError> {
    let mgmt = fleet.management();
    let who = mgmt.call(mgmt.sts().get_caller_identity().send()).await?;
    let management_account_id = who.account().unwrap_or_default().to_string();
    let org = mgmt.organizations();
    let mut listed: BTreeMap<String, OrgAccount> = BTreeMap::new();
    let mut token = None;
    loop {
        let out = mgmt.call(org.list_accounts().set_next_token(token).send()).await?;
        for a in out.accounts() {
            let id = a.id().unwrap_or_default().to_string();
            let status = a.status().map(|s| s.as_str().to_string()).unwrap_or_else(|| "UNKNOWN".into());
            listed.insert(id.clone(), OrgAccount { id, name: a.name().unwrap_or_default().to_string(), status });
        }
        token = out.next_token;
        if token.is_none() {
            break;
        }
    }
    Ok(join(management_account_id, &listed, desired))
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
