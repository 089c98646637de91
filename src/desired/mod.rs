//! Desired state: the operators' YAML, loaded, validated and resolved per account.
//!
//! The format is documented in `desired-state/README.md`. [`load`] reads a directory and
//! rejects anything it does not understand with `file:line:col` and a hint;
//! [`resolve`] turns the features of one account's tier and opt-ins into concrete
//! resources with `{account_id}` and `{region}` filled in.

pub mod load;
pub mod names;
pub mod policy;
pub mod resolve;
pub mod snapshot;

use names::{AccountId, FeatureId, OwnerTag, Region, TierName, UniqueAccountId, UniqueFeatureId};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub use load::{load, LoadError};

/// Everything under `desired-state/`, validated.
#[derive(Debug, Clone)]
pub struct DesiredState {
    pub dir: PathBuf,
    pub settings: Settings,
    pub tiers: BTreeMap<TierName, Tier>,
    pub features: BTreeMap<FeatureId, Feature>,
    pub accounts: BTreeMap<AccountId, AccountFile>,
}

/// `settings.yaml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where account-wide singletons live (trail, buckets, KMS key, aggregators).
    pub home_region: Region,
    /// The role the daemon assumes in every member account.
    pub member_role_name: String,
    /// External id passed to AssumeRole, if the member role's trust policy asks for one.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Session name of the assumed-role sessions (shows in the members' CloudTrail).
    #[serde(default = "default_session_name")]
    pub session_name: String,
    /// Regions never touched, even when enabled in an account.
    #[serde(default)]
    pub excluded_regions: Vec<Region>,
    #[serde(default)]
    pub control_tower: ControlTower,
    #[serde(default)]
    pub quotas: Quotas,
    /// What the member role must keep so that the next run can still do its work.
    #[serde(default)]
    pub lockout_guard: LockoutGuard,
    /// Extra `{placeholders}` operators may use in resources and policy files.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// The daemon's schedule and brake.
    #[serde(default)]
    pub daemon: DaemonSettings,
}

/// When the daemon runs, and when it stops itself.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonSettings {
    /// Time zone of the schedules (IANA name).
    #[serde(default = "default_zone")]
    pub timezone: crate::daemon::schedule::Zone,
    /// The weekly maintenance (cron with seconds): Saturday 02:00 by default (R4).
    #[serde(default = "default_maintenance")]
    pub maintenance: crate::daemon::schedule::CronExpr,
    /// The announcement of what the next maintenance would change (R5): by default every
    /// Saturday at 12:00, a week before the maintenance it announces.
    #[serde(default = "default_announce")]
    pub announce: crate::daemon::schedule::CronExpr,
    #[serde(default)]
    pub brake: Brake,
    /// When maintenance may change accounts (default Saturday 02:00 to Sunday 23:59 in
    /// `timezone`): a run is started, resumed and continued only inside it.
    #[serde(default)]
    pub window: crate::daemon::schedule::Window,
    /// A scheduled maintenance applies the desired state its announcement pinned; with no
    /// announcement for it, it is refused (`true`, the default), or applies desired state as
    /// it is on disk, said so in its journal (`false`).
    #[serde(default = "yes")]
    pub require_announcement: bool,
    /// Also publish every announcement under this S3 location (`s3://bucket/prefix`), with
    /// the management account's credentials; the local files are written either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announce_s3: Option<names::S3Prefix>,
}

/// The blast-radius brake: a maintenance run that would change more than this share of
/// accounts, or delete anything, stops before its first change until approved.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Brake {
    #[serde(default = "default_share")]
    pub max_changed_share: f64,
    #[serde(default)]
    pub allow_deletes: bool,
}

impl Default for Brake {
    fn default() -> Self {
        Self { max_changed_share: default_share(), allow_deletes: false }
    }
}

fn yes() -> bool {
    true
}

fn default_share() -> f64 {
    0.2
}

fn default_zone() -> crate::daemon::schedule::Zone {
    crate::daemon::schedule::Zone(chrono_tz::Asia::Tokyo)
}

fn default_cron(expr: &str) -> crate::daemon::schedule::CronExpr {
    // The defaults are constants of this file, checked by a test.
    crate::daemon::schedule::CronExpr::parse(expr).unwrap_or_else(|e| panic!("built-in schedule: {e}"))
}

fn default_maintenance() -> crate::daemon::schedule::CronExpr {
    default_cron("0 0 2 * * Sat")
}

fn default_announce() -> crate::daemon::schedule::CronExpr {
    default_cron("0 0 12 * * Sat")
}

impl Default for DaemonSettings {
    fn default() -> Self {
        Self {
            timezone: default_zone(),
            maintenance: default_maintenance(),
            announce: default_announce(),
            brake: Brake::default(),
            window: Default::default(),
            require_announcement: true,
            announce_s3: None,
        }
    }
}

impl DaemonSettings {
    pub fn maintenance_schedule(&self) -> crate::daemon::schedule::Schedule {
        crate::daemon::schedule::Schedule { cron: self.maintenance.clone(), zone: self.timezone }
    }
}

fn default_session_name() -> String {
    "cm-baseline".into()
}

/// R2: accounts enrolled in Control Tower keep their own trail, Config and users.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ControlTower {
    /// An IAM role whose presence marks a Control Tower account.
    pub detect_role: String,
    /// Features skipped in such accounts.
    pub skip_features: Vec<FeatureId>,
}

impl Default for ControlTower {
    fn default() -> Self {
        Self {
            detect_role: "aws-controltower-AdministratorExecutionRole".into(),
            skip_features: ["F02", "F07", "F08"].iter().filter_map(|f| FeatureId::parse(f).ok()).collect(),
        }
    }
}

/// R6: limits that are reported, never fought.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    #[serde(default = "default_trails")]
    pub trails_per_region: usize,
    #[serde(default = "default_buckets")]
    pub buckets_per_account: usize,
}

fn default_trails() -> usize {
    5
}
fn default_buckets() -> usize {
    10_000
}

impl Default for Quotas {
    fn default() -> Self {
        Self { trails_per_region: default_trails(), buckets_per_account: default_buckets() }
    }
}

/// Actions the member role's own policies must still allow after any change the daemon
/// makes to that role, besides every action of the tool's own calls in member accounts
/// (which the guard always requires); a change that would drop one is refused.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LockoutGuard {
    pub required_actions: Vec<String>,
}

/// One entry of `tiers.yaml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    #[serde(default)]
    pub description: Option<String>,
    /// The features initial setup applies for this tier.
    pub features: Vec<FeatureId>,
    /// Whether an opt-in feature of this tier is opted in when the account file says nothing.
    pub opt_in_default: bool,
}

/// How maintenance treats a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// CM-managed: applied at initial setup and at every maintenance.
    Managed,
    /// Applied at initial setup; maintained only while the account opts in.
    OptIn,
    /// Applied at initial setup only; the customer may change or delete it afterwards.
    InitialOnly,
}

/// One file under `features/`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureFile {
    pub id: UniqueFeatureId,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    pub kind: FeatureKind,
    /// For an initial-only feature: also (re)created at maintenance when a maintained
    /// feature requires it and it is gone (the KMS logs key).
    #[serde(default)]
    pub also_when_required: bool,
    /// Value of `cm:Members` written on what the feature creates.
    pub tag: TagByTier,
    #[serde(default)]
    pub requires: Vec<Requirement>,
    #[serde(default)]
    pub resources: Vec<crate::resources::ResourceEntry>,
    /// What becomes of something of the customer's found where the feature would put its
    /// own (an account setting they chose before us, an untagged resource under the
    /// baseline's name): `report` (the default) or `overwrite`. An account file can say
    /// otherwise for its account.
    #[serde(default)]
    pub adopt: Adopt,
    /// What `cm-baseline offboard` does with the feature's resources when an account
    /// leaves: `{remove: all}`, `{keep: REASON}`, or `{remove: [TYPE, ...], keep: REASON}`
    /// (those types removed, the rest kept). All kept when absent.
    #[serde(default)]
    pub on_leaving: Option<OnLeaving>,
}

/// What becomes of a feature's resources when an account leaves (`on_leaving:`): what is
/// removed is deleted where provably ours (tagged `cm:Members`, or proven by the journal);
/// the rest stays, for the reason given (the customer's data or evidence).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OnLeaving {
    #[serde(default)]
    pub remove: Removal,
    pub keep: Option<String>,
}

/// The resources an offboarding removes of a feature.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub enum Removal {
    #[default]
    Nothing,
    All,
    /// These: `TYPE` (every resource of the type) or `TYPE NAME` (one, its name as the
    /// feature file writes it).
    Types(Vec<String>),
}

impl<'de> Deserialize<'de> for Removal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            Types(Vec<String>),
        }
        match Raw::deserialize(d)? {
            Raw::Word(w) if w == "all" => Ok(Removal::All),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "`remove: {w}`: expected `all` or a list of resource types, such as [config_recorder]"
            ))),
            Raw::Types(t) => Ok(Removal::Types(t)),
        }
    }
}

impl OnLeaving {
    /// Whether the resource of type `kind` named `name` (as written) is removed.
    pub fn removes(&self, kind: &str, name: &str) -> bool {
        match &self.remove {
            Removal::Nothing => false,
            Removal::All => true,
            Removal::Types(t) => t.iter().any(|k| k == kind || k.split_once(' ') == Some((kind, name))),
        }
    }
}

/// Desired state for an offboarding: each feature's resources are removed or kept as its
/// `on_leaving` says; a feature that says nothing is kept.
pub fn offboarding(d: &mut DesiredState) {
    for f in d.features.values_mut() {
        let removed = |e: &crate::resources::ResourceEntry| {
            f.on_leaving.as_ref().is_some_and(|o| o.removes(e.spec.kind(), &e.spec.name()))
        };
        let gone: Vec<bool> = f.resources.iter().map(removed).collect();
        let mut entries = vec![];
        for (mut e, gone) in f.resources.drain(..).zip(gone) {
            if gone {
                e.ensure = crate::resources::Ensure::Absent;
                entries.push(e);
            } else if e.ensure == crate::resources::Ensure::Present {
                // Kept. What desired state retires (`ensure: absent`, AWS's default VPCs)
                // is no part of leaving: nothing is deleted for it.
                entries.push(e);
            }
        }
        f.resources = entries;
        f.kept = Some(match f.on_leaving.as_ref().and_then(|o| o.keep.clone()) {
            Some(why) => why,
            None => "desired state does not mark it removable on leaving (`on_leaving`)".into(),
        });
    }
}

/// Whether the customer's own settings and resources found in the baseline's place are
/// taken over (`adopt:` in a feature or account file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Adopt {
    /// Reported (`adoption`, `not_owned` or `conflict`), never touched.
    #[default]
    Report,
    /// Brought to the baseline and from then on maintained as ours.
    Overwrite,
}

/// A feature, once loaded.
#[derive(Debug, Clone)]
pub struct Feature {
    pub id: FeatureId,
    pub title: String,
    pub description: Option<String>,
    pub kind: FeatureKind,
    pub also_when_required: bool,
    pub tag: TagByTier,
    pub requires: Vec<Requirement>,
    pub resources: Vec<crate::resources::ResourceEntry>,
    pub adopt: Adopt,
    pub on_leaving: Option<OnLeaving>,
    /// Set for an offboarding only: the feature's resources stay, for this reason.
    pub kept: Option<String>,
    pub file: PathBuf,
}

/// R3: a feature that must be in place first.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub feature: FeatureId,
    /// Only for accounts of these tiers (all tiers when absent).
    #[serde(default)]
    pub tiers: Option<Vec<TierName>>,
    /// A resource type of the required feature whose instance, working in the region
    /// (a Config recorder that is recording), meets the requirement there whoever owns it
    /// (Control Tower, the customer): the dependent feature needs the service to run, not
    /// the baseline's own copy of it, and changes nothing in it.
    #[serde(default)]
    pub met_by_any: Option<String>,
}

/// `tag: Managed`, or per tier: `tag: {basic: Initialized, secure: SecureAccount}`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum TagByTier {
    All(OwnerTag),
    ByTier(BTreeMap<TierName, OwnerTag>),
}

impl TagByTier {
    /// The tag for `tier`; a tier the map does not name gets `Initialized`.
    pub fn for_tier(&self, tier: &TierName) -> OwnerTag {
        match self {
            TagByTier::All(t) => *t,
            TagByTier::ByTier(m) => m.get(tier).copied().unwrap_or(OwnerTag::Initialized),
        }
    }
}

impl<'de> Deserialize<'de> for TagByTier {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TagByTier;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("Managed, Initialized or SecureAccount, or a map from tier to one of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TagByTier, E> {
                OwnerTag::deserialize(de::value::StrDeserializer::<E>::new(v)).map(TagByTier::All)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TagByTier, A::Error> {
                let mut m = BTreeMap::new();
                while let Some(k) = map.next_key::<TierName>()? {
                    let v = map.next_value::<OwnerTag>()?;
                    m.insert(k, v);
                }
                Ok(TagByTier::ByTier(m))
            }
        }
        d.deserialize_any(V)
    }
}

/// One file under `accounts/`: a member account enrolled in the baseline.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountFileRaw {
    pub account_id: UniqueAccountId,
    #[serde(default)]
    pub name: Option<String>,
    pub tier: TierName,
    /// Per-feature opt-in overrides; features not named take the tier's default.
    #[serde(default)]
    pub opt_in: BTreeMap<FeatureId, bool>,
    /// Per-feature adoption of what the customer had before (`{F03: overwrite}`); features
    /// not named take the feature file's `adopt` (default `report`).
    #[serde(default)]
    pub adopt: BTreeMap<FeatureId, Adopt>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountFile {
    pub account_id: AccountId,
    pub name: Option<String>,
    pub tier: TierName,
    pub opt_in: BTreeMap<FeatureId, bool>,
    pub adopt: BTreeMap<FeatureId, Adopt>,
    #[serde(skip)]
    pub file: PathBuf,
}

impl DesiredState {
    /// Whether `feature` is opted in for `account` (explicit setting, else its tier's default).
    pub fn opted_in(&self, account: &AccountFile, feature: &FeatureId) -> bool {
        account.opt_in.get(feature).copied().unwrap_or_else(|| {
            let tier = self.tiers.get(&account.tier);
            tier.map(|t| t.opt_in_default && t.features.contains(feature)).unwrap_or(false)
        })
    }
}
