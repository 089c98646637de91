//! The planner's rules, without AWS.

use super::*;
use crate::desired::names::{AccountId, FeatureId, OwnerTag, TierName};
use crate::desired::policy::PolicyDoc;
use crate::desired::resolve::{AccountBaseline, DesiredResource, FeatureBaseline, ResourceKey, GLOBAL};
use crate::desired::{ControlTower, FeatureKind, LockoutGuard};
use crate::resources::access_analyzer::AccessAnalyzer;
use crate::resources::cloudtrail_trail::CloudtrailTrail;
use crate::resources::config_recorder::ConfigRecorder;
use crate::resources::config_recorder::DeliveryChannel;
use crate::resources::detective_graph::DetectiveGraph;
use crate::resources::ebs_default_encryption::EbsDefaultEncryption;
use crate::resources::eventbridge_rule::{self, EventbridgeRule};
use crate::resources::guardduty_detector::GuarddutyDetector;
use crate::resources::iam_group::IamGroup;
use crate::resources::iam_password_policy::IamPasswordPolicy;
use crate::resources::iam_role::IamRole;
use crate::resources::kms_key::KmsKey;
use crate::resources::s3_bucket::S3Bucket;
use crate::resources::securityhub_hub::SecurityhubHub;
use crate::resources::securityhub_standard::SecurityhubStandard;
use crate::resources::{Ensure, Observation, Quota, ResourceSpec};
use proptest::prelude::*;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

const MGMT: &str = "999999999999";
const HOME: &str = "ap-northeast-1";

fn fid(s: &str) -> FeatureId {
    FeatureId::parse(s).unwrap()
}

fn trust(principal: &str) -> PolicyDoc {
    PolicyDoc(
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}]}),
    )
}

fn maintainer_policy(actions: &[&str]) -> PolicyDoc {
    PolicyDoc(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
}

fn role(name: &str, description: &str) -> ResourceSpec {
    let mut inline = BTreeMap::new();
    let everything: Vec<&str> = crate::plan::guard_actions().collect();
    inline.insert("CMMaintenancePolicy".to_string(), maintainer_policy(&everything));
    ResourceSpec::IamRole(IamRole {
        name: name.into(),
        description: Some(description.into()),
        trust_policy: trust(&format!("arn:aws:iam::{MGMT}:root")),
        managed_policies: Some(BTreeSet::new()),
        inline_policies: Some(inline),
        max_session_duration: None,
    })
}

fn password(min: i32) -> ResourceSpec {
    ResourceSpec::IamPasswordPolicy(IamPasswordPolicy {
        minimum_password_length: Some(min),
        require_symbols: Some(true),
        ..Default::default()
    })
}

fn bucket(versioning: bool) -> ResourceSpec {
    ResourceSpec::S3Bucket(S3Bucket {
        name: "cm-members-cloudtrail-111111111111".into(),
        versioning: Some(versioning),
        ..Default::default()
    })
}

fn trail(logging: bool) -> ResourceSpec {
    ResourceSpec::CloudtrailTrail(CloudtrailTrail {
        name: "Members".into(),
        s3_bucket: "cm-members-cloudtrail-111111111111".into(),
        logging: Some(logging),
        ..Default::default()
    })
}

fn key(description: &str) -> ResourceSpec {
    ResourceSpec::KmsKey(KmsKey {
        alias: "alias/cm-members-logs-key".into(),
        description: Some(description.into()),
        key_policy: PolicyDoc(json!({"Version": "2012-10-17"})),
        enable_key_rotation: None,
        key_id: None,
    })
}

fn res(spec: ResourceSpec, region: &str) -> DesiredResource {
    DesiredResource {
        key: ResourceKey { kind: spec.kind().into(), region: region.into(), name: spec.name() },
        spec,
        ensure: Ensure::Present,
        initial_only_fields: vec![],
    }
}

fn feature(
    id: &str,
    kind: FeatureKind,
    requires: &[&str],
    tag: OwnerTag,
    resources: Vec<DesiredResource>,
) -> FeatureBaseline {
    FeatureBaseline {
        id: fid(id),
        kind,
        in_tier: true,
        opted_in: true,
        explicit: None,
        also_when_required: false,
        requires: requires.iter().map(|r| fid(r)).collect(),
        met_by_any: BTreeMap::new(),
        tag,
        adopt: false,
        kept: None,
        resources,
    }
}

/// A secure account with a managed feature, an untaggable opt-in setting, an initial-only
/// setting, the trail (needing the key) and Security Hub needing Config.
fn baseline() -> AccountBaseline {
    let mut f09 =
        feature("F09", FeatureKind::InitialOnly, &[], OwnerTag::SecureAccount, vec![res(key("logs key"), HOME)]);
    f09.also_when_required = true;
    AccountBaseline {
        account_id: AccountId::parse("111111111111").unwrap(),
        name: None,
        tier: TierName::new_unchecked("secure"),
        home_region: HOME.into(),
        regions: vec![HOME.into()],
        management_account_id: MGMT.into(),
        caller_arn: format!("arn:aws:sts::{MGMT}:assumed-role/cm-baseline-daemon/cm-baseline"),
        member_role_name: "cm-policymaintainer".into(),
        external_id: None,
        control_tower: ControlTower::default(),
        lockout_guard: LockoutGuard::default(),
        features: vec![
            feature(
                "F01",
                FeatureKind::Managed,
                &[],
                OwnerTag::Managed,
                vec![
                    res(role("cm-policymaintainer", "maintainer"), GLOBAL),
                    res(role("cm-helpdesk", "helpdesk"), GLOBAL),
                ],
            ),
            feature("F03", FeatureKind::OptIn, &[], OwnerTag::Initialized, vec![res(password(8), GLOBAL)]),
            f09,
            feature(
                "F07",
                FeatureKind::OptIn,
                &["F09"],
                OwnerTag::SecureAccount,
                vec![res(bucket(true), HOME), res(trail(true), HOME)],
            ),
            feature(
                "F08",
                FeatureKind::OptIn,
                &[],
                OwnerTag::SecureAccount,
                vec![res(
                    ResourceSpec::S3Bucket(S3Bucket {
                        name: "cm-members-config-111111111111".into(),
                        ..Default::default()
                    }),
                    HOME,
                )],
            ),
            feature("F13", FeatureKind::OptIn, &["F08"], OwnerTag::SecureAccount, vec![]),
        ],
    }
}

fn all_absent(b: &AccountBaseline) -> Observed {
    let mut o = Observed::default();
    for f in &b.features {
        for r in &f.resources {
            o.resources.insert(r.key.clone(), Observation::Absent { quota: None });
        }
    }
    o
}

/// Every resource present as desired, tagged with its feature's tag; what cannot carry
/// the tag is in the journal's records, as apply leaves it.
fn converged(b: &AccountBaseline) -> Observed {
    let mut o = Observed::default();
    for f in &b.features {
        for r in &f.resources {
            let owner = r.spec.taggable().then(|| f.tag.as_str().to_string());
            o.resources.insert(r.key.clone(), Observation::Present { state: r.spec.clone(), owner });
            if !r.spec.taggable() {
                o.records.insert(r.key.clone());
            }
        }
    }
    o
}

fn set(o: &mut Observed, spec: &ResourceSpec, region: &str, obs: Observation<ResourceSpec>) {
    o.resources.insert(ResourceKey { kind: spec.kind().into(), region: region.into(), name: spec.name() }, obs);
}

fn feature_mut<'a>(b: &'a mut AccountBaseline, id: &str) -> &'a mut FeatureBaseline {
    b.features.iter_mut().find(|f| f.id.as_str() == id).unwrap()
}

fn skip_reason(p: &AccountPlan, feature: &str) -> Vec<SkipReason> {
    p.skips.iter().filter(|s| s.feature.as_str() == feature).map(|s| s.reason).collect()
}

fn changes_of<'a>(p: &'a AccountPlan, feature: &str) -> Vec<&'a Change> {
    p.changes.iter().filter(|c| c.feature.as_str() == feature).collect()
}

#[test]
fn fresh_account_initial_setup_creates_everything_dependencies_first() {
    let b = baseline();
    let p = plan(&b, &all_absent(&b), Mode::Initial);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert!(p.changes.iter().all(|c| c.action == Action::Create));
    let order: Vec<String> = p.changes.iter().map(|c| format!("{} {}", c.feature, c.resource_type)).collect();
    assert_eq!(
        order,
        [
            "F01 iam_role",
            "F01 iam_role",
            "F03 iam_password_policy",
            "F09 kms_key",
            "F07 s3_bucket",
            "F07 cloudtrail_trail",
            "F08 s3_bucket"
        ]
    );
    assert!(p.changes[0].diff.contains("+name: cm-policymaintainer"));
}

#[test]
fn converged_account_plans_no_change_and_is_deterministic() {
    let b = baseline();
    let o = converged(&b);
    let p1 = plan(&b, &o, Mode::Maintenance);
    let p2 = plan(&b, &o, Mode::Maintenance);
    assert!(p1.changes.is_empty(), "{:?}", p1.changes);
    assert_eq!(serde_json::to_string(&p1).unwrap(), serde_json::to_string(&p2).unwrap());
    assert_eq!(skip_reason(&p1, "F09"), [SkipReason::InitialOnly]);
}

#[test]
fn tag_fence_reports_untagged_resources_and_never_touches_them() {
    let b = baseline();
    let mut o = converged(&b);
    set(&mut o, &trail(true), HOME, Observation::Present { state: trail(false), owner: None });
    set(&mut o, &bucket(true), HOME, Observation::Present { state: bucket(false), owner: None });
    let p = plan(&b, &o, Mode::Maintenance);
    assert!(changes_of(&p, "F07").is_empty());
    let f07: Vec<&Skip> = p.skips.iter().filter(|s| s.feature.as_str() == "F07").collect();
    assert_eq!(f07.len(), 2);
    assert!(f07.iter().all(|s| s.reason == SkipReason::NotOwned));
    assert!(f07[1].detail.contains("logging"), "{}", f07[1].detail);
}

#[test]
fn drift_of_owned_resources_is_updated_with_a_field_diff() {
    let b = baseline();
    let mut o = converged(&b);
    set(&mut o, &trail(true), HOME, Observation::Present { state: trail(false), owner: Some("SecureAccount".into()) });
    set(&mut o, &password(8), GLOBAL, Observation::Present { state: password(6), owner: None });
    let p = plan(&b, &o, Mode::Maintenance);
    let actions: Vec<(String, Action)> = p.changes.iter().map(|c| (c.resource_type.clone(), c.action)).collect();
    assert_eq!(actions, [("iam_password_policy".into(), Action::Update), ("cloudtrail_trail".into(), Action::Update)]);
    let trail_change = &p.changes[1];
    assert!(
        trail_change.diff.contains("-logging: false") && trail_change.diff.contains("+logging: true"),
        "{}",
        trail_change.diff
    );
}

#[test]
fn owned_resource_with_another_tag_value_is_retagged() {
    let b = baseline();
    let mut o = converged(&b);
    set(&mut o, &bucket(true), HOME, Observation::Present { state: bucket(true), owner: Some("Initialized".into()) });
    let p = plan(&b, &o, Mode::Maintenance);
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].action, Action::Tag);
    assert_eq!(p.changes[0].tag, OwnerTag::SecureAccount);
}

#[test]
fn drift_and_a_wrong_tag_value_are_both_mended_in_one_apply() {
    let b = baseline();
    let mut o = converged(&b);
    set(&mut o, &bucket(true), HOME, Observation::Present { state: bucket(false), owner: Some("Initialized".into()) });
    let p = plan(&b, &o, Mode::Maintenance);
    let actions: Vec<Action> = p.changes.iter().map(|c| c.action).collect();
    assert_eq!(actions, [Action::Update, Action::Tag]);
}

#[test]
fn a_create_over_quota_withholds_the_other_creates_of_its_feature() {
    let b = baseline();
    let mut o = converged(&b);
    set(&mut o, &bucket(true), HOME, Observation::Absent { quota: None });
    set(
        &mut o,
        &trail(true),
        HOME,
        Observation::Absent { quota: Some(Quota { name: "trails".into(), used: 5, limit: 5 }) },
    );
    let p = plan(&b, &o, Mode::Maintenance);
    assert!(changes_of(&p, "F07").is_empty(), "{:?}", p.changes);
    assert_eq!(skip_reason(&p, "F07"), [SkipReason::Quota, SkipReason::Quota]);
}

#[test]
fn opted_out_features_are_not_maintained_and_nothing_is_deleted() {
    let mut b = baseline();
    let f07 = feature_mut(&mut b, "F07");
    f07.opted_in = false;
    f07.explicit = Some(false);
    let mut o = converged(&b);
    set(&mut o, &trail(true), HOME, Observation::Present { state: trail(false), owner: Some("SecureAccount".into()) });
    for mode in [Mode::Maintenance, Mode::Initial] {
        let p = plan(&b, &o, mode);
        assert!(changes_of(&p, "F07").is_empty());
        assert_eq!(skip_reason(&p, "F07"), [SkipReason::OptedOut]);
    }
}

#[test]
fn basic_tier_defaults_apply_at_initial_setup_but_not_at_maintenance() {
    let mut b = baseline();
    let f03 = feature_mut(&mut b, "F03");
    f03.opted_in = false; // basic: opt-in default off
    let o = all_absent(&b);
    assert_eq!(changes_of(&plan(&b, &o, Mode::Initial), "F03").len(), 1);
    let p = plan(&b, &o, Mode::Maintenance);
    assert!(changes_of(&p, "F03").is_empty());
    assert_eq!(skip_reason(&p, "F03"), [SkipReason::OptedOut]);
}

#[test]
fn control_tower_accounts_skip_the_configured_features() {
    let b = baseline();
    let mut o = all_absent(&b);
    o.control_tower = true;
    let p = plan(&b, &o, Mode::Initial);
    assert!(changes_of(&p, "F07").is_empty());
    assert_eq!(skip_reason(&p, "F07"), [SkipReason::ControlTower]);
    assert!(!changes_of(&p, "F01").is_empty());
}

#[test]
fn missing_dependency_blocks_the_feature_and_present_dependency_does_not() {
    let mut b = baseline();
    let f08 = feature_mut(&mut b, "F08");
    f08.opted_in = false;
    f08.explicit = Some(false);
    let mut o = converged(&b);
    let config_bucket =
        ResourceSpec::S3Bucket(S3Bucket { name: "cm-members-config-111111111111".into(), ..Default::default() });
    set(&mut o, &config_bucket, HOME, Observation::Absent { quota: None });
    let p = plan(&b, &o, Mode::Maintenance);
    assert_eq!(skip_reason(&p, "F13"), [SkipReason::BlockedDependency]);
    assert!(p.skips.iter().any(|s| s.feature.as_str() == "F13" && s.detail.contains("F08")));

    // Ours in place: the dependency is met.
    set(&mut o, &config_bucket, HOME, Observation::Present { state: config_bucket.clone(), owner: Some("x".into()) });
    let p = plan(&b, &o, Mode::Maintenance);
    assert!(skip_reason(&p, "F13").is_empty(), "{:?}", p.skips);

    // Only the customer's in place: nothing of ours is built on it.
    set(&mut o, &config_bucket, HOME, Observation::Present { state: config_bucket.clone(), owner: None });
    let p = plan(&b, &o, Mode::Maintenance);
    assert_eq!(skip_reason(&p, "F13"), [SkipReason::BlockedDependency]);
    let s = p.skips.iter().find(|s| s.feature.as_str() == "F13").unwrap();
    assert!(s.detail.contains("customer's") && s.detail.contains("cm-members-config-111111111111"), "{}", s.detail);
}

#[test]
fn a_dependency_that_cannot_be_created_blocks_its_dependents() {
    let b = baseline();
    let mut o = all_absent(&b);
    // The key alias is taken by a key without our tag: F09 is not ours to create...
    set(
        &mut o,
        &key("logs key"),
        HOME,
        Observation::Absent { quota: Some(Quota { name: "keys".into(), used: 1, limit: 1 }) },
    );
    let p = plan(&b, &o, Mode::Initial);
    assert_eq!(skip_reason(&p, "F09"), [SkipReason::Quota]);
    assert_eq!(skip_reason(&p, "F07"), [SkipReason::BlockedDependency]);
    assert!(changes_of(&p, "F07").is_empty());
}

#[test]
fn required_initial_only_feature_comes_back_when_gone() {
    let b = baseline();
    let mut o = converged(&b);
    set(&mut o, &key("logs key"), HOME, Observation::Absent { quota: None });
    let p = plan(&b, &o, Mode::Maintenance);
    let created: Vec<&str> = p.changes.iter().map(|c| c.feature.as_str()).collect();
    assert_eq!(created, ["F09"]);

    // Not needed by any maintained feature: stays initial-only.
    let mut b2 = b.clone();
    feature_mut(&mut b2, "F07").opted_in = false;
    let p = plan(&b2, &o, Mode::Maintenance);
    assert_eq!(skip_reason(&p, "F09"), [SkipReason::InitialOnly]);
    assert!(p.changes.is_empty());
}

#[test]
fn trail_quota_is_reported_not_fought() {
    let b = baseline();
    let mut o = all_absent(&b);
    let q = |used| Observation::Absent {
        quota: Some(Quota { name: "CloudTrail trails in ap-northeast-1".into(), used, limit: 5 }),
    };
    set(&mut o, &trail(true), HOME, q(5));
    let p = plan(&b, &o, Mode::Initial);
    assert!(!p.changes.iter().any(|c| c.resource_type == "cloudtrail_trail"));
    let s = p.skips.iter().find(|s| s.reason == SkipReason::Quota && s.resource == "cloudtrail_trail Members").unwrap();
    assert!(s.detail.contains("5 of 5"), "{}", s.detail);
    set(&mut o, &trail(true), HOME, q(4));
    let p = plan(&b, &o, Mode::Initial);
    assert!(p.changes.iter().any(|c| c.resource_type == "cloudtrail_trail" && c.action == Action::Create));
}

#[test]
fn member_role_changes_that_would_lock_the_tool_out_are_refused() {
    let mut b = baseline();
    let o = {
        let mut o = converged(&b);
        set(
            &mut o,
            &role("cm-policymaintainer", "x"),
            GLOBAL,
            Observation::Present { state: role("cm-policymaintainer", "old"), owner: Some("Managed".into()) },
        );
        o
    };
    // A sound update goes through.
    assert_eq!(plan(&b, &o, Mode::Maintenance).changes.len(), 1);

    // A trust policy that no longer trusts the management account is refused.
    let ResourceSpec::IamRole(r) = &mut feature_mut(&mut b, "F01").resources[0].spec else { panic!() };
    r.trust_policy = trust("arn:aws:iam::123412341234:root");
    let p = plan(&b, &o, Mode::Maintenance);
    assert!(p.changes.is_empty());
    assert_eq!(skip_reason(&p, "F01"), [SkipReason::SelfLockout]);

    // Policies that drop an action the next run needs are refused too.
    let ResourceSpec::IamRole(r) = &mut feature_mut(&mut b, "F01").resources[0].spec else { panic!() };
    r.trust_policy = trust(MGMT);
    r.inline_policies = Some([("CMMaintenancePolicy".to_string(), maintainer_policy(&["iam:Get*", "s3:*"]))].into());
    let p = plan(&b, &o, Mode::Maintenance);
    let s = p.skips.iter().find(|s| s.reason == SkipReason::SelfLockout).unwrap();
    assert!(s.detail.contains("iam:PutRolePolicy"), "{}", s.detail);

    // And deleting it is never planned.
    let f01 = feature_mut(&mut b, "F01");
    f01.resources[0].ensure = Ensure::Absent;
    let p = plan(&b, &o, Mode::Maintenance);
    assert!(!p.changes.iter().any(|c| c.action == Action::Delete));
    assert_eq!(skip_reason(&p, "F01"), [SkipReason::SelfLockout]);
}

/// The plan of an update of the member role to `spec`, from a converged account.
fn member_role_update(edit: impl FnOnce(&mut IamRole)) -> AccountPlan {
    let mut b = baseline();
    let mut o = converged(&b);
    set(
        &mut o,
        &role("cm-policymaintainer", "x"),
        GLOBAL,
        Observation::Present { state: role("cm-policymaintainer", "old"), owner: Some("Managed".into()) },
    );
    let ResourceSpec::IamRole(r) = &mut feature_mut(&mut b, "F01").resources[0].spec else { panic!() };
    edit(r);
    plan(&b, &o, Mode::Maintenance)
}

fn lockout_detail(p: &AccountPlan) -> Option<String> {
    p.skips.iter().find(|s| s.reason == SkipReason::SelfLockout).map(|s| s.detail.clone())
}

#[test]
fn the_guard_requires_every_action_the_tool_calls_not_only_its_own_iam_ones() {
    let sound = member_role_update(|_| {});
    assert_eq!((sound.changes.len(), lockout_detail(&sound)), (1, None));
    // A policy that drops ec2:DescribeRegions (every run lists the regions first).
    let p = member_role_update(|r| {
        let all: Vec<&str> = crate::plan::guard_actions().filter(|a| *a != "ec2:DescribeRegions").collect();
        r.inline_policies = Some([("CMMaintenancePolicy".to_string(), maintainer_policy(&all))].into());
    });
    assert!(p.changes.is_empty());
    assert!(lockout_detail(&p).unwrap().ends_with("would no longer allow ec2:DescribeRegions"), "{:?}", p.skips);
    // A Deny with a condition still counts: the guard cannot prove the condition false.
    let p = member_role_update(|r| {
        let deny = json!({"Effect": "Deny", "Action": "securityhub:*", "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:RequestedRegion": "ap-northeast-1"}}});
        r.inline_policies = Some([("Deny".to_string(), PolicyDoc(json!({"Statement": [deny]})))].into());
        let all: Vec<&str> = crate::plan::guard_actions().collect();
        r.inline_policies.as_mut().unwrap().insert("CMMaintenancePolicy".into(), maintainer_policy(&all));
    });
    assert!(lockout_detail(&p).unwrap().contains("securityhub:BatchEnableStandards"), "{:?}", p.skips);
    // An Allow only under a condition the tool's calls need not meet proves nothing.
    let p = member_role_update(|r| {
        let all: Vec<&str> = crate::plan::guard_actions().collect();
        let allow = json!({"Effect": "Allow", "Action": all, "Resource": "*",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}});
        r.inline_policies =
            Some([("CMMaintenancePolicy".to_string(), PolicyDoc(json!({"Statement": [allow]})))].into());
    });
    assert!(lockout_detail(&p).is_some(), "{:?}", p.changes);
    // AdministratorAccess allows everything, but an inline Deny still takes away.
    let p = member_role_update(|r| {
        r.managed_policies = Some(["arn:aws:iam::aws:policy/AdministratorAccess".to_string()].into());
        let deny = json!({"Effect": "Deny", "Action": "iam:PutRolePolicy", "Resource": "*"});
        r.inline_policies = Some([("Deny".to_string(), PolicyDoc(json!({"Statement": [deny]})))].into());
    });
    assert!(lockout_detail(&p).unwrap().ends_with("would no longer allow iam:PutRolePolicy"), "{:?}", p.skips);
    let p = member_role_update(|r| {
        r.managed_policies = Some(["arn:aws:iam::aws:policy/AdministratorAccess".to_string()].into());
        r.inline_policies = Some(BTreeMap::new());
    });
    assert_eq!((p.changes.len(), lockout_detail(&p)), (1, None));
}

#[test]
fn the_guard_requires_the_role_to_be_able_to_repair_itself() {
    // The actions that repair the role must reach the role's own ARN.
    let p = member_role_update(|r| {
        let all: Vec<&str> = crate::plan::guard_actions().collect();
        let allow = json!({"Effect": "Allow", "Action": all, "Resource": "arn:aws:iam::*:role/cm-alert-*"});
        r.inline_policies =
            Some([("CMMaintenancePolicy".to_string(), PolicyDoc(json!({"Statement": [allow]})))].into());
    });
    let why = lockout_detail(&p).unwrap();
    assert!(why.contains("iam:PutRolePolicy") && why.contains("iam:UpdateAssumeRolePolicy"), "{why}");
    assert!(!why.contains("ec2:DescribeRegions"), "other actions need not name the role: {why}");
}

#[test]
fn the_trust_must_name_the_identity_the_tool_runs_as() {
    let with_trust = |doc: serde_json::Value| member_role_update(|r| r.trust_policy = PolicyDoc(doc));
    let allow = |principal: &str| json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}]});
    // The tool runs as the role cm-baseline-daemon of the management account (tests' caller).
    for ok in [
        format!("arn:aws:iam::{MGMT}:root"),
        MGMT.to_string(),
        format!("arn:aws:iam::{MGMT}:role/cm-baseline-daemon"),
        format!("arn:aws:iam::{MGMT}:role/ops/cm-baseline-daemon"),
    ] {
        let p = with_trust(allow(&ok));
        assert_eq!((p.changes.len(), lockout_detail(&p)), (1, None), "{ok}");
    }
    // Another principal of the management account is not the tool.
    for other in [format!("arn:aws:iam::{MGMT}:role/Admin"), format!("arn:aws:iam::{MGMT}:user/cm-baseline-daemon")] {
        let p = with_trust(allow(&other));
        let why = lockout_detail(&p).unwrap_or_else(|| panic!("{other} passed"));
        assert!(why.contains("assumed-role/cm-baseline-daemon"), "names the identity: {why}");
    }
    // A condition the tool cannot prove it meets refuses the change, and is named.
    let p =
        with_trust(json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": MGMT}, "Action": "sts:AssumeRole",
        "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}}]}));
    assert!(lockout_detail(&p).unwrap().contains("IpAddress aws:SourceIp"), "{:?}", p.skips);
    // A Deny that reaches the tool, even under a condition, refuses it.
    let p = with_trust(json!({"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": MGMT}, "Action": "sts:AssumeRole"},
        {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:*",
         "Condition": {"StringNotEquals": {"aws:PrincipalTag/team": "ops"}}}]}));
    assert!(lockout_detail(&p).unwrap().contains("denies sts:AssumeRole"), "{:?}", p.skips);
    let p = with_trust(json!({"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": MGMT}, "Action": "sts:AssumeRole"},
        {"Effect": "Deny", "NotPrincipal": {"AWS": format!("arn:aws:iam::{MGMT}:role/Admin")}, "Action": "sts:AssumeRole"}]}));
    assert!(lockout_detail(&p).is_some(), "a NotPrincipal that leaves the tool out denies it");
}

#[test]
fn external_id_in_trust_must_match_the_configured_one() {
    let mut b = baseline();
    b.external_id = Some("expected".into());
    let o = all_absent(&b);
    let ResourceSpec::IamRole(r) = &mut feature_mut(&mut b, "F01").resources[0].spec else { panic!() };
    r.trust_policy =
        PolicyDoc(json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": MGMT}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": "other"}}}]}));
    let p = plan(&b, &o, Mode::Initial);
    assert_eq!(skip_reason(&p, "F01"), [SkipReason::SelfLockout]);
}

#[test]
fn retiring_a_resource_deletes_only_what_carries_the_tag() {
    let mut b = baseline();
    feature_mut(&mut b, "F01").resources[1].ensure = Ensure::Absent;
    let mut o = converged(&b);
    let p = plan(&b, &o, Mode::Maintenance);
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].action, Action::Delete);
    set(
        &mut o,
        &role("cm-helpdesk", "helpdesk"),
        GLOBAL,
        Observation::Present { state: role("cm-helpdesk", "h"), owner: None },
    );
    let p = plan(&b, &o, Mode::Maintenance);
    assert!(p.changes.is_empty());
    assert_eq!(skip_reason(&p, "F01"), [SkipReason::NotOwned]);
}

#[test]
fn aws_defaults_are_removed_only_when_unused_and_never_updated() {
    let mut b = baseline();
    feature_mut(&mut b, "F08").resources[0].ensure = Ensure::Absent;
    let config_bucket = b.features.iter().find(|f| f.id.as_str() == "F08").unwrap().resources[0].spec.clone();
    let mut o = converged(&b);
    set(&mut o, &config_bucket, HOME, Observation::AwsDefault { state: config_bucket.clone(), in_use: vec![] });
    let p = plan(&b, &o, Mode::Initial);
    assert_eq!(changes_of(&p, "F08").iter().map(|c| c.action).collect::<Vec<_>>(), [Action::Delete]);

    set(
        &mut o,
        &config_bucket,
        HOME,
        Observation::AwsDefault { state: config_bucket.clone(), in_use: vec!["eni-1".into(), "eni-2".into()] },
    );
    let p = plan(&b, &o, Mode::Initial);
    assert!(changes_of(&p, "F08").is_empty());
    let s = p.skips.iter().find(|s| s.reason == SkipReason::InUse).unwrap();
    assert!(s.detail.contains("eni-1, eni-2"), "{}", s.detail);

    // Desired present: an AWS default is not ours to change.
    feature_mut(&mut b, "F08").resources[0].ensure = Ensure::Present;
    set(&mut o, &config_bucket, HOME, Observation::AwsDefault { state: bucket(false), in_use: vec![] });
    let p = plan(&b, &o, Mode::Initial);
    assert!(changes_of(&p, "F08").is_empty());
    assert_eq!(skip_reason(&p, "F08"), [SkipReason::NotOwned]);
}

#[test]
fn unobserved_resources_are_errors_not_guesses() {
    let b = baseline();
    let mut o = all_absent(&b);
    o.resources.remove(&b.features[0].resources[0].key);
    let p = plan(&b, &o, Mode::Initial);
    assert_eq!(p.errors.len(), 1);
}

#[test]
fn only_features_that_may_act_are_observed() {
    let mut b = baseline();
    feature_mut(&mut b, "F03").opted_in = false;
    feature_mut(&mut b, "F08").opted_in = false;
    let seen = features_to_observe(&b, Mode::Maintenance, false);
    let seen: Vec<&str> = seen.iter().map(|f| f.as_str()).collect();
    // F03 is opted out; F08 is opted out but F13 needs to know whether it is in place.
    assert_eq!(seen, ["F01", "F07", "F08", "F09", "F13"]);
}

fn detector() -> ResourceSpec {
    ResourceSpec::GuarddutyDetector(GuarddutyDetector { enabled: Some(true), ..Default::default() })
}

fn hub() -> ResourceSpec {
    ResourceSpec::SecurityhubHub(SecurityhubHub { auto_enable_controls: Some(true), ..Default::default() })
}

fn recorder() -> ResourceSpec {
    ResourceSpec::ConfigRecorder(ConfigRecorder {
        name: "default".into(),
        role_arn: "arn:aws:iam::111111111111:role/cm-config-role-all-regions".into(),
        all_supported: Some(true),
        include_global_resource_types: Some(true),
        resource_types: None,
        delivery_channel: None,
        recording: Some(true),
    })
}

fn alert_rule() -> ResourceSpec {
    ResourceSpec::EventbridgeRule(EventbridgeRule {
        name: "cm-guardduty-alert-rule".into(),
        event_bus: "cm-security-alert-aggregator-bus".into(),
        description: None,
        event_pattern: PolicyDoc(json!({"source": ["aws.guardduty"]})),
        state: Some(eventbridge_rule::State::Enabled),
        targets: None,
    })
}

/// [`baseline`] with the per-region resource types of the secure tier as well: Config's
/// recorder (untaggable) next to its bucket, GuardDuty detectors in two regions, Security
/// Hub needing Config, Detective needing GuardDuty, an alert rule. Dependencies come first,
/// as resolve orders them.
fn wide_baseline() -> AccountBaseline {
    let mut b = baseline();
    b.regions.push("us-east-1".into());
    feature_mut(&mut b, "F08").resources.push(res(recorder(), HOME));
    feature_mut(&mut b, "F13").resources.push(res(hub(), HOME));
    let f13 = b.features.iter().position(|f| f.id.as_str() == "F13").unwrap();
    let f12 = feature(
        "F12",
        FeatureKind::OptIn,
        &[],
        OwnerTag::SecureAccount,
        vec![res(detector(), HOME), res(detector(), "us-east-1")],
    );
    b.features.insert(f13, f12);
    b.features.push(feature(
        "F14",
        FeatureKind::OptIn,
        &["F12"],
        OwnerTag::SecureAccount,
        vec![res(ResourceSpec::DetectiveGraph(DetectiveGraph::default()), HOME)],
    ));
    b.features.push(feature("F15", FeatureKind::OptIn, &[], OwnerTag::SecureAccount, vec![res(alert_rule(), HOME)]));
    b
}

#[test]
fn the_wide_baseline_plans_clean_when_converged_and_whole_when_absent() {
    let b = wide_baseline();
    let p = plan(&b, &converged(&b), Mode::Initial);
    assert!(p.changes.is_empty() && p.errors.is_empty(), "{p:#?}");
    let p = plan(&b, &all_absent(&b), Mode::Initial);
    let created: BTreeSet<(&str, &str)> =
        p.changes.iter().map(|c| (c.feature.as_str(), c.resource_type.as_str())).collect();
    for kind in ["config_recorder", "guardduty_detector", "securityhub_hub", "detective_graph", "eventbridge_rule"] {
        assert!(created.iter().any(|(_, k)| *k == kind), "{kind}: {created:?}");
    }
    let order: Vec<&str> = p.changes.iter().map(|c| c.feature.as_str()).collect();
    let last = |f: &str| order.iter().rposition(|x| *x == f).unwrap();
    let first = |f: &str| order.iter().position(|x| *x == f).unwrap();
    assert!(last("F08") < first("F13") && last("F12") < first("F14"), "{order:?}");
}

// ---- Ownership of what cannot carry a tag, conflicts, adoption ----

const CONFIG_ROLE: &str = "cm-config-role-all-regions";
const CONFIG_BUCKET: &str = "cm-members-config-111111111111";

fn standard() -> ResourceSpec {
    ResourceSpec::SecurityhubStandard(SecurityhubStandard {
        standards_arn: "arn:aws:securityhub:ap-northeast-1::standards/aws-foundational-security-best-practices/v/1.0.0"
            .into(),
        controls: None,
        subscription_arn: None,
    })
}

/// A recorder pointing at `role` and delivering to `bucket`.
fn recorder_at(role: &str, bucket: &str, recording: bool) -> ResourceSpec {
    ResourceSpec::ConfigRecorder(ConfigRecorder {
        name: "default".into(),
        role_arn: format!("arn:aws:iam::111111111111:role/{role}"),
        all_supported: Some(true),
        include_global_resource_types: Some(true),
        resource_types: None,
        delivery_channel: Some(DeliveryChannel {
            name: "default".into(),
            s3_bucket: bucket.into(),
            s3_key_prefix: None,
            s3_kms_key: None,
        }),
        recording: Some(recording),
    })
}

fn ebs(enabled: bool, key: Option<&str>) -> ResourceSpec {
    ResourceSpec::EbsDefaultEncryption(EbsDefaultEncryption { enabled, kms_key: key.map(str::to_string) })
}

fn analyzer() -> ResourceSpec {
    ResourceSpec::AccessAnalyzer(AccessAnalyzer {
        name: "cm-access-analyzer".into(),
        analyzer_type: "ACCOUNT".into(),
        archive_rules: None,
    })
}

fn group() -> ResourceSpec {
    ResourceSpec::IamGroup(IamGroup { name: "admin-group-111111111111".into(), managed_policies: BTreeSet::new() })
}

fn key_of(spec: &ResourceSpec, region: &str) -> ResourceKey {
    ResourceKey { kind: spec.kind().into(), region: region.into(), name: spec.name() }
}

/// Every ownership class in one account, over two regions: F01 roles (the Config role
/// among them), F02 an IAM group, F06 an account analyzer, F08 the Config bucket and a
/// recorder per region, F11 EBS encryption, F12 detectors, F13 hub and standard per region,
/// F14 Detective.
fn ownership_baseline() -> AccountBaseline {
    let mut b = wide_baseline();
    feature_mut(&mut b, "F01").resources.push(res(role(CONFIG_ROLE, "config"), GLOBAL));
    let f08 = feature_mut(&mut b, "F08");
    f08.resources.retain(|r| r.key.kind != "config_recorder");
    f08.resources.push(res(recorder_at(CONFIG_ROLE, CONFIG_BUCKET, true), HOME));
    f08.resources.push(res(recorder_at(CONFIG_ROLE, CONFIG_BUCKET, true), "us-east-1"));
    let f13 = feature_mut(&mut b, "F13");
    f13.resources.push(res(standard(), HOME));
    f13.resources.push(res(hub(), "us-east-1"));
    f13.resources.push(res(standard(), "us-east-1"));
    let at = b.features.iter().position(|f| f.id.as_str() == "F03").unwrap();
    b.features
        .insert(at, feature("F02", FeatureKind::InitialOnly, &[], OwnerTag::Initialized, vec![res(group(), GLOBAL)]));
    b.features.insert(
        at + 1,
        feature(
            "F06",
            FeatureKind::Managed,
            &[],
            OwnerTag::Managed,
            vec![res(analyzer(), HOME), res(analyzer(), "us-east-1")],
        ),
    );
    b.features.insert(
        at + 2,
        feature(
            "F11",
            FeatureKind::OptIn,
            &[],
            OwnerTag::SecureAccount,
            vec![res(ebs(true, None), HOME), res(ebs(true, None), "us-east-1")],
        ),
    );
    let f14 = feature_mut(&mut b, "F14");
    f14.resources.push(res(ResourceSpec::DetectiveGraph(DetectiveGraph::default()), "us-east-1"));
    b
}

fn skip_of<'a>(p: &'a AccountPlan, kind: &str, region: &str) -> Option<&'a Skip> {
    p.skips.iter().find(|s| s.region == region && s.resource.starts_with(&format!("{kind} ")))
}

#[test]
fn the_ownership_baseline_is_clean_when_converged() {
    let b = ownership_baseline();
    let p = plan(&b, &converged(&b), Mode::Initial);
    assert!(p.changes.is_empty() && p.errors.is_empty(), "{p:#?}");
}

#[test]
fn a_customers_hub_keeps_all_of_security_hub_in_its_region_untouched() {
    let b = ownership_baseline();
    let mut o = converged(&b);
    // The customer's own hub in us-east-1, without our tag; its standard missing, and the
    // standard of the home region drifted.
    set(&mut o, &hub(), "us-east-1", Observation::Present { state: hub(), owner: None });
    set(&mut o, &standard(), "us-east-1", Observation::Absent { quota: None });
    o.records.remove(&key_of(&standard(), "us-east-1"));
    let p = plan(&b, &o, Mode::Maintenance);
    assert!(!p.changes.iter().any(|c| c.feature.as_str() == "F13"), "{:?}", p.changes);
    for kind in ["securityhub_hub", "securityhub_standard"] {
        let s = skip_of(&p, kind, "us-east-1").unwrap_or_else(|| panic!("{kind}: {:?}", p.skips));
        assert_eq!(s.reason, SkipReason::NotOwned);
    }
    let s = skip_of(&p, "securityhub_standard", "us-east-1").unwrap();
    assert!(s.detail.contains("customer's securityhub_hub in us-east-1"), "{}", s.detail);
    // The home region's Security Hub is ours and is still maintained.
    assert!(skip_of(&p, "securityhub_hub", HOME).is_none());

    // Our hub there: the missing standard is created.
    set(&mut o, &hub(), "us-east-1", Observation::Present { state: hub(), owner: Some("SecureAccount".into()) });
    let p = plan(&b, &o, Mode::Maintenance);
    assert_eq!(
        p.changes.iter().map(|c| (c.resource_type.as_str(), c.region.as_str(), c.action)).collect::<Vec<_>>(),
        [("securityhub_standard", "us-east-1", Action::Create)]
    );
}

#[test]
fn a_recorder_is_ours_only_through_our_role_and_bucket_or_our_record() {
    let b = ownership_baseline();
    let mut o = converged(&b);
    let k = key_of(&recorder_at(CONFIG_ROLE, CONFIG_BUCKET, true), "us-east-1");
    o.records.remove(&k);
    // Not recording, pointing at our role and our bucket (both tagged): ours, repaired.
    set(
        &mut o,
        &recorder_at(CONFIG_ROLE, CONFIG_BUCKET, true),
        "us-east-1",
        Observation::Present { state: recorder_at(CONFIG_ROLE, CONFIG_BUCKET, false), owner: None },
    );
    let p = plan(&b, &o, Mode::Maintenance);
    assert_eq!(p.changes.len(), 1, "{:?}", p.changes);
    assert_eq!((p.changes[0].resource_type.as_str(), p.changes[0].action), ("config_recorder", Action::Update));

    // The customer's recorder, named `default` as the console names it, with their role
    // and bucket: a conflict, left alone.
    let theirs = recorder_at("customer-config-role", "customer-config-bucket", false);
    set(&mut o, &theirs, "us-east-1", Observation::Present { state: theirs.clone(), owner: None });
    let p = plan(&b, &o, Mode::Maintenance);
    assert!(p.changes.is_empty(), "{:?}", p.changes);
    let s = skip_of(&p, "config_recorder", "us-east-1").unwrap();
    assert_eq!(s.reason, SkipReason::Conflict);
    assert!(
        s.detail.contains("iam_role customer-config-role") && s.detail.contains("customer-config-bucket"),
        "{}",
        s.detail
    );

    // Recorded in the journal as made by us: ours whatever it points at.
    o.records.insert(k.clone());
    let p = plan(&b, &o, Mode::Maintenance);
    assert_eq!(p.changes.iter().map(|c| c.action).collect::<Vec<_>>(), [Action::Update]);

    // Another recorder under another name holds the region's one place.
    o.records.remove(&k);
    set(
        &mut o,
        &theirs,
        "us-east-1",
        Observation::Occupied { by: "configuration recorder customer".into(), state: None },
    );
    let p = plan(&b, &o, Mode::Initial);
    assert!(p.changes.is_empty(), "{:?}", p.changes);
    let s = skip_of(&p, "config_recorder", "us-east-1").unwrap();
    assert_eq!(s.reason, SkipReason::Conflict);
    assert!(s.detail.contains("configuration recorder customer"), "{}", s.detail);
    // The rest of the account goes on.
    assert!(skip_of(&p, "config_recorder", HOME).is_none());
}

#[test]
fn a_setting_the_customer_chose_is_an_adoption_taken_over_only_when_desired_state_says_so() {
    let mut b = ownership_baseline();
    let mut o = converged(&b);
    let k = key_of(&ebs(true, None), "us-east-1");
    o.records.remove(&k);
    // At AWS's default (off, AWS's key): nobody chose it, ours to set, and recorded then.
    set(&mut o, &ebs(true, None), "us-east-1", Observation::Present { state: ebs(false, None), owner: None });
    let p = plan(&b, &o, Mode::Maintenance);
    assert_eq!(p.changes.iter().map(|c| c.action).collect::<Vec<_>>(), [Action::Update]);

    // The customer's own choice (off, with their key): reported as an adoption with the diff.
    let theirs = ebs(false, Some("arn:aws:kms:us-east-1:111111111111:key/customer"));
    set(&mut o, &ebs(true, None), "us-east-1", Observation::Present { state: theirs.clone(), owner: None });
    let p = plan(&b, &o, Mode::Maintenance);
    assert!(p.changes.is_empty(), "{:?}", p.changes);
    let s = skip_of(&p, "ebs_default_encryption", "us-east-1").unwrap();
    assert_eq!(s.reason, SkipReason::Adoption);
    assert!(s.detail.contains("adopt: {F11: overwrite}"), "{}", s.detail);
    let diff = s.diff.as_deref().unwrap();
    assert!(diff.contains("-enabled: false") && diff.contains("+enabled: true"), "{diff}");

    // Desired state adopts it: one adopt change, with the customer's value in its diff.
    feature_mut(&mut b, "F11").adopt = true;
    let p = plan(&b, &o, Mode::Maintenance);
    assert_eq!(p.changes.len(), 1);
    assert_eq!((p.changes[0].action, p.changes[0].observed.as_ref()), (Action::Adopt, Some(&theirs)));
    assert!(p.changes[0].diff.contains("-enabled: false"), "{}", p.changes[0].diff);

    // Once adopted (recorded), its drift is simply repaired.
    feature_mut(&mut b, "F11").adopt = false;
    o.records.insert(k);
    let p = plan(&b, &o, Mode::Maintenance);
    assert_eq!(p.changes.iter().map(|c| c.action).collect::<Vec<_>>(), [Action::Update]);
}

#[test]
fn an_iam_group_is_ours_only_by_our_record() {
    let b = ownership_baseline();
    let mut o = converged(&b);
    let k = key_of(&group(), GLOBAL);
    let other = ResourceSpec::IamGroup(IamGroup {
        name: "admin-group-111111111111".into(),
        managed_policies: ["arn:aws:iam::aws:policy/ReadOnlyAccess".to_string()].into(),
    });
    set(&mut o, &group(), GLOBAL, Observation::Present { state: other, owner: None });
    o.records.remove(&k);
    let p = plan(&b, &o, Mode::Initial);
    assert!(p.changes.is_empty(), "{:?}", p.changes);
    assert_eq!(skip_of(&p, "iam_group", GLOBAL).map(|s| s.reason), Some(SkipReason::NotOwned));
    o.records.insert(k);
    let p = plan(&b, &o, Mode::Initial);
    assert_eq!(p.changes.iter().map(|c| c.action).collect::<Vec<_>>(), [Action::Update]);
}

#[test]
fn one_analyzer_per_type_and_region_the_customers_is_a_conflict_and_the_rest_goes_on() {
    let b = ownership_baseline();
    let mut o = all_absent(&b);
    set(
        &mut o,
        &analyzer(),
        "us-east-1",
        Observation::Occupied { by: "ACCOUNT analyzer customer".into(), state: None },
    );
    let p = plan(&b, &o, Mode::Initial);
    let s = skip_of(&p, "access_analyzer", "us-east-1").unwrap();
    assert_eq!(s.reason, SkipReason::Conflict);
    assert!(p.changes.iter().any(|c| c.resource_type == "access_analyzer" && c.region == HOME));
    assert!(!p.changes.iter().any(|c| c.resource_type == "access_analyzer" && c.region == "us-east-1"));
    assert!(p.changes.iter().any(|c| c.feature.as_str() == "F07"), "the rest of the account goes on");
}

#[test]
fn nothing_is_built_on_the_customers_resources_region_by_region() {
    let b = ownership_baseline();
    let mut o = converged(&b);
    // The customer's detector in us-east-1; Detective missing in both regions.
    set(&mut o, &detector(), "us-east-1", Observation::Present { state: detector(), owner: None });
    let graph = ResourceSpec::DetectiveGraph(DetectiveGraph::default());
    set(&mut o, &graph, HOME, Observation::Absent { quota: None });
    set(&mut o, &graph, "us-east-1", Observation::Absent { quota: None });
    let p = plan(&b, &o, Mode::Maintenance);
    let made: Vec<(&str, &str)> = p.changes.iter().map(|c| (c.resource_type.as_str(), c.region.as_str())).collect();
    assert_eq!(made, [("detective_graph", HOME)]);
    let s = skip_of(&p, "detective_graph", "us-east-1").unwrap();
    assert_eq!(s.reason, SkipReason::BlockedDependency);
    assert!(s.detail.contains("guardduty_detector") && s.detail.contains("customer's"), "{}", s.detail);

    // The customer's key behind our alias: the trail and its bucket never use it.
    let mut o = converged(&b);
    set(&mut o, &key("logs key"), HOME, Observation::Present { state: key("logs key"), owner: None });
    set(&mut o, &trail(true), HOME, Observation::Absent { quota: None });
    let p = plan(&b, &o, Mode::Maintenance);
    assert!(!p.changes.iter().any(|c| c.feature.as_str() == "F07"), "{:?}", p.changes);
    let s = p.skips.iter().find(|s| s.feature.as_str() == "F07").unwrap();
    assert_eq!(s.reason, SkipReason::BlockedDependency);
    assert!(s.detail.contains("kms_key alias/cm-members-logs-key") && s.detail.contains("customer's"), "{}", s.detail);
}

#[test]
fn a_create_cut_short_is_finished_by_its_record_and_an_untagged_lookalike_is_not() {
    let b = ownership_baseline();
    let mut o = converged(&b);
    // Our bucket, made, but the run stopped before its tag was written.
    set(&mut o, &bucket(true), HOME, Observation::Present { state: bucket(true), owner: None });
    let p = plan(&b, &o, Mode::Maintenance);
    assert!(p.changes.is_empty());
    assert_eq!(skip_of(&p, "s3_bucket", HOME).map(|s| s.reason), Some(SkipReason::NotOwned));
    o.records.insert(key_of(&bucket(true), HOME));
    let p = plan(&b, &o, Mode::Maintenance);
    assert_eq!(p.changes.iter().map(|c| c.action).collect::<Vec<_>>(), [Action::Tag]);
}

// ---- The property: nothing that is not provably ours is touched or built on ----

/// What the planner may regard as ours, stated independently of it: the rules of
/// DESIGN.md's "Ownership", read off the observation.
fn oracle_ours(o: &Observed, key: &ResourceKey) -> bool {
    let Some(Observation::Present { state, owner }) = o.resources.get(key) else { return false };
    let recorded = o.records.contains(key);
    let tagged = |k: &str, name: &str| {
        o.resources.iter().any(|(key, v)| {
            key.kind == k && key.name == name && matches!(v, Observation::Present { owner: Some(_), .. })
        })
    };
    let parent_ours = || {
        o.resources.iter().any(|(k, v)| {
            k.kind == "securityhub_hub"
                && k.region == key.region
                && matches!(v, Observation::Present { owner: Some(_), .. })
        })
    };
    match state {
        ResourceSpec::SecurityhubStandard(_) | ResourceSpec::SecurityhubFindingAggregator(_) => parent_ours(),
        ResourceSpec::SecurityhubAutomationRule(_) => parent_ours() && (owner.is_some() || recorded),
        ResourceSpec::ConfigRecorder(r) => {
            recorded
                || (tagged("iam_role", r.role_arn.rsplit('/').next().unwrap_or_default())
                    && r.delivery_channel.as_ref().is_some_and(|c| tagged("s3_bucket", &c.s3_bucket)))
        }
        ResourceSpec::IamGroup(_) => recorded,
        ResourceSpec::EbsDefaultEncryption(e) => {
            recorded || (!e.enabled && e.kms_key.as_deref().is_none_or(|k| k.ends_with("alias/aws/ebs")))
        }
        ResourceSpec::IamPasswordPolicy(_) => recorded,
        ResourceSpec::DefaultVpc(_) => false,
        _ => owner.is_some() || recorded,
    }
}

/// A random observation of `spec`: absent (maybe at a quota), present with any owner tag,
/// maybe drifted and maybe in a shape of the customer's, or its one place taken.
fn observation(spec: ResourceSpec) -> impl Strategy<Value = Observation<ResourceSpec>> {
    let owners = prop_oneof![
        Just(None),
        Just(Some("Managed".to_string())),
        Just(Some("Initialized".to_string())),
        Just(Some("Stranger".to_string()))
    ];
    prop_oneof![
        (0usize..7).prop_map(|used| Observation::Absent { quota: Some(Quota { name: "q".into(), used, limit: 5 }) }),
        (owners, 0u8..3).prop_map(move |(owner, shape)| {
            let state = match shape {
                0 => spec.clone(),
                1 => drifted(&spec),
                _ => customers(&spec),
            };
            let owner = if spec.taggable() { owner } else { None };
            Observation::Present { state, owner }
        }),
        Just(Observation::Occupied { by: "the customer's one".into(), state: None }),
    ]
}

/// The shape the customer's own version of `spec` has.
fn customers(spec: &ResourceSpec) -> ResourceSpec {
    match spec {
        ResourceSpec::ConfigRecorder(_) => recorder_at("customer-config-role", "customer-config-bucket", true),
        ResourceSpec::EbsDefaultEncryption(_) => ebs(true, Some("arn:aws:kms:us-east-1:111111111111:key/customer")),
        ResourceSpec::IamGroup(g) => ResourceSpec::IamGroup(IamGroup {
            managed_policies: ["arn:aws:iam::aws:policy/ReadOnlyAccess".to_string()].into(),
            ..g.clone()
        }),
        other => drifted(other),
    }
}

fn drifted(spec: &ResourceSpec) -> ResourceSpec {
    match spec {
        ResourceSpec::IamRole(r) => role(&r.name, "changed by someone"),
        ResourceSpec::IamPasswordPolicy(_) => password(6),
        ResourceSpec::S3Bucket(b) => ResourceSpec::S3Bucket(S3Bucket { versioning: Some(false), ..b.clone() }),
        ResourceSpec::CloudtrailTrail(_) => trail(false),
        ResourceSpec::KmsKey(_) => key("changed"),
        ResourceSpec::GuarddutyDetector(d) => {
            ResourceSpec::GuarddutyDetector(GuarddutyDetector { enabled: Some(false), ..d.clone() })
        }
        ResourceSpec::SecurityhubHub(h) => {
            ResourceSpec::SecurityhubHub(SecurityhubHub { auto_enable_controls: Some(false), ..h.clone() })
        }
        ResourceSpec::ConfigRecorder(r) => {
            ResourceSpec::ConfigRecorder(ConfigRecorder { recording: Some(false), ..r.clone() })
        }
        ResourceSpec::EventbridgeRule(r) => ResourceSpec::EventbridgeRule(EventbridgeRule {
            state: Some(eventbridge_rule::State::Disabled),
            ..r.clone()
        }),
        // Off: AWS's default.
        ResourceSpec::EbsDefaultEncryption(_) => ebs(false, None),
        ResourceSpec::IamGroup(g) => ResourceSpec::IamGroup(IamGroup {
            managed_policies: ["arn:aws:iam::aws:policy/IAMFullAccess".to_string()].into(),
            ..g.clone()
        }),
        ResourceSpec::SecurityhubStandard(s) => {
            ResourceSpec::SecurityhubStandard(SecurityhubStandard { controls: Some(BTreeMap::new()), ..s.clone() })
        }
        // A behavior graph or an analyzer without rules has no settings: there or not.
        other => other.clone(),
    }
}

fn scenario() -> impl Strategy<Value = (AccountBaseline, Observed, Mode)> {
    let b = ownership_baseline();
    let keys: Vec<(ResourceKey, ResourceSpec)> =
        b.features.iter().flat_map(|f| f.resources.iter().map(|r| (r.key.clone(), r.spec.clone()))).collect();
    let obs: Vec<_> = keys.iter().map(|(_, s)| observation(s.clone())).collect();
    let n = b.features.len();
    (
        obs,
        proptest::collection::vec(any::<bool>(), keys.len()),
        proptest::collection::vec(prop_oneof![Just(None), Just(Some(true)), Just(Some(false))], n),
        proptest::collection::vec(any::<bool>(), n),
        proptest::collection::vec(any::<bool>(), n),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(move |(obs, recorded, explicit, absent, adopt, ct, initial, defaults)| {
            let mut b = b.clone();
            for (i, f) in b.features.iter_mut().enumerate() {
                f.explicit = explicit[i];
                f.opted_in = explicit[i].unwrap_or(defaults);
                f.adopt = adopt[i];
                for r in f.resources.iter_mut() {
                    if absent[i] && f.id.as_str() != "F01" && r.spec.ownership() != Ownership::Setting {
                        r.ensure = Ensure::Absent;
                    }
                }
            }
            let mut o = Observed { control_tower: ct, ..Default::default() };
            for (((k, _), v), rec) in keys.iter().zip(obs).zip(recorded) {
                o.resources.insert(k.clone(), v);
                if rec {
                    o.records.insert(k.clone());
                }
            }
            (b, o, if initial { Mode::Initial } else { Mode::Maintenance })
        })
}

/// The resources of `g` a change in `region` builds on (DESIGN.md, R3 by region).
fn served_by<'a>(g: &'a FeatureBaseline, region: &str, home: &str) -> Vec<&'a DesiredResource> {
    let present = || g.resources.iter().filter(|r| r.ensure == Ensure::Present);
    if region == GLOBAL {
        return present().collect();
    }
    let local = if present().any(|r| r.key.region == region) { region } else { home };
    present().filter(|r| r.key.region == GLOBAL || r.key.region == local).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn no_plan_touches_or_builds_on_what_is_not_provably_ours((b, o, mode) in scenario()) {
        let p = plan(&b, &o, mode);
        for (i, c) in p.changes.iter().enumerate() {
            let key = ResourceKey { kind: c.resource_type.clone(), region: c.region.clone(), name: c.resource.clone() };
            let f = b.features.iter().find(|f| f.id == c.feature).unwrap();
            match (c.action, o.resources.get(&key)) {
                (Action::Create, Some(Observation::Absent { quota })) => {
                    prop_assert!(quota.as_ref().is_none_or(|q| q.used < q.limit), "create beyond quota");
                    // Nothing is added to the customer's hub.
                    if let Ownership::Parent(kind) = c.desired.ownership() {
                        let customers_parent = o.resources.iter().any(|(k, v)| k.kind == kind && k.region == key.region
                            && matches!(v, Observation::Present { owner: None, .. } | Observation::Occupied { .. }));
                        prop_assert!(!customers_parent, "{key} created under the customer's {kind}");
                    }
                }
                (Action::Create, other) => prop_assert!(false, "create of {key} observed as {other:?}"),
                (Action::Adopt, Some(Observation::Present { .. })) => {
                    prop_assert!(f.adopt, "{key} adopted without `adopt: overwrite`");
                    prop_assert!(!matches!(c.desired.ownership(), Ownership::Parent(_) | Ownership::AwsDefault));
                }
                (Action::Delete, Some(Observation::AwsDefault { in_use, .. })) => {
                    prop_assert!(in_use.is_empty(), "AWS default {key} deleted while in use");
                }
                (action, Some(Observation::Present { .. })) => {
                    prop_assert!(oracle_ours(&o, &key), "{action:?} of {key}, which is not provably ours");
                }
                (action, other) => prop_assert!(false, "{action:?} of {key} observed as {other:?}"),
            }
            // Opted out: nothing at all is changed, let alone deleted.
            if f.kind == FeatureKind::OptIn && f.explicit == Some(false) {
                prop_assert!(false, "change {:?} for opted-out {}", c.action, f.id);
            }
            if mode == Mode::Maintenance && f.kind == FeatureKind::OptIn {
                prop_assert!(f.opted_in, "maintenance changed {} which is not opted in", f.id);
            }
            prop_assert!(!(o.control_tower && b.control_tower.skip_features.contains(&f.id)));
            prop_assert!(!(c.action == Action::Delete && f.resources.iter().any(|r| r.key == key && r.ensure == Ensure::Present)));
            // R3: what a change builds on is ours now, or made or adopted by this plan before it.
            if c.action != Action::Delete {
                for req in &f.requires {
                    let g = b.features.iter().find(|g| &g.id == req).unwrap();
                    for r in served_by(g, &c.region, &b.home_region) {
                        let ours_now = oracle_ours(&o, &r.key);
                        let made_before = p.changes[..i].iter().any(|e| {
                            matches!(e.action, Action::Create | Action::Adopt)
                                && e.resource_type == r.key.kind && e.region == r.key.region && e.resource == r.key.name
                        });
                        prop_assert!(ours_now || made_before, "{key} ({}) builds on {} of {req}, which is not ours", f.id, r.key);
                    }
                }
            }
        }
        // Every skipped feature contributes no change.
        for s in p.skips.iter().filter(|s| s.resource == "*") {
            prop_assert!(!p.changes.iter().any(|c| c.feature == s.feature));
        }
        prop_assert_eq!(&p, &plan(&b, &o, mode));
    }
}

/// The property above is only as good as what it draws: every ownership class, every
/// refusal and every action must come up, or the property proves nothing about them.
/// Prints the tally (`cargo test -- --nocapture`).
#[test]
fn the_random_accounts_cover_every_ownership_class_refusal_and_action() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = scenario();
    let mut reasons: BTreeMap<SkipReason, usize> = BTreeMap::new();
    let mut actions: BTreeMap<Action, usize> = BTreeMap::new();
    let mut shapes: BTreeMap<String, usize> = BTreeMap::new();
    let cases = 3000;
    for _ in 0..cases {
        let (b, o, mode) = strategy.new_tree(&mut runner).expect("a scenario").current();
        for (k, v) in &o.resources {
            let shape = match v {
                Observation::Absent { .. } => "absent",
                Observation::Occupied { .. } => "occupied",
                Observation::AwsDefault { .. } => "aws_default",
                Observation::Present { .. } if oracle_ours(&o, k) => "present, ours",
                Observation::Present { .. } => "present, the customer's",
            };
            *shapes.entry(format!("{} {shape}", k.kind)).or_default() += 1;
        }
        let p = plan(&b, &o, mode);
        for s in &p.skips {
            *reasons.entry(s.reason).or_default() += 1;
        }
        for c in &p.changes {
            *actions.entry(c.action).or_default() += 1;
        }
    }
    println!("{cases} random accounts; observations by type and shape:");
    for (shape, n) in &shapes {
        println!("  {shape}: {n}");
    }
    println!("skips: {reasons:?}\nchanges: {actions:?}");
    for r in [
        SkipReason::NotOwned,
        SkipReason::Conflict,
        SkipReason::Adoption,
        SkipReason::BlockedDependency,
        SkipReason::OptedOut,
        SkipReason::ControlTower,
        SkipReason::Quota,
    ] {
        assert!(reasons.get(&r).copied().unwrap_or(0) > 0, "{r:?} never came up: {reasons:?}");
    }
    for a in [Action::Create, Action::Update, Action::Delete, Action::Tag, Action::Adopt] {
        assert!(actions.get(&a).copied().unwrap_or(0) > 0, "{a:?} never came up: {actions:?}");
    }
    for kind in ["securityhub_standard", "config_recorder", "iam_group", "ebs_default_encryption", "iam_role"] {
        for shape in ["present, ours", "present, the customer's", "occupied", "absent"] {
            let key = format!("{kind} {shape}");
            assert!(shapes.get(&key).copied().unwrap_or(0) > 0, "{key} never came up");
        }
    }
}

#[test]
fn a_failed_change_blocks_only_what_builds_on_it() {
    let mut b = baseline();
    b.regions = vec![HOME.into(), "us-east-1".into()];
    let mut p = plan(&b, &all_absent(&b), Mode::Initial);
    // A regional change of F07 outside the home region, to see what reaches across regions.
    let mut far = p.changes.iter().find(|c| c.feature.as_str() == "F07").unwrap().clone();
    far.region = "us-east-1".into();
    p.changes.push(far);
    let deps = dependencies(&b, &p.changes);
    let name = |i: usize| {
        let c = &p.changes[i];
        format!("{} {} {}", c.feature, c.resource_type, c.region)
    };
    let of = |j: usize| deps[j].iter().map(|&i| name(i)).collect::<Vec<_>>();
    let at = |f: &str, t: &str, region: &str| {
        (0..p.changes.len()).rev().find(|&i| name(i) == format!("{f} {t} {region}")).unwrap_or_else(|| {
            panic!("no {f} {t} {region} in {:?}", (0..p.changes.len()).map(name).collect::<Vec<_>>())
        })
    };
    for (j, d) in deps.iter().enumerate() {
        assert!(d.iter().all(|&i| i < j), "{j} depends on a later change: {d:?}");
    }
    // Independent features build on nothing of each other.
    let password = at("F03", "iam_password_policy", GLOBAL);
    assert!(of(password).is_empty(), "{:?}", of(password));
    let helpdesk = at("F01", "iam_role", GLOBAL);
    assert!(of(helpdesk).iter().all(|d| d.starts_with("F01 ")), "{:?}", of(helpdesk));
    // The trail builds on its own bucket and on the key of F09, which it requires.
    let trail = at("F07", "cloudtrail_trail", HOME);
    let deps_of_trail = of(trail);
    assert!(deps_of_trail.contains(&format!("F07 s3_bucket {HOME}")), "{deps_of_trail:?}");
    assert!(deps_of_trail.contains(&format!("F09 kms_key {HOME}")), "{deps_of_trail:?}");
    assert!(!deps_of_trail.iter().any(|d| d.starts_with("F01 ") || d.starts_with("F03 ") || d.starts_with("F08 ")));
    // What is in the home region serves every region; one region's change does not reach another's.
    let far = p.changes.len() - 1;
    assert!(of(far).contains(&format!("F07 s3_bucket {HOME}")), "{:?}", of(far));
    assert!(of(far).contains(&format!("F09 kms_key {HOME}")), "{:?}", of(far));
}

#[test]
fn a_region_out_of_reach_is_skipped_there_and_nothing_else_is() {
    let b = baseline();
    let mut o = all_absent(&b);
    let trail_key = feature_mut(&mut b.clone(), "F07").resources[1].key.clone();
    o.resources.remove(&trail_key);
    let denied = "AccessDeniedException: ... with an explicit deny in a service control policy";
    o.unavailable.insert(trail_key.clone(), denied.into());
    let p = plan(&b, &o, Mode::Initial);
    let skip = p.skips.iter().find(|s| s.reason == SkipReason::RegionUnavailable).expect("a region_unavailable skip");
    assert_eq!((skip.feature.as_str(), skip.region.as_str(), skip.detail.as_str()), ("F07", HOME, denied));
    assert!(!p.changes.iter().any(|c| c.resource_type == "cloudtrail_trail"), "{:?}", p.changes);
    // Everything else of the account is planned as without it.
    let full = plan(&b, &all_absent(&b), Mode::Initial);
    let others = |p: &AccountPlan| {
        p.changes
            .iter()
            .filter(|c| c.resource_type != "cloudtrail_trail")
            .map(|c| c.resource.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(others(&p), others(&full));
    assert!(p.errors.is_empty(), "{:?}", p.errors);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Offboarding over the same random observed states (desired state marking random
    /// resources removed, `ensure: absent`): nothing is created, changed or taken over; what
    /// is deleted is marked removed and provably ours, never an account setting nor the
    /// member role; what is not removed is said kept; what depends on something goes first.
    #[test]
    fn an_offboarding_deletes_only_what_is_provably_ours_and_keeps_what_is_kept(
        (b, o, _) in scenario(),
        kept in proptest::collection::vec(any::<bool>(), 1..16),
    ) {
        let mut b = b;
        for (i, f) in b.features.iter_mut().enumerate() {
            f.kept = Some("evidence the customer keeps".into());
            if kept[i % kept.len()] {
                for r in &mut f.resources {
                    r.ensure = Ensure::Present;
                }
            }
        }
        let p = plan(&b, &o, Mode::Offboarding);
        for c in &p.changes {
            let key = ResourceKey { kind: c.resource_type.clone(), region: c.region.clone(), name: c.resource.clone() };
            let f = b.features.iter().find(|f| f.id == c.feature).unwrap();
            prop_assert!(c.action == Action::Delete, "offboarding would {:?} {key}", c.action);
            let marked = f.resources.iter().any(|r| r.key == key && r.ensure == Ensure::Absent);
            prop_assert!(marked, "{key} of {} deleted, which desired state keeps", f.id);
            prop_assert!(c.desired.ownership() != Ownership::Setting, "account setting {key} deleted");
            prop_assert!(!super::guard::is_member_role(&b, &c.desired), "the member role deleted");
            prop_assert!(!(o.control_tower && b.control_tower.skip_features.contains(&f.id)));
            match o.resources.get(&key) {
                Some(Observation::Present { .. }) => {
                    prop_assert!(oracle_ours(&o, &key), "{key} deleted, which is not provably ours")
                }
                Some(Observation::AwsDefault { in_use, .. }) => prop_assert!(in_use.is_empty()),
                other => prop_assert!(false, "delete of {key} observed as {other:?}"),
            }
        }
        for f in &b.features {
            let ct = o.control_tower && b.control_tower.skip_features.contains(&f.id);
            for r in f.resources.iter().filter(|r| r.ensure == Ensure::Present) {
                let said = p.skips.iter().any(|s| {
                    s.feature == f.id
                        && s.reason == SkipReason::Kept
                        && (s.resource == "*" || s.resource == format!("{} {}", r.key.kind, r.key.name))
                });
                prop_assert!(ct || said, "{} of {} kept silently", r.key, f.id);
            }
        }
        let order: Vec<usize> =
            p.changes.iter().map(|c| b.features.iter().position(|f| f.id == c.feature).unwrap_or(0)).collect();
        prop_assert!(order.windows(2).all(|w| w[0] >= w[1]), "a feature deleted before what depends on it: {order:?}");
    }
}

// ---- Security Hub needs Config recording, whoever's recorder it is (4.3.7, 4.4.2) ----

/// Control Tower's recorder in `region`: another name, another role, holding the region's
/// one place; recording or not.
fn tower_recorder(recording: bool) -> Observation<ResourceSpec> {
    let name = "aws-controltower-BaselineConfigRecorder";
    Observation::Occupied {
        by: format!("configuration recorder {name}"),
        state: Some(ResourceSpec::ConfigRecorder(ConfigRecorder {
            name: name.into(),
            role_arn: "arn:aws:iam::111111111111:role/aws-controltower-ConfigRecorderRole".into(),
            all_supported: None,
            include_global_resource_types: None,
            resource_types: None,
            delivery_channel: None,
            recording: Some(recording),
        })),
    }
}

fn f13_changes(p: &AccountPlan) -> BTreeSet<(String, String)> {
    p.changes
        .iter()
        .filter(|c| c.feature.as_str() == "F13")
        .map(|c| (c.region.clone(), c.resource_type.clone()))
        .collect()
}

#[test]
fn security_hub_builds_on_any_recording_recorder_and_waits_where_none_records() {
    let mut b = ownership_baseline();
    feature_mut(&mut b, "F13").met_by_any.insert(fid("F08"), "config_recorder".into());
    // A Control Tower account: F08 skipped, Control Tower's recorder recording in the home
    // region and stopped in us-east-1; nothing of Security Hub yet.
    let mut o = all_absent(&b);
    o.control_tower = true;
    let rec = recorder_at(CONFIG_ROLE, CONFIG_BUCKET, true);
    set(&mut o, &rec, HOME, tower_recorder(true));
    set(&mut o, &rec, "us-east-1", tower_recorder(false));
    for mode in [Mode::Initial, Mode::Maintenance] {
        let p = plan(&b, &o, mode);
        assert!(p.skips.iter().any(|s| s.feature.as_str() == "F08" && s.reason == SkipReason::ControlTower));
        assert!(!p.changes.iter().any(|c| c.feature.as_str() == "F08"), "{mode:?}: {:?}", p.changes);
        let made = f13_changes(&p);
        assert!(made.contains(&(HOME.to_string(), "securityhub_hub".to_string())), "{mode:?}: {made:?}");
        assert!(!made.iter().any(|(r, _)| r == "us-east-1"), "{mode:?}: {made:?}");
        let s = skip_of(&p, "securityhub_hub", "us-east-1").unwrap();
        assert_eq!(s.reason, SkipReason::BlockedDependency);
        assert!(s.detail.contains("nor is any config_recorder working in us-east-1"), "{}", s.detail);
    }

    // No recorder at all in us-east-1: still blocked there.
    set(&mut o, &rec, "us-east-1", Observation::Absent { quota: None });
    let p = plan(&b, &o, Mode::Maintenance);
    assert_eq!(skip_of(&p, "securityhub_hub", "us-east-1").unwrap().reason, SkipReason::BlockedDependency);

    // The customer's recorder under the baseline's name, with their role, recording: it
    // serves Security Hub too, and is itself left alone (a conflict, no change to it).
    o.control_tower = false;
    let theirs = recorder_at("customer-config-role", "customer-config-bucket", true);
    set(&mut o, &rec, "us-east-1", Observation::Present { state: theirs, owner: None });
    let p = plan(&b, &o, Mode::Maintenance);
    assert!(f13_changes(&p).contains(&("us-east-1".to_string(), "securityhub_hub".to_string())), "{p:#?}");
    assert_eq!(skip_of(&p, "config_recorder", "us-east-1").unwrap().reason, SkipReason::Conflict);
    assert!(!p.changes.iter().any(|c| c.resource_type == "config_recorder" && c.region == "us-east-1"));
    // Stopped, it serves nothing.
    let stopped = recorder_at("customer-config-role", "customer-config-bucket", false);
    set(&mut o, &rec, "us-east-1", Observation::Present { state: stopped, owner: None });
    let p = plan(&b, &o, Mode::Maintenance);
    assert_eq!(skip_of(&p, "securityhub_hub", "us-east-1").unwrap().reason, SkipReason::BlockedDependency);

    // Without `met_by_any`, only the baseline's own Config counts, as before.
    feature_mut(&mut b, "F13").met_by_any.clear();
    set(&mut o, &rec, "us-east-1", tower_recorder(true));
    o.control_tower = true;
    let p = plan(&b, &o, Mode::Maintenance);
    assert!(f13_changes(&p).is_empty(), "{:?}", p.changes);
}

// ---- A field the customer may choose after initial setup (4.3.5) ----

#[test]
fn maintenance_keeps_the_customers_ebs_key_and_reports_it_initial_setup_sets_aws_own() {
    let mut b = ownership_baseline();
    let aws_key = "alias/aws/ebs";
    let theirs_key = "arn:aws:kms:us-east-1:111111111111:key/customer";
    for r in &mut feature_mut(&mut b, "F11").resources {
        r.spec = ebs(true, Some(aws_key));
        r.initial_only_fields = vec!["kms_key".into()];
    }
    let mut o = converged(&b);
    // Ours (recorded), encryption on, the customer's own key since.
    set(
        &mut o,
        &ebs(true, None),
        "us-east-1",
        Observation::Present { state: ebs(true, Some(theirs_key)), owner: None },
    );
    let p = plan(&b, &o, Mode::Maintenance);
    assert!(p.changes.is_empty(), "{:?}", p.changes);
    let s = skip_of(&p, "ebs_default_encryption", "us-east-1").unwrap();
    assert_eq!(s.reason, SkipReason::CustomerChoice);
    assert!(s.detail.contains(theirs_key) && s.detail.contains(aws_key), "{}", s.detail);
    let diff = s.diff.as_deref().unwrap();
    assert!(diff.contains(&format!("-kms_key: {theirs_key}")) && diff.contains("+kms_key: alias/aws/ebs"), "{diff}");
    assert!(skip_of(&p, "ebs_default_encryption", HOME).is_none(), "AWS's own key is no news");

    // Encryption switched off as well: switched back on, the key still left alone.
    set(
        &mut o,
        &ebs(true, None),
        "us-east-1",
        Observation::Present { state: ebs(false, Some(theirs_key)), owner: None },
    );
    let p = plan(&b, &o, Mode::Maintenance);
    assert_eq!(p.changes.len(), 1, "{:?}", p.changes);
    assert_eq!((p.changes[0].action, &p.changes[0].desired), (Action::Update, &ebs(true, None)));
    assert_eq!(skip_of(&p, "ebs_default_encryption", "us-east-1").unwrap().reason, SkipReason::CustomerChoice);

    // Initial setup sets AWS's own key.
    let p = plan(&b, &o, Mode::Initial);
    assert_eq!(p.changes.len(), 1, "{:?}", p.changes);
    assert_eq!(p.changes[0].desired, ebs(true, Some(aws_key)));
    assert!(p.skips.iter().all(|s| s.reason != SkipReason::CustomerChoice));

    // Not ours at all (the customer set it before us): an adoption, as before, no note.
    o.records.remove(&key_of(&ebs(true, None), "us-east-1"));
    let p = plan(&b, &o, Mode::Maintenance);
    assert_eq!(skip_of(&p, "ebs_default_encryption", "us-east-1").unwrap().reason, SkipReason::Adoption);
}

// ---- The finding aggregator belongs in the home region (4.3.7) ----

fn aggregator(region: Option<&str>) -> ResourceSpec {
    ResourceSpec::SecurityhubFindingAggregator(
        crate::resources::securityhub_finding_aggregator::SecurityhubFindingAggregator {
            region_linking_mode: "ALL_REGIONS".into(),
            regions: None,
            arn: None,
            aggregation_region: region.map(str::to_string),
        },
    )
}

#[test]
fn an_aggregator_outside_the_home_region_is_moved_if_ours_and_a_conflict_if_not() {
    let mut b = ownership_baseline();
    feature_mut(&mut b, "F13").resources.push(res(aggregator(None), HOME));
    let mut o = converged(&b);
    let key = key_of(&aggregator(None), HOME);
    // In place in the home region: nothing to do.
    o.resources.insert(key.clone(), Observation::Present { state: aggregator(Some(HOME)), owner: None });
    let p = plan(&b, &o, Mode::Maintenance);
    assert!(p.changes.is_empty(), "{:?}", p.changes);

    // In us-east-1, under our hub there: deleted there, then created at home, the create
    // waiting for the delete.
    let east = aggregator(Some("us-east-1"));
    o.resources.insert(key.clone(), Observation::Present { state: east.clone(), owner: None });
    let p = plan(&b, &o, Mode::Maintenance);
    let moved: Vec<(Action, &str)> = p.changes.iter().map(|c| (c.action, c.region.as_str())).collect();
    assert_eq!(moved, [(Action::Delete, "us-east-1"), (Action::Create, HOME)], "{:?}", p.changes);
    assert_eq!(p.changes[0].observed.as_ref(), Some(&east));
    assert!(p.changes[1].diff.contains("moved from us-east-1"), "{}", p.changes[1].diff);
    assert_eq!(dependencies(&b, &p.changes), vec![vec![], vec![0]]);
    // Initial setup alike.
    assert_eq!(plan(&b, &o, Mode::Initial).changes.len(), 2);

    // Under the customer's hub in us-east-1: a conflict, nothing deleted or created.
    let hub_east = key_of(&hub(), "us-east-1");
    o.resources.insert(hub_east, Observation::Present { state: hub(), owner: None });
    let p = plan(&b, &o, Mode::Maintenance);
    assert!(!p.changes.iter().any(|c| c.resource_type == "securityhub_finding_aggregator"), "{:?}", p.changes);
    let s = skip_of(&p, "securityhub_finding_aggregator", HOME).unwrap();
    assert_eq!(s.reason, SkipReason::Conflict);
    assert!(s.detail.contains("it is in us-east-1") && s.detail.contains("customer's securityhub_hub"), "{}", s.detail);
}
