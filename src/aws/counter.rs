//! Counts every AWS call and attempt, as an SDK interceptor installed on every client.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// What a count is kept by.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct CallKey {
    pub service: String,
    pub operation: String,
    /// The region the call went to; `global` for IAM and Organizations.
    pub region: String,
    /// `ok`; `not_found` for an answer that the resource does not exist (which observing
    /// expects); `error` for any other failure after its retries.
    pub outcome: String,
}

/// What fleet-wide totals are kept by: a key without its region, so that the totals of a
/// process that has worked through thousands of accounts stay a few hundred entries.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TotalKey {
    pub service: String,
    pub operation: String,
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

impl CallCount {
    pub fn add(&mut self, other: &CallCount) {
        self.calls += other.calls;
        self.retries += other.retries;
        self.throttled += other.throttled;
    }
}

/// Counts of every call, shared by every client.
///
/// Per account (and region) only while the account's work is in progress: its runner
/// takes them with [`take_account`](Self::take_account) when it finishes, for its report.
/// Fleet-wide totals, by service, operation and outcome, are kept since the process
/// started. Memory therefore depends on the accounts in flight, not on the fleet's size.
/// Told the service and seconds of a call.
type LatencyObserver = Box<dyn Fn(&str, f64) + Send + Sync>;

#[derive(Default)]
pub struct CallStats {
    inner: Mutex<Counts>,
    /// Told the service and seconds of every call as it ends (the daemon's latency
    /// histograms); set once.
    latency: std::sync::OnceLock<LatencyObserver>,
}

impl std::fmt::Debug for CallStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallStats").field("inner", &self.inner).finish_non_exhaustive()
    }
}

#[derive(Default, Debug)]
struct Counts {
    accounts: HashMap<String, BTreeMap<CallKey, CallCount>>,
    totals: BTreeMap<TotalKey, CallCount>,
}

impl CallStats {
    fn with<T>(&self, f: impl FnOnce(&mut Counts) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn record(&self, account: &str, key: CallKey, count: CallCount) {
        self.with(|c| {
            let total = TotalKey {
                service: key.service.clone(),
                operation: key.operation.clone(),
                outcome: key.outcome.clone(),
            };
            c.totals.entry(total).or_default().add(&count);
            c.accounts.entry(account.to_string()).or_default().entry(key).or_default().add(&count);
        })
    }

    /// Has `observe` told the service and duration (seconds, retries included) of every
    /// call from now on. Only the first observer set is kept.
    pub fn on_latency(&self, observe: impl Fn(&str, f64) + Send + Sync + 'static) {
        if self.latency.set(Box::new(observe)).is_err() {
            tracing::warn!("a second latency observer was given; the first is kept");
        }
    }

    /// Every call since the process started, by service, operation and outcome.
    pub fn totals(&self) -> BTreeMap<TotalKey, CallCount> {
        self.with(|c| c.totals.clone())
    }

    /// The counts of one account since it was last taken, which are forgotten here.
    pub fn take_account(&self, account: &str) -> BTreeMap<CallKey, CallCount> {
        self.with(|c| c.accounts.remove(account).unwrap_or_default())
    }

    /// Accounts whose counts are held (those in progress, and the management account).
    pub fn accounts_held(&self) -> usize {
        self.with(|c| c.accounts.len())
    }
}

/// The calls counted between two readings of [`CallStats::totals`].
pub fn since(
    before: &BTreeMap<TotalKey, CallCount>,
    after: &BTreeMap<TotalKey, CallCount>,
) -> BTreeMap<TotalKey, CallCount> {
    after
        .iter()
        .filter_map(|(k, a)| {
            let b = before.get(k).copied().unwrap_or_default();
            let d = CallCount {
                calls: a.calls.saturating_sub(b.calls),
                retries: a.retries.saturating_sub(b.retries),
                throttled: a.throttled.saturating_sub(b.throttled),
            };
            (d != CallCount::default()).then(|| (k.clone(), d))
        })
        .collect()
}

/// `extra` added into `into`.
pub fn add_into(into: &mut BTreeMap<TotalKey, CallCount>, extra: &BTreeMap<TotalKey, CallCount>) {
    for (k, c) in extra {
        into.entry(k.clone()).or_default().add(c);
    }
}

#[derive(Debug, Default, Clone)]
struct Attempt {
    attempts: u64,
    throttled: u64,
    /// The last attempt was answered "no such resource".
    not_found: bool,
}

/// The interceptor; one per client (it knows the client's region, and its account, or that
/// the account is each call's caller's).
#[derive(Debug, Clone)]
pub struct CallCounter {
    /// `None`: the account of the call's [`super::Caller`].
    account: Option<String>,
    region: String,
    stats: Arc<CallStats>,
}

impl CallCounter {
    pub fn new(account: Option<String>, region: String, stats: Arc<CallStats>) -> Self {
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

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(CallStart(std::time::Instant::now()));
        Ok(())
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
            region: self.region.clone(),
            outcome: outcome.into(),
        };
        if let (Some(observe), Some(start)) = (self.stats.latency.get(), cfg.load::<CallStart>()) {
            observe(&key.service, start.0.elapsed().as_secs_f64());
        }
        let count = CallCount { calls: 1, retries: a.attempts.saturating_sub(1), throttled: a.throttled };
        match &self.account {
            Some(account) => self.stats.record(account, key, count),
            // Outside a caller's scope the call had no credentials and failed; it is still
            // counted, so that the fleet's totals show it.
            None => match super::with_caller(Arc::clone) {
                Some(c) => self.stats.record(&c.account_id, key, count),
                None => self.stats.record("unknown", key, count),
            },
        }
        Ok(())
    }
}

#[derive(Debug, Default, Clone)]
struct AttemptSlot(Attempt);

/// When the call began, for its latency.
#[derive(Debug, Clone)]
struct CallStart(std::time::Instant);

impl aws_smithy_types::config_bag::Storable for CallStart {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

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
    use super::{is_not_found, is_throttle, since, CallCount, CallKey, CallStats};

    fn key(op: &str, region: &str) -> CallKey {
        CallKey { service: "iam".into(), operation: op.into(), region: region.into(), outcome: "ok".into() }
    }

    #[test]
    fn an_accounts_counts_are_handed_over_once_and_totals_stay_without_accounts() {
        let stats = CallStats::default();
        let one = CallCount { calls: 1, retries: 0, throttled: 0 };
        let throttled = CallCount { calls: 1, retries: 2, throttled: 2 };
        stats.record("111111111111", key("GetRole", "global"), one);
        stats.record("111111111111", key("GetRole", "global"), throttled);
        stats.record("222222222222", key("GetRole", "global"), one);
        let before = stats.totals();
        stats.record("222222222222", key("ListRoles", "global"), one);
        assert_eq!(stats.accounts_held(), 2);

        let first = stats.take_account("111111111111");
        assert_eq!(first.get(&key("GetRole", "global")), Some(&CallCount { calls: 2, retries: 2, throttled: 2 }));
        assert!(stats.take_account("111111111111").is_empty(), "taken counts are forgotten");
        assert_eq!(stats.accounts_held(), 1);

        let totals = stats.totals();
        assert_eq!(totals.len(), 2, "totals are by service, operation and outcome only: {totals:?}");
        assert_eq!(totals.values().map(|c| c.calls).sum::<u64>(), 4);
        let d = since(&before, &totals);
        assert_eq!(d.len(), 1);
        assert_eq!(d.values().next().map(|c| c.calls), Some(1));
    }

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
