//! Reads one account's current state: the Control Tower marker, then every resource of
//! the features the planner may act on, in the typed shape of desired state.

use crate::aws::{code_of, AccountSession, AwsError};
use crate::desired::names::FeatureId;
use crate::desired::resolve::{AccountBaseline, DesiredResource, ResourceKey, GLOBAL};
use crate::desired::Quotas;
use crate::plan::Observed;
use crate::resources::{Cx, Observation, ResourceSpec};
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::BTreeSet;

/// One resource's observation: what it is or, when its region (or the service there) is
/// out of reach, why not, which is the planner's to skip. Any other failure fails the
/// account's observation.
async fn read(
    cx: Cx<'_>,
    feature: &FeatureId,
    r: &DesiredResource,
) -> Result<(ResourceKey, Result<Observation<ResourceSpec>, String>), AwsError> {
    match r.spec.observe(&cx).await {
        Ok(seen) => Ok((r.key.clone(), Ok(seen))),
        Err(e) if r.key.region != GLOBAL && e.region_unavailable() => {
            tracing::warn!(account = cx.account_id, region = %r.key.region, %feature, resource_type = %r.key.kind,
                resource = %r.key.name, error = %e, "region unavailable");
            Ok((r.key.clone(), Err(e.to_string())))
        }
        Err(e) => {
            tracing::warn!(account = cx.account_id, region = %r.key.region, %feature, resource_type = %r.key.kind,
                resource = %r.key.name, error = %e, "read failed");
            Err(AwsError::new(e.code, format!("reading {}: {}", r.key, e.message)))
        }
    }
}

/// Whether the account carries the Control Tower marker role (R2).
pub async fn control_tower(session: &AccountSession, baseline: &AccountBaseline) -> Result<bool, AwsError> {
    let iam = session.iam();
    match session.call(iam.get_role().role_name(&baseline.control_tower.detect_role).send()).await {
        Ok(_) => Ok(true),
        Err(e) if code_of(&e) == Some("NoSuchEntity") => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The region a resource's calls go to: its own, or the home region for global ones.
pub fn call_region<'a>(baseline: &'a AccountBaseline, region: &'a str) -> &'a str {
    if region == GLOBAL {
        &baseline.home_region
    } else {
        region
    }
}

/// Observes every resource of `features`. Reads run concurrently, within the session's
/// limits; any failed read fails the observation (a plan is never made on a partial view).
///
/// Twice as many resources are read at once as the account may have calls in flight, so
/// that a resource between two of its calls leaves no permit idle, and no more: an account
/// has hundreds of resources, and a pending read holds memory.
pub async fn observe(
    session: &AccountSession,
    baseline: &AccountBaseline,
    features: &BTreeSet<FeatureId>,
    control_tower: bool,
    quotas: &Quotas,
) -> Result<Observed, AwsError> {
    let account_id = baseline.account_id.as_str();
    let mut pending = baseline
        .features
        .iter()
        .filter(|f| features.contains(&f.id))
        .flat_map(|f| f.resources.iter().map(move |r| (&f.id, r)))
        .collect::<Vec<_>>()
        .into_iter();
    // The reads in flight are named futures in a plain set, not an adapter over the
    // iterator's closures: the compiler then proves the observation `Send`, which it must
    // be for the account to run as a task of its own.
    let mut reading = FuturesUnordered::new();
    let mut observed = Observed { control_tower, ..Default::default() };
    loop {
        while reading.len() < 2 * session.account_concurrency() {
            let Some((feature, r)) = pending.next() else { break };
            let cx = Cx { session, account_id, region: call_region(baseline, &r.key.region), quotas };
            reading.push(read(cx, feature, r));
        }
        let Some(result) = reading.next().await else { break };
        let (k, v) = result?;
        match v {
            Ok(seen) => {
                observed.resources.insert(k, seen);
            }
            Err(why) => {
                observed.unavailable.insert(k, why);
            }
        }
    }
    Ok(observed)
}
