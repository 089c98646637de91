//! `/healthz` (the process is alive), `/readyz` (desired state valid, AWS reachable at the
//! last check, journal working), `/metrics` (Prometheus), and, when approval tokens are
//! configured, `POST /runs/{id}/approve`: approval of a braked run without a shell on the
//! host (ECS), allowed only with `Authorization: Bearer <token>` of a named token. With no
//! tokens configured the endpoint does not exist. `GET /reports/NAME` and
//! `GET /announcements/NAME` serve the run reports and announcements the daemon wrote (the
//! links of its notifications). `GET /` and `GET /accounts/ID` are the status page
//! ([`super::status`]).

use super::metrics::Metrics;
use crate::journal::Journal;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// Who may approve over HTTP: token name → token, read from a file (one `NAME TOKEN` per
/// line; `#` comments and blank lines ignored).
#[derive(Clone)]
pub struct Approvers {
    tokens: Vec<(String, String)>,
}

impl Approvers {
    pub fn read(path: &std::path::Path) -> Result<Approvers, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut tokens = vec![];
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once(char::is_whitespace) {
                Some((name, token)) if token.trim().len() >= 16 => {
                    tokens.push((name.to_string(), token.trim().to_string()));
                }
                _ => {
                    return Err(format!(
                        "{}:{}:1: expected `NAME TOKEN`, the token at least 16 characters",
                        path.display(),
                        i + 1
                    ))
                }
            }
        }
        if tokens.is_empty() {
            return Err(format!("{}: no token", path.display()));
        }
        Ok(Approvers { tokens })
    }

    /// The name of the token `presented` is, compared in constant time per token.
    fn who(&self, presented: &str) -> Option<&str> {
        let same = |a: &str, b: &str| {
            a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
        };
        self.tokens.iter().find(|(_, t)| same(t, presented)).map(|(n, _)| n.as_str())
    }
}

#[derive(Clone)]
struct Approval {
    journal: Arc<dyn Journal>,
    approvers: Approvers,
}

/// The directories whose reports the listener serves.
#[derive(Clone)]
pub struct Files {
    pub reports: std::path::PathBuf,
    pub announcements: std::path::PathBuf,
}

pub fn router(
    metrics: Arc<Metrics>,
    journal: Arc<dyn Journal>,
    approvers: Option<Approvers>,
    files: Files,
    next_runs: super::status::NextRuns,
) -> Router {
    let base = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(metrics.clone())
        .merge(Router::new().route("/metrics", get(metrics_text)).with_state((metrics, journal.clone())))
        .merge(
            Router::new()
                .route("/reports/{name}", get(|State(f): State<Files>, Path(n): Path<String>| serve(f.reports, n)))
                .route(
                    "/announcements/{name}",
                    get(|State(f): State<Files>, Path(n): Path<String>| serve(f.announcements, n)),
                )
                .with_state(files),
        )
        .merge(super::status::routes(journal.clone(), next_runs));
    match approvers {
        Some(approvers) => base.merge(
            Router::new().route("/runs/{id}/approve", post(approve)).with_state(Approval { journal, approvers }),
        ),
        None => base,
    }
}

async fn ready(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    if m.ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: desired state invalid, AWS unreachable at the last check, or the journal failing\n",
        )
    }
}

/// The metrics, with what they show of the journal read now: the same truth as `runs`.
async fn metrics_text(State((m, journal)): State<(Arc<Metrics>, Arc<dyn Journal>)>) -> impl IntoResponse {
    if let Err(e) = m.refresh(&*journal).await {
        tracing::warn!(error = %e, "metrics: cannot read the journal; its figures are the last read");
        m.journal_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], m.render())
}

/// One report file of `dir`: a plain name ending in `.md` or `.json`, nothing else.
async fn serve(dir: std::path::PathBuf, name: String) -> axum::response::Response {
    let plain = !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && !name.contains("..");
    let kind = if name.ends_with(".md") {
        "text/markdown; charset=utf-8"
    } else if name.ends_with(".json") {
        "application/json"
    } else {
        ""
    };
    if !plain || kind.is_empty() {
        return (StatusCode::NOT_FOUND, "no such report\n").into_response();
    }
    match tokio::fs::read(dir.join(&name)).await {
        Ok(body) => ([(header::CONTENT_TYPE, kind)], body).into_response(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            (StatusCode::NOT_FOUND, "no such report\n").into_response()
        }
        Err(e) => {
            tracing::error!(file = %dir.join(&name).display(), error = %e, "cannot read a report");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot read the report\n").into_response()
        }
    }
}

async fn approve(State(a): State<Approval>, Path(id): Path<i64>, headers: HeaderMap) -> (StatusCode, String) {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(name) = presented.and_then(|t| a.approvers.who(t)) else {
        tracing::warn!(run = id, "approval refused: no valid bearer token");
        return (StatusCode::UNAUTHORIZED, "approval needs a valid bearer token\n".into());
    };
    let by = format!("{name} (HTTP)");
    match a.journal.approve(id, &by).await {
        Ok(true) => {
            tracing::info!(run = id, approved_by = %by, "run approved");
            (StatusCode::OK, format!("run {id} approved by {by}\n"))
        }
        Ok(false) => match a.journal.run(id).await {
            Ok(Some(r)) => (StatusCode::CONFLICT, format!("run {id} is {}, not braked\n", r.status)),
            Ok(None) => (StatusCode::NOT_FOUND, format!("no run {id}\n")),
            Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
        },
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
    }
}
