//! F13 Security Hub, end to end against the emulated Organization.

mod support;

use serde_json::{json, Value};
use support::{account, changes, skips, Fleet, HOME, TEST_REGIONS};

const FSBP: &str = "aws-foundational-security-best-practices/v/1.0.0";
const EVERYWHERE: [&str; 5] = ["Account.1", "CloudTrail.5", "IAM.6", "KMS.1", "KMS.2"];
const OUTSIDE_HOME: [&str; 9] = ["Config.1", "IAM.1", "IAM.2", "IAM.3", "IAM.4", "IAM.5", "IAM.7", "IAM.8", "IAM.21"];
const RULE: &str = "Suppress KMS.2 for cm-config-role-all-regions";

fn call_in(fleet: &Fleet, id: &str, op: &str, params: Value, region: &str) -> Value {
    fleet
        .emu
        .aws_in(id, "securityhub", op, params, region)
        .unwrap_or_else(|e| panic!("securityhub {op} in {region}: {e}"))
}

fn fsbp(region: &str) -> String {
    format!("arn:aws:securityhub:{region}::standards/{FSBP}")
}

/// `(status, reason)` of each control, in `region`'s FSBP standard.
fn controls(fleet: &Fleet, id: &str, region: &str, ids: &[&str]) -> Vec<(String, String, String)> {
    let req: Vec<Value> = ids.iter().map(|c| json!({"StandardsArn": fsbp(region), "SecurityControlId": c})).collect();
    let out = call_in(
        fleet,
        id,
        "batch_get_standards_control_associations",
        json!({"StandardsControlAssociationIds": req}),
        region,
    );
    out["StandardsControlAssociationDetails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["SecurityControlId"].as_str().unwrap().to_string(),
                d["AssociationStatus"].as_str().unwrap().to_string(),
                d["UpdatedReason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn status_of(fleet: &Fleet, id: &str, region: &str, control: &str) -> String {
    controls(fleet, id, region, &[control]).pop().map(|(_, s, _)| s).unwrap_or_default()
}

fn tags(fleet: &Fleet, id: &str, region: &str, arn: &str) -> Value {
    call_in(fleet, id, "list_tags_for_resource", json!({"ResourceArn": arn}), region)["Tags"].clone()
}

fn by_operation(report: &Value, id: &str) -> Vec<String> {
    account(report, id)["api_calls"]["by_operation"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn a_fresh_secure_account_converges_with_hub_standard_aggregator_and_rule() {
    let fleet = Fleet::new(&[("secure-co", "secure")]);
    let id = &fleet.accounts[0];

    let (code, applied) = fleet.report(&["apply", "--initial"]);
    assert_eq!(code, 0, "{applied}");
    let a = account(&applied, id);
    assert_eq!(a["status"], "converged", "{a}");
    let c = changes(a);
    for t in
        ["securityhub_hub", "securityhub_standard", "securityhub_finding_aggregator", "securityhub_automation_rule"]
    {
        assert!(c.iter().any(|(f, tt, act)| f == "F13" && tt == t && act == "create"), "{t}: {c:?}");
    }
    // The feature's own order: hub, standard, aggregator, rule; and Config (F08) before it.
    let order: Vec<&str> = a["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["feature"] == "F13" || c["resource_type"] == "config_recorder")
        .map(|c| c["resource_type"].as_str().unwrap())
        .collect();
    let first = |t: &str| order.iter().position(|x| *x == t).unwrap();
    assert!(first("config_recorder") < first("securityhub_hub"), "{order:?}");
    assert!(first("securityhub_hub") < first("securityhub_standard"), "{order:?}");
    assert!(first("securityhub_standard") < first("securityhub_finding_aggregator"), "{order:?}");
    assert!(first("securityhub_finding_aggregator") < first("securityhub_automation_rule"), "{order:?}");

    for region in TEST_REGIONS {
        let hub = call_in(&fleet, id, "describe_hub", json!({}), region);
        assert_eq!(hub["ControlFindingGenerator"], "SECURITY_CONTROL", "{region}: {hub}");
        assert_eq!(hub["AutoEnableControls"], true, "{region}: {hub}");
        let hub_arn = hub["HubArn"].as_str().unwrap();
        assert_eq!(tags(&fleet, id, region, hub_arn)["cm:Members"], "SecureAccount", "{region}");
        // FSBP only: AWS's default standards were not enabled with the hub.
        let std = call_in(&fleet, id, "get_enabled_standards", json!({}), region);
        let arns: Vec<&str> = std["StandardsSubscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["StandardsArn"].as_str().unwrap())
            .collect();
        assert_eq!(arns, [fsbp(region)], "{region}");
        // Disabled everywhere, with a reason.
        for (c, status, reason) in controls(&fleet, id, region, &EVERYWHERE) {
            assert_eq!(status, "DISABLED", "{region} {c}");
            assert!(reason.starts_with("cm-baseline:"), "{region} {c}: {reason}");
        }
        // Disabled outside the home region only.
        let want = if region == HOME { "ENABLED" } else { "DISABLED" };
        for (c, status, _) in controls(&fleet, id, region, &OUTSIDE_HOME) {
            assert_eq!(status, want, "{region} {c}");
        }
        // A control desired state does not name is left as AWS enables it.
        assert_eq!(status_of(&fleet, id, region, "S3.1"), "ENABLED", "{region}");
    }

    // One aggregator, in the home region, linking every region (future ones included).
    let aggs = call_in(&fleet, id, "list_finding_aggregators", json!({}), HOME);
    let aggs = aggs["FindingAggregators"].as_array().unwrap();
    assert_eq!(aggs.len(), 1, "{aggs:?}");
    let agg = call_in(
        &fleet,
        id,
        "get_finding_aggregator",
        json!({"FindingAggregatorArn": aggs[0]["FindingAggregatorArn"]}),
        HOME,
    );
    assert_eq!(agg["FindingAggregationRegion"], HOME);
    assert_eq!(agg["RegionLinkingMode"], "ALL_REGIONS");

    // The automation rule, in the home region only.
    let rules = call_in(&fleet, id, "list_automation_rules", json!({}), HOME);
    let meta = rules["AutomationRulesMetadata"].as_array().unwrap();
    assert_eq!(meta.len(), 1, "{meta:?}");
    let arn = meta[0]["RuleArn"].as_str().unwrap();
    let got = call_in(&fleet, id, "batch_get_automation_rules", json!({"AutomationRulesArns": [arn]}), HOME);
    let rule = &got["Rules"][0];
    assert_eq!(rule["RuleName"], RULE);
    assert_eq!(rule["RuleOrder"], 100);
    assert_eq!(rule["IsTerminal"], false);
    let crit = &rule["Criteria"];
    assert_eq!(crit["RecordState"], json!([{"Value": "ACTIVE", "Comparison": "EQUALS"}]));
    assert_eq!(crit["WorkflowStatus"], json!([{"Value": "NEW", "Comparison": "EQUALS"}]));
    assert_eq!(crit["GeneratorId"], json!([{"Value": format!("{FSBP}/KMS.2"), "Comparison": "EQUALS"}]));
    assert_eq!(
        crit["ResourceId"],
        json!([{"Value": format!("arn:aws:iam::{id}:role/cm-config-role-all-regions"), "Comparison": "EQUALS"}])
    );
    assert_eq!(rule["Actions"][0]["Type"], "FINDING_FIELDS_UPDATE");
    assert_eq!(rule["Actions"][0]["FindingFieldsUpdate"]["Workflow"]["Status"], "SUPPRESSED");
    assert_eq!(tags(&fleet, id, HOME, arn)["cm:Members"], "SecureAccount");
    let elsewhere = TEST_REGIONS.iter().copied().find(|r| *r != HOME).unwrap();
    let none = call_in(&fleet, id, "list_automation_rules", json!({}), elsewhere);
    assert!(none["AutomationRulesMetadata"].as_array().unwrap().is_empty());

    let initial = fleet.every_account(&["plan", "--initial", "--detailed-exitcode"]);
    let initial: Vec<&str> = initial.iter().map(String::as_str).collect();
    for mode in [&initial[..], &["plan", "--detailed-exitcode"][..]] {
        let (code, again) = fleet.report(mode);
        assert_eq!(code, 0, "{mode:?}: {again}");
    }
}

#[test]
fn a_disabled_control_re_enabled_by_someone_is_shown_and_disabled_again() {
    let fleet = Fleet::new(&[("secure-co", "secure")]);
    let id = &fleet.accounts[0];
    assert_eq!(fleet.report(&["apply", "--initial"]).0, 0);

    let update = |control: &str, status: &str| {
        call_in(
            &fleet,
            id,
            "batch_update_standards_control_associations",
            json!({"StandardsControlAssociationUpdates": [{
                "StandardsArn": fsbp(HOME), "SecurityControlId": control,
                "AssociationStatus": status, "UpdatedReason": "changed by the customer"
            }]}),
            HOME,
        )
    };
    update("IAM.6", "ENABLED");
    // A control the baseline does not name is the customer's business.
    update("S3.1", "DISABLED");

    let out = fleet.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("-    status: ENABLED") && text.contains("+    status: DISABLED"), "{text}");
    assert!(!text.contains("S3.1"), "{text}");
    let (_, plan) = fleet.report(&["plan"]);
    let c: Vec<&Value> = account(&plan, id)["changes"].as_array().unwrap().iter().collect();
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!((c[0]["feature"].as_str(), c[0]["resource_type"].as_str()), (Some("F13"), Some("securityhub_standard")));
    assert_eq!((c[0]["region"].as_str(), c[0]["action"].as_str()), (Some(HOME), Some("update")));

    let (code, applied) = fleet.report(&["apply"]);
    assert_eq!(code, 0, "{applied}");
    assert_eq!(account(&applied, id)["status"], "converged");
    let (_, status, reason) = controls(&fleet, id, HOME, &["IAM.6"]).pop().unwrap();
    assert_eq!(status, "DISABLED");
    assert!(reason.starts_with("cm-baseline:"), "{reason}");
    assert_eq!(status_of(&fleet, id, HOME, "S3.1"), "DISABLED", "a control outside desired state was changed");
    assert_eq!(fleet.report(&["plan", "--detailed-exitcode"]).0, 0);
}

#[test]
fn security_hub_without_config_is_blocked_not_half_applied() {
    let fleet = Fleet::new(&[("basic-co", "basic")]);
    let id = fleet.accounts[0].clone();
    fleet.enrol(&id, "basic-co", "basic", &[("F13", true), ("F08", false)]);

    let (code, plan) = fleet.report(&["plan"]);
    assert_eq!(code, 0, "{plan}");
    let a = account(&plan, &id);
    let s = skips(a);
    assert!(s.iter().any(|(f, r)| f == "F13" && r == "blocked_dependency"), "{a}");
    assert!(s.iter().any(|(f, r)| f == "F08" && r == "opted_out"), "{a}");
    let blocked = a["skips"].as_array().unwrap().iter().find(|x| x["feature"] == "F13").unwrap();
    assert!(blocked["detail"].as_str().unwrap().contains("F08"), "{blocked}");

    let (code, applied) = fleet.report(&["apply"]);
    assert_eq!(code, 0, "{applied}");
    assert!(!changes(account(&applied, &id)).iter().any(|(f, _, _)| f == "F13" || f == "F08"));
    for region in TEST_REGIONS {
        assert!(fleet.emu.aws_in(&id, "securityhub", "describe_hub", json!({}), region).is_err(), "{region}");
    }
}

#[test]
fn an_account_linked_to_a_security_hub_administrator_stays_linked() {
    let fleet = Fleet::new(&[("member-co", "secure")]);
    let id = &fleet.accounts[0];
    let admin = fleet.emu.call(
        "management",
        "organizations",
        "create_account",
        json!({"Email": "sec-admin@example.com", "AccountName": "security-admin"}),
    );
    let admin = admin["CreateAccountStatus"]["AccountId"].as_str().unwrap().to_string();
    fleet.emu.call("management", "securityhub", "enable_organization_admin_account", json!({"AdminAccountId": admin}));
    // The customer's own hub, linked to their administrator.
    for region in TEST_REGIONS {
        call_in(&fleet, id, "enable_security_hub", json!({}), region);
        let linked = call_in(&fleet, id, "get_administrator_account", json!({}), region);
        assert_eq!(linked["Administrator"]["AccountId"], admin.as_str(), "{region}: {linked}");
    }

    let (code, applied) = fleet.report(&["apply", "--initial"]);
    assert_eq!(code, 0, "{applied}");
    let a = account(&applied, id);
    assert_eq!(a["status"], "converged", "{a}");
    // The hub is the customer's: left alone, reported.
    let hub_skips = a["skips"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["feature"] == "F13" && s["resource"] == "securityhub_hub hub" && s["reason"] == "not_owned")
        .count();
    assert_eq!(hub_skips, TEST_REGIONS.len(), "{a}");
    // And so is everything that belongs to it: nothing of F13 is changed or added there.
    assert!(!changes(a).iter().any(|(f, _, _)| f == "F13"), "{a}");
    let standards = a["skips"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["resource"].as_str().unwrap_or_default().starts_with("securityhub_standard ")
                && s["reason"] == "not_owned"
        })
        .count();
    assert_eq!(standards, TEST_REGIONS.len(), "{a}");
    let ops = by_operation(&applied, id);
    for forbidden in [
        "securityhub:DisassociateFromAdministratorAccount",
        "securityhub:DisassociateFromMasterAccount",
        "securityhub:DisableSecurityHub",
    ] {
        assert!(!ops.iter().any(|o| o == forbidden), "{forbidden} was called: {ops:?}");
    }
    for region in TEST_REGIONS {
        let linked = call_in(&fleet, id, "get_administrator_account", json!({}), region);
        assert_eq!(linked["Administrator"]["AccountId"], admin.as_str(), "{region}: {linked}");
        let hub = call_in(&fleet, id, "describe_hub", json!({}), region);
        assert!(tags(&fleet, id, region, hub["HubArn"].as_str().unwrap()).get("cm:Members").is_none(), "{region}");
        // The standard belongs to the customer's hub: its controls are left as they were.
        assert_eq!(status_of(&fleet, id, region, "IAM.6"), "ENABLED", "{region}");
    }
}

/// Control Tower skips the baseline's Config (R2), but its own recorder is AWS Config
/// recording all the same, which is all Security Hub needs (4.3.7, 4.4.2): F13 is set up in
/// a region where Control Tower's recorder records, and waits where none does. Control
/// Tower's recorder is only relied on, never changed.
#[test]
fn in_a_control_tower_account_security_hub_builds_on_control_towers_recording_config() {
    let fleet = Fleet::new(&[("tower-co", "secure")]);
    let id = fleet.accounts[0].clone();
    let emu = &fleet.emu;
    let call = |service: &str, op: &str, params: Value, region: &str| {
        emu.aws_in(&id, service, op, params, region).unwrap_or_else(|e| panic!("{service} {op} in {region}: {e}"))
    };
    call(
        "iam",
        "create_role",
        json!({"RoleName": "aws-controltower-AdministratorExecutionRole", "AssumeRolePolicyDocument": "{}"}),
        HOME,
    );
    // Control Tower's recorder in the home region, recording; none in us-east-1.
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "config.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    call(
        "iam",
        "create_role",
        json!({"RoleName": "aws-controltower-ConfigRecorderRole", "AssumeRolePolicyDocument": trust.to_string()}),
        HOME,
    );
    let logs = format!("aws-controltower-logs-{id}-{HOME}");
    call(
        "s3",
        "create_bucket",
        json!({"Bucket": logs, "CreateBucketConfiguration": {"LocationConstraint": HOME}}),
        HOME,
    );
    let policy = support::config_bucket_policy(&logs, &id);
    call("s3", "put_bucket_policy", json!({"Bucket": logs, "Policy": policy}), HOME);
    let tower_recorder = "aws-controltower-BaselineConfigRecorder";
    call(
        "config",
        "put_configuration_recorder",
        json!({"ConfigurationRecorder": {"name": tower_recorder,
            "roleARN": format!("arn:aws:iam::{id}:role/aws-controltower-ConfigRecorderRole"),
            "recordingGroup": {"allSupported": true, "includeGlobalResourceTypes": true}}}),
        HOME,
    );
    call(
        "config",
        "put_delivery_channel",
        json!({"DeliveryChannel": {"name": "aws-controltower-BaselineConfigDeliveryChannel", "s3BucketName": logs}}),
        HOME,
    );
    call("config", "start_configuration_recorder", json!({"ConfigurationRecorderName": tower_recorder}), HOME);
    let tower_config = || {
        vec![
            call("config", "describe_configuration_recorders", json!({}), HOME),
            call("config", "describe_delivery_channels", json!({}), HOME),
            call("config", "describe_configuration_recorder_status", json!({}), HOME),
        ]
    };
    let before = tower_config();

    let (code, applied) = fleet.report(&["apply", "--initial"]);
    assert_eq!(code, 0, "{applied}");
    let a = account(&applied, &id);
    assert_eq!(a["status"], "converged", "{a:#}");
    assert!(skips(a).iter().any(|(f, r)| f == "F08" && r == "control_tower"), "{a:#}");
    assert!(!changes(a).iter().any(|(f, _, _)| f == "F08"), "{a:#}");
    // The home region: all of Security Hub, on Control Tower's Config.
    let made: Vec<(String, String)> = a["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["feature"] == "F13")
        .map(|c| (c["region"].as_str().unwrap().to_string(), c["resource_type"].as_str().unwrap().to_string()))
        .collect();
    for t in
        ["securityhub_hub", "securityhub_standard", "securityhub_finding_aggregator", "securityhub_automation_rule"]
    {
        assert!(made.contains(&(HOME.to_string(), t.to_string())), "{t}: {made:?}");
    }
    assert!(call_in(&fleet, &id, "describe_hub", json!({}), HOME)["HubArn"].is_string());
    // us-east-1 has no recorder: Security Hub waits there, saying why.
    assert!(!made.iter().any(|(r, _)| r == "us-east-1"), "{made:?}");
    let east = a["skips"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["feature"] == "F13" && s["region"] == "us-east-1" && s["resource"] == "securityhub_hub hub")
        .unwrap_or_else(|| panic!("{a:#}"));
    assert_eq!(east["reason"], "blocked_dependency", "{east}");
    assert!(east["detail"].as_str().unwrap().contains("nor is any config_recorder working in us-east-1"), "{east}");
    assert!(fleet.emu.aws_in(&id, "securityhub", "describe_hub", json!({}), "us-east-1").is_err());
    assert_eq!(tower_config(), before, "Control Tower's Config was changed");

    // Control Tower's recorder stopped: nothing of Security Hub is added or removed, and
    // the baseline does not restart it.
    call("config", "stop_configuration_recorder", json!({"ConfigurationRecorderName": tower_recorder}), HOME);
    let (code, plan) = fleet.report(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{plan}");
    let p = account(&plan, &id);
    assert!(skips(p).iter().any(|(f, r)| f == "F13" && r == "blocked_dependency"), "{p:#}");
    assert!(changes(p).is_empty(), "{p:#}");
}

/// 4.3.7: the aggregation Region is the home region. An aggregator of ours found in another
/// Region is moved (deleted there, a delete the brake stops for, then created at home); one
/// under the customer's hub is a conflict, reported and left alone.
#[test]
fn an_aggregator_outside_the_home_region_is_moved_home_or_reported_when_not_ours() {
    let fleet = Fleet::new(&[("basic-co", "basic")]);
    let id = fleet.accounts[0].clone();
    fleet.enrol(&id, "basic-co", "basic", &[("F08", true), ("F13", true)]);
    let (code, initial) = fleet.report(&["apply", "--initial"]);
    assert_eq!(code, 0, "{initial}");
    let east = "us-east-1";
    let aggregator = |region: &str| {
        let list = call_in(&fleet, &id, "list_finding_aggregators", json!({}), region);
        list["FindingAggregators"]
            .as_array()
            .unwrap()
            .first()
            .map(|a| a["FindingAggregatorArn"].as_str().unwrap().to_string())
    };
    let ours = aggregator(HOME).expect("the baseline's aggregator");
    assert!(ours.starts_with(&format!("arn:aws:securityhub:{HOME}:")), "{ours}");

    // Someone moves it to us-east-1.
    call_in(&fleet, &id, "delete_finding_aggregator", json!({"FindingAggregatorArn": ours}), HOME);
    call_in(&fleet, &id, "create_finding_aggregator", json!({"RegionLinkingMode": "ALL_REGIONS"}), east);
    let (code, plan) = fleet.report(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 2, "{plan}");
    let a = account(&plan, &id);
    let moved: Vec<(String, String)> = a["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["resource_type"] == "securityhub_finding_aggregator")
        .map(|c| (c["action"].as_str().unwrap().to_string(), c["region"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(moved, [("delete".to_string(), east.to_string()), ("create".to_string(), HOME.to_string())], "{a:#}");
    assert_eq!(changes(a).len(), 2, "{a:#}");

    let (code, applied) = fleet.report(&["apply"]);
    assert_eq!(code, 0, "{applied}");
    assert_eq!(account(&applied, &id)["status"], "converged", "{applied:#}");
    let home = aggregator(east).expect("an aggregator");
    assert!(home.starts_with(&format!("arn:aws:securityhub:{HOME}:")), "{home}");
    let got = call_in(&fleet, &id, "get_finding_aggregator", json!({"FindingAggregatorArn": home}), HOME);
    assert_eq!(got["RegionLinkingMode"], "ALL_REGIONS", "{got}");

    // Under the customer's hub in us-east-1 (without our tag): theirs, a conflict.
    let hub = call_in(&fleet, &id, "describe_hub", json!({}), east)["HubArn"].as_str().unwrap().to_string();
    call_in(&fleet, &id, "untag_resource", json!({"ResourceArn": hub, "TagKeys": ["cm:Members"]}), east);
    call_in(&fleet, &id, "delete_finding_aggregator", json!({"FindingAggregatorArn": home}), HOME);
    call_in(&fleet, &id, "create_finding_aggregator", json!({"RegionLinkingMode": "ALL_REGIONS"}), east);
    let theirs = aggregator(HOME).expect("their aggregator");
    let (code, plan) = fleet.report(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{plan}");
    let a = account(&plan, &id);
    let s = a["skips"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["resource"] == "securityhub_finding_aggregator aggregator")
        .unwrap_or_else(|| panic!("{a:#}"));
    assert_eq!((s["reason"].as_str(), s["region"].as_str()), (Some("conflict"), Some(HOME)), "{s}");
    assert!(s["detail"].as_str().unwrap().contains("it is in us-east-1"), "{s}");
    assert!(skips(a).iter().any(|(f, r)| f == "F13" && r == "not_owned"), "{a:#}");
    let (code, applied) = fleet.report(&["apply"]);
    assert_eq!(code, 0, "{applied}");
    assert_eq!(aggregator(HOME), Some(theirs));
}
