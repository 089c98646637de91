//! AWS errors as the rest of the program sees them: a code and a readable message.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AwsError {
    /// The AWS error code (`AccessDenied`, `NoSuchEntity`, ...), or the kind of failure
    /// (`dispatch`, `timeout`, `response`) when AWS did not answer with one.
    pub code: String,
    pub message: String,
}

impl AwsError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }

    /// What an operator should know of a failure that is not AWS's answer but the way to it
    /// (no credentials, no network) or the credentials themselves, in a few lines, instead of
    /// the SDK's error chain; `None` for any other failure.
    pub fn explain(&self) -> Option<String> {
        let m = &self.message;
        if self.code == "dispatch"
            && [
                "loading credentials",
                "no credentials found",
                "no providers in chain",
                "credential provider was not enabled",
            ]
            .iter()
            .any(|s| m.contains(s))
        {
            return Some(
                concat!(
                    "no AWS credentials found. Looked in: the environment (AWS_ACCESS_KEY_ID), the shared files ",
                    "(~/.aws/credentials, ~/.aws/config: AWS_PROFILE or `default`), SSO, web identity, the ECS task ",
                    "role and EC2 instance metadata.\n  Set one: AWS_PROFILE=NAME (after `aws sso login --profile NAME` ",
                    "for SSO), or run where a role is given (ECS task role, instance profile, IRSA)."
                )
                    .to_string(),
            );
        }
        if self.code == "dispatch"
            && ["dns error", "Connection refused", "connection refused", "tcp connect error", "timed out"]
                .iter()
                .any(|s| m.contains(s))
        {
            let at =
                std::env::var("AWS_ENDPOINT_URL").map(|u| format!(" at {u} (AWS_ENDPOINT_URL)")).unwrap_or_default();
            return Some(format!(
                "AWS cannot be reached{at}: {}.\n  Check the network, a proxy (HTTPS_PROXY, NO_PROXY) and AWS_ENDPOINT_URL if set.",
                if m.contains("dns error") { "the host name does not resolve" } else { "no connection" }
            ));
        }
        if CREDENTIAL_CODES.contains(&self.code.as_str()) {
            return Some(format!(
                "AWS refused the credentials ({}): expired or invalid.\n  Renew them (`aws sso login`, a new session) or \
                 check which are in use: AWS_PROFILE, AWS_ACCESS_KEY_ID.",
                self.code
            ));
        }
        None
    }
}

/// How a failure is handled: it is the account's (reported), passing (the account is tried
/// again within the run, a bounded number of times), or not the account's at all but the
/// whole fleet's (the management account's credentials, the network): no further account is
/// started until the management account answers again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    #[default]
    Account,
    Transient,
    Fleet,
}

/// Codes with which AWS refuses credentials themselves: every account fails alike.
const CREDENTIAL_CODES: [&str; 7] = [
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "RequestExpired",
    "InvalidAccessKeyId",
];

/// Codes of failures that pass: AWS busy or failing for a moment, or no answer.
const TRANSIENT_CODES: [&str; 17] = [
    "dispatch",
    "timeout",
    "response",
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "InternalServerException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
];

/// The fault of an error code (`Code` of a `Code: message` error).
pub fn fault_of(code: &str) -> Fault {
    if CREDENTIAL_CODES.contains(&code) {
        Fault::Fleet
    } else if TRANSIENT_CODES.contains(&code) {
        Fault::Transient
    } else {
        Fault::Account
    }
}

impl AwsError {
    /// How a failure of this call is handled.
    pub fn fault(&self) -> Fault {
        fault_of(&self.code)
    }

    /// Whether the call failed because its region, or its service there, cannot be reached
    /// from the account, rather than because of anything in the account: a service control
    /// policy denies the region (each service's access-denied answer naming a service control
    /// policy), or the service's regional endpoint does not resolve (not offered there).
    pub fn region_unavailable(&self) -> bool {
        let denied = matches!(self.code.as_str(), "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation")
            && self.message.contains("service control policy");
        let no_endpoint = self.code == "dispatch" && super::no_such_host::says_no_such_host(&self.message);
        denied || no_endpoint
    }
}

/// The AWS error code of a failed call, if AWS gave one.
pub fn code_of<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

impl<E, R> From<SdkError<E, R>> for AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static + HttpStatus,
{
    fn from(e: SdkError<E, R>) -> Self {
        let code = match &e {
            SdkError::ServiceError(s) => s.err().code().unwrap_or("unknown").to_string(),
            SdkError::TimeoutError(_) => "timeout".into(),
            SdkError::DispatchFailure(_) => "dispatch".into(),
            SdkError::ResponseError(_) => "response".into(),
            SdkError::ConstructionFailure(_) => "construction".into(),
            _ => "unknown".into(),
        };
        let message = match &e {
            SdkError::ServiceError(s) => match s.err().message() {
                Some(m) => m.to_string(),
                None => format!("HTTP {}: {}", s.raw().status_code(), DisplayErrorContext(s.err())),
            },
            other => DisplayErrorContext(other).to_string(),
        };
        Self { code, message }
    }
}

/// The HTTP status of a raw response, for error messages.
pub trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

#[cfg(test)]
mod fault_tests {
    use super::*;

    #[test]
    fn failures_are_the_accounts_passing_or_the_fleets() {
        assert_eq!(fault_of("ExpiredToken"), Fault::Fleet);
        assert_eq!(fault_of("ExpiredTokenException"), Fault::Fleet);
        assert_eq!(fault_of("InvalidClientTokenId"), Fault::Fleet);
        for passing in ["ThrottlingException", "ServiceUnavailable", "InternalFailure", "dispatch", "timeout"] {
            assert_eq!(fault_of(passing), Fault::Transient, "{passing}");
        }
        for own in ["AccessDenied", "NoSuchEntity", "InvalidInputException", "MalformedPolicyDocument", ""] {
            assert_eq!(fault_of(own), Fault::Account, "{own}");
        }
    }

    #[test]
    fn a_region_denied_by_a_service_control_policy_or_without_the_service_is_unavailable() {
        let scp = "User: arn:aws:sts::111111111111:assumed-role/cm-policymaintainer/cm is not authorized to perform: \
                   securityhub:DescribeHub with an explicit deny in a service control policy";
        assert!(AwsError::new("AccessDeniedException", scp).region_unavailable());
        assert!(AwsError::new("UnauthorizedOperation", scp).region_unavailable());
        assert!(!AwsError::new("AccessDeniedException", "not authorized to perform: securityhub:DescribeHub")
            .region_unavailable());
        let dns =
            "dispatch failure: io error: error trying to connect: dns error: failed to lookup address information: Name or service not known";
        assert!(AwsError::new("dispatch", dns).region_unavailable());
        assert!(!AwsError::new("dispatch", "connection refused").region_unavailable());
        // A resolver that failed for now says nothing of the region.
        let again = "dispatch failure: io error: dns error: failed to lookup address information: Temporary failure in name resolution";
        assert!(!AwsError::new("dispatch", again).region_unavailable());
    }

    #[test]
    fn what_is_missing_on_the_way_to_aws_is_explained_and_aws_answers_are_not() {
        let no_creds =
            AwsError::new("dispatch", "dispatch failure: other: an error occurred while loading credentials: x");
        assert!(no_creds.explain().is_some_and(|w| w.starts_with("no AWS credentials found")));
        let refused = AwsError::new("dispatch", "io error: tcp connect error: Connection refused (os error 111)");
        assert!(refused.explain().is_some_and(|w| w.contains("no connection")));
        let expired = AwsError::new("ExpiredToken", "The security token included in the request is expired");
        assert!(expired.explain().is_some_and(|w| w.contains("refused the credentials (ExpiredToken)")));
        assert_eq!(AwsError::new("AccessDenied", "not authorized").explain(), None);
    }
}
