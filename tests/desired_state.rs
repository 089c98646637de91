//! Loading, validating and resolving desired state, without AWS.

use cm_baseline::desired::resolve::resolve;
use cm_baseline::desired::{load, LoadError};
use cm_baseline::resources::ResourceSpec;
use std::path::{Path, PathBuf};

fn shipped() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("desired-state")
}

/// A copy of the shipped desired state, edited by `edit`.
fn copy_with(edit: impl FnOnce(&Path)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                copy(&p, &to.join(e.file_name()));
            } else {
                std::fs::copy(&p, to.join(e.file_name())).unwrap();
            }
        }
    }
    copy(&shipped(), dir.path());
    edit(dir.path());
    dir
}

fn replace(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} does not contain {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

fn errors(dir: &Path) -> Vec<LoadError> {
    match load(dir) {
        Ok(_) => panic!("{} loaded without error", dir.display()),
        Err(e) => e.0,
    }
}

/// The single error, as `file-name:line:col: message`.
fn only_error(dir: &Path) -> (String, LoadError) {
    let errs = errors(dir);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let e = errs[0].clone();
    let name = e.file.file_name().unwrap().to_string_lossy().to_string();
    (format!("{name}:{}:{}: {}", e.line, e.column, e.message), e)
}

#[test]
fn the_shipped_desired_state_is_valid() {
    let d = load(&shipped()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.features.len(), 15);
    assert_eq!(d.tiers.len(), 2);
}

#[test]
fn unknown_keys_are_rejected_where_they_stand() {
    let dir = copy_with(|d| replace(&d.join("settings.yaml"), "session_name:", "sesion_name:"));
    let (at, e) = only_error(dir.path());
    assert!(at.starts_with("settings.yaml:5:1: unknown field `sesion_name`"), "{at}");
    assert_eq!(e.hint.as_deref(), Some("did you mean session_name?"));

    // Nothing near it: say what to do with it.
    let dir = copy_with(|d| replace(&d.join("settings.yaml"), "session_name:", "colour:"));
    let (at, e) = only_error(dir.path());
    assert!(at.starts_with("settings.yaml:5:1: unknown field `colour`"), "{at}");
    let hint = e.hint.unwrap();
    assert!(hint.starts_with("remove `colour`") && hint.contains("desired-state/README.md"), "{hint}");

    // Unknown values of a closed list get the nearest value.
    let dir = copy_with(|d| replace(&d.join("features/F03-password-policy.yaml"), "kind: opt_in", "kind: optin"));
    let (at, e) = only_error(dir.path());
    assert!(at.starts_with("F03-password-policy.yaml:3:7: kind: unknown variant `optin`"), "{at}");
    assert_eq!(e.hint.as_deref(), Some("did you mean opt_in?"));
}

#[test]
fn wrong_types_are_rejected() {
    let dir = copy_with(|d| {
        replace(
            &d.join("features/F03-password-policy.yaml"),
            "minimum_password_length: 8",
            "minimum_password_length: eight",
        )
    });
    let (at, e) = only_error(dir.path());
    assert!(
        at.starts_with(
            "F03-password-policy.yaml:7:32: resources[0].iam_password_policy.minimum_password_length: invalid type"
        ),
        "{at}"
    );
    assert_eq!(e.hint.as_deref(), Some("write a whole number, without quotes"));

    // Each kind of value gets the hint of what to write instead, where it stands.
    for (file, from, to, at_start, hint) in [
        (
            "features/F03-password-policy.yaml",
            "minimum_password_length: 8",
            "minimum_password_length: \"8\"",
            "F03-password-policy.yaml:7:32: ",
            "write the number without quotes: 8",
        ),
        (
            "settings.yaml",
            "trails_per_region: 5",
            "trails_per_region: -5",
            "settings.yaml:11:22: quotas.trails_per_region: ",
            "write a whole number, 0 or more",
        ),
        (
            "accounts/111111111111.yaml",
            "F11: false",
            "F11: no",
            "111111111111.yaml:6:8: opt_in.F11: invalid type: string \"no\", expected a boolean",
            "write true or false: `no` is a string in YAML 1.2",
        ),
        (
            "accounts/111111111111.yaml",
            "F11: false",
            "F11: \"false\"",
            "111111111111.yaml:6:8: opt_in.F11: ",
            "write false without quotes",
        ),
        (
            "settings.yaml",
            "excluded_regions: []",
            "excluded_regions: us-east-2",
            "settings.yaml:6:19: excluded_regions: invalid type: string \"us-east-2\", expected a sequence",
            "write a list, even of one item: [us-east-2]",
        ),
        (
            "settings.yaml",
            "session_name: cm-baseline",
            "session_name: [a, b]",
            "settings.yaml:5:15: session_name: invalid type: sequence",
            "write a single value here (a string), not a list",
        ),
        (
            "accounts/111111111111.yaml",
            "tier: secure",
            "tier: {name: secure}",
            "111111111111.yaml:4:7: tier: invalid type: map",
            "write a single value here (a tier name), not a mapping",
        ),
    ] {
        let dir = copy_with(|d| replace(&d.join(file), from, to));
        let (at, e) = only_error(dir.path());
        assert!(at.starts_with(at_start), "{to}: {at}");
        assert_eq!(e.hint.as_deref(), Some(hint), "{to}: {at}");
    }
}

#[test]
fn missing_and_repeated_keys_are_named_with_what_to_add_or_remove() {
    let dir = copy_with(|d| replace(&d.join("accounts/111111111111.yaml"), "tier: secure\n", ""));
    let (at, e) = only_error(dir.path());
    assert!(at.starts_with("111111111111.yaml:2:1: missing field `tier`"), "{at}");
    assert_eq!(e.hint.as_deref(), Some("add `tier:` to this mapping; desired-state/README.md shows what it takes"));

    let dir = copy_with(|d| {
        let f = d.join("accounts/111111111111.yaml");
        let text = std::fs::read_to_string(&f).unwrap();
        std::fs::write(&f, format!("{text}tier: basic\n")).unwrap();
    });
    let (at, e) = only_error(dir.path());
    assert!(at.contains(": duplicate field `tier`"), "{at}");
    assert_eq!(e.hint.as_deref(), Some("`tier` is given twice in this mapping: keep one"));
}

#[test]
fn unknown_resource_types_get_a_suggestion() {
    let dir = copy_with(|d| {
        replace(
            &d.join("features/F11-ebs-default-encryption.yaml"),
            "- ebs_default_encryption:",
            "- ebs_default_encription:",
        )
    });
    let (at, e) = only_error(dir.path());
    assert!(at.contains("unknown resource type or key `ebs_default_encription`"), "{at}");
    assert_eq!(e.hint.as_deref(), Some("did you mean ebs_default_encryption?"));
}

#[test]
fn unknown_feature_ids_are_rejected() {
    let dir = copy_with(|d| {
        replace(
            &d.join("tiers.yaml"),
            "[F01, F02, F03, F04, F05, F06, F07, F08]",
            "[F01, F02, F03, F04, F05, F06, F07, F80]",
        )
    });
    let (at, e) = only_error(dir.path());
    assert!(at.starts_with("tiers.yaml:5:49: basic.features[7]: unknown feature `F80`"), "{at}");
    assert_eq!(e.hint.as_deref(), Some("did you mean F10?"));

    // Nothing near it: the range of valid ids.
    let dir = copy_with(|d| {
        replace(&d.join("accounts/111111111111.yaml"), "F11: false", "cloudtrail: false");
    });
    let (at, e) = only_error(dir.path());
    assert!(at.starts_with("111111111111.yaml:6:3: opt_in: unknown feature `cloudtrail`"), "{at}");
    assert_eq!(e.hint.as_deref(), Some("feature ids are F01 to F15 (see docs/baseline.md)"));
}

#[test]
fn malformed_account_ids_are_rejected() {
    let digits = "an account id is exactly 12 digits, quoted";
    let quote = "quote it, as in \"012345678901\", so that leading zeros are kept";
    for (bad, col, hint) in [("\"12345\"", 13, digits), ("\"12345678901x\"", 13, digits), ("12345678901", 13, quote)] {
        let dir = copy_with(|d| replace(&d.join("accounts/111111111111.yaml"), "\"111111111111\"", bad));
        let (at, e) = only_error(dir.path());
        assert!(at.starts_with(&format!("111111111111.yaml:2:{col}: account_id:")), "{bad}: {at}");
        assert_eq!(e.hint.as_deref(), Some(hint), "{bad}: {at}");
    }
}

#[test]
fn region_typos_are_rejected_with_a_suggestion() {
    let dir = copy_with(|d| {
        replace(&d.join("settings.yaml"), "excluded_regions: []", "excluded_regions: [eu-west-1, us-est-1]")
    });
    let (at, e) = only_error(dir.path());
    assert!(at.starts_with("settings.yaml:6:31: excluded_regions[1]: unknown region `us-est-1`"), "{at}");
    assert_eq!(e.hint.as_deref(), Some("did you mean us-east-1?"));
}

#[test]
fn tiers_must_exist() {
    let dir = copy_with(|d| replace(&d.join("accounts/111111111111.yaml"), "tier: secure", "tier: gold"));
    let (at, e) = only_error(dir.path());
    assert!(at.starts_with("111111111111.yaml:4:7: tier: unknown tier `gold`"), "{at}");
    assert_eq!(e.hint.as_deref(), Some("tiers defined in tiers.yaml: basic, secure"));
}

#[test]
fn duplicate_accounts_are_rejected_naming_both_files() {
    let dir = copy_with(|d| {
        std::fs::copy(d.join("accounts/111111111111.yaml"), d.join("accounts/zz-copy.yaml")).map(|_| ()).unwrap()
    });
    let (at, e) = only_error(dir.path());
    assert!(at.starts_with("zz-copy.yaml:2:13: account_id: duplicate account 111111111111"), "{at}");
    let hint = e.hint.unwrap();
    assert!(hint.starts_with("it is already defined in ") && hint.ends_with("accounts/111111111111.yaml"), "{hint}");
}

#[test]
fn malformed_yaml_is_located() {
    let dir = copy_with(|d| {
        replace(
            &d.join("features/F02-initial-user.yaml"),
            "[\"admin-group-{account_id}\"]",
            "[admin-group-{account_id}]",
        )
    });
    let (at, e) = only_error(dir.path());
    assert!(at.starts_with("F02-initial-user.yaml:12:28: did not find expected ',' or ']'"), "{at}");
    assert_eq!(
        e.hint.as_deref(),
        Some("inside [ ] or { }, quote items that contain { } [ ] , or :, as in [\"admin-group-{account_id}\"]")
    );

    // Other syntax errors: each with its own fix.
    for (file, from, to, at_start, hint) in [
        (
            "accounts/111111111111.yaml",
            "tier: secure",
            "\ttier: secure",
            "111111111111.yaml:4:1: found a tab character",
            "indent with spaces: YAML does not allow tabs",
        ),
        (
            "features/F03-password-policy.yaml",
            "title: IAM password policy",
            "title: IAM: password policy",
            "F03-password-policy.yaml:2:11: mapping values are not allowed",
            "quote a value that contains `: `, as in title: \"a: b\", or check this line's indentation",
        ),
        (
            "features/F03-password-policy.yaml",
            "      require_symbols: true",
            "     require_symbols: true",
            "F03-password-policy.yaml:11:",
            "check the indentation: keys of one mapping line up, and list items start with `- `",
        ),
        (
            "settings.yaml",
            "session_name: cm-baseline",
            "session_name: \"cm-baseline",
            "settings.yaml:",
            "the quote opened on line 5 is not closed on that line: close it",
        ),
    ] {
        let dir = copy_with(|d| replace(&d.join(file), from, to));
        let (at, e) = only_error(dir.path());
        assert!(at.starts_with(at_start), "{to:?}: {at}");
        assert_eq!(e.hint.as_deref(), Some(hint), "{to:?}: {at}");
    }
}

#[test]
fn placeholders_must_be_known() {
    let dir =
        copy_with(|d| replace(&d.join("policies/resource/cloudtrail-bucket.json"), "{home_region}", "{home_regoin}"));
    let (at, e) = only_error(dir.path());
    assert!(at.starts_with("cloudtrail-bucket.json:10:85: unknown placeholder {home_regoin}"), "{at}");
    assert_eq!(e.hint.as_deref(), Some("did you mean {home_region}?"));
}

#[test]
fn broken_policy_json_names_both_files() {
    let dir = copy_with(|d| {
        replace(&d.join("policies/trust/config.json"), "\"Effect\": \"Allow\",", "\"Effect\": \"Allow\"")
    });
    let errs = errors(dir.path());
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].file.ends_with("features/F01-cm-roles.yaml"));
    assert!(errs[0].message.contains("policies/trust/config.json:6:7:"), "{}", errs[0].message);
}

#[test]
fn every_feature_must_be_defined_once_and_without_cycles() {
    let dir = copy_with(|d| std::fs::remove_file(d.join("features/F14-detective.yaml")).unwrap());
    let (at, _) = only_error(dir.path());
    assert!(at.contains("no definition for F14"), "{at}");

    let dir = copy_with(|d| {
        std::fs::copy(d.join("features/F14-detective.yaml"), d.join("features/F99-again.yaml")).map(|_| ()).unwrap()
    });
    let (at, _) = only_error(dir.path());
    assert!(at.starts_with("F99-again.yaml:1:5: id: feature F14 is defined twice"), "{at}");

    let dir = copy_with(|d| {
        replace(
            &d.join("features/F12-guardduty.yaml"),
            "\nkind: opt_in\n",
            "\nkind: opt_in\nrequires:\n  - feature: F14\n",
        )
    });
    let (at, _) = only_error(dir.path());
    assert!(at.contains("cycle: F12 -> F14 -> F12"), "{at}");
}

#[test]
fn settings_that_contradict_themselves_are_rejected() {
    let dir = copy_with(|d| {
        replace(&d.join("settings.yaml"), "excluded_regions: []", "excluded_regions: [ap-northeast-1]");
        replace(&d.join("settings.yaml"), "variables: {}", "variables:\n  account_id: \"000000000000\"");
    });
    let errs = errors(dir.path());
    let msgs: Vec<String> = errs.iter().map(|e| format!("{}:{} {}", e.line, e.column, e.message)).collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(msgs.iter().any(|m| m.starts_with("6:1 excluded_regions: the home region ap-northeast-1")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("`account_id` is a built-in placeholder")), "{msgs:?}");
}

#[test]
fn placeholders_in_yaml_comments_are_prose() {
    let dir = copy_with(|d| {
        replace(&d.join("features/F03-password-policy.yaml"), "kind: opt_in", "kind: opt_in # e.g. {whatever}")
    });
    assert!(load(dir.path()).is_ok());
}

#[test]
fn all_errors_are_reported_in_one_run() {
    let dir = copy_with(|d| {
        replace(&d.join("settings.yaml"), "home_region: ap-northeast-1", "home_region: ap-northeast-9");
        replace(&d.join("accounts/111111111111.yaml"), "tier: secure", "tier: secrue");
    });
    assert_eq!(errors(dir.path()).len(), 2);
}

#[test]
fn resolve_fills_placeholders_and_expands_regions() {
    let d = load(&shipped()).unwrap();
    let acct = d.accounts.values().next().unwrap();
    let regions: Vec<String> =
        ["us-east-1", "ap-northeast-1", "eu-west-1", "cn-north-1"].iter().map(|s| s.to_string()).collect();
    let b = resolve(&d, acct, &regions, "999999999999", "arn:aws:sts::999999999999:assumed-role/cm-daemon/s").unwrap();
    // Other partitions are never mixed in; the home region comes first in nothing but sort order.
    assert_eq!(b.regions, ["ap-northeast-1", "eu-west-1", "us-east-1"]);
    let order: Vec<&str> = b.features.iter().map(|f| f.id.as_str()).collect();
    let pos = |f: &str| order.iter().position(|x| *x == f).unwrap();
    assert!(pos("F09") < pos("F07") && pos("F08") < pos("F13") && pos("F12") < pos("F14"), "{order:?}");

    let f07 = b.features.iter().find(|f| f.id.as_str() == "F07").unwrap();
    assert_eq!(f07.resources.len(), 2, "secure variants only");
    let ResourceSpec::S3Bucket(bucket) = &f07.resources[0].spec else { panic!() };
    assert_eq!(bucket.name, "cm-members-cloudtrail-111111111111");
    let policy = bucket.policy.as_ref().unwrap().to_json_string();
    assert!(policy.contains("arn:aws:cloudtrail:ap-northeast-1:111111111111:trail/Members"), "{policy}");
    assert!(!policy.contains('{') || !policy.contains("{account_id}"));

    let f11 = b.features.iter().find(|f| f.id.as_str() == "F11").unwrap();
    let regions: Vec<&str> = f11.resources.iter().map(|r| r.key.region.as_str()).collect();
    assert_eq!(regions, ["ap-northeast-1", "eu-west-1", "us-east-1"]);
    assert!(!f11.opted_in, "the account file opts out of F11");

    let f01 = b.features.iter().find(|f| f.id.as_str() == "F01").unwrap();
    let ResourceSpec::IamRole(r) = &f01.resources[2].spec else { panic!() };
    assert_eq!(r.trust_policy.0["Statement"][0]["Principal"]["AWS"], "arn:aws:iam::999999999999:root");
}

#[test]
fn two_entries_for_one_resource_are_rejected_naming_both() {
    // The secure recorder of the other regions now claims the home region too.
    let dir = copy_with(|d| {
        let f08 = d.join("features/F08-config.yaml");
        let text = std::fs::read_to_string(&f08).unwrap();
        let at = text.find("    regions: others").expect("the secure recorder of the other regions");
        std::fs::write(&f08, format!("{}    regions: all{}", &text[..at], &text[at + "    regions: others".len()..]))
            .unwrap();
    });
    let (line, e) = only_error(dir.path());
    let text = std::fs::read_to_string(&e.file).unwrap();
    let items: Vec<usize> =
        text.lines().enumerate().filter(|(_, l)| l.contains("- config_recorder:")).map(|(i, _)| i + 1).collect();
    // Reported at the second secure entry, naming the first.
    assert_eq!(e.line, items[1], "{line}");
    assert!(
        line.contains(&format!("F08-config.yaml:{}:5", items[0]))
            && line.contains("config_recorder default: the same resource is already declared at"),
        "{line}"
    );
    assert!(e.hint.as_deref().unwrap_or_default().contains("tiers:"), "{e:?}");
}

#[test]
fn an_account_setting_cannot_be_ensured_absent() {
    let dir = copy_with(|d| {
        replace(
            &d.join("features/F03-password-policy.yaml"),
            "      allow_users_to_change_password: true\n",
            "      allow_users_to_change_password: true\n    ensure: absent\n",
        );
    });
    let (line, _) = only_error(dir.path());
    assert!(line.starts_with("F03-password-policy.yaml:"), "{line}");
    assert!(line.contains("iam_password_policy: `ensure: absent` on an account setting"), "{line}");
}

/// The binary with `args`, in an empty home, with no AWS environment at all.
fn bare(args: &[&str]) -> (i32, String) {
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cm-baseline"))
        .args(args)
        .current_dir(home.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        // No instance metadata to wait for: the chain's last provider answers at once.
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn a_new_operator_is_told_in_a_few_lines_what_is_missing_and_what_to_set() {
    // No desired-state directory: said once, with where it looked and how to point elsewhere.
    let (code, err) = bare(&["validate"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.matches("error:").count(), 1, "{err}");
    assert!(err.contains("./desired-state: no desired state here: does not exist"), "{err}");
    assert!(err.contains("--desired-state DIR or CM_DESIRED_STATE"), "{err}");

    // No credentials anywhere: one error, no SDK internals, what to set.
    let (code, err) = bare(&["--desired-state", shipped().to_str().unwrap(), "plan"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("error: cannot list the Organization's accounts: no AWS credentials found."), "{err}");
    assert!(err.contains("AWS_PROFILE=NAME"), "{err}");
    assert!(err.lines().count() <= 3, "{err}");
    for internal in ["DispatchFailure", "ProviderError", "headers", "IMDS"] {
        assert!(!err.contains(internal), "{internal} in:\n{err}");
    }
}

#[test]
fn a_requirement_met_by_anyones_resource_must_name_a_type_the_required_feature_sets() {
    let dir = copy_with(|d| {
        replace(
            &d.join("features/F13-security-hub.yaml"),
            "met_by_any: config_recorder",
            "met_by_any: guardduty_detector",
        )
    });
    let (at, _) = only_error(dir.path());
    assert!(at.starts_with("F13-security-hub.yaml:"), "{at}");
    assert!(at.contains("F08 has no guardduty_detector resource"), "{at}");
}

/// Permanent deletion after three years (4.2.1, 4.3.3): every versioned log bucket expires
/// its noncurrent versions and delete markers too, and never aims at a version while Object
/// Lock still holds it.
#[test]
fn the_log_buckets_delete_for_good_after_three_years_and_after_the_lock() {
    let d = load(&shipped()).unwrap_or_else(|e| panic!("{e}"));
    let mut seen = 0;
    for f in d.features.values() {
        for e in &f.resources {
            let ResourceSpec::S3Bucket(b) = &e.spec else { continue };
            let lc = b.lifecycle.as_ref().unwrap_or_else(|| panic!("{} has no lifecycle", b.name));
            assert_eq!(lc.expiration_days, Some(1095), "{}", b.name);
            assert_eq!(lc.noncurrent_expiration_days, Some(1), "{}", b.name);
            assert_eq!(lc.expired_object_delete_marker, Some(true), "{}", b.name);
            if let Some(lock) = &b.object_lock {
                let locked = lock.days.unwrap_or(0) + 365 * lock.years.unwrap_or(0);
                assert!(lc.expiration_days.unwrap_or(0) > locked, "{}", b.name);
            }
            seen += 1;
        }
    }
    assert_eq!(seen, 4, "trail and Config buckets, basic and secure");
}
