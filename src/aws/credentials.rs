//! Credentials of a member account, from STS AssumeRole through the counted STS client of
//! the management account. Held until five minutes before they expire, then renewed.

use super::error::AwsError;
use aws_credential_types::provider::{self, future, ProvideCredentials};
use aws_credential_types::Credentials;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

const RENEW_BEFORE: Duration = Duration::from_secs(300);
/// Credentials just received are used at least this long, whatever their expiry says: with
/// the local clock ahead of AWS's, every call would otherwise ask STS again.
const KEEP_AT_LEAST: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct AssumeRoleCredentials {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    external_id: Option<String>,
    session_name: String,
    /// The credentials held, and when they were received.
    current: Mutex<Option<(Credentials, std::time::Instant)>>,
    /// Held while renewing, so that the calls of an account waiting for new credentials
    /// make one AssumeRole between them.
    renewing: tokio::sync::Mutex<()>,
}

impl AssumeRoleCredentials {
    pub fn new(sts: aws_sdk_sts::Client, role_arn: String, external_id: Option<String>, session_name: String) -> Self {
        Self {
            sts,
            role_arn,
            external_id,
            session_name,
            current: Mutex::new(None),
            renewing: tokio::sync::Mutex::new(()),
        }
    }

    /// Holding `creds` already, as after a first AssumeRole.
    #[cfg(test)]
    pub fn holding(sts: aws_sdk_sts::Client, role_arn: &str, creds: Credentials) -> Self {
        let held = Self::new(sts, role_arn.to_string(), None, "test".into());
        *held.current.lock().unwrap_or_else(|p| p.into_inner()) = Some((creds, std::time::Instant::now()));
        held
    }

    fn cached(&self) -> Option<Credentials> {
        let guard = self.current.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .filter(|(c, received)| {
                received.elapsed() < KEEP_AT_LEAST
                    || match c.expiry() {
                        Some(exp) => exp > SystemTime::now() + RENEW_BEFORE,
                        None => true,
                    }
            })
            .map(|(c, _)| c.clone())
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

    /// The credentials held, or new ones: one AssumeRole however many calls ask at once.
    async fn current_or_renew(&self) -> Result<Credentials, AwsError> {
        let _one = self.renewing.lock().await;
        match self.cached() {
            Some(c) => Ok(c),
            None => self.refresh().await,
        }
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
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some((creds.clone(), std::time::Instant::now()));
        Ok(creds)
    }
}

/// The credentials of each call's caller (see [`super::Caller`]): the provider of the
/// clients that every member account shares. Outside a caller's scope there are none, and
/// the call fails before anything is sent.
#[derive(Debug)]
pub struct CallersCredentials;

impl ProvideCredentials for CallersCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        match super::with_caller(|c| c.credentials.clone()) {
            Some(p) => match p.cached() {
                Some(c) => future::ProvideCredentials::ready(Ok(c)),
                None => future::ProvideCredentials::new(async move {
                    p.current_or_renew().await.map_err(provider::error::CredentialsError::provider_error)
                }),
            },
            None => future::ProvideCredentials::ready(Err(provider::error::CredentialsError::not_loaded(
                "an AWS call of a member account was made outside its session's `call`",
            ))),
        }
    }
}
