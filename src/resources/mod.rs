//! Resource types: one file each, listed once in the [`registry!`] invocation below.
//!
//! A resource type is a struct that is both the desired shape (read from YAML, with
//! `Option` fields meaning "no opinion") and the observed shape (filled from AWS). It
//! implements [`ResourceType`]: how to read it from AWS, and how to create, update,
//! delete and tag it. It decides nothing: whether to call any of those is the planner's
//! decision ([`crate::plan`]).

pub mod access_analyzer;
pub mod cloudtrail_trail;
pub mod compute_optimizer_enrollment;
pub mod config_recorder;
pub mod default_vpc;
pub mod detective_graph;
pub mod ebs_default_encryption;
pub mod eventbridge_bus;
pub mod eventbridge_rule;
pub mod guardduty_detector;
pub mod iam_group;
pub mod iam_password_policy;
pub mod iam_role;
pub mod iam_user;
pub mod kms_key;
pub mod s3_account_public_access_block;
pub mod s3_bucket;
pub mod securityhub_automation_rule;
pub mod securityhub_finding_aggregator;
pub mod securityhub_hub;
pub mod securityhub_standard;
pub mod sfn_state_machine;

use crate::aws::{AccountSession, AwsError};
use crate::desired::names::{OwnerTag, Region, TierName};
use crate::desired::Quotas;
use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::future::Future;

/// Where a resource lives. In YAML: `global`, `home`, `all`, `others`, or a one-key
/// mapping `{only: [...]}` / `{except: [...]}` (see the `Deserialize` impl below).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Account-wide, not regional (IAM).
    Global,
    /// The home region only.
    Home,
    /// Every active region.
    All,
    /// Every active region but the home region.
    Others,
    /// These regions, where active (`regions: {only: [us-east-1]}`).
    Only(Vec<Region>),
    /// Every active region but these (`regions: {except: [ap-northeast-1, us-east-1]}`).
    Except(Vec<Region>),
}

const SCOPE_NAMES: &[&str] = &["global", "home", "all", "others", "only", "except"];

/// serde_yaml reads an externally tagged enum only from a YAML tag (`!only [...]`); desired
/// state writes `{only: [...]}`. Both are accepted, and the plain names as strings.
impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        fn unit<E: de::Error>(name: &str) -> Result<Scope, E> {
            match name {
                "global" => Ok(Scope::Global),
                "home" => Ok(Scope::Home),
                "all" => Ok(Scope::All),
                "others" => Ok(Scope::Others),
                other => Err(E::unknown_variant(other, SCOPE_NAMES)),
            }
        }
        impl<'de> Visitor<'de> for V {
            type Value = Scope;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`global`, `home`, `all`, `others`, `{only: [regions]}` or `{except: [regions]}`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Scope, E> {
                unit(s)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scope, A::Error> {
                let key: String = map
                    .next_key()?
                    .ok_or_else(|| de::Error::custom("expected `only` or `except` with a list of regions"))?;
                let scope = match key.as_str() {
                    "only" => Scope::Only(map.next_value()?),
                    "except" => Scope::Except(map.next_value()?),
                    other => return Err(de::Error::unknown_variant(other, &["only", "except"])),
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(de::Error::custom(format!("a region scope has one key, found a second one `{extra}`")));
                }
                Ok(scope)
            }
            fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Scope, A::Error> {
                use de::VariantAccess;
                let (name, v): (String, _) = data.variant()?;
                match name.as_str() {
                    "only" => Ok(Scope::Only(v.newtype_variant()?)),
                    "except" => Ok(Scope::Except(v.newtype_variant()?)),
                    other => {
                        v.unit_variant()?;
                        unit(other)
                    }
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Whether a desired resource should exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ensure {
    #[default]
    Present,
    /// Retire a resource this tool made: deleted only if it carries `cm:Members`.
    Absent,
}

/// A limit that a create would count against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub name: String,
    pub used: usize,
    pub limit: usize,
}

/// What was found in AWS for one desired resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation<T> {
    Absent {
        /// The quota a create would count against, with its current use.
        quota: Option<Quota>,
    },
    Present {
        state: T,
        /// Value of the `cm:Members` tag; `None` when the tag is missing (the customer's).
        owner: Option<String>,
    },
    /// A resource AWS itself created as the account's default (the default VPC, known by
    /// AWS's own `IsDefault` flag). Nobody can tag it on creation; the baseline may only
    /// remove it, and only while nothing uses it.
    AwsDefault {
        state: T,
        /// What uses it (network interfaces, ...); empty when unused.
        in_use: Vec<String>,
    },
    /// Not there under the desired name, but AWS allows one of a kind (one account analyzer
    /// per type and region, one Config recorder per region) and that one place is taken.
    Occupied {
        /// What holds it, as a person would name it (`account analyzer customer-analyzer`).
        by: String,
        /// What holds it, read in the same shape where that tells a dependent feature
        /// something (whether the region's recorder records); `None` when not read.
        state: Option<T>,
    },
}

impl<T> Observation<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Observation<U> {
        match self {
            Observation::Absent { quota } => Observation::Absent { quota },
            Observation::Present { state, owner } => Observation::Present { state: f(state), owner },
            Observation::AwsDefault { state, in_use } => Observation::AwsDefault { state: f(state), in_use },
            Observation::Occupied { by, state } => Observation::Occupied { by, state: state.map(f) },
        }
    }
}

/// How the planner tells whether an instance is this tool's (R1). Each type states which
/// rule applies to it; only the planner ([`crate::plan`]) acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// It carries `cm:Members`: ours if and only if it carries the tag.
    Tag,
    /// It belongs to a parent of this kind in the same region (Security Hub's standards,
    /// aggregator and automation rules belong to the hub): ours only while the parent is;
    /// a child that can carry the tag must carry it too.
    Parent(&'static str),
    /// It points at resources (a Config recorder at its role and bucket): ours when every
    /// one of them is ours, or when the journal records that we made it.
    Anchored,
    /// A named resource that cannot carry a tag (an IAM group): ours only when the journal
    /// records that we made it.
    Recorded,
    /// An account-level setting (the password policy, EBS default encryption): ours to set
    /// while it is absent or at AWS's default, or when the journal records that we wrote
    /// it; a value the customer set before us is adopted only where desired state says so.
    Setting,
    /// AWS's own default resource (the default VPC): never changed, removed only while
    /// nothing but AWS's own pieces are in it.
    AwsDefault,
}

/// What a resource type's AWS calls need to know.
pub struct Cx<'a> {
    pub session: &'a AccountSession,
    pub account_id: &'a str,
    /// The region the resource lives in (the home region for global resources).
    pub region: &'a str,
    pub quotas: &'a Quotas,
}

/// One AWS resource type.
pub trait ResourceType:
    Sized + Clone + fmt::Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The key that names the type in desired state and reports (`s3_bucket`).
    const KIND: &'static str;
    /// Where instances live unless desired state says otherwise.
    const DEFAULT_SCOPE: Scope;
    /// Whether AWS lets the type carry the `cm:Members` tag. Untaggable settings are
    /// managed only while their feature is active.
    const TAGGABLE: bool;

    /// Which rule proves that an instance is ours.
    const OWNERSHIP: Ownership;

    /// The instance's name in reports (bucket name, role name; `account` for singletons).
    fn name(&self) -> String;

    /// For [`Ownership::Anchored`] types: the resources an observed instance points at, as
    /// `(kind, name)` (the recorder's role and bucket).
    fn anchors(&self) -> Vec<(&'static str, String)> {
        vec![]
    }

    /// For [`Ownership::Setting`] types: whether an observed value is AWS's default, which
    /// nobody chose (EBS encryption off, Compute Optimizer not enrolled).
    fn is_aws_default(&self) -> bool {
        false
    }

    /// For a kind that a requirement names in `met_by_any`: whether an observed instance,
    /// whoever owns it, does what the dependent feature needs (a Config recorder that is
    /// recording). Nothing else is asked of it, and nothing of it is changed.
    fn working(&self) -> bool {
        false
    }

    /// For an account-wide one-of-a-kind resource that AWS lists from every region (the
    /// Security Hub finding aggregator): the region an observed instance is in. One found
    /// outside the region desired state places it in is not in place.
    fn found_in(&self) -> Option<&str> {
        None
    }

    /// Reads the resource from AWS, in the same shape as desired state.
    fn observe(&self, cx: &Cx<'_>) -> impl Future<Output = Result<Observation<Self>, AwsError>> + Send;
    /// Creates it, tagging it with `tag`.
    fn create(&self, cx: &Cx<'_>, tag: OwnerTag) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Brings an existing instance from `observed` to `self`.
    fn update(&self, cx: &Cx<'_>, observed: &Self) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Deletes it.
    fn delete(&self, cx: &Cx<'_>) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Sets the `cm:Members` tag to `tag`.
    fn retag(&self, cx: &Cx<'_>, tag: OwnerTag) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// Turns a list of `(key, value)` tags into the owner tag value, if present.
pub fn owner_of<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<String> {
    tags.into_iter().find(|(k, _)| *k == crate::desired::names::OWNER_TAG_KEY).map(|(_, v)| v.to_string())
}

/// IAM is eventually consistent: a role created or changed moments ago, earlier in the same
/// apply, may not be usable by a service yet. Retries `send` while `not_ready` says so,
/// waiting 1, 2, 4, 8, 8 and 8 seconds (about 30 in all, each wait logged), then gives the
/// error.
pub async fn while_role_settles<T, F, Fut>(not_ready: impl Fn(&AwsError) -> bool, mut send: F) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AwsError>>,
{
    const WAITS: [u64; 6] = [1, 2, 4, 8, 8, 8];
    let mut waits = WAITS.iter();
    loop {
        match send().await {
            Err(e) if not_ready(&e) => match waits.next() {
                Some(secs) => {
                    tracing::info!(error = %e, retry_in_seconds = secs, "the role is not usable by the service yet (IAM propagates changes in seconds): waiting");
                    tokio::time::sleep(std::time::Duration::from_secs(*secs)).await;
                }
                None => return Err(e),
            },
            other => return other,
        }
    }
}

/// The error of an untaggable type asked to tag itself; the planner never asks.
pub fn untaggable(kind: &str) -> AwsError {
    AwsError::new("unsupported", format!("{kind} cannot carry tags"))
}

macro_rules! registry {
    ($($variant:ident => $module:ident :: $ty:ident),* $(,)?) => {
        /// A desired or observed resource of any registered type.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ResourceSpec {
            $($variant($module::$ty),)*
        }

        /// Every registered kind, in registry order.
        pub const KINDS: &[&str] = &[$(<$module::$ty as ResourceType>::KIND),*];

        /// The ownership rule of a kind, by name.
        pub fn ownership_of(kind: &str) -> Option<Ownership> {
            $(if kind == <$module::$ty as ResourceType>::KIND {
                return Some(<$module::$ty as ResourceType>::OWNERSHIP);
            })*
            None
        }

        impl ResourceSpec {
            pub fn kind(&self) -> &'static str {
                match self { $(Self::$variant(_) => <$module::$ty as ResourceType>::KIND,)* }
            }
            pub fn name(&self) -> String {
                match self { $(Self::$variant(r) => r.name(),)* }
            }
            pub fn default_scope(&self) -> Scope {
                match self { $(Self::$variant(_) => <$module::$ty as ResourceType>::DEFAULT_SCOPE,)* }
            }
            pub fn taggable(&self) -> bool {
                match self { $(Self::$variant(_) => <$module::$ty as ResourceType>::TAGGABLE,)* }
            }
            pub fn ownership(&self) -> Ownership {
                match self { $(Self::$variant(_) => <$module::$ty as ResourceType>::OWNERSHIP,)* }
            }
            pub fn anchors(&self) -> Vec<(&'static str, String)> {
                match self { $(Self::$variant(r) => r.anchors(),)* }
            }
            pub fn is_aws_default(&self) -> bool {
                match self { $(Self::$variant(r) => r.is_aws_default(),)* }
            }
            pub fn found_in(&self) -> Option<&str> {
                match self { $(Self::$variant(r) => r.found_in(),)* }
            }
            pub fn working(&self) -> bool {
                match self { $(Self::$variant(r) => r.working(),)* }
            }
            /// The resource's own fields, without the kind around them.
            pub fn fields(&self) -> serde_json::Value {
                let v = match self { $(Self::$variant(r) => serde_json::to_value(r),)* };
                v.unwrap_or(serde_json::Value::Null)
            }
            // Each type's future is boxed: unboxed, every read of an account would take the
            // space of the largest type's future (a bucket's eight concurrent reads), and an
            // account's pending reads would cost megabytes.
            pub async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<ResourceSpec>, AwsError> {
                match self { $(Self::$variant(r) => Ok(Box::pin(r.observe(cx)).await?.map(Self::$variant)),)* }
            }
            pub async fn create(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
                match self { $(Self::$variant(r) => Box::pin(r.create(cx, tag)).await,)* }
            }
            pub async fn update(&self, cx: &Cx<'_>, observed: &ResourceSpec) -> Result<(), AwsError> {
                match (self, observed) {
                    $((Self::$variant(r), Self::$variant(o)) => Box::pin(r.update(cx, o)).await,)*
                    #[allow(unreachable_patterns)]
                    _ => Err(AwsError::new("internal", "observed resource is of another type")),
                }
            }
            pub async fn delete(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
                match self { $(Self::$variant(r) => Box::pin(r.delete(cx)).await,)* }
            }
            pub async fn retag(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
                match self { $(Self::$variant(r) => Box::pin(r.retag(cx, tag)).await,)* }
            }
        }

        fn read_spec<'de, A: MapAccess<'de>>(kind: &str, map: &mut A) -> Result<Option<ResourceSpec>, A::Error> {
            $(if kind == <$module::$ty as ResourceType>::KIND {
                return Ok(Some(ResourceSpec::$variant(map.next_value()?)));
            })*
            Ok(None)
        }
    };
}

registry! {
    IamRole => iam_role::IamRole,
    IamUser => iam_user::IamUser,
    IamGroup => iam_group::IamGroup,
    IamPasswordPolicy => iam_password_policy::IamPasswordPolicy,
    S3AccountPublicAccessBlock => s3_account_public_access_block::S3AccountPublicAccessBlock,
    KmsKey => kms_key::KmsKey,
    S3Bucket => s3_bucket::S3Bucket,
    CloudtrailTrail => cloudtrail_trail::CloudtrailTrail,
    EbsDefaultEncryption => ebs_default_encryption::EbsDefaultEncryption,
    DefaultVpc => default_vpc::DefaultVpc,
    GuarddutyDetector => guardduty_detector::GuarddutyDetector,
    DetectiveGraph => detective_graph::DetectiveGraph,
    AccessAnalyzer => access_analyzer::AccessAnalyzer,
    ComputeOptimizerEnrollment => compute_optimizer_enrollment::ComputeOptimizerEnrollment,
    ConfigRecorder => config_recorder::ConfigRecorder,
    SecurityhubHub => securityhub_hub::SecurityhubHub,
    SecurityhubStandard => securityhub_standard::SecurityhubStandard,
    SecurityhubFindingAggregator => securityhub_finding_aggregator::SecurityhubFindingAggregator,
    SecurityhubAutomationRule => securityhub_automation_rule::SecurityhubAutomationRule,
    EventbridgeBus => eventbridge_bus::EventbridgeBus,
    SfnStateMachine => sfn_state_machine::SfnStateMachine,
    EventbridgeRule => eventbridge_rule::EventbridgeRule,
}

/// One entry of a feature's `resources:` list: exactly one resource type key, plus
/// optional `tiers`, `regions`, `ensure` and `initial_only_fields`.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceEntry {
    pub spec: ResourceSpec,
    /// Only for accounts of these tiers (every tier when absent).
    pub tiers: Option<Vec<TierName>>,
    /// Where instances live; the type's default when absent.
    pub regions: Option<Scope>,
    pub ensure: Ensure,
    /// Fields initial setup writes and maintenance leaves as it finds them (the EBS default
    /// key, which the specification lets customers change): a different value found at
    /// maintenance is reported (`customer_choice`), not changed.
    pub initial_only_fields: Vec<String>,
}

impl<'de> Deserialize<'de> for ResourceEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ResourceEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a mapping with one resource type key ({})", KINDS.join(", "))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ResourceEntry, A::Error> {
                let (mut spec, mut tiers, mut regions, mut ensure) = (None, None, None, None);
                let mut initial_only_fields = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "tiers" => tiers = Some(map.next_value()?),
                        "regions" => regions = Some(map.next_value()?),
                        "ensure" => ensure = Some(map.next_value()?),
                        "initial_only_fields" => initial_only_fields = Some(map.next_value()?),
                        kind => {
                            if spec.is_some() {
                                return Err(de::Error::custom(format!(
                                    "a resource entry has one resource type key, found a second one `{kind}`; hint: start a new list item with `- {kind}:`"
                                )));
                            }
                            match read_spec(kind, &mut map)? {
                                Some(s) => spec = Some(s),
                                None => {
                                    let hint = crate::desired::names::did_you_mean(kind, KINDS.iter().copied())
                                        .map(|m| format!("did you mean {m}?"))
                                        .unwrap_or_else(|| {
                                            format!(
                                                "resource types: {}; entry keys: tiers, regions, ensure, initial_only_fields",
                                                KINDS.join(", ")
                                            )
                                        });
                                    return Err(de::Error::custom(format!(
                                        "unknown resource type or key `{kind}`; hint: {hint}"
                                    )));
                                }
                            }
                        }
                    }
                }
                let spec = spec.ok_or_else(|| {
                    de::Error::custom(format!(
                        "resource entry names no resource type; hint: one of {}",
                        KINDS.join(", ")
                    ))
                })?;
                let initial_only_fields: Vec<String> = initial_only_fields.unwrap_or_default();
                // Each must be a field the type has and this entry sets.
                let fields = spec.fields();
                if let Some(f) = initial_only_fields.iter().find(|f| fields.get(f.as_str()).is_none_or(|v| v.is_null()))
                {
                    return Err(de::Error::custom(format!(
                        "`initial_only_fields` names `{f}`, which this {} entry does not set; hint: name fields set above",
                        spec.kind()
                    )));
                }
                Ok(ResourceEntry { spec, tiers, regions, ensure: ensure.unwrap_or_default(), initial_only_fields })
            }
        }
        d.deserialize_map(V)
    }
}
