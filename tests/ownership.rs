//! Accounts that arrive with the customer's own security set-up, against the emulated
//! Organization: nothing of the customer's is changed, deleted or built on by initial
//! setup or by maintenance, each refusal is reported with its reason, and what the
//! customer set before us is taken over only where desired state says so.

mod support;

use cm_baseline::journal::{Journal, Record, SqliteJournal};
use serde_json::{json, Value};
use support::{account, changes, Fleet, HOME};

const EAST: &str = "us-east-1";

/// `(feature, region, resource, reason)` of every skip of an account entry.
fn skips_of(acct: &Value) -> Vec<(String, String, String, String)> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    acct["skips"]
        .as_array()
        .map(|a| a.iter().map(|x| (s(&x["feature"]), s(&x["region"]), s(&x["resource"]), s(&x["reason"]))).collect())
        .unwrap_or_default()
}

fn skip<'a>(acct: &'a Value, region: &str, resource: &str) -> &'a Value {
    acct["skips"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["region"] == region && x["resource"] == resource))
        .unwrap_or_else(|| panic!("no skip of {resource} in {region}: {:#?}", skips_of(acct)))
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().build().expect("a runtime").block_on(f)
}

/// Two secure accounts that had their own security set-up before they joined: one its own
/// Security Hub, Config, Access Analyzer, GuardDuty, VPC pieces and password policy; the
/// other its own KMS key behind the baseline's alias.
#[test]
fn migrated_accounts_keep_every_piece_of_their_own_security_setup() {
    let fleet = Fleet::new(&[("migrated-co", "secure"), ("keyed-co", "secure")]);
    let (id, keyed) = (&fleet.accounts[0], &fleet.accounts[1]);
    let emu = &fleet.emu;
    let call_as = |account: &str, service: &str, op: &str, params: Value, region: &str| {
        emu.aws_in(account, service, op, params, region)
            .unwrap_or_else(|e| panic!("{service} {op} as {account} in {region}: {e}"))
    };
    let call_in = |service: &str, op: &str, params: Value, region: &str| call_as(id, service, op, params, region);

    // Security Hub, enabled by the customer in the home region, with a standard.
    call_in("securityhub", "enable_security_hub", json!({"EnableDefaultStandards": false}), HOME);
    let fsbp = format!("arn:aws:securityhub:{HOME}::standards/aws-foundational-security-best-practices/v/1.0.0");
    call_in(
        "securityhub",
        "batch_enable_standards",
        json!({"StandardsSubscriptionRequests": [{"StandardsArn": fsbp}]}),
        HOME,
    );
    // Config in us-east-1, under the console's name `default`, with their role and bucket.
    call_in(
        "iam",
        "create_role",
        json!({"RoleName": "customer-config-role", "AssumeRolePolicyDocument": json!({"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": "config.amazonaws.com"}, "Action": "sts:AssumeRole"}]}).to_string()}),
        HOME,
    );
    let their_bucket = format!("customer-config-{id}");
    call_in("s3", "create_bucket", json!({"Bucket": their_bucket}), EAST);
    let policy = support::config_bucket_policy(&their_bucket, id);
    call_in("s3", "put_bucket_policy", json!({"Bucket": their_bucket, "Policy": policy}), EAST);
    call_in(
        "config",
        "put_configuration_recorder",
        json!({"ConfigurationRecorder": {"name": "default", "roleARN": format!("arn:aws:iam::{id}:role/customer-config-role"),
            "recordingGroup": {"allSupported": true, "includeGlobalResourceTypes": false}}}),
        EAST,
    );
    call_in(
        "config",
        "put_delivery_channel",
        json!({"DeliveryChannel": {"name": "default", "s3BucketName": their_bucket}}),
        EAST,
    );
    call_in("config", "start_configuration_recorder", json!({"ConfigurationRecorderName": "default"}), EAST);
    // Their account analyzer in the home region, their detector in us-east-1.
    call_in("accessanalyzer", "create_analyzer", json!({"analyzerName": "customer-analyzer", "type": "ACCOUNT"}), HOME);
    call_in("guardduty", "create_detector", json!({"Enable": true}), EAST);
    // The other account's key behind the baseline's alias.
    let key = call_as(keyed, "kms", "create_key", json!({"Description": "the customer's logs key"}), HOME);
    let key_id = key["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    call_as(
        keyed,
        "kms",
        "create_alias",
        json!({"AliasName": "alias/cm-members-logs-key", "TargetKeyId": key_id}),
        HOME,
    );
    // Their password policy.
    call_in(
        "iam",
        "update_account_password_policy",
        json!({"MinimumPasswordLength": 10, "RequireSymbols": false, "AllowUsersToChangePassword": true}),
        HOME,
    );
    // Their subnet in the home region's default VPC, and an S3 gateway endpoint in the
    // us-east-1 one (no network interface: only a full look finds it).
    let default_vpc = |region: &str| {
        let vpcs =
            call_in("ec2", "describe_vpcs", json!({"Filters": [{"Name": "is-default", "Values": ["true"]}]}), region);
        vpcs["Vpcs"][0]["VpcId"].as_str().unwrap().to_string()
    };
    let (home_vpc, east_vpc) = (default_vpc(HOME), default_vpc(EAST));
    call_in("ec2", "create_subnet", json!({"VpcId": home_vpc, "CidrBlock": "172.31.128.0/20"}), HOME);
    call_in(
        "ec2",
        "create_vpc_endpoint",
        json!({"VpcId": east_vpc, "ServiceName": format!("com.amazonaws.{EAST}.s3"), "VpcEndpointType": "Gateway"}),
        EAST,
    );

    let snapshot = || {
        let q = |service: &str, op: &str, params: Value, region: &str| call_in(service, op, params, region);
        let detectors = q("guardduty", "list_detectors", json!({}), EAST);
        let detector = detectors["DetectorIds"][0].as_str().unwrap_or_default().to_string();
        vec![
            q("securityhub", "describe_hub", json!({}), HOME),
            q("securityhub", "get_enabled_standards", json!({}), HOME),
            q("securityhub", "list_automation_rules", json!({}), HOME),
            q("securityhub", "list_finding_aggregators", json!({}), HOME),
            q("config", "describe_configuration_recorders", json!({}), EAST),
            q("config", "describe_delivery_channels", json!({}), EAST),
            q("config", "describe_configuration_recorder_status", json!({}), EAST),
            q("accessanalyzer", "list_analyzers", json!({}), HOME),
            detectors,
            q("guardduty", "get_detector", json!({"DetectorId": detector}), EAST),
            call_as(keyed, "kms", "describe_key", json!({"KeyId": key_id}), HOME),
            call_as(keyed, "kms", "get_key_policy", json!({"KeyId": key_id, "PolicyName": "default"}), HOME),
            call_as(keyed, "kms", "list_resource_tags", json!({"KeyId": key_id}), HOME),
            call_as(keyed, "kms", "list_aliases", json!({"KeyId": key_id}), HOME),
            q("iam", "get_account_password_policy", json!({}), HOME),
            q("ec2", "describe_vpcs", json!({"VpcIds": [home_vpc]}), HOME),
            q("ec2", "describe_subnets", json!({"Filters": [{"Name": "vpc-id", "Values": [home_vpc]}]}), HOME),
            q("ec2", "describe_vpcs", json!({"VpcIds": [east_vpc]}), EAST),
            q("ec2", "describe_subnets", json!({"Filters": [{"Name": "vpc-id", "Values": [east_vpc]}]}), EAST),
            q("ec2", "describe_vpc_endpoints", json!({}), EAST),
        ]
    };
    let before = snapshot();

    let (code, initial) = fleet.report(&["apply", "--initial"]);
    let a = account(&initial, id);
    assert_eq!((code, a["status"].as_str()), (0, Some("converged")), "{initial:#}");
    assert_eq!(snapshot(), before, "initial setup changed something of the customer's");

    let reason = |region: &str, resource: &str| skip(a, region, resource)["reason"].as_str().unwrap().to_string();
    // Security Hub of the home region is the customer's: nothing of it is touched.
    assert_eq!(reason(HOME, "securityhub_hub hub"), "not_owned");
    let std = skip(a, HOME, "securityhub_standard aws-foundational-security-best-practices/v/1.0.0");
    assert_eq!(std["reason"], "not_owned");
    assert!(std["detail"].as_str().unwrap().contains("customer's securityhub_hub"), "{std}");
    // One recorder per region, one account analyzer per type and region: conflicts.
    let rec = skip(a, EAST, "config_recorder default");
    assert_eq!(rec["reason"], "conflict", "{rec}");
    assert!(rec["detail"].as_str().unwrap().contains("customer-config-role"), "{rec}");
    assert_eq!(reason(HOME, "access_analyzer cm-access-analyzer"), "conflict");
    // Their detector and key are not built on.
    assert_eq!(reason(EAST, "guardduty_detector account"), "not_owned");
    let graph = skip(a, EAST, "detective_graph account");
    assert_eq!(graph["reason"], "blocked_dependency");
    assert!(graph["detail"].as_str().unwrap().contains("customer's"), "{graph}");
    // The other account's key is not built on: no trail, no Config, and so no Security Hub
    // (which needs Config) there, each skip naming the customer's key.
    let k = account(&initial, keyed);
    assert_eq!(k["status"], "converged", "{k:#}");
    assert_eq!(skip(k, HOME, "kms_key alias/cm-members-logs-key")["reason"], "not_owned");
    for f in ["F07", "F08"] {
        let s = k["skips"].as_array().unwrap().iter().find(|s| s["feature"] == f).unwrap();
        assert_eq!(s["reason"], "blocked_dependency", "{s}");
        let detail = s["detail"].as_str().unwrap();
        assert!(
            detail.contains("kms_key alias/cm-members-logs-key (ap-northeast-1)") && detail.contains("customer's"),
            "{s}"
        );
    }
    assert!(!changes(k).iter().any(|(f, _, _)| f == "F07" || f == "F08" || f == "F13"), "{k:#}");
    // Their password policy is an adoption, shown with their value.
    let pw = skip(a, "global", "iam_password_policy account");
    assert_eq!(pw["reason"], "adoption");
    assert!(pw["diff"].as_str().unwrap().contains("-minimum_password_length: 10"), "{pw}");
    // The default VPCs with their pieces are kept, with what keeps them.
    let vpc = skip(a, HOME, "default_vpc default");
    assert_eq!(vpc["reason"], "in_use");
    assert!(vpc["detail"].as_str().unwrap().contains("not a default subnet"), "{vpc}");
    assert!(skip(a, EAST, "default_vpc default")["detail"].as_str().unwrap().contains("VPC endpoint"));
    // Security Hub in us-east-1 needs AWS Config recording there, which the customer's
    // recorder does: Security Hub is set up beside it, and their recorder is not changed.
    let made: Vec<(String, String, String)> = changes(a);
    let east_hub = a["changes"].as_array().unwrap().iter().any(|c| {
        c["feature"] == "F13"
            && c["region"] == EAST
            && c["resource_type"] == "securityhub_hub"
            && c["action"] == "create"
    });
    assert!(east_hub, "{a:#}");
    // Where nothing was the customer's, the baseline is in place.
    for kind in ["config_recorder", "guardduty_detector", "detective_graph", "cloudtrail_trail"] {
        assert!(made.iter().any(|(_, k, _)| k == kind), "{kind}: {made:?}");
    }
    assert!(!a["changes"].as_array().unwrap().iter().any(|c| c["feature"] == "F13" && c["region"] == HOME), "{a:#}");

    let (code, maintained) = fleet.report(&["apply"]);
    for acct in [id, keyed] {
        assert_eq!(account(&maintained, acct)["status"], "converged", "{maintained:#}");
    }
    assert_eq!(code, 0);
    assert_eq!(snapshot(), before, "maintenance changed something of the customer's");
}

/// A customer's own password policy is reported until desired state adopts it; once
/// adopted, it is maintained like anything of ours.
#[test]
fn a_customer_setting_is_adopted_only_when_desired_state_says_so() {
    let fleet = Fleet::new(&[("adopting-co", "secure")]);
    let id = &fleet.accounts[0];
    let policy = || fleet.emu.call(id, "iam", "get_account_password_policy", json!({}))["PasswordPolicy"].clone();
    fleet.emu.call(
        id,
        "iam",
        "update_account_password_policy",
        json!({"MinimumPasswordLength": 10, "RequireSymbols": false}),
    );
    let theirs = policy();

    let (code, r) = fleet.report(&["apply", "--initial"]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(skip(account(&r, id), "global", "iam_password_policy account")["reason"], "adoption");
    assert_eq!(policy(), theirs);

    // Adopted in the account file: the plan shows the adoption, apply makes it.
    let file = fleet.desired().join(format!("accounts/{id}.yaml"));
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{text}adopt:\n  F03: overwrite\n")).unwrap();
    let (code, planned) = fleet.report(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 2, "{planned:#}");
    assert_eq!(changes(account(&planned, id)), [("F03".into(), "iam_password_policy".into(), "adopt".into())]);
    let (code, applied) = fleet.report(&["apply"]);
    assert_eq!((code, account(&applied, id)["status"].as_str()), (0, Some("converged")), "{applied:#}");
    assert_eq!(policy()["MinimumPasswordLength"], 8, "{}", policy());
    let records = block(SqliteJournal::open(&fleet.state().join("journal.sqlite")).unwrap().records(id)).unwrap();
    assert!(records.iter().any(|r| r.kind == "iam_password_policy" && r.how == "adopted"), "{records:?}");

    // The adoption is no longer in desired state, but the record keeps it ours: someone's
    // later change is drift, repaired.
    std::fs::write(&file, text).unwrap();
    fleet.emu.call(id, "iam", "update_account_password_policy", json!({"MinimumPasswordLength": 6}));
    let (code, repaired) = fleet.report(&["apply"]);
    let a = account(&repaired, id);
    assert_eq!(code, 0, "{a:#}");
    assert_eq!(changes(a), [("F03".into(), "iam_password_policy".into(), "update".into())]);
    assert_eq!(policy()["MinimumPasswordLength"], 8);
}

/// A run cut short leaves a key without its alias, or a bucket without its tag: the next
/// run finishes them, and makes no second key.
#[test]
fn a_create_cut_short_is_finished_by_the_next_run_never_duplicated() {
    let fleet = Fleet::new(&[("interrupted-co", "secure")]);
    let id = &fleet.accounts[0];
    // The logs key as a cut-short create leaves it: made with its tag, never aliased.
    let desc = "cm-members logs key (CloudTrail and AWS Config)";
    let f09 = std::fs::read_to_string(fleet.desired().join("features/F09-kms-logs-key.yaml")).unwrap();
    assert!(f09.contains(desc), "the shipped description changed: update this test\n{f09}");
    let key = fleet.emu.call(
        id,
        "kms",
        "create_key",
        json!({"Description": desc, "Tags": [{"TagKey": "cm:Members", "TagValue": "SecureAccount"}]}),
    );
    let key_id = key["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    // The trail bucket as a cut-short create leaves it: made, not tagged, and recorded.
    let bucket = format!("cm-members-cloudtrail-{id}");
    fleet.emu.call(
        id,
        "s3",
        "create_bucket",
        json!({"Bucket": bucket, "CreateBucketConfiguration": {"LocationConstraint": HOME}}),
    );
    std::fs::create_dir_all(fleet.state()).unwrap();
    let journal = SqliteJournal::open(&fleet.state().join("journal.sqlite")).unwrap();
    let record = Record {
        kind: "s3_bucket".into(),
        region: HOME.into(),
        name: bucket.clone(),
        feature: "F07".into(),
        how: "creating".into(),
        at: "2026-11-28T02:00:00Z".into(),
    };
    block(journal.record(id, &record)).unwrap();

    let (code, r) = fleet.report(&["apply", "--initial"]);
    let a = account(&r, id);
    assert_eq!((code, a["status"].as_str()), (0, Some("converged")), "{a:#}");
    let keys = fleet.emu.call(id, "kms", "list_keys", json!({}));
    assert_eq!(keys["Keys"].as_array().unwrap().len(), 1, "a second key was made: {keys}");
    let alias = fleet.emu.call(id, "kms", "list_aliases", json!({"KeyId": key_id}));
    assert_eq!(alias["Aliases"][0]["AliasName"], "alias/cm-members-logs-key", "{alias}");
    let tags = fleet.emu.call(id, "s3", "get_bucket_tagging", json!({"Bucket": bucket}));
    assert!(tags["TagSet"].as_array().unwrap().iter().any(|t| t["Key"] == "cm:Members"), "{tags}");
    assert!(changes(a).iter().any(|c| c == &("F07".into(), "s3_bucket".into(), "tag".into())), "{:?}", changes(a));
    assert_eq!(fleet.report(&["plan", "--detailed-exitcode"]).0, 0);
}

#[test]
fn an_offboarding_removes_only_what_is_ours_keeps_the_evidence_and_ends_maintenance() {
    let fleet = Fleet::new(&[("leaving-co", "secure"), ("staying-co", "basic")]);
    let (id, staying) = (fleet.accounts[0].clone(), fleet.accounts[1].clone());
    assert_eq!(fleet.report(&["apply", "--initial"]).0, 0);
    let role = |name: &str| fleet.emu.aws(&id, "iam", "get_role", json!({"RoleName": name})).is_ok();
    let trail_bucket = format!("cm-members-cloudtrail-{id}");
    let bucket = |b: &str| fleet.emu.aws(&id, "s3", "head_bucket", json!({"Bucket": b})).is_ok();
    assert!(role("cm-helpdesk") && role("cm-membersportal") && bucket(&trail_bucket));
    // The customer's look-alike under one of the baseline's names: not provably ours.
    fleet.emu.call(&id, "iam", "untag_role", json!({"RoleName": "cm-membersportal", "TagKeys": ["cm:Members"]}));

    // The plan: deletes only, what depends on something first; the rest said kept, with why.
    let (code, plan) = fleet.report(&["offboard", "--account", &id]);
    assert_eq!(code, 0, "{plan}");
    let a = account(&plan, &id);
    let planned = changes(a);
    assert!(planned.iter().all(|(_, _, action)| action == "delete"), "{planned:?}");
    let removed: Vec<String> =
        a["changes"].as_array().unwrap().iter().map(|c| c["resource"].as_str().unwrap().to_string()).collect();
    assert!(removed.contains(&"cm-helpdesk".to_string()), "{removed:?}");
    assert!(removed.iter().any(|r| r == "cm-guardduty-alert-rule"), "{removed:?}");
    for never in ["cm-membersportal", "cm-policymaintainer", "cm-config-role-all-regions", trail_bucket.as_str()] {
        assert!(!removed.iter().any(|r| r == never), "{never} planned for removal: {removed:?}");
    }
    let rule = removed.iter().position(|r| r == "cm-guardduty-alert-rule").unwrap();
    let rule_role = removed.iter().position(|r| r == "cm-alert-eventrule-role").unwrap();
    assert!(rule < rule_role, "the role goes before the rule that uses it: {removed:?}");
    let skipped = support::skips(a);
    for f in ["F07", "F08", "F09", "F12", "F13"] {
        assert!(skipped.contains(&(f.to_string(), "kept".to_string())), "{f} not said kept: {skipped:?}");
    }
    assert!(skipped.contains(&("F01".to_string(), "not_owned".to_string())), "{skipped:?}");

    // It deletes: carried out only as reviewed.
    let out = fleet.run(&["offboard", "--account", &id, "--apply"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("runs only as reviewed"));
    assert!(role("cm-helpdesk"), "a refused offboarding changed something");
    let file = fleet.dir.path().join("offboard.json");
    let out = fleet.run(&["offboard", "--account", &id, "--format", "json", "--out", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, applied) = fleet.report(&["offboard", "--account", &id, "--apply", "--plan", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{applied}");
    assert_eq!(account(&applied, &id)["status"], "converged", "{applied}");
    assert!(!role("cm-helpdesk") && !role("cm-alert-eventrule-role"), "ours not removed");
    assert!(role("cm-membersportal"), "the customer's look-alike was removed");
    assert!(role("cm-policymaintainer") && role("cm-config-role-all-regions"));
    assert!(bucket(&trail_bucket), "the trail's bucket, under Object Lock, was removed");

    // Left: no longer maintained, even with its account file still there.
    let (code, p) = fleet.report(&["plan"]);
    assert_eq!(code, 0);
    let ids: Vec<&str> = p["accounts"].as_array().unwrap().iter().map(|a| a["account_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [staying.as_str()]);
    assert_eq!(p["inventory"]["offboarded"], json!([id]), "{}", p["inventory"]);
    let listed = String::from_utf8_lossy(&fleet.run(&["accounts"]).stdout).to_string();
    assert!(listed.contains(&format!("{id:<13}")) && listed.contains("offboarded: no longer maintained"), "{listed}");
}

/// 4.3.5: initial setup makes AWS's own key the EBS default key; the customer may switch to
/// their own key afterwards, and maintenance keeps encryption on but leaves their key alone,
/// saying so in the report (a `customer_choice`, not a change).
#[test]
fn maintenance_leaves_the_customers_own_ebs_key_and_says_so() {
    let fleet = Fleet::new(&[("basic-co", "basic")]);
    let id = fleet.accounts[0].clone();
    fleet.enrol(&id, "basic-co", "basic", &[("F11", true)]);
    let ec2 = |op: &str, params: Value, region: &str| {
        fleet.emu.aws_in(&id, "ec2", op, params, region).unwrap_or_else(|e| panic!("ec2 {op} in {region}: {e}"))
    };
    let (code, initial) = fleet.report(&["apply", "--initial"]);
    assert_eq!(code, 0, "{initial}");
    for region in support::TEST_REGIONS {
        assert_eq!(ec2("get_ebs_encryption_by_default", json!({}), region)["EbsEncryptionByDefault"], true);
        assert_eq!(ec2("get_ebs_default_kms_key_id", json!({}), region)["KmsKeyId"], "alias/aws/ebs", "{region}");
    }

    // The customer switches us-east-1 to their own key, and encryption off.
    let key = fleet.emu.aws_in(&id, "kms", "create_key", json!({"Description": "ours, for erasure"}), EAST);
    let key_arn = key.unwrap_or_else(|e| panic!("{e}"))["KeyMetadata"]["Arn"].as_str().unwrap().to_string();
    ec2("modify_ebs_default_kms_key_id", json!({"KmsKeyId": key_arn}), EAST);
    ec2("disable_ebs_encryption_by_default", json!({}), EAST);
    let (code, maintained) = fleet.report(&["apply"]);
    assert_eq!(code, 0, "{maintained}");
    let a = account(&maintained, &id);
    let ebs: Vec<(String, String)> = a["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["feature"] == "F11")
        .map(|c| (c["region"].as_str().unwrap().to_string(), c["action"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(ebs, [(EAST.to_string(), "update".to_string())], "{a:#}");
    let note = skip(a, EAST, "ebs_default_encryption account");
    assert_eq!(note["reason"], "customer_choice", "{note}");
    assert!(note["detail"].as_str().unwrap().contains(&key_arn), "{note}");
    assert!(note["diff"].as_str().unwrap().contains("+kms_key: alias/aws/ebs"), "{note}");
    assert_eq!(ec2("get_ebs_encryption_by_default", json!({}), EAST)["EbsEncryptionByDefault"], true);
    assert_eq!(ec2("get_ebs_default_kms_key_id", json!({}), EAST)["KmsKeyId"], key_arn.as_str());
    // Nothing more to do, and the note stays in every report.
    let (code, again) = fleet.report(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{again}");
    assert_eq!(skip(account(&again, &id), EAST, "ebs_default_encryption account")["reason"], "customer_choice");

    // Initial setup, run again on purpose (the account is set up already), sets AWS's own
    // key back.
    let refused = fleet.run(&["apply", "--initial", "--account", &id]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && said.contains("--force-initial"), "{said}");
    let (code, reset) = fleet.report(&["apply", "--initial", "--force-initial", "--account", &id]);
    assert_eq!(code, 0, "{reset}");
    let managed = ec2("get_ebs_default_kms_key_id", json!({}), EAST)["KmsKeyId"].as_str().unwrap().to_string();
    assert_ne!(managed, key_arn);
    let aliases = fleet.emu.aws_in(&id, "kms", "list_aliases", json!({}), EAST).unwrap_or_else(|e| panic!("{e}"));
    let target = aliases["Aliases"].as_array().unwrap().iter().find(|a| a["AliasName"] == "alias/aws/ebs").unwrap()
        ["TargetKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(managed.ends_with(&format!("key/{target}")), "{managed}");
}
