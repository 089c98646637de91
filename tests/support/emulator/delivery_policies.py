"""Bucket and key policies that let CloudTrail and AWS Config deliver, as AWS's guides give
them, for the emulator's tests: since the emulator refuses CreateTrail, UpdateTrail and
PutDeliveryChannel as AWS does when these are missing, every test that makes a trail or a
delivery channel puts them first. Test support only.
"""

import json


def cloudtrail_bucket_policy(bucket, account, prefix=None, partition="aws"):
    """AWS CloudTrail User Guide, "Amazon S3 bucket policy for CloudTrail"."""
    base = f"{prefix}/" if prefix else ""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "AWSCloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:GetBucketAcl", "Resource": f"arn:{partition}:s3:::{bucket}"},
        {"Sid": "AWSCloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": f"arn:{partition}:s3:::{bucket}/{base}AWSLogs/{account}/*",
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}},
    ]})


def config_bucket_policy(bucket, account, prefix=None, partition="aws"):
    """AWS Config Developer Guide, "Permissions for the Amazon S3 Bucket for the AWS Config
    Delivery Channel"."""
    base = f"{prefix}/" if prefix else ""
    source = {"StringEquals": {"AWS:SourceAccount": account}}
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "AWSConfigBucketPermissionsCheck", "Effect": "Allow", "Principal": {"Service": "config.amazonaws.com"},
         "Action": "s3:GetBucketAcl", "Resource": f"arn:{partition}:s3:::{bucket}", "Condition": source},
        {"Sid": "AWSConfigBucketExistenceCheck", "Effect": "Allow", "Principal": {"Service": "config.amazonaws.com"},
         "Action": "s3:ListBucket", "Resource": f"arn:{partition}:s3:::{bucket}", "Condition": source},
        {"Sid": "AWSConfigBucketDelivery", "Effect": "Allow", "Principal": {"Service": "config.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": f"arn:{partition}:s3:::{bucket}/{base}AWSLogs/{account}/Config/*",
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "AWS:SourceAccount": account}}},
    ]})


def logs_key_policy(account, partition="aws"):
    """A key policy for CloudTrail's and AWS Config's logs: the account administers the key;
    CloudTrail encrypts (GenerateDataKey* under its encryption context), describes the key and
    decrypts (for buckets with an S3 Bucket Key); AWS Config encrypts and decrypts."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "CloudTrailEncrypt", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "kms:GenerateDataKey*", "Resource": "*",
         "Condition": {"StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": f"arn:{partition}:cloudtrail:*:{account}:trail/*"}}},
        {"Sid": "CloudTrailDescribe", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": ["kms:DescribeKey", "kms:Decrypt"], "Resource": "*"},
        {"Sid": "Config", "Effect": "Allow", "Principal": {"Service": "config.amazonaws.com"},
         "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*",
         "Condition": {"StringEquals": {"AWS:SourceAccount": account}}},
    ]})
