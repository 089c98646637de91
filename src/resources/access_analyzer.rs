//! `access_analyzer`: an IAM Access Analyzer analyzer of a region and the archive rules the
//! baseline keeps on it (F06). Archive rules cannot carry tags: they belong to the analyzer.
//! Only the rules desired state names are read, compared and changed; any other rule on
//! the analyzer is the customer's and left alone.

use super::{owner_of, Cx, Observation, Ownership, ResourceType, Scope};
use crate::aws::{code_of, AwsError};
use crate::desired::names::{did_you_mean, OwnerTag, OWNER_TAG_KEY};
use aws_sdk_accessanalyzer::types::{Criterion as AwsCriterion, InlineArchiveRule, Type};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// One criterion of an archive rule's filter, as the Access Analyzer API has it. The lists
/// are sets: their order does not matter.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    #[serde(default)]
    pub eq: Option<BTreeSet<String>>,
    #[serde(default)]
    pub neq: Option<BTreeSet<String>>,
    #[serde(default)]
    pub contains: Option<BTreeSet<String>>,
    #[serde(default)]
    pub exists: Option<bool>,
}

impl Criterion {
    fn aws(&self) -> AwsCriterion {
        let list = |v: &Option<BTreeSet<String>>| v.as_ref().map(|s| s.iter().cloned().collect::<Vec<_>>());
        AwsCriterion::builder()
            .set_eq(list(&self.eq))
            .set_neq(list(&self.neq))
            .set_contains(list(&self.contains))
            .set_exists(self.exists)
            .build()
    }
    fn from_aws(c: &AwsCriterion) -> Self {
        let set = |v: &[String]| (!v.is_empty()).then(|| v.iter().cloned().collect::<BTreeSet<_>>());
        Criterion { eq: set(c.eq()), neq: set(c.neq()), contains: set(c.contains()), exists: c.exists() }
    }
}

/// A filter: criteria by finding property (`resource`, `resourceType`, `isPublic`, ...).
pub type Filter = BTreeMap<String, Criterion>;

/// An archive rule named in desired state: its filter, or `absent` (a rule this baseline
/// made and now retires; observed: the rule does not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveRule {
    Filter(Filter),
    Absent,
}

impl Serialize for ArchiveRule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ArchiveRule::Filter(f) => f.serialize(s),
            ArchiveRule::Absent => s.serialize_str("absent"),
        }
    }
}

impl<'de> Deserialize<'de> for ArchiveRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ArchiveRule;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a filter (a mapping of criteria) or `absent`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ArchiveRule, E> {
                match v {
                    "absent" => Ok(ArchiveRule::Absent),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ArchiveRule, A::Error> {
                let mut filter = Filter::new();
                while let Some(key) = map.next_key::<String>()? {
                    let c: Criterion = map.next_value()?;
                    if c == Criterion::default() {
                        return Err(de::Error::custom(format!(
                            "criterion `{key}` needs at least one of eq, neq, contains, exists"
                        )));
                    }
                    filter.insert(key, c);
                }
                if filter.is_empty() {
                    return Err(de::Error::custom("an archive rule's filter needs at least one criterion"));
                }
                Ok(ArchiveRule::Filter(filter))
            }
        }
        d.deserialize_any(V)
    }
}

fn analyzer_type<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if Type::values().contains(&s.as_str()) {
        return Ok(s);
    }
    let hint = match did_you_mean(&s, Type::values().iter().copied()) {
        Some(m) => format!("did you mean {m}?"),
        None => format!("one of {}", Type::values().join(", ")),
    };
    Err(de::Error::custom(format!("unknown analyzer type `{s}`; hint: {hint}")))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessAnalyzer {
    pub name: String,
    /// `ACCOUNT`, `ORGANIZATION`, ...: set when the analyzer is created; AWS cannot change it.
    #[serde(rename = "type", deserialize_with = "analyzer_type")]
    pub analyzer_type: String,
    /// Archive rules by name. Only these are compared; other rules are left alone.
    #[serde(default)]
    pub archive_rules: Option<BTreeMap<String, ArchiveRule>>,
}

fn filter_map(f: &Filter) -> HashMap<String, AwsCriterion> {
    f.iter().map(|(k, c)| (k.clone(), c.aws())).collect()
}

impl AccessAnalyzer {
    /// Absent under its name: AWS allows one analyzer of a type per account and region, so
    /// another of the same type (the customer's) takes the place.
    async fn other_of_type(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let aa = cx.session.accessanalyzer(cx.region);
        let kind = Type::from(self.analyzer_type.as_str());
        let out = cx.session.call(aa.list_analyzers().r#type(kind).send()).await?;
        Ok(match out.analyzers().iter().find(|a| a.name() != self.name) {
            Some(a) => {
                Observation::Occupied { by: format!("{} analyzer {}", self.analyzer_type, a.name()), state: None }
            }
            None => Observation::Absent { quota: None },
        })
    }
}

impl ResourceType for AccessAnalyzer {
    const KIND: &'static str = "access_analyzer";
    const DEFAULT_SCOPE: Scope = Scope::All;
    const TAGGABLE: bool = true;
    const OWNERSHIP: Ownership = Ownership::Tag;

    fn name(&self) -> String {
        self.name.clone()
    }

    async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let aa = cx.session.accessanalyzer(cx.region);
        let analyzer = match cx.session.call(aa.get_analyzer().analyzer_name(&self.name).send()).await {
            Ok(out) => out.analyzer,
            Err(e) if code_of(&e) == Some("ResourceNotFoundException") => return self.other_of_type(cx).await,
            Err(e) => return Err(e.into()),
        };
        let Some(analyzer) = analyzer else {
            return self.other_of_type(cx).await;
        };
        let owner = owner_of(analyzer.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())));
        let archive_rules = match &self.archive_rules {
            None => None,
            Some(want) => {
                let mut seen: BTreeMap<String, Filter> = BTreeMap::new();
                let mut token = None;
                loop {
                    let out = cx
                        .session
                        .call(aa.list_archive_rules().analyzer_name(&self.name).set_next_token(token).send())
                        .await?;
                    for r in out.archive_rules() {
                        let filter = r.filter().iter().map(|(k, c)| (k.clone(), Criterion::from_aws(c))).collect();
                        seen.insert(r.rule_name().to_string(), filter);
                    }
                    match out.next_token() {
                        Some(t) if !t.is_empty() => token = Some(t.to_string()),
                        _ => break,
                    }
                }
                Some(
                    want.keys()
                        .map(|n| {
                            let rule = seen.remove(n).map(ArchiveRule::Filter).unwrap_or(ArchiveRule::Absent);
                            (n.clone(), rule)
                        })
                        .collect(),
                )
            }
        };
        Ok(Observation::Present {
            state: AccessAnalyzer {
                name: self.name.clone(),
                analyzer_type: analyzer.r#type().as_str().to_string(),
                archive_rules,
            },
            owner,
        })
    }

    async fn create(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let aa = cx.session.accessanalyzer(cx.region);
        let mut rules = vec![];
        for (name, rule) in self.archive_rules.iter().flatten() {
            if let ArchiveRule::Filter(f) = rule {
                let r = InlineArchiveRule::builder()
                    .rule_name(name)
                    .set_filter(Some(filter_map(f)))
                    .build()
                    .map_err(|e| AwsError::new("construction", e.to_string()))?;
                rules.push(r);
            }
        }
        cx.session
            .call(
                aa.create_analyzer()
                    .analyzer_name(&self.name)
                    .r#type(Type::from(self.analyzer_type.as_str()))
                    .set_archive_rules((!rules.is_empty()).then_some(rules))
                    .tags(OWNER_TAG_KEY, tag.as_str())
                    .send(),
            )
            .await?;
        Ok(())
    }

    async fn update(&self, cx: &Cx<'_>, observed: &Self) -> Result<(), AwsError> {
        if self.analyzer_type != observed.analyzer_type {
            return Err(AwsError::new(
                "unsupported",
                format!(
                    "analyzer {} is of type {}, not {}: AWS cannot change an analyzer's type \
                     (delete it to have it recreated)",
                    self.name, observed.analyzer_type, self.analyzer_type
                ),
            ));
        }
        let aa = cx.session.accessanalyzer(cx.region);
        let seen = observed.archive_rules.clone().unwrap_or_default();
        for (name, want) in self.archive_rules.iter().flatten() {
            let got = seen.get(name);
            if got == Some(want) {
                continue;
            }
            match (want, got) {
                (ArchiveRule::Filter(f), None | Some(ArchiveRule::Absent)) => {
                    cx.session
                        .call(
                            aa.create_archive_rule()
                                .analyzer_name(&self.name)
                                .rule_name(name)
                                .set_filter(Some(filter_map(f)))
                                .send(),
                        )
                        .await?;
                }
                (ArchiveRule::Filter(f), Some(ArchiveRule::Filter(_))) => {
                    cx.session
                        .call(
                            aa.update_archive_rule()
                                .analyzer_name(&self.name)
                                .rule_name(name)
                                .set_filter(Some(filter_map(f)))
                                .send(),
                        )
                        .await?;
                }
                (ArchiveRule::Absent, _) => {
                    let out = cx
                        .session
                        .call(aa.delete_archive_rule().analyzer_name(&self.name).rule_name(name).send())
                        .await;
                    match out {
                        Err(e) if code_of(&e) == Some("ResourceNotFoundException") => {}
                        other => {
                            other?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn delete(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
        let aa = cx.session.accessanalyzer(cx.region);
        cx.session.call(aa.delete_analyzer().analyzer_name(&self.name).send()).await?;
        Ok(())
    }

    async fn retag(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let aa = cx.session.accessanalyzer(cx.region);
        let out = cx.session.call(aa.get_analyzer().analyzer_name(&self.name).send()).await?;
        let arn = out
            .analyzer()
            .map(|a| a.arn().to_string())
            .ok_or_else(|| AwsError::new("response", "GetAnalyzer returned no analyzer"))?;
        cx.session.call(aa.tag_resource().resource_arn(arn).tags(OWNER_TAG_KEY, tag.as_str()).send()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_rules_read_as_filters_or_absent_and_round_trip() {
        let a: AccessAnalyzer = serde_yaml::from_str(
            "name: cm-access-analyzer\ntype: ACCOUNT\narchive_rules:\n  A: {resource: {eq: [x, w]}}\n  B: absent\n",
        )
        .unwrap();
        let rules = a.archive_rules.as_ref().unwrap();
        let ArchiveRule::Filter(f) = &rules["A"] else { panic!("{rules:?}") };
        assert_eq!(f["resource"].eq.as_ref().unwrap().iter().collect::<Vec<_>>(), ["w", "x"]);
        assert_eq!(rules["B"], ArchiveRule::Absent);
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["archive_rules"]["B"], "absent");
        assert_eq!(json["type"], "ACCOUNT");
        assert_eq!(serde_json::from_value::<AccessAnalyzer>(json).unwrap(), a);
    }

    #[test]
    fn bad_types_rules_and_criteria_are_rejected() {
        let e = serde_yaml::from_str::<AccessAnalyzer>("name: a\ntype: ACOUNT\n").unwrap_err();
        assert!(e.to_string().contains("did you mean ACCOUNT?"), "{e}");
        let e =
            serde_yaml::from_str::<AccessAnalyzer>("name: a\ntype: ACCOUNT\narchive_rules: {A: gone}\n").unwrap_err();
        assert!(e.to_string().contains("`absent`"), "{e}");
        let e = serde_yaml::from_str::<AccessAnalyzer>("name: a\ntype: ACCOUNT\narchive_rules: {A: {resource: {}}}\n")
            .unwrap_err();
        assert!(e.to_string().contains("at least one of eq"), "{e}");
        let e = serde_yaml::from_str::<AccessAnalyzer>(
            "name: a\ntype: ACCOUNT\narchive_rules: {A: {resource: {equals: [x]}}}\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `equals`"), "{e}");
    }
}
