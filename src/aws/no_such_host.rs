//! A host name that does not exist is not tried again.
//!
//! A service not offered in a region has no endpoint there: its host name does not resolve
//! (NXDOMAIN). The SDK's standard strategy retries every connection failure with backoff,
//! which for such a name spends up to its whole attempt budget (about a minute with eight
//! attempts) per call, in every account, for an answer that cannot change. A resolver's
//! temporary failure (`Temporary failure in name resolution`, EAI_AGAIN) is still retried.

use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction, RetryClassifierPriority};

/// How the resolvers the SDK's HTTP client may use say that a name does not exist: glibc's
/// EAI_NONAME, macOS's, and hickory-dns's.
pub const NO_SUCH_HOST: [&str; 3] = ["Name or service not known", "nodename nor servname provided", "no record found"];

/// Whether `text` (an error and its sources, as formatted) says that a host name does not
/// exist.
pub fn says_no_such_host(text: &str) -> bool {
    text.contains("dns error") && NO_SUCH_HOST.iter().any(|m| text.contains(m))
}

/// Forbids retrying a connection that failed because its host name does not exist.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSuchHost;

impl ClassifyRetry for NoSuchHost {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.output_or_error() {
            Some(Err(e)) if e.as_connector_error().is_some_and(|c| says_no_such_host(&format!("{c:?}"))) => {
                RetryAction::RetryForbidden
            }
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "NoSuchHost"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::transient_error_classifier()
    }
}

#[cfg(test)]
mod tests {
    use super::says_no_such_host;

    #[test]
    fn a_name_that_does_not_exist_is_told_from_a_resolver_that_failed_for_now() {
        let nx = r#"ConnectError("dns error", Custom { kind: Uncategorized, error: "failed to lookup address information: Name or service not known" })"#;
        let again = r#"ConnectError("dns error", Custom { kind: Uncategorized, error: "failed to lookup address information: Temporary failure in name resolution" })"#;
        assert!(says_no_such_host(nx));
        assert!(!says_no_such_host(again));
        assert!(!says_no_such_host("connection refused"));
    }
}
