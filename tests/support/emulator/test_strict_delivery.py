"""Delivery-policy checks of the emulator, always on: CloudTrail CreateTrail/UpdateTrail and
AWS Config PutDeliveryChannel are refused, as AWS refuses them, unless the bucket policy (and
the KMS key policy, and for Config the recorder's role) lets the service deliver
(cm_emulator/trail_delivery.py, cm_emulator/config.py), decided by the IAM policy evaluator
(cm_emulator/policy.py), which is also tested directly here. Last, the policies cm-baseline
ships (desired-state/policies/resource/) are checked to pass, with their placeholders filled in.

Run: <emulator venv>/bin/python -m pytest -q tests/support/emulator
"""

import copy
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

import test_extension
from cm_emulator import delivery, trail_delivery
from cm_emulator.policy import ALLOW, DELEGATED, DENY, PolicyError, Principal, Request, decide, evaluate
from delivery_policies import cloudtrail_bucket_policy, config_bucket_policy, logs_key_policy
from test_extension import REGION, OTHER_REGION, aws, endpoint, error_of  # noqa: F401 (fixtures: this module's own server)

REPO = Path(__file__).resolve().parents[3]
RESOURCE_POLICIES = REPO / "desired-state" / "policies"
CT = Principal.service("cloudtrail.amazonaws.com")


@pytest.fixture(scope="module", autouse=True)
def own_credentials(endpoint):  # noqa: F811
    # Assumed-role credentials are the server's: none of another module's server may be reused.
    test_extension.CREDS.clear()
    yield
    test_extension.CREDS.clear()


def message_of(call, **kwargs):
    with pytest.raises(test_extension.ClientError) as e:
        call(**kwargs)
    r = e.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


def doc(*statements, version="2012-10-17"):
    return {"Version": version, "Statement": list(statements)}


def allow(**kw):
    return {"Effect": "Allow", **kw}


def deny(**kw):
    return {"Effect": "Deny", **kw}


# ---------------------------------------------------------------- the evaluator (no server)


def put(resource="arn:aws:s3:::b/AWSLogs/111111111111/f", principal=CT, **context):
    return Request(principal, "s3:PutObject", resource, context)


def test_policy_explicit_deny_wins_and_nothing_is_an_implicit_deny():
    p = doc(allow(Principal="*", Action="s3:*", Resource="*"), deny(Principal="*", Action="s3:PutObject", Resource="*"))
    assert evaluate(p, put()) == DENY
    assert evaluate(p, Request(CT, "s3:GetBucketAcl", "arn:aws:s3:::b")) == ALLOW
    assert evaluate(doc(allow(Principal="*", Action="s3:GetObject", Resource="*")), put()) is None
    # the order of statements does not matter
    assert evaluate(doc(p["Statement"][1], p["Statement"][0]), put()) == DENY


def test_policy_principals():
    role = Principal.aws("arn:aws:iam::111111111111:role/r")
    p = doc(allow(Principal={"Service": "cloudtrail.amazonaws.com"}, Action="s3:PutObject", Resource="*"))
    assert evaluate(p, put()) == ALLOW
    assert evaluate(p, put(principal=Principal.service("config.amazonaws.com"))) is None
    assert evaluate(p, put(principal=role)) is None
    # an account grants to the account only (its identity policies decide); never to a service
    for account in ("111111111111", "arn:aws:iam::111111111111:root"):
        acct = doc(allow(Principal={"AWS": account}, Action="s3:PutObject", Resource="*"))
        assert evaluate(acct, put(principal=role)) == DELEGATED
        assert evaluate(acct, put(principal=Principal.aws("arn:aws:iam::222222222222:role/r"))) is None
        assert evaluate(acct, put()) is None
        # ... but an account in a Deny denies its principals
        assert evaluate(doc(p["Statement"][0], {**acct["Statement"][0], "Effect": "Deny"}), put(principal=role)) == DENY
    exact = doc(allow(Principal={"AWS": ["arn:aws:iam::111111111111:role/r"]}, Action="s3:PutObject", Resource="*"))
    assert evaluate(exact, put(principal=role)) == ALLOW
    assert evaluate(exact, put(principal=Principal.aws("arn:aws:iam::111111111111:role/other"))) is None
    # "*" and {"AWS": "*"} are everyone, services included
    for everyone in ("*", {"AWS": "*"}):
        assert evaluate(doc(allow(Principal=everyone, Action="s3:PutObject", Resource="*")), put()) == ALLOW
    # NotPrincipal: everyone but those named
    np = doc(deny(NotPrincipal={"Service": "cloudtrail.amazonaws.com"}, Action="s3:*", Resource="*"))
    assert evaluate(np, put()) is None
    assert evaluate(np, put(principal=role)) == DENY
    # a statement without Principal (an identity policy) applies to its principal
    assert evaluate(doc(allow(Action="s3:PutObject", Resource="*")), put(principal=role)) == ALLOW


def test_policy_actions_and_resources_with_wildcards():
    p = doc(allow(Principal="*", Action=["S3:put*", "kms:GenerateDataKey?ithoutPlaintext"], Resource="arn:aws:s3:::b/AWSLogs/*"))
    assert evaluate(p, put()) == ALLOW  # actions: case-insensitive
    assert evaluate(p, Request(CT, "kms:GenerateDataKeyWithoutPlaintext", "arn:aws:s3:::b/AWSLogs/x")) == ALLOW
    assert evaluate(p, Request(CT, "kms:GenerateDataKey", "arn:aws:s3:::b/AWSLogs/x")) is None
    assert evaluate(p, put("arn:aws:s3:::b/awslogs/x")) is None  # resources: case-sensitive
    assert evaluate(p, put("arn:aws:s3:::b")) is None
    assert evaluate(doc(allow(Principal="*", Action="s3:PutObject", Resource="arn:aws:s3:::b/AW?Logs/*")), put()) == ALLOW
    na = doc(allow(Principal="*", NotAction="s3:Delete*", NotResource="arn:aws:s3:::other/*"))
    assert evaluate(na, put()) == ALLOW
    assert evaluate(na, Request(CT, "s3:DeleteObject", "arn:aws:s3:::b/x")) is None
    assert evaluate(na, put("arn:aws:s3:::other/x")) is None


def test_policy_condition_keys_missing_from_the_request():
    def one(cond, **ctx):
        return evaluate(doc(allow(Principal="*", Action="s3:PutObject", Resource="*", Condition=cond)), put(**ctx))

    assert one({"StringEquals": {"aws:SourceAccount": "111111111111"}}) is None
    assert one({"StringNotEquals": {"aws:SourceAccount": "111111111111"}}) == ALLOW
    assert one({"StringNotLike": {"aws:SourceArn": "arn:*"}}) == ALLOW
    assert one({"ArnNotLike": {"aws:SourceArn": "arn:*:*:*:*:*"}}) == ALLOW
    assert one({"StringEqualsIfExists": {"aws:SourceAccount": "111111111111"}}) == ALLOW
    assert one({"StringEqualsIfExists": {"aws:SourceAccount": "111111111111"}}, **{"aws:SourceAccount": "2"}) is None
    assert one({"Null": {"aws:SourceAccount": "true"}}) == ALLOW
    assert one({"Null": {"aws:SourceAccount": "false"}}) is None
    assert one({"Null": {"aws:SourceAccount": "false"}}, **{"aws:SourceAccount": "1"}) == ALLOW
    assert one({"ForAnyValue:StringEquals": {"aws:TagKeys": "a"}}) is None
    assert one({"ForAllValues:StringEquals": {"aws:TagKeys": "a"}}) == ALLOW
    assert one({"Bool": {"aws:SecureTransport": "false"}}) is None


def test_policy_condition_operators():
    def one(cond, **ctx):
        return evaluate(doc(allow(Principal="*", Action="s3:PutObject", Resource="*", Condition=cond)), put(**ctx)) == ALLOW

    src = {"aws:SourceArn": "arn:aws:cloudtrail:ap-northeast-1:111111111111:trail/Members"}
    # keys are case-insensitive; the values of one key are alternatives; every key must match
    assert one({"StringEquals": {"AWS:SOURCEARN": ["x", src["aws:SourceArn"]]}}, **src)
    assert not one({"StringEquals": {"aws:SourceArn": src["aws:SourceArn"], "aws:SourceAccount": "111111111111"}}, **src)
    assert not one({"StringEquals": {"aws:SourceArn": src["aws:SourceArn"].upper()}}, **src)
    assert one({"StringEqualsIgnoreCase": {"aws:SourceArn": src["aws:SourceArn"].upper()}}, **src)
    # a negated operator: the value matches none of the alternatives
    assert not one({"StringNotEquals": {"aws:SourceArn": ["x", src["aws:SourceArn"]]}}, **src)
    assert one({"StringNotEquals": {"aws:SourceArn": ["x", "y"]}}, **src)
    assert one({"StringLike": {"aws:SourceArn": "arn:aws:cloudtrail:*:111111111111:trail/*"}}, **src)
    assert not one({"StringLike": {"aws:SourceArn": "arn:aws:cloudtrail:*:222222222222:trail/*"}}, **src)
    # ArnLike: each of the six parts on its own
    assert one({"ArnLike": {"aws:SourceArn": "arn:aws:cloudtrail:*:111111111111:trail/M*"}}, **src)
    assert one({"ArnEquals": {"aws:SourceArn": "arn:aws:cloudtrail:*:111111111111:*"}}, **src)
    assert not one({"ArnLike": {"aws:SourceArn": "arn:aws:cloudtrail:*"}}, **src)
    assert not one({"ArnLike": {"aws:SourceArn": "arn:aws:config:*:111111111111:*"}}, **src)
    assert one({"ArnNotLike": {"aws:SourceArn": "arn:aws:config:*:111111111111:*"}}, **src)
    assert one({"Bool": {"aws:SecureTransport": "true"}}, **{"aws:SecureTransport": True})
    assert not one({"Bool": {"aws:SecureTransport": "false"}}, **{"aws:SecureTransport": True})
    assert one({"NumericLessThan": {"s3:max-keys": "10"}}, **{"s3:max-keys": "9"})
    assert not one({"NumericGreaterThanEquals": {"s3:max-keys": 10}}, **{"s3:max-keys": "9"})
    assert one({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, **{"aws:CurrentTime": "2026-01-01T00:00:00Z"})
    assert one({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, **{"aws:SourceIp": "10.1.2.3"})
    assert one({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, **{"aws:SourceIp": "192.0.2.1"})
    # multi-valued keys
    keys = {"kms:EncryptionContextKeys": ["aws:cloudtrail:arn", "aws:s3:arn"]}
    assert one({"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "aws:s3:arn"}}, **keys)
    assert not one({"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": "aws:s3:arn"}}, **keys)
    assert one({"ForAllValues:StringLike": {"kms:EncryptionContextKeys": "aws:*"}}, **keys)
    assert one({"ForAnyValue:StringNotEquals": {"kms:EncryptionContextKeys": "aws:s3:arn"}}, **keys)
    # two operators: both
    assert not one({"StringLike": {"aws:SourceArn": "*"}, "Bool": {"aws:SecureTransport": "false"}}, **src, **{"aws:SecureTransport": True})


def test_policy_variables():
    p = doc(allow(Principal="*", Action="s3:PutObject", Resource="arn:aws:s3:::b/AWSLogs/${aws:SourceAccount}/*",
                  Condition={"StringEquals": {"aws:SourceArn": "arn:aws:cloudtrail:r:${aws:SourceAccount}:trail/cm-t"}}))
    ok = {"aws:SourceAccount": "111111111111", "aws:SourceArn": "arn:aws:cloudtrail:r:111111111111:trail/cm-t"}
    assert evaluate(p, put(**ok)) == ALLOW
    assert evaluate(p, put(**{**ok, "aws:SourceAccount": "222222222222"})) is None
    assert evaluate(p, put()) is None  # a variable the request lacks matches nothing
    # a variable's value is literal: its `*` is no wildcard; in a 2008 policy variables are text
    assert evaluate(p, put(**{**ok, "aws:SourceAccount": "*"})) is None
    assert evaluate({**p, "Version": "2008-10-17"}, put(**ok)) is None
    star = doc(allow(Principal="*", Action="s3:PutObject", Resource="arn:aws:s3:::b/${*}"))
    assert evaluate(star, put("arn:aws:s3:::b/*")) == ALLOW
    assert evaluate(star, put("arn:aws:s3:::b/x")) is None


def test_policy_decision_across_identity_and_resource_policies():
    role = Principal.aws("arn:aws:iam::111111111111:role/r")
    req = put(principal=role)
    identity = doc(allow(Action="s3:PutObject", Resource="*"))
    none = doc(allow(Principal={"Service": "config.amazonaws.com"}, Action="s3:PutObject", Resource="*"))
    to_role = doc(allow(Principal={"AWS": role.id}, Action="s3:PutObject", Resource="*"))
    to_account = doc(allow(Principal={"AWS": "111111111111"}, Action="s3:PutObject", Resource="*"))
    # S3, same account: either policy suffices
    assert decide(req, none, "111111111111", [identity])
    assert decide(req, to_role, "111111111111", [])
    assert not decide(req, to_account, "111111111111", [])
    # another account: both
    assert not decide(req, to_role, "222222222222", [])
    assert not decide(req, none, "222222222222", [identity])
    assert decide(req, to_role, "222222222222", [identity])
    assert decide(req, to_account, "222222222222", [identity])
    # KMS, same account: the key policy must allow the role or its account
    assert not decide(req, none, "111111111111", [identity], key_policy=True)
    assert decide(req, to_account, "111111111111", [identity], key_policy=True)
    assert not decide(req, to_account, "111111111111", [], key_policy=True)
    assert decide(req, to_role, "111111111111", [], key_policy=True)
    # any Deny
    assert not decide(req, to_role, "111111111111", [doc(deny(Action="s3:*", Resource="*"))])
    # a service principal: the resource policy alone
    assert decide(put(), doc(allow(Principal={"Service": "cloudtrail.amazonaws.com"}, Action="s3:PutObject", Resource="*")), "1")
    assert not decide(put(), None, "1", [identity])


def test_policy_errors():
    for bad in ({"Statement": [allow(Principal="*", Action="s3:*", Resource="*", Condition={"StringMaybe": {"a": "b"}})]},
                {"Statement": [{"Principal": "*", "Action": "s3:*", "Resource": "*"}]},
                {"Statement": [allow(Principal="*", Resource="*")]},
                {"Statement": [allow(Principal={"Robot": "x"}, Action="s3:*", Resource="*")]},
                "not json", {"Version": "2012-10-17"}):
        with pytest.raises(PolicyError):
            evaluate(bad, put())


# ---------------------------------------------------------------- CloudTrail through the emulator


def make_bucket(aws, account, name, policy=None, region=REGION, encryption=None):  # noqa: F811
    s3 = aws("s3", account=account)
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    if policy is not None:
        s3.put_bucket_policy(Bucket=name, Policy=policy if isinstance(policy, str) else json.dumps(policy))
    if encryption is not None:
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration=encryption)
    return s3


def trail_policy_with(bucket, account, **changes):
    """The guide's CloudTrail bucket policy, its write statement changed."""
    p = json.loads(cloudtrail_bucket_policy(bucket, account))
    p["Statement"][1].update(changes)
    return p


def test_create_trail_needs_the_bucket_policy_cloudtrail_needs(aws):  # noqa: F811
    acct = "444444444401"
    ct = aws("cloudtrail", account=acct)
    bucket = f"cm-trail-{acct}"
    s3 = make_bucket(aws, acct, bucket)
    refused = ("InsufficientS3BucketPolicyException", 400, f"Incorrect S3 bucket policy is detected for bucket: {bucket}")
    assert message_of(ct.create_trail, Name="cm-t1", S3BucketName=bucket) == refused
    # the ACL check alone, the write alone: not enough
    whole = json.loads(cloudtrail_bucket_policy(bucket, acct))
    for half in whole["Statement"]:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(doc(half)))
        assert message_of(ct.create_trail, Name="cm-t1", S3BucketName=bucket) == refused
    # the write without the ACL condition CloudTrail's request satisfies, or with another ACL
    for cond in ({"StringEquals": {"s3:x-amz-acl": "private"}}, {"StringEquals": {"aws:SourceAccount": "999999999999"}},
                 {"StringEquals": {"aws:SourceArn": f"arn:aws:cloudtrail:{REGION}:{acct}:trail/other"}}):
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(trail_policy_with(bucket, acct, Condition=cond)))
        assert message_of(ct.create_trail, Name="cm-t1", S3BucketName=bucket)[0] == "InsufficientS3BucketPolicyException", cond
    # another account's folder; a prefix the policy does not name
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(trail_policy_with(bucket, acct, Resource=f"arn:aws:s3:::{bucket}/AWSLogs/999999999999/*")))
    assert message_of(ct.create_trail, Name="cm-t1", S3BucketName=bucket)[0] == "InsufficientS3BucketPolicyException"
    s3.put_bucket_policy(Bucket=bucket, Policy=cloudtrail_bucket_policy(bucket, acct))
    assert message_of(ct.create_trail, Name="cm-t1", S3BucketName=bucket, S3KeyPrefix="p")[0] == "InsufficientS3BucketPolicyException"
    assert ct.describe_trails()["trailList"] == []  # nothing was made
    # the guide's policy, with the conditions AWS sends; the prefix when the policy names it
    made = ct.create_trail(Name="cm-t1", S3BucketName=bucket, EnableLogFileValidation=True)
    assert made["TrailARN"] == f"arn:aws:cloudtrail:{REGION}:{acct}:trail/cm-t1"
    sourced = trail_policy_with(bucket, acct, Resource=f"arn:aws:s3:::{bucket}/p/AWSLogs/{acct}/*", Condition={
        "StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceAccount": acct},
        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudtrail:{REGION}:{acct}:trail/cm-t2"}})
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(sourced))
    ct.create_trail(Name="cm-t2", S3BucketName=bucket, S3KeyPrefix="p")
    assert message_of(ct.create_trail, Name="cm-t3", S3BucketName=bucket, S3KeyPrefix="p")[0] == "InsufficientS3BucketPolicyException"
    # moto's own answers come first: a missing bucket, a taken name
    assert error_of(ct.create_trail, Name="cm-t9", S3BucketName=f"cm-none-{acct}") == ("S3BucketDoesNotExistException", 400)
    assert error_of(ct.create_trail, Name="cm-t2", S3BucketName=bucket) == ("TrailAlreadyExistsException", 400)


def test_trail_bucket_policy_deny_statements(aws):  # noqa: F811
    acct = "444444444402"
    ct = aws("cloudtrail", account=acct)
    bucket = f"cm-trail-{acct}"
    base = json.loads(cloudtrail_bucket_policy(bucket, acct))
    insecure = deny(Principal="*", Action="s3:*", Resource=[f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                    Condition={"Bool": {"aws:SecureTransport": "false"}})
    s3 = make_bucket(aws, acct, bucket, doc(*base["Statement"], insecure))
    ct.create_trail(Name="cm-tls", S3BucketName=bucket)  # CloudTrail uses TLS: the deny does not apply
    for blocking in (deny(Principal={"Service": "cloudtrail.amazonaws.com"}, Action="s3:PutObject", Resource=f"arn:aws:s3:::{bucket}/*"),
                     deny(Principal="*", Action="s3:GetBucketAcl", Resource="*"),
                     deny(Principal="*", Action="s3:PutObject", Resource="*", Condition={"StringNotEquals": {"aws:SourceAccount": "999999999999"}})):
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(doc(*base["Statement"], blocking)))
        assert message_of(ct.create_trail, Name="cm-denied", S3BucketName=bucket)[0] == "InsufficientS3BucketPolicyException", blocking


def test_update_trail_checks_the_bucket_it_will_deliver_to(aws):  # noqa: F811
    acct = "444444444403"
    ct = aws("cloudtrail", account=acct)
    good, bare = f"cm-trail-{acct}", f"cm-bare-{acct}"
    make_bucket(aws, acct, good, cloudtrail_bucket_policy(good, acct))
    make_bucket(aws, acct, bare)
    ct.create_trail(Name="cm-t", S3BucketName=good)
    assert message_of(ct.update_trail, Name="cm-t", S3BucketName=bare)[:2] == ("InsufficientS3BucketPolicyException", 400)
    assert message_of(ct.update_trail, Name="cm-t", S3BucketName=f"cm-none-{acct}") == (
        "S3BucketDoesNotExistException", 400, f"S3 bucket cm-none-{acct} does not exist!")
    assert message_of(ct.update_trail, Name="cm-t", S3KeyPrefix="elsewhere")[0] == "InsufficientS3BucketPolicyException"
    assert ct.get_trail(Name="cm-t")["Trail"]["S3BucketName"] == good
    ct.update_trail(Name="cm-t", IncludeGlobalServiceEvents=False)  # delivery unchanged: not checked
    ct.update_trail(Name=f"arn:aws:cloudtrail:{REGION}:{acct}:trail/cm-t", S3BucketName=good)


def test_trail_delivers_to_a_bucket_of_another_account_only_when_its_policy_allows(aws):  # noqa: F811
    acct, owner = "444444444404", "444444444405"
    bucket = f"cm-central-{owner}"
    s3 = make_bucket(aws, owner, bucket, cloudtrail_bucket_policy(bucket, owner))
    ct = aws("cloudtrail", account=acct)
    assert message_of(ct.create_trail, Name="cm-t", S3BucketName=bucket)[0] == "InsufficientS3BucketPolicyException"
    both = json.loads(cloudtrail_bucket_policy(bucket, owner))
    both["Statement"][1]["Resource"] = [f"arn:aws:s3:::{bucket}/AWSLogs/{owner}/*", f"arn:aws:s3:::{bucket}/AWSLogs/{acct}/*"]
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(both))
    assert ct.create_trail(Name="cm-t", S3BucketName=bucket)["S3BucketName"] == bucket


def test_trail_kms_key_policy(aws):  # noqa: F811
    acct = "444444444406"
    bucket = f"cm-trail-{acct}"
    s3 = make_bucket(aws, acct, bucket, cloudtrail_bucket_policy(bucket, acct))
    kms, ct = aws("kms", account=acct), aws("cloudtrail", account=acct)
    root = allow(Sid="Admin", Principal={"AWS": f"arn:aws:iam::{acct}:root"}, Action="kms:*", Resource="*")
    encrypt = allow(Sid="Encrypt", Principal={"Service": "cloudtrail.amazonaws.com"}, Action="kms:GenerateDataKey*", Resource="*",
                    Condition={"StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:*:{acct}:trail/*"}})
    describe = allow(Sid="Describe", Principal={"Service": "cloudtrail.amazonaws.com"}, Action="kms:DescribeKey", Resource="*")
    decrypt = allow(Sid="Decrypt", Principal={"Service": "cloudtrail.amazonaws.com"}, Action="kms:Decrypt", Resource="*")

    def key(*statements):
        return kms.create_key(Policy=json.dumps(doc(*statements)))["KeyMetadata"]["Arn"]

    default = kms.create_key()["KeyMetadata"]["Arn"]  # the account may use it; CloudTrail may not
    assert message_of(ct.create_trail, Name="cm-t", S3BucketName=bucket, KmsKeyId=default) == (
        "InsufficientEncryptionPolicyException", 400, f"Insufficient permissions to access S3 bucket {bucket} or KMS key {default}.")
    # DescribeKey carries no encryption context: allowed only under one, it is not allowed
    merged = {**encrypt, "Action": ["kms:GenerateDataKey*", "kms:DescribeKey"]}
    assert message_of(ct.create_trail, Name="cm-t", S3BucketName=bucket, KmsKeyId=key(root, merged))[0] == "InsufficientEncryptionPolicyException"
    assert message_of(ct.create_trail, Name="cm-t", S3BucketName=bucket, KmsKeyId=key(root, describe))[0] == "InsufficientEncryptionPolicyException"
    other_account = {**encrypt, "Condition": {"StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": "arn:aws:cloudtrail:*:999999999999:trail/*"}}}
    assert message_of(ct.create_trail, Name="cm-t", S3BucketName=bucket, KmsKeyId=key(root, other_account, describe))[0] == (
        "InsufficientEncryptionPolicyException")
    good = key(root, encrypt, describe)
    kms.disable_key(KeyId=good.rpartition("/")[2])
    assert message_of(ct.create_trail, Name="cm-t", S3BucketName=bucket, KmsKeyId=good)[0] == "InsufficientEncryptionPolicyException"
    kms.enable_key(KeyId=good.rpartition("/")[2])
    kms.create_alias(AliasName="alias/cm-trail", TargetKeyId=good)
    assert ct.create_trail(Name="cm-t", S3BucketName=bucket, KmsKeyId="alias/cm-trail")["KmsKeyId"] == good
    # a bucket with an S3 Bucket Key: CloudTrail must also decrypt
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": good}, "BucketKeyEnabled": True}]})
    assert message_of(ct.update_trail, Name="cm-t", KmsKeyId=good)[0] == "InsufficientEncryptionPolicyException"
    with_decrypt = key(root, encrypt, describe, decrypt)
    assert ct.update_trail(Name="cm-t", KmsKeyId=with_decrypt)["KmsKeyId"] == with_decrypt
    # an unknown key ARN is not found; the bucket policy is checked before the key policy
    missing = f"arn:aws:kms:{REGION}:{acct}:key/00000000-0000-0000-0000-000000000000"
    assert message_of(ct.update_trail, Name="cm-t", KmsKeyId=missing)[:2] == ("KmsKeyNotFoundException", 400)
    s3.delete_bucket_policy(Bucket=bucket)
    assert message_of(ct.update_trail, Name="cm-t", KmsKeyId=good)[0] == "InsufficientS3BucketPolicyException"


# ---------------------------------------------------------------- AWS Config through the emulator


def recorder(aws, account, role_arn, region=REGION):  # noqa: F811
    cfg = aws("config", account=account, region=region)
    cfg.put_configuration_recorder(ConfigurationRecorder={"name": "default", "roleARN": role_arn})
    return cfg


def test_config_delivery_channel_as_the_service_principal(aws):  # noqa: F811
    acct = "444444444411"
    # AWSServiceRoleForConfig, which has no S3 permission (moto spells its name AWSServiceRoleForconfig)
    slr = aws("iam", account=acct).create_service_linked_role(AWSServiceName="config.amazonaws.com")["Role"]["Arn"]
    assert ":role/aws-service-role/config.amazonaws.com/" in slr
    cfg = recorder(aws, acct, slr)
    bucket = f"cm-config-{acct}"

    def put(**channel):
        return cfg.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": bucket, **channel})

    assert message_of(put) == ("NoSuchBucketException", 400, f"Cannot find a S3 bucket with name: {bucket}.")
    s3 = make_bucket(aws, acct, bucket)
    acl = ("InsufficientDeliveryPolicyException", 400, f"Insufficient delivery policy to s3 bucket: {bucket}, unable to get s3 bucket acl.")
    write = ("InsufficientDeliveryPolicyException", 400, f"Insufficient delivery policy to s3 bucket: {bucket}, unable to write to bucket, "
             "provided s3 key prefix is 'null', provided kms key is 'null'.")
    assert message_of(put) == acl
    whole = json.loads(config_bucket_policy(bucket, acct))
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(doc(whole["Statement"][0])))
    assert message_of(put) == write
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(doc(whole["Statement"][2])))
    assert message_of(put) == acl
    # the guide's policy without the existence check (ListBucket) is enough
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(doc(whole["Statement"][0], whole["Statement"][2])))
    put()
    # another account's source, another folder, a prefix the policy does not name
    s3.put_bucket_policy(Bucket=bucket, Policy=config_bucket_policy(bucket, "999999999999"))
    assert message_of(put) == acl
    s3.put_bucket_policy(Bucket=bucket, Policy=config_bucket_policy(bucket, acct))
    assert message_of(put, s3KeyPrefix="p")[2].endswith("provided s3 key prefix is 'p', provided kms key is 'null'.")
    s3.put_bucket_policy(Bucket=bucket, Policy=config_bucket_policy(bucket, acct, prefix="p"))
    put(s3KeyPrefix="p")
    # aws:SourceArn is arn:<partition>:config:<region>:<account>:*
    arn_like = copy.deepcopy(json.loads(config_bucket_policy(bucket, acct)))
    for st in arn_like["Statement"]:
        st["Condition"]["ArnLike"] = {"AWS:SourceArn": f"arn:aws:config:{REGION}:{acct}:*"}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(arn_like))
    put()
    assert message_of(aws("config", account=acct, region=OTHER_REGION).put_delivery_channel,
                      DeliveryChannel={"name": "default", "s3BucketName": bucket})[0] == "NoAvailableConfigurationRecorderException"
    other = recorder(aws, acct, slr, region=OTHER_REGION)
    assert message_of(other.put_delivery_channel, DeliveryChannel={"name": "default", "s3BucketName": bucket}) == acl
    # with a KMS key: the key policy must let AWS Config use it
    s3.put_bucket_policy(Bucket=bucket, Policy=config_bucket_policy(bucket, acct))
    kms = aws("kms", account=acct)
    plain = kms.create_key()["KeyMetadata"]["Arn"]
    assert message_of(put, s3KmsKeyArn=plain)[2].endswith(f"provided s3 key prefix is 'null', provided kms key is '{plain}'.")
    good = kms.create_key(Policy=logs_key_policy(acct))["KeyMetadata"]["Arn"]
    put(s3KmsKeyArn=good)
    kms.create_alias(AliasName="alias/cm-config", TargetKeyId=good)
    put(s3KmsKeyArn=f"arn:aws:kms:{REGION}:{acct}:alias/cm-config")
    assert message_of(put, s3KmsKeyArn="alias/cm-config") == (
        "InvalidS3KmsKeyArnException", 400, "The arn 'alias/cm-config' is not a valid kms key or alias arn.")
    assert message_of(put, s3KmsKeyArn=f"arn:aws:kms:{REGION}:{acct}:key/00000000-0000-0000-0000-000000000000")[0] == (
        "InsufficientDeliveryPolicyException")
    assert cfg.describe_delivery_channels()["DeliveryChannels"][0]["s3KmsKeyArn"].endswith(":alias/cm-config")


ROLE_POLICY = {  # AWS Config Developer Guide, "Permissions for the IAM Role Assigned to AWS Config"
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["s3:PutObject", "s3:PutObjectAcl"], "Resource": ["arn:aws:s3:::{bucket}/AWSLogs/{account}/*"],
         "Condition": {"StringLike": {"s3:x-amz-acl": "bucket-owner-full-control"}}},
        {"Effect": "Allow", "Action": ["s3:GetBucketAcl"], "Resource": "arn:aws:s3:::{bucket}"},
        {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*"},
    ]}
TRUST = json.dumps(doc(allow(Principal={"Service": "config.amazonaws.com"}, Action="sts:AssumeRole")))


def role_policy(bucket, account):
    return json.dumps(ROLE_POLICY).replace("{bucket}", bucket).replace("{account}", account)


def test_config_delivery_channel_through_the_recorder_role(aws):  # noqa: F811
    acct = "444444444412"
    iam = aws("iam", account=acct)
    bucket = f"cm-config-{acct}"
    s3 = make_bucket(aws, acct, bucket)  # no bucket policy: the role's own permissions deliver
    role = iam.create_role(RoleName="cm-config", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    cfg = recorder(aws, acct, role)

    def put(**channel):
        return cfg.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": bucket, **channel})

    # without permissions the role is refused, then so is the service principal
    assert message_of(put)[2].endswith("unable to get s3 bucket acl.")
    iam.put_role_policy(RoleName="cm-config", PolicyName="deliver", PolicyDocument=role_policy(bucket, acct))
    put()
    # without PutObjectAcl, the role cannot write the check file with its ACL
    no_acl = json.loads(role_policy(bucket, acct))
    no_acl["Statement"][0]["Action"] = ["s3:PutObject"]
    iam.put_role_policy(RoleName="cm-config", PolicyName="deliver", PolicyDocument=json.dumps(no_acl))
    assert message_of(put)[2].endswith("unable to get s3 bucket acl.")
    s3.put_bucket_policy(Bucket=bucket, Policy=config_bucket_policy(bucket, acct))
    put()  # ... and the service principal, allowed by the bucket policy, delivers
    s3.delete_bucket_policy(Bucket=bucket)
    iam.put_role_policy(RoleName="cm-config", PolicyName="deliver", PolicyDocument=role_policy(bucket, acct))
    # a bucket policy's Deny applies to the role too
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(doc(deny(Principal={"AWS": role}, Action="s3:PutObject", Resource="*"))))
    assert message_of(put)[0] == "InsufficientDeliveryPolicyException"
    s3.delete_bucket_policy(Bucket=bucket)
    # KMS: a key policy that lets the account's IAM policies decide; one that does not
    kms = aws("kms", account=acct)
    delegating = kms.create_key()["KeyMetadata"]["Arn"]  # the default key policy: the account root
    put(s3KmsKeyArn=delegating)
    closed = kms.create_key(Policy=json.dumps(doc(allow(Principal={"Service": "cloudtrail.amazonaws.com"}, Action="kms:*", Resource="*"))))
    assert message_of(put, s3KmsKeyArn=closed["KeyMetadata"]["Arn"])[0] == "InsufficientDeliveryPolicyException"
    # a role AWS Config cannot assume is refused as such (iamtrust), not retried as the service principal
    s3.put_bucket_policy(Bucket=bucket, Policy=config_bucket_policy(bucket, acct))
    iam.update_assume_role_policy(RoleName="cm-config", PolicyDocument=json.dumps(doc(
        allow(Principal={"Service": "ec2.amazonaws.com"}, Action="sts:AssumeRole"))))
    code, status, message = message_of(put)
    assert (code, status) == ("InsufficientDeliveryPolicyException", 400) and f"unable to assume role: {role}" in message
    iam.update_assume_role_policy(RoleName="cm-config", PolicyDocument=json.dumps(doc(allow(
        Principal={"Service": "config.amazonaws.com"}, Action="sts:AssumeRole", Condition={"StringEquals": {"aws:SourceAccount": acct}}))))
    put()


# ---------------------------------------------------------------- the policies cm-baseline ships


HOME = "ap-northeast-1"
ACCOUNT = "444444444421"
MANAGEMENT = "210987654321"


def fill(value, account, home=HOME, region=HOME):
    """desired-state's placeholders (desired-state/README.md, "Placeholders"), in string values only."""
    values = {"account_id": account, "partition": "aws", "region": region, "home_region": home, "management_account_id": MANAGEMENT}
    if isinstance(value, str):
        return re.sub(r"\{([a-z0-9_]+)\}", lambda m: values[m.group(1)], value)
    if isinstance(value, list):
        return [fill(v, account, home, region) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, account, home, region) for k, v in value.items()}
    return value


def shipped(name, account=ACCOUNT):
    return fill(json.loads((RESOURCE_POLICIES / name).read_text()), account)


# The logs key's CloudTrail statement as shipped before: DescribeKey allowed only under the
# encryption-context condition, which a DescribeKey request never carries; and no Decrypt,
# which an S3 Bucket Key needs.
OLD_CLOUDTRAIL_STATEMENT = {
    "Sid": "CloudTrailEncryptLogs", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
    "Action": ["kms:GenerateDataKey*", "kms:DescribeKey"], "Resource": "*",
    "Condition": {"StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": "arn:{partition}:cloudtrail:*:{account_id}:trail/*"}}}


def old_logs_key_policy(account=ACCOUNT):
    new = shipped("resource/logs-key-policy.json", account)
    kept = [s for s in new["Statement"] if not s["Sid"].startswith("CloudTrail")]
    return {**new, "Statement": [kept[0], fill(OLD_CLOUDTRAIL_STATEMENT, account), *kept[1:]]}


def standin_bucket(name, policy, bucket_key):
    enc = {"Rule": {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": "true"}} if bucket_key else None
    return delivery.Bucket(name, ACCOUNT, "aws", SimpleNamespace(policy=json.dumps(policy).encode(), encryption=enc))


def standin_key(policy):
    return delivery.Key(SimpleNamespace(arn=f"arn:aws:kms:{HOME}:{ACCOUNT}:key/k", account_id=ACCOUNT, key_state="Enabled",
                                        policy=json.dumps(policy)))


def test_shipped_policies_pass_cloudtrails_checks_and_the_old_key_policy_did_not():
    bucket_name = f"cm-members-cloudtrail-{ACCOUNT}"
    trail = f"arn:aws:cloudtrail:{HOME}:{ACCOUNT}:trail/Members"  # F07's trail, in the home region
    policy = shipped("resource/cloudtrail-bucket.json")
    for region in (HOME, "us-east-1"):  # a multi-region trail delivers every region's files
        assert trail_delivery.bucket_allows(standin_bucket(bucket_name, policy, True), ACCOUNT, region, trail, None, True, "k")
    assert not trail_delivery.bucket_allows(standin_bucket(bucket_name, policy, False), ACCOUNT, HOME,
                                            trail.replace("Members", "Other"), None, True, None)
    new, old = shipped("resource/logs-key-policy.json"), old_logs_key_policy()
    secure = standin_bucket(bucket_name, policy, True)  # F07 secure: SSE-KMS with an S3 Bucket Key
    assert trail_delivery.key_allows(standin_key(new), secure, ACCOUNT, HOME, trail, None)
    assert not trail_delivery.key_allows(standin_key(old), secure, ACCOUNT, HOME, trail, None)
    assert not trail_delivery.key_allows(standin_key(old), standin_bucket(bucket_name, policy, False), ACCOUNT, HOME, trail, None)
    # what the old statement lacked, request by request
    describe = delivery.service_request("cloudtrail.amazonaws.com", "kms:DescribeKey", "k", ACCOUNT, trail)
    assert evaluate(old, describe) is None and evaluate(new, describe) == ALLOW
    encrypt = delivery.service_request("cloudtrail.amazonaws.com", "kms:GenerateDataKey", "k", ACCOUNT, trail,
                                       **{"kms:EncryptionContext:aws:cloudtrail:arn": trail})
    assert evaluate(old, encrypt) == ALLOW and evaluate(new, encrypt) == ALLOW
    # another account's trail may not use the key
    stranger = "arn:aws:cloudtrail:us-east-1:999999999999:trail/x"
    assert evaluate(new, delivery.service_request("cloudtrail.amazonaws.com", "kms:GenerateDataKey", "k", "999999999999", stranger,
                                                  **{"kms:EncryptionContext:aws:cloudtrail:arn": stranger})) is None


def test_shipped_policies_pass_through_the_emulator(aws):  # noqa: F811
    """F09's key, F07's bucket and trail, F01's Config role and F08's bucket, recorder and channel,
    made in the order cm-baseline makes them, with the shipped documents."""
    acct = ACCOUNT
    kms, s3, iam = aws("kms", account=acct), aws("s3", account=acct), aws("iam", account=acct)
    key = kms.create_key(Description="cm-members logs key", Policy=json.dumps(shipped("resource/logs-key-policy.json", acct)))["KeyMetadata"]
    kms.create_alias(AliasName="alias/cm-members-logs-key", TargetKeyId=key["KeyId"])
    sse = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/cm-members-logs-key"},
                      "BucketKeyEnabled": True}]}
    trail_bucket, config_bucket = f"cm-members-cloudtrail-{acct}", f"cm-members-config-{acct}"
    make_bucket(aws, acct, trail_bucket, json.dumps(shipped("resource/cloudtrail-bucket.json", acct)), encryption=sse)
    ct = aws("cloudtrail", account=acct)
    made = ct.create_trail(Name="Members", S3BucketName=trail_bucket, IsMultiRegionTrail=True, IncludeGlobalServiceEvents=True,
                           EnableLogFileValidation=True, KmsKeyId="alias/cm-members-logs-key")
    assert made["KmsKeyId"] == key["Arn"]
    ct.update_trail(Name="Members", S3BucketName=trail_bucket, KmsKeyId="alias/cm-members-logs-key")
    # The key policy as shipped before is refused.
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(old_logs_key_policy(acct)))
    assert message_of(ct.update_trail, Name="Members", S3BucketName=trail_bucket, KmsKeyId="alias/cm-members-logs-key")[0] == (
        "InsufficientEncryptionPolicyException")
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(shipped("resource/logs-key-policy.json", acct)))

    # AWS Config, through the recorder's role (F01) and, separately, as the service principal.
    iam.create_role(RoleName="cm-config-role-all-regions", AssumeRolePolicyDocument=json.dumps(shipped("trust/config.json", acct)))
    iam.attach_role_policy(RoleName="cm-config-role-all-regions", PolicyArn="arn:aws:iam::aws:policy/service-role/AWS_ConfigRole")
    iam.put_role_policy(RoleName="cm-config-role-all-regions", PolicyName="CMConfigPolicy",
                        PolicyDocument=json.dumps(shipped("inline/CMConfigPolicy.json", acct)))
    make_bucket(aws, acct, config_bucket, json.dumps(shipped("resource/config-bucket.json", acct)), encryption=sse)
    role = f"arn:aws:iam::{acct}:role/cm-config-role-all-regions"
    for region in (HOME, "us-east-1"):  # every region delivers to the home region's bucket
        cfg = recorder(aws, acct, role, region=region)
        cfg.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": config_bucket, "s3KmsKeyArn": key["Arn"]})
    # As the service principal only: a recorder role without S3 permissions.
    sp_only = "444444444422"
    kms2, iam2 = aws("kms", account=sp_only), aws("iam", account=sp_only)
    key2 = kms2.create_key(Policy=json.dumps(shipped("resource/logs-key-policy.json", sp_only)))["KeyMetadata"]["Arn"]
    bucket2 = f"cm-members-config-{sp_only}"
    sse2 = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key2}, "BucketKeyEnabled": True}]}
    make_bucket(aws, sp_only, bucket2, json.dumps(shipped("resource/config-bucket.json", sp_only)), encryption=sse2)
    iam2.create_role(RoleName="cm-config-role-all-regions", AssumeRolePolicyDocument=json.dumps(shipped("trust/config.json", sp_only)))
    cfg2 = recorder(aws, sp_only, f"arn:aws:iam::{sp_only}:role/cm-config-role-all-regions")
    cfg2.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": bucket2, "s3KmsKeyArn": key2})
