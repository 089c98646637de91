//! Integration-test harness: installs the AWS emulator (moto server from PyPI, plus the
//! project's extension in `emulator/`) into a virtualenv when it is missing, starts one
//! emulator per test on a free 127.0.0.1 port, builds an Organization in it, and runs the
//! real `cm-baseline` binary against it through the standard AWS environment variables.

#![allow(dead_code)]

use serde_json::Value;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const HOME: &str = "ap-northeast-1";
/// Regions a test account keeps active (the rest are excluded in its settings, for speed).
pub const TEST_REGIONS: [&str; 2] = ["ap-northeast-1", "us-east-1"];

/// The checkout under test. Cargo sets `CARGO_MANIFEST_DIR` when it runs a test, so the
/// tests read the sources of the checkout that runs them even when a shared
/// `CARGO_TARGET_DIR` holds a test binary built from another clone of the same tree.
pub fn repo() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The emulator's Python, in `$CM_EMULATOR_VENV` (default `~/.cache/cm-baseline/emulator-venv`,
/// as `scripts/lib.sh` sets it), installed from `tests/support/emulator/requirements.txt`
/// when missing or out of date.
pub fn python() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let venv = std::env::var_os("CM_EMULATOR_VENV").map(PathBuf::from).unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"));
            cache.join("cm-baseline/emulator-venv")
        });
        let py = venv.join("bin/python");
        let reqs = repo().join("tests/support/emulator/requirements.txt");
        let wanted = std::fs::read(&reqs).expect("requirements.txt");
        let ready = venv.join(".cm-ready"); // as scripts/lib.sh ensure_venv marks it
        if std::fs::read(&ready).ok().as_ref() != Some(&wanted) || !py.exists() {
            let ok =
                Command::new("python3").arg("-m").arg("venv").arg(&venv).status().map(|s| s.success()).unwrap_or(false);
            assert!(ok, "cannot create a virtualenv at {} (python3 -m venv)", venv.display());
            let ok = Command::new(&py)
                .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
                .arg(&reqs)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "cannot install the emulator from {}", reqs.display());
            std::fs::write(&ready, &wanted).expect("mark venv ready");
        }
        py
    })
    .clone()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// One emulator process; killed when dropped.
pub struct Emulator {
    child: Child,
    pub endpoint: String,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Emulator {
    pub fn start() -> Self {
        use std::io::BufRead;
        let py = python();
        let log = std::env::temp_dir().join(format!(
            "cm-emulator-{}-{:?}.log",
            std::process::id(),
            std::thread::current().id()
        ));
        let err = std::fs::File::create(&log).expect("emulator log");
        // Port 0: the emulator binds a free port itself and prints it, so two emulators
        // started at once can never race for the same port.
        let mut child = Command::new(py)
            .arg(repo().join("tests/support/emulator/server.py"))
            .args(["--host", "127.0.0.1", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .expect("start emulator");
        let stdout = child.stdout.take().expect("emulator stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            // Keep draining, so that the emulator never blocks on a full pipe.
            for _ in lines {}
        });
        let first = rx.recv_timeout(Duration::from_secs(120)).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("emulator did not start; see {}", log.display())
        });
        let endpoint =
            first.strip_prefix("listening on ").unwrap_or_else(|| panic!("emulator said {first:?}")).to_string();
        Emulator { child, endpoint }
    }

    /// One AWS call as `account` (`management` or a member id), through boto3.
    pub fn aws(&self, account: &str, service: &str, op: &str, params: Value) -> Result<Value, String> {
        self.aws_in(account, service, op, params, HOME)
    }

    pub fn aws_in(&self, account: &str, service: &str, op: &str, params: Value, region: &str) -> Result<Value, String> {
        let out = Command::new(python())
            .arg(repo().join("tests/support/emulator/aws.py"))
            .args([&self.endpoint, account, service, op, &params.to_string(), region])
            .output()
            .expect("run aws.py");
        if out.status.success() {
            serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    }

    /// Like [`aws`](Self::aws), panicking on failure.
    pub fn call(&self, account: &str, service: &str, op: &str, params: Value) -> Value {
        self.aws(account, service, op, params).unwrap_or_else(|e| panic!("{service} {op} as {account}: {e}"))
    }

    /// Creates the Organization and one member account per name, and deploys the member role
    /// into each as the operator's StackSet does (tests/support/emulator/stackset.py); returns
    /// their ids. From then on, AssumeRole into a role nobody made is refused, as on AWS.
    pub fn organization(&self, names: &[&str]) -> Vec<String> {
        self.call("management", "organizations", "create_organization", serde_json::json!({"FeatureSet": "ALL"}));
        self.add_members(names)
    }

    /// Creates member accounts in the Organization, the member role deployed into each as
    /// the operator's StackSet does for an account that joins; returns their ids.
    pub fn add_members(&self, names: &[&str]) -> Vec<String> {
        let ids: Vec<String> = names
            .iter()
            .map(|n| {
                let out = self.call(
                    "management",
                    "organizations",
                    "create_account",
                    serde_json::json!({"Email": format!("{n}@example.com"), "AccountName": n}),
                );
                out["CreateAccountStatus"]["AccountId"].as_str().expect("account id").to_string()
            })
            .collect();
        let out = Command::new(python())
            .arg(repo().join("tests/support/emulator/stackset.py"))
            .arg(&self.endpoint)
            .args(&ids)
            .output()
            .expect("run stackset.py");
        assert!(out.status.success(), "stackset.py: {}", String::from_utf8_lossy(&out.stderr));
        ids
    }
}

/// An emulator, an Organization and a desired-state directory made from the shipped one.
pub struct Fleet {
    pub emu: Emulator,
    pub dir: tempfile::TempDir,
    pub accounts: Vec<String>,
}

impl Fleet {
    /// `members`: (name, tier) of each member account to create and enrol.
    pub fn new(members: &[(&str, &str)]) -> Self {
        let emu = Emulator::start();
        let names: Vec<&str> = members.iter().map(|(n, _)| *n).collect();
        let accounts = emu.organization(&names);
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(&repo().join("desired-state"), dir.path());
        let _ = std::fs::remove_dir_all(dir.path().join("accounts"));
        std::fs::create_dir_all(dir.path().join("accounts")).expect("accounts dir");
        let settings = dir.path().join("settings.yaml");
        let text = std::fs::read_to_string(&settings).expect("settings");
        let excluded: Vec<&str> =
            cm_baseline::desired::names::REGIONS.iter().copied().filter(|r| !TEST_REGIONS.contains(r)).collect();
        let text = text.replace("excluded_regions: []", &format!("excluded_regions: [{}]", excluded.join(", ")));
        std::fs::write(&settings, text).expect("write settings");
        let fleet = Fleet { emu, dir, accounts };
        for ((name, tier), id) in members.iter().zip(fleet.accounts.clone()) {
            fleet.enrol(&id, name, tier, &[]);
        }
        fleet
    }

    pub fn desired(&self) -> &Path {
        self.dir.path()
    }

    /// Writes (or rewrites) the account file of `id`.
    pub fn enrol(&self, id: &str, name: &str, tier: &str, opt_in: &[(&str, bool)]) {
        let mut text = format!("account_id: \"{id}\"\nname: {name}\ntier: {tier}\n");
        if !opt_in.is_empty() {
            text.push_str("opt_in:\n");
            for (f, on) in opt_in {
                text.push_str(&format!("  {f}: {on}\n"));
            }
        }
        std::fs::write(self.desired().join(format!("accounts/{id}.yaml")), text).expect("account file");
    }

    /// `args` followed by `--account ID` for every account of the fleet: how initial setup
    /// is planned again for accounts set up already (a fleet-wide `--initial` covers the
    /// accounts pending onboarding only).
    pub fn every_account(&self, args: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        for a in &self.accounts {
            all.extend(["--account".to_string(), a.clone()]);
        }
        all
    }

    /// Runs the binary with `args` against this fleet's emulator.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run cm-baseline")
    }

    /// The command [`run`](Self::run) runs: the binary with `args`, pointed at this fleet's
    /// emulator, stdin closed, `NO_COLOR` set.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cm-baseline"));
        cmd.arg("--desired-state")
            .arg(self.desired())
            .args(["--log-format", "json"])
            .args(args)
            .env("AWS_ENDPOINT_URL", &self.emu.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", HOME)
            .env_remove("AWS_PROFILE")
            .env("NO_COLOR", "1")
            .env("CM_STATE_DIR", self.state())
            .stdin(Stdio::null());
        cmd
    }

    /// The state directory every command of this fleet shares (journal and ownership
    /// records), as an operator would set `CM_STATE_DIR`.
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Runs with `--format json` and returns the exit code and the parsed report.
    pub fn report(&self, args: &[&str]) -> (i32, Value) {
        self.report_with(args, &[])
    }

    /// Runs with `args`, which ask for `--format json`, and returns the exit code, the parsed
    /// report and stderr (a test of a run that fails yet reports reads both).
    pub fn report_and_stderr(&self, args: &[&str]) -> (Option<i32>, Value, String) {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("no JSON report: {e}: {stderr}"));
        (out.status.code(), report, stderr)
    }

    /// [`report`](Self::report) with environment variables `env` set for the binary.
    pub fn report_with(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        let out = self.command(&all).envs(env.iter().copied()).output().expect("run cm-baseline");
        let code = out.status.code().unwrap_or(-1);
        let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "no JSON report from {args:?} (exit {code}): {e}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (code, report)
    }
}

/// The report entry of `account`.
pub fn account<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["accounts"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["account_id"] == id))
        .unwrap_or_else(|| panic!("{id} not in report: {report}"))
}

/// `(feature, resource_type, action)` of each change of an account entry.
pub fn changes(acct: &Value) -> Vec<(String, String, String)> {
    acct["changes"]
        .as_array()
        .map(|a| a.iter().map(|c| (s(&c["feature"]), s(&c["resource_type"]), s(&c["action"]))).collect())
        .unwrap_or_default()
}

/// `(feature, reason)` of each skip of an account entry.
pub fn skips(acct: &Value) -> Vec<(String, String)> {
    acct["skips"]
        .as_array()
        .map(|a| a.iter().map(|c| (s(&c["feature"]), s(&c["reason"]))).collect())
        .unwrap_or_default()
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).expect("copy");
        }
    }
}

/// A free port on 127.0.0.1, for the daemon's endpoint.
pub fn port() -> u16 {
    free_port()
}

impl Fleet {
    /// Starts `cm-baseline daemon` against this fleet (stdout/stderr to `<state>/daemon.log`).
    pub fn daemon(&self, state: &Path, listen_port: u16, args: &[&str]) -> Child {
        self.daemon_with(state, listen_port, args, &[])
    }

    /// [`daemon`](Self::daemon) with environment variables `env` set (`CM_JOURNAL`, ...).
    pub fn daemon_with(&self, state: &Path, listen_port: u16, args: &[&str], env: &[(&str, &str)]) -> Child {
        std::fs::create_dir_all(state).expect("state dir");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(state.join("daemon.log")).expect("log");
        Command::new(env!("CARGO_BIN_EXE_cm-baseline"))
            .arg("--desired-state")
            .arg(self.desired())
            .args(["--log-format", "json", "daemon", "--listen", &format!("127.0.0.1:{listen_port}")])
            .arg("--state-dir")
            .arg(state)
            .args(args)
            .env("AWS_ENDPOINT_URL", &self.emu.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", HOME)
            .env("CM_LOG", "info")
            .env_remove("AWS_PROFILE")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start daemon")
    }

    /// Replaces `from` by `to` in settings.yaml.
    pub fn edit_settings(&self, from: &str, to: &str) {
        let path = self.desired().join("settings.yaml");
        let text = std::fs::read_to_string(&path).expect("settings");
        assert!(text.contains(from), "settings.yaml has no {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write settings");
    }
}

/// POSTs `body` to the emulator at `endpoint` (`http://host:port`), test hook `path`; from
/// any thread. Panics unless it answers 200.
pub fn post_hook(endpoint: &str, path: &str, body: Value) {
    use std::io::{Read, Write};
    let body = body.to_string();
    let addr = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("emulator");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"), "{path}: {answer}");
}

/// The bucket policy AWS's CloudTrail guide gives, for a customer's own trail: AWS (and the
/// emulator) refuses CreateTrail to a bucket without it.
pub fn cloudtrail_bucket_policy(bucket: &str, account: &str) -> String {
    serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:GetBucketAcl",
         "Resource": format!("arn:aws:s3:::{bucket}")},
        {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:PutObject",
         "Resource": format!("arn:aws:s3:::{bucket}/AWSLogs/{account}/*"),
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}}]})
    .to_string()
}

/// The bucket policy AWS's Config guide gives for a delivery channel's bucket.
pub fn config_bucket_policy(bucket: &str, account: &str) -> String {
    let source = serde_json::json!({"StringEquals": {"AWS:SourceAccount": account}});
    serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "config.amazonaws.com"}, "Action": "s3:GetBucketAcl",
         "Resource": format!("arn:aws:s3:::{bucket}"), "Condition": source},
        {"Effect": "Allow", "Principal": {"Service": "config.amazonaws.com"}, "Action": "s3:PutObject",
         "Resource": format!("arn:aws:s3:::{bucket}/AWSLogs/{account}/Config/*"),
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "AWS:SourceAccount": account}}}]})
    .to_string()
}

/// `GET path` on 127.0.0.1:`port`: (status, body), or `None` if nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http(port, "GET", path, "")
}

/// An HTTP/1.1 request with extra header lines `headers` (each ending in `\r\n`).
pub fn http(port: u16, method: &str, path: &str, headers: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n{headers}Connection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

/// Polls `cond` every 200 ms until it holds, or panics after `secs` seconds with `what`.
pub fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Sends SIGTERM to `child` and waits for its exit code.
pub fn terminate(child: &mut Child) -> Option<i32> {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Emulator {
    /// Sets the regions EC2 DescribeRegions reports as active for `account` (the emulator
    /// extension's `/cm-emulator/regions` hook).
    pub fn set_regions(&self, account: &str, regions: &[&str]) {
        self.hook("/cm-emulator/regions", serde_json::json!({"account_id": account, "regions": regions}));
    }

    /// Makes STS AssumeRole into each of `accounts` answer AccessDenied, as AWS does when the
    /// role does not trust the caller (the extension's `/cm-emulator/deny-assume-role` hook);
    /// an empty list lets every AssumeRole through again.
    pub fn deny_assume_role(&self, accounts: &[&str]) {
        self.hook("/cm-emulator/deny-assume-role", serde_json::json!({"account_ids": accounts}));
    }

    /// POSTs `body` to the extension's test hook at `path`; panics unless it answers 200.
    pub fn hook(&self, path: &str, body: Value) {
        post_hook(&self.endpoint, path, body)
    }
}

/// Runs `f` to completion on a runtime of its own (timers and sockets enabled), from a
/// test's plain thread.
pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime").block_on(f)
}

impl Emulator {
    /// The SDK's configuration for calls to this emulator as the management account.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(HOME))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "test"))
            .load()
            .await
    }

    /// Makes a journal table and a bucket for its large values in the management account,
    /// as deploy/cloudformation/cm-baseline-journal.yaml does; returns the `--journal`
    /// (`CM_JOURNAL`) value that names them.
    pub async fn journal_table(&self, table: &str) -> String {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        let sdk = self.sdk().await;
        let attr = |n: &str| {
            AttributeDefinition::builder().attribute_name(n).attribute_type(ScalarAttributeType::S).build().unwrap()
        };
        let key = |n: &str, t| KeySchemaElement::builder().attribute_name(n).key_type(t).build().unwrap();
        aws_sdk_dynamodb::Client::new(&sdk)
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk"))
            .attribute_definitions(attr("sk"))
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!("create table {table}: {}", aws_smithy_types::error::display::DisplayErrorContext(&e))
            });
        let bucket = format!("{}-large", table.to_ascii_lowercase().replace('_', "-"));
        let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
        s3.create_bucket()
            .bucket(&bucket)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::ApNortheast1)
                    .build(),
            )
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!("create bucket {bucket}: {}", aws_smithy_types::error::display::DisplayErrorContext(&e))
            });
        format!("dynamodb:{table},s3://{bucket}/journal/")
    }
}
