//! The planner: `(AccountBaseline, Observed) -> AccountPlan`. Pure and deterministic.
//!
//! Every safety rule is decided here, once, for every resource type alike:
//! - **R1 tag fence**: nothing without `cm:Members` is updated, retagged or deleted; it is
//!   reported as `not_owned`. Untaggable account settings are touched only while their
//!   feature is active.
//! - **Opt-in**: maintenance applies managed features and opted-in features only; a feature
//!   opted out is `opted_out` and nothing of it is changed, let alone deleted.
//! - **Initial-only** features are applied by initial setup alone (`initial_only`), except
//!   a feature marked `also_when_required` that an active feature needs and that is gone.
//! - **R2 Control Tower** accounts skip the configured features (`control_tower`).
//! - **R3 dependencies** come first; a feature whose dependency is neither active nor in
//!   place is `blocked_dependency`, never half-applied.
//! - **R6 quotas**: a create that would exceed a quota is `quota`, not attempted.
//! - **No self-lockout**: a change to the member role that would stop the next run from
//!   assuming it or from repairing it is `self_lockout`.

mod diff;
mod guard;
#[cfg(test)]
mod tests;

use crate::desired::names::{AccountId, FeatureId, OwnerTag, TierName};
use crate::desired::resolve::{AccountBaseline, DesiredResource, FeatureBaseline, ResourceKey};
use crate::desired::FeatureKind;
use crate::resources::{Ensure, Observation, ResourceSpec};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub use diff::{differing_fields, render_diff};

/// Initial setup applies the whole tier; maintenance only what is maintained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Initial,
    Maintenance,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Delete,
    /// Only the `cm:Members` tag value changes.
    Tag,
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

/// Plans one account.
pub fn plan(baseline: &AccountBaseline, observed: &Observed, mode: Mode) -> AccountPlan {
    let ct = observed.control_tower;
    let mut status: BTreeMap<FeatureId, Status> =
        baseline.features.iter().map(|f| (f.id.clone(), base_status(f, mode, ct, baseline))).collect();

    // A feature marked also_when_required comes back when an active feature needs it
    // and some of its resources are gone (the KMS key of secure trail and Config buckets).
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
        let gone =
            f.resources.iter().any(|r| r.ensure == Ensure::Present && !is_present(observed.resources.get(&r.key)));
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
    // Whether each feature's resources are (or, after this plan, will be) in place.
    let mut in_place: BTreeMap<FeatureId, bool> = BTreeMap::new();

    for f in &baseline.features {
        let present_now = !f.resources.is_empty()
            && f.resources
                .iter()
                .filter(|r| r.ensure == Ensure::Present)
                .all(|r| is_present(observed.resources.get(&r.key)));
        match status.get(&f.id).cloned().unwrap_or(Status::Active) {
            Status::Skipped(reason, detail) => {
                plan.skips.push(feature_skip(f, reason, detail));
                in_place.insert(f.id.clone(), present_now);
                continue;
            }
            Status::Active => {}
        }
        let missing: Vec<&FeatureId> =
            f.requires.iter().filter(|r| !in_place.get(*r).copied().unwrap_or(false)).collect();
        if !missing.is_empty() {
            let detail = missing
                .iter()
                .map(|m| format!("requires {m} ({}), which is neither applied nor in place", m.title()))
                .collect::<Vec<_>>()
                .join("; ");
            plan.skips.push(feature_skip(f, SkipReason::BlockedDependency, detail));
            in_place.insert(f.id.clone(), present_now);
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
        let mut complete = true;
        for r in &f.resources {
            let ok = plan_resource(baseline, f, r, observed, over_quota.as_deref(), &mut plan);
            complete &= ok || r.ensure == Ensure::Absent;
        }
        in_place.insert(f.id.clone(), complete);
    }
    plan
}

fn feature_skip(f: &FeatureBaseline, reason: SkipReason, detail: String) -> Skip {
    Skip { feature: f.id.clone(), region: "*".into(), resource: "*".into(), reason, detail }
}

/// Plans one resource of an active feature. Returns whether the resource will be in
/// place (as desired present) once the plan is applied.
fn plan_resource(
    baseline: &AccountBaseline,
    f: &FeatureBaseline,
    r: &DesiredResource,
    observed: &Observed,
    over_quota: Option<&str>,
    plan: &mut AccountPlan,
) -> bool {
    let skip = |reason, detail: String| Skip {
        feature: f.id.clone(),
        region: r.key.region.clone(),
        resource: format!("{} {}", r.key.kind, r.key.name),
        reason,
        detail,
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
    let Some(obs) = observed.resources.get(&r.key) else {
        plan.errors.push(format!("{}: {} was not observed", f.id, r.key));
        return false;
    };
    let taggable = r.spec.taggable();
    let ours = |owner: &Option<String>| !taggable || owner.is_some();
    let guard = guard::lockout(baseline, &r.spec);

    match (r.ensure, obs) {
        (Ensure::Absent, Observation::Absent { .. }) => false,
        (Ensure::Absent, Observation::AwsDefault { state, in_use }) => {
            if in_use.is_empty() {
                plan.changes.push(change(Action::Delete, render_diff(Some(state), None), Some(state.clone())));
            } else {
                plan.skips.push(skip(
                    SkipReason::InUse,
                    format!("AWS default resource in use, not deleted (never forced): {}", in_use.join(", ")),
                ));
            }
            true
        }
        (Ensure::Present, Observation::AwsDefault { state, .. }) => {
            plan.skips.push(skip(SkipReason::NotOwned, not_owned_detail("exists as an AWS default", &r.spec, state)));
            true
        }
        (Ensure::Absent, Observation::Present { state, owner }) => {
            if !ours(owner) {
                plan.skips.push(skip(SkipReason::NotOwned, not_owned_detail("would be deleted", &r.spec, state)));
            } else if guard::is_member_role(baseline, &r.spec) {
                plan.skips
                    .push(skip(SkipReason::SelfLockout, "deleting the member role would lock this tool out".into()));
            } else {
                let diff = render_diff(Some(state), None);
                plan.changes.push(change(Action::Delete, diff, Some(state.clone())));
            }
            true
        }
        (Ensure::Present, Observation::Absent { quota }) => {
            if let Some(q) = quota.as_ref().filter(|q| q.used >= q.limit) {
                plan.skips.push(skip(
                    SkipReason::Quota,
                    format!("{}: {} of {} in use; not created (free one or raise the quota)", q.name, q.used, q.limit),
                ));
                return false;
            }
            if let Some(blocker) = over_quota {
                plan.skips
                    .push(skip(SkipReason::Quota, format!("not created: {blocker} of the same feature is over quota")));
                return false;
            }
            if let Err(why) = guard {
                plan.skips.push(skip(SkipReason::SelfLockout, why));
                return false;
            }
            plan.changes.push(change(Action::Create, render_diff(None, Some(&r.spec)), None));
            true
        }
        (Ensure::Present, Observation::Present { state, owner }) => {
            if !ours(owner) {
                plan.skips.push(skip(SkipReason::NotOwned, not_owned_detail("exists", &r.spec, state)));
                return true;
            }
            if !differing_fields(&r.spec, state).is_empty() {
                if let Err(why) = guard {
                    plan.skips.push(skip(SkipReason::SelfLockout, why));
                    return true;
                }
                plan.changes.push(change(Action::Update, render_diff(Some(state), Some(&r.spec)), Some(state.clone())));
            }
            if taggable && owner.as_deref() != Some(f.tag.as_str()) {
                let was = owner.clone().unwrap_or_default();
                let diff = format!(
                    "--- observed\n+++ desired\n@@ tags @@\n-{}: {was}\n+{}: {}\n",
                    crate::desired::names::OWNER_TAG_KEY,
                    crate::desired::names::OWNER_TAG_KEY,
                    f.tag.as_str()
                );
                plan.changes.push(change(Action::Tag, diff, Some(state.clone())));
            }
            true
        }
    }
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
