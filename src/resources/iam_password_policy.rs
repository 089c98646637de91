//! `iam_password_policy`: the account's IAM password policy (F03). An account setting:
//! it cannot carry tags, so it is managed only while its feature is active.

use super::{untaggable, Cx, Observation, Ownership, ResourceType, Scope};
use crate::aws::{code_of, AwsError};
use crate::desired::names::OwnerTag;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamPasswordPolicy {
    #[serde(default)]
    pub minimum_password_length: Option<i32>,
    #[serde(default)]
    pub require_uppercase_characters: Option<bool>,
    #[serde(default)]
    pub require_lowercase_characters: Option<bool>,
    #[serde(default)]
    pub require_numbers: Option<bool>,
    #[serde(default)]
    pub require_symbols: Option<bool>,
    #[serde(default)]
    pub allow_users_to_change_password: Option<bool>,
    #[serde(default)]
    pub max_password_age: Option<i32>,
    #[serde(default)]
    pub password_reuse_prevention: Option<i32>,
    #[serde(default)]
    pub hard_expiry: Option<bool>,
}

impl IamPasswordPolicy {
    /// Desired values, with the observed ones where desired state has no opinion: IAM
    /// replaces the whole policy on every update, so unspecified fields must be carried over.
    fn merged(&self, observed: &Self) -> Self {
        Self {
            minimum_password_length: self.minimum_password_length.or(observed.minimum_password_length),
            require_uppercase_characters: self.require_uppercase_characters.or(observed.require_uppercase_characters),
            require_lowercase_characters: self.require_lowercase_characters.or(observed.require_lowercase_characters),
            require_numbers: self.require_numbers.or(observed.require_numbers),
            require_symbols: self.require_symbols.or(observed.require_symbols),
            allow_users_to_change_password: self
                .allow_users_to_change_password
                .or(observed.allow_users_to_change_password),
            max_password_age: self.max_password_age.or(observed.max_password_age),
            password_reuse_prevention: self.password_reuse_prevention.or(observed.password_reuse_prevention),
            hard_expiry: self.hard_expiry.or(observed.hard_expiry),
        }
    }
}

impl ResourceType for IamPasswordPolicy {
    const KIND: &'static str = "iam_password_policy";
    const DEFAULT_SCOPE: Scope = Scope::Global;
    const TAGGABLE: bool = false;
    const OWNERSHIP: Ownership = Ownership::Setting;

    fn name(&self) -> String {
        "account".into()
    }

    async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let iam = cx.session.iam();
        let p = match cx.session.call(iam.get_account_password_policy().send()).await {
            Ok(out) => out.password_policy,
            Err(e) if code_of(&e) == Some("NoSuchEntity") => return Ok(Observation::Absent { quota: None }),
            Err(e) => return Err(e.into()),
        };
        let Some(p) = p else {
            return Ok(Observation::Absent { quota: None });
        };
        Ok(Observation::Present {
            state: IamPasswordPolicy {
                minimum_password_length: p.minimum_password_length(),
                require_uppercase_characters: Some(p.require_uppercase_characters()),
                require_lowercase_characters: Some(p.require_lowercase_characters()),
                require_numbers: Some(p.require_numbers()),
                require_symbols: Some(p.require_symbols()),
                allow_users_to_change_password: Some(p.allow_users_to_change_password()),
                max_password_age: p.max_password_age(),
                password_reuse_prevention: p.password_reuse_prevention(),
                hard_expiry: p.hard_expiry(),
            },
            owner: None,
        })
    }

    async fn create(&self, cx: &Cx<'_>, _tag: OwnerTag) -> Result<(), AwsError> {
        self.update(cx, &IamPasswordPolicy::default()).await
    }

    async fn update(&self, cx: &Cx<'_>, observed: &Self) -> Result<(), AwsError> {
        let p = self.merged(observed);
        let iam = cx.session.iam();
        cx.session
            .call(
                iam.update_account_password_policy()
                    .set_minimum_password_length(p.minimum_password_length)
                    .set_require_uppercase_characters(p.require_uppercase_characters)
                    .set_require_lowercase_characters(p.require_lowercase_characters)
                    .set_require_numbers(p.require_numbers)
                    .set_require_symbols(p.require_symbols)
                    .set_allow_users_to_change_password(p.allow_users_to_change_password)
                    .set_max_password_age(p.max_password_age)
                    .set_password_reuse_prevention(p.password_reuse_prevention)
                    .set_hard_expiry(p.hard_expiry)
                    .send(),
            )
            .await?;
        Ok(())
    }

    async fn delete(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
        let iam = cx.session.iam();
        cx.session.call(iam.delete_account_password_policy().send()).await?;
        Ok(())
    }

    async fn retag(&self, _cx: &Cx<'_>, _tag: OwnerTag) -> Result<(), AwsError> {
        Err(untaggable(Self::KIND))
    }
}
