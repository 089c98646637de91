"""AWS Config (awsJson1_1, signing name `config`): PutDeliveryChannel refused, as AWS refuses
it, when AWS Config could not deliver to the channel's bucket. moto 5.2.5 accepts any bucket
name, existing or not, with any policy.

Runs only for requests moto would otherwise accept as far as the channel itself goes (a
recorder exists, the name is valid, no other channel holds the Region's one place, the
bucket name and prefix are not empty); everything else is moto's.

What AWS Config does (AWS Config Developer Guide, "Permissions for the Amazon S3 Bucket for
the AWS Config Delivery Channel", "Permissions for the IAM Role Assigned to AWS Config" and
"Permissions for the KMS Key"): before it accepts a channel it checks the bucket exists, reads
the bucket's ACL and writes a check file, `<prefix/>AWSLogs/<account>/Config/
ConfigWritabilityCheckFile`, with `x-amz-acl: bucket-owner-full-control` (and SSE-KMS with
the channel's key, `s3KmsKeyArn`, when it names one). It does so first as the recorder's IAM
role, then, when that is refused, as its service principal `config.amazonaws.com`:
- As the role (not for the service-linked role AWSServiceRoleForConfig, which has no S3
  permission: Config then uses its service principal only). A role Config cannot assume is
  refused before this module is asked, by iamtrust (400 InsufficientDeliveryPolicyException
  "... unable to assume role: <role ARN>", with IAM's propagation delay); a role moto does
  not hold (one the operator made outside the emulator) has permissions this module cannot
  read, so only the service principal's way is tried. The role needs s3:GetBucketAcl on the
  bucket and s3:PutObject and s3:PutObjectAcl on the check file (the guide's role policy grants both;
  setting an ACL on upload needs s3:PutObjectAcl), and with a key kms:GenerateDataKey and
  kms:Decrypt on it, each decided as AWS decides across the role's identity policies and the
  bucket or key policy (`policy.decide`: same account, either suffices for S3, a key policy
  must allow the role or its account; another account, both).
- As the service principal, from the bucket policy alone: s3:GetBucketAcl on the bucket,
  s3:PutObject on the check file (context: s3:x-amz-acl, aws:SourceAccount, aws:SourceArn =
  `arn:<partition>:config:<region>:<account>:*` as the guide gives it, TLS); with a key, the
  key policy must allow kms:GenerateDataKey and kms:Decrypt (context: the same source keys,
  encryption context aws:s3:arn). s3:ListBucket (the guide's
  "AWSConfigBucketExistenceCheck") is not required: the guide says delivery succeeds without
  it (the bucket-location check then only logs AccessDenied).
Refused when neither way works: 400 InsufficientDeliveryPolicyException, "Insufficient delivery
policy to s3 bucket: <bucket>, unable to get s3 bucket acl." when the service principal may
not read the ACL, else "Insufficient delivery policy to s3 bucket: <bucket>, unable to write
to bucket, provided s3 key prefix is '<prefix or null>', provided kms key is '<key or null>'."
(AWS's messages, as AWS's answers quote them).

Also: a bucket that does not exist, 400 NoSuchBucketException "Cannot find a S3 bucket with
name: <bucket>." (the code and status are the model's; AWS's exact wording unverified); an
`s3KmsKeyArn` that is not a KMS key or alias ARN, 400 InvalidS3KmsKeyArnException "The arn
'<value>' is not a valid kms key or alias arn." (moto's wording for an empty one); a key or
alias ARN that names no key cannot be written with (the write check fails). Not modelled: SNS
topics (`snsTopicARN`; the product sets none), S3 ACLs, Object Lock (which AWS Config does
not support on its bucket).
"""

from moto.config.models import config_backends

from . import delivery

SIGNING_NAMES = ("config",)
SERVICE = "config.amazonaws.com"


def reset():
    pass


def _error(code, message):
    return delivery.json_error("config", code, message)


def handle(req):
    if (req.header("X-Amz-Target") or "").rpartition(".")[2] != "PutDeliveryChannel":
        return None
    try:
        channel = req.json().get("DeliveryChannel")
    except (ValueError, AttributeError):
        return None
    if not isinstance(channel, dict):
        return None
    backend = config_backends[req.account][req.region]
    name, bucket_name = channel.get("name"), channel.get("s3BucketName")
    others = [n for n in backend.delivery_channels if n != name]
    if (not backend.recorders or not isinstance(name, str) or not name or len(name) > 256 or others
            or not isinstance(bucket_name, str) or not bucket_name or channel.get("s3KeyPrefix") == ""
            or channel.get("snsTopicARN") == "" or channel.get("s3KmsKeyArn") == ""):
        return None  # moto answers
    bucket = delivery.find_bucket(bucket_name)
    if bucket is None:
        return _error("NoSuchBucketException", f"Cannot find a S3 bucket with name: {bucket_name}.")
    kms = channel.get("s3KmsKeyArn")
    if kms is not None and not _is_kms_arn(kms):
        return _error("InvalidS3KmsKeyArnException", f"The arn '{kms}' is not a valid kms key or alias arn.")
    role_arn = next(iter(backend.recorders.values())).role_arn
    return check(req.account, req.region, bucket, channel.get("s3KeyPrefix"), kms, role_arn)


def _is_kms_arn(value):
    parts = value.split(":", 5) if isinstance(value, str) else []
    return len(parts) == 6 and parts[0] == "arn" and parts[2] == "kms" and parts[5].startswith(("key/", "alias/"))


def check_file(account, prefix):
    base = f"{prefix}/" if prefix else ""
    return f"{base}AWSLogs/{account}/Config/ConfigWritabilityCheckFile"


def check(account, region, bucket, prefix, kms, role_arn):
    """None when AWS Config can deliver to the bucket, else the error answer."""
    source_arn = f"arn:{delivery.partition(region)}:config:{region}:{account}:*"
    target = bucket.object_arn(check_file(account, prefix))
    key = delivery.find_key(kms) if kms else None
    kms_context = {"kms:EncryptionContext:aws:s3:arn": bucket.arn if bucket.bucket_key_kms() else target}
    put = {"s3:x-amz-acl": "bucket-owner-full-control"}
    if kms:
        put.update({"s3:x-amz-server-side-encryption": "aws:kms", "s3:x-amz-server-side-encryption-aws-kms-key-id": key.arn if key else kms})

    role = delivery.find_role(role_arn) if role_arn and not delivery.is_service_linked(role_arn) else None
    if role is not None and _role_delivers(role, bucket, target, put, key, kms, kms_context):
        return None

    def sp(action, resource, **context):
        return delivery.service_request(SERVICE, action, resource, account, source_arn, **context)

    if not delivery.resource_allows(bucket.policy, sp("s3:GetBucketAcl", bucket.arn)):
        return _error("InsufficientDeliveryPolicyException",
                      f"Insufficient delivery policy to s3 bucket: {bucket.name}, unable to get s3 bucket acl.")
    writes = delivery.resource_allows(bucket.policy, sp("s3:PutObject", target, **put))
    if kms:
        writes = writes and key is not None and key.enabled and all(
            delivery.resource_allows(key.policy, sp(action, key.arn, **kms_context)) for action in ("kms:GenerateDataKey", "kms:Decrypt"))
    if not writes:
        return _error("InsufficientDeliveryPolicyException",
                      f"Insufficient delivery policy to s3 bucket: {bucket.name}, unable to write to bucket, "
                      f"provided s3 key prefix is '{prefix or 'null'}', provided kms key is '{kms or 'null'}'.")
    return None


def _role_delivers(role, bucket, target, put, key, kms, kms_context):
    ids = role.identity_policies()

    def may(action, resource, document, owner, key_policy=False, **context):
        return delivery.decide(delivery.role_request(role, action, resource, **context), document, owner, ids, key_policy)

    if not may("s3:GetBucketAcl", bucket.arn, bucket.policy, bucket.account):
        return False
    if not all(may(action, target, bucket.policy, bucket.account, **put) for action in ("s3:PutObject", "s3:PutObjectAcl")):
        return False
    if kms:
        if key is None or not key.enabled:
            return False
        return all(may(action, key.arn, key.policy, key.account, key_policy=True, **kms_context)
                   for action in ("kms:GenerateDataKey", "kms:Decrypt"))
    return True
