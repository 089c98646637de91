//! F06 IAM Access Analyzer and F05 Compute Optimizer, end to end against the emulated
//! Organization.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use support::{account, changes, skips, Fleet, TEST_REGIONS};

const ANALYZER: &str = "cm-access-analyzer";
const RULES: [(&str, &str); 3] = [
    ("ArchiveRule-CmHelpdesk", "cm-helpdesk"),
    ("ArchiveRule-CmMembersportal", "cm-membersportal"),
    ("ArchiveRule-CmPolicymaintainer", "cm-policymaintainer"),
];

fn call_in(fleet: &Fleet, id: &str, service: &str, op: &str, params: Value, region: &str) -> Value {
    fleet.emu.aws_in(id, service, op, params, region).unwrap_or_else(|e| panic!("{service} {op} in {region}: {e}"))
}

fn analyzer(fleet: &Fleet, id: &str, region: &str) -> Result<Value, String> {
    fleet
        .emu
        .aws_in(id, "accessanalyzer", "get_analyzer", json!({"analyzerName": ANALYZER}), region)
        .map(|v| v["analyzer"].clone())
}

/// The analyzer's archive rules: name to filter.
fn rules(fleet: &Fleet, id: &str, region: &str) -> BTreeMap<String, Value> {
    let out = call_in(fleet, id, "accessanalyzer", "list_archive_rules", json!({"analyzerName": ANALYZER}), region);
    out["archiveRules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["ruleName"].as_str().unwrap().to_string(), r["filter"].clone()))
        .collect()
}

fn role_filter(id: &str, role: &str) -> Value {
    json!({"resource": {"eq": [format!("arn:aws:iam::{id}:role/{role}")]}})
}

fn enrollment(fleet: &Fleet, id: &str, region: &str) -> Value {
    call_in(fleet, id, "compute-optimizer", "get_enrollment_status", json!({}), region)["status"].clone()
}

#[test]
fn a_fresh_secure_account_gets_the_analyzer_with_its_rules_and_compute_optimizer_in_every_region() {
    let fleet = Fleet::new(&[("secure-co", "secure")]);
    let id = &fleet.accounts[0];
    for region in TEST_REGIONS {
        assert_eq!(enrollment(&fleet, id, region), "Inactive");
    }

    let (code, applied) = fleet.report(&["apply", "--initial"]);
    assert_eq!(code, 0, "{applied}");
    let a = account(&applied, id);
    assert_eq!(a["status"], "converged", "{a}");
    let c = changes(a);
    let creates = c.iter().filter(|(f, t, x)| f == "F06" && t == "access_analyzer" && x == "create").count();
    assert_eq!(creates, TEST_REGIONS.len(), "{c:?}");
    assert!(c.iter().any(|(f, t, _)| f == "F05" && t == "compute_optimizer_enrollment"), "{c:?}");

    for region in TEST_REGIONS {
        let an = analyzer(&fleet, id, region).unwrap_or_else(|e| panic!("{region}: {e}"));
        assert_eq!(an["type"], "ACCOUNT", "{region}: {an}");
        assert_eq!(an["tags"]["cm:Members"], "Initialized", "{region}: {an}");
        let r = rules(&fleet, id, region);
        assert_eq!(r.len(), RULES.len(), "{region}: {r:?}");
        for (name, role) in RULES {
            assert_eq!(r.get(name), Some(&role_filter(id, role)), "{region} {name}: {r:?}");
        }
        assert_eq!(enrollment(&fleet, id, region), "Active", "{region}");
    }

    let (code, again) = fleet.report(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{again}");
    assert!(changes(account(&again, id)).is_empty(), "{again}");
}

#[test]
fn an_archive_rule_deleted_or_changed_by_someone_is_restored_and_the_customers_own_rule_is_kept() {
    let fleet = Fleet::new(&[("secure-co", "secure")]);
    let id = &fleet.accounts[0];
    assert_eq!(fleet.report(&["apply", "--initial"]).0, 0);

    let region = "us-east-1";
    let rule = |op: &str, params: Value, region: &str| call_in(&fleet, id, "accessanalyzer", op, params, region);
    rule("delete_archive_rule", json!({"analyzerName": ANALYZER, "ruleName": "ArchiveRule-CmHelpdesk"}), region);
    let theirs = json!({"resourceType": {"eq": ["AWS::S3::Bucket"]}});
    rule(
        "create_archive_rule",
        json!({"analyzerName": ANALYZER, "ruleName": "customer-buckets", "filter": theirs}),
        region,
    );
    rule(
        "update_archive_rule",
        json!({"analyzerName": ANALYZER, "ruleName": "ArchiveRule-CmMembersportal",
               "filter": {"resource": {"eq": [format!("arn:aws:iam::{id}:role/someone-else")]}}}),
        "ap-northeast-1",
    );
    assert!(!rules(&fleet, id, region).contains_key("ArchiveRule-CmHelpdesk"), "the delete did not take");

    let out = fleet.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in ["-  ArchiveRule-CmHelpdesk: absent", "role/someone-else", "role/cm-membersportal"] {
        assert!(text.contains(expected), "plan text lacks {expected}:\n{text}");
    }
    assert!(!text.contains("customer-buckets"), "the customer's rule shows in the plan:\n{text}");
    let (_, plan) = fleet.report(&["plan"]);
    let a = account(&plan, id);
    let mut c: Vec<(String, String, String, String)> = a["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("feature"), s("resource_type"), s("action"), s("region"))
        })
        .collect();
    c.sort();
    let want = |r: &str| ("F06".to_string(), "access_analyzer".to_string(), "update".to_string(), r.to_string());
    assert_eq!(c, vec![want("ap-northeast-1"), want("us-east-1")], "{a}");

    let (code, applied) = fleet.report(&["apply"]);
    assert_eq!(code, 0, "{applied}");
    assert_eq!(account(&applied, id)["status"], "converged");
    for region in TEST_REGIONS {
        let r = rules(&fleet, id, region);
        for (name, role) in RULES {
            assert_eq!(r.get(name), Some(&role_filter(id, role)), "{region} {name}: {r:?}");
        }
    }
    assert_eq!(rules(&fleet, id, region).get("customer-buckets"), Some(&theirs), "the customer's rule was touched");
    assert_eq!(fleet.report(&["plan", "--detailed-exitcode"]).0, 0);
}

#[test]
fn a_customer_analyzer_of_the_same_name_without_the_tag_is_not_owned_and_left_untouched() {
    let fleet = Fleet::new(&[("secure-co", "secure")]);
    let id = &fleet.accounts[0];
    let region = "ap-northeast-1";
    call_in(
        &fleet,
        id,
        "accessanalyzer",
        "create_analyzer",
        json!({"analyzerName": ANALYZER, "type": "ACCOUNT", "tags": {"team": "security"}}),
        region,
    );
    let before = (analyzer(&fleet, id, region), rules(&fleet, id, region));
    assert!(before.1.is_empty());

    let (code, applied) = fleet.report(&["apply", "--initial"]);
    assert_eq!(code, 0, "{applied}");
    let a = account(&applied, id);
    let not_owned: Vec<&Value> = a["skips"].as_array().unwrap().iter().filter(|s| s["reason"] == "not_owned").collect();
    assert!(
        not_owned.iter().any(|s| s["feature"] == "F06"
            && s["region"] == region
            && s["resource"] == format!("access_analyzer {ANALYZER}")
            && s["detail"].as_str().unwrap().contains("archive_rules")),
        "{a}"
    );
    assert_eq!(
        (analyzer(&fleet, id, region), rules(&fleet, id, region)),
        before,
        "the customer's analyzer was changed"
    );
    // Virginia had none: it got the baseline's.
    let ours = analyzer(&fleet, id, "us-east-1").unwrap();
    assert_eq!(ours["tags"]["cm:Members"], "Initialized");
    assert_eq!(rules(&fleet, id, "us-east-1").len(), RULES.len());
}

#[test]
fn compute_optimizer_turned_off_by_someone_is_turned_back_on() {
    let fleet = Fleet::new(&[("secure-co", "secure")]);
    let id = &fleet.accounts[0];
    assert_eq!(fleet.report(&["apply", "--initial"]).0, 0);
    call_in(&fleet, id, "compute-optimizer", "update_enrollment_status", json!({"status": "Inactive"}), "us-east-1");
    assert_eq!(enrollment(&fleet, id, "us-east-1"), "Inactive");

    let out = fleet.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("-status: Inactive") && text.contains("+status: Active"), "{text}");
    let (_, plan) = fleet.report(&["plan"]);
    let c = changes(account(&plan, id));
    assert!(!c.is_empty(), "{plan}");
    assert!(c.iter().all(|(f, t, x)| f == "F05" && t == "compute_optimizer_enrollment" && x == "update"), "{c:?}");

    let (code, applied) = fleet.report(&["apply"]);
    assert_eq!(code, 0, "{applied}");
    assert_eq!(account(&applied, id)["status"], "converged");
    for region in TEST_REGIONS {
        assert_eq!(enrollment(&fleet, id, region), "Active", "{region}");
    }
    assert_eq!(fleet.report(&["plan", "--detailed-exitcode"]).0, 0);
}

#[test]
fn a_basic_account_gets_the_analyzer_once_opted_in_and_compute_optimizer_stays_off_until_then() {
    let fleet = Fleet::new(&[("basic-co", "basic")]);
    let id = fleet.accounts[0].clone();

    // Basic: opt-ins default off, so maintenance leaves F05 and F06 alone.
    let (code, applied) = fleet.report(&["apply"]);
    assert_eq!(code, 0, "{applied}");
    let s = skips(account(&applied, &id));
    assert!(
        s.contains(&("F05".into(), "opted_out".into())) && s.contains(&("F06".into(), "opted_out".into())),
        "{s:?}"
    );
    for region in TEST_REGIONS {
        assert!(analyzer(&fleet, &id, region).is_err(), "{region}");
    }

    fleet.enrol(&id, "basic-co", "basic", &[("F06", true)]);
    let (code, applied) = fleet.report(&["apply"]);
    assert_eq!(code, 0, "{applied}");
    let a = account(&applied, &id);
    assert_eq!(a["status"], "converged", "{a}");
    let creates = changes(a).iter().filter(|(f, t, x)| f == "F06" && t == "access_analyzer" && x == "create").count();
    assert_eq!(creates, TEST_REGIONS.len(), "{a}");
    assert!(skips(a).contains(&("F05".into(), "opted_out".into())), "{a}");
    for region in TEST_REGIONS {
        let an = analyzer(&fleet, &id, region).unwrap_or_else(|e| panic!("{region}: {e}"));
        assert_eq!(an["tags"]["cm:Members"], "Initialized", "{region}: {an}");
        assert_eq!(rules(&fleet, &id, region).len(), RULES.len(), "{region}");
        assert_eq!(enrollment(&fleet, &id, region), "Inactive", "{region}: F05 is not opted in");
    }
    assert_eq!(fleet.report(&["plan", "--detailed-exitcode"]).0, 0);
}
