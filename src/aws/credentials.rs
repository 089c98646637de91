//! Credentials of a member account, from STS AssumeRole through the counted STS client of
//! the management account. Held until five minutes before they expire, then renewed.

use super::error::AwsError;
use aws_credential_types::provider::{self, future, ProvideCredentials};
use aws_credential_types::Credentials;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

const RENEW_BEFORE: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub struct AssumeRoleCredentials {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    external_id: Option<String>,
    session_name: String,
    current: Mutex<Option<Credentials>>,
}

impl AssumeRoleCredentials {
    pub fn new(sts: aws_sdk_sts::Client, role_arn: String, external_id: Option<String>, session_name: String) -> Self {
        Self { sts, role_arn, external_id, session_name, current: Mutex::new(None) }
    }

    fn cached(&self) -> Option<Credentials> {
        let guard = self.current.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .filter(|c| match c.expiry() {
                Some(exp) => exp > SystemTime::now() + RENEW_BEFORE,
                None => true,
            })
            .cloned()
    }

    /// The error of a failed AssumeRole, for an operator: the role, AWS's code and message,
    /// and where a denial usually comes from.
    fn explain(&self, e: AwsError) -> AwsError {
        let account = self.role_arn.split(':').nth(4).unwrap_or("the member account");
        let advice = match e.code.as_str() {
            "AccessDenied" => format!(
                " (check that the role exists in account {account} and that its trust policy lets the management \
                 account assume it{})",
                if self.external_id.is_some() { " with the external id of settings.yaml" } else { "" }
            ),
            _ => String::new(),
        };
        AwsError::new(e.code, format!("cannot assume {}: {}{advice}", self.role_arn, e.message))
    }

    /// Calls AssumeRole and keeps the result.
    pub async fn refresh(&self) -> Result<Credentials, AwsError> {
        let out = self
            .sts
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(&self.session_name)
            .set_external_id(self.external_id.clone())
            .send()
            .await
            .map_err(|e| self.explain(AwsError::from(e)))?;
        let c = out.credentials().ok_or_else(|| AwsError::new("response", "AssumeRole returned no credentials"))?;
        let expiry = SystemTime::try_from(*c.expiration()).ok();
        let creds = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            expiry,
            "cm-baseline-assume-role",
        );
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(creds.clone());
        Ok(creds)
    }
}

impl ProvideCredentials for AssumeRoleCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        if let Some(c) = self.cached() {
            return future::ProvideCredentials::ready(Ok(c));
        }
        future::ProvideCredentials::new(async move {
            self.refresh().await.map_err(provider::error::CredentialsError::provider_error)
        })
    }
}
