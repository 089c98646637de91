//! Counts every AWS call and attempt, as an SDK interceptor installed on every client.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What a count is kept by.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct CallKey {
    pub service: String,
    pub operation: String,
    pub account: String,
    pub region: String,
    /// `ok`; `not_found` for an answer that the resource does not exist (which observing
    /// expects); `error` for any other failure after its retries.
    pub outcome: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CallCount {
    /// Calls made (one per operation invocation, whatever its retries).
    pub calls: u64,
    /// Attempts beyond the first.
    pub retries: u64,
    /// Attempts answered with throttling.
    pub throttled: u64,
}

/// Totals since the process started, shared by every client.
#[derive(Default, Debug)]
pub struct CallStats {
    counts: Mutex<BTreeMap<CallKey, CallCount>>,
}

impl CallStats {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<CallKey, CallCount>) -> T) -> T {
        f(&mut self.counts.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A copy of every count.
    pub fn snapshot(&self) -> BTreeMap<CallKey, CallCount> {
        self.with(|m| m.clone())
    }

    /// The counts of one account.
    pub fn for_account(&self, account: &str) -> BTreeMap<CallKey, CallCount> {
        self.with(|m| m.iter().filter(|(k, _)| k.account == account).map(|(k, v)| (k.clone(), *v)).collect())
    }
}

#[derive(Debug, Default, Clone)]
struct Attempt {
    attempts: u64,
    throttled: u64,
    /// The last attempt was answered "no such resource".
    not_found: bool,
}

/// The interceptor; one per client (it knows the client's account and region).
#[derive(Debug, Clone)]
pub struct CallCounter {
    account: String,
    region: String,
    stats: Arc<CallStats>,
}

impl CallCounter {
    pub fn new(account: String, region: String, stats: Arc<CallStats>) -> Self {
        Self { account, region, stats }
    }
}

fn is_throttle(status: u16, headers_and_body: &str) -> bool {
    status == 429
        || ((status == 400 || status == 503)
            && (headers_and_body.contains("Throttl")
                || headers_and_body.contains("RequestLimitExceeded")
                || headers_and_body.contains("SlowDown")
                || headers_and_body.contains("TooManyRequests")))
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let mut throttled = false;
        let mut not_found = false;
        if let Some(resp) = context.response() {
            let status = resp.status().as_u16();
            if status >= 400 {
                let mut text: String = resp.headers().get("x-amzn-errortype").map(str::to_string).unwrap_or_default();
                if let Some(b) = resp.body().bytes() {
                    text.push_str(&String::from_utf8_lossy(&b[..b.len().min(2048)]));
                }
                throttled = is_throttle(status, &text);
                not_found = is_not_found(status, &text);
            }
        }
        let mut a = cfg.load::<AttemptSlot>().map(|s| s.0.clone()).unwrap_or_default();
        a.attempts += 1;
        a.throttled += u64::from(throttled);
        a.not_found = not_found;
        cfg.interceptor_state().store_put(AttemptSlot(a));
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_string(), m.name().to_string()))
            .unwrap_or_else(|| ("unknown".into(), "unknown".into()));
        let ok = matches!(context.output_or_error(), Some(Ok(_)));
        let a = cfg.load::<AttemptSlot>().map(|s| s.0.clone()).unwrap_or(Attempt { attempts: 1, ..Default::default() });
        let outcome = match (ok, a.not_found) {
            (true, _) => "ok",
            (false, true) => "not_found",
            (false, false) => "error",
        };
        let key = CallKey {
            service: service.to_ascii_lowercase().replace(' ', ""),
            operation,
            account: self.account.clone(),
            region: self.region.clone(),
            outcome: outcome.into(),
        };
        self.stats.with(|m| {
            let c = m.entry(key).or_default();
            c.calls += 1;
            c.retries += a.attempts.saturating_sub(1);
            c.throttled += a.throttled;
        });
        Ok(())
    }
}

#[derive(Debug, Default, Clone)]
struct AttemptSlot(Attempt);

impl aws_smithy_types::config_bag::Storable for AttemptSlot {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// An answer that the thing asked about does not exist (`NoSuchEntity`, `NotFoundException`,
/// `TrailNotFoundException`, `NoSuchBucketPolicy`, ...).
fn is_not_found(status: u16, headers_and_body: &str) -> bool {
    status == 404
        || ((400..500).contains(&status)
            && (headers_and_body.contains("NotFound")
                || headers_and_body.contains("NoSuch")
                // Security Hub answers "not subscribed" where it is not enabled.
                || headers_and_body.contains("not subscribed to AWS Security Hub")))
}

#[cfg(test)]
mod tests {
    use super::{is_not_found, is_throttle};

    #[test]
    fn not_found_is_told_apart_from_errors() {
        assert!(is_not_found(404, ""));
        assert!(is_not_found(400, "{\"__type\":\"NotFoundException\"}"));
        assert!(is_not_found(400, "<Code>NoSuchPublicAccessBlockConfiguration</Code>"));
        assert!(is_not_found(401, "{\"Message\":\"Account 1 is not subscribed to AWS Security Hub\"}"));
        assert!(!is_not_found(403, "<Code>AccessDenied</Code>"));
        assert!(!is_not_found(500, "NoSuchThing"));
    }

    #[test]
    fn throttling_is_recognised() {
        assert!(is_throttle(429, ""));
        assert!(is_throttle(400, "<Code>Throttling</Code>"));
        assert!(is_throttle(400, "ThrottlingException"));
        assert!(is_throttle(503, "<Code>SlowDown</Code>"));
        assert!(!is_throttle(400, "<Code>NoSuchEntity</Code>"));
        assert!(!is_throttle(404, "Throttling"));
    }
}
