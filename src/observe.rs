//! Reads one account's current state: the Control Tower marker, then every resource of
//! the features the planner may act on, in the typed shape of desired state.

use crate::aws::{code_of, AccountSession, AwsError};
use crate::desired::names::FeatureId;
use crate::desired::resolve::{AccountBaseline, GLOBAL};
use crate::desired::Quotas;
use crate::plan::Observed;
use crate::resources::Cx;
use futures::stream::{self, StreamExt, TryStreamExt};
use std::collections::BTreeSet;

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
    let reads = baseline
        .features
        .iter()
        .filter(|f| features.contains(&f.id))
        .flat_map(|f| f.resources.iter().map(move |r| (&f.id, r)))
        .map(|(feature, r)| async move {
            let cx = Cx { session, account_id, region: call_region(baseline, &r.key.region), quotas };
            match r.spec.observe(&cx).await {
                Ok(seen) => Ok::<_, AwsError>((r.key.clone(), Ok(seen))),
                // A region (or a service in it) out of reach is the planner's to skip;
                // anything else fails the observation.
                Err(e) if r.key.region != GLOBAL && e.region_unavailable() => {
                    tracing::warn!(account = account_id, region = %r.key.region, %feature, resource_type = %r.key.kind,
                        resource = %r.key.name, error = %e, "region unavailable");
                    Ok((r.key.clone(), Err(e.to_string())))
                }
                Err(e) => {
                    tracing::warn!(account = account_id, region = %r.key.region, %feature, resource_type = %r.key.kind,
                        resource = %r.key.name, error = %e, "read failed");
                    Err(AwsError::new(e.code, format!("reading {}: {}", r.key, e.message)))
                }
            }
        });
    let mut observed = Observed { control_tower, ..Default::default() };
    let mut results = stream::iter(reads).buffer_unordered(2 * session.account_concurrency());
    while let Some((k, v)) = results.try_next().await? {
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
