//! `securityhub_finding_aggregator`: Security Hub cross-Region aggregation (F13). An
//! account has at most one finding aggregator; it lives in the aggregation Region (the home
//! region) and cannot carry tags, so it is changed while its feature is active.

use super::securityhub_hub::not_subscribed;
use super::{untaggable, Cx, Observation, Ownership, ResourceType, Scope};
use crate::aws::{code_of, AwsError};
use crate::desired::names::OwnerTag;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityhubFindingAggregator {
    /// `ALL_REGIONS` (every Region, future ones included), `ALL_REGIONS_EXCEPT_SPECIFIED`,
    /// `SPECIFIED_REGIONS` or `NO_REGIONS`. Always compared.
    pub region_linking_mode: String,
    /// The Regions the two `..._SPECIFIED` modes name.
    #[serde(default)]
    pub regions: Option<BTreeSet<String>>,
    #[serde(skip)]
    pub arn: Option<String>,
    /// Read only: the Region the aggregator is in (its aggregation Region). Desired state
    /// leaves it out: the aggregator belongs in the region its entry places it (the home
    /// region), and one found elsewhere is moved there, or, if not ours, reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation_region: Option<String>,
}

/// The Region in an aggregator's ARN (`arn:aws:securityhub:<region>:<account>:finding-aggregator/...`).
fn region_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

impl SecurityhubFindingAggregator {
    /// The account's aggregator ARN; `None` when there is none or Security Hub is off.
    async fn find(&self, cx: &Cx<'_>) -> Result<Option<String>, AwsError> {
        let sh = cx.session.securityhub(cx.region);
        let mut token = None;
        loop {
            let out = match cx.session.call(sh.list_finding_aggregators().set_next_token(token).send()).await {
                Ok(out) => out,
                Err(e) if not_subscribed(code_of(&e)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            if let Some(arn) = out.finding_aggregators().iter().find_map(|a| a.finding_aggregator_arn()) {
                return Ok(Some(arn.to_string()));
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(None),
            }
        }
    }
}

impl ResourceType for SecurityhubFindingAggregator {
    const KIND: &'static str = "securityhub_finding_aggregator";
    const DEFAULT_SCOPE: Scope = Scope::Home;
    const TAGGABLE: bool = false;
    const OWNERSHIP: Ownership = Ownership::Parent("securityhub_hub");

    fn name(&self) -> String {
        "aggregator".into()
    }

    fn found_in(&self) -> Option<&str> {
        self.aggregation_region.as_deref()
    }

    async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let Some(arn) = self.find(cx).await? else {
            return Ok(Observation::Absent { quota: None });
        };
        // An account has one aggregator, listed from every Region; it is read in its own.
        let there = region_of(&arn).unwrap_or(cx.region).to_string();
        let sh = cx.session.securityhub(&there);
        let out = cx.session.call(sh.get_finding_aggregator().finding_aggregator_arn(&arn).send()).await?;
        Ok(Observation::Present {
            state: SecurityhubFindingAggregator {
                region_linking_mode: out.region_linking_mode().unwrap_or_default().to_string(),
                regions: Some(out.regions().iter().cloned().collect()),
                arn: Some(arn),
                aggregation_region: Some(out.finding_aggregation_region().map(str::to_string).unwrap_or(there)),
            },
            owner: None,
        })
    }

    async fn create(&self, cx: &Cx<'_>, _tag: OwnerTag) -> Result<(), AwsError> {
        let sh = cx.session.securityhub(cx.region);
        let regions = self.regions.as_ref().map(|r| r.iter().cloned().collect());
        cx.session
            .call(
                sh.create_finding_aggregator()
                    .region_linking_mode(&self.region_linking_mode)
                    .set_regions(regions)
                    .send(),
            )
            .await?;
        Ok(())
    }

    async fn update(&self, cx: &Cx<'_>, observed: &Self) -> Result<(), AwsError> {
        let Some(arn) = observed.arn.clone() else {
            return Err(AwsError::new("internal", "finding aggregator observed without its ARN"));
        };
        let sh = cx.session.securityhub(cx.region);
        // The ALL_REGIONS and NO_REGIONS modes take no Regions.
        let regions = match self.region_linking_mode.as_str() {
            "ALL_REGIONS" | "NO_REGIONS" => None,
            _ => self.regions.as_ref().or(observed.regions.as_ref()).map(|r| r.iter().cloned().collect()),
        };
        cx.session
            .call(
                sh.update_finding_aggregator()
                    .finding_aggregator_arn(arn)
                    .region_linking_mode(&self.region_linking_mode)
                    .set_regions(regions)
                    .send(),
            )
            .await?;
        Ok(())
    }

    async fn delete(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
        let Some(arn) = self.find(cx).await? else {
            return Ok(());
        };
        // Only its aggregation Region may delete it.
        let sh = cx.session.securityhub(region_of(&arn).unwrap_or(cx.region));
        cx.session.call(sh.delete_finding_aggregator().finding_aggregator_arn(arn).send()).await?;
        Ok(())
    }

    async fn retag(&self, _cx: &Cx<'_>, _tag: OwnerTag) -> Result<(), AwsError> {
        Err(untaggable(Self::KIND))
    }
}
