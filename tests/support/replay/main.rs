//! Replay endpoint for the fleet benchmark (test support; not part of the product binary).
//!
//! Answers AWS requests from a recording of the emulator's answers (made by `record.py`
//! beside this file, for a converged fleet), after an injected latency, so that
//! `cm-baseline` runs at AWS-like latencies without the emulator's CPU in the way.
//!
//! A recording of a few *template* accounts stands for a fleet of any size: `--fleet FILE`
//! (JSON `{"accounts": [{"id": "...", "name": "...", "email": "...", "template": "..."}]}`)
//! names each account and the recorded account it behaves like. A request of account X is
//! looked up as the same request of its template T (X's id replaced by T's in path and
//! body), and the answer is T's with T's id replaced by X's. Organizations `ListAccounts`
//! is answered from the fleet file, 20 accounts a page as AWS does. AssumeRole answers
//! carry an access key that names the account (`ASIARPL` + id + `Z`), which is how later
//! requests, signed with it, are known to be X's. Signatures are not checked.
//!
//! A request the recording does not hold is answered 400 `ReplayMiss` (not retried by the
//! SDK) and counted; `GET /replay/stats` answers `{"requests", "misses", "miss_examples",
//! "held_us", "arrivals_per_100ms"}`: `held_us` the time answers were held from their
//! arrival, latency included; `arrivals_per_100ms` the run's timeline, the requests that
//! arrived in each 100 ms from the first one.
//! Answers are held by a clock thread of its own (see `Clock`), to within a fraction of a
//! millisecond of the latency asked for.
//!
//! Usage: replay --recording FILE [--fleet FILE] [--listen 127.0.0.1:0] [--latency-ms L]
//! [--threads T]. Prints `listening on http://ADDR` once ready.

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Response, StatusCode};
use serde_json::Value;
use std::collections::HashMap;
use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MANAGEMENT: &str = "management";
const KEY_PREFIX: &str = "ASIARPL";

struct Answer {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

struct Replay {
    answers: HashMap<String, Arc<Answer>>,
    /// Fleet account -> its template (every recorded member account stands for itself too).
    template: HashMap<String, String>,
    /// Account -> its name in Organizations (templates and fleet), which answers carry too
    /// (the alert state machine's definition names its account).
    names: HashMap<String, String>,
    /// Recorded access key -> recorded member account.
    recorded_keys: HashMap<String, String>,
    /// The fleet, in order, as Organizations `Account` objects (for ListAccounts).
    accounts: Vec<Value>,
    latency: Duration,
    clock: Clock,
    requests: AtomicU64,
    held_us: AtomicU64,
    /// Arrivals per 100 ms since the first request (the run's timeline).
    arrivals: Mutex<(Option<std::time::Instant>, Vec<u32>)>,
    misses: AtomicU64,
    miss_examples: Mutex<Vec<String>>,
}

/// (access key, region, service) of a SigV4 `Authorization` header.
fn scope(authorization: &str) -> Option<(&str, &str, &str)> {
    let rest = &authorization[authorization.find("Credential=")? + "Credential=".len()..];
    let mut parts = rest.split(['/', ',']);
    let key = parts.next()?;
    let _date = parts.next()?;
    let region = parts.next()?;
    let service = parts.next()?;
    Some((key, region, service))
}

/// The 12-digit account id after `arn:aws:iam::` (plain or URL-encoded) in `text`.
fn role_account(text: &str) -> Option<String> {
    for marker in ["arn:aws:iam::", "arn%3Aaws%3Aiam%3A%3A"] {
        if let Some(i) = text.find(marker) {
            let id: String = text[i + marker.len()..].chars().take(12).collect();
            if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
                return Some(id);
            }
        }
    }
    None
}

fn replace_bytes(data: &[u8], from: &str, to: &str) -> Vec<u8> {
    let (from, to) = (from.as_bytes(), to.as_bytes());
    if from.is_empty() || from == to {
        return data.to_vec();
    }
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

fn contains(data: &[u8], what: &[u8]) -> bool {
    data.windows(what.len()).any(|w| w == what)
}

fn tag_between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

fn lookup_key(
    account: &str,
    region: &str,
    service: &str,
    method: &str,
    path: &str,
    target: &str,
    body: &[u8],
) -> String {
    let mut key = String::with_capacity(64 + path.len() + body.len());
    for part in [account, region, service, method, path, target] {
        key.push_str(part);
        key.push('\u{1}');
    }
    key.push_str(&String::from_utf8_lossy(body));
    key
}

fn decode(v: &Value, field: &str) -> Result<Vec<u8>, String> {
    let text = v[field].as_str().ok_or_else(|| format!("recording: {field} missing"))?;
    aws_smithy_types::base64::decode(text).map_err(|e| format!("recording: {field}: {e}"))
}

impl Replay {
    fn load(recording: &str, fleet: Option<&str>, latency: Duration) -> Result<Self, String> {
        let file = std::fs::File::open(recording).map_err(|e| format!("{recording}: {e}"))?;
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(|e| format!("{recording}: {e}"))?;
            if !line.trim().is_empty() {
                lines.push(serde_json::from_str::<Value>(&line).map_err(|e| format!("{recording}: {e}"))?);
            }
        }
        // First pass: which member account each recorded access key belongs to.
        let mut recorded_keys = HashMap::new();
        let fresh_expiration =
            (chrono::Utc::now() + chrono::Duration::hours(12)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut list_accounts = Vec::new();
        for v in &lines {
            let body = decode(v, "body")?;
            let body = String::from_utf8_lossy(&body);
            if body.contains("Action=AssumeRole") {
                let answer = decode(v, "answer")?;
                let answer = String::from_utf8_lossy(&answer);
                if let (Some(account), Some(key)) =
                    (role_account(&body), tag_between(&answer, "<AccessKeyId>", "</AccessKeyId>"))
                {
                    recorded_keys.insert(key.to_string(), account);
                }
            }
            if v["headers"]["x-amz-target"].as_str().is_some_and(|t| t.ends_with(".ListAccounts")) {
                let answer: Value = serde_json::from_slice(&decode(v, "answer")?).map_err(|e| e.to_string())?;
                if let Some(list) = answer["Accounts"].as_array() {
                    list_accounts.extend(list.iter().cloned());
                }
            }
        }
        let mut answers = HashMap::new();
        for v in &lines {
            let headers = &v["headers"];
            let Some((key, region, service)) = headers["authorization"].as_str().and_then(scope) else {
                continue;
            };
            let body = decode(v, "body")?;
            let account = match recorded_keys.get(key) {
                Some(a) => a.clone(),
                None => MANAGEMENT.to_string(),
            };
            let mut answer = decode(v, "answer")?;
            if contains(&body, b"Action=AssumeRole") {
                // Answered per account below; the key stored is the template's request.
                let text = String::from_utf8_lossy(&answer).into_owned();
                if let Some(k) = tag_between(&text, "<AccessKeyId>", "</AccessKeyId>") {
                    let mut t = text.replace(k, &format!("{KEY_PREFIX}{}Z", recorded_keys.get(k).map_or("", |a| a)));
                    // The recorded credentials expire an hour after the recording; replayed
                    // later, they would be expired on arrival.
                    if let Some(e) = tag_between(&t, "<Expiration>", "</Expiration>") {
                        t = t.replace(e, &fresh_expiration);
                    }
                    answer = t.into_bytes();
                }
            }
            let status = StatusCode::from_u16(v["status"].as_u64().unwrap_or(500) as u16).map_err(|e| e.to_string())?;
            let mut answer_headers = Vec::new();
            for h in v["answer_headers"].as_array().into_iter().flatten() {
                if let (Some(k), Some(val)) = (h[0].as_str(), h[1].as_str()) {
                    if let (Ok(k), Ok(val)) = (HeaderName::try_from(k), HeaderValue::try_from(val)) {
                        answer_headers.push((k, val));
                    }
                }
            }
            let k = lookup_key(
                &account,
                region,
                service,
                v["method"].as_str().unwrap_or(""),
                v["path"].as_str().unwrap_or(""),
                headers["x-amz-target"].as_str().unwrap_or(""),
                &body,
            );
            answers.insert(k, Arc::new(Answer { status, headers: answer_headers, body: Bytes::from(answer) }));
        }
        // The fleet: every recorded member account stands for itself, plus the fleet file's.
        let mut template: HashMap<String, String> = recorded_keys.values().map(|a| (a.clone(), a.clone())).collect();
        let mut accounts = list_accounts.clone();
        let mut names: HashMap<String, String> = list_accounts
            .iter()
            .filter_map(|a| Some((a["Id"].as_str()?.to_string(), a["Name"].as_str()?.to_string())))
            .collect();
        if let Some(path) = fleet {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
            let doc: Value = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
            // The management account stays; the recorded members give way to the fleet.
            accounts.retain(|a| a["Id"].as_str().is_some_and(|id| !template.contains_key(id)));
            for a in doc["accounts"].as_array().ok_or_else(|| format!("{path}: no accounts"))? {
                let (Some(id), Some(t)) = (a["id"].as_str(), a["template"].as_str()) else {
                    return Err(format!("{path}: an account without id or template"));
                };
                let Some(like) = list_accounts.iter().find(|x| x["Id"].as_str() == Some(t)) else {
                    return Err(format!("{path}: template {t} is not in the recording's ListAccounts"));
                };
                let mut entry =
                    serde_json::from_str::<Value>(&like.to_string().replace(t, id)).map_err(|e| e.to_string())?;
                for field in ["Name", "Email"] {
                    if let Some(x) = a[field.to_lowercase()].as_str() {
                        entry[field] = Value::from(x);
                    }
                }
                template.insert(id.to_string(), t.to_string());
                if let Some(name) = entry["Name"].as_str() {
                    names.insert(id.to_string(), name.to_string());
                }
                accounts.push(entry);
            }
        }
        Ok(Self {
            answers,
            template,
            names,
            recorded_keys,
            accounts,
            latency,
            clock: Clock::start(),
            requests: AtomicU64::new(0),
            held_us: AtomicU64::new(0),
            arrivals: Mutex::new((None, Vec::new())),
            misses: AtomicU64::new(0),
            miss_examples: Mutex::new(Vec::new()),
        })
    }

    fn answer(&self, method: &str, path: &str, authorization: &str, target: &str, body: &[u8]) -> Response<Body> {
        let Some((key, region, service)) = scope(authorization) else {
            return self.miss(format!("{method} {path}: not signed"));
        };
        if target.ends_with(".ListAccounts") {
            return self.list_accounts(body);
        }
        // Whose request: an assumed-role key names its account; the rest is the management's.
        let account = if let Some(id) = key.strip_prefix(KEY_PREFIX).and_then(|k| k.get(..12)) {
            Some(id.to_string())
        } else {
            self.recorded_keys.get(key).cloned()
        };
        let assume_role = contains(body, b"Action=AssumeRole");
        let member = if assume_role { role_account(&String::from_utf8_lossy(body)) } else { account.clone() };
        let (who, from, to) = match &member {
            Some(x) => match self.template.get(x) {
                Some(t) => (if assume_role { MANAGEMENT } else { t.as_str() }, x.as_str(), t.as_str()),
                None => return self.miss(format!("{method} {path}: account {x} is not in the fleet")),
            },
            None => (MANAGEMENT, "", ""),
        };
        let (path, body) = if from.is_empty() || from == to {
            (path.to_string(), body.to_vec())
        } else {
            (path.replace(from, to), replace_bytes(body, from, to))
        };
        let k = lookup_key(who, region, service, method, &path, target, &body);
        let Some(found) = self.answers.get(&k) else {
            return self
                .miss(format!("{who} {region} {service} {method} {path} {target} {}", String::from_utf8_lossy(&body)));
        };
        let answer = if from.is_empty() || from == to {
            found.body.clone()
        } else {
            let body = replace_bytes(&found.body, to, from);
            match (self.names.get(to), self.names.get(from)) {
                (Some(was), Some(name)) if !assume_role => Bytes::from(replace_bytes(&body, was, name)),
                _ => Bytes::from(body),
            }
        };
        let mut r = Response::new(Body::from(answer));
        *r.status_mut() = found.status;
        for (k, v) in &found.headers {
            r.headers_mut().append(k.clone(), v.clone());
        }
        r
    }

    /// Organizations ListAccounts over the fleet, 20 a page, `NextToken` the next offset.
    fn list_accounts(&self, body: &[u8]) -> Response<Body> {
        let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let from = request["NextToken"].as_str().and_then(|t| t.parse::<usize>().ok()).unwrap_or(0);
        let page = request["MaxResults"].as_u64().map_or(20, |m| m.clamp(1, 20) as usize);
        let to = (from + page).min(self.accounts.len());
        let mut doc = serde_json::json!({ "Accounts": self.accounts.get(from..to).unwrap_or(&[]) });
        if to < self.accounts.len() {
            doc["NextToken"] = Value::from(to.to_string());
        }
        let mut r = Response::new(Body::from(doc.to_string()));
        r.headers_mut().insert("content-type", HeaderValue::from_static("application/x-amz-json-1.1"));
        r
    }

    fn miss(&self, what: String) -> Response<Body> {
        self.misses.fetch_add(1, Ordering::Relaxed);
        {
            let mut examples = self.miss_examples.lock().unwrap_or_else(|p| p.into_inner());
            if examples.len() < 20 {
                eprintln!("replay: no recording for {what}");
                examples.push(what);
            }
        }
        let mut r = Response::new(Body::from(
            "<ErrorResponse><Error><Type>Sender</Type><Code>ReplayMiss</Code>\
             <Message>the replay holds no answer to this request</Message></Error></ErrorResponse>",
        ));
        *r.status_mut() = StatusCode::BAD_REQUEST;
        r
    }
}

/// The answers being held, each with its deadline, in arrival order.
type Held = Arc<Mutex<std::collections::VecDeque<(std::time::Instant, tokio::sync::oneshot::Sender<()>)>>>;

/// Answers are held until `arrival + latency` by a thread of their own rather than by the
/// runtime's timer: tokio's timer rounds up to the next millisecond and fires when the
/// worker wakes, which held answers about 1.7 ms longer than the latency asked for (3 % of
/// 50 ms). Every answer is held for the same latency, so deadlines come in arrival order
/// and a queue is enough.
struct Clock {
    queue: Held,
    thread: std::thread::Thread,
}

impl Clock {
    fn start() -> Self {
        let queue: Held = Arc::default();
        let q = Arc::clone(&queue);
        let handle = std::thread::Builder::new()
            .name("replay-clock".into())
            .spawn(move || loop {
                let next = q.lock().unwrap_or_else(|p| p.into_inner()).front().map(|(at, _)| *at);
                match next {
                    None => std::thread::park(),
                    Some(at) if at > std::time::Instant::now() => {
                        std::thread::park_timeout(at - std::time::Instant::now())
                    }
                    Some(_) => {
                        let due = q.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                        if let Some((_, tx)) = due {
                            // The request may have gone (its connection closed): nothing to answer.
                            tx.send(()).ok();
                        }
                    }
                }
            })
            .unwrap_or_else(|e| fail(&format!("cannot start the clock thread: {e}")));
        Self { queue, thread: handle.thread().clone() }
    }

    async fn until(&self, at: std::time::Instant) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let first = {
            let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            q.push_back((at, tx));
            q.len() == 1
        };
        if first {
            self.thread.unpark();
        }
        // The sender is only dropped after sending.
        rx.await.ok();
    }
}

async fn handle(State(replay): State<Arc<Replay>>, req: Request) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    if path == "/replay/stats" {
        let examples = replay.miss_examples.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let doc = serde_json::json!({
            "requests": replay.requests.load(Ordering::Relaxed),
            "misses": replay.misses.load(Ordering::Relaxed),
            "held_us": replay.held_us.load(Ordering::Relaxed),
            "miss_examples": examples,
            "arrivals_per_100ms": replay.arrivals.lock().unwrap_or_else(|p| p.into_inner()).1.clone(),
        });
        return Response::new(Body::from(doc.to_string()));
    }
    let arrived = std::time::Instant::now();
    replay.requests.fetch_add(1, Ordering::Relaxed);
    {
        let mut a = replay.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        let first = *a.0.get_or_insert(arrived);
        let bucket = (arrived - first).as_millis() as usize / 100;
        if a.1.len() <= bucket {
            a.1.resize(bucket + 1, 0);
        }
        a.1[bucket] += 1;
    }
    let body = match to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => return replay.miss(format!("unreadable body: {e}")),
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let answer = replay.answer(parts.method.as_str(), &path, header("authorization"), header("x-amz-target"), &body);
    if !replay.latency.is_zero() {
        replay.clock.until(arrived + replay.latency).await;
    }
    replay.held_us.fetch_add(arrived.elapsed().as_micros() as u64, Ordering::Relaxed);
    answer
}

fn main() {
    let mut recording = None;
    let mut fleet = None;
    let mut listen = "127.0.0.1:0".to_string();
    let mut latency_ms = 0.0f64;
    let mut threads = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| fail(&format!("{a} needs a value")));
        match a.as_str() {
            "--recording" => recording = Some(value()),
            "--fleet" => fleet = Some(value()),
            "--listen" => listen = value(),
            "--latency-ms" => latency_ms = value().parse().unwrap_or_else(|_| fail("--latency-ms: a number")),
            "--threads" => threads = value().parse().unwrap_or_else(|_| fail("--threads: a number")),
            _ => fail(&format!("unknown argument {a}")),
        }
    }
    let recording = recording.unwrap_or_else(|| fail("--recording FILE is required"));
    let replay = Replay::load(&recording, fleet.as_deref(), Duration::from_secs_f64(latency_ms.max(0.0) / 1000.0))
        .unwrap_or_else(|e| fail(&e));
    eprintln!("replay: {} answers, {} accounts, latency {latency_ms} ms", replay.answers.len(), replay.accounts.len());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&e.to_string()));
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen).await.unwrap_or_else(|e| fail(&format!("{listen}: {e}")));
        let addr = listener.local_addr().unwrap_or_else(|e| fail(&e.to_string()));
        println!("listening on http://{addr}");
        let app = axum::Router::new().fallback(handle).with_state(Arc::new(replay));
        if let Err(e) = axum::serve(listener, app).await {
            fail(&e.to_string());
        }
    });
}

fn fail(why: &str) -> ! {
    eprintln!("replay: {why}");
    std::process::exit(2)
}
