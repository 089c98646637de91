//! `compute_optimizer_enrollment`: the account's Compute Optimizer enrollment (opt-in) status
//! (F05). An account setting without tags, read and set in every region.

use super::{untaggable, Cx, Observation, Ownership, ResourceType, Scope};
use crate::aws::AwsError;
use crate::desired::names::OwnerTag;
use aws_sdk_computeoptimizer::types::Status as AwsStatus;
use serde::{Deserialize, Serialize};

/// The enrollment status. `Pending` and `Failed` are only ever observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnrollmentStatus {
    Active,
    Inactive,
    Pending,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputeOptimizerEnrollment {
    /// `Active` (opted in) or `Inactive`.
    pub status: EnrollmentStatus,
}

impl ResourceType for ComputeOptimizerEnrollment {
    const KIND: &'static str = "compute_optimizer_enrollment";
    const DEFAULT_SCOPE: Scope = Scope::All;
    const TAGGABLE: bool = false;
    const OWNERSHIP: Ownership = Ownership::Setting;

    fn name(&self) -> String {
        "account".into()
    }

    fn is_aws_default(&self) -> bool {
        self.status == EnrollmentStatus::Inactive
    }

    async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let co = cx.session.computeoptimizer(cx.region);
        let out = cx.session.call(co.get_enrollment_status().send()).await?;
        let status = match out.status() {
            Some(AwsStatus::Active) => EnrollmentStatus::Active,
            Some(AwsStatus::Pending) => EnrollmentStatus::Pending,
            Some(AwsStatus::Failed) => EnrollmentStatus::Failed,
            _ => EnrollmentStatus::Inactive,
        };
        Ok(Observation::Present { state: ComputeOptimizerEnrollment { status }, owner: None })
    }

    async fn create(&self, cx: &Cx<'_>, _tag: OwnerTag) -> Result<(), AwsError> {
        self.update(cx, &ComputeOptimizerEnrollment { status: EnrollmentStatus::Inactive }).await
    }

    async fn update(&self, cx: &Cx<'_>, observed: &Self) -> Result<(), AwsError> {
        let status = match self.status {
            EnrollmentStatus::Active => AwsStatus::Active,
            EnrollmentStatus::Inactive => AwsStatus::Inactive,
            other => {
                return Err(AwsError::new(
                    "unsupported",
                    format!("Compute Optimizer enrollment can be set Active or Inactive, not {other:?}"),
                ))
            }
        };
        if self.status == observed.status {
            return Ok(());
        }
        let co = cx.session.computeoptimizer(cx.region);
        cx.session.call(co.update_enrollment_status().status(status).send()).await?;
        Ok(())
    }

    async fn delete(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
        let co = cx.session.computeoptimizer(cx.region);
        cx.session.call(co.update_enrollment_status().status(AwsStatus::Inactive).send()).await?;
        Ok(())
    }

    async fn retag(&self, _cx: &Cx<'_>, _tag: OwnerTag) -> Result<(), AwsError> {
        Err(untaggable(Self::KIND))
    }
}
