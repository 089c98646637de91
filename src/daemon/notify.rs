//! Notifications: a Slack-compatible webhook (`{"text": ...}`; Slack, Mattermost, Teams
//! workflows and most chat tools accept it) told when a run is braked, fails or is refused,
//! finishes with failures, and when the announcement finds changes. Each message links the
//! report: under `--public-url` when the daemon's listener is reachable there (it serves
//! `/reports/` and `/announcements/`), otherwise as the file's path on the daemon's host.
//!
//! A notification that cannot be delivered is retried (three attempts within about 20 seconds),
//! then logged and counted (`cm_notifications_total{result="failed"}`); it never stops or
//! delays a run beyond that.

use axum::body::Bytes;
use axum::http::{header, Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// What happened, for the message and the metric's `event` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Braked,
    Failed,
    FinishedWithFailures,
    Announced,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Braked => "braked",
            Event::Failed => "failed",
            Event::FinishedWithFailures => "finished_with_failures",
            Event::Announced => "announced",
        }
    }
}

/// Where a report can be read: a file under one of the daemon's directories.
#[derive(Debug, Clone)]
pub enum Link {
    /// `reports/<name>` of the state directory.
    Report(String),
    /// `<name>` of the announcement directory.
    Announcement(String),
}

pub struct Notifier {
    url: String,
    public_url: Option<String>,
    state_dir: std::path::PathBuf,
    announce_dir: std::path::PathBuf,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

const ATTEMPTS: u32 = 3;
const TIMEOUT: Duration = Duration::from_secs(5);

impl Notifier {
    /// A notifier for `url` (`http://` or `https://`); the error says what is wrong with it.
    pub fn new(
        url: &str,
        public_url: Option<&str>,
        state_dir: &std::path::Path,
        announce_dir: &std::path::Path,
    ) -> Result<Notifier, String> {
        let parsed: axum::http::Uri = url.parse().map_err(|e| format!("the webhook URL is not a URL: {e}"))?;
        if !matches!(parsed.scheme_str(), Some("http" | "https")) || parsed.host().is_none() {
            return Err("the webhook URL must be http:// or https:// with a host".into());
        }
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| format!("cannot read the system's trusted certificates: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Notifier {
            url: url.to_string(),
            public_url: public_url.map(|u| u.trim_end_matches('/').to_string()),
            state_dir: state_dir.to_path_buf(),
            announce_dir: announce_dir.to_path_buf(),
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// Where `link` can be read by whoever gets the message.
    pub fn locate(&self, link: &Link) -> String {
        match (link, &self.public_url) {
            (Link::Report(name), Some(base)) => format!("{base}/reports/{name}"),
            (Link::Announcement(name), Some(base)) => format!("{base}/announcements/{name}"),
            (Link::Report(name), None) => self.state_dir.join("reports").join(name).display().to_string(),
            (Link::Announcement(name), None) => self.announce_dir.join(name).display().to_string(),
        }
    }

    /// The JSON a webhook gets.
    pub fn message(&self, event: Event, headline: &str, link: Option<&Link>) -> serde_json::Value {
        let mut text = format!("cm-baseline: {headline}");
        if let Some(l) = link {
            text.push_str(&format!("\nReport: {}", self.locate(l)));
        }
        serde_json::json!({ "text": text, "username": "cm-baseline", "event": event.as_str() })
    }

    /// Sends one message; `Err` says why it was not delivered after every attempt.
    pub async fn send(&self, event: Event, headline: &str, link: Option<&Link>) -> Result<(), String> {
        let body = self.message(event, headline, link).to_string();
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
            }
            let req = Request::post(&self.url)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body.clone())))
                .map_err(|e| format!("cannot build the request: {e}"))?;
            match tokio::time::timeout(TIMEOUT, self.client.request(req)).await {
                Ok(Ok(resp)) if resp.status().is_success() => return Ok(()),
                Ok(Ok(resp)) if resp.status() == StatusCode::TOO_MANY_REQUESTS || resp.status().is_server_error() => {
                    last = format!("the webhook answered {}", resp.status());
                }
                Ok(Ok(resp)) => return Err(format!("the webhook answered {}", resp.status())),
                Ok(Err(e)) => last = format!("cannot reach the webhook: {e}"),
                Err(_) => last = format!("the webhook did not answer within {} s", TIMEOUT.as_secs()),
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, Read, Write};
    use std::sync::{Arc, Mutex};

    /// A receiver answering its connections' requests with `statuses` in turn; counts them.
    fn receiver(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<String>>>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        let got = Arc::new(Mutex::new(vec![]));
        let g = got.clone();
        std::thread::spawn(move || {
            let mut statuses = statuses.into_iter();
            for s in l.incoming().flatten() {
                let mut out = s.try_clone().unwrap();
                let mut r = std::io::BufReader::new(s);
                loop {
                    let (mut line, mut len) = (String::new(), 0usize);
                    while r.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                        line.clear();
                    }
                    if line != "\r\n" {
                        break;
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        break;
                    }
                    g.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
                    let code = statuses.next().unwrap_or(200);
                    let _ = write!(out, "HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n");
                }
            }
        });
        (url, got)
    }

    fn notifier(url: &str) -> Notifier {
        let state = std::path::Path::new("/var/lib/cm-baseline");
        Notifier::new(url, None, state, &state.join("announcements")).unwrap()
    }

    #[tokio::test]
    async fn a_busy_webhook_is_retried_and_a_refusal_is_not() {
        let (url, got) = receiver(vec![503, 200]);
        let n = notifier(&url);
        let link = Link::Report("run-7-plan.md".into());
        n.send(Event::Braked, "run 7 braked", Some(&link)).await.unwrap();
        let sent = got.lock().unwrap().clone();
        assert_eq!(sent.len(), 2, "one retry after the 503: {sent:?}");
        let msg: serde_json::Value = serde_json::from_str(&sent[1]).unwrap();
        assert_eq!(msg["text"], "cm-baseline: run 7 braked\nReport: /var/lib/cm-baseline/reports/run-7-plan.md");
        assert_eq!(msg["event"], "braked");

        let (url, got) = receiver(vec![404]);
        let err = notifier(&url).send(Event::Failed, "x", None).await.unwrap_err();
        assert_eq!(err, "the webhook answered 404 Not Found");
        assert_eq!(got.lock().unwrap().len(), 1, "a refusal is not retried");
    }

    #[test]
    fn a_webhook_url_must_be_http_with_a_host() {
        let dir = std::path::Path::new("/tmp");
        for bad in ["hooks.slack.com/services/x", "ftp://example.com/x", "not a url"] {
            assert!(Notifier::new(bad, None, dir, dir).is_err(), "{bad}");
        }
        let n = Notifier::new("https://hooks.example.com/x", Some("https://cm.example.com/"), dir, dir).unwrap();
        assert_eq!(
            n.locate(&Link::Announcement("announce-2026-12-12.md".into())),
            "https://cm.example.com/announcements/announce-2026-12-12.md"
        );
    }
}
