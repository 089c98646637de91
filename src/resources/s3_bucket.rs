//! `s3_bucket`: an S3 bucket and every setting the baseline keeps on it (F07, F08): public
//! access block, versioning, default encryption, object lock, lifecycle, requester pays and
//! bucket policy. Only the settings desired state names are read and compared.

use super::{owner_of, Cx, Observation, Ownership, Quota, ResourceType, Scope};
use crate::aws::{code_of, AwsError};
use crate::desired::names::{OwnerTag, OWNER_TAG_KEY};
use crate::desired::policy::PolicyDoc;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus,
    CreateBucketConfiguration, DefaultRetention, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule, Payer,
    PublicAccessBlockConfiguration, RequestPaymentConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging, VersioningConfiguration,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// SSE-S3 (AES256).
    SseS3,
    /// SSE-KMS with `kms_key`.
    SseKms,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encryption {
    pub algorithm: Algorithm,
    #[serde(default)]
    pub kms_key: Option<String>,
    #[serde(default)]
    pub bucket_key: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectLock {
    /// `COMPLIANCE` or `GOVERNANCE`.
    pub mode: String,
    #[serde(default)]
    pub days: Option<i32>,
    #[serde(default)]
    pub years: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lifecycle {
    /// Delete current objects this many days after creation.
    #[serde(default)]
    pub expiration_days: Option<i32>,
    /// Delete noncurrent versions this many days after they become noncurrent.
    #[serde(default)]
    pub noncurrent_expiration_days: Option<i32>,
    /// Abort incomplete multipart uploads after this many days.
    #[serde(default)]
    pub abort_incomplete_multipart_days: Option<i32>,
    /// Remove a delete marker once no noncurrent version is left behind it. AWS refuses
    /// this beside `Days` in one rule, so it is a second rule, id
    /// `cm-baseline-delete-markers`; `false` removes that rule.
    #[serde(default)]
    pub expired_object_delete_marker: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Bucket {
    pub name: String,
    #[serde(default)]
    pub public_access_block: Option<PublicAccessBlock>,
    #[serde(default)]
    pub versioning: Option<bool>,
    #[serde(default)]
    pub encryption: Option<Encryption>,
    #[serde(default)]
    pub object_lock: Option<ObjectLock>,
    /// The rule `cm-baseline`, and `cm-baseline-delete-markers` for
    /// `expired_object_delete_marker` (rules of other ids are the customer's).
    #[serde(default)]
    pub lifecycle: Option<Lifecycle>,
    #[serde(default)]
    pub requester_pays: Option<bool>,
    #[serde(default)]
    pub policy: Option<PolicyDoc>,
}

const LIFECYCLE_RULE_ID: &str = "cm-baseline";
/// The rule that removes expired delete markers: AWS takes `ExpiredObjectDeleteMarker` only
/// in a rule without `Days`.
const MARKER_RULE_ID: &str = "cm-baseline-delete-markers";

/// Our lifecycle rules among a bucket's, read back into one [`Lifecycle`]; `None` when
/// neither is there.
fn lifecycle_of(rules: &[LifecycleRule]) -> Option<Lifecycle> {
    let main = rules.iter().find(|r| r.id() == Some(LIFECYCLE_RULE_ID));
    let marker = rules.iter().find(|r| r.id() == Some(MARKER_RULE_ID));
    if main.is_none() && marker.is_none() {
        return None;
    }
    let enabled = |r: &&LifecycleRule| r.status() == &ExpirationStatus::Enabled;
    let main = main.filter(enabled);
    Some(Lifecycle {
        expiration_days: main.and_then(|r| r.expiration()).and_then(|e| e.days()),
        noncurrent_expiration_days: main
            .and_then(|r| r.noncurrent_version_expiration())
            .and_then(|e| e.noncurrent_days()),
        abort_incomplete_multipart_days: main
            .and_then(|r| r.abort_incomplete_multipart_upload())
            .and_then(|a| a.days_after_initiation()),
        expired_object_delete_marker: Some(
            marker.filter(enabled).and_then(|r| r.expiration()).and_then(|e| e.expired_object_delete_marker())
                == Some(true),
        ),
    })
}

fn missing(e: &Option<&str>, codes: &[&str]) -> bool {
    e.map(|c| codes.contains(&c)).unwrap_or(false)
}

fn build_err(e: impl std::fmt::Display) -> AwsError {
    AwsError::new("construction", e.to_string())
}

impl S3Bucket {
    async fn tags(&self, cx: &Cx<'_>) -> Result<Vec<(String, String)>, AwsError> {
        let s3 = cx.session.s3(cx.region);
        match cx.session.call(s3.get_bucket_tagging().bucket(&self.name).send()).await {
            Ok(out) => Ok(out.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()),
            Err(e) if missing(&code_of(&e), &["NoSuchTagSet"]) => Ok(vec![]),
            Err(e) => Err(e.into()),
        }
    }

    async fn put_tags(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        // PutBucketTagging replaces the whole set: keep the customer's other tags.
        let mut tags: Vec<(String, String)> =
            self.tags(cx).await?.into_iter().filter(|(k, _)| k != OWNER_TAG_KEY).collect();
        tags.push((OWNER_TAG_KEY.into(), tag.as_str().into()));
        let set = tags
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(build_err))
            .collect::<Result<Vec<_>, _>>()?;
        let tagging = Tagging::builder().set_tag_set(Some(set)).build().map_err(build_err)?;
        let s3 = cx.session.s3(cx.region);
        cx.session.call(s3.put_bucket_tagging().bucket(&self.name).tagging(tagging).send()).await?;
        Ok(())
    }
}

impl ResourceType for S3Bucket {
    const KIND: &'static str = "s3_bucket";
    const DEFAULT_SCOPE: Scope = Scope::Home;
    const TAGGABLE: bool = true;
    const OWNERSHIP: Ownership = Ownership::Tag;

    fn name(&self) -> String {
        self.name.clone()
    }

    async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let s3 = cx.session.s3(cx.region);
        // Every bucket of the account, listed once per observation (all pages).
        let names: Vec<String> = cx
            .session
            .memo("s3:ListBuckets", || async {
                let mut names = vec![];
                let mut token = None;
                loop {
                    let out = cx.session.call(s3.list_buckets().set_continuation_token(token).send()).await?;
                    names.extend(out.buckets().iter().filter_map(|b| b.name().map(str::to_string)));
                    token = out.continuation_token;
                    if token.is_none() {
                        return Ok(names);
                    }
                }
            })
            .await?;
        if !names.iter().any(|n| n == &self.name) {
            let quota = Quota {
                name: "S3 buckets per account".into(),
                used: names.len(),
                limit: cx.quotas.buckets_per_account,
            };
            return Ok(Observation::Absent { quota: Some(quota) });
        }
        let b = self.name.as_str();
        // The tags and each setting are read at once: none of these reads depends on another.
        let owner = async { Ok(owner_of(self.tags(cx).await?.iter().map(|(k, v)| (k.as_str(), v.as_str())))) };
        let public_access_block = async {
            if self.public_access_block.is_none() {
                return Ok(None);
            }
            match cx.session.call(s3.get_public_access_block().bucket(b).send()).await {
                Ok(out) => {
                    let p = out.public_access_block_configuration;
                    let p = p.as_ref();
                    Ok(Some(PublicAccessBlock {
                        block_public_acls: p.and_then(|p| p.block_public_acls()).unwrap_or(false),
                        ignore_public_acls: p.and_then(|p| p.ignore_public_acls()).unwrap_or(false),
                        block_public_policy: p.and_then(|p| p.block_public_policy()).unwrap_or(false),
                        restrict_public_buckets: p.and_then(|p| p.restrict_public_buckets()).unwrap_or(false),
                    }))
                }
                Err(e) if missing(&code_of(&e), &["NoSuchPublicAccessBlockConfiguration"]) => {
                    Ok(Some(PublicAccessBlock::default()))
                }
                Err(e) => Err(AwsError::from(e)),
            }
        };
        let versioning = async {
            if self.versioning.is_none() {
                return Ok(None);
            }
            let out = cx.session.call(s3.get_bucket_versioning().bucket(b).send()).await?;
            Ok(Some(out.status() == Some(&BucketVersioningStatus::Enabled)))
        };
        let encryption = async {
            let Some(want) = &self.encryption else { return Ok(None) };
            match cx.session.call(s3.get_bucket_encryption().bucket(b).send()).await {
                Ok(out) => {
                    let rule = out.server_side_encryption_configuration().and_then(|c| c.rules().first());
                    let default = rule.and_then(|r| r.apply_server_side_encryption_by_default());
                    let algorithm = match default.map(|d| d.sse_algorithm()) {
                        Some(ServerSideEncryption::AwsKms) | Some(ServerSideEncryption::AwsKmsDsse) => {
                            Algorithm::SseKms
                        }
                        _ => Algorithm::SseS3,
                    };
                    let got_key = default.and_then(|d| d.kms_master_key_id()).map(str::to_string);
                    let kms_key = match (&want.kms_key, got_key) {
                        (Some(w), Some(g)) if super::kms_key::same_key(cx, w, &g).await? => Some(w.clone()),
                        (_, g) => g,
                    };
                    Ok(Some(Encryption {
                        algorithm,
                        kms_key,
                        bucket_key: Some(rule.and_then(|r| r.bucket_key_enabled()).unwrap_or(false)),
                    }))
                }
                Err(e) if missing(&code_of(&e), &["ServerSideEncryptionConfigurationNotFoundError"]) => Ok(None),
                Err(e) => Err(AwsError::from(e)),
            }
        };
        let object_lock = async {
            if self.object_lock.is_none() {
                return Ok(None);
            }
            match cx.session.call(s3.get_object_lock_configuration().bucket(b).send()).await {
                Ok(out) => {
                    Ok(out.object_lock_configuration().and_then(|c| c.rule()).and_then(|r| r.default_retention()).map(
                        |d| ObjectLock {
                            mode: d.mode().map(|m| m.as_str().to_string()).unwrap_or_default(),
                            // Zero is not a valid retention: it means the other unit is used.
                            days: d.days().filter(|d| *d > 0),
                            years: d.years().filter(|y| *y > 0),
                        },
                    ))
                }
                Err(e) if missing(&code_of(&e), &["ObjectLockConfigurationNotFoundError"]) => Ok(None),
                Err(e) => Err(AwsError::from(e)),
            }
        };
        let lifecycle = async {
            if self.lifecycle.is_none() {
                return Ok(None);
            }
            match cx.session.call(s3.get_bucket_lifecycle_configuration().bucket(b).send()).await {
                Ok(out) => Ok(lifecycle_of(out.rules())),
                Err(e) if missing(&code_of(&e), &["NoSuchLifecycleConfiguration"]) => Ok(None),
                Err(e) => Err(AwsError::from(e)),
            }
        };
        let requester_pays = async {
            if self.requester_pays.is_none() {
                return Ok(None);
            }
            let out = cx.session.call(s3.get_bucket_request_payment().bucket(b).send()).await?;
            Ok(Some(out.payer() == Some(&Payer::Requester)))
        };
        let policy = async {
            if self.policy.is_none() {
                return Ok(None);
            }
            match cx.session.call(s3.get_bucket_policy().bucket(b).send()).await {
                Ok(out) => Ok(Some(
                    PolicyDoc::from_aws(out.policy().unwrap_or("{}")).map_err(|e| AwsError::new("response", e))?,
                )),
                Err(e) if missing(&code_of(&e), &["NoSuchBucketPolicy"]) => Ok(None),
                Err(e) => Err(AwsError::from(e)),
            }
        };
        let (owner, public_access_block, versioning, encryption, object_lock, lifecycle, requester_pays, policy) = futures::try_join!(
            owner,
            public_access_block,
            versioning,
            encryption,
            object_lock,
            lifecycle,
            requester_pays,
            policy
        )?;
        let seen = S3Bucket {
            name: self.name.clone(),
            public_access_block,
            versioning,
            encryption,
            object_lock,
            lifecycle,
            requester_pays,
            policy,
        };
        Ok(Observation::Present { state: seen, owner })
    }

    async fn create(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let s3 = cx.session.s3(cx.region);
        let mut req = s3.create_bucket().bucket(&self.name);
        if cx.region != "us-east-1" {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(cx.region))
                    .build(),
            );
        }
        if self.object_lock.is_some() {
            req = req.object_lock_enabled_for_bucket(true);
        }
        cx.session.call(req.send()).await?;
        self.put_tags(cx, tag).await?;
        self.update(cx, &S3Bucket { name: self.name.clone(), ..Default::default() }).await
    }

    async fn update(&self, cx: &Cx<'_>, observed: &Self) -> Result<(), AwsError> {
        let s3 = cx.session.s3(cx.region);
        let b = self.name.as_str();
        if let Some(p) = &self.public_access_block {
            if Some(p) != observed.public_access_block.as_ref() {
                let conf = PublicAccessBlockConfiguration::builder()
                    .block_public_acls(p.block_public_acls)
                    .ignore_public_acls(p.ignore_public_acls)
                    .block_public_policy(p.block_public_policy)
                    .restrict_public_buckets(p.restrict_public_buckets)
                    .build();
                cx.session
                    .call(s3.put_public_access_block().bucket(b).public_access_block_configuration(conf).send())
                    .await?;
            }
        }
        if let Some(v) = self.versioning {
            if Some(v) != observed.versioning {
                let status = if v { BucketVersioningStatus::Enabled } else { BucketVersioningStatus::Suspended };
                let conf = VersioningConfiguration::builder().status(status).build();
                cx.session.call(s3.put_bucket_versioning().bucket(b).versioning_configuration(conf).send()).await?;
            }
        }
        if let Some(enc) = &self.encryption {
            if Some(enc) != observed.encryption.as_ref() {
                let algorithm = match enc.algorithm {
                    Algorithm::SseS3 => ServerSideEncryption::Aes256,
                    Algorithm::SseKms => ServerSideEncryption::AwsKms,
                };
                let default = ServerSideEncryptionByDefault::builder()
                    .sse_algorithm(algorithm)
                    .set_kms_master_key_id(enc.kms_key.clone())
                    .build()
                    .map_err(build_err)?;
                let rule = ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(default)
                    .set_bucket_key_enabled(enc.bucket_key)
                    .build();
                let conf = ServerSideEncryptionConfiguration::builder().rules(rule).build().map_err(build_err)?;
                cx.session
                    .call(s3.put_bucket_encryption().bucket(b).server_side_encryption_configuration(conf).send())
                    .await?;
            }
        }
        if let Some(lock) = &self.object_lock {
            if Some(lock) != observed.object_lock.as_ref() {
                let retention = DefaultRetention::builder()
                    .mode(ObjectLockRetentionMode::from(lock.mode.as_str()))
                    .set_days(lock.days)
                    .set_years(lock.years)
                    .build();
                let conf = ObjectLockConfiguration::builder()
                    .object_lock_enabled(ObjectLockEnabled::Enabled)
                    .rule(ObjectLockRule::builder().default_retention(retention).build())
                    .build();
                cx.session
                    .call(s3.put_object_lock_configuration().bucket(b).object_lock_configuration(conf).send())
                    .await?;
            }
        }
        if let Some(lc) = &self.lifecycle {
            if Some(lc) != observed.lifecycle.as_ref() {
                self.put_lifecycle(cx, lc).await?;
            }
        }
        if let Some(rp) = self.requester_pays {
            if Some(rp) != observed.requester_pays {
                let payer = if rp { Payer::Requester } else { Payer::BucketOwner };
                let conf = RequestPaymentConfiguration::builder().payer(payer).build().map_err(build_err)?;
                cx.session
                    .call(s3.put_bucket_request_payment().bucket(b).request_payment_configuration(conf).send())
                    .await?;
            }
        }
        if let Some(p) = &self.policy {
            if Some(p) != observed.policy.as_ref() {
                cx.session.call(s3.put_bucket_policy().bucket(b).policy(p.to_json_string()).send()).await?;
            }
        }
        Ok(())
    }

    async fn delete(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
        let s3 = cx.session.s3(cx.region);
        cx.session.call(s3.delete_bucket().bucket(&self.name).send()).await?;
        Ok(())
    }

    async fn retag(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        self.put_tags(cx, tag).await
    }
}

impl S3Bucket {
    /// Writes our lifecycle rules, keeping rules of other ids (the customer's).
    async fn put_lifecycle(&self, cx: &Cx<'_>, lc: &Lifecycle) -> Result<(), AwsError> {
        let s3 = cx.session.s3(cx.region);
        let b = self.name.as_str();
        let mut rules: Vec<LifecycleRule> =
            match cx.session.call(s3.get_bucket_lifecycle_configuration().bucket(b).send()).await {
                Ok(out) => out
                    .rules()
                    .iter()
                    .filter(|r| r.id() != Some(LIFECYCLE_RULE_ID))
                    .filter(|r| r.id() != Some(MARKER_RULE_ID) || lc.expired_object_delete_marker.is_none())
                    .cloned()
                    .collect(),
                Err(e) if missing(&code_of(&e), &["NoSuchLifecycleConfiguration"]) => vec![],
                Err(e) => return Err(e.into()),
            };
        let mut rule = LifecycleRule::builder()
            .id(LIFECYCLE_RULE_ID)
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix("").build());
        if let Some(d) = lc.expiration_days {
            rule = rule.expiration(LifecycleExpiration::builder().days(d).build());
        }
        if let Some(d) = lc.noncurrent_expiration_days {
            rule = rule.noncurrent_version_expiration(
                aws_sdk_s3::types::NoncurrentVersionExpiration::builder().noncurrent_days(d).build(),
            );
        }
        if let Some(d) = lc.abort_incomplete_multipart_days {
            rule = rule.abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder().days_after_initiation(d).build(),
            );
        }
        rules.push(rule.build().map_err(build_err)?);
        if lc.expired_object_delete_marker == Some(true) {
            rules.push(
                LifecycleRule::builder()
                    .id(MARKER_RULE_ID)
                    .status(ExpirationStatus::Enabled)
                    .filter(LifecycleRuleFilter::builder().prefix("").build())
                    .expiration(LifecycleExpiration::builder().expired_object_delete_marker(true).build())
                    .build()
                    .map_err(build_err)?,
            );
        }
        let conf = BucketLifecycleConfiguration::builder().set_rules(Some(rules)).build().map_err(build_err)?;
        cx.session.call(s3.put_bucket_lifecycle_configuration().bucket(b).lifecycle_configuration(conf).send()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, expiration: LifecycleExpiration) -> LifecycleRule {
        LifecycleRule::builder()
            .id(id)
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix("").build())
            .expiration(expiration)
            .build()
            .expect("a rule with a status")
    }

    #[test]
    fn the_former_rule_reads_as_lacking_the_noncurrent_expiry_and_the_marker_rule() {
        let former = rule(LIFECYCLE_RULE_ID, LifecycleExpiration::builder().days(1095).build());
        let theirs = rule("customer", LifecycleExpiration::builder().expired_object_delete_marker(true).build());
        let seen = lifecycle_of(&[former, theirs.clone()]).expect("our rule is there");
        assert_eq!(seen.expiration_days, Some(1095));
        assert_eq!(seen.noncurrent_expiration_days, None);
        assert_eq!(seen.expired_object_delete_marker, Some(false), "the customer's rule is not ours");
        assert_eq!(lifecycle_of(&[theirs]), None);
        let marker = rule(MARKER_RULE_ID, LifecycleExpiration::builder().expired_object_delete_marker(true).build());
        assert_eq!(lifecycle_of(&[marker]).and_then(|l| l.expired_object_delete_marker), Some(true));
    }
}
