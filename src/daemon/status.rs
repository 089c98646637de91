//! The status page: what the daemon has done to the fleet, for a person with a browser.
//!
//! - `GET /`: the fleet, one row per account (id, name, tier, the outcome of its latest
//!   run, the changes of its latest report by feature and action, its skips by reason, its
//!   last error); the latest runs, newest first (kind, status, times, detail such as the
//!   brake's reason, who approved and when); the next scheduled runs.
//! - `GET /accounts/{id}`: one account's latest report, each change with its field-level
//!   diff, its skips with their reasons, and its history over the latest runs. An id that is
//!   not 12 digits, or of an account in none of those runs, is a 404.
//!
//! Everything shown is read from the [`Journal`] at each request, as the `runs` command reads
//! it, so the page and the CLI never disagree; the next runs come from the scheduler
//! ([`NextRuns`]). The pages are plain HTML with a small inline stylesheet: no JavaScript,
//! nothing to build, readable in any browser or with `curl`. Every value from the journal or
//! the request is escaped ([`esc`]); links are relative, so the pages work behind a proxy
//! that serves the listener under a path prefix.

use crate::journal::{AccountRow, Journal, JournalError, RunRow};
use crate::report::{wire_name, AccountReport};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::{Arc, Mutex};

/// How many runs the pages read: the runs listed, and how far back an account is looked
/// for and its history goes.
const RUNS: usize = 20;

/// The next run of each scheduled job (`maintenance`, `announce`), Unix time, as the
/// scheduler arms them.
#[derive(Clone, Default)]
pub struct NextRuns(Arc<Mutex<BTreeMap<String, i64>>>);

impl NextRuns {
    pub fn set(&self, job: &str, unix: i64) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(job.to_string(), unix);
        }
    }

    fn all(&self) -> Vec<(String, i64)> {
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

#[derive(Clone)]
struct Pages {
    journal: Arc<dyn Journal>,
    next_runs: NextRuns,
}

/// The routes of the status page.
pub fn routes(journal: Arc<dyn Journal>, next_runs: NextRuns) -> Router {
    Router::new().route("/", get(fleet)).route("/accounts/{id}", get(account)).with_state(Pages { journal, next_runs })
}

async fn fleet(State(p): State<Pages>) -> Response {
    match fleet_page(&*p.journal, &p.next_runs.all(), chrono::Utc::now().timestamp()).await {
        Ok(html) => Html(html).into_response(),
        Err(e) => unavailable(e),
    }
}

async fn account(State(p): State<Pages>, id: Result<Path<String>, PathRejection>) -> Response {
    let Some(id) = id.ok().map(|Path(id)| id).filter(|i| i.len() == 12 && i.bytes().all(|b| b.is_ascii_digit())) else {
        return not_found("This is not an account id: an account id is 12 digits.");
    };
    match account_page(&*p.journal, &id).await {
        Ok(Some(html)) => Html(html).into_response(),
        Ok(None) => not_found(&format!("No account {id} in the latest {RUNS} runs.")),
        Err(e) => unavailable(e),
    }
}

fn not_found(why: &str) -> Response {
    let body = format!("<h1>Not found</h1>\n<p>{}</p>\n<p><a href=\"/\">The fleet</a></p>\n", esc(why));
    (StatusCode::NOT_FOUND, Html(page("Not found", &body))).into_response()
}

fn unavailable(e: JournalError) -> Response {
    tracing::warn!(error = %e, "status page: cannot read the journal");
    let body = format!("<h1>The journal cannot be read</h1>\n<p>{}</p>\n", esc(&e.to_string()));
    (StatusCode::SERVICE_UNAVAILABLE, Html(page("Journal unavailable", &body))).into_response()
}

/// `s` made safe as HTML text and as a quoted attribute value.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font:15px/1.45 system-ui,sans-serif;margin:1.5rem auto;max-width:78rem;padding:0 1rem;color:#1b1f24}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{text-align:left;vertical-align:top;padding:.3rem .6rem;border-bottom:1px solid #e5e8eb}
th{background:#f3f5f7}caption{text-align:left;color:#57606a;padding:.2rem 0}
code{font:.92em ui-monospace,monospace}pre{font:13px/1.4 ui-monospace,monospace;background:#f6f8fa;padding:.6rem;overflow-x:auto}
.ok{color:#1a7f37}.bad{color:#cf222e;font-weight:600}.warn{color:#9a6700}.muted{color:#57606a}
.add{color:#1a7f37}.del{color:#cf222e}.hunk{color:#8250df}
li.change{margin:.8rem 0}
";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} · cm-baseline</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        esc(title)
    )
}

/// The class a status word is shown in.
fn tone(status: &str) -> &'static str {
    match status {
        "done" | "converged" | "no_changes" | "approved" => "ok",
        "failed" | "not_converged" | "refused" | "braked" => "bad",
        "running" | "planning" | "pending" | "stopped" | "skipped" | "superseded" | "changes" => "warn",
        _ => "",
    }
}

fn status(s: &str) -> String {
    format!("<span class=\"{}\">{}</span>", tone(s), esc(s))
}

/// `1 run`, `2 runs`.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `F03 1 update, F08 2 create`.
fn changes_by_feature(r: &AccountReport) -> String {
    let mut n: BTreeMap<(String, String), usize> = BTreeMap::new();
    for c in &r.changes {
        *n.entry((c.feature.to_string(), wire_name(&c.action))).or_default() += 1;
    }
    n.iter().map(|((f, a), n)| format!("{f} {n} {a}")).collect::<Vec<_>>().join(", ")
}

/// `opted_out 3, initial_only 2`.
fn skips_by_reason(r: &AccountReport) -> String {
    let mut n: BTreeMap<String, usize> = BTreeMap::new();
    for s in &r.skips {
        *n.entry(wire_name(&s.reason)).or_default() += 1;
    }
    n.iter().map(|(r, n)| format!("{r} {n}")).collect::<Vec<_>>().join(", ")
}

fn report_of(row: &AccountRow) -> Option<AccountReport> {
    row.report.as_deref().and_then(|t| serde_json::from_str(t).ok())
}

/// An account as the fleet page shows it: its row in its newest run, and its newest report.
struct Latest {
    run: i64,
    row: AccountRow,
    report: Option<(i64, AccountReport)>,
}

fn when(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| unix.to_string())
}

/// `in 2 d 3 h`, `in 5 min`.
fn from_now(unix: i64, now: i64) -> String {
    let s = unix - now;
    if s < 0 {
        return "due".into();
    }
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    if d > 0 {
        format!("in {d} d {h} h")
    } else if h > 0 {
        format!("in {h} h {m} min")
    } else {
        format!("in {m} min")
    }
}

async fn fleet_page(j: &dyn Journal, next_runs: &[(String, i64)], now: i64) -> Result<String, JournalError> {
    let runs = j.runs(RUNS).await?;
    // Newest run first: an account's first row seen is its latest; its first report seen is
    // its latest report. Only that is kept of each account, not every run's reports.
    let mut accounts: BTreeMap<String, Latest> = BTreeMap::new();
    let mut tallies: HashMap<i64, (usize, usize)> = HashMap::new();
    for run in &runs {
        let rows = j.accounts(run.id).await?;
        let done = rows.iter().filter(|r| r.status == crate::journal::DONE).count();
        tallies.insert(run.id, (done, rows.len()));
        for mut row in rows {
            let report = report_of(&row).map(|r| (run.id, r));
            row.report = None;
            match accounts.get_mut(&row.account_id) {
                None => {
                    accounts.insert(row.account_id.clone(), Latest { run: run.id, row, report });
                }
                Some(seen) if seen.report.is_none() => seen.report = report,
                Some(_) => {}
            }
        }
    }

    let mut b = String::new();
    let _ = writeln!(b, "<h1>The fleet</h1>");
    let _ = writeln!(
        b,
        "<p class=\"muted\">{} in the latest {}, read from the journal at {}.</p>",
        plural(accounts.len(), "account"),
        plural(runs.len(), "run"),
        esc(&when(now))
    );

    let _ = writeln!(b, "<section>\n<h2>Accounts</h2>");
    if accounts.is_empty() {
        let _ = writeln!(b, "<p>No account has been worked on yet.</p>");
    } else {
        let _ = writeln!(
            b,
            "<table>\n<thead><tr><th scope=\"col\">Account</th><th scope=\"col\">Name</th><th scope=\"col\">Tier</th>\
             <th scope=\"col\">Last run</th><th scope=\"col\">Changes (latest report)</th>\
             <th scope=\"col\">Skips</th><th scope=\"col\">Last error</th></tr></thead>\n<tbody>"
        );
        for (id, a) in &accounts {
            let r = a.report.as_ref().map(|(_, r)| r);
            let outcome = match &a.report {
                Some((run, rep)) if *run == a.run => {
                    format!("{} ({}), run {}", status(&a.row.status), status(&wire_name(&rep.status)), a.run)
                }
                _ => format!("{}, run {}", status(&a.row.status), a.run),
            };
            let changes = match &a.report {
                Some((run, rep)) if rep.changes.is_empty() => format!("none <span class=\"muted\">(run {run})</span>"),
                Some((run, rep)) => {
                    format!("{} <span class=\"muted\">(run {run})</span>", esc(&changes_by_feature(rep)))
                }
                None => "<span class=\"muted\">no report</span>".into(),
            };
            let error = a.row.error.as_deref().or(r.and_then(|r| r.error.as_deref())).unwrap_or("");
            let _ = writeln!(
                b,
                "<tr><td><a href=\"accounts/{}\"><code>{}</code></a></td><td>{}</td><td>{}</td><td>{outcome}</td>\
                 <td>{changes}</td><td>{}</td><td>{}</td></tr>",
                esc(id),
                esc(id),
                esc(r.and_then(|r| r.name.as_deref()).unwrap_or("")),
                esc(r.map(|r| r.tier.as_str()).unwrap_or("")),
                esc(&r.map(skips_by_reason).unwrap_or_default()),
                esc(error)
            );
        }
        let _ = writeln!(b, "</tbody>\n</table>");
    }
    let _ = writeln!(b, "</section>");

    let _ = writeln!(b, "<section>\n<h2>Runs</h2>");
    if runs.is_empty() {
        let _ = writeln!(b, "<p>No run yet.</p>");
    } else {
        let _ = writeln!(
            b,
            "<table>\n<caption>Newest first, at most {RUNS}.</caption>\n<thead><tr><th scope=\"col\">Run</th>\
             <th scope=\"col\">Kind</th><th scope=\"col\">Status</th><th scope=\"col\">Accounts done</th>\
             <th scope=\"col\">Started</th><th scope=\"col\">Finished</th><th scope=\"col\">Detail</th>\
             <th scope=\"col\">Approved</th></tr></thead>\n<tbody>"
        );
        for run in &runs {
            let approval = match j.approval(run.id).await? {
                Some((by, at)) => format!("by {} at {}", esc(&by), esc(&at)),
                None => String::new(),
            };
            let (done, total) = tallies.get(&run.id).copied().unwrap_or_default();
            let _ = writeln!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{done}/{total}</td><td>{}</td><td>{}</td><td>{}</td><td>{approval}</td></tr>",
                run.id,
                esc(&run.kind),
                status(&run.status),
                esc(&run.started_at),
                esc(run.finished_at.as_deref().unwrap_or("-")),
                esc(run.detail.as_deref().unwrap_or(""))
            );
        }
        let _ = writeln!(b, "</tbody>\n</table>");
    }
    let _ = writeln!(b, "</section>");

    let _ = writeln!(b, "<section>\n<h2>Next runs</h2>");
    if next_runs.is_empty() {
        let _ = writeln!(b, "<p>None scheduled yet.</p>");
    } else {
        let _ = writeln!(b, "<ul>");
        for (job, at) in next_runs {
            let _ = writeln!(
                b,
                "<li>{}: <time datetime=\"{at}\">{at}</time> ({})</li>",
                esc(job),
                from_now(*at, now),
                at = esc(&when(*at))
            );
        }
        let _ = writeln!(b, "</ul>");
    }
    let _ = writeln!(b, "</section>");
    Ok(page("Fleet", &b))
}

/// A unified diff in `<pre>`, its added, removed and hunk lines marked.
fn diff(text: &str) -> String {
    let mut out = String::from("<pre>");
    for line in text.lines() {
        let class = if line.starts_with("+++") || line.starts_with("---") {
            "muted"
        } else if line.starts_with('+') {
            "add"
        } else if line.starts_with('-') {
            "del"
        } else if line.starts_with("@@") {
            "hunk"
        } else {
            ""
        };
        if class.is_empty() {
            let _ = writeln!(out, "{}", esc(line));
        } else {
            let _ = writeln!(out, "<span class=\"{class}\">{}</span>", esc(line));
        }
    }
    out.push_str("</pre>");
    out
}

/// The page of account `id`, or `None` if it is in none of the latest runs.
async fn account_page(j: &dyn Journal, id: &str) -> Result<Option<String>, JournalError> {
    let mut history: Vec<(RunRow, AccountRow)> = vec![];
    let mut latest: Option<(i64, AccountReport)> = None;
    for run in j.runs(RUNS).await? {
        let Some(mut row) = j.accounts(run.id).await?.into_iter().find(|r| r.account_id == id) else { continue };
        if latest.is_none() {
            latest = report_of(&row).map(|r| (run.id, r));
        }
        row.report = None;
        history.push((run, row));
    }
    if history.is_empty() {
        return Ok(None);
    }

    let mut b = String::new();
    let _ = writeln!(b, "<nav><a href=\"../\">← The fleet</a></nav>");
    let r = latest.as_ref().map(|(_, r)| r);
    let name = r.and_then(|r| r.name.as_deref()).map(|n| format!(" {}", esc(n))).unwrap_or_default();
    let _ = writeln!(b, "<h1>Account <code>{}</code>{name}</h1>", esc(id));
    match &latest {
        None => {
            let _ = writeln!(b, "<p>No report of this account in the latest {RUNS} runs.</p>");
        }
        Some((run, r)) => {
            let _ = writeln!(
                b,
                "<p>Tier <strong>{}</strong>. Latest report: run {run}, {}. Regions: {}.{}</p>",
                esc(&r.tier),
                status(&wire_name(&r.status)),
                esc(&r.regions.join(", ")),
                if r.control_tower { " Control Tower account." } else { "" }
            );
            if let Some(e) = &r.error {
                let _ = writeln!(b, "<p class=\"bad\">Error: {}</p>", esc(e));
            }
            let _ = writeln!(b, "<section>\n<h2>Changes ({})</h2>", r.changes.len());
            if r.changes.is_empty() {
                let _ = writeln!(b, "<p>None: the account was in line with the baseline.</p>");
            } else {
                let _ = writeln!(b, "<ol>");
                for (i, c) in r.changes.iter().enumerate() {
                    let outcome = match r.applied.as_ref().and_then(|a| a.get(i)) {
                        Some(a) => {
                            let mut o = format!(" — {}", status(&wire_name(&a.outcome)));
                            if let Some(e) = a.error.as_deref().or(a.blocked_by.as_deref()) {
                                let _ = write!(o, ": {}", esc(e));
                            }
                            o
                        }
                        None => String::new(),
                    };
                    let _ = writeln!(
                        b,
                        "<li class=\"change\"><strong>{}</strong> {} {} <code>{}</code> <code>{}</code>{outcome}\n{}</li>",
                        esc(&wire_name(&c.action)),
                        esc(c.feature.as_str()),
                        esc(&c.region),
                        esc(&c.resource_type),
                        esc(&c.resource),
                        diff(&c.diff)
                    );
                }
                let _ = writeln!(b, "</ol>");
            }
            if let Some(left) = r.remaining.as_ref().filter(|l| !l.is_empty()) {
                let _ = writeln!(b, "<p class=\"bad\">Still to change after applying:</p>\n<ul>");
                for c in left {
                    let _ = writeln!(
                        b,
                        "<li>{} {} {} <code>{}</code> <code>{}</code></li>",
                        esc(&wire_name(&c.action)),
                        esc(c.feature.as_str()),
                        esc(&c.region),
                        esc(&c.resource_type),
                        esc(&c.resource)
                    );
                }
                let _ = writeln!(b, "</ul>");
            }
            let _ = writeln!(b, "</section>");
            let _ = writeln!(b, "<section>\n<h2>Skips ({})</h2>", r.skips.len());
            if !r.skips.is_empty() {
                let _ = writeln!(
                    b,
                    "<table>\n<thead><tr><th scope=\"col\">Feature</th><th scope=\"col\">Region</th>\
                     <th scope=\"col\">Resource</th><th scope=\"col\">Reason</th><th scope=\"col\">Detail</th></tr></thead>\n<tbody>"
                );
                for s in &r.skips {
                    let _ = writeln!(
                        b,
                        "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}{}</td></tr>",
                        esc(s.feature.as_str()),
                        esc(&s.region),
                        esc(&s.resource),
                        esc(&wire_name(&s.reason)),
                        esc(&s.detail),
                        s.diff.as_deref().map(diff).unwrap_or_default()
                    );
                }
                let _ = writeln!(b, "</tbody>\n</table>");
            }
            let _ = writeln!(b, "</section>");
        }
    }

    let _ = writeln!(
        b,
        "<section>\n<h2>History</h2>\n<table>\n<caption>The account in the latest {RUNS} runs, newest first.</caption>\n\
         <thead><tr><th scope=\"col\">Run</th><th scope=\"col\">Kind</th><th scope=\"col\">Run status</th>\
         <th scope=\"col\">Account status</th><th scope=\"col\">Changes</th><th scope=\"col\">Started</th>\
         <th scope=\"col\">Error</th></tr></thead>\n<tbody>"
    );
    for (run, row) in &history {
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            run.id,
            esc(&run.kind),
            status(&run.status),
            status(&row.status),
            row.changes,
            esc(&run.started_at),
            esc(row.error.as_deref().unwrap_or(""))
        );
    }
    let _ = writeln!(b, "</tbody>\n</table>\n</section>");
    Ok(Some(page(&format!("Account {id}"), &b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Outcome, SqliteJournal};

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            esc(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(esc("plain 123"), "plain 123");
    }

    #[test]
    fn times_to_come_are_said_in_days_hours_or_minutes() {
        assert_eq!(from_now(100 + 2 * 86_400 + 3 * 3600 + 59, 100), "in 2 d 3 h");
        assert_eq!(from_now(100 + 3600 + 5 * 60, 100), "in 1 h 5 min");
        assert_eq!(from_now(100 + 42, 100), "in 0 min");
        assert_eq!(from_now(50, 100), "due");
    }

    /// A journal with one run over two accounts: one whose report carries markup in its
    /// name, detail and error, and one braked before any report.
    async fn journal() -> (tempfile::TempDir, SqliteJournal) {
        let dir = tempfile::tempdir().unwrap();
        let j = SqliteJournal::open(&dir.path().join("j.sqlite")).unwrap();
        let accounts = vec!["111111111111".to_string(), "222222222222".to_string()];
        let id = j.start_run("maintenance", "running", &accounts).await.unwrap();
        let report = serde_json::json!({
            "account_id": "111111111111", "name": "<b>Evil</b> & Co", "tier": "basic", "status": "failed",
            "error": "<img src=x onerror=alert(1)>", "regions": ["ap-northeast-1"], "control_tower": false,
            "changes": [], "api_calls": {"total": 1, "errors": 0, "not_found": 0, "retries": 0, "throttled": 0,
                "by_service": {}, "by_operation": {}},
            "skips": [
                {"feature": "F05", "region": "*", "resource": "*", "reason": "opted_out", "detail": "not <opted> in"},
                {"feature": "F06", "region": "*", "resource": "*", "reason": "opted_out", "detail": "x"},
                {"feature": "F02", "region": "*", "resource": "*", "reason": "initial_only", "detail": "y"}
            ]
        })
        .to_string();
        j.account_started(id, "111111111111").await.unwrap();
        let o = Outcome {
            account: "111111111111",
            status: "failed",
            changes: 0,
            api_calls: 1,
            error: Some("<img src=x onerror=alert(1)>"),
            report: &report,
        };
        j.account_finished(id, &o).await.unwrap();
        j.finish_run(id, "braked", Some("would change <all> accounts")).await.unwrap();
        (dir, j)
    }

    #[tokio::test]
    async fn the_fleet_page_shows_the_journal_escaped() {
        let (_dir, j) = journal().await;
        let html = fleet_page(&j, &[("maintenance".into(), 1_000_000_000)], 999_996_400).await.unwrap();
        assert!(html.contains("&lt;b&gt;Evil&lt;/b&gt; &amp; Co"), "{html}");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"), "{html}");
        assert!(html.contains("would change &lt;all&gt; accounts"), "{html}");
        assert!(!html.contains("<b>") && !html.contains("<img") && !html.contains("<all>"), "{html}");
        assert!(html.contains("initial_only 1, opted_out 2"), "{html}");
        assert!(html.contains("<a href=\"accounts/111111111111\">"), "{html}");
        assert!(html.contains("<a href=\"accounts/222222222222\">"), "{html}");
        assert!(html.contains("0/2"), "{html}");
        assert!(
            html.contains(
                "maintenance: <time datetime=\"2001-09-09T01:46:40Z\">2001-09-09T01:46:40Z</time> (in 1 h 0 min)"
            ),
            "{html}"
        );
    }

    #[tokio::test]
    async fn an_account_page_shows_its_skips_and_history_and_unknown_accounts_have_none() {
        let (_dir, j) = journal().await;
        let html = account_page(&j, "111111111111").await.unwrap().unwrap();
        assert!(html.contains("not &lt;opted&gt; in") && !html.contains("<opted>"), "{html}");
        assert!(html.contains("<h2>History</h2>"), "{html}");
        let pending = account_page(&j, "222222222222").await.unwrap().unwrap();
        assert!(pending.contains("No report of this account"), "{pending}");
        assert!(account_page(&j, "333333333333").await.unwrap().is_none());
    }
}
