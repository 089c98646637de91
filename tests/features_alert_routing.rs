//! F15 security alert routing, end to end against the emulated Organization.

mod support;

use serde_json::{json, Value};
use support::{account, changes, Fleet, HOME, TEST_REGIONS};

const BUS: &str = "cm-security-alert-aggregator-bus";
const MACHINE: &str = "cm-sharpening-security-alert-machine";
const HOME_RULES: [&str; 3] = ["cm-guardduty-alert-rule", "cm-securityhub-alert-rule", "cm-accessanalyzer-alert-rule"];

fn call_in(fleet: &Fleet, id: &str, service: &str, op: &str, params: Value, region: &str) -> Value {
    fleet.emu.aws_in(id, service, op, params, region).unwrap_or_else(|e| panic!("{service} {op} in {region}: {e}"))
}

fn other_region() -> &'static str {
    TEST_REGIONS.iter().copied().find(|r| *r != HOME).unwrap()
}

fn forward_rules(region: &str) -> [String; 2] {
    [format!("cm-guardduty-{region}-alert-rule"), format!("cm-accessanalyzer-{region}-alert-rule")]
}

fn event_tag(fleet: &Fleet, id: &str, region: &str, arn: &str) -> Option<String> {
    let out = call_in(fleet, id, "events", "list_tags_for_resource", json!({"ResourceARN": arn}), region);
    out["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["Key"] == "cm:Members")
        .map(|t| t["Value"].as_str().unwrap().into())
}

/// `(target id, arn, role arn)` of a rule on the default bus.
fn targets(fleet: &Fleet, id: &str, region: &str, rule: &str) -> Vec<(String, String, String)> {
    let out = call_in(fleet, id, "events", "list_targets_by_rule", json!({"Rule": rule}), region);
    out["Targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["Id"].as_str().unwrap().to_string(),
                t["Arn"].as_str().unwrap().to_string(),
                t["RoleArn"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn rule_names(fleet: &Fleet, id: &str, region: &str) -> Vec<String> {
    let out = call_in(fleet, id, "events", "list_rules", json!({}), region);
    out["Rules"].as_array().unwrap().iter().map(|r| r["Name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_fresh_secure_account_converges_with_roles_bus_machine_and_rules() {
    let fleet = Fleet::new(&[("secure-co", "secure")]);
    let id = &fleet.accounts[0];
    let (code, applied) = fleet.report(&["apply", "--initial"]);
    assert_eq!(code, 0, "{applied}");
    assert_eq!(account(&applied, id)["status"], "converged", "{}", account(&applied, id));
    let c = changes(account(&applied, id));
    let rules = c.iter().filter(|(f, t, a)| f == "F15" && t == "eventbridge_rule" && a == "create").count();
    assert_eq!(rules, HOME_RULES.len() + 2 * (TEST_REGIONS.len() - 1), "{c:?}");

    // Roles, with what each needs.
    let machine_arn = format!("arn:aws:states:{HOME}:{id}:stateMachine:{MACHINE}");
    let home_bus_arn = format!("arn:aws:events:{HOME}:{id}:event-bus/default");
    for (role, service, policy, resource) in [
        ("cm-alert-eventrule-role", "events.amazonaws.com", "CMAlertEventRulePolicy", machine_arn.clone()),
        (
            "cm-alert-forward-eventrule-role",
            "events.amazonaws.com",
            "CMAlertForwardEventRulePolicy",
            home_bus_arn.clone(),
        ),
        (
            "cm-alert-statemachine-role",
            "states.amazonaws.com",
            "CMAlertStateMachinePolicy",
            format!("arn:aws:events:{HOME}:{id}:event-bus/{BUS}"),
        ),
    ] {
        let r = fleet.emu.call(id, "iam", "get_role", json!({"RoleName": role}));
        let trust = r["Role"]["AssumeRolePolicyDocument"].to_string();
        assert!(trust.contains(service), "{role}: {trust}");
        assert!(r["Role"]["Tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["Key"] == "cm:Members" && t["Value"] == "SecureAccount"));
        let p = fleet.emu.call(id, "iam", "get_role_policy", json!({"RoleName": role, "PolicyName": policy}));
        assert_eq!(p["PolicyDocument"]["Statement"][0]["Resource"], resource.as_str(), "{role}");
    }

    // The bus of shaped alerts, in the home region only.
    let bus = call_in(&fleet, id, "events", "describe_event_bus", json!({"Name": BUS}), HOME);
    assert_eq!(event_tag(&fleet, id, HOME, bus["Arn"].as_str().unwrap()).as_deref(), Some("SecureAccount"));
    assert!(fleet.emu.aws_in(id, "events", "describe_event_bus", json!({"Name": BUS}), other_region()).is_err());

    // The state machine: runs as its role and publishes to the bus.
    let m =
        call_in(&fleet, id, "stepfunctions", "describe_state_machine", json!({"stateMachineArn": machine_arn}), HOME);
    assert_eq!(m["roleArn"], format!("arn:aws:iam::{id}:role/cm-alert-statemachine-role"));
    let def: Value = serde_json::from_str(m["definition"].as_str().unwrap()).unwrap();
    let entry = &def["States"]["Publish"]["Parameters"]["Entries"][0];
    assert_eq!(entry["EventBusName"], format!("arn:aws:events:{HOME}:{id}:event-bus/{BUS}"));
    // The alerts name the account as its account file does.
    let name = std::fs::read_to_string(fleet.desired().join(format!("accounts/{id}.yaml"))).unwrap();
    let name = name.lines().find_map(|l| l.strip_prefix("name: ")).unwrap();
    assert_eq!(def["States"]["Context"]["Result"]["account_name"], name, "{def}");
    let tags =
        call_in(&fleet, id, "stepfunctions", "list_tags_for_resource", json!({"resourceArn": machine_arn}), HOME);
    assert!(tags["tags"].as_array().unwrap().iter().any(|t| t["key"] == "cm:Members" && t["value"] == "SecureAccount"));

    // Home region: the three rules on the default bus start the machine.
    let eventrule_role = format!("arn:aws:iam::{id}:role/cm-alert-eventrule-role");
    for rule in HOME_RULES {
        let r = call_in(&fleet, id, "events", "describe_rule", json!({"Name": rule}), HOME);
        assert_eq!(r["State"], "ENABLED", "{rule}");
        assert_eq!(r["EventBusName"], "default", "{rule}");
        assert_eq!(event_tag(&fleet, id, HOME, r["Arn"].as_str().unwrap()).as_deref(), Some("SecureAccount"));
        let t = targets(&fleet, id, HOME, rule);
        assert_eq!(t, [(MACHINE.to_string(), machine_arn.clone(), eventrule_role.clone())], "{rule}");
    }
    let pattern = call_in(&fleet, id, "events", "describe_rule", json!({"Name": "cm-guardduty-alert-rule"}), HOME);
    let pattern: Value = serde_json::from_str(pattern["EventPattern"].as_str().unwrap()).unwrap();
    assert_eq!(pattern["source"], json!(["aws.guardduty"]));

    // Every other region: GuardDuty and Access Analyzer findings forwarded to the home
    // region's default bus; Security Hub's arrive through the F13 aggregator.
    let forward_role = format!("arn:aws:iam::{id}:role/cm-alert-forward-eventrule-role");
    for region in TEST_REGIONS.iter().copied().filter(|r| *r != HOME) {
        let names = rule_names(&fleet, id, region);
        for rule in forward_rules(region) {
            assert!(names.contains(&rule), "{region}: {names:?}");
            let t = targets(&fleet, id, region, &rule);
            assert_eq!(t, [("cm-forward-to-home-region".to_string(), home_bus_arn.clone(), forward_role.clone())]);
        }
        assert!(!names.iter().any(|n| n.starts_with("cm-securityhub")), "{region}: {names:?}");
        assert!(!names.iter().any(|n| HOME_RULES.contains(&n.as_str())), "{region}: {names:?}");
    }
    let home_names = rule_names(&fleet, id, HOME);
    assert!(!home_names.contains(&format!("cm-guardduty-{HOME}-alert-rule")), "{home_names:?}");

    let initial = fleet.every_account(&["plan", "--initial", "--detailed-exitcode"]);
    let initial: Vec<&str> = initial.iter().map(String::as_str).collect();
    for mode in [&initial[..], &["plan", "--detailed-exitcode"][..]] {
        let (code, again) = fleet.report(mode);
        assert_eq!(code, 0, "{mode:?}: {again}");
    }
}

#[test]
fn a_rule_deleted_by_someone_is_recreated() {
    let fleet = Fleet::new(&[("secure-co", "secure")]);
    let id = &fleet.accounts[0];
    assert_eq!(fleet.report(&["apply", "--initial"]).0, 0);
    let region = other_region();
    let [rule, _] = forward_rules(region);
    call_in(
        &fleet,
        id,
        "events",
        "remove_targets",
        json!({"Rule": rule, "Ids": ["cm-forward-to-home-region"]}),
        region,
    );
    call_in(&fleet, id, "events", "delete_rule", json!({"Name": rule}), region);
    assert!(!rule_names(&fleet, id, region).contains(&rule));

    let (code, plan) = fleet.report(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 2, "{plan}");
    let c: Vec<&Value> = account(&plan, id)["changes"].as_array().unwrap().iter().collect();
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0]["resource"], rule.as_str());
    assert_eq!(c[0]["region"], region);
    assert_eq!(c[0]["action"], "create");

    let (code, applied) = fleet.report(&["apply"]);
    assert_eq!(code, 0, "{applied}");
    assert_eq!(account(&applied, id)["status"], "converged");
    let t = targets(&fleet, id, region, &rule);
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0].1, format!("arn:aws:events:{HOME}:{id}:event-bus/default"));
    let r = call_in(&fleet, id, "events", "describe_rule", json!({"Name": rule}), region);
    assert_eq!(event_tag(&fleet, id, region, r["Arn"].as_str().unwrap()).as_deref(), Some("SecureAccount"));
    assert_eq!(fleet.report(&["plan", "--detailed-exitcode"]).0, 0);
}

#[test]
fn a_customers_untagged_bus_of_the_same_name_is_not_owned_and_left_alone() {
    let fleet = Fleet::new(&[("secure-co", "secure")]);
    let id = &fleet.accounts[0];
    let created = call_in(
        &fleet,
        id,
        "events",
        "create_event_bus",
        json!({"Name": BUS, "Description": "the customer's own bus", "Tags": [{"Key": "team", "Value": "customer"}]}),
        HOME,
    );
    let arn = created["EventBusArn"].as_str().unwrap().to_string();
    let snapshot = || {
        (
            call_in(&fleet, id, "events", "describe_event_bus", json!({"Name": BUS}), HOME)["Description"].clone(),
            call_in(&fleet, id, "events", "list_tags_for_resource", json!({"ResourceARN": arn}), HOME),
        )
    };
    let before = snapshot();

    let (code, applied) = fleet.report(&["apply", "--initial"]);
    assert_eq!(code, 0, "{applied}");
    let a = account(&applied, id);
    assert_eq!(a["status"], "converged", "{a}");
    let skip = a["skips"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["resource"] == format!("eventbridge_bus {BUS}"))
        .unwrap_or_else(|| panic!("no skip for the bus: {a}"));
    assert_eq!(skip["reason"], "not_owned");
    assert_eq!(skip["feature"], "F15");
    assert!(skip["detail"].as_str().unwrap().contains("description"), "{skip}");
    assert!(!changes(a).iter().any(|(f, t, _)| f == "F15" && t == "eventbridge_bus"));
    assert_eq!(snapshot(), before, "the customer's bus was changed");
    // The rest of the feature is in place.
    call_in(&fleet, id, "stepfunctions", "list_state_machines", json!({}), HOME)["stateMachines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == MACHINE)
        .unwrap_or_else(|| panic!("no state machine"));

    // Still the customer's at the next maintenance: reported again, changed never.
    let (code, plan) = fleet.report(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{plan}");
    assert!(account(&plan, id)["skips"].as_array().unwrap().iter().any(|s| s["reason"] == "not_owned"));
}
