//! The daemon's status page as a person sees it: loaded in a real headless browser
//! (Chromium, from the distribution's packages; `scripts/test` installs it when missing)
//! after a maintenance run that repaired drift, so that the page has a change with a diff.
//!
//! The test also takes a screenshot of the fleet page and checks it is a real picture. To
//! refresh the one README.md shows, run it with `CM_KEEP_SCREENSHOT=docs/status-page.png`
//! (a path relative to the checkout, or absolute): the screenshot is copied there.
//!
//! ```sh
//! CM_KEEP_SCREENSHOT=docs/status-page.png cargo test --test status_page
//! ```

mod support;

use cm_baseline::journal::{Journal, RunRow, SqliteJournal};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use support::{http_get, port, terminate, wait_until, Fleet};

fn runs(state: &Path) -> Vec<RunRow> {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    SqliteJournal::open(&state.join("journal.sqlite"))
        .ok()
        .and_then(|j| rt.block_on(j.runs(10)).ok())
        .unwrap_or_default()
}

/// Desired state for the daemon: nothing scheduled before next New Year (the run is
/// `--run-now`), no brake, the maintenance window the whole week.
fn daemon_settings(fleet: &Fleet) {
    fleet.edit_settings(
        "variables: {}",
        "variables: {}\ndaemon:\n  timezone: UTC\n  maintenance: \"0 0 0 1 1 *\"\n  announce: \"0 0 12 1 1 *\"\n  \
         brake:\n    max_changed_share: 1.0\n  window: {from: \"Mon 00:00\", to: \"Sun 23:59\"}\n  \
         require_announcement: false\n",
    );
}

/// Runs headless Chromium with `args` (a profile of its own in `profile`); its stdout.
fn chromium(profile: &Path, args: &[&str]) -> String {
    let out = Command::new("timeout")
        .args(["120", "chromium", "--headless=new", "--no-sandbox", "--disable-gpu"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The DOM of `url` after Chromium loaded it.
fn dom(profile: &Path, url: &str) -> String {
    chromium(profile, &["--dump-dom", url])
}

/// What a person reads of `dom`: its text, the stylesheet and tags dropped (a tag that is
/// not inline, such as a table cell, as a space), entities decoded, spaces collapsed.
fn text(dom: &str) -> String {
    const INLINE: [&str; 6] = ["a", "span", "code", "strong", "time", "em"];
    let body = dom.split_once("</style>").map(|(_, b)| b).unwrap_or(dom);
    let mut out = String::new();
    let mut rest = body;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('>').map(|c| open + c).unwrap_or(rest.len() - 1);
        let name = rest[open + 1..close].trim_start_matches('/').split([' ', '/']).next().unwrap_or("");
        if !INLINE.contains(&name) {
            out.push(' ');
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    let out = out.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'");
    out.replace("&amp;", "&").split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_status_page_shows_the_fleet_its_runs_and_an_accounts_diff_in_a_browser() {
    let found = Command::new("chromium").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(found, "chromium is not on PATH: scripts/test installs it (Debian: apt-get install chromium)");

    let fleet = Fleet::new(&[("one-co", "basic"), ("two-co", "basic")]);
    let (one, two) = (fleet.accounts[0].clone(), fleet.accounts[1].clone());
    // one-co keeps its password policy (F03, opt-in) under maintenance; two-co does not.
    fleet.enrol(&one, "one-co", "basic", &[("F03", true)]);
    daemon_settings(&fleet);
    assert_eq!(fleet.report(&["apply", "--initial"]).0, 0);
    // Drift: someone loosens one-co's password policy; the maintenance run puts it back.
    fleet.emu.call(
        &one,
        "iam",
        "update_account_password_policy",
        json!({"MinimumPasswordLength": 6, "AllowUsersToChangePassword": true}),
    );

    let state = fleet.state();
    let p = port();
    let mut d = fleet.daemon(&state, p, &["--run-now"]);
    wait_until(180, "the maintenance run to finish", || runs(&state).first().is_some_and(|r| r.status == "done"));
    let run = runs(&state)[0].id;
    let browser = tempfile::tempdir().expect("tempdir");
    let profile = browser.path().join("profile");
    let base = format!("http://127.0.0.1:{p}");

    // The fleet: both accounts with name and tier, one-co's repaired drift, the run, the
    // next scheduled runs.
    let fleet_dom = dom(&profile, &format!("{base}/"));
    let seen = text(&fleet_dom);
    assert!(seen.contains("The fleet"), "{seen}");
    for row in [
        format!("{one} one-co basic done (converged), run {run} F03 1 update (run {run})"),
        format!("{two} two-co basic done (converged), run {run} none (run {run})"),
    ] {
        assert!(seen.contains(&row), "the fleet page lacks {row:?}:\n{seen}");
    }
    assert!(seen.contains("opted_out"), "skips by reason: {seen}");
    assert!(seen.contains(&format!("{run} maintenance done 2/2")), "the run: {seen}");
    assert!(seen.contains("maintenance: ") && seen.contains("announce: "), "the next runs: {seen}");
    assert!(fleet_dom.contains(&format!("<a href=\"accounts/{one}\">")), "no link to one-co's page: {fleet_dom}");

    // One account: its change line and the field-level diff, its skips, its history.
    let account = text(&dom(&profile, &format!("{base}/accounts/{one}")));
    for line in [
        format!("Account {one} one-co"),
        "update F03 global iam_password_policy account — done".to_string(),
        "-minimum_password_length: 6".to_string(),
        "+minimum_password_length: 8".to_string(),
        "+require_symbols: true".to_string(),
        "History".to_string(),
        format!("{run} maintenance done done 1"),
    ] {
        assert!(account.contains(&line), "the account page lacks {line:?}:\n{account}");
    }
    assert!(account.contains("initial_only"), "skips with reasons: {account}");

    // Unknown and malformed ids: a 404 page, and nothing of the request put in it as markup.
    let unknown = text(&dom(&profile, &format!("{base}/accounts/000000000000")));
    assert!(unknown.contains("Not found") && unknown.contains("No account 000000000000"), "{unknown}");
    assert_eq!(http_get(p, "/accounts/000000000000").map(|(s, _)| s), Some(404));
    let evil = "/accounts/%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    let evil_dom = dom(&profile, &format!("{base}{evil}"));
    assert!(text(&evil_dom).contains("Not found"), "{evil_dom}");
    assert!(!evil_dom.to_lowercase().contains("<script"), "the request's markup is in the page: {evil_dom}");
    let (code, body) = http_get(p, evil).expect("the listener answers");
    assert_eq!(code, 404, "{body}");
    assert!(!body.to_lowercase().contains("<script") && !body.contains("alert(1)"), "{body}");

    // A screenshot of the fleet page: a real picture, not a blank page.
    let shot = browser.path().join("status-page.png");
    chromium(&profile, &["--window-size=1280,900", &format!("--screenshot={}", shot.display()), &format!("{base}/")]);
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10 * 1024, "the screenshot is {size} bytes");
    if let Some(keep) = std::env::var_os("CM_KEEP_SCREENSHOT") {
        let keep = support::repo().join(keep);
        std::fs::copy(&shot, &keep).unwrap_or_else(|e| panic!("cannot copy the screenshot to {}: {e}", keep.display()));
    }

    assert_eq!(terminate(&mut d), Some(0));
}
