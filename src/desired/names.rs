//! Validated names used across desired state: feature ids, account ids, regions, tiers,
//! ownership tag values.
//!
//! Each one checks itself while serde reads it, so that a bad value is reported by
//! `serde_yaml` with the file, line and column where it stands. Checks that need to know
//! other files (does this tier exist? was this account listed twice?) read the
//! [`LoadContext`] that the loader sets for the file being read.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// The features of the baseline, by id, with a short title. Fixed by the specification:
/// desired state describes each one, it cannot invent new ids.
pub const FEATURES: [(&str, &str); 15] = [
    ("F01", "cm-* IAM roles"),
    ("F02", "initial IAM user and group"),
    ("F03", "IAM password policy"),
    ("F04", "S3 account-level public access block"),
    ("F05", "Compute Optimizer"),
    ("F06", "IAM Access Analyzer"),
    ("F07", "CloudTrail"),
    ("F08", "AWS Config"),
    ("F09", "KMS logs key"),
    ("F10", "default VPC deletion"),
    ("F11", "EBS default encryption"),
    ("F12", "GuardDuty"),
    ("F13", "Security Hub"),
    ("F14", "Detective"),
    ("F15", "security alert routing"),
];

/// Commercial AWS regions this release knows. Any other name of the form AWS gives its
/// regions (a region launched after this release) is accepted with a warning.
pub const REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];

/// What the loader knows while it reads one file: where desired state lives, which tiers
/// exist, which accounts and features were already defined (and where).
#[derive(Default, Debug)]
pub struct LoadContext {
    pub dir: PathBuf,
    pub tiers: Option<BTreeSet<String>>,
    pub accounts_seen: BTreeMap<String, PathBuf>,
    pub features_seen: BTreeMap<String, PathBuf>,
    pub current_file: PathBuf,
}

thread_local! {
    static CONTEXT: RefCell<Option<LoadContext>> = const { RefCell::new(None) };
}

/// Runs `f` with `cx` as the load context, and gives the context back afterwards.
pub fn with_context<T>(cx: LoadContext, f: impl FnOnce() -> T) -> (T, LoadContext) {
    CONTEXT.with(|c| *c.borrow_mut() = Some(cx));
    let out = f();
    let cx = CONTEXT.with(|c| c.borrow_mut().take()).unwrap_or_default();
    (out, cx)
}

/// Reads the load context, if one is set (it is not when a saved plan is read back).
pub fn context<T>(f: impl FnOnce(&mut LoadContext) -> T) -> Option<T> {
    CONTEXT.with(|c| c.borrow_mut().as_mut().map(f))
}

/// The nearest of `candidates` to `word`, when it is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Reads a string and checks it inside the visitor, so that serde_yaml reports the error
/// at the scalar itself; a number where a quoted string was needed gets its own hint.
struct Checked<F>(&'static str, F);

impl<T, F: FnOnce(&str) -> Result<T, String>> Visitor<'_> for Checked<F> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.1)(v).map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Err(E::custom(format!(
            "expected {}, found the number {v}; hint: quote it, as in \"{v:012}\", so that leading zeros are kept",
            self.0
        )))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        Err(E::custom(format!("expected {}, found the number {v}", self.0)))
    }
}

macro_rules! string_newtype {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

string_newtype!(
    /// A feature id, `F01` to `F15`.
    FeatureId
);
string_newtype!(
    /// A 12-digit AWS account id.
    AccountId
);
string_newtype!(
    /// An AWS region name known to this release.
    Region
);
string_newtype!(
    /// The name of a tier defined in `tiers.yaml`.
    TierName
);

impl FeatureId {
    pub fn parse(s: &str) -> Result<Self, String> {
        if FEATURES.iter().any(|(id, _)| *id == s) {
            Ok(Self(s.to_string()))
        } else {
            let hint = did_you_mean(s, FEATURES.iter().map(|(id, _)| *id))
                .map(|m| format!("did you mean {m}?"))
                .unwrap_or_else(|| "feature ids are F01 to F15 (see docs/baseline.md)".into());
            Err(format!("unknown feature `{s}`; hint: {hint}"))
        }
    }
    pub fn title(&self) -> &'static str {
        FEATURES.iter().find(|(id, _)| *id == self.0).map(|(_, t)| *t).unwrap_or("")
    }
}

impl AccountId {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_string()))
        } else {
            Err(format!("malformed account id `{s}`; hint: an account id is exactly 12 digits, quoted"))
        }
    }
}

/// The directions of AWS's region names (`ap-southeast-6`, `us-gov-west-1`, `il-central-1`).
const DIRECTIONS: [&str; 9] =
    ["north", "south", "east", "west", "central", "northeast", "northwest", "southeast", "southwest"];

/// Whether `s` has the form of an AWS region name: a two-letter area, an optional
/// `gov`/`iso*` part, a direction and a number (`ap-southeast-6`, `us-gov-west-1`).
pub fn region_shaped(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let (area, middle, number) = match parts.as_slice() {
        [area, direction, n] => (*area, vec![*direction], *n),
        [area, qualifier, direction, n] if *qualifier == "gov" || qualifier.starts_with("iso") => {
            (*area, vec![*direction], *n)
        }
        _ => return false,
    };
    area.len() == 2
        && area.bytes().all(|b| b.is_ascii_lowercase())
        && middle.iter().all(|d| DIRECTIONS.contains(d))
        && !number.is_empty()
        && number.len() <= 2
        && number.bytes().all(|b| b.is_ascii_digit())
}

impl Region {
    /// A region of desired state: any name of AWS's form; one this release does not know
    /// (a region launched since) is accepted with a warning, a malformed one refused.
    pub fn parse(s: &str) -> Result<Self, String> {
        if REGIONS.contains(&s) {
            return Ok(Self(s.to_string()));
        }
        let near = did_you_mean(s, REGIONS.iter().copied());
        if region_shaped(s) {
            let hint = near.map(|m| format!("; if you meant {m}, correct it")).unwrap_or_default();
            tracing::warn!(
                region = s,
                "region `{s}` is not known to this release: taken as a region AWS launched since{hint}"
            );
            return Ok(Self(s.to_string()));
        }
        let hint = near
            .map(|m| format!("did you mean {m}?"))
            .unwrap_or_else(|| "use an AWS region name such as ap-northeast-1".into());
        Err(format!("unknown region `{s}`: not an AWS region name; hint: {hint}"))
    }
    /// A region reported by AWS itself (DescribeRegions); trusted as is.
    pub fn from_aws(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl TierName {
    pub fn new_unchecked(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl<'de> Deserialize<'de> for FeatureId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Checked("a feature id such as F07", FeatureId::parse))
    }
}

impl<'de> Deserialize<'de> for Region {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Checked("a region name", |s: &str| {
            if context(|_| ()).is_none() {
                // Read back from a saved plan or report: regions there came from AWS.
                return Ok(Region(s.to_string()));
            }
            Region::parse(s)
        }))
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Checked("a 12-digit account id in quotes", AccountId::parse))
    }
}

impl<'de> Deserialize<'de> for TierName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Checked("a tier name", |s: &str| {
            let known = context(|cx| cx.tiers.clone()).flatten();
            match known {
                Some(tiers) if !tiers.contains(s) => {
                    let hint = did_you_mean(s, tiers.iter().map(String::as_str))
                        .map(|m| format!("did you mean {m}?"))
                        .unwrap_or_else(|| {
                            format!(
                                "tiers defined in tiers.yaml: {}",
                                tiers.iter().cloned().collect::<Vec<_>>().join(", ")
                            )
                        });
                    Err(format!("unknown tier `{s}`; hint: {hint}"))
                }
                _ => Ok(TierName(s.to_string())),
            }
        }))
    }
}

/// An S3 location, `s3://BUCKET/PREFIX` (the prefix may be empty), where announcements
/// are also published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Prefix {
    bucket: String,
    prefix: String,
}

impl S3Prefix {
    pub fn parse(s: &str) -> Result<Self, String> {
        let hint = "hint: write s3://BUCKET/PREFIX, such as s3://cm-announcements/weekly";
        let rest = s.strip_prefix("s3://").ok_or_else(|| format!("`{s}` is not an s3:// location; {hint}"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_end_matches('/');
        let well_formed = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
            && !bucket.contains("..");
        if !well_formed {
            return Err(format!(
                "`{bucket}` is not a valid S3 bucket name; hint: 3 to 63 lowercase letters, digits, dots and hyphens, \
                 starting and ending with a letter or digit"
            ));
        }
        if prefix.starts_with('/') || prefix.contains("//") {
            return Err(format!("the prefix of `{s}` has an empty path segment; {hint}"));
        }
        Ok(Self { bucket: bucket.to_string(), prefix: prefix.to_string() })
    }
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
    /// The object key of `file_name` under the prefix.
    pub fn key(&self, file_name: &str) -> String {
        if self.prefix.is_empty() {
            file_name.to_string()
        } else {
            format!("{}/{file_name}", self.prefix)
        }
    }
}

impl fmt::Display for S3Prefix {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

impl Serialize for S3Prefix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for S3Prefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Checked("an S3 location such as s3://bucket/prefix", S3Prefix::parse))
    }
}

/// An account id that must not have been defined by another account file.
#[derive(Clone, Debug)]
pub struct UniqueAccountId(pub AccountId);

impl<'de> Deserialize<'de> for UniqueAccountId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Checked("a 12-digit account id in quotes", |s: &str| {
            let id = AccountId::parse(s)?;
            let earlier = context(|cx| {
                let file = cx.current_file.clone();
                cx.accounts_seen.insert(id.0.clone(), file)
            })
            .flatten();
            match earlier {
                Some(first) => {
                    Err(format!("duplicate account {id}; hint: it is already defined in {}", first.display()))
                }
                None => Ok(UniqueAccountId(id)),
            }
        }))
    }
}

/// A feature id that must not have been defined by another feature file.
#[derive(Clone, Debug)]
pub struct UniqueFeatureId(pub FeatureId);

impl<'de> Deserialize<'de> for UniqueFeatureId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Checked("a feature id such as F07", |s: &str| {
            let id = FeatureId::parse(s)?;
            let earlier = context(|cx| {
                let file = cx.current_file.clone();
                cx.features_seen.insert(id.0.clone(), file)
            })
            .flatten();
            match earlier {
                Some(first) => {
                    Err(format!("feature {id} is defined twice; hint: it is already defined in {}", first.display()))
                }
                None => Ok(UniqueFeatureId(id)),
            }
        }))
    }
}

/// The value of the `cm:Members` ownership tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum OwnerTag {
    /// CM-managed: customers may not change it.
    Managed,
    /// Created by the basic or common setup.
    Initialized,
    /// Created by the secure setup.
    SecureAccount,
}

/// The tag key that marks what this tool may change.
pub const OWNER_TAG_KEY: &str = "cm:Members";

impl OwnerTag {
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerTag::Managed => "Managed",
            OwnerTag::Initialized => "Initialized",
            OwnerTag::SecureAccount => "SecureAccount",
        }
    }
}

/// Resolves `path` against the desired-state directory of the current load context.
pub fn context_path(path: &str) -> PathBuf {
    let dir = context(|cx| cx.dir.clone()).unwrap_or_default();
    dir.join(Path::new(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_suggestions() {
        assert_eq!(did_you_mean("ap-northeast-9", REGIONS.iter().copied()), Some("ap-northeast-1"));
        assert_eq!(did_you_mean("us-east1", REGIONS.iter().copied()), Some("us-east-1"));
        assert_eq!(did_you_mean("mars-1", REGIONS.iter().copied()), None);
    }

    #[test]
    fn regions_launched_after_this_release_are_accepted_and_typos_are_not() {
        for new in ["ap-southeast-6", "eu-west-9", "us-gov-east-1", "us-isob-east-1", "il-central-2"] {
            assert_eq!(Region::parse(new).map(|r| r.as_str().to_string()), Ok(new.to_string()));
        }
        for bad in ["us-est-1", "us-east1", "mars-1", "ap-northeast-100", "US-EAST-1", "us-east-1a", "ap--1"] {
            let e = Region::parse(bad).unwrap_err();
            assert!(e.starts_with(&format!("unknown region `{bad}`: not an AWS region name")), "{e}");
        }
        assert!(Region::parse("us-est-1").unwrap_err().ends_with("hint: did you mean us-east-1?"));
    }

    #[test]
    fn ids_are_checked() {
        assert!(AccountId::parse("123456789012").is_ok());
        assert!(AccountId::parse("12345678901").is_err());
        assert!(AccountId::parse("12345678901a").is_err());
        assert!(FeatureId::parse("F15").is_ok());
        assert!(FeatureId::parse("F16").unwrap_err().contains("did you mean"));
    }

    #[test]
    fn s3_locations_are_checked() {
        let p = S3Prefix::parse("s3://cm-announcements/weekly/").unwrap();
        assert_eq!((p.bucket(), p.key("a.md").as_str()), ("cm-announcements", "weekly/a.md"));
        assert_eq!(p.to_string(), "s3://cm-announcements/weekly");
        let p = S3Prefix::parse("s3://cm-announcements").unwrap();
        assert_eq!(p.key("a.md"), "a.md");
        assert!(S3Prefix::parse("cm-announcements/weekly").unwrap_err().contains("not an s3:// location"));
        assert!(S3Prefix::parse("s3://CM_Announcements/x").unwrap_err().contains("not a valid S3 bucket name"));
        assert!(S3Prefix::parse("s3://ab/x").is_err());
        assert!(S3Prefix::parse("s3://bucket//x").unwrap_err().contains("empty path segment"));
    }
}
