//! F08 AWS Config, end to end against the emulated Organization.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeSet;
use support::{account, changes, Fleet, HOME, TEST_REGIONS};

fn call_in(fleet: &Fleet, id: &str, service: &str, op: &str, params: Value, region: &str) -> Value {
    fleet.emu.aws_in(id, service, op, params, region).unwrap_or_else(|e| panic!("{service} {op} in {region}: {e}"))
}

/// The region's configuration recorders (DescribeConfigurationRecorders).
fn recorder(fleet: &Fleet, id: &str, region: &str) -> Value {
    let out = call_in(fleet, id, "config", "describe_configuration_recorders", json!({}), region);
    let all = out["ConfigurationRecorders"].as_array().unwrap().clone();
    assert_eq!(all.len(), 1, "recorders in {region}: {all:?}");
    all[0].clone()
}

fn recording(fleet: &Fleet, id: &str, region: &str) -> bool {
    let out = call_in(fleet, id, "config", "describe_configuration_recorder_status", json!({}), region);
    out["ConfigurationRecordersStatus"][0]["recording"].as_bool().unwrap()
}

fn channel(fleet: &Fleet, id: &str, region: &str) -> Value {
    let out = call_in(fleet, id, "config", "describe_delivery_channels", json!({}), region);
    let all = out["DeliveryChannels"].as_array().unwrap().clone();
    assert_eq!(all.len(), 1, "delivery channels in {region}: {all:?}");
    all[0].clone()
}

fn types_of(rec: &Value) -> BTreeSet<String> {
    rec["recordingGroup"]["resourceTypes"]
        .as_array()
        .map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn tag_of(fleet: &Fleet, id: &str, bucket: &str) -> Option<String> {
    let tags = fleet.emu.call(id, "s3", "get_bucket_tagging", json!({"Bucket": bucket}));
    tags["TagSet"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["Key"] == "cm:Members")
        .map(|t| t["Value"].as_str().unwrap().into())
}

#[test]
fn fresh_basic_and_secure_accounts_converge_with_the_recorder_the_channel_and_the_bucket() {
    let fleet = Fleet::new(&[("basic-co", "basic"), ("secure-co", "secure")]);
    let (basic, secure) = (&fleet.accounts[0], &fleet.accounts[1]);

    let (code, plan) = fleet.report(&["plan", "--initial", "--detailed-exitcode"]);
    assert_eq!(code, 2, "{plan}");
    for id in [basic, secure] {
        let c = changes(account(&plan, id));
        let recorders = c.iter().filter(|(f, t, a)| f == "F08" && t == "config_recorder" && a == "create").count();
        assert_eq!(recorders, TEST_REGIONS.len(), "{c:?}");
        assert!(c.iter().any(|(f, t, a)| f == "F08" && t == "s3_bucket" && a == "create"), "{c:?}");
    }

    let (code, applied) = fleet.report(&["apply", "--initial"]);
    assert_eq!(code, 0, "{applied}");
    for id in [basic, secure] {
        assert_eq!(account(&applied, id)["status"], "converged", "{}", account(&applied, id));
    }

    // Secure: every supported type, global types in the home region only, recording, and
    // the delivery channel encrypting with the logs key.
    let key = fleet.emu.call(secure, "kms", "describe_key", json!({"KeyId": "alias/cm-members-logs-key"}));
    let key_arn = key["KeyMetadata"]["Arn"].as_str().unwrap().to_string();
    for region in TEST_REGIONS {
        let rec = recorder(&fleet, secure, region);
        assert_eq!(rec["name"], "default");
        assert_eq!(rec["roleARN"], format!("arn:aws:iam::{secure}:role/cm-config-role-all-regions"));
        assert_eq!(rec["recordingGroup"]["allSupported"], true, "{region}: {rec}");
        assert_eq!(rec["recordingGroup"]["includeGlobalResourceTypes"], region == HOME, "{region}: {rec}");
        assert!(recording(&fleet, secure, region), "{region}");
        let ch = channel(&fleet, secure, region);
        assert_eq!(ch["name"], "default");
        assert_eq!(ch["s3BucketName"], format!("cm-members-config-{secure}"));
        assert_eq!(ch["s3KmsKeyArn"], key_arn.as_str(), "{region}: {ch}");
    }
    let bucket = format!("cm-members-config-{secure}");
    let enc = fleet.emu.call(secure, "s3", "get_bucket_encryption", json!({"Bucket": bucket}));
    let rule = &enc["ServerSideEncryptionConfiguration"]["Rules"][0];
    assert_eq!(rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"], "aws:kms");
    assert_eq!(rule["BucketKeyEnabled"], true);
    let pab = fleet.emu.call(secure, "s3", "get_public_access_block", json!({"Bucket": bucket}));
    assert_eq!(
        pab["PublicAccessBlockConfiguration"],
        json!({"BlockPublicAcls": true, "IgnorePublicAcls": true, "BlockPublicPolicy": true, "RestrictPublicBuckets": true})
    );
    let lc = fleet.emu.call(secure, "s3", "get_bucket_lifecycle_configuration", json!({"Bucket": bucket}));
    let lc = lc["Rules"].as_array().unwrap().iter().find(|r| r["ID"] == "cm-baseline").unwrap().clone();
    assert_eq!(lc["Expiration"]["Days"], 1095);
    assert_eq!(lc["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"], 7);
    let payer = fleet.emu.call(secure, "s3", "get_bucket_request_payment", json!({"Bucket": bucket}));
    assert_eq!(payer["Payer"], "BucketOwner");
    let policy = fleet.emu.call(secure, "s3", "get_bucket_policy", json!({"Bucket": bucket}));
    let policy: Value = serde_json::from_str(policy["Policy"].as_str().unwrap()).unwrap();
    let delivery =
        policy["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == "AWSConfigBucketDelivery").unwrap();
    assert_eq!(delivery["Principal"]["Service"], "config.amazonaws.com");
    assert_eq!(delivery["Resource"], format!("arn:aws:s3:::{bucket}/AWSLogs/{secure}/Config/*"));
    assert_eq!(tag_of(&fleet, secure, &bucket).as_deref(), Some("SecureAccount"));

    // Basic: the listed types, SSE-S3, no KMS key on the channel.
    let basic_bucket = format!("cm-members-config-{basic}");
    let enc = fleet.emu.call(basic, "s3", "get_bucket_encryption", json!({"Bucket": basic_bucket}));
    assert_eq!(
        enc["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"],
        "AES256"
    );
    assert_eq!(tag_of(&fleet, basic, &basic_bucket).as_deref(), Some("Initialized"));
    for region in TEST_REGIONS {
        let rec = recorder(&fleet, basic, region);
        assert_eq!(rec["recordingGroup"]["allSupported"], false, "{region}: {rec}");
        assert!(types_of(&rec).contains("AWS::EC2::Instance"), "{region}: {rec}");
        assert!(recording(&fleet, basic, region), "{region}");
        let ch = channel(&fleet, basic, region);
        assert_eq!(ch["s3BucketName"], basic_bucket.as_str());
        assert!(ch.get("s3KmsKeyArn").is_none(), "{region}: {ch}");
    }

    // Converged: nothing left to do, initial or maintenance (the basic account's F08 is not
    // opted in, so maintenance leaves it alone).
    let initial = fleet.every_account(&["plan", "--initial", "--detailed-exitcode"]);
    let initial: Vec<&str> = initial.iter().map(String::as_str).collect();
    for mode in [&initial[..], &["plan", "--detailed-exitcode"][..]] {
        let (code, again) = fleet.report(mode);
        assert_eq!(code, 0, "{mode:?}: {again}");
    }
}

#[test]
fn a_recorder_stopped_by_someone_is_shown_and_restarted() {
    let fleet = Fleet::new(&[("secure-co", "secure")]);
    let id = &fleet.accounts[0];
    assert_eq!(fleet.report(&["apply", "--initial"]).0, 0);
    let other = TEST_REGIONS.iter().copied().find(|r| *r != HOME).unwrap();
    call_in(
        &fleet,
        id,
        "config",
        "stop_configuration_recorder",
        json!({"ConfigurationRecorderName": "default"}),
        other,
    );
    assert!(!recording(&fleet, id, other));

    let out = fleet.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("-recording: false") && text.contains("+recording: true"), "{text}");
    let (_, plan) = fleet.report(&["plan"]);
    let c = &account(&plan, id)["changes"];
    let c: Vec<&Value> = c.as_array().unwrap().iter().collect();
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0]["feature"], "F08");
    assert_eq!(c[0]["resource_type"], "config_recorder");
    assert_eq!(c[0]["region"], other);
    assert_eq!(c[0]["action"], "update");

    let (code, applied) = fleet.report(&["apply"]);
    assert_eq!(code, 0, "{applied}");
    assert_eq!(account(&applied, id)["status"], "converged");
    assert!(recording(&fleet, id, other));
    assert!(recording(&fleet, id, HOME));
    assert_eq!(fleet.report(&["plan", "--detailed-exitcode"]).0, 0);
}

#[test]
fn basic_region_groups_record_their_own_lists() {
    let fleet = Fleet::new(&[("basic-co", "basic")]);
    let id = &fleet.accounts[0];
    // Two more active regions: Oregon, and one of the "others".
    let active = ["ap-northeast-1", "us-east-1", "us-west-2", "eu-west-1"];
    let settings = fleet.desired().join("settings.yaml");
    let excluded: Vec<&str> =
        cm_baseline::desired::names::REGIONS.iter().copied().filter(|r| !active.contains(r)).collect();
    let text = std::fs::read_to_string(&settings).unwrap();
    let start = text.find("excluded_regions:").unwrap();
    let end = start + text[start..].find('\n').unwrap();
    let text = format!("{}excluded_regions: [{}]{}", &text[..start], excluded.join(", "), &text[end..]);
    std::fs::write(&settings, text).unwrap();

    let (code, applied) = fleet.report(&["apply", "--initial"]);
    assert_eq!(code, 0, "{applied}");
    assert_eq!(account(&applied, id)["status"], "converged", "{}", account(&applied, id));

    let types: Vec<BTreeSet<String>> = active.iter().map(|r| types_of(&recorder(&fleet, id, r))).collect();
    let (tokyo, virginia, oregon, ireland) = (&types[0], &types[1], &types[2], &types[3]);
    // The common list everywhere.
    for t in ["AWS::EC2::Instance", "AWS::EC2::SecurityGroup", "AWS::S3::Bucket", "AWS::CloudTrail::Trail"] {
        for (r, set) in active.iter().zip(&types) {
            assert!(set.contains(t), "{r} lacks {t}: {set:?}");
        }
    }
    // Global IAM types in Tokyo only.
    assert!(tokyo.contains("AWS::IAM::Role") && tokyo.contains("AWS::IAM::User"), "{tokyo:?}");
    for (r, set) in [("us-east-1", virginia), ("us-west-2", oregon), ("eu-west-1", ireland)] {
        assert!(!set.iter().any(|t| t.starts_with("AWS::IAM::")), "{r} records IAM: {set:?}");
    }
    // CloudFront in N. Virginia only, Global Accelerator in Oregon only.
    assert!(virginia.contains("AWS::CloudFront::Distribution"), "{virginia:?}");
    assert!(oregon.contains("AWS::GlobalAccelerator::Accelerator"), "{oregon:?}");
    for (r, set) in [("ap-northeast-1", tokyo), ("us-west-2", oregon), ("eu-west-1", ireland)] {
        assert!(!set.contains("AWS::CloudFront::Distribution"), "{r}: {set:?}");
    }
    for (r, set) in [("ap-northeast-1", tokyo), ("us-east-1", virginia), ("eu-west-1", ireland)] {
        assert!(!set.contains("AWS::GlobalAccelerator::Accelerator"), "{r}: {set:?}");
    }
    // Each region's recorder delivers to the one bucket in the home region.
    for r in active {
        assert_eq!(channel(&fleet, id, r)["s3BucketName"], format!("cm-members-config-{id}"), "{r}");
    }
    let buckets = fleet.emu.call(id, "s3", "list_buckets", json!({}));
    let config_buckets = buckets["Buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["Name"].as_str().unwrap().starts_with("cm-members-config-"));
    assert_eq!(config_buckets.count(), 1);
    let initial = fleet.every_account(&["plan", "--initial", "--detailed-exitcode"]);
    assert_eq!(fleet.report(&initial.iter().map(String::as_str).collect::<Vec<_>>()).0, 0);
}
