//! The one place every AWS call goes through.
//!
//! [`Fleet`] holds the management account's configuration. [`Fleet::enter`] assumes the
//! member role and gives an [`AccountSession`], which builds per-region clients lazily.
//! Every client carries a [`counter::CallCounter`] interceptor, so each call (and each
//! retry) is counted by service, operation, account, region and outcome, whoever makes it;
//! every call is awaited through [`AccountSession::call`], which bounds concurrency per
//! account and fleet-wide. Retries with backoff on throttling are the SDK's standard
//! retry strategy, with the attempt budget set here.

pub mod counter;
pub mod credentials;
pub mod endpoint;
pub mod error;
pub mod no_such_host;
pub mod pacing;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_types::region::Region as SdkRegion;
pub use counter::{CallKey, CallStats};
pub use error::{code_of, fault_of, AwsError, Fault};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Limits and retry budget for AWS calls.
#[derive(Clone, Debug)]
pub struct CallLimits {
    /// Calls in flight at once across the whole fleet.
    pub fleet_concurrency: usize,
    /// Calls in flight at once within one account.
    pub account_concurrency: usize,
    /// Attempts per call, the first included (throttling and transient errors are retried).
    pub max_attempts: u32,
}

impl Default for CallLimits {
    fn default() -> Self {
        Self { fleet_concurrency: 32, account_concurrency: 4, max_attempts: 8 }
    }
}

/// The management account's view of AWS, and the shared limits and counters.
#[derive(Clone)]
pub struct Fleet {
    base: SdkConfig,
    home_region: String,
    limits: CallLimits,
    fleet_sem: Arc<Semaphore>,
    pub stats: Arc<CallStats>,
    /// AWS's documented rates, shared by every account's workers.
    pub pacing: Arc<pacing::Pacing>,
    management: Arc<AccountSession>,
}

impl Fleet {
    /// Loads the default credential chain and the standard AWS environment variables
    /// (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`, `AWS_REGION`, ...).
    pub async fn from_env(home_region: &str, limits: CallLimits) -> Self {
        Self::with_stats(home_region, limits, Arc::new(CallStats::default())).await
    }

    /// Like [`from_env`](Self::from_env), counting into `stats` (the daemon keeps one set
    /// of counts across runs).
    pub async fn with_stats(home_region: &str, limits: CallLimits, stats: Arc<CallStats>) -> Self {
        let base = aws_config::defaults(BehaviorVersion::latest())
            .http_client(shared_http_client())
            .region(SdkRegion::new(home_region.to_string()))
            .retry_config(RetryConfig::standard().with_max_attempts(limits.max_attempts))
            // An answer that does not come is a timeout, which the SDK retries, rather than a
            // call (and its permits) held for good.
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(std::time::Duration::from_secs(10))
                    .operation_attempt_timeout(std::time::Duration::from_secs(60))
                    .build(),
            )
            .load()
            .await;
        let fleet_sem = Arc::new(Semaphore::new(limits.fleet_concurrency.max(1)));
        let pacing = Arc::new(pacing::Pacing::default());
        let management = Arc::new(AccountSession::new(
            "management".into(),
            base.clone(),
            home_region.to_string(),
            &limits,
            fleet_sem.clone(),
            stats.clone(),
            pacing.clone(),
        ));
        Self { base, home_region: home_region.to_string(), limits, fleet_sem, stats, pacing, management }
    }

    /// The session of the management account (Organizations, STS).
    pub fn management(&self) -> &AccountSession {
        &self.management
    }

    /// Assumes `role_name` in `account_id` and returns a session for that account. The
    /// first AssumeRole happens here, so that a denied role fails the account at once; it
    /// is a call of the management account, within that session's limits. (Renewals, an
    /// hour later, happen inside a member call that already holds a fleet permit, so they
    /// do not take another.)
    pub async fn enter(
        &self,
        account_id: &str,
        role_name: &str,
        external_id: Option<&str>,
        session_name: &str,
    ) -> Result<AccountSession, AwsError> {
        let role_arn = format!("arn:aws:iam::{account_id}:role/{role_name}");
        let provider = credentials::AssumeRoleCredentials::new(
            self.management.sts(),
            role_arn,
            external_id.map(str::to_string),
            session_name.to_string(),
        );
        self.management.call(provider.refresh()).await?;
        let config = self
            .base
            .clone()
            .into_builder()
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(provider))
            .build();
        Ok(AccountSession::new(
            account_id.to_string(),
            config,
            self.home_region.clone(),
            &self.limits,
            self.fleet_sem.clone(),
            self.stats.clone(),
            self.pacing.clone(),
        ))
    }
}

/// The HTTPS client every SDK client of the process uses: the SDK's default one (hyper 1,
/// rustls with aws-lc, the proxy settings of the environment), built once.
///
/// Without it, every SDK client (one per account, service and region) builds its own: it
/// loads and parses the system's root certificates again, and keeps its own connection
/// pool, so that each account's first call to each regional endpoint opens a new connection
/// (and, against AWS, a new TLS handshake). Shared, the certificates are read once and
/// connections to an endpoint are kept and reused across accounts: requests are signed
/// with each account's own credentials, whatever connection carries them.
fn shared_http_client() -> SharedHttpClient {
    use aws_smithy_http_client::{proxy::ProxyConfig, tls, Builder, ConnectorBuilder};
    let client = Builder::new().build_with_connector_fn(|settings, components| {
        let mut conn =
            ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc));
        conn.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            conn.set_sleep_impl(components.sleep_impl());
        }
        conn.set_proxy_config(Some(ProxyConfig::from_env()));
        conn.build()
    });
    SharedHttpClient::new(BuiltOnce(client))
}

/// The SDK's client validates itself each time an SDK client is built on it, by building a
/// whole new connector (root certificates included) and dropping it. Its connectors are
/// built once per set of timeouts and kept, on first use; this wrapper leaves out that
/// throw-away build, and only that.
#[derive(Debug)]
struct BuiltOnce(SharedHttpClient);

impl HttpClient for BuiltOnce {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// Per-region clients of one service, built on first use.
struct ClientCache<C>(Mutex<HashMap<String, C>>);

impl<C: Clone> ClientCache<C> {
    fn new() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
    fn get(&self, region: &str, make: impl FnOnce() -> C) -> C {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(region.to_string()).or_insert_with(make).clone()
    }
}

/// One account's clients, all counted and limited.
pub struct AccountSession {
    pub account_id: String,
    sdk: SdkConfig,
    home_region: String,
    account_sem: Semaphore,
    account_concurrency: usize,
    fleet_sem: Arc<Semaphore>,
    stats: Arc<CallStats>,
    sts: ClientCache<aws_sdk_sts::Client>,
    organizations: ClientCache<aws_sdk_organizations::Client>,
    iam: ClientCache<aws_sdk_iam::Client>,
    s3: ClientCache<aws_sdk_s3::Client>,
    s3control: ClientCache<aws_sdk_s3control::Client>,
    kms: ClientCache<aws_sdk_kms::Client>,
    cloudtrail: ClientCache<aws_sdk_cloudtrail::Client>,
    ec2: ClientCache<aws_sdk_ec2::Client>,
    config: ClientCache<aws_sdk_config::Client>,
    securityhub: ClientCache<aws_sdk_securityhub::Client>,
    guardduty: ClientCache<aws_sdk_guardduty::Client>,
    detective: ClientCache<aws_sdk_detective::Client>,
    accessanalyzer: ClientCache<aws_sdk_accessanalyzer::Client>,
    computeoptimizer: ClientCache<aws_sdk_computeoptimizer::Client>,
    eventbridge: ClientCache<aws_sdk_eventbridge::Client>,
    sfn: ClientCache<aws_sdk_sfn::Client>,
    memo: Mutex<HashMap<String, Memo>>,
    pacing: Arc<pacing::Pacing>,
}

type Memo = Arc<tokio::sync::OnceCell<Arc<dyn std::any::Any + Send + Sync>>>;

macro_rules! client {
    ($(#[$m:meta])* $name:ident, $krate:ident) => {
        $(#[$m])*
        pub fn $name(&self, region: &str) -> $krate::Client {
            self.$name.get(region, || {
                let conf = $krate::config::Builder::from(&self.sdk)
                    .region(SdkRegion::new(region.to_string()))
                    .interceptor(self.counter(region))
                .retry_classifier(no_such_host::NoSuchHost);
                $krate::Client::from_conf(conf.build())
            })
        }
    };
}

impl AccountSession {
    fn new(
        account_id: String,
        config: SdkConfig,
        home_region: String,
        limits: &CallLimits,
        fleet_sem: Arc<Semaphore>,
        stats: Arc<CallStats>,
        pacing: Arc<pacing::Pacing>,
    ) -> Self {
        Self {
            account_id,
            sdk: config,
            home_region,
            account_sem: Semaphore::new(limits.account_concurrency.max(1)),
            account_concurrency: limits.account_concurrency.max(1),
            fleet_sem,
            stats,
            sts: ClientCache::new(),
            organizations: ClientCache::new(),
            iam: ClientCache::new(),
            s3: ClientCache::new(),
            s3control: ClientCache::new(),
            kms: ClientCache::new(),
            cloudtrail: ClientCache::new(),
            ec2: ClientCache::new(),
            config: ClientCache::new(),
            securityhub: ClientCache::new(),
            guardduty: ClientCache::new(),
            detective: ClientCache::new(),
            accessanalyzer: ClientCache::new(),
            computeoptimizer: ClientCache::new(),
            eventbridge: ClientCache::new(),
            sfn: ClientCache::new(),
            memo: Mutex::new(HashMap::new()),
            pacing,
        }
    }

    fn counter(&self, region: &str) -> counter::CallCounter {
        counter::CallCounter::new(self.account_id.clone(), region.to_string(), self.stats.clone())
    }

    pub fn home_region(&self) -> &str {
        &self.home_region
    }

    /// AWS calls this account may have in flight at once.
    pub fn account_concurrency(&self) -> usize {
        self.account_concurrency
    }

    /// The result of `read` under `key`, read once per observation however many resources
    /// ask for it (concurrent askers wait for the one call). For account-wide list calls
    /// (ListBuckets, ListAliases) that several resources need.
    pub async fn memo<T, F, Fut>(&self, key: &str, read: F) -> Result<T, AwsError>
    where
        T: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
    {
        let cell = self.memo.lock().unwrap_or_else(|p| p.into_inner()).entry(key.to_string()).or_default().clone();
        let value = cell
            .get_or_try_init(|| async { read().await.map(|v| Arc::new(v) as Arc<dyn std::any::Any + Send + Sync>) })
            .await?;
        value.downcast_ref::<T>().cloned().ok_or_else(|| AwsError::new("internal", format!("memo {key}: another type")))
    }

    /// Forgets memoised reads: called before every observation and every apply, so that
    /// nothing read before a change is trusted after it.
    pub fn forget(&self) {
        self.memo.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Awaits one AWS call within the account's and the fleet's concurrency limits.
    ///
    /// The account's permit is taken first: a call queued behind its own account's limit
    /// must not hold one of the fleet's permits, or a few accounts with many pending reads
    /// would fill the fleet's limit with waiting calls while other accounts sit idle.
    pub async fn call<T>(&self, fut: impl Future<Output = T>) -> T {
        let _account = self.account_sem.acquire().await;
        let _fleet = self.fleet_sem.acquire().await;
        fut.await
    }

    /// Like [`call`](Self::call), for an operation AWS limits to a low rate per account and
    /// Region (`securityhub:BatchEnableStandards`): waits first, if the rate requires, as
    /// [`pacing::RATES`] says, holding no permit meanwhile.
    pub async fn call_paced<T>(&self, region: &str, op: &'static str, fut: impl Future<Output = T>) -> T {
        let wait = self.pacing.reserve(&self.account_id, region, op);
        if !wait.is_zero() {
            tracing::info!(account = %self.account_id, region, operation = op, wait_ms = wait.as_millis() as u64, "paced");
            tokio::time::sleep(wait).await;
        }
        self.call(fut).await
    }

    /// The STS client of the home region.
    pub fn sts(&self) -> aws_sdk_sts::Client {
        let region = self.home_region.clone();
        self.sts.get(&region, || {
            let conf = aws_sdk_sts::config::Builder::from(&self.sdk)
                .region(SdkRegion::new(region.clone()))
                .interceptor(self.counter(&region))
                .retry_classifier(no_such_host::NoSuchHost);
            aws_sdk_sts::Client::from_conf(conf.build())
        })
    }

    /// Organizations is global; its calls go to the home region's configuration.
    pub fn organizations(&self) -> aws_sdk_organizations::Client {
        let region = self.home_region.clone();
        self.organizations.get(&region, || {
            let conf = aws_sdk_organizations::config::Builder::from(&self.sdk)
                .region(SdkRegion::new(region.clone()))
                .interceptor(self.counter("global"))
                .retry_classifier(no_such_host::NoSuchHost);
            aws_sdk_organizations::Client::from_conf(conf.build())
        })
    }

    /// IAM is global; counted under region `global`.
    pub fn iam(&self) -> aws_sdk_iam::Client {
        let region = self.home_region.clone();
        self.iam.get(&region, || {
            let conf = aws_sdk_iam::config::Builder::from(&self.sdk)
                .region(SdkRegion::new(region.clone()))
                .interceptor(self.counter("global"))
                .retry_classifier(no_such_host::NoSuchHost);
            aws_sdk_iam::Client::from_conf(conf.build())
        })
    }

    /// S3 in `region`; path-style addressing when an endpoint override points at an emulator.
    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        self.s3.get(region, || {
            let conf = aws_sdk_s3::config::Builder::from(&self.sdk)
                .region(SdkRegion::new(region.to_string()))
                .force_path_style(endpoint::overridden(&self.sdk, "S3"))
                .interceptor(self.counter(region))
                .retry_classifier(no_such_host::NoSuchHost);
            aws_sdk_s3::Client::from_conf(conf.build())
        })
    }

    /// S3 Control in `region` (account-level settings).
    pub fn s3control(&self, region: &str) -> aws_sdk_s3control::Client {
        self.s3control.get(region, || {
            let mut conf = aws_sdk_s3control::config::Builder::from(&self.sdk)
                .region(SdkRegion::new(region.to_string()))
                .interceptor(self.counter(region))
                .retry_classifier(no_such_host::NoSuchHost);
            if endpoint::overridden(&self.sdk, "S3_CONTROL") {
                conf = conf.endpoint_resolver(endpoint::NoAccountHostPrefix::default());
            }
            aws_sdk_s3control::Client::from_conf(conf.build())
        })
    }

    client!(
        /// KMS in `region`.
        kms, aws_sdk_kms
    );
    client!(
        /// CloudTrail in `region`.
        cloudtrail, aws_sdk_cloudtrail
    );
    client!(
        /// EC2 in `region`.
        ec2, aws_sdk_ec2
    );
    client!(
        /// AWS Config in `region`.
        config, aws_sdk_config
    );
    client!(
        /// Security Hub in `region`.
        securityhub, aws_sdk_securityhub
    );
    client!(
        /// GuardDuty in `region`.
        guardduty, aws_sdk_guardduty
    );
    client!(
        /// Detective in `region`.
        detective, aws_sdk_detective
    );
    client!(
        /// IAM Access Analyzer in `region`.
        accessanalyzer, aws_sdk_accessanalyzer
    );
    client!(
        /// Compute Optimizer in `region`.
        computeoptimizer, aws_sdk_computeoptimizer
    );
    client!(
        /// EventBridge in `region`.
        eventbridge, aws_sdk_eventbridge
    );
    client!(
        /// Step Functions in `region`.
        sfn, aws_sdk_sfn
    );
}
