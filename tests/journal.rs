//! The DynamoDB journal store against the emulator: the same contract as the SQLite store
//! (cm_baseline::journal::contract), each check on a table of its own opened twice, as two
//! processes would; and what only this store has, large values kept in S3.

mod support;

use cm_baseline::journal::dynamodb::{DynamoJournal, S3Location, INLINE_MAX};
use cm_baseline::journal::{run_status, Journal, Location, Outcome, DONE};
use std::sync::Arc;
use support::{block_on, Emulator};

/// The table and S3 location a `--journal` value names.
fn parts(journal: &str) -> (String, Option<S3Location>) {
    match Location::parse(journal).expect("a journal location") {
        Location::DynamoDb { table, s3 } => (table, s3),
        other => panic!("not DynamoDB: {other}"),
    }
}

#[test]
fn the_dynamodb_store_keeps_the_journal_contract() {
    let emu = Emulator::start();
    block_on(async {
        let sdk = emu.sdk().await;
        let (emu, sdk) = (&emu, &sdk);
        let made = std::sync::Mutex::new(std::collections::BTreeMap::new());
        let made = &made;
        cm_baseline::journal::contract::all(|name| async move {
            let table = format!("journal-{name}");
            let known = made.lock().unwrap().get(&table).cloned();
            let journal = match known {
                Some(j) => j,
                None => {
                    let j = emu.journal_table(&table).await;
                    made.lock().unwrap().insert(table.clone(), j.clone());
                    j
                }
            };
            let (table, s3) = parts(&journal);
            Arc::new(DynamoJournal::open(sdk, &table, s3).await.expect("the journal opens")) as Arc<dyn Journal>
        })
        .await;
    });
}

#[test]
fn large_reports_and_plans_go_to_s3_and_without_a_location_are_refused_with_why() {
    let emu = Emulator::start();
    block_on(async {
        let sdk = emu.sdk().await;
        let (table, s3) = parts(&emu.journal_table("journal-large").await);
        let j = DynamoJournal::open(&sdk, &table, s3.clone()).await.unwrap();
        let big = format!("{{\"padding\":\"{}\"}}", "x".repeat(INLINE_MAX + 1));
        let id = j.start_run("maintenance", run_status::RUNNING, &["111111111111".into()]).await.unwrap();
        let o = Outcome { account: "111111111111", status: DONE, changes: 1, api_calls: 1, error: None, report: &big };
        j.account_finished(id, &o).await.unwrap();
        j.save_plans(id, &[("111111111111".into(), big.clone())]).await.unwrap();
        // Read back by another process, through the item's pointer to S3.
        let other = DynamoJournal::open(&sdk, &table, s3.clone()).await.unwrap();
        assert_eq!(other.accounts(id).await.unwrap()[0].report.as_deref(), Some(big.as_str()));
        assert_eq!(other.plans(id).await.unwrap()[0].1, big);
        let loc = s3.unwrap();
        let objects =
            aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build())
                .list_objects_v2()
                .bucket(&loc.bucket)
                .send()
                .await
                .unwrap();
        let keys: Vec<&str> = objects.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(
            keys,
            [
                format!("{}{table}/run-{id}/111111111111.plan.json", loc.prefix),
                format!("{}{table}/run-{id}/111111111111.report.json", loc.prefix)
            ]
        );

        // No S3 location: the write is refused, saying what to give; nothing is recorded.
        let bare = DynamoJournal::open(&sdk, &table, None).await.unwrap();
        let id = bare.start_run("maintenance", run_status::RUNNING, &["222222222222".into()]).await.unwrap();
        let o = Outcome { account: "222222222222", status: DONE, changes: 1, api_calls: 1, error: None, report: &big };
        let e = bare.account_finished(id, &o).await.unwrap_err().to_string();
        assert!(e.contains("larger than a DynamoDB item keeps") && e.contains(",s3://BUCKET/PREFIX"), "{e}");
        assert_eq!(bare.accounts(id).await.unwrap()[0].status, "pending");
        // A damaged item (an ownership record without its feature) is an error, never read
        // as an empty record.
        use aws_sdk_dynamodb::types::AttributeValue as V;
        aws_sdk_dynamodb::Client::new(&sdk)
            .put_item()
            .table_name(&table)
            .item("pk", V::S("account#333333333333".into()))
            .item("sk", V::S("record#iam_password_policy#global#account".into()))
            .item("kind", V::S("iam_password_policy".into()))
            .send()
            .await
            .unwrap();
        let e = bare.records("333333333333").await.unwrap_err().to_string();
        assert!(e.contains("has no `region`: damaged"), "{e}");
        // A table that does not exist is said at open.
        let e = DynamoJournal::open(&sdk, "no-such-journal", None).await.unwrap_err().to_string();
        assert!(e.contains("no-such-journal does not exist"), "{e}");
    });
}

/// The binary with `args`, its AWS environment pointed at `emu`.
fn cm(emu: &Emulator, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cm-baseline"))
        .args(args)
        .env("AWS_ENDPOINT_URL", &emu.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", support::HOME)
        .env_remove("AWS_PROFILE")
        .env_remove("CM_JOURNAL")
        .output()
        .expect("run cm-baseline")
}

#[test]
fn a_journal_moves_from_sqlite_to_dynamodb_with_runs_export_and_import() {
    use cm_baseline::journal::{export, Record, SqliteJournal};
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let sqlite = SqliteJournal::open(&path).unwrap();
    block_on(async {
        let a = "111111111111";
        let id =
            sqlite.start_run("maintenance", run_status::RUNNING, &[a.into(), "222222222222".into()]).await.unwrap();
        sqlite.set_run_desired(id, "d1", "as announced").await.unwrap();
        sqlite.account_started(id, a).await.unwrap();
        let o = Outcome { account: a, status: DONE, changes: 2, api_calls: 30, error: None, report: "{\"x\":1}" };
        sqlite.account_finished(id, &o).await.unwrap();
        sqlite.finish_run(id, run_status::STOPPED, Some("1 account(s) not done")).await.unwrap();
        let braked = sqlite.start_run("maintenance", run_status::PLANNING, &[a.into()]).await.unwrap();
        sqlite.set_run_status(braked, run_status::BRAKED, Some("too many")).await.unwrap();
        sqlite.save_plans(braked, &[(a.into(), "[]".into())]).await.unwrap();
        assert!(sqlite.approve(braked, "alice").await.unwrap());
        sqlite.pin("2026-12-05T17:00:00Z", "d1").await.unwrap();
        sqlite.keep_desired("d1", b"settings").await.unwrap();
        let r = Record {
            kind: "iam_password_policy".into(),
            region: "global".into(),
            name: "account".into(),
            feature: "F03".into(),
            how: "made".into(),
            at: "2026-12-01T00:00:00Z".into(),
        };
        sqlite.record(a, &r).await.unwrap();
    });
    let sqlite_at = format!("sqlite:{}", path.display());
    let file = dir.path().join("journal.jsonl");
    let out = cm(&emu, &["--journal", &sqlite_at, "runs", "export", "--out", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let journal = block_on(emu.journal_table("journal-moved"));
    let out = cm(&emu, &["--journal", &journal, "runs", "import", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (table, s3) = parts(&journal);
    block_on(async {
        let sdk = emu.sdk().await;
        let moved = DynamoJournal::open(&sdk, &table, s3).await.unwrap();
        let (from, to) = (export(&sqlite).await.unwrap(), export(&moved).await.unwrap());
        assert_eq!(from.len(), 5, "two runs, a pin, a kept desired state, records: {from:?}");
        assert_eq!(to, from, "the journal moved differs");
        // The next run is numbered after the imported ones; an approved run stays approved.
        let next = moved.start_run("maintenance", run_status::PLANNING, &[]).await.unwrap();
        assert_eq!(next, 3);
        assert_eq!(moved.unfinished_run().await.unwrap().map(|r| r.id), Some(next));
    });
    // Importing into a journal that has runs is refused, and says why.
    let out = cm(&emu, &["--journal", &journal, "runs", "import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not empty"), "{}", String::from_utf8_lossy(&out.stderr));
    // A file that is not an export is refused with its line and column, before anything is written.
    std::fs::write(&file, "{\"type\":\"run\"}\n").unwrap();
    let out = cm(
        &emu,
        &[
            "--journal",
            &format!("sqlite:{}", dir.path().join("new.sqlite").display()),
            "runs",
            "import",
            file.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("journal.jsonl:1:") && err.contains("not a line of `runs export`"), "{err}");
    assert!(!dir.path().join("new.sqlite").exists(), "a journal was created for a bad import");
}
