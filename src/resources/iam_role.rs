//! `iam_role`: an IAM role with its trust policy, managed and inline policies (F01, F15).

use super::{owner_of, Cx, Observation, Ownership, ResourceType, Scope};
use crate::aws::{code_of, AwsError};
use crate::desired::names::{OwnerTag, OWNER_TAG_KEY};
use crate::desired::policy::PolicyDoc;
use aws_sdk_iam::types::Tag;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamRole {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Who may assume the role.
    pub trust_policy: PolicyDoc,
    /// ARNs of attached managed policies: exactly these are kept attached (`[]`: none).
    /// Left out: attachments are not compared.
    #[serde(default)]
    pub managed_policies: Option<BTreeSet<String>>,
    /// Inline policies by name: exactly these are kept (`{}`: none). Left out: not compared.
    #[serde(default)]
    pub inline_policies: Option<BTreeMap<String, PolicyDoc>>,
    #[serde(default)]
    pub max_session_duration: Option<i32>,
}

fn owner_tag(tag: OwnerTag) -> Result<Tag, AwsError> {
    Tag::builder()
        .key(OWNER_TAG_KEY)
        .value(tag.as_str())
        .build()
        .map_err(|e| AwsError::new("construction", e.to_string()))
}

fn doc(text: &str) -> Result<PolicyDoc, AwsError> {
    PolicyDoc::from_aws(text).map_err(|e| AwsError::new("response", e))
}

impl ResourceType for IamRole {
    const KIND: &'static str = "iam_role";
    const DEFAULT_SCOPE: Scope = Scope::Global;
    const TAGGABLE: bool = true;
    const OWNERSHIP: Ownership = Ownership::Tag;

    fn name(&self) -> String {
        self.name.clone()
    }

    async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let iam = cx.session.iam();
        let role = match cx.session.call(iam.get_role().role_name(&self.name).send()).await {
            Ok(out) => out.role,
            Err(e) if code_of(&e) == Some("NoSuchEntity") => return Ok(Observation::Absent { quota: None }),
            Err(e) => return Err(e.into()),
        };
        let Some(role) = role else {
            return Ok(Observation::Absent { quota: None });
        };
        let owner = owner_of(role.tags().iter().map(|t| (t.key(), t.value())));
        let trust_policy = doc(role.assume_role_policy_document().unwrap_or("{}"))?;

        // The attached policies and the inline ones are read at once, each inline policy too.
        let managed_policies = async {
            let mut arns = BTreeSet::new();
            let mut marker = None;
            loop {
                let out = cx
                    .session
                    .call(iam.list_attached_role_policies().role_name(&self.name).set_marker(marker).send())
                    .await?;
                arns.extend(out.attached_policies().iter().filter_map(|p| p.policy_arn().map(str::to_string)));
                if !out.is_truncated() {
                    return Ok::<_, AwsError>(arns);
                }
                marker = out.marker;
            }
        };
        let inline_policies = async {
            let mut names = vec![];
            let mut marker = None;
            loop {
                let out =
                    cx.session.call(iam.list_role_policies().role_name(&self.name).set_marker(marker).send()).await?;
                names.extend(out.policy_names().iter().cloned());
                if !out.is_truncated() {
                    break;
                }
                marker = out.marker;
            }
            let docs = futures::future::try_join_all(names.into_iter().map(|n| async {
                let out = cx.session.call(iam.get_role_policy().role_name(&self.name).policy_name(&n).send()).await?;
                Ok::<_, AwsError>((n, doc(out.policy_document())?))
            }))
            .await?;
            Ok::<_, AwsError>(docs.into_iter().collect::<BTreeMap<_, _>>())
        };
        let (managed_policies, inline_policies) = futures::try_join!(managed_policies, inline_policies)?;
        Ok(Observation::Present {
            state: IamRole {
                name: self.name.clone(),
                description: Some(role.description().unwrap_or_default().to_string()),
                trust_policy,
                managed_policies: Some(managed_policies),
                inline_policies: Some(inline_policies),
                max_session_duration: role.max_session_duration(),
            },
            owner,
        })
    }

    async fn create(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let iam = cx.session.iam();
        cx.session
            .call(
                iam.create_role()
                    .role_name(&self.name)
                    .assume_role_policy_document(self.trust_policy.to_json_string())
                    .set_description(self.description.clone())
                    .set_max_session_duration(self.max_session_duration)
                    .tags(owner_tag(tag)?)
                    .send(),
            )
            .await?;
        let empty = IamRole {
            name: self.name.clone(),
            description: self.description.clone(),
            trust_policy: self.trust_policy.clone(),
            managed_policies: Some(BTreeSet::new()),
            inline_policies: Some(BTreeMap::new()),
            max_session_duration: self.max_session_duration,
        };
        self.update(cx, &empty).await
    }

    async fn update(&self, cx: &Cx<'_>, observed: &Self) -> Result<(), AwsError> {
        let iam = cx.session.iam();
        if self.trust_policy != observed.trust_policy {
            cx.session
                .call(
                    iam.update_assume_role_policy()
                        .role_name(&self.name)
                        .policy_document(self.trust_policy.to_json_string())
                        .send(),
                )
                .await?;
        }
        let desc_differs = self.description.is_some() && self.description != observed.description;
        let session_differs =
            self.max_session_duration.is_some() && self.max_session_duration != observed.max_session_duration;
        if desc_differs || session_differs {
            cx.session
                .call(
                    iam.update_role()
                        .role_name(&self.name)
                        .set_description(self.description.clone())
                        .set_max_session_duration(self.max_session_duration)
                        .send(),
                )
                .await?;
        }
        // Everything the role gains is given before anything it loses is taken away, so that
        // no moment leaves it (the member role above all) with less than either version.
        let no_arns = BTreeSet::new();
        let seen_managed = observed.managed_policies.as_ref().unwrap_or(&no_arns);
        let no_docs = BTreeMap::new();
        let seen_inline = observed.inline_policies.as_ref().unwrap_or(&no_docs);
        if let Some(want) = &self.managed_policies {
            for arn in want.difference(seen_managed) {
                cx.session.call(iam.attach_role_policy().role_name(&self.name).policy_arn(arn).send()).await?;
            }
        }
        if let Some(want_inline) = &self.inline_policies {
            for (n, d) in want_inline {
                if seen_inline.get(n) != Some(d) {
                    cx.session
                        .call(
                            iam.put_role_policy()
                                .role_name(&self.name)
                                .policy_name(n)
                                .policy_document(d.to_json_string())
                                .send(),
                        )
                        .await?;
                }
            }
        }
        if let Some(want) = &self.managed_policies {
            for arn in seen_managed.difference(want) {
                cx.session.call(iam.detach_role_policy().role_name(&self.name).policy_arn(arn).send()).await?;
            }
        }
        if let Some(want_inline) = &self.inline_policies {
            for n in seen_inline.keys().filter(|n| !want_inline.contains_key(*n)) {
                cx.session.call(iam.delete_role_policy().role_name(&self.name).policy_name(n).send()).await?;
            }
        }
        Ok(())
    }

    async fn delete(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
        let Observation::Present { state, .. } = self.observe(cx).await? else {
            return Ok(());
        };
        let iam = cx.session.iam();
        for arn in state.managed_policies.iter().flatten() {
            cx.session.call(iam.detach_role_policy().role_name(&self.name).policy_arn(arn).send()).await?;
        }
        for n in state.inline_policies.iter().flat_map(|m| m.keys()) {
            cx.session.call(iam.delete_role_policy().role_name(&self.name).policy_name(n).send()).await?;
        }
        cx.session.call(iam.delete_role().role_name(&self.name).send()).await?;
        Ok(())
    }

    async fn retag(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let iam = cx.session.iam();
        cx.session.call(iam.tag_role().role_name(&self.name).tags(owner_tag(tag)?).send()).await?;
        Ok(())
    }
}
