"""Checks of the emulator extension (cm_emulator) through boto3, against `server.py` started
once for this module on a free 127.0.0.1 port. Every answer boto3 receives is also checked
against the botocore model the way a strict SDK reads it (wirecheck.py): a test fails if any
answer has the wrong shape, a missing required member or a wrong timestamp type.

Run: <emulator venv>/bin/python -m pytest -q tests/support/emulator
"""

import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import botocore
import botocore.parsers
import botocore.retries.standard
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import wirecheck
from cm_emulator import cbor
from delivery_policies import config_bucket_policy, cloudtrail_bucket_policy, logs_key_policy

HERE = Path(__file__).resolve().parent
REGION = "ap-northeast-1"
OTHER_REGION = "us-east-1"
MEMBER_A = "111111111111"
MEMBER_B = "222222222222"


def fsbp(region):
    return f"arn:aws:securityhub:{region}::standards/aws-foundational-security-best-practices/v/1.0.0"


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("emulator") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(HERE / "server.py"), "--host", "127.0.0.1", "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError("emulator did not start: " + log.read_text(errors="replace")[-2000:])
            time.sleep(0.1)
    # The tests make a role just before they hand it to a service: no IAM propagation delay
    # here (test_strict_iam.py checks the delay).
    post(url + "/cm-emulator/iam-propagation", {"seconds": 0})
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    # an exception inside the extension is printed by the dispatcher; none is expected
    assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")[-4000:]


def post(url, doc=None):
    data = json.dumps(doc).encode() if doc is not None else b""
    req = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:  # a reset takes seconds, more on a busy machine
        return r.status, r.read()


CREDS = {}  # member account -> assumed-role credentials (valid until the next reset)


def reset(endpoint):
    post(endpoint + "/moto-api/reset")
    CREDS.clear()


class Aws:
    """Makes checked boto3 clients as the management account or a member (by AssumeRole)."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.clients = []
        self.creds = CREDS

    def __call__(self, service, region=REGION, account=None, session=None, validate=True):
        base = dict(endpoint_url=self.endpoint, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")
        if account:
            if account not in self.creds:
                sts = boto3.client("sts", **base)
                self.creds[account] = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/cm-test", RoleSessionName="cm-test")["Credentials"]
            c = self.creds[account]
            base.update(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])
        cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, parameter_validation=validate)
        client = (session or boto3.Session()).client(service, config=cfg, **base)
        self.clients.append(wirecheck.attach(client))
        return client


@pytest.fixture
def aws(endpoint):
    # No reset between tests: moto's reset re-creates every backend made so far (seconds).
    # Tests keep apart instead: per-account singletons (hub, graph, detector) each live in a
    # Region of their own test; the last test checks the reset.
    factory = Aws(endpoint)
    yield factory
    problems = [p for c in factory.clients for p in c.wire_problems]
    assert not problems, "answers a strict SDK would reject:\n" + "\n".join(problems)


def error_of(call, *args, **kwargs):
    with pytest.raises(ClientError) as e:
        call(*args, **kwargs)
    return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def organization(aws):
    """The management account's Organizations client, the Organization made if no test made it yet."""
    org = aws("organizations")
    try:
        org.create_organization(FeatureSet="ALL")
    except ClientError:
        pass  # made by an earlier test (the emulator is shared by the module)
    return org


def trusting(service):
    """A trust policy that lets `service` assume the role (a service refuses a role it cannot assume)."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})


# ---------------------------------------------------------------- IAM (cost of an account)


def test_iam_managed_policies_per_account_in_aws_partition(aws):
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "config.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    arn = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    first, second = aws("iam", account="333333333331"), aws("iam", account="333333333332")
    listed = [p["PolicyName"] for page in first.get_paginator("list_policies").paginate(Scope="AWS") for p in page["Policies"]]
    assert len(listed) > 1000 and "ReadOnlyAccess" in listed and "AWS_ConfigRole" in listed
    first.create_role(RoleName="cm-test-role", AssumeRolePolicyDocument=trust)
    first.attach_role_policy(RoleName="cm-test-role", PolicyArn=arn)
    assert first.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    # each account has its own copy: an attachment in one is not counted in another
    assert second.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 0
    assert [p["PolicyArn"] for p in first.list_attached_role_policies(RoleName="cm-test-role")["AttachedPolicies"]] == [arn]


# ---------------------------------------------------------------- S3 (kept behaviours)


def test_dynamodb_conditional_writes_are_atomic_under_concurrent_writers(aws):
    # The journal's shards race on conditional writes (the slot's run, a run's status); as
    # in DynamoDB, exactly one writer wins each round: every success is one increment.
    db = aws("dynamodb")
    db.create_table(TableName="cas-check", BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    db.put_item(TableName="cas-check", Item={"pk": {"S": "n"}, "v": {"N": "0"}})

    def writer(_):
        client, won = aws("dynamodb"), 0
        for _ in range(25):
            seen = client.get_item(TableName="cas-check", Key={"pk": {"S": "n"}}, ConsistentRead=True)["Item"]["v"]["N"]
            try:
                client.update_item(TableName="cas-check", Key={"pk": {"S": "n"}}, UpdateExpression="SET v = :next",
                                   ConditionExpression="v = :seen",
                                   ExpressionAttributeValues={":seen": {"N": seen}, ":next": {"N": str(int(seen) + 1)}})
                won += 1
            except ClientError as e:
                assert e.response["Error"]["Code"] == "ConditionalCheckFailedException"
        return won

    with ThreadPoolExecutor(8) as pool:
        wins = sum(pool.map(writer, range(8)))
    final = int(db.get_item(TableName="cas-check", Key={"pk": {"S": "n"}}, ConsistentRead=True)["Item"]["v"]["N"])
    assert wins == final > 0


def test_s3_request_payment_and_versioning_root(aws):
    s3 = aws("s3")
    s3.create_bucket(Bucket="cm-test-bucket", CreateBucketConfiguration={"LocationConstraint": REGION})
    assert s3.get_bucket_request_payment(Bucket="cm-test-bucket")["Payer"] == "BucketOwner"
    s3.put_bucket_request_payment(Bucket="cm-test-bucket", RequestPaymentConfiguration={"Payer": "Requester"})
    assert s3.get_bucket_request_payment(Bucket="cm-test-bucket")["Payer"] == "Requester"
    s3.put_bucket_versioning(Bucket="cm-test-bucket", VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket="cm-test-bucket")["Status"] == "Enabled"  # root element checked by wirecheck


def test_s3_object_lock_as_aws_answers(aws, endpoint):
    s3 = aws("s3")
    loc = {"LocationConstraint": REGION}
    s3.create_bucket(Bucket="cm-test-plain", CreateBucketConfiguration=loc)
    assert error_of(s3.get_object_lock_configuration, Bucket="cm-test-plain") == ("ObjectLockConfigurationNotFoundError", 404)
    one_year = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 1}}}
    assert error_of(s3.put_object_lock_configuration, Bucket="cm-test-plain", ObjectLockConfiguration=one_year) == ("InvalidBucketState", 409)
    s3.put_bucket_versioning(Bucket="cm-test-plain", VersioningConfiguration={"Status": "Suspended"})  # no lock: allowed

    s3.create_bucket(Bucket="cm-test-locked", CreateBucketConfiguration=loc, ObjectLockEnabledForBucket=True)
    assert s3.get_bucket_versioning(Bucket="cm-test-locked")["Status"] == "Enabled"
    assert s3.get_object_lock_configuration(Bucket="cm-test-locked")["ObjectLockConfiguration"] == {"ObjectLockEnabled": "Enabled"}
    # Only the period that was set comes back (moto adds the other one as 0).
    s3.put_object_lock_configuration(Bucket="cm-test-locked", ObjectLockConfiguration=one_year)
    assert s3.get_object_lock_configuration(Bucket="cm-test-locked")["ObjectLockConfiguration"] == one_year
    thirty_days = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}}}
    s3.put_object_lock_configuration(Bucket="cm-test-locked", ObjectLockConfiguration=thirty_days)
    assert s3.get_object_lock_configuration(Bucket="cm-test-locked")["ObjectLockConfiguration"] == thirty_days
    both = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30, "Years": 1}}}
    assert error_of(s3.put_object_lock_configuration, Bucket="cm-test-locked", ObjectLockConfiguration=both) == ("MalformedXML", 400)
    # A period of 0 is refused, naming the member.
    for period in ("Days", "Years"):
        zero = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", period: 0}}}
        with pytest.raises(ClientError) as e:
            s3.put_object_lock_configuration(Bucket="cm-test-locked", ObjectLockConfiguration=zero)
        err = e.value.response
        assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == ("InvalidArgument", 400)
        assert err["Error"]["Message"] == "Default retention period must be a positive integer value."
        assert err["Error"]["ArgumentName"] == period
    assert s3.get_object_lock_configuration(Bucket="cm-test-locked")["ObjectLockConfiguration"] == thirty_days
    # Versioning of a bucket with Object Lock cannot be suspended; enabling it again is a no-op.
    assert error_of(s3.put_bucket_versioning, Bucket="cm-test-locked", VersioningConfiguration={"Status": "Suspended"}) == ("InvalidBucketState", 409)
    s3.put_bucket_versioning(Bucket="cm-test-locked", VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket="cm-test-locked")["Status"] == "Enabled"


def test_cloudtrail_keeps_the_kms_key_arn_an_alias_named(aws):
    kms = aws("kms", account=MEMBER_A)
    key = kms.create_key(Description="logs", Policy=logs_key_policy(MEMBER_A))["KeyMetadata"]
    kms.create_alias(AliasName="alias/cm-test-logs", TargetKeyId=key["KeyId"])
    s3 = aws("s3", account=MEMBER_A)
    s3.create_bucket(Bucket=f"cm-test-trail-{MEMBER_A}", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_policy(Bucket=f"cm-test-trail-{MEMBER_A}", Policy=cloudtrail_bucket_policy(f"cm-test-trail-{MEMBER_A}", MEMBER_A))
    ct = aws("cloudtrail", account=MEMBER_A)
    made = ct.create_trail(Name="cm-test", S3BucketName=f"cm-test-trail-{MEMBER_A}", KmsKeyId="alias/cm-test-logs")
    assert made["KmsKeyId"] == key["Arn"]
    # The alias goes; the trail still names the key it was given.
    kms.delete_alias(AliasName="alias/cm-test-logs")
    assert ct.describe_trails(trailNameList=["cm-test"])["trailList"][0]["KmsKeyId"] == key["Arn"]
    assert ct.get_trail(Name="cm-test")["Trail"]["KmsKeyId"] == key["Arn"]
    assert error_of(ct.update_trail, Name="cm-test", KmsKeyId="alias/cm-test-logs") == ("KmsKeyNotFoundException", 400)
    other = kms.create_key(Description="other", Policy=logs_key_policy(MEMBER_A))["KeyMetadata"]
    for ref in (other["KeyId"], other["Arn"]):
        assert ct.update_trail(Name="cm-test", KmsKeyId=ref)["KmsKeyId"] == other["Arn"]
    # A key of another account is not found in this one.
    elsewhere = aws("kms", account=MEMBER_B).create_key(Description="b")["KeyMetadata"]
    assert error_of(ct.update_trail, Name="cm-test", KmsKeyId=elsewhere["KeyId"]) == ("KmsKeyNotFoundException", 400)


# ---------------------------------------------------------------- Security Hub


def test_securityhub_hub_lifecycle_and_tags(aws):
    R = "eu-west-1"
    R2 = "eu-west-2"
    sh = aws("securityhub", region=R)
    assert error_of(sh.describe_hub) == ("InvalidAccessException", 401)
    assert error_of(sh.list_tags_for_resource, ResourceArn=f"arn:aws:securityhub:{R}:123456789012:hub/default")[0] == "InvalidAccessException"
    sh.enable_security_hub(Tags={"owner": "cm"}, EnableDefaultStandards=False, ControlFindingGenerator="STANDARD_CONTROL")
    hub = sh.describe_hub()
    arn = f"arn:aws:securityhub:{R}:123456789012:hub/default"
    assert hub["HubArn"] == arn and hub["ControlFindingGenerator"] == "STANDARD_CONTROL" and hub["AutoEnableControls"] is True
    assert sh.describe_hub(HubArn=arn)["HubArn"] == arn
    assert error_of(sh.enable_security_hub) == ("ResourceConflictException", 409)
    sh.update_security_hub_configuration(AutoEnableControls=False, ControlFindingGenerator="SECURITY_CONTROL")
    hub = sh.describe_hub()
    assert hub["AutoEnableControls"] is False and hub["ControlFindingGenerator"] == "SECURITY_CONTROL"
    assert "Administrator" not in sh.get_administrator_account()
    assert sh.get_findings()["Findings"] == []  # operations not intercepted still reach moto
    assert sh.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"owner": "cm"}
    sh.tag_resource(ResourceArn=arn, Tags={"a": "1", "b": "2"})
    sh.untag_resource(ResourceArn=arn, TagKeys=["a", "owner"])
    assert sh.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"b": "2"}
    assert error_of(sh.list_tags_for_resource, ResourceArn=f"arn:aws:securityhub:{R2}:123456789012:hub/default")[0] == "ResourceNotFoundException"
    assert sh.get_enabled_standards()["StandardsSubscriptions"] == []
    sh.disable_security_hub()
    assert error_of(sh.describe_hub) == ("InvalidAccessException", 401)
    sh.enable_security_hub()  # default standards this time
    assert {s["StandardsArn"] for s in sh.get_enabled_standards()["StandardsSubscriptions"]} == {
        fsbp(R), "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0"}
    assert sh.list_tags_for_resource(ResourceArn=arn)["Tags"] == {}


def test_securityhub_enable_again_is_a_conflict(aws):
    """One hub per account and Region: EnableSecurityHub again is AWS's 409 and changes nothing."""
    R = "me-central-1"
    sh = aws("securityhub", region=R)
    sh.enable_security_hub(Tags={"owner": "customer"}, EnableDefaultStandards=False, ControlFindingGenerator="STANDARD_CONTROL")
    with pytest.raises(ClientError) as e:
        sh.enable_security_hub(Tags={"owner": "cm"}, ControlFindingGenerator="SECURITY_CONTROL")
    err = e.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == ("ResourceConflictException", 409)
    assert err["Error"]["Message"] == "Account is already subscribed to Security Hub"
    assert err["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "ResourceConflictException"
    hub = sh.describe_hub()
    assert hub["ControlFindingGenerator"] == "STANDARD_CONTROL"
    assert sh.list_tags_for_resource(ResourceArn=hub["HubArn"])["Tags"] == {"owner": "customer"}
    assert sh.get_enabled_standards()["StandardsSubscriptions"] == []
    # another account or another Region has a hub of its own
    aws("securityhub", region=R, account=MEMBER_B).enable_security_hub(EnableDefaultStandards=False)
    aws("securityhub", region="me-south-1").enable_security_hub(EnableDefaultStandards=False)


@pytest.fixture
def securityhub_untimed(endpoint):
    """A standard READY as soon as it is enabled and no request rates, for tests of other
    rules (the PENDING period and the rates have tests of their own: test_strict_securityhub)."""
    post(endpoint + "/cm-emulator/securityhub", {"pending_seconds": 0, "rate_limits": False})
    yield
    post(endpoint + "/cm-emulator/securityhub", {"pending_seconds": 3, "rate_limits": True})


def test_securityhub_standards_and_controls(aws, securityhub_untimed):
    R = "eu-west-3"
    R2 = "eu-central-1"
    sh = aws("securityhub", region=R)
    assert error_of(sh.batch_enable_standards, StandardsSubscriptionRequests=[{"StandardsArn": fsbp(R)}])[0] == "InvalidAccessException"
    sh.enable_security_hub(EnableDefaultStandards=False)
    out = sh.batch_enable_standards(StandardsSubscriptionRequests=[{"StandardsArn": fsbp(R)}])["StandardsSubscriptions"][0]
    sub = f"arn:aws:securityhub:{R}:123456789012:subscription/aws-foundational-security-best-practices/v/1.0.0"
    assert out["StandardsSubscriptionArn"] == sub and out["StandardsStatus"] == "READY"
    assert [s["StandardsSubscriptionArn"] for s in sh.get_enabled_standards()["StandardsSubscriptions"]] == [sub]
    assert sh.get_enabled_standards(StandardsSubscriptionArns=["arn:nope"])["StandardsSubscriptions"] == []
    wrong_region = fsbp(R).replace(R, OTHER_REGION)
    assert error_of(sh.batch_enable_standards, StandardsSubscriptionRequests=[{"StandardsArn": wrong_region}])[0] == "InvalidInputException"

    ids = [{"SecurityControlId": c, "StandardsArn": fsbp(R)} for c in ("Account.1", "CloudTrail.5", "IAM.6", "KMS.1", "Config.1", "IAM.21", "Zzz.42")]
    got = sh.batch_get_standards_control_associations(StandardsControlAssociationIds=ids)
    assert [d["AssociationStatus"] for d in got["StandardsControlAssociationDetails"]] == ["ENABLED"] * 6
    assert [(u["StandardsControlAssociationId"]["SecurityControlId"], u["ErrorCode"]) for u in got["UnprocessedAssociations"]] == [
        ("Zzz.42", "RESOURCE_NOT_FOUND")]  # a control the standard does not have
    assert got["StandardsControlAssociationDetails"][2]["SecurityControlArn"] == f"arn:aws:securityhub:{R}:123456789012:security-control/IAM.6"
    upd = sh.batch_update_standards_control_associations(StandardsControlAssociationUpdates=[
        {"StandardsArn": fsbp(R), "SecurityControlId": "IAM.6", "AssociationStatus": "DISABLED", "UpdatedReason": "no hardware MFA"},
        {"StandardsArn": "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0", "SecurityControlId": "IAM.6", "AssociationStatus": "DISABLED"},
    ])
    assert [u["ErrorCode"] for u in upd["UnprocessedAssociationUpdates"]] == ["RESOURCE_NOT_FOUND"]
    summary = sh.list_standards_control_associations(SecurityControlId="IAM.6")["StandardsControlAssociationSummaries"]
    assert [(s["StandardsArn"], s["AssociationStatus"], s["UpdatedReason"]) for s in summary] == [(fsbp(R), "DISABLED", "no hardware MFA")]
    assert sh.list_standards_control_associations(SecurityControlId="KMS.2")["StandardsControlAssociationSummaries"][0]["AssociationStatus"] == "ENABLED"

    out = sh.batch_disable_standards(StandardsSubscriptionArns=[sub])["StandardsSubscriptions"][0]
    assert out["StandardsStatus"] == "DELETING"
    assert sh.get_enabled_standards()["StandardsSubscriptions"] == []
    assert sh.list_standards_control_associations(SecurityControlId="IAM.6")["StandardsControlAssociationSummaries"] == []
    sh.batch_enable_standards(StandardsSubscriptionRequests=[{"StandardsArn": fsbp(R)}])
    assert sh.list_standards_control_associations(SecurityControlId="IAM.6")["StandardsControlAssociationSummaries"][0]["AssociationStatus"] == "ENABLED"


def test_securityhub_finding_aggregator(aws):
    R = "eu-north-1"
    R2 = "eu-south-1"
    sh, sh_other = aws("securityhub", region=R), aws("securityhub", region=R2)
    assert error_of(sh.list_finding_aggregators)[0] == "InvalidAccessException"
    sh.enable_security_hub(EnableDefaultStandards=False)
    sh_other.enable_security_hub(EnableDefaultStandards=False)
    assert error_of(sh.create_finding_aggregator, RegionLinkingMode="SPECIFIED_REGIONS")[0] == "InvalidInputException"
    created = sh.create_finding_aggregator(RegionLinkingMode="ALL_REGIONS")
    arn = created["FindingAggregatorArn"]
    assert arn.startswith(f"arn:aws:securityhub:{R}:123456789012:finding-aggregator/")
    assert created["FindingAggregationRegion"] == R and created["RegionLinkingMode"] == "ALL_REGIONS"
    assert error_of(sh_other.create_finding_aggregator, RegionLinkingMode="ALL_REGIONS")[0] == "InvalidInputException"
    assert sh_other.list_finding_aggregators()["FindingAggregators"] == [{"FindingAggregatorArn": arn}]
    assert sh.get_finding_aggregator(FindingAggregatorArn=arn)["RegionLinkingMode"] == "ALL_REGIONS"
    upd = sh.update_finding_aggregator(FindingAggregatorArn=arn, RegionLinkingMode="SPECIFIED_REGIONS", Regions=[R2])
    assert upd["Regions"] == [R2]
    assert sh.get_finding_aggregator(FindingAggregatorArn=arn)["Regions"] == [R2]
    assert error_of(sh_other.delete_finding_aggregator, FindingAggregatorArn=arn)[0] == "InvalidInputException"
    sh.delete_finding_aggregator(FindingAggregatorArn=arn)
    assert sh.list_finding_aggregators()["FindingAggregators"] == []
    assert error_of(sh.get_finding_aggregator, FindingAggregatorArn=arn) == ("ResourceNotFoundException", 404)


def test_securityhub_automation_rules_round_trip(aws):
    R = "ap-south-1"
    sh = aws("securityhub", region=R)
    sh.enable_security_hub(EnableDefaultStandards=False)
    criteria = {
        "ProductName": [{"Value": "Security Hub", "Comparison": "EQUALS"}],
        "ComplianceSecurityControlId": [{"Value": "IAM.6", "Comparison": "EQUALS"}],
        "ResourceTags": [{"Key": "env", "Value": "dev", "Comparison": "EQUALS"}],
        "Criticality": [{"Gte": 10.0, "Lte": 50.5}],
        "UpdatedAt": [{"DateRange": {"Value": 7, "Unit": "DAYS"}}],
    }
    actions = [{"Type": "FINDING_FIELDS_UPDATE", "FindingFieldsUpdate": {
        "Workflow": {"Status": "SUPPRESSED"}, "Note": {"Text": "baseline", "UpdatedBy": "cm-baseline"}, "Severity": {"Label": "LOW"}}}]
    arn = sh.create_automation_rule(RuleName="suppress-iam6", Description="d", RuleOrder=5, RuleStatus="ENABLED",
                                    IsTerminal=True, Criteria=criteria, Actions=actions, Tags={"managed-by": "cm"})["RuleArn"]
    assert arn.startswith(f"arn:aws:securityhub:{R}:123456789012:automation-rule/")
    second = sh.create_automation_rule(RuleName="r2", Description="d2", RuleOrder=1, Criteria={}, Actions=actions)["RuleArn"]
    meta = sh.list_automation_rules()["AutomationRulesMetadata"]
    assert [m["RuleArn"] for m in meta] == [second, arn]
    rule = sh.batch_get_automation_rules(AutomationRulesArns=[arn])["Rules"][0]
    assert rule["Criteria"] == criteria and rule["Actions"] == actions
    assert (rule["RuleOrder"], rule["IsTerminal"], rule["RuleStatus"]) == (5, True, "ENABLED")
    assert sh.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"managed-by": "cm"}
    missing = arn[:-4] + "0000"
    out = sh.batch_update_automation_rules(UpdateAutomationRulesRequestItems=[
        {"RuleArn": arn, "RuleStatus": "DISABLED", "RuleOrder": 9}, {"RuleArn": missing, "RuleOrder": 2}])
    assert out["ProcessedAutomationRules"] == [arn] and out["UnprocessedAutomationRules"][0]["ErrorCode"] == 404
    rule = sh.batch_get_automation_rules(AutomationRulesArns=[arn, missing])
    assert (rule["Rules"][0]["RuleStatus"], rule["Rules"][0]["RuleOrder"]) == ("DISABLED", 9)
    assert rule["UnprocessedAutomationRules"][0]["RuleArn"] == missing
    lax = aws("securityhub", region=R, validate=False)
    assert error_of(lax.create_automation_rule, RuleName="x", Description="d", RuleOrder=0, Criteria={}, Actions=actions)[0] == "InvalidInputException"
    assert sh.batch_delete_automation_rules(AutomationRulesArns=[arn, second])["ProcessedAutomationRules"] == [arn, second]
    assert sh.list_automation_rules()["AutomationRulesMetadata"] == []
    assert error_of(sh.list_tags_for_resource, ResourceArn=arn)[0] == "ResourceNotFoundException"


def test_securityhub_isolation_by_account_and_region(aws):
    R = "ap-southeast-1"
    R2 = "ap-southeast-2"
    a, b = aws("securityhub", region=R, account=MEMBER_A), aws("securityhub", region=R, account=MEMBER_B)
    a_other = aws("securityhub", region=R2, account=MEMBER_A)
    a.enable_security_hub(EnableDefaultStandards=False)
    assert a.describe_hub()["HubArn"] == f"arn:aws:securityhub:{R}:{MEMBER_A}:hub/default"
    assert error_of(b.describe_hub)[0] == "InvalidAccessException"
    assert error_of(a_other.describe_hub)[0] == "InvalidAccessException"
    a.batch_enable_standards(StandardsSubscriptionRequests=[{"StandardsArn": fsbp(R)}])
    b.enable_security_hub(EnableDefaultStandards=False)
    assert b.get_enabled_standards()["StandardsSubscriptions"] == []


def test_securityhub_administrator_account(aws):
    """Organization admin stays moto's; the answer's InvitedAt is made RFC 3339 (wirecheck)."""
    R = "ca-west-1"
    org = organization(aws)
    status = org.create_account(Email="sh-member@example.com", AccountName="sh-member")["CreateAccountStatus"]
    member = status["AccountId"]
    aws("securityhub", region=R).enable_security_hub(EnableDefaultStandards=False)
    aws("securityhub", region=R).enable_organization_admin_account(AdminAccountId="123456789012")
    m = aws("securityhub", region=R, account=member)
    assert error_of(m.get_administrator_account)[0] == "InvalidAccessException"
    m.enable_security_hub(EnableDefaultStandards=False)
    assert m.get_administrator_account()["Administrator"]["AccountId"] == "123456789012"


# ---------------------------------------------------------------- Detective


def test_detective_graph(aws):
    R = "ca-central-1"
    R2 = "sa-east-1"
    d = aws("detective", region=R)
    assert d.list_graphs()["GraphList"] == []
    arn = d.create_graph(Tags={"owner": "cm"})["GraphArn"]
    assert arn.startswith(f"arn:aws:detective:{R}:123456789012:graph:") and len(arn.rsplit(":", 1)[1]) == 32
    assert error_of(d.create_graph) == ("ConflictException", 409)
    graphs = d.list_graphs()["GraphList"]
    assert [g["Arn"] for g in graphs] == [arn] and graphs[0]["CreatedTime"].year >= 2024
    d.tag_resource(ResourceArn=arn, Tags={"a": "1"})
    d.untag_resource(ResourceArn=arn, TagKeys=["owner"])
    assert d.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"a": "1"}
    assert aws("detective", region=R, account=MEMBER_A).list_graphs()["GraphList"] == []
    assert aws("detective", region=R2).list_graphs()["GraphList"] == []
    d.delete_graph(GraphArn=arn)
    assert d.list_graphs()["GraphList"] == []
    assert error_of(d.delete_graph, GraphArn=arn) == ("ResourceNotFoundException", 404)
    assert error_of(d.list_tags_for_resource, ResourceArn=arn) == ("ResourceNotFoundException", 404)


# ---------------------------------------------------------------- Access Analyzer


def test_access_analyzer(aws):
    R = "ap-northeast-2"
    R2 = "ap-northeast-3"
    aa = aws("accessanalyzer", region=R)
    flt = {"isPublic": {"eq": ["false"]}, "principal.AWS": {"contains": ["123456789012"]}, "resourceType": {"neq": ["AWS::S3::Bucket"]}, "error": {"exists": False}}
    arn = aa.create_analyzer(analyzerName="cm-account", type="ACCOUNT", tags={"owner": "cm"},
                             archiveRules=[{"ruleName": "internal", "filter": flt}])["arn"]
    assert arn == f"arn:aws:access-analyzer:{R}:123456789012:analyzer/cm-account"
    got = aa.get_analyzer(analyzerName="cm-account")["analyzer"]
    assert (got["status"], got["type"], got["tags"]) == ("ACTIVE", "ACCOUNT", {"owner": "cm"})
    assert error_of(aa.create_analyzer, analyzerName="cm-account", type="ACCOUNT") == ("ConflictException", 409)
    aa.create_analyzer(analyzerName="cm-unused", type="ACCOUNT_UNUSED_ACCESS", configuration={"unusedAccess": {"unusedAccessAge": 60}})
    assert [a["name"] for a in aa.list_analyzers()["analyzers"]] == ["cm-account", "cm-unused"]
    assert [a["name"] for a in aa.list_analyzers(type="ACCOUNT")["analyzers"]] == ["cm-account"]
    assert aa.get_analyzer(analyzerName="cm-unused")["analyzer"]["configuration"]["unusedAccess"]["unusedAccessAge"] == 60

    assert aa.get_archive_rule(analyzerName="cm-account", ruleName="internal")["archiveRule"]["filter"] == flt
    aa.create_archive_rule(analyzerName="cm-account", ruleName="second", filter={"resourceType": {"eq": ["AWS::KMS::Key"]}})
    assert error_of(aa.create_archive_rule, analyzerName="cm-account", ruleName="second", filter={"x": {"eq": ["y"]}}) == ("ConflictException", 409)
    assert error_of(aa.create_archive_rule, analyzerName="cm-account", ruleName="bad", filter={"x": {}}) == ("ValidationException", 400)
    aa.update_archive_rule(analyzerName="cm-account", ruleName="second", filter={"resourceType": {"eq": ["AWS::IAM::Role"]}})
    rules = aa.list_archive_rules(analyzerName="cm-account")["archiveRules"]
    assert [(r["ruleName"], r["filter"].get("resourceType")) for r in rules] == [("internal", {"neq": ["AWS::S3::Bucket"]}), ("second", {"eq": ["AWS::IAM::Role"]})]
    aa.delete_archive_rule(analyzerName="cm-account", ruleName="second")
    assert error_of(aa.get_archive_rule, analyzerName="cm-account", ruleName="second") == ("ResourceNotFoundException", 404)

    aa.tag_resource(resourceArn=arn, tags={"a": "1"})
    aa.untag_resource(resourceArn=arn, tagKeys=["owner"])
    assert aa.list_tags_for_resource(resourceArn=arn)["tags"] == {"a": "1"}
    assert aws("accessanalyzer", region=R, account=MEMBER_A).list_analyzers()["analyzers"] == []
    assert aws("accessanalyzer", region=R2).list_analyzers()["analyzers"] == []
    aa.delete_analyzer(analyzerName="cm-account")
    assert error_of(aa.get_analyzer, analyzerName="cm-account") == ("ResourceNotFoundException", 404)


def test_access_analyzer_one_analyzer_per_type(aws):
    """Quotas: one analyzer of an account-level type per account and Region, five of an
    organization type; one more under another name is ServiceQuotaExceededException."""
    R = "eu-west-1"
    aa = aws("accessanalyzer", region=R)
    aa.create_analyzer(analyzerName="customer", type="ACCOUNT")
    with pytest.raises(ClientError) as e:
        aa.create_analyzer(analyzerName="cm-account", type="ACCOUNT")
    err = e.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == ("ServiceQuotaExceededException", 402)
    assert (err["resourceId"], err["resourceType"]) == ("cm-account", "Analyzer")  # the model's required members
    # a name is taken whatever the type: ConflictException comes first
    assert error_of(aa.create_analyzer, analyzerName="customer", type="ACCOUNT_UNUSED_ACCESS") == ("ConflictException", 409)
    aa.create_analyzer(analyzerName="cm-unused", type="ACCOUNT_UNUSED_ACCESS")  # each type has its own quota
    assert error_of(aa.create_analyzer, analyzerName="cm-unused-2", type="ACCOUNT_UNUSED_ACCESS") == ("ServiceQuotaExceededException", 402)
    assert [a["name"] for a in aa.list_analyzers()["analyzers"]] == ["customer", "cm-unused"]
    for i in range(5):
        aa.create_analyzer(analyzerName=f"org-{i}", type="ORGANIZATION")
    assert error_of(aa.create_analyzer, analyzerName="org-5", type="ORGANIZATION") == ("ServiceQuotaExceededException", 402)
    # per account and Region; a deleted analyzer frees its place
    aws("accessanalyzer", region=R, account=MEMBER_A).create_analyzer(analyzerName="cm-account", type="ACCOUNT")
    aws("accessanalyzer", region=OTHER_REGION).create_analyzer(analyzerName="cm-account", type="ACCOUNT")
    aa.delete_analyzer(analyzerName="customer")
    aa.create_analyzer(analyzerName="cm-account", type="ACCOUNT")


# ---------------------------------------------------------------- Compute Optimizer


def cbor_session(tmp_path):
    """A botocore session whose Compute Optimizer model offers only RPC v2 CBOR."""
    data = Path(botocore.__file__).parent / "data" / "compute-optimizer"
    version = sorted(os.listdir(data))[-1]
    model = json.loads(gzip.decompress((data / version / "service-2.json.gz").read_bytes()))
    model["metadata"]["protocol"] = "smithy-rpc-v2-cbor"
    model["metadata"]["protocols"] = ["smithy-rpc-v2-cbor"]
    target = tmp_path / "compute-optimizer" / version
    target.mkdir(parents=True)
    (target / "service-2.json").write_text(json.dumps(model))
    shutil.copy(data / version / "endpoint-rule-set-1.json.gz", target)
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(tmp_path))
    return boto3.Session(botocore_session=session)


@pytest.mark.parametrize("protocol", ["json", "cbor"])
def test_compute_optimizer_enrollment(aws, protocol, tmp_path):
    session = cbor_session(tmp_path) if protocol == "cbor" else None
    co = aws("compute-optimizer", session=session)
    assert co.meta.service_model.resolved_protocol == ("smithy-rpc-v2-cbor" if protocol == "cbor" else "json")
    assert co.get_enrollment_status()["status"] == "Inactive"
    assert co.update_enrollment_status(status="Active", includeMemberAccounts=True)["status"] == "Active"
    got = co.get_enrollment_status()
    assert got["status"] == "Active" and got["memberAccountsEnrolled"] is True and got["lastUpdatedTimestamp"].year >= 2024
    assert aws("compute-optimizer", account=MEMBER_A, session=session).get_enrollment_status()["status"] == "Inactive"
    assert error_of(co.update_enrollment_status, status="Pending")[0] == "InvalidParameterValueException"
    co.update_enrollment_status(status="Inactive")
    assert co.get_enrollment_status()["status"] == "Inactive"


def test_compute_optimizer_enrolls_organization_members(aws):
    org = organization(aws)
    member = org.create_account(Email="co-member@example.com", AccountName="co-member")["CreateAccountStatus"]["AccountId"]
    assert aws("compute-optimizer", account=member).get_enrollment_status()["status"] == "Inactive"
    aws("compute-optimizer").update_enrollment_status(status="Active", includeMemberAccounts=True)
    assert aws("compute-optimizer", account=member).get_enrollment_status()["status"] == "Active"
    assert aws("compute-optimizer", region=OTHER_REGION).get_enrollment_status()["numberOfMemberAccountsOptedIn"] >= 1


def test_organizations_lists_accounts_20_a_page_as_aws(aws):
    """AWS answers ListAccounts 20 accounts a page at most (MaxResults 1 to 20); moto 100."""
    org = organization(aws)
    for i in range(25):
        org.create_account(Email=f"page-{i}@example.com", AccountName=f"page-{i}")
    pages, token = [], None
    while True:
        out = org.list_accounts(**({"NextToken": token} if token else {}))
        pages.append(len(out["Accounts"]))
        token = out.get("NextToken")
        if not token:
            break
    total = sum(pages)
    assert total >= 26 and all(n == 20 for n in pages[:-1]) and 0 < pages[-1] <= 20, pages
    assert len(org.list_accounts(MaxResults=7)["Accounts"]) == 7
    root = org.list_roots()["Roots"][0]["Id"]
    assert len(org.list_accounts_for_parent(ParentId=root)["Accounts"]) == 20
    for bad, reason in ((21, "MAX_VALUE_EXCEEDED"), (100, "MAX_VALUE_EXCEEDED")):
        with pytest.raises(ClientError) as e:
            org.list_accounts(MaxResults=bad)
        assert e.value.response["Error"]["Code"] == "InvalidInputException"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert e.value.response["Reason"] == reason


def test_compute_optimizer_rust_shaped_cbor(aws, endpoint):
    """The request as aws-sdk-computeoptimizer (Rust, RPC v2 CBOR) sends it: an indefinite-length
    CBOR map; the answer is read with botocore's CBOR parser against the model."""
    model = botocore.session.get_session().get_service_model("compute-optimizer")
    parser = botocore.parsers.RpcV2CBORParser()

    def call(op, body):
        req = urllib.request.Request(f"{endpoint}/service/ComputeOptimizerService/operation/{op}", data=body, method="POST", headers={
            "Content-Type": "application/cbor", "Accept": "application/cbor", "smithy-protocol": "rpc-v2-cbor",
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20250101/eu-west-1/compute-optimizer/aws4_request, SignedHeaders=host, Signature=0"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, headers, data = r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            status, headers, data = e.code, dict(e.headers), e.read()
        assert headers.get("smithy-protocol") == "rpc-v2-cbor"
        shape = model.operation_model(op).output_shape
        return status, parser.parse({"body": data, "headers": headers, "status_code": status}, shape)

    # {_ "status": "Active", "includeMemberAccounts": true } as an indefinite map, as aws-smithy-cbor encodes it
    body = b"\xbf" + b"\x66status" + b"\x66Active" + b"\x75includeMemberAccounts" + b"\xf5" + b"\xff"
    status, out = call("UpdateEnrollmentStatus", body)
    assert (status, out["status"]) == (200, "Active")
    status, out = call("GetEnrollmentStatus", b"\xbf\xff")
    assert status == 200 and out["status"] == "Active" and out["memberAccountsEnrolled"] is True
    assert out["lastUpdatedTimestamp"].year >= 2024  # CBOR tag 1, else botocore would not make a datetime
    status, out = call("UpdateEnrollmentStatus", b"\xbf\x66status\x67Pending\xff")
    assert (status, out["Error"]["Code"]) == (400, "InvalidParameterValueException")


# ---------------------------------------------------------------- EC2


def test_regions_hook(aws, endpoint):
    post(endpoint + "/cm-emulator/regions", {"account_id": MEMBER_A, "regions": ["ap-northeast-1", "us-east-1"]})
    a = aws("ec2", account=MEMBER_A)
    regions = a.describe_regions()["Regions"]
    assert regions == [
        {"RegionName": "ap-northeast-1", "Endpoint": "ec2.ap-northeast-1.amazonaws.com", "OptInStatus": "opt-in-not-required"},
        {"RegionName": "us-east-1", "Endpoint": "ec2.us-east-1.amazonaws.com", "OptInStatus": "opt-in-not-required"},
    ]
    filtered = a.describe_regions(Filters=[{"Name": "opt-in-status", "Values": ["opt-in-not-required", "opted-in"]}], AllRegions=True)
    assert [r["RegionName"] for r in filtered["Regions"]] == ["ap-northeast-1", "us-east-1"]
    assert len(aws("ec2", account=MEMBER_B).describe_regions()["Regions"]) > 10
    post(endpoint + "/cm-emulator/regions", {"account_id": MEMBER_A, "regions": None})
    assert len(a.describe_regions()["Regions"]) > 10
    post(endpoint + "/cm-emulator/regions", {"account_id": MEMBER_B, "regions": ["eu-west-1"]})  # cleared by the reset test


def test_ec2_default_vpc_and_dependencies(aws):
    ec2 = aws("ec2", account=MEMBER_A, region=OTHER_REGION)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    assert len(subnets) >= 3
    igws = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])["InternetGateways"]
    assert len(igws) == 1 and igws[0]["Attachments"][0]["VpcId"] == vpc
    igw = igws[0]["InternetGatewayId"]
    routes = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"][0]["Routes"]
    assert any(r.get("GatewayId") == igw and r["DestinationCidrBlock"] == "0.0.0.0/0" for r in routes)
    eni = ec2.create_network_interface(SubnetId=subnets[0])["NetworkInterface"]["NetworkInterfaceId"]
    assert [n["NetworkInterfaceId"] for n in ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NetworkInterfaces"]] == [eni]

    assert error_of(ec2.delete_vpc, VpcId=vpc)[0] == "DependencyViolation"
    assert error_of(ec2.delete_subnet, SubnetId=subnets[0])[0] == "DependencyViolation"
    ec2.delete_network_interface(NetworkInterfaceId=eni)
    for s in subnets:
        ec2.delete_subnet(SubnetId=s)
    assert error_of(ec2.delete_vpc, VpcId=vpc)[0] == "DependencyViolation"  # gateway still attached
    assert error_of(ec2.delete_internet_gateway, InternetGatewayId=igw)[0] == "DependencyViolation"
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    ec2.delete_internet_gateway(InternetGatewayId=igw)
    ec2.delete_vpc(VpcId=vpc)
    assert ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"] == []
    assert ec2.describe_internet_gateways()["InternetGateways"] == []  # not re-created
    # the other account still has its default VPC with a gateway
    other = aws("ec2", account=MEMBER_B, region=OTHER_REGION)
    vpc_b = other.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    assert other.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_b]}])["InternetGateways"]


def test_ec2_ebs_default_kms_key_get_modify_reset(aws):
    ec2 = aws("ec2", account=MEMBER_B, region=OTHER_REGION)
    kms = aws("kms", account=MEMBER_B, region=OTHER_REGION)
    # Never chosen: AWS's own key, by its alias.
    assert ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == "alias/aws/ebs"
    theirs = kms.create_key(Description="the customer's EBS key")["KeyMetadata"]["Arn"]
    assert ec2.modify_ebs_default_kms_key_id(KmsKeyId=theirs)["KmsKeyId"] == theirs
    assert ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == theirs
    # Reset: the AWS managed key, made on first use, answered by its ARN.
    managed = ec2.reset_ebs_default_kms_key_id()["KmsKeyId"]
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    assert managed.endswith(f":key/{aliases['alias/aws/ebs']}")
    assert ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == managed
    assert ec2.reset_ebs_default_kms_key_id()["KmsKeyId"] == managed  # the same key again
    assert error_of(ec2.reset_ebs_default_kms_key_id, DryRun=True) == ("DryRunOperation", 412)
    # Per account and Region.
    assert aws("ec2", account=MEMBER_B, region=REGION).get_ebs_default_kms_key_id()["KmsKeyId"] == "alias/aws/ebs"


def test_ec2_delete_vpc_with_custom_security_group(aws):
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    sg = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    assert error_of(ec2.delete_vpc, VpcId=vpc)[0] == "DependencyViolation"
    ec2.delete_security_group(GroupId=sg)
    ec2.delete_vpc(VpcId=vpc)


def dependency_violation(call, **kwargs):
    """The message of the DependencyViolation (EC2 XML error, 400) that `call` must answer."""
    with pytest.raises(ClientError) as e:
        call(**kwargs)
    err = e.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == ("DependencyViolation", 400)
    return err["Error"]["Message"]


def test_ec2_delete_vpc_refused_while_anything_remains(aws):
    """Only the default security group, main route table and default network ACL go with the VPC."""
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]

    def attached_igw():
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        return igw

    def detached_igw(igw):
        ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        ec2.delete_internet_gateway(InternetGatewayId=igw)

    def attached_vgw():
        vgw = ec2.create_vpn_gateway(Type="ipsec.1")["VpnGateway"]["VpnGatewayId"]
        ec2.attach_vpn_gateway(VpcId=vpc, VpnGatewayId=vgw)
        return vgw

    dependencies = {
        "subnet": (lambda: ec2.create_subnet(VpcId=vpc, CidrBlock="10.2.1.0/24")["Subnet"]["SubnetId"],
                   lambda i: ec2.delete_subnet(SubnetId=i)),
        "internet gateway": (attached_igw, detached_igw),
        "security group": (lambda: ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"],
                           lambda i: ec2.delete_security_group(GroupId=i)),
        "route table": (lambda: ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"],
                        lambda i: ec2.delete_route_table(RouteTableId=i)),
        "network acl": (lambda: ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"],
                        lambda i: ec2.delete_network_acl(NetworkAclId=i)),
        "vpc endpoint": (lambda: ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.s3", VpcEndpointType="Gateway")["VpcEndpoint"]["VpcEndpointId"],
                         lambda i: ec2.delete_vpc_endpoints(VpcEndpointIds=[i])),
        "egress-only internet gateway": (lambda: ec2.create_egress_only_internet_gateway(VpcId=vpc)["EgressOnlyInternetGateway"]["EgressOnlyInternetGatewayId"],
                                         lambda i: ec2.delete_egress_only_internet_gateway(EgressOnlyInternetGatewayId=i)),
        "vpn gateway": (attached_vgw, lambda i: ec2.detach_vpn_gateway(VpcId=vpc, VpnGatewayId=i)),
    }
    for name, (create, delete) in dependencies.items():
        thing = create()
        assert dependency_violation(ec2.delete_vpc, VpcId=vpc) == f"The vpc '{vpc}' has dependencies and cannot be deleted.", name
        delete(thing)
    ec2.delete_vpc(VpcId=vpc)
    assert error_of(ec2.delete_vpc, VpcId=vpc) == ("InvalidVpcID.NotFound", 400)


def test_ec2_delete_subnet_refused_while_a_network_interface_is_in_it(aws):
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.3.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.3.1.0/24")["Subnet"]["SubnetId"]
    eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    refused = f"The subnet '{subnet}' has dependencies and cannot be deleted."
    assert dependency_violation(ec2.delete_subnet, SubnetId=subnet) == refused
    ec2.delete_network_interface(NetworkInterfaceId=eni)
    # a NAT gateway's interface holds the subnet until the gateway is deleted
    nat = ec2.create_nat_gateway(SubnetId=subnet, ConnectivityType="private")["NatGateway"]["NatGatewayId"]
    assert dependency_violation(ec2.delete_subnet, SubnetId=subnet) == refused
    assert dependency_violation(ec2.delete_vpc, VpcId=vpc) == f"The vpc '{vpc}' has dependencies and cannot be deleted."
    ec2.delete_nat_gateway(NatGatewayId=nat)
    assert ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NetworkInterfaces"] == []
    ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_vpc(VpcId=vpc)


def test_ec2_detach_internet_gateway_refused_while_public_addresses_are_mapped(aws):
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.4.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.4.1.0/24")["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    refused = f"Network {vpc} has some mapped public address(es). Please unmap those public address(es) before detaching the gateway."
    # an Elastic IP on a network interface
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    assoc = ec2.associate_address(AllocationId=alloc, NetworkInterfaceId=eni)["AssociationId"]
    assert dependency_violation(ec2.detach_internet_gateway, InternetGatewayId=igw, VpcId=vpc) == refused
    ec2.disassociate_address(AssociationId=assoc)
    # a public NAT gateway's address, released when the gateway is deleted
    nat = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=alloc)["NatGateway"]["NatGatewayId"]
    assert dependency_violation(ec2.detach_internet_gateway, InternetGatewayId=igw, VpcId=vpc) == refused
    ec2.delete_nat_gateway(NatGatewayId=nat)
    assert "AssociationId" not in ec2.describe_addresses(AllocationIds=[alloc])["Addresses"][0]
    # not attached to that VPC: Gateway.NotAttached, as AWS
    other = ec2.create_vpc(CidrBlock="10.5.0.0/16")["Vpc"]["VpcId"]
    assert error_of(ec2.detach_internet_gateway, InternetGatewayId=igw, VpcId=other) == ("Gateway.NotAttached", 400)
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)  # the plain interface has no public address
    ec2.delete_internet_gateway(InternetGatewayId=igw)


# ---------------------------------------------------------------- GuardDuty


def test_guardduty_corrections(aws):
    R = "us-west-2"
    R2 = "us-west-1"
    gd = aws("guardduty", region=R)
    features = [{"Name": n, "Status": "ENABLED"} for n in ("S3_DATA_EVENTS", "EKS_AUDIT_LOGS", "EBS_MALWARE_PROTECTION", "RDS_LOGIN_EVENTS", "LAMBDA_NETWORK_LOGS")]
    features.append({"Name": "RUNTIME_MONITORING", "Status": "ENABLED", "AdditionalConfiguration": [{"Name": "EKS_ADDON_MANAGEMENT", "Status": "ENABLED"}]})
    det = gd.create_detector(Enable=True, Features=features, Tags={"owner": "cm"})["DetectorId"]
    assert gd.list_detectors()["DetectorIds"] == [det]
    assert error_of(gd.create_detector, Enable=True) == ("BadRequestException", 400)
    got = gd.get_detector(DetectorId=det)
    status = {f["Name"]: f["Status"] for f in got["Features"]}
    assert status["CLOUD_TRAIL"] == status["RUNTIME_MONITORING"] == status["S3_DATA_EVENTS"] == "ENABLED"
    assert got["DataSources"]["CloudTrail"]["Status"] == "ENABLED" and got["Status"] == "ENABLED" and got["Tags"] == {"owner": "cm"}

    gd.update_detector(DetectorId=det, Features=[{"Name": "S3_DATA_EVENTS", "Status": "DISABLED"},
                                                {"Name": "RUNTIME_MONITORING", "Status": "ENABLED", "AdditionalConfiguration": [{"Name": "EKS_ADDON_MANAGEMENT", "Status": "DISABLED"}]}])
    got = gd.get_detector(DetectorId=det)
    status = {f["Name"]: f["Status"] for f in got["Features"]}
    assert status["S3_DATA_EVENTS"] == "DISABLED" and status["EKS_AUDIT_LOGS"] == "ENABLED" and status["LAMBDA_NETWORK_LOGS"] == "ENABLED"
    rm = next(f for f in got["Features"] if f["Name"] == "RUNTIME_MONITORING")
    assert rm["AdditionalConfiguration"] == [{"Name": "EKS_ADDON_MANAGEMENT", "Status": "DISABLED"}]
    assert got["DataSources"]["S3Logs"]["Status"] == "DISABLED"

    arn = f"arn:aws:guardduty:{R}:123456789012:detector/{det}"
    gd.tag_resource(ResourceArn=arn, Tags={"a": "1"})
    gd.untag_resource(ResourceArn=arn, TagKeys=["owner"])
    assert gd.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"a": "1"}
    assert gd.get_detector(DetectorId=det)["Tags"] == {"a": "1"}
    assert error_of(gd.list_tags_for_resource, ResourceArn=arn.replace(det, "0" * 32))[0] == "BadRequestException"
    assert aws("guardduty", region=R2).list_detectors()["DetectorIds"] == []
    member = aws("guardduty", region=R, account=MEMBER_A)
    assert member.list_detectors()["DetectorIds"] == []
    member.create_detector(Enable=True)


# ---------------------------------------------------------------- Step Functions


def test_stepfunctions_create_conflict(aws):
    sf = aws("stepfunctions")
    definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    role = aws("iam").create_role(RoleName="sfn", AssumeRolePolicyDocument=trusting("states.amazonaws.com"))["Role"]["Arn"]
    arn = sf.create_state_machine(name="cm-sm", definition=definition, roleArn=role, tags=[{"key": "owner", "value": "cm"}])["stateMachineArn"]
    assert sf.create_state_machine(name="cm-sm", definition=definition, roleArn=role + "2")["stateMachineArn"] == arn
    assert error_of(sf.create_state_machine, name="cm-sm", definition=definition.replace('"P"', '"Q"'), roleArn=role)[0] == "StateMachineAlreadyExists"
    sf.update_state_machine(stateMachineArn=arn, definition=definition.replace('"P"', '"Q"'), roleArn=role)
    described = sf.describe_state_machine(stateMachineArn=arn)
    assert '"Q"' in described["definition"] and described["roleArn"] == role
    sf.tag_resource(resourceArn=arn, tags=[{"key": "a", "value": "1"}])
    assert {t["key"] for t in sf.list_tags_for_resource(resourceArn=arn)["tags"]} == {"owner", "a"}
    assert [m["name"] for m in sf.list_state_machines()["stateMachines"]] == ["cm-sm"]


# ---------------------------------------------------------------- moto as is (checked shapes)


def test_config_and_eventbridge_answer_as_aws(aws):
    s3 = aws("s3", account=MEMBER_A)
    s3.create_bucket(Bucket=f"cm-test-config-{MEMBER_A}", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_policy(Bucket=f"cm-test-config-{MEMBER_A}", Policy=config_bucket_policy(f"cm-test-config-{MEMBER_A}", MEMBER_A))
    key = aws("kms", account=MEMBER_A).create_key(Policy=logs_key_policy(MEMBER_A))["KeyMetadata"]["Arn"]
    cfg = aws("config", account=MEMBER_A)
    role = aws("iam", account=MEMBER_A).create_role(RoleName="cm-config", AssumeRolePolicyDocument=trusting("config.amazonaws.com"))["Role"]["Arn"]
    cfg.put_configuration_recorder(ConfigurationRecorder={
        "name": "default", "roleARN": role,
        "recordingGroup": {"allSupported": False, "includeGlobalResourceTypes": False, "resourceTypes": ["AWS::S3::Bucket"],
                           "recordingStrategy": {"useOnly": "INCLUSION_BY_RESOURCE_TYPES"}}})
    cfg.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": f"cm-test-config-{MEMBER_A}", "s3KmsKeyArn": key})
    cfg.start_configuration_recorder(ConfigurationRecorderName="default")
    rec = cfg.describe_configuration_recorders()["ConfigurationRecorders"][0]
    assert rec["recordingGroup"]["resourceTypes"] == ["AWS::S3::Bucket"]
    assert cfg.describe_configuration_recorder_status()["ConfigurationRecordersStatus"][0]["recording"] is True
    cfg.stop_configuration_recorder(ConfigurationRecorderName="default")
    assert cfg.describe_delivery_channels()["DeliveryChannels"][0]["s3KmsKeyArn"] == key

    ev = aws("events", account=MEMBER_A)
    bus = ev.create_event_bus(Name="cm-bus", Tags=[{"Key": "owner", "Value": "cm"}])["EventBusArn"]
    assert ev.describe_event_bus(Name="cm-bus")["Arn"] == bus
    rule = ev.put_rule(Name="fwd", EventBusName="cm-bus", EventPattern='{"source":["aws.guardduty"]}', State="ENABLED", Tags=[{"Key": "owner", "Value": "cm"}])["RuleArn"]
    assert rule == f"arn:aws:events:{REGION}:{MEMBER_A}:rule/cm-bus/fwd"
    ev.put_targets(Rule="fwd", EventBusName="cm-bus", Targets=[{"Id": "central", "Arn": f"arn:aws:events:{OTHER_REGION}:123456789012:event-bus/central", "RoleArn": f"arn:aws:iam::{MEMBER_A}:role/fwd"}])
    assert ev.list_targets_by_rule(Rule="fwd", EventBusName="cm-bus")["Targets"][0]["RoleArn"].endswith(":role/fwd")
    ev.tag_resource(ResourceARN=rule, Tags=[{"Key": "a", "Value": "1"}])
    assert {t["Key"] for t in ev.list_tags_for_resource(ResourceARN=rule)["Tags"]} == {"owner", "a"}
    ev.remove_targets(Rule="fwd", EventBusName="cm-bus", Ids=["central"])
    assert ev.describe_rule(Name="fwd", EventBusName="cm-bus")["State"] == "ENABLED"


def test_config_one_recorder_and_delivery_channel_per_region(aws):
    """moto's own answers, checked: one customer-managed recorder and one delivery channel per
    account and Region, and no delivery channel before a recorder."""
    cfg = aws("config", account=MEMBER_B)
    role, other_role = (aws("iam", account=MEMBER_B).create_role(RoleName=name, AssumeRolePolicyDocument=trusting("config.amazonaws.com"))["Role"]["Arn"]
                        for name in ("cm-config", "cm-config-2"))
    logs = f"cm-test-config-{MEMBER_B}"  # the bucket every channel here delivers to, with the policy AWS Config needs
    s3 = aws("s3", account=MEMBER_B)
    s3.create_bucket(Bucket=logs, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_policy(Bucket=logs, Policy=config_bucket_policy(logs, MEMBER_B))
    assert error_of(cfg.put_delivery_channel, DeliveryChannel={"name": "customer", "s3BucketName": logs}) == (
        "NoAvailableConfigurationRecorderException", 400)
    cfg.put_configuration_recorder(ConfigurationRecorder={"name": "customer", "roleARN": role})
    assert error_of(cfg.put_configuration_recorder, ConfigurationRecorder={"name": "cm-recorder", "roleARN": role}) == (
        "MaxNumberOfConfigurationRecordersExceededException", 400)
    cfg.put_configuration_recorder(ConfigurationRecorder={"name": "customer", "roleARN": other_role})  # same name: an update
    cfg.put_delivery_channel(DeliveryChannel={"name": "customer", "s3BucketName": logs})
    assert error_of(cfg.put_delivery_channel, DeliveryChannel={"name": "cm-channel", "s3BucketName": logs}) == (
        "MaxNumberOfDeliveryChannelsExceededException", 400)
    assert [r["name"] for r in cfg.describe_configuration_recorders()["ConfigurationRecorders"]] == ["customer"]
    assert [c["name"] for c in cfg.describe_delivery_channels()["DeliveryChannels"]] == ["customer"]
    # another Region has its own; deleted ones free the place
    other = aws("config", region=OTHER_REGION, account=MEMBER_B)
    other.put_configuration_recorder(ConfigurationRecorder={"name": "cm-recorder", "roleARN": role})
    other.put_delivery_channel(DeliveryChannel={"name": "cm-channel", "s3BucketName": logs})
    cfg.delete_delivery_channel(DeliveryChannelName="customer")
    cfg.delete_configuration_recorder(ConfigurationRecorderName="customer")
    cfg.put_configuration_recorder(ConfigurationRecorder={"name": "cm-recorder", "roleARN": role})


# ---------------------------------------------------------------- fault injection (benchmarks)


def faults(endpoint, doc=None):
    """POSTs `doc` to the faults hook, or GETs its state; returns the JSON answer."""
    if doc is None:
        with urllib.request.urlopen(endpoint + "/cm-emulator/faults", timeout=10) as r:
            return json.loads(r.read())
    return json.loads(post(endpoint + "/cm-emulator/faults", doc)[1])


@pytest.fixture
def faults_off(endpoint):
    yield
    faults(endpoint, {})


def plain_client(endpoint, service, attempts=1, session=None):
    """A boto3 client with botocore's standard retry mode (`attempts` in all), no wire check
    (a throttling code need not be in the model: AWS sends ThrottlingException from KMS too)."""
    cfg = Config(s3={"addressing_style": "path"}, retries={"mode": "standard", "total_max_attempts": attempts})
    client = (session or boto3.Session()).client(service, endpoint_url=endpoint, region_name=REGION, config=cfg,
                                                 aws_access_key_id="testing", aws_secret_access_key="testing")
    if service == "s3control":  # the endpoint rules put the account id in the host; the emulator has one host
        def drop_account_host(request, **_):
            request.url = request.url.replace("//123456789012.", "//")
        client.meta.events.register("before-sign", drop_account_host)
    return client


def test_faults_latency_overlaps_and_spares_hooks(endpoint, faults_off):
    clients = [plain_client(endpoint, "sts") for _ in range(4)]
    for c in clients:
        c.get_caller_identity()  # the client's own first-call set-up, outside the timings
    assert faults(endpoint, {"latency_ms": 300})["latency_ms"] == 300
    t = time.monotonic()
    clients[0].get_caller_identity()
    assert time.monotonic() - t >= 0.3
    t = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda c: c.get_caller_identity(), clients))
    assert time.monotonic() - t < 0.9, "concurrent requests should overlap their sleeps (4 x 300 ms in about 300 ms)"
    t = time.monotonic()
    post(endpoint + "/cm-emulator/regions", {"account_id": "333333333333", "regions": None})
    state = faults(endpoint)
    assert time.monotonic() - t < 0.3, "test hooks are not delayed"
    assert (state["requests"], state["delayed"], state["throttled"]) == (5, 5, 0)
    assert faults(endpoint, {}) == {**state, "latency_ms": 0, "requests": 0, "delayed": 0}
    t = time.monotonic()
    clients[0].get_caller_identity()
    assert time.monotonic() - t < 0.3


def test_faults_hook_rejects_bad_settings(endpoint, faults_off):
    for doc in ({"latency_ms": -1}, {"throttle_share": 1.5}, {"seed": "x"}, {"tally": 1}, {"latency": 5}):
        with pytest.raises(urllib.error.HTTPError) as e:
            faults(endpoint, doc)
        assert e.value.code == 400


THROTTLES = [
    # service, operation, params, code, HTTP status, wire protocol of the answer
    ("iam", "list_roles", {}, "Throttling", 400, "query"),
    ("sts", "get_caller_identity", {}, "Throttling", 400, "query"),
    ("ec2", "describe_vpcs", {}, "RequestLimitExceeded", 503, "ec2"),
    ("s3", "list_buckets", {}, "SlowDown", 503, "s3"),
    ("s3control", "get_public_access_block", {"AccountId": "123456789012"}, "SlowDown", 503, "rest-xml"),
    ("kms", "list_keys", {}, "ThrottlingException", 400, "json"),
    ("cloudtrail", "describe_trails", {}, "ThrottlingException", 400, "json"),
    ("organizations", "list_accounts", {}, "TooManyRequestsException", 400, "json"),
    ("config", "describe_configuration_recorders", {}, "ThrottlingException", 400, "json"),
    ("securityhub", "describe_hub", {}, "ThrottlingException", 429, "rest-json"),
    ("guardduty", "list_detectors", {}, "ThrottlingException", 429, "rest-json"),
    ("detective", "list_graphs", {}, "TooManyRequestsException", 429, "rest-json"),
    ("accessanalyzer", "list_analyzers", {}, "ThrottlingException", 429, "rest-json"),
    ("compute-optimizer", "get_enrollment_status", {}, "ThrottlingException", 429, "json"),
    ("compute-optimizer", "get_enrollment_status", {}, "ThrottlingException", 429, "cbor"),
]


@pytest.mark.parametrize("service,op,params,code,status,wire", THROTTLES, ids=[f"{t[0]}-{t[5]}" for t in THROTTLES])
def test_faults_throttle_in_the_protocol_of_the_service(endpoint, faults_off, tmp_path, service, op, params, code, status, wire):
    session = cbor_session(tmp_path) if wire == "cbor" else None
    client = plain_client(endpoint, service, attempts=3, session=session)
    detector = botocore.retries.standard.ThrottlingErrorDetector(botocore.retries.standard.RetryEventAdapter())
    seen, raw = [], []
    client.meta.events.register("needs-retry", lambda **kw: seen.append(detector.is_throttling_error(**kw)))
    client.meta.events.register("after-call", lambda http_response, **_: raw.append(http_response))
    faults(endpoint, {"throttle_share": 1.0, "seed": 1})
    with pytest.raises(ClientError) as e:
        getattr(client, op)(**params)
    meta = e.value.response["ResponseMetadata"]
    assert (e.value.response["Error"]["Code"], meta["HTTPStatusCode"]) == (code, status)
    assert meta["RetryAttempts"] == 2 and seen == [True, True, True], "botocore's standard mode retries it as throttling"
    state = faults(endpoint)
    name = client.meta.service_model.service_name
    assert (state["requests"], state["throttled"], state["throttled_by_code"]) == (3, 3, {f"{name}:{code}": 3})

    http = raw[-1]
    headers = {k.lower(): v for k, v in http.headers.items()}
    if wire in ("query", "ec2", "s3", "rest-xml"):
        root = ET.fromstring(http.content)
        tag = root.tag.split("}")[-1]
        text = lambda path: root.findtext("/".join("{*}" + p for p in path.split("/")))  # noqa: E731 (any namespace)
        if wire == "query":
            assert tag == "ErrorResponse" and text("Error/Type") == "Sender" and text("Error/Code") == code
        elif wire == "ec2":
            assert tag == "Response" and text("Errors/Error/Code") == code
        elif wire == "s3":
            assert tag == "Error" and text("Code") == code  # S3 does not wrap its errors
        else:
            assert tag == "ErrorResponse" and text("Error/Code") == code
    elif wire == "cbor":
        assert headers["smithy-protocol"] == "rpc-v2-cbor" and headers["content-type"] == "application/cbor"
        assert cbor.decode(http.content)["__type"] == f"com.amazonaws.computeoptimizer#{code}"
    else:
        doc = json.loads(http.content)
        assert doc["__type"] == headers["x-amzn-errortype"] == code and doc["message"]
        shape = next((s for s in client.meta.service_model.error_shapes if s.name == code), None)
        if wire == "rest-json" and shape is not None:  # the model's status for its own error, as a strict SDK checks
            assert shape.metadata["error"]["httpStatusCode"] == status


def test_faults_throttle_share_is_a_seeded_sequence_and_retries_get_through(endpoint, faults_off):
    sts = plain_client(endpoint, "sts")

    def pattern():
        out = []
        for _ in range(40):
            try:
                sts.get_caller_identity()
                out.append(False)
            except ClientError as e:
                assert e.response["Error"]["Code"] == "Throttling"
                out.append(True)
        return out

    faults(endpoint, {"throttle_share": 0.3, "seed": 7})
    first = pattern()
    assert faults(endpoint)["throttled"] == sum(first) and 4 <= sum(first) <= 20
    faults(endpoint, {"throttle_share": 0.3, "seed": 7})
    assert pattern() == first
    faults(endpoint, {"throttle_share": 0.3, "seed": 8})
    assert pattern() != first

    kms = plain_client(endpoint, "kms", attempts=10)
    kms.meta.events.register("before-sleep", lambda **_: None)
    faults(endpoint, {"throttle_share": 0.3, "seed": 7, "tally": True})
    retries = sum(kms.list_keys()["ResponseMetadata"]["RetryAttempts"] for _ in range(10))
    state = faults(endpoint)
    assert retries == state["throttled"] > 0 and state["requests"] == 10 + retries
    assert state["by_operation"] == [{"account": "123456789012", "region": REGION, "service": "kms", "operation": "ListKeys",
                                      "requests": 10 + retries, "throttled": retries, "identical": 9}]


def test_faults_tally_names_operations_as_the_model_does(endpoint, faults_off):
    faults(endpoint, {"tally": True})
    ct = plain_client(endpoint, "cloudtrail")
    ct.describe_trails()
    ct.describe_trails()
    ct.describe_trails(trailNameList=["x"])
    # the Rust SDK's X-Amz-Target is the Smithy service name alone, botocore's is namespaced
    req = urllib.request.Request(endpoint + "/", data=b'{"Name": "none"}', method="POST", headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "CloudTrail_20131101.GetTrailStatus",
        "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20250101/{REGION}/cloudtrail/aws4_request, SignedHeaders=host, Signature=0"})
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(req, timeout=10)
    s3 = plain_client(endpoint, "s3")
    assert error_of(s3.get_bucket_versioning, Bucket="cm-no-such-bucket")[0] == "NoSuchBucket"
    aws = plain_client(endpoint, "s3control")
    assert error_of(aws.get_public_access_block, AccountId="123456789012")[0] == "NoSuchPublicAccessBlockConfiguration"
    plain_client(endpoint, "iam").get_account_summary()
    rows = {(r["service"], r["operation"]): (r["requests"], r["identical"]) for r in faults(endpoint)["by_operation"]}
    assert rows == {("cloudtrail", "DescribeTrails"): (3, 1), ("cloudtrail", "GetTrailStatus"): (1, 0),
                    ("s3", "GetBucketVersioning"): (1, 0), ("s3control", "GetPublicAccessBlock"): (1, 0),
                    ("iam", "GetAccountSummary"): (1, 0)}
    assert faults(endpoint)["unidentified"] == 0


def deny_assume_role(endpoint, doc=None):
    """POSTs `doc` to the AssumeRole denial hook, or GETs its state; returns the JSON answer."""
    if doc is None:
        with urllib.request.urlopen(endpoint + "/cm-emulator/deny-assume-role", timeout=10) as r:
            return json.loads(r.read())
    return json.loads(post(endpoint + "/cm-emulator/deny-assume-role", doc)[1])


def test_assume_role_denied_into_chosen_accounts_as_aws_answers(aws, endpoint):
    sts = aws("sts")
    role = f"arn:aws:iam::{MEMBER_A}:role/cm-policymaintainer"
    assert sts.assume_role(RoleArn=role, RoleSessionName="cm-test")["Credentials"]["AccessKeyId"]
    caller = sts.get_caller_identity()["Arn"]
    assert deny_assume_role(endpoint, {"account_ids": [MEMBER_A]}) == {"account_ids": [MEMBER_A], "denied": 0}
    try:
        with pytest.raises(ClientError) as e:
            sts.assume_role(RoleArn=role, RoleSessionName="cm-test")
        err = e.value.response
        assert (err["Error"]["Type"], err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == ("Sender", "AccessDenied", 403)
        assert err["Error"]["Message"] == f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role}"
        # Other accounts and other calls go through.
        assert sts.assume_role(RoleArn=f"arn:aws:iam::{MEMBER_B}:role/x", RoleSessionName="cm-test")["Credentials"]
        assert sts.get_caller_identity()["Account"] == "123456789012"
        assert deny_assume_role(endpoint) == {"account_ids": [MEMBER_A], "denied": 1}
        for bad in ({"account_ids": ["12345"]}, {"account_ids": MEMBER_A}, {"accounts": [MEMBER_A]}, [MEMBER_A]):
            with pytest.raises(urllib.error.HTTPError) as e:
                deny_assume_role(endpoint, bad)
            assert e.value.code == 400
    finally:
        deny_assume_role(endpoint, {"account_ids": []})
    assert sts.assume_role(RoleArn=role, RoleSessionName="cm-test")["Credentials"]


# ---------------------------------------------------------------- reset


def test_reset_clears_extension_state(aws, endpoint):
    R = "ap-east-1"
    aws("securityhub", region=R).enable_security_hub()
    aws("detective", region=R).create_graph()
    aws("accessanalyzer", region=R).create_analyzer(analyzerName="x", type="ACCOUNT")
    aws("compute-optimizer", region=R, account=MEMBER_B).update_enrollment_status(status="Active")
    faults(endpoint, {"latency_ms": 5, "throttle_share": 0.5, "seed": 3, "tally": True})
    deny_assume_role(endpoint, {"account_ids": [MEMBER_B]})
    reset(endpoint)
    assert deny_assume_role(endpoint) == {"account_ids": [], "denied": 0}
    assert faults(endpoint) == {"latency_ms": 0, "throttle_share": 0.0, "seed": 0, "tally": False, "requests": 0, "delayed": 0,
                                "throttled": 0, "unidentified": 0, "throttled_by_code": {},
                                "internal_error_share": 0.0, "unavailable_share": 0.0, "reset_share": 0.0, "slow_share": 0.0,
                                "slow_ms": 0, "internal_errors": 0, "unavailable": 0, "resets": 0, "slowed": 0, "failed_by_code": {}}
    assert error_of(aws("securityhub", region=R).describe_hub)[0] == "InvalidAccessException"
    assert aws("detective", region=R).list_graphs()["GraphList"] == []
    assert aws("accessanalyzer", region=R).list_analyzers()["analyzers"] == []
    assert aws("compute-optimizer", region=R, account=MEMBER_B).get_enrollment_status()["status"] == "Inactive"
    assert len(aws("ec2", account=MEMBER_B).describe_regions()["Regions"]) > 10
