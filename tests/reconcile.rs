//! End to end: the real binary against the emulated Organization.

mod support;

use serde_json::json;
use support::{account, changes, skips, Fleet};

fn has(v: &[(String, String, String)], f: &str, t: &str, a: &str) -> bool {
    v.iter().any(|(ff, tt, aa)| ff == f && tt == t && aa == a)
}

fn has_skip(v: &[(String, String)], f: &str, reason: &str) -> bool {
    v.iter().any(|(ff, r)| ff == f && r == reason)
}

#[test]
fn fresh_fleet_converges_in_one_initial_apply_then_plans_clean() {
    let fleet = Fleet::new(&[("basic-co", "basic"), ("secure-co", "secure"), ("tower-co", "secure")]);
    let (basic, secure, tower) = (&fleet.accounts[0], &fleet.accounts[1], &fleet.accounts[2]);
    fleet.emu.call(
        tower,
        "iam",
        "create_role",
        json!({"RoleName": "aws-controltower-AdministratorExecutionRole", "AssumeRolePolicyDocument": "{}"}),
    );

    // The dry run shows the whole tier, and changes nothing.
    let (code, plan) = fleet.report(&["plan", "--initial", "--detailed-exitcode"]);
    assert_eq!(code, 2, "{plan}");
    let sec = changes(account(&plan, secure));
    for (f, t) in [
        ("F01", "iam_role"),
        ("F02", "iam_user"),
        ("F03", "iam_password_policy"),
        ("F04", "s3_account_public_access_block"),
        ("F09", "kms_key"),
        ("F07", "s3_bucket"),
        ("F07", "cloudtrail_trail"),
        ("F11", "ebs_default_encryption"),
    ] {
        assert!(sec.iter().any(|(ff, tt, _)| ff == f && tt == t), "secure plan lacks {f} {t}: {sec:?}");
    }
    assert!(
        fleet.emu.aws(secure, "iam", "get_role", json!({"RoleName": "cm-helpdesk"})).is_err(),
        "plan changed something"
    );

    let (code, applied) = fleet.report(&["apply", "--initial"]);
    assert_eq!(code, 0, "{applied}");
    for id in [basic, secure, tower] {
        assert_eq!(account(&applied, id)["status"], "converged", "{}", account(&applied, id));
    }

    // What AWS now holds.
    let t = fleet.emu.call(secure, "cloudtrail", "get_trail_status", json!({"Name": "Members"}));
    assert_eq!(t["IsLogging"], true);
    let trail = fleet.emu.call(secure, "cloudtrail", "describe_trails", json!({"trailNameList": ["Members"]}));
    assert_eq!(trail["trailList"][0]["IsMultiRegionTrail"], true);
    assert_eq!(trail["trailList"][0]["LogFileValidationEnabled"], true);
    let bucket = format!("cm-members-cloudtrail-{secure}");
    let enc = fleet.emu.call(secure, "s3", "get_bucket_encryption", json!({"Bucket": bucket}));
    let rule = &enc["ServerSideEncryptionConfiguration"]["Rules"][0];
    assert_eq!(rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"], "aws:kms");
    assert_eq!(rule["BucketKeyEnabled"], true);
    let lock = fleet.emu.call(secure, "s3", "get_object_lock_configuration", json!({"Bucket": bucket}));
    assert_eq!(lock["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]["Mode"], "COMPLIANCE");
    let tags = fleet.emu.call(secure, "s3", "get_bucket_tagging", json!({"Bucket": bucket}));
    assert!(tags["TagSet"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["Key"] == "cm:Members" && t["Value"] == "SecureAccount"));
    let basic_enc = fleet.emu.call(
        basic,
        "s3",
        "get_bucket_encryption",
        json!({"Bucket": format!("cm-members-cloudtrail-{basic}")}),
    );
    assert_eq!(
        basic_enc["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]
            ["SSEAlgorithm"],
        "AES256"
    );
    let role = fleet.emu.call(basic, "iam", "get_role", json!({"RoleName": "cm-policymaintainer"}));
    assert!(role["Role"]["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["Key"] == "cm:Members" && t["Value"] == "Managed"));
    let pw = fleet.emu.call(basic, "iam", "get_account_password_policy", json!({}));
    assert_eq!(pw["PasswordPolicy"]["MinimumPasswordLength"], 8);

    // Control Tower account: no initial user, no trail, no Config (R2); the rest applied.
    let tw = account(&applied, tower);
    for f in ["F02", "F07", "F08"] {
        assert!(has_skip(&skips(tw), f, "control_tower"), "{f}: {tw}");
        assert!(!changes(tw).iter().any(|(ff, _, _)| ff == f), "{f}: {tw}");
    }
    assert!(tw["control_tower"] == true, "{tw}");
    for region in support::TEST_REGIONS {
        let recorders =
            fleet.emu.aws_in(tower, "config", "describe_configuration_recorders", json!({}), region).unwrap();
        assert!(recorders["ConfigurationRecorders"].as_array().unwrap().is_empty(), "{region}: {recorders}");
    }
    assert!(fleet
        .emu
        .aws(tower, "s3", "get_bucket_versioning", json!({"Bucket": format!("cm-members-config-{tower}")}))
        .is_err());
    assert!(fleet
        .emu
        .aws(tower, "iam", "get_user", json!({"UserName": format!("initial-admin-user-{tower}")}))
        .is_err());
    assert!(fleet.emu.call(tower, "cloudtrail", "describe_trails", json!({}))["trailList"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(fleet.emu.aws(tower, "iam", "get_role", json!({"RoleName": "cm-helpdesk"})).is_ok());

    // Converged: a second plan, initial or maintenance, has nothing to do.
    let initial = fleet.every_account(&["plan", "--initial", "--detailed-exitcode"]);
    let initial: Vec<&str> = initial.iter().map(String::as_str).collect();
    for mode in [&initial[..], &["plan", "--detailed-exitcode"][..]] {
        let (code, again) = fleet.report(mode);
        assert_eq!(code, 0, "{mode:?}: {again}");
        assert!(!again.to_string().contains("\"action\""), "{again}");
        // Account-wide lists are read once per plan, however many resources need them.
        let calls = &account(&again, secure)["api_calls"]["by_operation"];
        assert_eq!(calls["s3:ListBuckets"], 1, "{calls}");
        assert_eq!(calls["kms:ListAliases"], 1, "{calls}");
        // The run's calls include the management account's that listed the fleet.
        let run_calls = &again["api_calls"]["by_operation"];
        assert_eq!(run_calls["sts:GetCallerIdentity"], 1, "{run_calls}");
        assert!(run_calls["organizations:ListAccounts"].as_u64() >= Some(1), "{run_calls}");
    }
}

#[test]
fn drift_is_shown_by_plan_and_undone_by_apply() {
    let fleet = Fleet::new(&[("secure-co", "secure")]);
    let id = &fleet.accounts[0];
    assert_eq!(fleet.report(&["apply", "--initial"]).0, 0);
    let bucket = format!("cm-members-cloudtrail-{id}");
    let other = "us-east-1";

    fleet.emu.call(
        id,
        "iam",
        "update_account_password_policy",
        json!({"MinimumPasswordLength": 6, "AllowUsersToChangePassword": true}),
    );
    // Versioning of the trail's bucket cannot be suspended (Object Lock holds it on), but
    // its public access block can be loosened.
    fleet.emu.call(
        id,
        "s3",
        "put_public_access_block",
        json!({"Bucket": bucket, "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": true, "IgnorePublicAcls": true, "BlockPublicPolicy": false, "RestrictPublicBuckets": false}}),
    );
    fleet.emu.call(id, "cloudtrail", "stop_logging", json!({"Name": "Members"}));
    // F11: EBS encryption by default turned off in one region.
    fleet.emu.aws_in(id, "ec2", "disable_ebs_encryption_by_default", json!({}), other).unwrap();
    let ebs = |region: &str| {
        fleet.emu.aws_in(id, "ec2", "get_ebs_encryption_by_default", json!({}), region).unwrap()
            ["EbsEncryptionByDefault"]
            .clone()
    };
    assert_eq!(ebs(other), false, "the drift did not take");

    let out = fleet.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "-minimum_password_length: 6",
        "+minimum_password_length: 8",
        "-  block_public_policy: false",
        "+  block_public_policy: true",
        "-  restrict_public_buckets: false",
        "+  restrict_public_buckets: true",
        "-logging: false",
        "+logging: true",
        &format!("Update F11 {other} ebs_default_encryption account"),
        "-enabled: false",
        "+enabled: true",
    ] {
        assert!(text.contains(expected), "plan text lacks {expected}:\n{text}");
    }
    let (_, plan) = fleet.report(&["plan"]);
    let c = changes(account(&plan, id));
    assert_eq!(c.len(), 4, "{c:?}");
    assert!(has(&c, "F03", "iam_password_policy", "update"));
    assert!(has(&c, "F07", "s3_bucket", "update"));
    assert!(has(&c, "F07", "cloudtrail_trail", "update"));
    assert!(has(&c, "F11", "ebs_default_encryption", "update"));

    let (code, applied) = fleet.report(&["apply"]);
    assert_eq!(code, 0, "{applied}");
    assert_eq!(account(&applied, id)["status"], "converged");
    assert_eq!(fleet.emu.call(id, "cloudtrail", "get_trail_status", json!({"Name": "Members"}))["IsLogging"], true);
    let pab = fleet.emu.call(id, "s3", "get_public_access_block", json!({"Bucket": bucket}));
    assert_eq!(
        pab["PublicAccessBlockConfiguration"],
        json!({"BlockPublicAcls": true, "IgnorePublicAcls": true, "BlockPublicPolicy": true, "RestrictPublicBuckets": true})
    );
    assert_eq!(fleet.emu.call(id, "s3", "get_bucket_versioning", json!({"Bucket": bucket}))["Status"], "Enabled");
    let pw = fleet.emu.call(id, "iam", "get_account_password_policy", json!({}));
    assert_eq!(pw["PasswordPolicy"]["MinimumPasswordLength"], 8);
    assert_eq!(pw["PasswordPolicy"]["RequireSymbols"], true);
    assert_eq!(ebs(other), true);
    assert_eq!(fleet.report(&["plan", "--detailed-exitcode"]).0, 0);

    // F09: someone deletes the logs key's alias. The key is initial-only, but the secure
    // trail and Config need it: maintenance finds the key by its tag and gives it its alias
    // back (no second key, no orphan), and what names the alias leads to the same key again.
    let old_key = fleet.emu.call(id, "kms", "describe_key", json!({"KeyId": "alias/cm-members-logs-key"}))
        ["KeyMetadata"]["Arn"]
        .as_str()
        .unwrap()
        .to_string();
    fleet.emu.call(id, "kms", "delete_alias", json!({"AliasName": "alias/cm-members-logs-key"}));
    let (code, plan) = fleet.report(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 2, "{plan}");
    let c = changes(account(&plan, id));
    assert_eq!(c[0], ("F09".into(), "kms_key".into(), "update".into()), "the key comes first: {c:?}");
    assert!(!has(&c, "F09", "kms_key", "create"), "a second key: {c:?}");

    let (code, applied) = fleet.report(&["apply"]);
    assert_eq!(code, 0, "{applied}");
    assert_eq!(account(&applied, id)["status"], "converged", "{}", account(&applied, id));
    let key = fleet.emu.call(id, "kms", "describe_key", json!({"KeyId": "alias/cm-members-logs-key"}));
    assert_eq!(key["KeyMetadata"]["Arn"], old_key.as_str(), "{key}");
    assert_eq!(fleet.emu.call(id, "kms", "list_keys", json!({}))["Keys"].as_array().unwrap().len(), 1);
    let trail = fleet.emu.call(id, "cloudtrail", "describe_trails", json!({"trailNameList": ["Members"]}));
    assert_eq!(trail["trailList"][0]["KmsKeyId"], old_key.as_str(), "{trail}");
    for region in support::TEST_REGIONS {
        let channels = fleet.emu.aws_in(id, "config", "describe_delivery_channels", json!({}), region).unwrap();
        assert_eq!(channels["DeliveryChannels"][0]["s3KmsKeyArn"], old_key.as_str(), "{region}: {channels}");
    }
    let enc = fleet.emu.call(id, "s3", "get_bucket_encryption", json!({"Bucket": bucket}));
    let key_of_bucket =
        &enc["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"];
    assert_eq!(key_of_bucket, "alias/cm-members-logs-key", "{enc}");
    assert_eq!(fleet.report(&["plan", "--detailed-exitcode"]).0, 0);
}

#[test]
fn customer_lookalikes_without_the_tag_are_reported_and_left_byte_for_byte() {
    let fleet = Fleet::new(&[("basic-co", "basic")]);
    let id = &fleet.accounts[0];
    let bucket = format!("cm-members-cloudtrail-{id}");
    fleet.emu.call(
        id,
        "s3",
        "create_bucket",
        json!({"Bucket": bucket, "CreateBucketConfiguration": {"LocationConstraint": "ap-northeast-1"},
               "ObjectLockEnabledForBucket": true}),
    );
    fleet.emu.call(
        id,
        "s3",
        "put_bucket_tagging",
        json!({"Bucket": bucket, "Tagging": {"TagSet": [{"Key": "team", "Value": "customer"}]}}),
    );
    // The customer's own settings, each unlike the baseline's.
    for (op, params) in [
        (
            "put_public_access_block",
            json!({"PublicAccessBlockConfiguration": {"BlockPublicAcls": true, "IgnorePublicAcls": false,
                   "BlockPublicPolicy": false, "RestrictPublicBuckets": false}}),
        ),
        (
            "put_bucket_lifecycle_configuration",
            json!({"LifecycleConfiguration": {"Rules": [{"ID": "customer-expiry", "Status": "Enabled",
                   "Filter": {"Prefix": ""}, "Expiration": {"Days": 30}}]}}),
        ),
        (
            "put_object_lock_configuration",
            json!({"ObjectLockConfiguration": {"ObjectLockEnabled": "Enabled",
                   "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}}}}),
        ),
        ("put_bucket_request_payment", json!({"RequestPaymentConfiguration": {"Payer": "Requester"}})),
    ] {
        let mut params = params;
        params["Bucket"] = json!(bucket);
        fleet.emu.call(id, "s3", op, params);
    }
    let policy = support::cloudtrail_bucket_policy(&bucket, id);
    fleet.emu.call(id, "s3", "put_bucket_policy", json!({"Bucket": bucket, "Policy": policy}));
    fleet.emu.call(id, "cloudtrail", "create_trail", json!({"Name": "Members", "S3BucketName": bucket}));
    fleet.emu.call(
        id,
        "cloudtrail",
        "put_event_selectors",
        json!({"TrailName": "Members", "EventSelectors": [{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": true}]}),
    );
    let snapshot = || {
        (
            (
                fleet.emu.call(id, "cloudtrail", "describe_trails", json!({})),
                fleet.emu.call(id, "cloudtrail", "get_trail_status", json!({"Name": "Members"}))["IsLogging"].clone(),
                fleet.emu.call(id, "cloudtrail", "get_event_selectors", json!({"TrailName": "Members"})),
            ),
            fleet.emu.call(id, "s3", "get_bucket_tagging", json!({"Bucket": bucket})),
            fleet.emu.call(id, "s3", "get_bucket_versioning", json!({"Bucket": bucket})),
            fleet.emu.aws(id, "s3", "get_bucket_encryption", json!({"Bucket": bucket})).ok(),
            fleet.emu.aws(id, "s3", "get_bucket_policy", json!({"Bucket": bucket})).ok(),
            fleet.emu.call(id, "s3", "get_public_access_block", json!({"Bucket": bucket})),
            fleet.emu.call(id, "s3", "get_bucket_lifecycle_configuration", json!({"Bucket": bucket})),
            fleet.emu.call(id, "s3", "get_object_lock_configuration", json!({"Bucket": bucket})),
            fleet.emu.call(id, "s3", "get_bucket_request_payment", json!({"Bucket": bucket})),
        )
    };
    let before = snapshot();
    assert_eq!(before.0 .2["EventSelectors"][0]["ReadWriteType"], "WriteOnly", "{:?}", before.0);
    assert_eq!(before.8["Payer"], "Requester");

    let (code, applied) = fleet.report(&["apply", "--initial"]);
    assert_eq!(code, 0, "{applied}");
    let a = account(&applied, id);
    let not_owned: Vec<&serde_json::Value> =
        a["skips"].as_array().unwrap().iter().filter(|s| s["reason"] == "not_owned").collect();
    assert_eq!(not_owned.len(), 2, "{a}");
    assert!(not_owned.iter().any(|s| s["resource"] == format!("s3_bucket {bucket}")));
    assert!(not_owned.iter().any(|s| s["resource"] == "cloudtrail_trail Members"));
    assert!(!changes(a).iter().any(|(f, _, _)| f == "F07"));
    assert_eq!(snapshot(), before, "a customer resource was changed");
}

#[test]
fn five_trails_in_the_region_mean_no_sixth_and_a_quota_skip() {
    let fleet = Fleet::new(&[("busy-co", "basic")]);
    let id = &fleet.accounts[0];
    let logs = format!("customer-logs-{id}");
    fleet.emu.call(
        id,
        "s3",
        "create_bucket",
        json!({"Bucket": logs, "CreateBucketConfiguration": {"LocationConstraint": "ap-northeast-1"}}),
    );
    let policy = support::cloudtrail_bucket_policy(&logs, id);
    fleet.emu.call(id, "s3", "put_bucket_policy", json!({"Bucket": logs, "Policy": policy}));
    for i in 0..5 {
        fleet.emu.call(
            id,
            "cloudtrail",
            "create_trail",
            json!({"Name": format!("customer-trail-{i}"), "S3BucketName": format!("customer-logs-{id}")}),
        );
    }
    let (code, applied) = fleet.report(&["apply", "--initial"]);
    assert_eq!(code, 0, "{applied}");
    let a = account(&applied, id);
    let quota: Vec<&serde_json::Value> =
        a["skips"].as_array().unwrap().iter().filter(|s| s["reason"] == "quota").collect();
    // The trail is over quota, and its bucket is not created for nothing.
    assert_eq!(quota.len(), 2, "{a}");
    let trail = quota.iter().find(|s| s["resource"] == "cloudtrail_trail Members").unwrap();
    assert!(trail["detail"].as_str().unwrap().contains("5 of 5"), "{a}");
    assert!(!changes(a).iter().any(|(f, _, _)| f == "F07"), "{a}");
    assert!(fleet
        .emu
        .aws(id, "s3", "get_bucket_versioning", json!({"Bucket": format!("cm-members-cloudtrail-{id}")}))
        .is_err());
    let trails = fleet.emu.call(id, "cloudtrail", "describe_trails", json!({}));
    assert_eq!(trails["trailList"].as_array().unwrap().len(), 5);
}

#[test]
fn opting_out_after_opting_in_stops_maintenance_and_deletes_nothing() {
    let fleet = Fleet::new(&[("basic-co", "basic")]);
    let id = fleet.accounts[0].clone();
    fleet.enrol(&id, "basic-co", "basic", &[("F03", true), ("F07", true)]);
    let (code, applied) = fleet.report(&["apply"]);
    assert_eq!(code, 0, "{applied}");
    let c = changes(account(&applied, &id));
    assert!(has(&c, "F03", "iam_password_policy", "create") && has(&c, "F07", "cloudtrail_trail", "create"), "{c:?}");
    // Basic maintenance never applies initial-only items.
    assert!(!c.iter().any(|(f, _, _)| f == "F02" || f == "F04"), "{c:?}");

    fleet.enrol(&id, "basic-co", "basic", &[("F03", false), ("F07", false)]);
    fleet.emu.call(&id, "cloudtrail", "stop_logging", json!({"Name": "Members"}));
    let (code, plan) = fleet.report(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{plan}");
    let a = account(&plan, &id);
    assert!(has_skip(&skips(a), "F03", "opted_out") && has_skip(&skips(a), "F07", "opted_out"), "{a}");
    let (code, applied) = fleet.report(&["apply"]);
    assert_eq!(code, 0);
    assert!(changes(account(&applied, &id)).is_empty());
    assert_eq!(
        fleet.emu.call(&id, "cloudtrail", "describe_trails", json!({}))["trailList"].as_array().unwrap().len(),
        1
    );
    assert!(fleet.emu.aws(&id, "iam", "get_account_password_policy", json!({})).is_ok());
    assert!(fleet
        .emu
        .aws(&id, "s3", "get_bucket_versioning", json!({"Bucket": format!("cm-members-cloudtrail-{id}")}))
        .is_ok());
}

#[test]
fn invalid_desired_state_changes_nothing_and_names_file_line_and_column() {
    let fleet = Fleet::new(&[("secure-co", "secure")]);
    let id = &fleet.accounts[0];
    let f = fleet.desired().join("features/F07-cloudtrail.yaml");
    let text = std::fs::read_to_string(&f).unwrap().replacen(
        "versioning: true",
        "versioning: true\n      versionning: true",
        1,
    );
    std::fs::write(&f, text).unwrap();
    let file = fleet.desired().join(format!("accounts/{id}.yaml"));
    std::fs::write(&file, format!("account_id: \"{id}\"\ntier: secure\nopt_in:\n  F16: true\n")).unwrap();

    for args in [&["validate"][..], &["plan"][..], &["apply", "--initial"][..]] {
        let out = fleet.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("F07-cloudtrail.yaml:21:7: resources[0].s3_bucket: unknown field `versionning`"), "{err}");
        assert!(err.contains("  hint: did you mean versioning?"), "{err}");
        assert!(err.contains(&format!("{id}.yaml:4:3: opt_in: unknown feature `F16`")), "{err}");
        assert!(err.contains("nothing was changed"), "{err}");
        assert!(out.stdout.is_empty());
    }
    assert!(fleet.emu.aws(id, "iam", "get_role", json!({"RoleName": "cm-helpdesk"})).is_err(), "something was applied");
}

#[test]
fn inventory_reports_unenrolled_missing_and_suspended_accounts() {
    let fleet = Fleet::new(&[("kept-co", "basic"), ("closed-co", "basic")]);
    let (kept, closed) = (fleet.accounts[0].clone(), fleet.accounts[1].clone());
    let unenrolled = fleet.emu.call(
        "management",
        "organizations",
        "create_account",
        json!({"Email": "u@example.com", "AccountName": "no-file-co"}),
    );
    let unenrolled = unenrolled["CreateAccountStatus"]["AccountId"].as_str().unwrap().to_string();
    fleet.emu.call("management", "organizations", "close_account", json!({"AccountId": closed}));
    fleet.enrol("123456789013", "gone-co", "basic", &[]);

    let out = fleet.run(&["accounts", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let enrolled: Vec<&str> =
        v["enrolled"].as_array().unwrap().iter().map(|a| a["account_id"].as_str().unwrap()).collect();
    assert_eq!(enrolled, [kept.as_str()]);
    assert_eq!(v["inventory"]["suspended"], json!([closed]));
    assert_eq!(v["inventory"]["missing"], json!(["123456789013"]));
    let not_enrolled: Vec<&str> =
        v["inventory"]["not_enrolled"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(not_enrolled, [unenrolled.as_str()]);

    // The same inventory as a Markdown table.
    let out = fleet.run(&["accounts", "--format", "markdown"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = md.lines().collect();
    assert_eq!(
        rows[..2],
        ["| account | name | tier | opted in | initial setup | enrolment |", "|---|---|---|---|---|---|"],
        "{md}"
    );
    for row in [
        format!("| {kept} | kept-co | basic |  | pending | enrolled |"),
        format!("| {unenrolled} | no-file-co | - | - | - | not enrolled: no account file |"),
        "| 123456789013 |  | - | - | - | account file, but not in the Organization |".to_string(),
        format!("| {closed} |  | - | - | - | suspended |"),
    ] {
        assert!(rows.contains(&row.as_str()), "no row {row:?} in\n{md}");
    }
    assert_eq!(rows.len(), 6, "{md}");

    // Plan works on the enrolled account only and says why the others are left out.
    let (code, plan) = fleet.report(&["plan", "--initial"]);
    assert_eq!(code, 0);
    assert_eq!(plan["accounts"].as_array().unwrap().len(), 1);
    let out = fleet.run(&["plan", "--account", &closed]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an enrolled, active account"));
}

#[test]
fn an_approved_plan_is_applied_as_is_and_refused_where_the_account_drifted_since() {
    let fleet = Fleet::new(&[("calm-co", "secure"), ("busy-co", "secure")]);
    let (calm, busy) = (&fleet.accounts[0], &fleet.accounts[1]);
    assert_eq!(fleet.report(&["apply", "--initial"]).0, 0);
    for a in [calm, busy] {
        fleet.emu.call(
            a,
            "iam",
            "update_account_password_policy",
            json!({"MinimumPasswordLength": 6, "AllowUsersToChangePassword": true}),
        );
    }
    let saved = fleet.dir.path().join("approved-plan.json");
    let out = fleet.run(&["plan", "--format", "json", "--out", saved.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A copy edited by hand (a change made to write something else) is refused whole.
    let text = std::fs::read_to_string(&saved).unwrap();
    assert!(text.contains("\"plan_digest\""), "{text}");
    let edited = fleet.dir.path().join("edited-plan.json");
    std::fs::write(&edited, text.replacen("\"minimum_password_length\": 8", "\"minimum_password_length\": 4", 1))
        .unwrap();
    let out = fleet.run(&["apply", "--plan", edited.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("plan_digest does not match") && err.contains("nothing was applied"), "{err}");
    let six = |a: &str| {
        fleet.emu.call(a, "iam", "get_account_password_policy", json!({}))["PasswordPolicy"]["MinimumPasswordLength"]
            == 6
    };
    assert!(six(calm) && six(busy), "an edited plan changed something");

    // After approval, someone changes busy-co again.
    fleet.emu.call(busy, "cloudtrail", "stop_logging", json!({"Name": "Members"}));

    let (code, applied) = fleet.report(&["apply", "--plan", saved.to_str().unwrap()]);
    assert_eq!(code, 1, "{applied}");
    let c = account(&applied, calm);
    assert_eq!(c["status"], "converged", "{c}");
    assert!(has(&changes(c), "F03", "iam_password_policy", "update"));
    let b = account(&applied, busy);
    assert_eq!(b["status"], "failed");
    assert!(b["error"].as_str().unwrap().contains("changed since the plan was approved"), "{b}");
    assert!(b["error"].as_str().unwrap().contains("cloudtrail_trail"), "{b}");
    let min = |a: &str| {
        fleet.emu.call(a, "iam", "get_account_password_policy", json!({}))["PasswordPolicy"]["MinimumPasswordLength"]
            .clone()
    };
    assert_eq!(min(calm), 8);
    assert_eq!(min(busy), 6, "a refused account was changed");

    // A file that is not a plan is refused with its position.
    std::fs::write(&saved, "{\"accounts\": [").unwrap();
    let out = fleet.run(&["apply", "--plan", saved.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("approved-plan.json:1:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn shards_split_the_fleet_between_processes_without_overlap() {
    let fleet =
        Fleet::new(&[("a-co", "basic"), ("b-co", "basic"), ("c-co", "basic"), ("d-co", "basic"), ("e-co", "basic")]);
    let listed = |shard: &str| -> Vec<String> {
        let out = fleet.run(&["--shard", shard, "accounts", "--format", "json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["enrolled"].as_array().unwrap().iter().map(|a| a["account_id"].as_str().unwrap().to_string()).collect()
    };
    let (first, second) = (listed("0/2"), listed("1/2"));
    assert!(first.iter().all(|a| !second.contains(a)), "{first:?} {second:?}");
    let mut all: Vec<String> = first.iter().chain(second.iter()).cloned().collect();
    all.sort();
    let mut expected = fleet.accounts.clone();
    expected.sort();
    assert_eq!(all, expected);
    let out = fleet.run(&["--shard", "2/2", "accounts"]);
    assert_eq!(out.status.code(), Some(2), "clap rejects a shard out of range");
}

#[test]
fn a_region_enabled_later_gets_the_per_region_features_at_the_next_apply() {
    let fleet = Fleet::new(&[("growing-co", "secure")]);
    let id = &fleet.accounts[0];
    fleet.emu.set_regions(id, &["ap-northeast-1"]);
    let (code, applied) = fleet.report(&["apply", "--initial"]);
    assert_eq!(code, 0, "{applied}");
    assert_eq!(account(&applied, id)["regions"], json!(["ap-northeast-1"]));
    let ebs = |region: &str| {
        fleet.emu.aws_in(id, "ec2", "get_ebs_encryption_by_default", json!({}), region).unwrap()
            ["EbsEncryptionByDefault"]
            .clone()
    };
    assert_eq!(ebs("ap-northeast-1"), true);
    assert_eq!(ebs("us-east-1"), false);

    // The customer enables us-east-1: the next maintenance brings it into the baseline.
    fleet.emu.set_regions(id, &["ap-northeast-1", "us-east-1"]);
    let (code, plan) = fleet.report(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 2, "{plan}");
    let a = account(&plan, id);
    let regions: Vec<&str> = a["changes"].as_array().unwrap().iter().map(|c| c["region"].as_str().unwrap()).collect();
    assert!(!regions.is_empty() && regions.iter().all(|r| *r == "us-east-1"), "{a}");
    let (code, applied) = fleet.report(&["apply"]);
    assert_eq!(code, 0, "{applied}");
    assert_eq!(account(&applied, id)["status"], "converged");
    assert_eq!(ebs("us-east-1"), true);
}

#[test]
fn an_account_that_denies_assume_role_fails_alone_and_account_selects_only_the_one_named() {
    let fleet = Fleet::new(&[("a-co", "basic"), ("b-co", "basic"), ("denied-co", "basic")]);
    let (a, b, denied) = (&fleet.accounts[0], &fleet.accounts[1], &fleet.accounts[2]);
    fleet.emu.deny_assume_role(&[denied]);
    let role = format!("arn:aws:iam::{denied}:role/cm-policymaintainer");
    let check_denied = |report: &serde_json::Value| {
        let d = account(report, denied);
        assert_eq!(d["status"], "failed", "{d}");
        let err = d["error"].as_str().unwrap_or_default();
        for part in [
            "AccessDenied",
            &format!("cannot assume {role}"),
            &format!("is not authorized to perform: sts:AssumeRole on resource: {role}"),
            &format!("check that the role exists in account {denied} and that its trust policy lets the management account assume it"),
        ] {
            assert!(err.contains(part), "error lacks {part:?}: {err}");
        }
        assert!(d["changes"].as_array().unwrap().is_empty(), "{d}");
    };

    // The dry run: the denied account fails, the others are planned as usual.
    let (code, plan) = fleet.report(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 1, "{plan}");
    check_denied(&plan);
    for id in [a, b] {
        let acct = account(&plan, id);
        assert_eq!(acct["status"], "changes", "{acct}");
        assert!(has(&changes(acct), "F01", "iam_role", "create"), "{acct}");
    }

    // The same plan as Markdown, for review: a summary row per account, the error, the diffs.
    let out = fleet.run(&["plan", "--format", "markdown"]);
    assert_eq!(out.status.code(), Some(1));
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.starts_with("# cm-baseline plan"), "{md}");
    assert!(md.contains("| account | name | tier | status | changes | skips | API calls |\n|---|"), "{md}");
    assert!(md.contains(&format!("| {denied} | denied-co | basic | failed | 0 | 0 |")), "{md}");
    let f01 = account(&plan, a)["changes"].as_array().unwrap().len();
    assert!(md.contains(&format!("| {a} | a-co | basic | changes | {f01} |")), "{md}");
    assert!(md.contains(&format!("## {denied} denied-co\n\n**Error:** AccessDenied: cannot assume {role}")), "{md}");
    // What needs a person comes first: the account that failed, before the table.
    let attention = md.find("## Needs attention (1)").expect("an attention section");
    assert!(attention < md.find("## Accounts").unwrap(), "{md}");
    assert!(
        md[attention..].starts_with(&format!("## Needs attention (1)\n\n- **FAILED** {denied} AccessDenied")),
        "{md}"
    );
    // A created resource is one line; its whole body with --diff full.
    assert!(md.contains("- Create F01 `iam_role cm-helpdesk` (global)\n"), "{md}");
    assert!(!md.contains("\n+name: cm-helpdesk\n"), "{md}");
    let full = fleet.run(&["plan", "--format", "markdown", "--diff", "full"]);
    let full = String::from_utf8_lossy(&full.stdout);
    assert!(full.contains("### Create F01 `iam_role cm-helpdesk` (global)\n\n```diff\n"), "{full}");
    assert!(full.contains("\n+name: cm-helpdesk\n"), "{full}");
    assert!(!md.contains("\x1b["), "no terminal colours in Markdown");

    // Text is coloured on a terminal only, and never with NO_COLOR.
    let piped = fleet.command(&["plan"]).env_remove("NO_COLOR").output().unwrap();
    let piped = String::from_utf8_lossy(&piped.stdout);
    assert!(piped.contains(&format!("Account {denied} (denied-co)")) && !piped.contains('\x1b'), "{piped}");
    let on_tty = |no_color: bool| -> Option<String> {
        // `script` (util-linux) gives the command a pseudo-terminal as stdout.
        let cmd = fleet.command(&["plan", "--diff", "full"]);
        let line: Vec<String> = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| format!("'{}'", a.to_string_lossy().replace('\'', r"'\''")))
            .collect();
        let mut script = std::process::Command::new("script");
        script.args(["-qec", &line.join(" "), "/dev/null"]);
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => script.env(k, v),
                None => script.env_remove(k),
            };
        }
        if !no_color {
            script.env_remove("NO_COLOR");
        }
        let out = script.stdin(std::process::Stdio::null()).output().ok()?;
        Some(String::from_utf8_lossy(&out.stdout).to_string())
    };
    match (on_tty(false), on_tty(true)) {
        (Some(colour), Some(plain)) => {
            assert!(colour.contains("\x1b[31mFAILED\x1b[0m"), "{colour}");
            assert!(colour.contains("\x1b[32m+name: cm-helpdesk\x1b[0m"), "{colour}");
            assert!(plain.contains("FAILED") && !plain.contains('\x1b'), "{plain}");
        }
        _ => eprintln!("note: no `script` command here: colour on a terminal not checked end to end"),
    }

    // --account: that account only, in the report and in AWS.
    let (code, applied) = fleet.report(&["apply", "--account", a]);
    assert_eq!(code, 0, "{applied}");
    let listed: Vec<&str> =
        applied["accounts"].as_array().unwrap().iter().map(|x| x["account_id"].as_str().unwrap()).collect();
    assert_eq!(listed, [a.as_str()]);
    assert_eq!(account(&applied, a)["status"], "converged");
    assert!(fleet.emu.aws(a, "iam", "get_role", json!({"RoleName": "cm-helpdesk"})).is_ok());
    assert!(fleet.emu.aws(b, "iam", "get_role", json!({"RoleName": "cm-helpdesk"})).is_err(), "b-co was changed");

    // The whole fleet: the denied account fails, the others converge, exit 1.
    let (code, applied) = fleet.report(&["apply"]);
    assert_eq!(code, 1, "{applied}");
    check_denied(&applied);
    assert_eq!(account(&applied, a)["status"], "converged");
    let b_report = account(&applied, b);
    assert_eq!(b_report["status"], "converged", "{b_report}");
    assert!(has(&changes(b_report), "F01", "iam_role", "create"), "{b_report}");
    assert!(fleet.emu.aws(b, "iam", "get_role", json!({"RoleName": "cm-helpdesk"})).is_ok());
    fleet.emu.deny_assume_role(&[]);
    assert!(fleet.emu.aws(denied, "iam", "get_role", json!({"RoleName": "cm-helpdesk"})).is_err());
}

/// `(resource_type, action)` of every change of an account entry, once each.
fn types_and_actions(acct: &serde_json::Value) -> std::collections::BTreeSet<(String, String)> {
    changes(acct).into_iter().map(|(_, t, a)| (t, a)).collect()
}

#[test]
fn a_saved_plan_creates_and_updates_every_resource_type() {
    let fleet = Fleet::new(&[("all-co", "secure")]);
    let a = fleet.accounts[0].clone();
    let saved = fleet.dir.path().join("saved.json");
    let plan_to_file = |args: &[&str]| {
        let mut all = vec!["plan", "--format", "json", "--out", saved.to_str().unwrap()];
        all.extend(args);
        let out = fleet.run(&all);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&saved).unwrap()).unwrap()
    };

    // Initial setup from a saved plan: every resource type of the baseline is made (the
    // default VPC, an AWS default, is deleted), and the account converges.
    let initial = plan_to_file(&["--initial"]);
    let planned = types_and_actions(account(&initial, &a));
    let kinds: std::collections::BTreeSet<&str> = planned.iter().map(|(t, _)| t.as_str()).collect();
    let all: std::collections::BTreeSet<&str> = cm_baseline::resources::KINDS.iter().copied().collect();
    assert_eq!(kinds, all, "the initial plan of a secure account has every resource type");
    let (code, applied) = fleet.report(&["apply", "--plan", saved.to_str().unwrap()]);
    assert_eq!(code, 0, "{applied}");
    assert_eq!(account(&applied, &a)["status"], "converged");
    assert_eq!(types_and_actions(account(&applied, &a)), planned, "what ran is what was saved");

    // Drift of each type that is changed in place, among them those that AWS names by an
    // id the saved plan does not hold (a state machine, an automation rule, the finding
    // aggregator): a saved maintenance plan updates each of them.
    let call = |service: &str, op: &str, params: serde_json::Value| fleet.emu.call(&a, service, op, params);
    call("iam", "update_role", json!({"RoleName": "cm-helpdesk", "Description": "changed by hand"}));
    call("iam", "update_account_password_policy", json!({"MinimumPasswordLength": 6}));
    let machines = call("stepfunctions", "list_state_machines", json!({}));
    let machine = machines["stateMachines"].as_array().unwrap()[0]["stateMachineArn"].clone();
    let pass = json!({"StartAt": "x", "States": {"x": {"Type": "Pass", "End": true}}}).to_string();
    call("stepfunctions", "update_state_machine", json!({"stateMachineArn": machine, "definition": pass}));
    let rules = call("securityhub", "list_automation_rules", json!({}));
    let rule = rules["AutomationRulesMetadata"].as_array().unwrap()[0]["RuleArn"].clone();
    call(
        "securityhub",
        "batch_update_automation_rules",
        json!({"UpdateAutomationRulesRequestItems": [{"RuleArn": rule, "RuleStatus": "DISABLED"}]}),
    );
    let aggregators = call("securityhub", "list_finding_aggregators", json!({}));
    let aggregator = aggregators["FindingAggregators"].as_array().unwrap()[0]["FindingAggregatorArn"].clone();
    call(
        "securityhub",
        "update_finding_aggregator",
        json!({"FindingAggregatorArn": aggregator, "RegionLinkingMode": "SPECIFIED_REGIONS", "Regions": ["us-east-1"]}),
    );
    call("cloudtrail", "stop_logging", json!({"Name": "Members"}));
    call("events", "disable_rule", json!({"Name": "cm-guardduty-alert-rule"}));
    call("ec2", "disable_ebs_encryption_by_default", json!({}));

    let maintenance = plan_to_file(&[]);
    let planned = types_and_actions(account(&maintenance, &a));
    let update = |t: &str| (t.to_string(), "update".to_string());
    let expected: std::collections::BTreeSet<(String, String)> = [
        "iam_role",
        "iam_password_policy",
        "sfn_state_machine",
        "securityhub_automation_rule",
        "securityhub_finding_aggregator",
        "cloudtrail_trail",
        "eventbridge_rule",
        "ebs_default_encryption",
    ]
    .iter()
    .map(|t| update(t))
    .collect();
    assert_eq!(planned, expected, "{maintenance}");
    let (code, applied) = fleet.report(&["apply", "--plan", saved.to_str().unwrap()]);
    assert_eq!(code, 0, "{applied}");
    let acct = account(&applied, &a);
    assert_eq!(acct["status"], "converged", "{acct}");
    assert!(acct["remaining"].as_array().is_some_and(|r| r.is_empty()), "{acct}");
    // AWS says so too.
    let rule_now = call("securityhub", "batch_get_automation_rules", json!({"AutomationRulesArns": [rule]}));
    assert_eq!(rule_now["Rules"][0]["RuleStatus"], "ENABLED");
    let agg_now = call("securityhub", "get_finding_aggregator", json!({"FindingAggregatorArn": aggregator}));
    assert_eq!(agg_now["RegionLinkingMode"], "ALL_REGIONS");
    let sfn_now = call("stepfunctions", "describe_state_machine", json!({"stateMachineArn": machine}));
    assert_ne!(sfn_now["definition"].as_str(), Some(pass.as_str()));
    let (code, again) = fleet.report(&["plan"]);
    assert_eq!((code, changes(account(&again, &a)).len()), (0, 0), "{again}");

    // The logs key (F09) is set up by initial setup only: its update, by its key id, from a
    // saved initial plan of the account, set up already, so named and applied on purpose.
    let key =
        call("kms", "describe_key", json!({"KeyId": "alias/cm-members-logs-key"}))["KeyMetadata"]["KeyId"].clone();
    call("kms", "disable_key_rotation", json!({"KeyId": key}));
    let initial = plan_to_file(&["--initial", "--account", &a]);
    assert_eq!(types_and_actions(account(&initial, &a)), [update("kms_key")].into(), "{initial}");
    let (code, applied) = fleet.report(&["apply", "--plan", saved.to_str().unwrap(), "--force-initial"]);
    assert_eq!(code, 0, "{applied}");
    assert_eq!(call("kms", "get_key_rotation_status", json!({"KeyId": key}))["KeyRotationEnabled"], true);
}

#[test]
fn a_region_a_service_control_policy_denies_is_skipped_and_the_rest_of_the_account_converges() {
    let fleet = Fleet::new(&[("walled-co", "secure")]);
    let a = fleet.accounts[0].clone();
    // Control Tower's region deny on us-east-1: Security Hub, GuardDuty, Detective,
    // EventBridge, Step Functions and EC2 are refused there; Config, KMS, IAM, Access Analyzer
    // and Compute Optimizer are exempt.
    fleet.emu.hook("/cm-emulator/deny-regions", json!({"account_id": a, "regions": ["us-east-1"]}));
    let (code, applied) = fleet.report(&["apply", "--initial"]);
    let acct = account(&applied, &a);
    assert_eq!((code, acct["status"].as_str()), (0, Some("converged")), "{acct}");
    let unavailable: Vec<(String, String)> = acct["skips"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["reason"] == "region_unavailable")
        .map(|s| (s["region"].as_str().unwrap_or("").to_string(), s["resource"].as_str().unwrap_or("").to_string()))
        .collect();
    assert!(unavailable.iter().all(|(r, _)| r == "us-east-1"), "{unavailable:?}");
    for kind in ["securityhub_hub", "guardduty_detector", "ebs_default_encryption"] {
        assert!(unavailable.iter().any(|(_, res)| res.starts_with(kind)), "no {kind} skip: {unavailable:?}");
    }
    assert!(acct["skips"].as_array().unwrap().iter().filter(|s| s["reason"] == "region_unavailable").all(|s| s
        ["detail"]
        .as_str()
        .unwrap_or("")
        .contains("service control policy")));
    // What the policy lets through is set up there all the same (Config is exempt), and
    // the home region has everything.
    let recorders = fleet.emu.aws_in(&a, "config", "describe_configuration_recorders", json!({}), "us-east-1").unwrap();
    assert_eq!(recorders["ConfigurationRecorders"].as_array().map(Vec::len), Some(1), "{recorders}");
    let hub = fleet.emu.aws_in(&a, "securityhub", "describe_hub", json!({}), support::HOME).unwrap();
    assert!(hub["HubArn"].as_str().is_some(), "{hub}");
    // And the next plan has nothing to do: the denied region is skipped again, not failed.
    let (code, plan) = fleet.report(&["plan"]);
    let p = account(&plan, &a);
    assert_eq!((code, p["status"].as_str(), changes(p).len()), (0, Some("no_changes"), 0), "{p}");
}

#[test]
fn expired_management_credentials_pause_the_run_until_they_work_again_and_nothing_is_lost() {
    let fleet = Fleet::new(&[("a-co", "basic"), ("b-co", "basic"), ("c-co", "basic"), ("d-co", "basic")]);
    assert_eq!(fleet.report(&["apply", "--initial"]).0, 0);
    for a in &fleet.accounts {
        fleet.emu.call(a, "iam", "update_role", json!({"RoleName": "cm-helpdesk", "Description": "changed by hand"}));
    }
    // The management account's credentials stop working once the run has entered the first
    // account (GetCallerIdentity, ListAccounts, one AssumeRole), and work again 5 s later.
    fleet.emu.hook("/cm-emulator/expire-credentials", json!({"account_id": "management", "after_requests": 3}));
    let endpoint = fleet.emu.endpoint.clone();
    let restore = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(5));
        support::post_hook(&endpoint, "/cm-emulator/expire-credentials", json!([]));
    });
    let (code, report, stderr) = fleet.report_and_stderr(&["apply", "--parallel-accounts", "1", "--format", "json"]);
    restore.join().unwrap();
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    for a in &fleet.accounts {
        assert_eq!(account(&report, a)["status"], "converged", "{a}: {}", account(&report, a));
        let role = fleet.emu.call(a, "iam", "get_role", json!({"RoleName": "cm-helpdesk"}));
        assert_eq!(role["Role"]["Description"], "Operations team access (CM-managed)", "{a} was not repaired");
    }
    // Told once, as what it is.
    assert_eq!(stderr.matches("a fault of the whole fleet").count(), 1, "{stderr}");
    assert!(stderr.contains("the management account answers again"), "{stderr}");
}

/// Organizations lists 20 accounts a page (the emulator as AWS): a fleet-wide plan runs the
/// enrolled accounts of every page, counts each page's call, and names the accounts without
/// an account file. When the listing fails part-way (the management account's credentials
/// expire after its first page), the accounts of the page listed are run and reported, none
/// of the rest, and the run fails saying why.
#[test]
fn a_fleet_wide_run_takes_the_listing_page_by_page_and_a_listing_cut_short_fails_the_run() {
    let fleet = Fleet::new(&[("first-co", "basic"), ("second-co", "basic")]);
    let names: Vec<String> = (0..20).map(|i| format!("extra-{i:02}")).collect();
    let extras = fleet.emu.add_members(&names.iter().map(String::as_str).collect::<Vec<_>>());
    // The last account created is listed on the second page (the management account and
    // 21 members before it fill the first).
    let late = extras.last().expect("an extra account").clone();
    fleet.enrol(&late, "late-co", "basic", &[]);
    let (code, plan) = fleet.report(&["plan", "--parallel-accounts", "1"]);
    assert_eq!(code, 0, "{plan}");
    for a in [&fleet.accounts[0], &fleet.accounts[1], &late] {
        assert_eq!(account(&plan, a)["status"], "changes", "{a}: {}", account(&plan, a));
    }
    assert_eq!(plan["api_calls"]["by_operation"]["organizations:ListAccounts"], 2, "{}", plan["api_calls"]);
    assert_eq!(plan["inventory"]["not_enrolled"].as_array().map(Vec::len), Some(19), "{}", plan["inventory"]);

    // GetCallerIdentity and the first page pass; the second page, and entering the first
    // account, meet expired credentials. Once both have, the credentials work again.
    fleet.emu.hook("/cm-emulator/expire-credentials", json!({"account_id": "management", "after_requests": 2}));
    let endpoint = fleet.emu.endpoint.clone();
    let port: u16 = endpoint.rsplit(':').next().and_then(|p| p.parse().ok()).expect("the emulator's port");
    let restore = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(60) {
            let state = support::http_get(port, "/cm-emulator/expire-credentials")
                .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok());
            if state.is_some_and(|s| s["expired"].as_u64().unwrap_or(0) >= 2) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        support::post_hook(&endpoint, "/cm-emulator/expire-credentials", json!([]));
    });
    let (code, report, stderr) = fleet.report_and_stderr(&["plan", "--parallel-accounts", "1", "--format", "json"]);
    restore.join().unwrap();
    assert_eq!(code, Some(1), "{report}\n{stderr}");
    assert!(stderr.contains("cannot list the Organization's accounts"), "{stderr}");
    let listed: Vec<&str> =
        report["accounts"].as_array().unwrap().iter().filter_map(|a| a["account_id"].as_str()).collect();
    let mut first_page: Vec<&str> = fleet.accounts.iter().map(String::as_str).collect();
    first_page.sort();
    assert_eq!(listed, first_page, "{stderr}");
    for a in &fleet.accounts {
        assert_eq!(account(&report, a)["status"], "changes", "{a}: {}", account(&report, a));
    }
    // What is missing or not enrolled is not known from part of the listing.
    assert_eq!(report["inventory"]["not_enrolled"].as_array().map(Vec::len), Some(0), "{}", report["inventory"]);
}

#[test]
fn a_service_whose_endpoint_does_not_resolve_is_skipped_and_the_rest_of_the_account_converges() {
    // A service not offered in a region has no endpoint there: its host name does not
    // resolve. Pointing IAM Access Analyzer's endpoint at a `.invalid` name (which never
    // resolves, RFC 6761) gives the SDK that very failure, in every region.
    let fleet = Fleet::new(&[("sparse-co", "secure")]);
    let a = fleet.accounts[0].clone();
    let absent = |args: &[&str]| {
        fleet.report_with(args, &[("AWS_ENDPOINT_URL_ACCESSANALYZER", "http://access-analyzer.absent.invalid")])
    };
    let (code, applied) = absent(&["apply", "--initial"]);
    let acct = account(&applied, &a);
    assert_eq!((code, acct["status"].as_str()), (0, Some("converged")), "{acct}");
    let unavailable: Vec<&serde_json::Value> =
        acct["skips"].as_array().unwrap().iter().filter(|s| s["reason"] == "region_unavailable").collect();
    for region in support::TEST_REGIONS {
        assert!(unavailable.iter().any(|s| s["region"] == *region), "no skip in {region}: {unavailable:?}");
    }
    for s in &unavailable {
        assert_eq!(s["feature"], "F06", "{s}");
        assert!(s["detail"].as_str().unwrap_or("").contains("dns"), "{s}");
    }
    // Everything else was set up.
    let hub = fleet.emu.aws_in(&a, "securityhub", "describe_hub", json!({}), support::HOME).unwrap();
    assert!(hub["HubArn"].as_str().is_some(), "{hub}");
    let analyzers = fleet.emu.aws_in(&a, "accessanalyzer", "list_analyzers", json!({}), support::HOME).unwrap();
    assert_eq!(analyzers["analyzers"].as_array().map(Vec::len), Some(0), "{analyzers}");
    // The next plan skips the service again, and has nothing else to do.
    let (code, plan) = absent(&["plan"]);
    let p = account(&plan, &a);
    assert_eq!((code, p["status"].as_str(), changes(p).len()), (0, Some("no_changes"), 0), "{p}");
}

#[test]
fn a_run_over_several_accounts_shows_progress_on_a_terminal_and_nowhere_else() {
    let fleet = Fleet::new(&[("p-co", "basic"), ("q-co", "basic")]);
    // Piped (and JSON logs): no progress line at all.
    let piped = fleet.run(&["plan"]);
    let err = String::from_utf8_lossy(&piped.stderr);
    assert!(!err.contains("accounts ") && !err.contains('\r'), "{err}");
    // On a terminal with human logs: accounts done of total, changes, failures, time.
    let base = fleet.command(&[]);
    let line = format!(
        "'{}' --desired-state '{}' --log-format human plan",
        env!("CARGO_BIN_EXE_cm-baseline"),
        fleet.desired().display()
    );
    let mut script = std::process::Command::new("script");
    script.args(["-qec", &line, "/dev/null"]);
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    let Ok(out) = script.stdin(std::process::Stdio::null()).output() else {
        eprintln!("note: no `script` command here: progress on a terminal not checked end to end");
        return;
    };
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("/2 accounts"), "{shown}");
    assert!(shown.contains("changes planned, 0 failed") && shown.contains("elapsed"), "{shown}");
}

/// Three years means gone (4.2.1, 4.2.2): on the versioned trail bucket the expiry of
/// current versions only adds delete markers, so the rule also removes noncurrent versions
/// a day later and the delete markers left behind. A bucket with the former rule (expiry
/// alone) is planned for an update and repaired; the customer's own rules stay.
#[test]
fn log_buckets_delete_for_good_and_a_bucket_with_the_former_rule_is_updated() {
    let fleet = Fleet::new(&[("basic-co", "basic")]);
    let id = &fleet.accounts[0];
    fleet.enrol(id, "basic-co", "basic", &[("F07", true)]);
    assert_eq!(fleet.report(&["apply", "--initial"]).0, 0);
    let rules = |bucket: &str| -> Vec<serde_json::Value> {
        let out = fleet.emu.call(id, "s3", "get_bucket_lifecycle_configuration", json!({"Bucket": bucket}));
        let mut all = out["Rules"].as_array().unwrap().clone();
        all.sort_by_key(|r| r["ID"].as_str().unwrap_or_default().to_string());
        all
    };
    let trail = format!("cm-members-cloudtrail-{id}");
    for bucket in [trail.clone(), format!("cm-members-config-{id}")] {
        let r = rules(&bucket);
        assert_eq!(r.len(), 2, "{bucket}: {r:?}");
        assert_eq!(
            (r[0]["ID"].as_str(), r[1]["ID"].as_str()),
            (Some("cm-baseline"), Some("cm-baseline-delete-markers"))
        );
        assert_eq!(r[0]["Expiration"]["Days"], 1095, "{bucket}: {r:?}");
        assert_eq!(r[0]["NoncurrentVersionExpiration"]["NoncurrentDays"], 1, "{bucket}: {r:?}");
        assert_eq!(r[0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"], 7, "{bucket}: {r:?}");
        assert_eq!(r[1]["Expiration"]["ExpiredObjectDeleteMarker"], true, "{bucket}: {r:?}");
        assert!(r[1]["Expiration"].get("Days").is_none(), "{bucket}: {r:?}");
    }

    // The rule as the tool wrote it before: expiry alone; and a rule of the customer's.
    let former = json!({"Rules": [
        {"ID": "cm-baseline", "Status": "Enabled", "Filter": {"Prefix": ""},
         "Expiration": {"Days": 1095}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
        {"ID": "customer-archive", "Status": "Enabled", "Filter": {"Prefix": "archive/"},
         "Expiration": {"Days": 30}}]});
    fleet.emu.call(
        id,
        "s3",
        "put_bucket_lifecycle_configuration",
        json!({"Bucket": trail, "LifecycleConfiguration": former}),
    );
    let (code, plan) = fleet.report(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 2, "{plan}");
    let a = account(&plan, id);
    assert_eq!(changes(a), [("F07".to_string(), "s3_bucket".to_string(), "update".to_string())], "{a:#}");
    let diff = a["changes"][0]["diff"].as_str().unwrap();
    assert!(diff.contains("noncurrent_expiration_days") && diff.contains("expired_object_delete_marker"), "{diff}");

    let (code, applied) = fleet.report(&["apply"]);
    assert_eq!(code, 0, "{applied}");
    let r = rules(&trail);
    let ids: Vec<&str> = r.iter().map(|x| x["ID"].as_str().unwrap()).collect();
    assert_eq!(ids, ["cm-baseline", "cm-baseline-delete-markers", "customer-archive"], "{r:?}");
    assert_eq!(r[0]["NoncurrentVersionExpiration"]["NoncurrentDays"], 1, "{r:?}");
    assert_eq!(r[2]["Expiration"]["Days"], 30, "{r:?}");
    assert_eq!(fleet.report(&["plan", "--detailed-exitcode"]).0, 0);
}
