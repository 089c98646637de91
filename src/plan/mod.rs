//! The planner: `(AccountBaseline, Observed) -> AccountPlan`. Pure and deterministic.
//!
//! Every safety rule is decided here, once, for every resource type alike:
//! - **R1 ownership**: nothing that is not provably ours is updated, retagged, deleted or
//!   built on; it is reported as `not_owned`. What can carry `cm:Members` is ours when it
//!   carries it; what cannot is ours only through an anchor ([`Ownership`]): a Security Hub
//!   child follows its hub, a Config recorder its role and bucket, and an account setting
//!   or an IAM group the journal's record that we wrote it. An account setting the customer
//!   chose before us is an **adoption** (`adoption`), taken over only where desired state
//!   says `adopt: overwrite`.
//! - **One of a kind**: where AWS allows one (a recorder per region, an account analyzer per
//!   type and region) and the customer's holds the place, the resource is a `conflict`.
//! - **Opt-in**: maintenance applies managed features and opted-in features only; a feature
//!   opted out is `opted_out` and nothing of it is changed, let alone deleted.
//! - **Initial-only** features are applied by initial setup alone (`initial_only`), except
//!   a feature marked `also_when_required` that an active feature needs and that is gone.
//! - **R2 Control Tower** accounts skip the configured features (`control_tower`).
//! - **R3 dependencies** come first; a feature whose dependency is neither active nor in
//!   place, or is in place only as something of the customer's, is `blocked_dependency`
//!   in that region, never half-applied and never built on the customer's resources.
//! - **R6 quotas**: a create that would exceed a quota is `quota`, not attempted.
//! - **No self-lockout**: a change to the member role that would stop the next run from
//!   assuming it or from repairing it is `self_lockout`.

mod diff;
mod guard;
#[cfg(test)]
mod tests;

use crate::desired::names::{AccountId, FeatureId, OwnerTag, TierName};
use crate::desired::resolve::{AccountBaseline, DesiredResource, FeatureBaseline, ResourceKey, GLOBAL};
use crate::desired::FeatureKind;
use crate::resources::{Ensure, Observation, Ownership, ResourceSpec};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub use diff::{differing_fields, render_diff};
pub use guard::needed_actions as guard_actions;

/// Initial setup applies the whole tier; maintenance only what is maintained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Initial,
    Maintenance,
    /// The account leaves (`cm-baseline offboard`): every resource of the features marked
    /// `on_leaving: remove` is wanted absent (deleted only where provably ours, in reverse
    /// dependency order); the kept features are skipped `kept`.
    Offboarding,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Delete,
    /// Only the `cm:Members` tag value changes.
    Tag,
    /// Something of the customer's is taken over, as desired state says (`adopt:
    /// overwrite`): brought to the baseline and, where it can carry one, tagged.
    Adopt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    NotOwned,
    ControlTower,
    OptedOut,
    InitialOnly,
    BlockedDependency,
    Quota,
    SelfLockout,
    /// An AWS default resource the baseline would remove is in use (F10).
    InUse,
    /// AWS allows one of a kind and the customer's holds the place.
    Conflict,
    /// An account setting the customer chose before us: reported with the diff; taken over
    /// only with `adopt: overwrite`.
    Adoption,
    /// The region, or the service in it, cannot be reached from this account (a service
    /// control policy denies the region, or the service is not offered there): nothing is
    /// read or changed there, and what builds on it in that region waits.
    RegionUnavailable,
    /// Offboarding: left in the account when it leaves (desired state's `on_leaving`).
    Kept,
    /// Maintenance found a value the customer may choose (an `initial_only_fields` field,
    /// such as the EBS default key) set otherwise than initial setup sets it: kept, and
    /// reported with the diff. The rest of the resource is maintained as usual.
    CustomerChoice,
}

/// One change the apply will make.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub feature: FeatureId,
    pub region: String,
    pub resource_type: String,
    pub resource: String,
    pub action: Action,
    /// Unified diff of the resource rendered as YAML, observed to desired.
    pub diff: String,
    /// Value of `cm:Members` written by create and tag.
    pub tag: OwnerTag,
    /// What apply writes.
    pub desired: ResourceSpec,
    /// What the plan saw; a saved plan is refused when AWS no longer matches it.
    pub observed: Option<ResourceSpec>,
}

/// Something of the baseline deliberately left alone, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skip {
    pub feature: FeatureId,
    /// A region, `global`, or `*` for the whole feature.
    pub region: String,
    /// A resource, or `*` for the whole feature.
    pub resource: String,
    pub reason: SkipReason,
    pub detail: String,
    /// For an adoption or a customer's choice: their value against the baseline, as a
    /// unified diff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// The plan of one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountPlan {
    pub account_id: AccountId,
    pub tier: TierName,
    pub mode: Mode,
    pub control_tower: bool,
    pub changes: Vec<Change>,
    pub skips: Vec<Skip>,
    /// Resources the plan could not decide on (not observed); the account is not applied.
    pub errors: Vec<String>,
}

/// What observe found in one account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// The Control Tower marker role exists (R2).
    pub control_tower: bool,
    pub resources: BTreeMap<ResourceKey, Observation<ResourceSpec>>,
    /// What the journal records that this tool made, wrote or took over in the account:
    /// the proof of ownership of what cannot carry a tag, and of a create cut short
    /// before its tag was written.
    pub records: BTreeSet<ResourceKey>,
    /// Resources that could not be read because their region, or their service there, is
    /// not reachable from the account, with AWS's answer.
    pub unavailable: BTreeMap<ResourceKey, String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Status {
    Active,
    Skipped(SkipReason, String),
}

/// A feature's status from its kind, opt-in, mode and Control Tower alone.
fn base_status(f: &FeatureBaseline, mode: Mode, control_tower: bool, baseline: &AccountBaseline) -> Status {
    if control_tower && baseline.control_tower.skip_features.contains(&f.id) {
        return Status::Skipped(
            SkipReason::ControlTower,
            format!("Control Tower account (role {} exists)", baseline.control_tower.detect_role),
        );
    }
    let not_opted = || Status::Skipped(SkipReason::OptedOut, "not opted in: not maintained, nothing is deleted".into());
    if mode == Mode::Offboarding {
        // Something to remove (`ensure: absent`): active; else kept as a whole.
        if f.resources.iter().any(|r| r.ensure == Ensure::Absent) {
            return Status::Active;
        }
        let why = f.kept.clone().unwrap_or_else(|| "not removed on leaving".into());
        return Status::Skipped(SkipReason::Kept, why);
    }
    match (f.kind, mode) {
        (FeatureKind::Managed, _) => Status::Active,
        (FeatureKind::OptIn, Mode::Maintenance) if f.opted_in => Status::Active,
        (FeatureKind::OptIn, Mode::Maintenance) => not_opted(),
        (FeatureKind::OptIn, Mode::Initial) if f.explicit == Some(false) => not_opted(),
        (FeatureKind::OptIn, Mode::Initial) if f.in_tier || f.opted_in => Status::Active,
        (FeatureKind::OptIn, Mode::Initial) => not_opted(),
        (FeatureKind::InitialOnly, Mode::Initial) if f.in_tier => Status::Active,
        (FeatureKind::InitialOnly, Mode::Initial) => {
            Status::Skipped(SkipReason::OptedOut, format!("not part of tier {}", baseline.tier))
        }
        (FeatureKind::InitialOnly, Mode::Maintenance) => {
            Status::Skipped(SkipReason::InitialOnly, "applied by initial setup only".into())
        }
        (_, Mode::Offboarding) => Status::Active,
    }
}

/// The features whose resources observe must read: those that may be active, and
/// everything they require (to tell whether a dependency is in place).
pub fn features_to_observe(baseline: &AccountBaseline, mode: Mode, control_tower: bool) -> BTreeSet<FeatureId> {
    let by_id: BTreeMap<&FeatureId, &FeatureBaseline> = baseline.features.iter().map(|f| (&f.id, f)).collect();
    let mut out = BTreeSet::new();
    let mut queue: Vec<&FeatureId> = baseline
        .features
        .iter()
        .filter(|f| base_status(f, mode, control_tower, baseline) == Status::Active)
        .map(|f| &f.id)
        .collect();
    while let Some(id) = queue.pop() {
        if out.insert(id.clone()) {
            if let Some(f) = by_id.get(id) {
                queue.extend(f.requires.iter());
            }
        }
    }
    out
}

fn is_present(o: Option<&Observation<ResourceSpec>>) -> bool {
    matches!(o, Some(Observation::Present { .. } | Observation::AwsDefault { .. }))
}

/// Whether each feature's resources are (or, once the plan is applied, will be) in place
/// and ours, by region label (`global` for account-wide ones); `Err` says why not.
#[derive(Debug, Default)]
struct Placement {
    by_region: BTreeMap<String, Result<(), String>>,
    /// Every desired resource of the feature, wherever it is.
    overall: bool,
}

impl Placement {
    fn add(&mut self, r: &DesiredResource, result: Result<(), String>) {
        let k = &r.key;
        let slot = self.by_region.entry(k.region.clone()).or_insert(Ok(()));
        if slot.is_ok() {
            *slot = result.map_err(|why| format!("{} {} ({}): {why}", k.kind, k.name, k.region));
        }
    }

    fn close(mut self, has_resources: bool, empty_is_placed: bool) -> Self {
        self.overall = if has_resources { self.by_region.values().all(Result::is_ok) } else { empty_is_placed };
        self
    }

    /// Whether a resource in `region` may build on this feature: its account-wide
    /// resources, and those of the same region (or, for a feature of one region such as
    /// the logs key, those of the home region).
    fn serves(&self, region: &str, home: &str) -> Result<(), String> {
        if region == GLOBAL {
            return self.first_err(|_| true);
        }
        if let Some(Err(e)) = self.by_region.get(GLOBAL) {
            return Err(e.clone());
        }
        match self.by_region.get(region).or_else(|| self.by_region.get(home)) {
            Some(r) => r.clone(),
            None if self.by_region.is_empty() && !self.overall => Err("neither applied nor in place".into()),
            None => self.first_err(|r| r != GLOBAL),
        }
    }

    fn first_err(&self, which: impl Fn(&str) -> bool) -> Result<(), String> {
        if self.by_region.is_empty() && !self.overall {
            return Err("neither applied nor in place".into());
        }
        self.by_region.iter().filter(|(r, _)| which(r)).find_map(|(_, v)| v.clone().err()).map_or(Ok(()), Err)
    }
}

/// Whose an observed instance is, by its type's [`Ownership`] rule.
#[derive(Debug, Clone, PartialEq)]
enum Whose {
    Ours,
    /// The customer's; says why, as a person would read it.
    Customers(String),
}

fn observed_by_name<'a>(observed: &'a Observed, kind: &str, name: &str) -> Option<&'a Observation<ResourceSpec>> {
    observed.resources.iter().find(|(k, _)| k.kind == kind && k.name == name).map(|(_, v)| v)
}

/// Why a child may not be touched through the parent it belongs to (of `kind`, in the
/// child's region): that parent is not ours, or cannot be shown to be. A missing parent
/// allows only a create (the parent is made first, by the same plan).
fn parent_not_ours(kind: &str, region: &str, observed: &Observed, creating: bool) -> Option<String> {
    let parent = observed.resources.iter().find(|(k, _)| k.kind == kind && k.region == region);
    match parent.map(|(_, v)| v) {
        None => {
            Some(format!("belongs to the {kind} of {region}, which is not part of this plan, so not provably ours"))
        }
        Some(Observation::Present { owner: Some(_), .. }) => None,
        Some(Observation::Absent { .. }) if creating => None,
        Some(Observation::Absent { .. }) => Some(format!("its {kind} in {region} is not there")),
        Some(Observation::Present { owner: None, .. }) => Some(format!(
            "belongs to the customer's {kind} in {region} (it carries no {} tag): nothing of it is touched",
            crate::desired::names::OWNER_TAG_KEY
        )),
        Some(Observation::AwsDefault { .. } | Observation::Occupied { .. }) => {
            Some(format!("belongs to a {kind} in {region} that is not cm-baseline's"))
        }
    }
}

fn whose(r: &DesiredResource, state: &ResourceSpec, owner: &Option<String>, observed: &Observed) -> Whose {
    let recorded = observed.records.contains(&r.key);
    let tag = crate::desired::names::OWNER_TAG_KEY;
    match r.spec.ownership() {
        _ if owner.is_some() => Whose::Ours,
        _ if recorded => Whose::Ours,
        Ownership::Tag | Ownership::Parent(_) if r.spec.taggable() => Whose::Customers(format!("without the {tag} tag")),
        Ownership::Tag | Ownership::Parent(_) => Whose::Ours,
        Ownership::Anchored => {
            let foreign: Vec<String> = state
                .anchors()
                .into_iter()
                .filter(|(kind, name)| {
                    !matches!(observed_by_name(observed, kind, name), Some(Observation::Present { owner: Some(_), .. }))
                })
                .map(|(kind, name)| if name.is_empty() { format!("no {kind}") } else { format!("{kind} {name}") })
                .collect();
            if foreign.is_empty() {
                Whose::Ours
            } else {
                Whose::Customers(format!(
                    "it uses {}, not cm-baseline's own, and the journal has no record that cm-baseline made it",
                    foreign.join(" and ")
                ))
            }
        }
        Ownership::Recorded => Whose::Customers(format!(
            "it cannot carry the {tag} tag and the journal has no record that cm-baseline made it"
        )),
        Ownership::Setting if state.is_aws_default() => Whose::Ours,
        Ownership::Setting => Whose::Customers(
            "the customer set it before cm-baseline ever wrote it (it is not AWS's default, and the journal has no record of ours)"
                .into(),
        ),
        Ownership::AwsDefault => Whose::Customers("an AWS default resource is never changed".into()),
    }
}

/// Plans one account.
/// R3 when a plan is carried out: for each change, the earlier changes it builds on. A
/// change one of whose dependencies failed (or was itself not attempted) is not attempted;
/// every other change is, so one failure costs only what needs it.
///
/// A change builds on the earlier changes of its own feature and of the features that
/// feature requires (transitively) that serve its region: those in the same region, in the
/// global scope, and in the home region (where a feature keeps what serves every region,
/// such as the trail's bucket); a global change builds on all of them. Changes of features
/// that neither is nor requires another's are independent.
pub fn dependencies(baseline: &AccountBaseline, changes: &[Change]) -> Vec<Vec<usize>> {
    let direct: BTreeMap<&FeatureId, &Vec<FeatureId>> =
        baseline.features.iter().map(|f| (&f.id, &f.requires)).collect();
    fn closure<'a>(
        direct: &BTreeMap<&'a FeatureId, &'a Vec<FeatureId>>,
        start: &'a FeatureId,
    ) -> BTreeSet<&'a FeatureId> {
        let mut seen: BTreeSet<&FeatureId> = BTreeSet::new();
        let mut todo = vec![start];
        while let Some(f) = todo.pop() {
            if seen.insert(f) {
                todo.extend(direct.get(f).into_iter().flat_map(|r| r.iter()));
            }
        }
        seen
    }
    let home = baseline.home_region.as_str();
    changes
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let builds_on = closure(&direct, &c.feature);
            changes[..j]
                .iter()
                .enumerate()
                .filter(|(_, i)| builds_on.contains(&i.feature))
                .filter(|(_, i)| {
                    i.region == c.region
                        || i.region == GLOBAL
                        || i.region == home
                        || c.region == GLOBAL
                        // A move: the create waits for the delete of the one elsewhere.
                        || (i.action == Action::Delete && i.resource_type == c.resource_type && i.resource == c.resource)
                })
                .map(|(k, _)| k)
                .collect()
        })
        .collect()
}

pub fn plan(baseline: &AccountBaseline, observed: &Observed, mode: Mode) -> AccountPlan {
    if mode == Mode::Offboarding {
        // Leaving: what desired state removes (`ensure: absent`) is deleted, whatever it
        // required (nothing is built any more), under the rules that keep any delete to
        // what is provably ours; everything else stays, said as kept, with why.
        let mut leaving = baseline.clone();
        let mut kept = vec![];
        for f in &mut leaving.features {
            f.requires.clear();
            let why = f.kept.clone().unwrap_or_else(|| "not removed on leaving".into());
            let (gone, stay): (Vec<_>, Vec<_>) = f.resources.drain(..).partition(|r| r.ensure == Ensure::Absent);
            if !gone.is_empty() {
                for r in &stay {
                    kept.push(resource_skip(f, r, SkipReason::Kept, why.clone()));
                }
                f.resources = gone;
            } else {
                // Kept as a whole: said once, for the feature.
                f.resources = stay;
            }
        }
        let mut p = plan_for(&leaving, observed, mode);
        p.skips.extend(kept);
        // What depends on something goes before it.
        p.changes.reverse();
        return p;
    }
    plan_for(baseline, observed, mode)
}

fn plan_for(baseline: &AccountBaseline, observed: &Observed, mode: Mode) -> AccountPlan {
    let ct = observed.control_tower;
    let mut status: BTreeMap<FeatureId, Status> =
        baseline.features.iter().map(|f| (f.id.clone(), base_status(f, mode, ct, baseline))).collect();

    // A feature marked also_when_required comes back when an active feature needs it
    // and some of its resources are gone, or found only by a trace other than their name
    // (the KMS key of the secure trail and Config buckets, its alias deleted: found by its
    // tag, it gets its alias back).
    let needed: BTreeSet<FeatureId> = baseline
        .features
        .iter()
        .filter(|f| status.get(&f.id) == Some(&Status::Active))
        .flat_map(|f| f.requires.iter().cloned())
        .collect();
    for f in &baseline.features {
        let pullable = f.also_when_required
            && needed.contains(&f.id)
            && matches!(status.get(&f.id), Some(Status::Skipped(SkipReason::InitialOnly, _)));
        let gone = f.resources.iter().any(|r| {
            r.ensure == Ensure::Present
                && match observed.resources.get(&r.key) {
                    Some(Observation::Present { state, .. }) => state.name() != r.key.name,
                    other => !is_present(other),
                }
        });
        if pullable && gone {
            status.insert(f.id.clone(), Status::Active);
        }
    }

    let mut plan = AccountPlan {
        account_id: baseline.account_id.clone(),
        tier: baseline.tier.clone(),
        mode,
        control_tower: ct,
        changes: vec![],
        skips: vec![],
        errors: vec![],
    };
    let home = baseline.home_region.as_str();
    let mut placed: BTreeMap<FeatureId, Placement> = BTreeMap::new();

    for f in &baseline.features {
        let wanted: Vec<&DesiredResource> = f.resources.iter().filter(|r| r.ensure == Ensure::Present).collect();
        // As things are now: in place where present and ours.
        let now = || {
            let mut p = Placement::default();
            for r in &wanted {
                p.add(r, in_place_now(r, observed));
            }
            p.close(!f.resources.is_empty(), false)
        };
        if let Some(Status::Skipped(reason, detail)) = status.get(&f.id).cloned() {
            plan.skips.push(feature_skip(f, reason, detail));
            placed.insert(f.id.clone(), now());
            continue;
        }
        // R3, region by region: what this resource would build on.
        let blocked = |region: &str| -> Vec<String> {
            f.requires
                .iter()
                .filter_map(|d| match placed.get(d).map(|p| p.serves(region, home)) {
                    Some(Ok(())) => None,
                    _ if met_by_any(baseline, f, d, region, observed) => None,
                    Some(Err(why)) => Some(format!("requires {d} ({}): {why}{}", d.title(), nor_any(f, d, region))),
                    None => Some(format!(
                        "requires {d} ({}), which is neither applied nor in place{}",
                        d.title(),
                        nor_any(f, d, region)
                    )),
                })
                .collect()
        };
        let blocks: Vec<Vec<String>> = f.resources.iter().map(|r| blocked(&r.key.region)).collect();
        // A feature without resources of its own (for this tier) is blocked as a whole.
        let whole = if f.resources.is_empty() { vec![blocked(GLOBAL)] } else { vec![] };
        if (!f.resources.is_empty() && blocks.iter().all(|b| !b.is_empty())) || whole.iter().any(|b| !b.is_empty()) {
            let mut all: Vec<String> = blocks.into_iter().chain(whole).flatten().collect();
            all.sort();
            all.dedup();
            // Blocked in every region: the first few reasons, and how many more.
            let shown = 3;
            let mut detail = all.iter().take(shown).cloned().collect::<Vec<_>>().join("; ");
            if all.len() > shown {
                detail.push_str(&format!("; and {} more like these", all.len() - shown));
            }
            plan.skips.push(feature_skip(f, SkipReason::BlockedDependency, detail));
            placed.insert(f.id.clone(), now());
            continue;
        }
        // A create over quota withholds every create of the feature: a trail that cannot be
        // made leaves no orphan bucket behind.
        let over_quota = f.resources.iter().find_map(|r| match observed.resources.get(&r.key) {
            Some(Observation::Absent { quota: Some(q) }) if r.ensure == Ensure::Present && q.used >= q.limit => {
                Some(format!("{} {}", r.key.kind, r.key.name))
            }
            _ => None,
        });
        let mut place = Placement::default();
        for (r, block) in f.resources.iter().zip(blocks) {
            // Maintenance leaves the customer's choice of an initial-only field alone.
            let kept;
            let r = if mode == Mode::Maintenance && !r.initial_only_fields.is_empty() {
                kept = keep_customer_choice(f, r, observed, &mut plan, block.is_empty());
                &kept
            } else {
                r
            };
            let result = if let Some(why) = observed.unavailable.get(&r.key) {
                plan.skips.push(resource_skip(f, r, SkipReason::RegionUnavailable, why.clone()));
                Err(format!("{} is unavailable in {}: {why}", r.key.kind, r.key.region))
            } else if block.is_empty() {
                plan_resource(baseline, f, r, observed, over_quota.as_deref(), &mut plan)
            } else {
                let why = block.join("; ");
                plan.skips.push(resource_skip(f, r, SkipReason::BlockedDependency, why.clone()));
                Err(why)
            };
            if r.ensure == Ensure::Present {
                place.add(r, result);
            }
        }
        placed.insert(f.id.clone(), place.close(!f.resources.is_empty(), true));
    }
    plan
}

/// Whether a requirement of `f` on `d` that anyone's working instance of a kind meets
/// (`met_by_any`) is met in `region`: the instance of that kind `d` would have there is
/// observed working, ours or not (Control Tower's recorder, the customer's). It is only
/// relied on, never changed.
fn met_by_any(
    baseline: &AccountBaseline,
    f: &FeatureBaseline,
    d: &FeatureId,
    region: &str,
    observed: &Observed,
) -> bool {
    let Some(kind) = f.met_by_any.get(d) else {
        return false;
    };
    let Some(required) = baseline.features.iter().find(|x| &x.id == d) else {
        return false;
    };
    required.resources.iter().filter(|r| &r.key.kind == kind && r.key.region == region).any(|r| {
        match observed.resources.get(&r.key) {
            Some(Observation::Present { state, .. }) => state.working(),
            Some(Observation::Occupied { state: Some(state), .. }) => state.working(),
            _ => false,
        }
    })
}

/// The end of a `blocked_dependency` reason when anyone's working instance would have met it.
fn nor_any(f: &FeatureBaseline, d: &FeatureId, region: &str) -> String {
    match f.met_by_any.get(d) {
        Some(kind) => format!("; nor is any {kind} working in {region}, which would do whoever's it is"),
        None => String::new(),
    }
}

/// For maintenance: `r` without its `initial_only_fields` (no opinion on them), and, where
/// the resource is ours and one of them is found set otherwise, a `customer_choice` note
/// with the diff (when `report` says the resource is being planned at all).
fn keep_customer_choice(
    f: &FeatureBaseline,
    r: &DesiredResource,
    observed: &Observed,
    plan: &mut AccountPlan,
    report: bool,
) -> DesiredResource {
    let kind = r.spec.kind();
    let mut relaxed = serde_json::to_value(&r.spec).unwrap_or(serde_json::Value::Null);
    let mut initial = serde_json::Value::Object(Default::default());
    if let (Some(fields), Some(only)) = (relaxed.get_mut(kind).and_then(|v| v.as_object_mut()), initial.as_object_mut())
    {
        for name in &r.initial_only_fields {
            if let Some(v) = fields.insert(name.clone(), serde_json::Value::Null) {
                only.insert(name.clone(), v);
            }
        }
    }
    let Ok(spec) = serde_json::from_value::<ResourceSpec>(relaxed) else {
        return r.clone();
    };
    if let (true, Some(Observation::Present { state, owner })) = (report, observed.resources.get(&r.key)) {
        let seen = state.fields();
        let chosen: Vec<String> = r
            .initial_only_fields
            .iter()
            .filter(|name| {
                let got = seen.get(name.as_str()).unwrap_or(&serde_json::Value::Null);
                !got.is_null() && Some(got) != initial.get(name.as_str())
            })
            .map(|name| {
                let shown = |v: Option<&serde_json::Value>| match v {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => "null".into(),
                };
                format!(
                    "{name} is `{}` (initial setup sets `{}`)",
                    shown(seen.get(name.as_str())),
                    shown(initial.get(name.as_str()))
                )
            })
            .collect();
        if !chosen.is_empty() && whose(r, state, owner, observed) == Whose::Ours {
            // The diff shows where they differ: the rest of the resource is as desired or
            // is planned as an update of its own.
            let diff = Some(render_diff(Some(state), Some(&r.spec)));
            plan.skips.push(Skip {
                diff,
                ..resource_skip(
                    f,
                    r,
                    SkipReason::CustomerChoice,
                    format!(
                        "kept as the customer chose it: {}; maintenance does not change it, as the specification lets \
                         customers choose it (initial setup does)",
                        chosen.join("; ")
                    ),
                )
            });
        }
    }
    DesiredResource { spec, initial_only_fields: vec![], ..r.clone() }
}

/// Whether a desired resource is in place now, and ours.
fn in_place_now(r: &DesiredResource, observed: &Observed) -> Result<(), String> {
    if let Ownership::Parent(kind) = r.spec.ownership() {
        if let Some(why) = parent_not_ours(kind, &r.key.region, observed, false) {
            return Err(why);
        }
    }
    match observed.resources.get(&r.key) {
        Some(Observation::Present { state, owner }) => match whose(r, state, owner, observed) {
            Whose::Ours => Ok(()),
            Whose::Customers(why) => Err(format!("is the customer's ({why})")),
        },
        Some(Observation::AwsDefault { .. }) => Err("is AWS's default, not cm-baseline's".into()),
        Some(Observation::Occupied { by, .. }) => Err(format!("its place is held by the customer's {by}")),
        Some(Observation::Absent { .. }) | None => Err("is neither applied nor in place".into()),
    }
}

fn feature_skip(f: &FeatureBaseline, reason: SkipReason, detail: String) -> Skip {
    Skip { feature: f.id.clone(), region: "*".into(), resource: "*".into(), reason, detail, diff: None }
}

fn resource_skip(f: &FeatureBaseline, r: &DesiredResource, reason: SkipReason, detail: String) -> Skip {
    let resource = format!("{} {}", r.key.kind, r.key.name);
    Skip { feature: f.id.clone(), region: r.key.region.clone(), resource, reason, detail, diff: None }
}

/// Plans one resource of an active feature. Returns whether the resource will be in
/// place, and ours, once the plan is applied (and if not, why).
fn plan_resource(
    baseline: &AccountBaseline,
    f: &FeatureBaseline,
    r: &DesiredResource,
    observed: &Observed,
    over_quota: Option<&str>,
    plan: &mut AccountPlan,
) -> Result<(), String> {
    let skip = |reason, detail: String| Skip {
        feature: f.id.clone(),
        region: r.key.region.clone(),
        resource: format!("{} {}", r.key.kind, r.key.name),
        reason,
        detail,
        diff: None,
    };
    let change = |action, diff: String, observed: Option<ResourceSpec>| Change {
        feature: f.id.clone(),
        region: r.key.region.clone(),
        resource_type: r.key.kind.clone(),
        resource: r.key.name.clone(),
        action,
        diff,
        tag: f.tag,
        desired: r.spec.clone(),
        observed,
    };
    if r.ensure == Ensure::Absent && r.spec.ownership() == Ownership::Setting {
        // An account setting has a value, never an absence: it is left as it is.
        plan.skips.push(skip(SkipReason::Kept, "an account setting: left at its value".into()));
        return Ok(());
    }
    let Some(obs) = observed.resources.get(&r.key) else {
        plan.errors.push(format!("{}: {} was not observed", f.id, r.key));
        return Err("not observed".into());
    };
    // A child of the customer's parent is left alone, even where it is missing: nothing
    // is added to, or changed in, what the customer runs.
    // One of a kind found in another region than its own: moved (a create here) if ours.
    let elsewhere = match obs {
        Observation::Present { state, owner } if r.ensure == Ensure::Present => {
            state.found_in().filter(|there| *there != r.key.region).map(|there| (there.to_string(), state, owner))
        }
        _ => None,
    };
    if let Ownership::Parent(kind) = r.spec.ownership() {
        let creating =
            (matches!(obs, Observation::Absent { .. }) && r.ensure == Ensure::Present) || elsewhere.is_some();
        if let Some(why) = parent_not_ours(kind, &r.key.region, observed, creating) {
            if r.ensure == Ensure::Present || matches!(obs, Observation::Present { .. }) {
                plan.skips.push(skip(SkipReason::NotOwned, why.clone()));
            }
            return Err(why);
        }
    }
    if let Some((there, state, owner)) = elsewhere {
        // Whose it is is decided where it is: by its own parent there, or by itself.
        let foreign = match r.spec.ownership() {
            Ownership::Parent(kind) => parent_not_ours(kind, &there, observed, false),
            _ => match whose(r, state, owner, observed) {
                Whose::Ours => None,
                Whose::Customers(why) => Some(why),
            },
        };
        if let Some(why) = foreign {
            let why = format!(
                "AWS allows one of these per account and it is in {there}, not in {}: {why}; it is left untouched, \
                 and none is created here",
                r.key.region
            );
            plan.skips.push(skip(SkipReason::Conflict, why.clone()));
            return Err(why);
        }
        let gone = render_diff(Some(state), None);
        plan.changes.push(Change {
            region: there.clone(),
            ..change(Action::Delete, format!("# moved to {}\n{gone}", r.key.region), Some(state.clone()))
        });
        let made = render_diff(None, Some(&r.spec));
        plan.changes.push(change(Action::Create, format!("# moved from {there}\n{made}"), None));
        return Ok(());
    }
    let taggable = r.spec.taggable();
    let guard = guard::lockout(baseline, &r.spec);
    let tag_line = |was: &str| {
        let key = crate::desired::names::OWNER_TAG_KEY;
        format!("--- observed\n+++ desired\n@@ tags @@\n-{key}: {was}\n+{key}: {}\n", f.tag.as_str())
    };

    match (r.ensure, obs) {
        (Ensure::Absent, Observation::Absent { .. } | Observation::Occupied { .. }) => Ok(()),
        (Ensure::Present, Observation::Occupied { by, .. }) => {
            let why = format!(
                "AWS allows one of these here and the customer's {by} holds the place: it is left untouched, \
                 and nothing is created beside it"
            );
            plan.skips.push(skip(SkipReason::Conflict, why.clone()));
            Err(why)
        }
        (Ensure::Absent, Observation::AwsDefault { state, in_use }) => {
            if in_use.is_empty() {
                plan.changes.push(change(Action::Delete, render_diff(Some(state), None), Some(state.clone())));
            } else {
                plan.skips.push(skip(
                    SkipReason::InUse,
                    format!("AWS default resource in use, not deleted (never forced): {}", in_use.join(", ")),
                ));
            }
            Ok(())
        }
        (Ensure::Present, Observation::AwsDefault { state, .. }) => {
            let why = not_owned_detail("exists as an AWS default", &r.spec, state);
            plan.skips.push(skip(SkipReason::NotOwned, why.clone()));
            Err(why)
        }
        (Ensure::Absent, Observation::Present { state, owner }) => {
            match whose(r, state, owner, observed) {
                Whose::Customers(why) => {
                    plan.skips.push(skip(SkipReason::NotOwned, format!("would be deleted, but {why}: left untouched")))
                }
                Whose::Ours if guard::is_member_role(baseline, &r.spec) => plan
                    .skips
                    .push(skip(SkipReason::SelfLockout, "deleting the member role would lock this tool out".into())),
                Whose::Ours => {
                    let diff = render_diff(Some(state), None);
                    plan.changes.push(change(Action::Delete, diff, Some(state.clone())));
                }
            }
            Ok(())
        }
        (Ensure::Present, Observation::Absent { quota }) => {
            if let Some(q) = quota.as_ref().filter(|q| q.used >= q.limit) {
                let why =
                    format!("{}: {} of {} in use; not created (free one or raise the quota)", q.name, q.used, q.limit);
                plan.skips.push(skip(SkipReason::Quota, why.clone()));
                return Err(why);
            }
            if let Some(blocker) = over_quota {
                let why = format!("not created: {blocker} of the same feature is over quota");
                plan.skips.push(skip(SkipReason::Quota, why.clone()));
                return Err(why);
            }
            if let Err(why) = guard {
                plan.skips.push(skip(SkipReason::SelfLockout, why.clone()));
                return Err(why);
            }
            plan.changes.push(change(Action::Create, render_diff(None, Some(&r.spec)), None));
            Ok(())
        }
        (Ensure::Present, Observation::Present { state, owner }) => {
            let differs = !differing_fields(&r.spec, state).is_empty();
            match whose(r, state, owner, observed) {
                Whose::Ours => {
                    if differs {
                        if let Err(why) = guard {
                            plan.skips.push(skip(SkipReason::SelfLockout, why.clone()));
                            return Err(why);
                        }
                        plan.changes.push(change(
                            Action::Update,
                            render_diff(Some(state), Some(&r.spec)),
                            Some(state.clone()),
                        ));
                    }
                    if taggable && owner.as_deref() != Some(f.tag.as_str()) {
                        let was = owner.clone().unwrap_or_default();
                        plan.changes.push(change(Action::Tag, tag_line(&was), Some(state.clone())));
                    }
                    Ok(())
                }
                Whose::Customers(why) if f.adopt && adoptable(&r.spec) => {
                    if let Err(why) = guard {
                        plan.skips.push(skip(SkipReason::SelfLockout, why.clone()));
                        return Err(why);
                    }
                    let mut diff = render_diff(Some(state), Some(&r.spec));
                    if taggable {
                        diff.push_str(&tag_line(""));
                    }
                    if !differs && !taggable {
                        // Nothing to write; the record alone takes it over.
                        diff = format!("# takes over the customer's {} as it is ({why})\n", r.key.kind);
                    }
                    plan.changes.push(change(Action::Adopt, diff, Some(state.clone())));
                    Ok(())
                }
                Whose::Customers(_) if !differs && r.spec.ownership() == Ownership::Setting => {
                    // The customer's setting already says what the baseline says.
                    Ok(())
                }
                Whose::Customers(why) => {
                    let (reason, detail, diff) = match r.spec.ownership() {
                        Ownership::Setting => (
                            SkipReason::Adoption,
                            format!(
                                "{why}; it differs from the baseline in: {}. To take it over, set `adopt: {{{}: overwrite}}` \
                                 in the account's file",
                                differing_fields(&r.spec, state).join(", "),
                                f.id
                            ),
                            Some(render_diff(Some(state), Some(&r.spec))),
                        ),
                        Ownership::Anchored => (
                            SkipReason::Conflict,
                            format!(
                                "AWS allows one of these here and this one is the customer's: {why}; left untouched"
                            ),
                            None,
                        ),
                        _ => (SkipReason::NotOwned, not_owned_detail("exists", &r.spec, state), None),
                    };
                    plan.skips.push(Skip { diff, ..skip(reason, detail.clone()) });
                    Err(detail)
                }
            }
        }
    }
}

/// What `adopt: overwrite` may take over: what the customer set or made under the
/// baseline's own name, but not a child (its parent is adopted instead) nor AWS's own.
fn adoptable(spec: &ResourceSpec) -> bool {
    !matches!(spec.ownership(), Ownership::Parent(_) | Ownership::AwsDefault)
}

fn not_owned_detail(what: &str, desired: &ResourceSpec, observed: &ResourceSpec) -> String {
    let fields = differing_fields(desired, observed);
    let drift = if fields.is_empty() {
        "its settings match the baseline".to_string()
    } else {
        format!("differs from the baseline in: {}", fields.join(", "))
    };
    format!(
        "{what} without the {} tag: it is the customer's and is left untouched; {drift}",
        crate::desired::names::OWNER_TAG_KEY
    )
}

impl AccountPlan {
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }
}
