//! Turns desired state into the concrete baseline of one account: the features its tier
//! and opt-ins bring (with the features they require), each resource instantiated in the
//! regions it lives in, with `{placeholders}` filled in.

use super::names::{AccountId, FeatureId, OwnerTag, TierName};
use super::{AccountFile, ControlTower, DesiredState, FeatureKind, LockoutGuard};
use crate::resources::{Ensure, ResourceSpec, Scope};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The region label of account-wide (global) resources.
pub const GLOBAL: &str = "global";

/// Identifies one resource instance within an account.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResourceKey {
    pub kind: String,
    /// A region, or `global`.
    pub region: String,
    pub name: String,
}

impl std::fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{} {} ({})", self.kind, self.name, self.region)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DesiredResource {
    pub key: ResourceKey,
    pub spec: ResourceSpec,
    pub ensure: Ensure,
    /// Fields maintenance leaves as it finds them (`initial_only_fields`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub initial_only_fields: Vec<String>,
}

/// One feature as it applies to one account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureBaseline {
    pub id: FeatureId,
    pub kind: FeatureKind,
    /// Part of the account's tier (initial setup applies it).
    pub in_tier: bool,
    /// Opted in (explicitly, or by the tier's default).
    pub opted_in: bool,
    /// What the account file says, if anything.
    pub explicit: Option<bool>,
    pub also_when_required: bool,
    /// Features that must be in place first (for this account's tier).
    pub requires: Vec<FeatureId>,
    /// For a requirement that anyone's working instance of a kind meets, region by region
    /// (`met_by_any`): the required feature and that kind.
    #[serde(default)]
    pub met_by_any: BTreeMap<FeatureId, String>,
    /// Value of `cm:Members` on what this feature creates.
    pub tag: OwnerTag,
    /// Take over what the customer has in the feature's place (`adopt: overwrite`).
    #[serde(default)]
    pub adopt: bool,
    /// Offboarding: the feature's resources stay, for this reason (see
    /// [`crate::plan::Mode::Offboarding`]).
    #[serde(default)]
    pub kept: Option<String>,
    pub resources: Vec<DesiredResource>,
}

/// Everything the planner needs to know about one account's desired state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountBaseline {
    pub account_id: AccountId,
    pub name: Option<String>,
    pub tier: TierName,
    pub home_region: String,
    /// Active regions, excluded regions removed, sorted.
    pub regions: Vec<String>,
    pub management_account_id: String,
    /// The identity cm-baseline runs as in the management account (`GetCallerIdentity`'s
    /// ARN): the principal the member role's trust policy must keep trusting.
    pub caller_arn: String,
    pub member_role_name: String,
    pub external_id: Option<String>,
    pub control_tower: ControlTower,
    pub lockout_guard: LockoutGuard,
    /// Dependencies first.
    pub features: Vec<FeatureBaseline>,
}

/// The AWS partition a region belongs to (`aws`, `aws-cn`, `aws-us-gov`).
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Replaces each `{name}` of `vars` in the strings of `v`, in one pass: a value put in is
/// never read for placeholders again (an account named `{home_region}` stays so named).
fn substitute(v: &mut serde_json::Value, vars: &BTreeMap<String, String>) {
    match v {
        serde_json::Value::String(s) if s.contains('{') => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(open) = rest.find('{') {
                out.push_str(&rest[..open]);
                let after = &rest[open + 1..];
                match after.find('}').and_then(|close| vars.get(&after[..close]).map(|val| (close, val))) {
                    Some((close, val)) => {
                        out.push_str(val);
                        rest = &after[close + 1..];
                    }
                    None => {
                        out.push('{');
                        rest = after;
                    }
                }
            }
            out.push_str(rest);
            *s = out;
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, vars)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|x| substitute(x, vars)),
        _ => {}
    }
}

/// Orders `ids` so that every feature comes after the features it requires.
fn dependency_order(ids: &BTreeSet<FeatureId>, requires: &BTreeMap<FeatureId, Vec<FeatureId>>) -> Vec<FeatureId> {
    fn visit(
        f: &FeatureId,
        req: &BTreeMap<FeatureId, Vec<FeatureId>>,
        seen: &mut BTreeSet<FeatureId>,
        out: &mut Vec<FeatureId>,
    ) {
        if !seen.insert(f.clone()) {
            return;
        }
        for r in req.get(f).into_iter().flatten() {
            visit(r, req, seen, out);
        }
        out.push(f.clone());
    }
    let mut seen = BTreeSet::new();
    let mut out = vec![];
    for f in ids {
        visit(f, requires, &mut seen, &mut out);
    }
    out.retain(|f| ids.contains(f));
    out
}

/// The baseline of `account`, whose active regions are `active_regions`.
pub fn resolve(
    desired: &DesiredState,
    account: &AccountFile,
    active_regions: &[String],
    management_account_id: &str,
    caller_arn: &str,
) -> Result<AccountBaseline, String> {
    let s = &desired.settings;
    let home = s.home_region.as_str().to_string();
    let excluded: BTreeSet<&str> = s.excluded_regions.iter().map(|r| r.as_str()).collect();
    let partition = partition_of(&home);
    let mut regions: Vec<String> = active_regions
        .iter()
        .filter(|r| !excluded.contains(r.as_str()) && partition_of(r) == partition)
        .cloned()
        .collect();
    if !regions.contains(&home) {
        regions.push(home.clone());
    }
    regions.sort();
    regions.dedup();

    let tier = desired
        .tiers
        .get(&account.tier)
        .ok_or_else(|| format!("account {} names unknown tier {}", account.account_id, account.tier))?;
    let applies_to_tier = |tiers: &Option<Vec<TierName>>| tiers.as_ref().is_none_or(|t| t.contains(&account.tier));

    // The features of the tier, those the account names, and what they require.
    let mut ids: BTreeSet<FeatureId> = tier.features.iter().cloned().collect();
    ids.extend(account.opt_in.keys().cloned());
    let mut requires: BTreeMap<FeatureId, Vec<FeatureId>> = BTreeMap::new();
    let mut queue: Vec<FeatureId> = ids.iter().cloned().collect();
    while let Some(f) = queue.pop() {
        let Some(def) = desired.features.get(&f) else {
            continue;
        };
        let req: Vec<FeatureId> =
            def.requires.iter().filter(|r| applies_to_tier(&r.tiers)).map(|r| r.feature.clone()).collect();
        for r in &req {
            if ids.insert(r.clone()) {
                queue.push(r.clone());
            }
        }
        requires.insert(f, req);
    }

    let mut vars: BTreeMap<String, String> = s.variables.clone();
    vars.insert("account_id".into(), account.account_id.to_string());
    // An account file without `name:` gets its id as its name.
    vars.insert("account_name".into(), account.name.clone().unwrap_or_else(|| account.account_id.to_string()));
    vars.insert("home_region".into(), home.clone());
    vars.insert("partition".into(), partition.into());
    vars.insert("management_account_id".into(), management_account_id.into());

    let mut features = vec![];
    for id in dependency_order(&ids, &requires) {
        let Some(def) = desired.features.get(&id) else {
            continue;
        };
        let mut resources = vec![];
        for entry in def.resources.iter().filter(|e| applies_to_tier(&e.tiers)) {
            let scope = entry.regions.clone().unwrap_or_else(|| entry.spec.default_scope());
            let places: Vec<(String, String)> = match scope {
                Scope::Global => vec![(GLOBAL.into(), home.clone())],
                Scope::Home => vec![(home.clone(), home.clone())],
                Scope::All => regions.iter().map(|r| (r.clone(), r.clone())).collect(),
                Scope::Others => regions.iter().filter(|r| **r != home).map(|r| (r.clone(), r.clone())).collect(),
                Scope::Only(list) => regions
                    .iter()
                    .filter(|r| list.iter().any(|x| x.as_str() == r.as_str()))
                    .map(|r| (r.clone(), r.clone()))
                    .collect(),
                Scope::Except(list) => regions
                    .iter()
                    .filter(|r| !list.iter().any(|x| x.as_str() == r.as_str()))
                    .map(|r| (r.clone(), r.clone()))
                    .collect(),
            };
            for (label, region) in places {
                let mut v = serde_json::to_value(&entry.spec).map_err(|e| e.to_string())?;
                let mut vars = vars.clone();
                vars.insert("region".into(), region);
                substitute(&mut v, &vars);
                let spec: ResourceSpec = serde_json::from_value(v).map_err(|e| format!("{id}: {e}"))?;
                let key = ResourceKey { kind: spec.kind().to_string(), region: label, name: spec.name() };
                resources.push(DesiredResource {
                    key,
                    spec,
                    ensure: entry.ensure,
                    initial_only_fields: entry.initial_only_fields.clone(),
                });
            }
        }
        features.push(FeatureBaseline {
            id: id.clone(),
            kind: def.kind,
            in_tier: tier.features.contains(&id),
            opted_in: desired.opted_in(account, &id),
            explicit: account.opt_in.get(&id).copied(),
            also_when_required: def.also_when_required,
            requires: requires.get(&id).cloned().unwrap_or_default(),
            met_by_any: def
                .requires
                .iter()
                .filter(|r| applies_to_tier(&r.tiers))
                .filter_map(|r| r.met_by_any.clone().map(|k| (r.feature.clone(), k)))
                .collect(),
            tag: def.tag.for_tier(&account.tier),
            adopt: account.adopt.get(&id).copied().unwrap_or(def.adopt) == super::Adopt::Overwrite,
            kept: def.kept.clone(),
            resources,
        });
    }

    Ok(AccountBaseline {
        account_id: account.account_id.clone(),
        name: account.name.clone(),
        tier: account.tier.clone(),
        home_region: home,
        regions,
        management_account_id: management_account_id.to_string(),
        caller_arn: caller_arn.to_string(),
        member_role_name: s.member_role_name.clone(),
        external_id: s.external_id.clone(),
        control_tower: s.control_tower.clone(),
        lockout_guard: s.lockout_guard.clone(),
        features,
    })
}

#[cfg(test)]
mod tests {
    use super::substitute;
    use std::collections::BTreeMap;

    #[test]
    fn placeholders_are_replaced_once_and_values_are_not_read_again() {
        let vars: BTreeMap<String, String> =
            [("account_name", "{home_region} \"co\""), ("home_region", "ap-northeast-1")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let mut v = serde_json::json!({"a": ["{account_name} in {home_region}", "{unknown} {", "}{home_region}{"]});
        substitute(&mut v, &vars);
        assert_eq!(
            v,
            serde_json::json!({"a": ["{home_region} \"co\" in ap-northeast-1", "{unknown} {", "}ap-northeast-1{"]})
        );
    }
}
