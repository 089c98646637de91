//! `config_recorder`: AWS Config in one region (F08): the configuration recorder, its
//! delivery channel and whether it is recording, managed together. AWS allows one
//! customer-managed recorder and one delivery channel per region, and neither carries tags:
//! the recorder is ours through its anchors, the role it records with and the bucket it
//! delivers to (or through the journal's record); a recorder under another name holds the
//! region's one place ([`Observation::Occupied`]).

use super::{untaggable, Cx, Observation, Ownership, ResourceType, Scope};
use crate::aws::AwsError;
use crate::desired::names::OwnerTag;
use aws_sdk_config::types::{
    ConfigurationRecorder, DeliveryChannel as SdkDeliveryChannel, RecordingGroup, RecordingStrategy,
    RecordingStrategyType, ResourceType as ConfigResourceType,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Where AWS Config delivers configuration snapshots and history files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryChannel {
    /// Name of the delivery channel (`default`).
    pub name: String,
    /// Bucket the files go to. Always compared.
    pub s3_bucket: String,
    #[serde(default)]
    pub s3_key_prefix: Option<String>,
    /// KMS key for SSE-KMS of the delivered objects: alias, key id or ARN. An alias is
    /// resolved in the home region (where the bucket is) and written as the key's ARN, which
    /// is what AWS Config takes; an alias and the key behind it compare equal.
    #[serde(default)]
    pub s3_kms_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigRecorder {
    /// Name of the configuration recorder (`default`).
    pub name: String,
    /// IAM role the recorder uses. Always compared.
    pub role_arn: String,
    /// Record every resource type AWS Config supports in the region.
    #[serde(default)]
    pub all_supported: Option<bool>,
    /// Also record global resource types (IAM); AWS accepts `true` only with `all_supported`.
    #[serde(default)]
    pub include_global_resource_types: Option<bool>,
    /// The resource types recorded when `all_supported` is `false` (`AWS::EC2::Instance`, ...).
    #[serde(default)]
    pub resource_types: Option<BTreeSet<String>>,
    #[serde(default)]
    pub delivery_channel: Option<DeliveryChannel>,
    /// Whether the recorder is recording (StartConfigurationRecorder / StopConfigurationRecorder).
    #[serde(default)]
    pub recording: Option<bool>,
}

/// The home region's view: the Config bucket and the logs key live there, whatever region
/// the recorder is in.
fn home<'a>(cx: &Cx<'a>) -> Cx<'a> {
    Cx { session: cx.session, account_id: cx.account_id, region: cx.session.home_region(), quotas: cx.quotas }
}

/// The ARN AWS Config takes for `s3KmsKeyArn`: an alias is resolved to its key in the home
/// region; a bare key id is made an ARN.
async fn kms_key_arn(cx: &Cx<'_>, key: &str) -> Result<String, AwsError> {
    if key.starts_with("arn:") {
        return Ok(key.to_string());
    }
    let home = home(cx);
    let id = if key.starts_with("alias/") {
        super::kms_key::alias_target(&home, key).await?.ok_or_else(|| {
            AwsError::new("NotFoundException", format!("KMS alias {key} does not exist in {}", home.region))
        })?
    } else {
        key.to_string()
    };
    Ok(format!(
        "arn:{}:kms:{}:{}:key/{}",
        crate::desired::resolve::partition_of(home.region),
        home.region,
        cx.account_id,
        id
    ))
}

/// Whether an error is IAM's eventual consistency: a role made moments ago that AWS Config
/// cannot assume yet.
fn role_not_ready(e: &AwsError) -> bool {
    e.code == "InsufficientDeliveryPolicyException"
        || e.code == "InvalidRoleException"
        || (e.code == "AccessDeniedException" && e.message.contains("assume"))
}

impl ConfigRecorder {
    /// The recorder as it should be written: desired where it has an opinion, else what is there.
    fn recorder(&self, observed: &Self) -> ConfigurationRecorder {
        let all = self.all_supported.or(observed.all_supported);
        let global = self.include_global_resource_types.or(observed.include_global_resource_types);
        let types = self.resource_types.as_ref().or(observed.resource_types.as_ref());
        let mut rec = ConfigurationRecorder::builder().name(&self.name).role_arn(&self.role_arn);
        if all == Some(true) {
            rec = rec.recording_group(
                RecordingGroup::builder()
                    .all_supported(true)
                    .include_global_resource_types(global.unwrap_or(false))
                    .recording_strategy(
                        RecordingStrategy::builder().use_only(RecordingStrategyType::AllSupportedResourceTypes).build(),
                    )
                    .build(),
            );
        } else if let Some(types) = types.filter(|t| !t.is_empty()) {
            let group = RecordingGroup::builder()
                .all_supported(false)
                .include_global_resource_types(global.unwrap_or(false))
                .set_resource_types(Some(types.iter().map(|t| ConfigResourceType::from(t.as_str())).collect()))
                .recording_strategy(
                    RecordingStrategy::builder().use_only(RecordingStrategyType::InclusionByResourceTypes).build(),
                )
                .build();
            rec = rec.recording_group(group);
        }
        rec.build()
    }

    /// Whether the recorder `name` of the region is recording.
    async fn is_recording(&self, cx: &Cx<'_>, name: &str) -> Result<bool, AwsError> {
        let cfg = cx.session.config(cx.region);
        let out = cx
            .session
            .call(cfg.describe_configuration_recorder_status().configuration_recorder_names(name).send())
            .await?;
        Ok(out.configuration_recorders_status().iter().any(|s| s.recording()))
    }

    async fn put_recorder(&self, cx: &Cx<'_>, observed: &Self) -> Result<(), AwsError> {
        let cfg = cx.session.config(cx.region);
        let rec = self.recorder(observed);
        super::while_role_settles(role_not_ready, || async {
            cx.session.call(cfg.put_configuration_recorder().configuration_recorder(rec.clone()).send()).await?;
            Ok(())
        })
        .await
    }

    async fn put_channel(&self, cx: &Cx<'_>, want: &DeliveryChannel) -> Result<(), AwsError> {
        let cfg = cx.session.config(cx.region);
        let kms = match &want.s3_kms_key {
            Some(k) => Some(kms_key_arn(cx, k).await?),
            None => None,
        };
        let channel = SdkDeliveryChannel::builder()
            .name(&want.name)
            .s3_bucket_name(&want.s3_bucket)
            .set_s3_key_prefix(want.s3_key_prefix.clone())
            .set_s3_kms_key_arn(kms)
            .build();
        super::while_role_settles(role_not_ready, || async {
            cx.session.call(cfg.put_delivery_channel().delivery_channel(channel.clone()).send()).await?;
            Ok(())
        })
        .await
    }
}

impl ResourceType for ConfigRecorder {
    const KIND: &'static str = "config_recorder";
    const DEFAULT_SCOPE: Scope = Scope::All;
    const TAGGABLE: bool = false;
    const OWNERSHIP: Ownership = Ownership::Anchored;

    fn name(&self) -> String {
        self.name.clone()
    }

    /// Security Hub needs Config recording in the region; a recorder that is, ours or not,
    /// serves it.
    fn working(&self) -> bool {
        self.recording == Some(true)
    }

    /// The role it records with and the bucket its channel delivers to.
    fn anchors(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![];
        if let Some((_, role)) = self.role_arn.rsplit_once('/') {
            out.push(("iam_role", role.to_string()));
        } else {
            out.push(("iam_role", self.role_arn.clone()));
        }
        match &self.delivery_channel {
            Some(ch) => out.push(("s3_bucket", ch.s3_bucket.clone())),
            None => out.push(("s3_bucket", String::new())),
        }
        out
    }

    async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let cfg = cx.session.config(cx.region);
        let out = cx.session.call(cfg.describe_configuration_recorders().send()).await?;
        // Service-linked recorders (made by other AWS services) do not take the region's one
        // customer-managed slot.
        let customer: Vec<&ConfigurationRecorder> =
            out.configuration_recorders().iter().filter(|r| r.service_principal().is_none()).collect();
        let Some(rec) = customer.iter().find(|r| r.name() == Some(self.name.as_str())) else {
            // AWS allows one customer-managed recorder per region, and cannot rename one.
            let Some(other) = customer.first() else {
                return Ok(Observation::Absent { quota: None });
            };
            // Whether it records is read too: Security Hub in the region needs Config
            // recording, whoever's recorder it is (Control Tower's, in its accounts).
            let other_name = other.name().unwrap_or_default().to_string();
            let state = match self.recording {
                Some(_) => Some(ConfigRecorder {
                    name: other_name.clone(),
                    role_arn: other.role_arn().unwrap_or_default().to_string(),
                    all_supported: None,
                    include_global_resource_types: None,
                    resource_types: None,
                    delivery_channel: None,
                    recording: Some(self.is_recording(cx, &other_name).await?),
                }),
                None => None,
            };
            return Ok(Observation::Occupied { by: format!("configuration recorder {other_name}"), state });
        };
        let name = rec.name().unwrap_or_default().to_string();
        let group = rec.recording_group();
        let mut seen = ConfigRecorder {
            name: name.clone(),
            role_arn: rec.role_arn().unwrap_or_default().to_string(),
            all_supported: Some(group.map(|g| g.all_supported()).unwrap_or(true)),
            include_global_resource_types: Some(group.map(|g| g.include_global_resource_types()).unwrap_or(false)),
            resource_types: Some(
                group.map(|g| g.resource_types().iter().map(|t| t.as_str().to_string()).collect()).unwrap_or_default(),
            ),
            delivery_channel: None,
            recording: None,
        };
        if let Some(want) = &self.delivery_channel {
            let out = cx.session.call(cfg.describe_delivery_channels().send()).await?;
            let channels = out.delivery_channels();
            let ch = channels.iter().find(|c| c.name() == Some(want.name.as_str())).or(channels.first());
            if let Some(ch) = ch {
                let s3_kms_key = match (&want.s3_kms_key, ch.s3_kms_key_arn()) {
                    (Some(w), Some(g)) if super::kms_key::same_key(&home(cx), w, g).await? => Some(w.clone()),
                    (_, g) => g.map(str::to_string),
                };
                seen.delivery_channel = Some(DeliveryChannel {
                    name: ch.name().unwrap_or_default().to_string(),
                    s3_bucket: ch.s3_bucket_name().unwrap_or_default().to_string(),
                    s3_key_prefix: ch.s3_key_prefix().map(str::to_string),
                    s3_kms_key,
                });
            }
        }
        if self.recording.is_some() {
            seen.recording = Some(self.is_recording(cx, &name).await?);
        }
        Ok(Observation::Present { state: seen, owner: None })
    }

    async fn create(&self, cx: &Cx<'_>, _tag: OwnerTag) -> Result<(), AwsError> {
        let nothing = ConfigRecorder {
            name: self.name.clone(),
            role_arn: String::new(),
            all_supported: None,
            include_global_resource_types: None,
            resource_types: None,
            delivery_channel: None,
            recording: Some(false),
        };
        self.update(cx, &nothing).await
    }

    async fn update(&self, cx: &Cx<'_>, observed: &Self) -> Result<(), AwsError> {
        if observed.name != self.name && !observed.role_arn.is_empty() {
            return Err(AwsError::new(
                "Conflict",
                format!(
                    "the region already has the configuration recorder `{}`; AWS Config allows one per region and \
                     cannot rename it: cm-baseline does not delete it (delete or rename it by hand, or name it in \
                     desired state)",
                    observed.name
                ),
            ));
        }
        let differs = |a: &Option<bool>, b: &Option<bool>| a.is_some() && a != b;
        let recorder_differs = self.role_arn != observed.role_arn
            || differs(&self.all_supported, &observed.all_supported)
            || differs(&self.include_global_resource_types, &observed.include_global_resource_types)
            || (self.resource_types.is_some() && self.resource_types != observed.resource_types);
        if recorder_differs {
            self.put_recorder(cx, observed).await?;
        }
        if let Some(want) = &self.delivery_channel {
            if let Some(seen) = observed.delivery_channel.as_ref().filter(|s| s.name != want.name) {
                return Err(AwsError::new(
                    "Conflict",
                    format!(
                        "the region already has the delivery channel `{}`; AWS Config allows one per region: \
                         cm-baseline does not delete it",
                        seen.name
                    ),
                ));
            }
            let seen = observed.delivery_channel.as_ref();
            let channel_differs = match seen {
                None => true,
                Some(s) => {
                    s.s3_bucket != want.s3_bucket
                        || (want.s3_key_prefix.is_some() && want.s3_key_prefix != s.s3_key_prefix)
                        || (want.s3_kms_key.is_some() && want.s3_kms_key != s.s3_kms_key)
                }
            };
            if channel_differs {
                // PutDeliveryChannel replaces the channel: keep what desired has no opinion on.
                let merged = DeliveryChannel {
                    name: want.name.clone(),
                    s3_bucket: want.s3_bucket.clone(),
                    s3_key_prefix: want.s3_key_prefix.clone().or_else(|| seen.and_then(|s| s.s3_key_prefix.clone())),
                    s3_kms_key: want.s3_kms_key.clone().or_else(|| seen.and_then(|s| s.s3_kms_key.clone())),
                };
                self.put_channel(cx, &merged).await?;
            }
        }
        let cfg = cx.session.config(cx.region);
        match (self.recording, observed.recording) {
            (Some(true), Some(true)) | (Some(false), Some(false)) | (None, _) => {}
            (Some(true), _) => {
                cx.session
                    .call(cfg.start_configuration_recorder().configuration_recorder_name(&self.name).send())
                    .await?;
            }
            (Some(false), _) => {
                cx.session
                    .call(cfg.stop_configuration_recorder().configuration_recorder_name(&self.name).send())
                    .await?;
            }
        }
        Ok(())
    }

    async fn delete(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
        let cfg = cx.session.config(cx.region);
        let Observation::Present { state, .. } = self.observe(cx).await? else {
            return Ok(());
        };
        // A delivery channel cannot be deleted while the recorder records.
        cx.session.call(cfg.stop_configuration_recorder().configuration_recorder_name(&state.name).send()).await?;
        if let Some(ch) = &state.delivery_channel {
            cx.session.call(cfg.delete_delivery_channel().delivery_channel_name(&ch.name).send()).await?;
        }
        cx.session.call(cfg.delete_configuration_recorder().configuration_recorder_name(&state.name).send()).await?;
        Ok(())
    }

    async fn retag(&self, _cx: &Cx<'_>, _tag: OwnerTag) -> Result<(), AwsError> {
        Err(untaggable(Self::KIND))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want() -> ConfigRecorder {
        ConfigRecorder {
            name: "default".into(),
            role_arn: "arn:aws:iam::111111111111:role/cm-config-role-all-regions".into(),
            all_supported: Some(false),
            include_global_resource_types: Some(false),
            resource_types: Some(["AWS::EC2::Instance".to_string(), "AWS::S3::Bucket".to_string()].into()),
            delivery_channel: None,
            recording: Some(true),
        }
    }

    #[test]
    fn a_listed_recorder_records_exactly_those_types_by_inclusion() {
        let empty = ConfigRecorder { resource_types: None, all_supported: None, ..want() };
        let rec = want().recorder(&empty);
        let g = rec.recording_group().unwrap();
        assert!(!g.all_supported());
        assert_eq!(g.resource_types().len(), 2);
        assert_eq!(
            g.recording_strategy().and_then(|s| s.use_only()),
            Some(&RecordingStrategyType::InclusionByResourceTypes)
        );
    }

    #[test]
    fn all_supported_keeps_the_global_choice() {
        let secure = ConfigRecorder {
            all_supported: Some(true),
            include_global_resource_types: Some(true),
            resource_types: None,
            ..want()
        };
        let rec = secure.recorder(&want());
        let g = rec.recording_group().unwrap();
        assert!(g.all_supported() && g.include_global_resource_types());
        assert!(g.resource_types().is_empty());
    }

    #[test]
    fn region_groups_are_read_as_written_in_the_feature_file() {
        use crate::resources::Scope;
        let only: Scope = serde_yaml::from_str("{only: [us-east-1]}").unwrap();
        assert!(matches!(&only, Scope::Only(r) if r.len() == 1 && r[0].as_str() == "us-east-1"));
        let except: Scope = serde_yaml::from_str("{except: [ap-northeast-1, us-east-1, us-west-2]}").unwrap();
        assert!(matches!(&except, Scope::Except(r) if r.len() == 3));
        let tagged: Scope = serde_yaml::from_str("!only [us-west-2]").unwrap();
        assert!(matches!(tagged, Scope::Only(_)));
        assert_eq!(serde_yaml::from_str::<Scope>("others").unwrap(), Scope::Others);
        assert!(serde_yaml::from_str::<Scope>("{only: [us-east-1], except: [us-west-2]}").is_err());
        assert!(serde_yaml::from_str::<Scope>("{anywhere: [us-east-1]}").is_err());
        assert!(serde_yaml::from_str::<Scope>("everywhere").is_err());
    }

    #[test]
    fn partitions_follow_the_region() {
        assert_eq!(crate::desired::resolve::partition_of("cn-north-1"), "aws-cn");
        assert_eq!(crate::desired::resolve::partition_of("ap-northeast-1"), "aws");
    }
}
