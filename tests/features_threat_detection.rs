//! F12 GuardDuty and F14 Detective, end to end against the emulated Organization.

mod support;

use serde_json::{json, Value};
use support::{account, changes, skips, Fleet, TEST_REGIONS};

/// The protection plans F12 keeps on, as GuardDuty names them.
const PLANS: [&str; 6] = [
    "S3_DATA_EVENTS",
    "EKS_AUDIT_LOGS",
    "RUNTIME_MONITORING",
    "EBS_MALWARE_PROTECTION",
    "RDS_LOGIN_EVENTS",
    "LAMBDA_NETWORK_LOGS",
];

fn call_in(fleet: &Fleet, id: &str, service: &str, op: &str, params: Value, region: &str) -> Value {
    fleet.emu.aws_in(id, service, op, params, region).unwrap_or_else(|e| panic!("{service} {op} in {region}: {e}"))
}

fn detector_ids(fleet: &Fleet, id: &str, region: &str) -> Vec<String> {
    let out = call_in(fleet, id, "guardduty", "list_detectors", json!({}), region);
    out["DetectorIds"].as_array().unwrap().iter().map(|d| d.as_str().unwrap().to_string()).collect()
}

/// The region's one detector (GetDetector), with its id.
fn detector(fleet: &Fleet, id: &str, region: &str) -> (String, Value) {
    let ids = detector_ids(fleet, id, region);
    assert_eq!(ids.len(), 1, "detectors in {region}: {ids:?}");
    let d = call_in(fleet, id, "guardduty", "get_detector", json!({"DetectorId": ids[0]}), region);
    (ids[0].clone(), d)
}

fn feature<'a>(detector: &'a Value, name: &str) -> &'a Value {
    detector["Features"]
        .as_array()
        .and_then(|f| f.iter().find(|x| x["Name"] == name))
        .unwrap_or_else(|| panic!("no feature {name} in {detector}"))
}

fn addon_status(detector: &Value) -> Value {
    let rm = feature(detector, "RUNTIME_MONITORING");
    rm["AdditionalConfiguration"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["Name"] == "EKS_ADDON_MANAGEMENT"))
        .map(|c| c["Status"].clone())
        .unwrap_or(Value::Null)
}

fn graphs(fleet: &Fleet, id: &str, region: &str) -> Vec<String> {
    let out = call_in(fleet, id, "detective", "list_graphs", json!({}), region);
    out["GraphList"].as_array().unwrap().iter().map(|g| g["Arn"].as_str().unwrap().to_string()).collect()
}

fn graph_tags(fleet: &Fleet, id: &str, region: &str, arn: &str) -> Value {
    call_in(fleet, id, "detective", "list_tags_for_resource", json!({"ResourceArn": arn}), region)["Tags"].clone()
}

#[test]
fn a_fresh_secure_account_gets_a_detector_with_every_plan_and_a_graph_in_every_region() {
    let fleet = Fleet::new(&[("secure-co", "secure")]);
    let id = &fleet.accounts[0];

    let (code, applied) = fleet.report(&["apply", "--initial"]);
    assert_eq!(code, 0, "{applied}");
    let a = account(&applied, id);
    assert_eq!(a["status"], "converged", "{a}");
    let c = changes(a);
    for (f, t) in [("F12", "guardduty_detector"), ("F14", "detective_graph")] {
        let creates = c.iter().filter(|(ff, tt, aa)| ff == f && tt == t && aa == "create").count();
        assert_eq!(creates, TEST_REGIONS.len(), "{f} {t}: {c:?}");
    }

    for region in TEST_REGIONS {
        let (_, d) = detector(&fleet, id, region);
        assert_eq!(d["Status"], "ENABLED", "{region}: {d}");
        for plan in PLANS {
            assert_eq!(feature(&d, plan)["Status"], "ENABLED", "{region} {plan}: {d}");
        }
        assert_eq!(addon_status(&d), "ENABLED", "{region}: {d}");
        assert_eq!(d["Tags"]["cm:Members"], "SecureAccount", "{region}: {d}");

        let g = graphs(&fleet, id, region);
        assert_eq!(g.len(), 1, "{region}: {g:?}");
        assert_eq!(graph_tags(&fleet, id, region, &g[0])["cm:Members"], "SecureAccount");
    }

    let (code, again) = fleet.report(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{again}");
    assert!(changes(account(&again, id)).is_empty(), "{again}");
}

#[test]
fn a_guardduty_plan_turned_off_and_a_detective_graph_deleted_by_someone_are_shown_and_undone() {
    let fleet = Fleet::new(&[("secure-co", "secure")]);
    let id = &fleet.accounts[0];
    assert_eq!(fleet.report(&["apply", "--initial"]).0, 0);

    let region = "us-east-1";
    let (det, _) = detector(&fleet, id, region);
    call_in(
        &fleet,
        id,
        "guardduty",
        "update_detector",
        json!({"DetectorId": det, "Features": [
            {"Name": "RDS_LOGIN_EVENTS", "Status": "DISABLED"},
            {"Name": "RUNTIME_MONITORING", "Status": "ENABLED",
             "AdditionalConfiguration": [{"Name": "EKS_ADDON_MANAGEMENT", "Status": "DISABLED"}]}
        ]}),
        region,
    );
    let (_, d) = detector(&fleet, id, region);
    assert_eq!(feature(&d, "RDS_LOGIN_EVENTS")["Status"], "DISABLED", "the drift did not take: {d}");
    assert_eq!(addon_status(&d), "DISABLED", "the drift did not take: {d}");
    // And Detective turned off in the same region.
    let old_graph = graphs(&fleet, id, region).remove(0);
    call_in(&fleet, id, "detective", "delete_graph", json!({"GraphArn": old_graph}), region);
    assert!(graphs(&fleet, id, region).is_empty(), "the drift did not take");

    let out = fleet.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in
        ["-  RDS_LOGIN_EVENTS: disabled", "+  RDS_LOGIN_EVENTS: enabled", "-    EKS_ADDON_MANAGEMENT: disabled"]
    {
        assert!(text.contains(expected), "plan text lacks {expected}:\n{text}");
    }
    assert!(text.contains(&format!("Create F14 {region} detective_graph account")), "{text}");
    let (_, plan) = fleet.report(&["plan"]);
    let a = account(&plan, id);
    let field = |c: &Value, k: &str| c[k].as_str().unwrap_or_default().to_string();
    let c: Vec<[String; 4]> = a["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| [field(c, "feature"), field(c, "resource_type"), field(c, "action"), field(c, "region")])
        .collect();
    assert_eq!(
        c,
        [["F12", "guardduty_detector", "update", region], ["F14", "detective_graph", "create", region]],
        "{a}"
    );

    let (code, applied) = fleet.report(&["apply"]);
    assert_eq!(code, 0, "{applied}");
    assert_eq!(account(&applied, id)["status"], "converged");
    let (again, d) = detector(&fleet, id, region);
    assert_eq!(again, det, "the detector was replaced instead of updated");
    for plan in PLANS {
        assert_eq!(feature(&d, plan)["Status"], "ENABLED", "{plan}: {d}");
    }
    assert_eq!(addon_status(&d), "ENABLED", "{d}");
    let g = graphs(&fleet, id, region);
    assert_eq!(g.len(), 1, "{g:?}");
    assert_ne!(g[0], old_graph);
    assert_eq!(graph_tags(&fleet, id, region, &g[0])["cm:Members"], "SecureAccount");
    assert_eq!(fleet.report(&["plan", "--detailed-exitcode"]).0, 0);
}

#[test]
fn a_customer_detector_and_graph_without_the_tag_are_not_owned_and_left_untouched() {
    let fleet = Fleet::new(&[("secure-co", "secure")]);
    let id = &fleet.accounts[0];
    // The customer's own detector in Tokyo, with S3 protection off; their own graph in Virginia.
    call_in(
        &fleet,
        id,
        "guardduty",
        "create_detector",
        json!({"Enable": true, "Tags": {"team": "security"},
               "Features": [{"Name": "S3_DATA_EVENTS", "Status": "DISABLED"}]}),
        "ap-northeast-1",
    );
    call_in(&fleet, id, "detective", "create_graph", json!({"Tags": {"team": "security"}}), "us-east-1");
    let customer_graph = graphs(&fleet, id, "us-east-1").remove(0);
    let snapshot = || {
        (
            detector(&fleet, id, "ap-northeast-1"),
            graphs(&fleet, id, "us-east-1"),
            graph_tags(&fleet, id, "us-east-1", &customer_graph),
        )
    };
    let before = snapshot();

    let (code, applied) = fleet.report(&["apply", "--initial"]);
    assert_eq!(code, 0, "{applied}");
    let a = account(&applied, id);
    let not_owned: Vec<&Value> = a["skips"].as_array().unwrap().iter().filter(|s| s["reason"] == "not_owned").collect();
    assert!(
        not_owned.iter().any(|s| s["feature"] == "F12"
            && s["region"] == "ap-northeast-1"
            && s["resource"] == "guardduty_detector account"
            && s["detail"].as_str().unwrap().contains("features")),
        "{a}"
    );
    assert!(
        not_owned
            .iter()
            .any(|s| s["feature"] == "F14" && s["region"] == "us-east-1" && s["resource"] == "detective_graph account"),
        "{a}"
    );
    assert_eq!(snapshot(), before, "a customer resource was changed");
    assert!(before.0 .1["Tags"].get("cm:Members").is_none());

    // The regions without the customer's resources got the baseline's.
    let (_, ours) = detector(&fleet, id, "us-east-1");
    assert_eq!(ours["Tags"]["cm:Members"], "SecureAccount");
    // Nothing of ours is built on the customer's detector: no graph of ours in Tokyo.
    assert!(graphs(&fleet, id, "ap-northeast-1").is_empty(), "a graph was built on the customer's detector");
    let blocked = a["skips"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["feature"] == "F14" && s["region"] == "ap-northeast-1")
        .unwrap_or_else(|| panic!("{a}"));
    assert_eq!(blocked["reason"], "blocked_dependency", "{blocked}");
    assert!(blocked["detail"].as_str().unwrap().contains("guardduty_detector account (ap-northeast-1)"), "{blocked}");
    assert_eq!(fleet.report(&["plan", "--detailed-exitcode"]).0, 0);
}

#[test]
fn detective_is_blocked_where_guardduty_is_opted_out_and_no_detector_exists() {
    let fleet = Fleet::new(&[("secure-co", "secure")]);
    let id = fleet.accounts[0].clone();
    fleet.enrol(&id, "secure-co", "secure", &[("F12", false)]);

    let (code, applied) = fleet.report(&["apply", "--initial"]);
    assert_eq!(code, 0, "{applied}");
    let a = account(&applied, &id);
    let s = skips(a);
    assert!(s.contains(&("F12".into(), "opted_out".into())), "{a}");
    assert!(s.contains(&("F14".into(), "blocked_dependency".into())), "{a}");
    let blocked = a["skips"].as_array().unwrap().iter().find(|s| s["feature"] == "F14").unwrap();
    assert!(blocked["detail"].as_str().unwrap().contains("F12"), "{blocked}");
    assert!(!changes(a).iter().any(|(f, _, _)| f == "F12" || f == "F14"), "{a}");
    for region in TEST_REGIONS {
        assert!(detector_ids(&fleet, &id, region).is_empty(), "{region}");
        assert!(graphs(&fleet, &id, region).is_empty(), "{region}");
    }

    // The customer's own detectors do not count: nothing of ours is built on them.
    for region in TEST_REGIONS {
        call_in(&fleet, &id, "guardduty", "create_detector", json!({"Enable": true}), region);
    }
    // Set up already: initial setup is planned for it when it is named.
    let (code, plan) = fleet.report(&["plan", "--initial", "--account", &id]);
    assert_eq!(code, 0, "{plan}");
    let a = account(&plan, &id);
    assert!(skips(a).contains(&("F14".into(), "blocked_dependency".into())), "{a}");
    assert!(!changes(a).iter().any(|(f, _, _)| f == "F14"), "{a}");

    // Adopted (and opted in again), the detectors are ours, and Detective goes ahead.
    let file = fleet.desired().join(format!("accounts/{id}.yaml"));
    fleet.enrol(&id, "secure-co", "secure", &[]);
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{text}adopt:\n  F12: overwrite\n")).unwrap();
    let (code, plan) = fleet.report(&["plan", "--initial", "--account", &id]);
    assert_eq!(code, 0, "{plan}");
    let a = account(&plan, &id);
    let adopted = changes(a).iter().filter(|(f, _, x)| f == "F12" && x == "adopt").count();
    let creates = changes(a).iter().filter(|(f, t, x)| f == "F14" && t == "detective_graph" && x == "create").count();
    assert_eq!((adopted, creates), (TEST_REGIONS.len(), TEST_REGIONS.len()), "{a}");
}
