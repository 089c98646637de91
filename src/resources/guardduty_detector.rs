//! `guardduty_detector`: the GuardDuty detector of a region and its protection plans (F12).
//!
//! GuardDuty allows one detector per account and region, so the detector has no name: it is
//! the region's singleton, found with ListDetectors. Protection plans are set through the
//! detector's `Features` (not the deprecated `DataSources`). Only the features (and, within
//! one, the additional configurations) that desired state names are read and compared.

use super::{owner_of, Cx, Observation, Ownership, ResourceType, Scope};
use crate::aws::AwsError;
use crate::desired::names::{did_you_mean, OwnerTag, OWNER_TAG_KEY};
use aws_sdk_guardduty::types::{
    DetectorAdditionalConfiguration, DetectorFeature, DetectorFeatureConfiguration, DetectorStatus,
    FeatureAdditionalConfiguration, FeatureStatus,
};
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// `enabled` or `disabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Enabled,
    Disabled,
}

impl Status {
    fn aws(self) -> FeatureStatus {
        match self {
            Status::Enabled => FeatureStatus::Enabled,
            Status::Disabled => FeatureStatus::Disabled,
        }
    }
    fn from_aws(s: Option<&FeatureStatus>) -> Self {
        match s {
            Some(FeatureStatus::Enabled) => Status::Enabled,
            _ => Status::Disabled,
        }
    }
}

/// A name checked against a fixed list (the SDK's), with a "did you mean" hint.
fn checked_name<E: de::Error>(what: &str, name: &str, known: &'static [&'static str]) -> Result<String, E> {
    if known.contains(&name) {
        return Ok(name.to_string());
    }
    let hint = match did_you_mean(name, known.iter().copied()) {
        Some(m) => format!("did you mean {m}?"),
        None => format!("one of {}", known.join(", ")),
    };
    Err(E::custom(format!("unknown GuardDuty {what} `{name}`; hint: {hint}")))
}

/// A detector feature name (`S3_DATA_EVENTS`, `RUNTIME_MONITORING`, ...).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct FeatureName(String);

impl<'de> Deserialize<'de> for FeatureName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        checked_name("feature", &s, DetectorFeature::values()).map(FeatureName)
    }
}

/// One feature's setting: `enabled` / `disabled`, or a mapping with `status` and the
/// feature's additional configurations by name
/// (`{status: enabled, EKS_ADDON_MANAGEMENT: enabled}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureSetting {
    pub status: Status,
    /// Additional configurations named by desired state; empty: no opinion.
    pub additional: BTreeMap<String, Status>,
}

impl Serialize for FeatureSetting {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.additional.is_empty() {
            return self.status.serialize(s);
        }
        let mut m = s.serialize_map(Some(self.additional.len() + 1))?;
        m.serialize_entry("status", &self.status)?;
        for (k, v) in &self.additional {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for FeatureSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FeatureSetting;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`enabled`, `disabled`, or a mapping with `status` and additional configurations")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FeatureSetting, E> {
                let status = Status::deserialize(de::value::StrDeserializer::<E>::new(v))?;
                Ok(FeatureSetting { status, additional: BTreeMap::new() })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FeatureSetting, A::Error> {
                let mut status = None;
                let mut additional = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "status" {
                        status = Some(map.next_value::<Status>()?);
                        continue;
                    }
                    let name =
                        checked_name("additional configuration", &key, FeatureAdditionalConfiguration::values())?;
                    if additional.insert(name, map.next_value::<Status>()?).is_some() {
                        return Err(de::Error::custom(format!("duplicate additional configuration `{key}`")));
                    }
                }
                let status = status.ok_or_else(|| de::Error::missing_field("status"))?;
                Ok(FeatureSetting { status, additional })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuarddutyDetector {
    /// Whether the detector is enabled (detector status ENABLED).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Protection plans by feature name. Only the features named are compared.
    #[serde(default)]
    pub features: Option<BTreeMap<FeatureName, FeatureSetting>>,
    /// The detector found, once observed.
    #[serde(skip)]
    pub detector_id: Option<String>,
}

/// The detector of the region, if there is one (GuardDuty allows one per region).
async fn detector_id(cx: &Cx<'_>) -> Result<Option<String>, AwsError> {
    let gd = cx.session.guardduty(cx.region);
    let mut token = None;
    loop {
        let out = cx.session.call(gd.list_detectors().set_next_token(token).send()).await?;
        if let Some(id) = out.detector_ids().first() {
            return Ok(Some(id.clone()));
        }
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(None),
        }
    }
}

impl GuarddutyDetector {
    /// The request's feature configurations: every feature desired names (`only`: just these).
    fn configurations(&self, only: Option<&[&FeatureName]>) -> Vec<DetectorFeatureConfiguration> {
        self.features
            .iter()
            .flatten()
            .filter(|(name, _)| only.is_none_or(|o| o.contains(name)))
            .map(|(name, setting)| {
                let extra: Vec<DetectorAdditionalConfiguration> = setting
                    .additional
                    .iter()
                    .map(|(n, st)| {
                        DetectorAdditionalConfiguration::builder()
                            .name(FeatureAdditionalConfiguration::from(n.as_str()))
                            .status(st.aws())
                            .build()
                    })
                    .collect();
                DetectorFeatureConfiguration::builder()
                    .name(DetectorFeature::from(name.0.as_str()))
                    .status(setting.status.aws())
                    .set_additional_configuration((!extra.is_empty()).then_some(extra))
                    .build()
            })
            .collect()
    }

    async fn id_of(&self, cx: &Cx<'_>) -> Result<String, AwsError> {
        match &self.detector_id {
            Some(id) => Ok(id.clone()),
            None => detector_id(cx)
                .await?
                .ok_or_else(|| AwsError::new("ResourceNotFound", format!("no GuardDuty detector in {}", cx.region))),
        }
    }
}

impl ResourceType for GuarddutyDetector {
    const KIND: &'static str = "guardduty_detector";
    const DEFAULT_SCOPE: Scope = Scope::All;
    const TAGGABLE: bool = true;
    const OWNERSHIP: Ownership = Ownership::Tag;

    fn name(&self) -> String {
        "account".into()
    }

    async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let Some(id) = detector_id(cx).await? else {
            return Ok(Observation::Absent { quota: None });
        };
        let gd = cx.session.guardduty(cx.region);
        let out = cx.session.call(gd.get_detector().detector_id(&id).send()).await?;
        let owner = owner_of(out.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())));
        // The observed features, in the shape desired state gives them: the features and
        // additional configurations it names, each `disabled` when GuardDuty lists it not.
        let features = self.features.as_ref().map(|want| {
            want.iter()
                .map(|(name, setting)| {
                    let got = out.features().iter().find(|f| f.name().map(|n| n.as_str()) == Some(name.0.as_str()));
                    let additional = setting
                        .additional
                        .keys()
                        .map(|n| {
                            let status = got
                                .and_then(|f| {
                                    f.additional_configuration()
                                        .iter()
                                        .find(|c| c.name().map(|x| x.as_str()) == Some(n.as_str()))
                                })
                                .and_then(|c| c.status());
                            (n.clone(), Status::from_aws(status))
                        })
                        .collect();
                    let setting = FeatureSetting { status: Status::from_aws(got.and_then(|f| f.status())), additional };
                    (name.clone(), setting)
                })
                .collect()
        });
        Ok(Observation::Present {
            state: GuarddutyDetector {
                enabled: Some(out.status() == Some(&DetectorStatus::Enabled)),
                features,
                detector_id: Some(id),
            },
            owner,
        })
    }

    async fn create(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let gd = cx.session.guardduty(cx.region);
        cx.session
            .call(
                gd.create_detector()
                    .enable(self.enabled.unwrap_or(true))
                    .set_features(Some(self.configurations(None)).filter(|f| !f.is_empty()))
                    .tags(OWNER_TAG_KEY, tag.as_str())
                    .send(),
            )
            .await?;
        Ok(())
    }

    async fn update(&self, cx: &Cx<'_>, observed: &Self) -> Result<(), AwsError> {
        let enable = self.enabled.filter(|e| Some(*e) != observed.enabled);
        let seen = observed.features.clone().unwrap_or_default();
        // GuardDuty updates only the features (and additional configurations) a request
        // names, so only those that differ are sent.
        let differing: Vec<&FeatureName> =
            self.features.iter().flatten().filter(|(n, s)| seen.get(*n) != Some(*s)).map(|(n, _)| n).collect();
        if enable.is_none() && differing.is_empty() {
            return Ok(());
        }
        let features = self.configurations(Some(&differing));
        let id = match &observed.detector_id {
            Some(id) => id.clone(),
            None => observed.id_of(cx).await?,
        };
        let gd = cx.session.guardduty(cx.region);
        cx.session
            .call(
                gd.update_detector()
                    .detector_id(id)
                    .set_enable(enable)
                    .set_features((!features.is_empty()).then_some(features))
                    .send(),
            )
            .await?;
        Ok(())
    }

    async fn delete(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
        let id = match &self.detector_id {
            Some(id) => id.clone(),
            None => match detector_id(cx).await? {
                Some(id) => id,
                None => return Ok(()),
            },
        };
        let gd = cx.session.guardduty(cx.region);
        cx.session.call(gd.delete_detector().detector_id(id).send()).await?;
        Ok(())
    }

    async fn retag(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let id = self.id_of(cx).await?;
        let arn = format!(
            "arn:{}:guardduty:{}:{}:detector/{id}",
            crate::desired::resolve::partition_of(cx.region),
            cx.region,
            cx.account_id
        );
        let gd = cx.session.guardduty(cx.region);
        cx.session.call(gd.tag_resource().resource_arn(arn).tags(OWNER_TAG_KEY, tag.as_str()).send()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_settings_read_as_a_word_or_a_mapping_and_round_trip() {
        let d: GuarddutyDetector = serde_yaml::from_str(
            "enabled: true\nfeatures:\n  S3_DATA_EVENTS: enabled\n  \
             RUNTIME_MONITORING: {status: enabled, EKS_ADDON_MANAGEMENT: enabled}\n",
        )
        .unwrap();
        let f = d.features.as_ref().unwrap();
        assert_eq!(f[&FeatureName("S3_DATA_EVENTS".into())].status, Status::Enabled);
        let rm = &f[&FeatureName("RUNTIME_MONITORING".into())];
        assert_eq!(rm.additional["EKS_ADDON_MANAGEMENT"], Status::Enabled);
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["features"]["S3_DATA_EVENTS"], "enabled");
        assert_eq!(json["features"]["RUNTIME_MONITORING"]["status"], "enabled");
        let back: GuarddutyDetector = serde_json::from_value(json).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn unknown_names_and_a_missing_status_are_rejected_with_hints() {
        let e = serde_yaml::from_str::<GuarddutyDetector>("features: {S3_DATA_EVENT: enabled}").unwrap_err();
        assert!(e.to_string().contains("did you mean S3_DATA_EVENTS?"), "{e}");
        let e = serde_yaml::from_str::<GuarddutyDetector>(
            "features: {RUNTIME_MONITORING: {EKS_ADDON_MANAGEMENT: enabled}}",
        )
        .unwrap_err();
        assert!(e.to_string().contains("missing field `status`"), "{e}");
        let e = serde_yaml::from_str::<GuarddutyDetector>(
            "features: {RUNTIME_MONITORING: {status: enabled, EKS_ADDON: enabled}}",
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown GuardDuty additional configuration `EKS_ADDON`"), "{e}");
        let e = serde_yaml::from_str::<GuarddutyDetector>("features: {S3_DATA_EVENTS: on}").unwrap_err();
        assert!(e.to_string().contains("unknown variant `on`"), "{e}");
    }

    #[test]
    fn only_differing_features_are_sent() {
        let d: GuarddutyDetector =
            serde_yaml::from_str("features: {S3_DATA_EVENTS: enabled, RDS_LOGIN_EVENTS: enabled}").unwrap();
        let only = [&FeatureName("RDS_LOGIN_EVENTS".into())];
        let c = d.configurations(Some(&only));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].name(), Some(&DetectorFeature::RdsLoginEvents));
        assert_eq!(d.configurations(None).len(), 2);
    }
}
