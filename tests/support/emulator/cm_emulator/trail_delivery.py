"""AWS CloudTrail (awsJson1_1, signing name `cloudtrail`): CreateTrail and UpdateTrail refused,
as AWS refuses them, when CloudTrail could not deliver to the trail's bucket or encrypt with
its KMS key. moto 5.2.5 accepts any bucket policy (none at all) and any key.

Runs after the `cloudtrail` module (which has already replaced an alias KmsKeyId by the key's
ARN) and only for requests moto would otherwise accept as far as the trail itself goes: a
CreateTrail whose trail name is valid, an UpdateTrail of a trail that exists
and that names S3BucketName, S3KeyPrefix or KmsKeyId (the settings CloudTrail's delivery
depends on; AWS re-checks the bucket policy when the prefix changes). The configuration
checked is the trail's after the call: the request's values, else the trail's.

What CloudTrail does, and so what the policies must let it do (AWS CloudTrail User Guide,
"Amazon S3 bucket policy for CloudTrail" and "Configure AWS KMS key policies for
CloudTrail"). Every request is the service principal `cloudtrail.amazonaws.com` over TLS,
with `aws:SourceArn` = the trail's ARN (`arn:<partition>:cloudtrail:<region>:<account>:trail/
<name>`) and `aws:SourceAccount` = the trail's account:
- `s3:GetBucketAcl` on `arn:<partition>:s3:::<bucket>`;
- `s3:PutObject` of a log file, `<prefix/>AWSLogs/<account>/CloudTrail/<region>/...`, and with
  log file validation also of a digest file, `<prefix/>AWSLogs/<account>/CloudTrail-Digest/
  <region>/...`, with `s3:x-amz-acl` = `bucket-owner-full-control` (and, for a trail with a
  KMS key, `s3:x-amz-server-side-encryption` = `aws:kms` and
  `s3:x-amz-server-side-encryption-aws-kms-key-id` = the key's ARN).
  Read from the bucket's policy, wherever the bucket is (bucket names are global; a bucket of
  another account serves when its policy allows). Explicit Deny statements apply: a Deny of
  `aws:SecureTransport` false does not block CloudTrail, which uses TLS.
  Refused: 400 InsufficientS3BucketPolicyException
  "Incorrect S3 bucket policy is detected for bucket: <bucket>".
- With a KMS key, from the key policy (a service principal gets nothing from IAM policies):
  `kms:GenerateDataKey` with the encryption context `aws:cloudtrail:arn` = the trail's ARN
  and `aws:s3:arn` = the log file's ARN; `kms:DescribeKey`, which carries no encryption
  context (so an Allow of DescribeKey under a `kms:EncryptionContext:...` condition does not
  allow it); and when the bucket's default encryption is SSE-KMS with an S3 Bucket Key,
  `kms:Decrypt` with the encryption context `aws:s3:arn` = the bucket's ARN (S3 Bucket Keys
  use the bucket ARN as context; the guide: "If you are using an existing S3 bucket with an
  S3 Bucket Key, kms:Decrypt permissions are required to create or update a trail with
  SSE-KMS encryption enabled"). A key that is not Enabled cannot be used either.
  Refused: 400 InsufficientEncryptionPolicyException
  "Insufficient permissions to access S3 bucket <bucket> or KMS key <key ARN>.".
  A key ARN (any account) that names no key: 400 KmsKeyNotFoundException, as the `cloudtrail`
  module answers an unknown alias or key id.
- UpdateTrail naming a bucket that does not exist: 400 S3BucketDoesNotExistException
  "S3 bucket <bucket> does not exist!" (moto checks this for CreateTrail only, with this text).
- CreateTrail of a name the account already has in the Region: moto replaces the trail; AWS
  answers 400 TrailAlreadyExistsException "Trail <name> already exists for customer:
  <account>".

The messages are AWS's (as AWS's answers quote them). Not modelled: organization trails (the
`o-...` path), the legacy per-Region CloudTrail account principals, SNS topics, S3 ACLs.
"""

import datetime
import re

from moto.cloudtrail.models import cloudtrail_backends

from . import delivery

SIGNING_NAMES = ("cloudtrail",)
OPERATIONS = ("CreateTrail", "UpdateTrail")
SERVICE = "cloudtrail.amazonaws.com"
TRAIL_NAME = re.compile(r"^[0-9a-zA-Z][.\-_0-9a-zA-Z]{1,126}[0-9a-zA-Z]$")


def reset():
    pass


def _error(code, message):
    return delivery.json_error("cloudtrail", code, message)


def _existing(account, region, name):
    trails = cloudtrail_backends[account][region].trails
    if name in trails:
        return trails[name]
    return next((t for t in trails.values() if t.arn == name), None)


def handle(req):
    op = (req.header("X-Amz-Target") or "").rpartition(".")[2]
    if op not in OPERATIONS:
        return None
    try:
        body = req.json()
    except ValueError:
        return None
    name = body.get("Name")
    if not isinstance(name, str) or not name:
        return None
    part = delivery.partition(req.region)
    if op == "CreateTrail":
        bucket_name, prefix, key = body.get("S3BucketName"), body.get("S3KeyPrefix"), body.get("KmsKeyId")
        validation = bool(body.get("EnableLogFileValidation"))
        if not TRAIL_NAME.match(name) or not isinstance(bucket_name, str):
            return None  # moto answers (an invalid name, no bucket)
        if _existing(req.account, req.region, name):
            return _error("TrailAlreadyExistsException", f"Trail {name} already exists for customer: {req.account}")
        trail_arn = f"arn:{part}:cloudtrail:{req.region}:{req.account}:trail/{name}"
        bucket = delivery.find_bucket(bucket_name)
        if bucket is None:
            return None  # moto answers S3BucketDoesNotExistException
    else:
        trail = _existing(req.account, req.region, name)
        if trail is None or not any(k in body for k in ("S3BucketName", "S3KeyPrefix", "KmsKeyId")):
            return None
        bucket_name = body["S3BucketName"] if body.get("S3BucketName") else trail.bucket_name
        prefix = body["S3KeyPrefix"] if "S3KeyPrefix" in body else trail.s3_key_prefix
        key = body["KmsKeyId"] if "KmsKeyId" in body else trail.kms_key_id
        validation = body["EnableLogFileValidation"] if "EnableLogFileValidation" in body else trail.log_validation
        trail_arn = trail.arn
        bucket = delivery.find_bucket(bucket_name)
        if bucket is None:
            return _error("S3BucketDoesNotExistException", f"S3 bucket {bucket_name} does not exist!")
    key_arn = key if isinstance(key, str) and key else None
    found_key = delivery.find_key(key_arn) if key_arn else None
    if key_arn and found_key is None:
        return _error("KmsKeyNotFoundException", f"KMS key {key_arn} does not exist in {req.region}.")
    if not bucket_allows(bucket, req.account, req.region, trail_arn, prefix, validation, key_arn):
        return _error("InsufficientS3BucketPolicyException", f"Incorrect S3 bucket policy is detected for bucket: {bucket.name}")
    if key_arn:
        if not key_allows(found_key, bucket, req.account, req.region, trail_arn, prefix):
            return _error("InsufficientEncryptionPolicyException",
                          f"Insufficient permissions to access S3 bucket {bucket.name} or KMS key {found_key.arn}.")
    return None


def log_keys(trail_arn, region, prefix, validation):
    """Object keys of a log file (and of a digest file, with log file validation) as CloudTrail
    writes them for the trail in `region`."""
    account, home, name = trail_arn.split(":")[4], trail_arn.split(":")[3], trail_arn.rpartition("/")[2]
    base = f"{prefix}/" if prefix else ""
    now = datetime.datetime.now(datetime.timezone.utc)
    day, stamp = now.strftime("%Y/%m/%d"), now.strftime("%Y%m%dT%H%MZ")
    keys = [f"{base}AWSLogs/{account}/CloudTrail/{region}/{day}/{account}_CloudTrail_{region}_{stamp}_cmEmulatorCheck.json.gz"]
    if validation:
        keys.append(f"{base}AWSLogs/{account}/CloudTrail-Digest/{region}/{day}/"
                    f"{account}_CloudTrail-Digest_{region}_{name}_{home}_{stamp}.json.gz")
    return keys


def bucket_allows(bucket, account, region, trail_arn, prefix, validation, key_arn):
    """Whether the bucket policy lets CloudTrail read the bucket ACL and write the trail's files."""
    doc = bucket.policy

    def ok(action, resource, **context):
        return delivery.resource_allows(doc, delivery.service_request(SERVICE, action, resource, account, trail_arn, **context))

    if not ok("s3:GetBucketAcl", bucket.arn):
        return False
    put = {"s3:x-amz-acl": "bucket-owner-full-control"}
    if key_arn:
        put.update({"s3:x-amz-server-side-encryption": "aws:kms", "s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn})
    return all(ok("s3:PutObject", bucket.object_arn(k), **put) for k in log_keys(trail_arn, region, prefix, validation))


def key_allows(key, bucket, account, region, trail_arn, prefix):
    """Whether the key is usable and its policy lets CloudTrail encrypt the trail's files."""
    if not key.enabled:
        return False
    doc = key.policy
    log = bucket.object_arn(log_keys(trail_arn, region, prefix, False)[0])

    def ok(action, **context):
        return delivery.resource_allows(doc, delivery.service_request(SERVICE, action, key.arn, account, trail_arn, **context))

    checks = [
        ok("kms:GenerateDataKey", **{"kms:EncryptionContext:aws:cloudtrail:arn": trail_arn, "kms:EncryptionContext:aws:s3:arn": log,
                                     "kms:EncryptionContextKeys": ["aws:cloudtrail:arn", "aws:s3:arn"]}),
        ok("kms:DescribeKey"),
    ]
    if bucket.bucket_key_kms():
        checks.append(ok("kms:Decrypt", **{"kms:EncryptionContext:aws:s3:arn": bucket.arn, "kms:EncryptionContextKeys": ["aws:s3:arn"]}))
    return all(checks)

