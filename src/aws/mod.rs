//! The one place every AWS call goes through.
//!
//! [`Fleet`] holds the management account's configuration. [`Fleet::enter`] assumes the
//! member role and gives an [`AccountSession`]. Every client carries a
//! [`counter::CallCounter`] interceptor, so each call (and each retry) is counted by
//! service, operation, account, region and outcome, whoever makes it; every call is awaited
//! through [`AccountSession::call`], which bounds concurrency per account and fleet-wide.
//! Retries with backoff on throttling are the SDK's standard retry strategy, with the
//! attempt budget set here.
//!
//! Member accounts share one set of SDK clients (one per service and region, built on first
//! use), which carry no account of their own: [`AccountSession::call`] runs each call in the
//! scope of its session's [`Caller`], and the shared clients' credentials and counter take
//! the account from there. A call made outside a member session's `call` has no
//! credentials and fails; it can never be signed for another account. One set instead of
//! one per account keeps a fleet run's memory to what the accounts in flight observe (an
//! SDK client holds its whole configuration, tens of kilobytes, and an account at 17
//! Regions would build about 200) and saves building them for each account. The management
//! account's session has clients of its own, with its own credentials.

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

/// The member account a call is made for, and its credentials: the scope in which
/// [`AccountSession::call`] runs each of its calls.
#[derive(Debug)]
pub struct Caller {
    pub account_id: String,
    credentials: Arc<credentials::AssumeRoleCredentials>,
}

tokio::task_local! {
    /// The caller of the call being made, read by the member accounts' shared clients.
    static CALLER: Arc<Caller>;
}

/// Runs `f` with the caller of the call in progress, if any.
fn with_caller<T>(f: impl FnOnce(&Arc<Caller>) -> T) -> Option<T> {
    CALLER.try_with(f).ok()
}

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
    home_region: String,
    limits: CallLimits,
    fleet_sem: Arc<Semaphore>,
    pub stats: Arc<CallStats>,
    /// AWS's documented rates, shared by every account's workers.
    pub pacing: Arc<pacing::Pacing>,
    management: Arc<AccountSession>,
    /// The clients every member account's calls go through.
    members: Arc<Clients>,
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
            // The attempt timeout above bounds every answer, and no call streams a large
            // body (a published report, the largest, is a few megabytes in memory); the SDK's
            // throughput watch over each body (a wrapper and a timer per call) would only
            // add CPU to each of them.
            .stalled_stream_protection(aws_config::stalled_stream_protection::StalledStreamProtectionConfig::disabled())
            .load()
            .await;
        Self::on(base, home_region, limits, stats)
    }

    /// The fleet on `base`, the management account's configuration.
    fn on(base: SdkConfig, home_region: &str, limits: CallLimits, stats: Arc<CallStats>) -> Self {
        let fleet_sem = Arc::new(Semaphore::new(limits.fleet_concurrency.max(1)));
        let pacing = Arc::new(pacing::Pacing::default());
        let management = Arc::new(AccountSession::new(
            "management".into(),
            Arc::new(Clients::new(base.clone(), Some("management".into()), stats.clone())),
            None,
            home_region.to_string(),
            &limits,
            fleet_sem.clone(),
            pacing.clone(),
        ));
        // The members' clients resolve credentials for each call from its caller; the SDK's
        // identity cache, shared by the clients of one configuration, would hand one
        // account's credentials to the next, so there is none (each caller keeps its own).
        let member_sdk = base
            .clone()
            .into_builder()
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                credentials::CallersCredentials,
            ))
            .identity_cache(aws_config::identity::IdentityCache::no_cache())
            .build();
        let members = Arc::new(Clients::new(member_sdk, None, stats.clone()));
        Self { home_region: home_region.to_string(), limits, fleet_sem, stats, pacing, management, members }
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
        let provider = Arc::new(credentials::AssumeRoleCredentials::new(
            self.management.sts(),
            role_arn,
            external_id.map(str::to_string),
            session_name.to_string(),
        ));
        self.management.call(provider.refresh()).await?;
        let caller = Arc::new(Caller { account_id: account_id.to_string(), credentials: provider });
        Ok(AccountSession::new(
            account_id.to_string(),
            self.members.clone(),
            Some(caller),
            self.home_region.clone(),
            &self.limits,
            self.fleet_sem.clone(),
            self.pacing.clone(),
        ))
    }
}

/// The HTTPS client every SDK client of the process uses: the SDK's default one (hyper 1,
/// rustls with aws-lc, the proxy settings of the environment), built once.
///
/// Without it, every SDK client (one per service and region, the management account's and
/// the members' shared ones) builds its own: it loads and parses the system's root
/// certificates again, and keeps its own connection pool. Shared, the certificates are read
/// once and connections to an endpoint are kept and reused by every client: requests are
/// signed with each account's own credentials, whatever connection carries them.
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
        // Every call of every member account looks its client up here: no allocation once
        // the client is built.
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get(region) {
            return c.clone();
        }
        map.entry(region.to_string()).or_insert_with(make).clone()
    }
}

/// SDK clients of one configuration, per service and region, all counted: the management
/// account's own, or those every member account shares.
struct Clients {
    sdk: SdkConfig,
    /// The account the calls are counted for: fixed (the management account's clients), or
    /// `None`, each call's caller (the members' clients).
    account: Option<String>,
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
}

impl Clients {
    fn new(sdk: SdkConfig, account: Option<String>, stats: Arc<CallStats>) -> Self {
        Self {
            sdk,
            account,
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
        }
    }

    fn counter(&self, region: &str) -> counter::CallCounter {
        counter::CallCounter::new(self.account.clone(), region.to_string(), self.stats.clone())
    }
}

/// One account's view of AWS: its clients, its limits, its memoised reads.
pub struct AccountSession {
    pub account_id: String,
    clients: Arc<Clients>,
    /// The scope of each call (`None` for the management account, whose clients are its own).
    caller: Option<Arc<Caller>>,
    home_region: String,
    account_sem: Semaphore,
    account_concurrency: usize,
    fleet_sem: Arc<Semaphore>,
    memo: Mutex<HashMap<String, Memo>>,
    pacing: Arc<pacing::Pacing>,
}

type Memo = Arc<tokio::sync::OnceCell<Arc<dyn std::any::Any + Send + Sync>>>;

macro_rules! client {
    ($(#[$m:meta])* $name:ident, $krate:ident) => {
        $(#[$m])*
        pub fn $name(&self, region: &str) -> $krate::Client {
            let c = &self.clients;
            c.$name.get(region, || {
                let conf = $krate::config::Builder::from(&c.sdk)
                    .region(SdkRegion::new(region.to_string()))
                    .interceptor(c.counter(region))
                    .retry_classifier(no_such_host::NoSuchHost);
                $krate::Client::from_conf(conf.build())
            })
        }
    };
}

impl AccountSession {
    fn new(
        account_id: String,
        clients: Arc<Clients>,
        caller: Option<Arc<Caller>>,
        home_region: String,
        limits: &CallLimits,
        fleet_sem: Arc<Semaphore>,
        pacing: Arc<pacing::Pacing>,
    ) -> Self {
        Self {
            account_id,
            clients,
            caller,
            home_region,
            account_sem: Semaphore::new(limits.account_concurrency.max(1)),
            account_concurrency: limits.account_concurrency.max(1),
            fleet_sem,
            memo: Mutex::new(HashMap::new()),
            pacing,
        }
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
    ///
    /// The call runs in the scope of this session's [`Caller`]: the member accounts' shared
    /// clients sign it with this account's credentials and count it for this account.
    pub async fn call<T>(&self, fut: impl Future<Output = T>) -> T {
        let _account = self.account_sem.acquire().await;
        let _fleet = self.fleet_sem.acquire().await;
        match &self.caller {
            Some(caller) => CALLER.scope(caller.clone(), fut).await,
            None => fut.await,
        }
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
        let (c, region) = (&self.clients, self.home_region.clone());
        c.sts.get(&region, || {
            let conf = aws_sdk_sts::config::Builder::from(&c.sdk)
                .region(SdkRegion::new(region.clone()))
                .interceptor(c.counter(&region))
                .retry_classifier(no_such_host::NoSuchHost);
            aws_sdk_sts::Client::from_conf(conf.build())
        })
    }

    /// Organizations is global; its calls go to the home region's configuration.
    pub fn organizations(&self) -> aws_sdk_organizations::Client {
        let (c, region) = (&self.clients, self.home_region.clone());
        c.organizations.get(&region, || {
            let conf = aws_sdk_organizations::config::Builder::from(&c.sdk)
                .region(SdkRegion::new(region.clone()))
                .interceptor(c.counter("global"))
                .retry_classifier(no_such_host::NoSuchHost);
            aws_sdk_organizations::Client::from_conf(conf.build())
        })
    }

    /// IAM is global; counted under region `global`.
    pub fn iam(&self) -> aws_sdk_iam::Client {
        let (c, region) = (&self.clients, self.home_region.clone());
        c.iam.get(&region, || {
            let conf = aws_sdk_iam::config::Builder::from(&c.sdk)
                .region(SdkRegion::new(region.clone()))
                .interceptor(c.counter("global"))
                .retry_classifier(no_such_host::NoSuchHost);
            aws_sdk_iam::Client::from_conf(conf.build())
        })
    }

    /// S3 in `region`; path-style addressing when an endpoint override points at an emulator.
    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let c = &self.clients;
        c.s3.get(region, || {
            let conf = aws_sdk_s3::config::Builder::from(&c.sdk)
                .region(SdkRegion::new(region.to_string()))
                .force_path_style(endpoint::overridden(&c.sdk, "S3"))
                .interceptor(c.counter(region))
                .retry_classifier(no_such_host::NoSuchHost);
            aws_sdk_s3::Client::from_conf(conf.build())
        })
    }

    /// S3 Control in `region` (account-level settings).
    pub fn s3control(&self, region: &str) -> aws_sdk_s3control::Client {
        let c = &self.clients;
        c.s3control.get(region, || {
            let mut conf = aws_sdk_s3control::config::Builder::from(&c.sdk)
                .region(SdkRegion::new(region.to_string()))
                .interceptor(c.counter(region))
                .retry_classifier(no_such_host::NoSuchHost);
            if endpoint::overridden(&c.sdk, "S3_CONTROL") {
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

/// A task, aborted when whoever awaits it stops waiting (drops this future), as the work
/// would have been dropped had it run in the waiter's own task. A panic in the task is
/// the waiter's, as it would have been.
pub struct AbortOnDrop<T>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<T> {
    type Output = T;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<T> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|joined| match joined {
            Ok(value) => value,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only this guard aborts the task, and then nobody polls it any more; or the
            // runtime is shutting down, and nothing is left to answer to.
            Err(e) => panic!("a task ended without an answer: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::SharedCredentialsProvider;
    use aws_credential_types::Credentials;

    type Seen = Arc<Mutex<Vec<(String, String)>>>;

    /// An IAM endpoint that answers every request "no such entity" and keeps, for each, the
    /// operation asked for and the access key that signed it.
    async fn endpoint() -> (String, Seen) {
        let seen: Seen = Arc::default();
        let keep = seen.clone();
        let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: String| {
            let keep = keep.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                let key = auth.split("Credential=").nth(1).and_then(|c| c.split('/').next()).unwrap_or("");
                let action = body.split('&').find_map(|kv| kv.strip_prefix("Action=")).unwrap_or("");
                keep.lock().unwrap_or_else(|p| p.into_inner()).push((action.to_string(), key.to_string()));
                (
                    axum::http::StatusCode::NOT_FOUND,
                    "<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>none</Message>\
                     </Error><RequestId>1</RequestId></ErrorResponse>",
                )
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, seen)
    }

    fn member(fleet: &Fleet, sts: &aws_sdk_sts::Client, account: &str, key: &str) -> AccountSession {
        let creds = Credentials::new(key, "secret", Some("token".into()), None, "test");
        let role = format!("arn:aws:iam::{account}:role/member");
        let caller = Arc::new(Caller {
            account_id: account.into(),
            credentials: Arc::new(credentials::AssumeRoleCredentials::holding(sts.clone(), &role, creds)),
        });
        AccountSession::new(
            account.into(),
            fleet.members.clone(),
            Some(caller),
            "us-east-1".into(),
            &fleet.limits,
            fleet.fleet_sem.clone(),
            fleet.pacing.clone(),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn member_accounts_share_clients_and_each_call_is_signed_and_counted_for_its_own_account() {
        let (url, seen) = endpoint().await;
        let base = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(SdkRegion::new("us-east-1"))
            .endpoint_url(&url)
            .http_client(shared_http_client())
            .retry_config(RetryConfig::disabled())
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKMANAGEMENT",
                "secret",
                None,
                None,
                "test",
            )))
            .build();
        let stats = Arc::new(CallStats::default());
        let fleet = Fleet::on(base, "us-east-1", CallLimits::default(), stats.clone());
        let sts = fleet.management().sts();
        let a = member(&fleet, &sts, "111111111111", "AKIAACCOUNTA");
        let b = member(&fleet, &sts, "222222222222", "AKIAACCOUNTB");

        // Interleaved, concurrent: A asks one operation, B another, through the same clients.
        let calls = (0..20).map(|i| {
            let (a, b) = (&a, &b);
            async move {
                if i % 2 == 0 {
                    a.call(a.iam().get_account_password_policy().send()).await.map(|_| ()).is_err()
                } else {
                    b.call(b.iam().get_account_summary().send()).await.map(|_| ()).is_err()
                }
            }
        });
        let failed = futures::future::join_all(calls).await;
        assert!(failed.iter().all(|f| *f), "the endpoint answers NoSuchEntity to each");
        {
            let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
            assert_eq!(seen.len(), 20, "{seen:?}");
            for (action, key) in seen.iter() {
                let expected = if action == "GetAccountPasswordPolicy" { "AKIAACCOUNTA" } else { "AKIAACCOUNTB" };
                assert_eq!(key, expected, "{action} signed with the other account's key: {seen:?}");
            }
        }
        let counted = |account: &str| -> Vec<(String, u64)> {
            stats.take_account(account).into_iter().map(|(k, c)| (k.operation, c.calls)).collect()
        };
        assert_eq!(counted("111111111111"), vec![("GetAccountPasswordPolicy".to_string(), 10)]);
        assert_eq!(counted("222222222222"), vec![("GetAccountSummary".to_string(), 10)]);

        // The same shared client, outside a session's call: no credentials, nothing sent.
        let outside = a.iam().get_account_password_policy().send().await;
        let err = match outside {
            Ok(_) => panic!("a call outside the session's scope was answered"),
            Err(e) => aws_smithy_types::error::display::DisplayErrorContext(&e).to_string(),
        };
        assert!(err.contains("outside its session's `call`"), "{err}");
        assert_eq!(seen.lock().unwrap_or_else(|p| p.into_inner()).len(), 20, "nothing was sent");
        assert!(a.clients.iam.0.lock().unwrap_or_else(|p| p.into_inner()).len() == 1);
        assert!(Arc::ptr_eq(&a.clients, &b.clients), "one set of clients for every member account");
    }
}
