"""Checks of the emulator rules where AWS refuses or delays: a Security Hub standard PENDING
before READY and what control calls answer meanwhile, control ids a standard does not have,
Security Hub's request rates; Detective's CreateGraph without GuardDuty; one account-level
Access Analyzer analyzer of a type and one AWS Config recorder per Region. Each answer is
checked against the botocore model as in test_extension (wirecheck). This module runs its
own emulator (the `endpoint` fixture is module-scoped).

Run: <emulator venv>/bin/python -m pytest -q tests/support/emulator
"""

import json
import time
import urllib.error
import urllib.request

import boto3
import botocore.retries.standard
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import wirecheck
from test_extension import MEMBER_A, MEMBER_B, REGION, endpoint, error_of, fsbp, post  # noqa: F401 (endpoint: fixture)

CIS_120 = "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0"
HOOK = "/cm-emulator/securityhub"


class Aws:
    """Checked boto3 clients as the management account or a member (by AssumeRole), as in
    test_extension, but each call made once: no retry hides a refusal or a rate."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.clients = []
        self.creds = {}  # assumed-role credentials of this module's emulator

    def __call__(self, service, region=REGION, account=None):
        base = dict(endpoint_url=self.endpoint, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")
        if account:
            if account not in self.creds:
                sts = boto3.client("sts", **base)
                self.creds[account] = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/cm-test", RoleSessionName="cm-test")["Credentials"]
            c = self.creds[account]
            base.update(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])
        cfg = Config(retries={"mode": "standard", "total_max_attempts": 1})
        client = boto3.Session().client(service, config=cfg, **base)
        self.clients.append(wirecheck.attach(client))
        return client


@pytest.fixture
def aws(endpoint):
    factory = Aws(endpoint)
    yield factory
    problems = [p for c in factory.clients for p in c.wire_problems]
    assert not problems, "answers a strict SDK would reject:\n" + "\n".join(problems)


def hook(endpoint, doc=None):
    """POSTs `doc` to the Security Hub hook, or GETs its state; returns the JSON answer."""
    if doc is None:
        with urllib.request.urlopen(endpoint + HOOK, timeout=10) as r:
            return json.loads(r.read())
    return json.loads(post(endpoint + HOOK, doc)[1])


@pytest.fixture
def no_rates(endpoint):
    """Security Hub without request rates (the PENDING period as by default)."""
    hook(endpoint, {"rate_limits": False})
    yield
    hook(endpoint, {"pending_seconds": 3, "rate_limits": True})


@pytest.fixture
def ready_at_once(endpoint):
    """A standard READY as soon as it is enabled, rates off: for the rules about control ids."""
    hook(endpoint, {"pending_seconds": 0, "rate_limits": False})
    yield
    hook(endpoint, {"pending_seconds": 3, "rate_limits": True})


def subscription(sh, standards_arn):
    return next(s for s in sh.get_enabled_standards()["StandardsSubscriptions"] if s["StandardsArn"] == standards_arn)


def unprocessed(answer, key, id_key):
    return [(u[id_key]["SecurityControlId"], u["ErrorCode"]) for u in answer.get(key, [])]


# ---------------------------------------------------------------- Security Hub: PENDING, then READY


def test_securityhub_standard_is_pending_for_three_seconds_and_control_calls_fail_meanwhile(aws, endpoint, no_rates):
    R = "eu-west-1"
    sh = aws("securityhub", region=R)
    sh.enable_security_hub(EnableDefaultStandards=False)
    enabled_at = time.monotonic()
    out = sh.batch_enable_standards(StandardsSubscriptionRequests=[{"StandardsArn": fsbp(R)}])["StandardsSubscriptions"][0]
    assert (out["StandardsStatus"], out["StandardsControlsUpdatable"]) == ("PENDING", "NOT_READY_FOR_UPDATES")
    sub = subscription(sh, fsbp(R))
    assert (sub["StandardsStatus"], sub["StandardsControlsUpdatable"]) == ("PENDING", "NOT_READY_FOR_UPDATES")

    # While PENDING: the control calls answer as AWS documents for NOT_READY_FOR_UPDATES.
    ids = [{"StandardsArn": fsbp(R), "SecurityControlId": c} for c in ("IAM.6", "S3.1")]
    got = sh.batch_get_standards_control_associations(StandardsControlAssociationIds=ids)
    assert got["StandardsControlAssociationDetails"] == []
    assert unprocessed(got, "UnprocessedAssociations", "StandardsControlAssociationId") == [("IAM.6", "RESOURCE_NOT_FOUND"), ("S3.1", "RESOURCE_NOT_FOUND")]
    disable = [{"StandardsArn": fsbp(R), "SecurityControlId": "IAM.6", "AssociationStatus": "DISABLED", "UpdatedReason": "no hardware MFA"}]
    upd = sh.batch_update_standards_control_associations(StandardsControlAssociationUpdates=disable)
    assert unprocessed(upd, "UnprocessedAssociationUpdates", "StandardsControlAssociationUpdate") == [("IAM.6", "RESOURCE_NOT_FOUND")]
    assert upd["UnprocessedAssociationUpdates"][0]["StandardsControlAssociationUpdate"] == disable[0]
    assert sh.list_standards_control_associations(SecurityControlId="IAM.6")["StandardsControlAssociationSummaries"] == []
    control_arn = f"arn:aws:securityhub:{R}:123456789012:control/aws-foundational-security-best-practices/v/1.0.0/IAM.6"
    assert error_of(sh.update_standards_control, StandardsControlArn=control_arn, ControlStatus="DISABLED",
                    DisabledReason="no hardware MFA") == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        sh.batch_disable_standards(StandardsSubscriptionArns=[sub["StandardsSubscriptionArn"]])
    err = e.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == ("InvalidInputException", 400)
    assert err["Error"]["Message"] == f'StandardsSubscription(s) in state PENDING, please try later: ["{sub["StandardsSubscriptionArn"]}"]'

    # READY after the period, as GetEnabledStandards shows; the product polls it every 3 s.
    while subscription(sh, fsbp(R))["StandardsStatus"] == "PENDING":
        assert time.monotonic() - enabled_at < 5, "still PENDING after 5 s"
        time.sleep(0.25)
    assert time.monotonic() - enabled_at >= 2.9, "READY before the 3 s period"
    sub = subscription(sh, fsbp(R))
    assert (sub["StandardsStatus"], sub["StandardsControlsUpdatable"]) == ("READY", "READY_FOR_UPDATES")
    # Enabling it again changes nothing: the same subscription, READY.
    again = sh.batch_enable_standards(StandardsSubscriptionRequests=[{"StandardsArn": fsbp(R)}])["StandardsSubscriptions"][0]
    assert (again["StandardsSubscriptionArn"], again["StandardsStatus"]) == (sub["StandardsSubscriptionArn"], "READY")
    assert "UnprocessedAssociationUpdates" not in sh.batch_update_standards_control_associations(StandardsControlAssociationUpdates=disable)
    got = sh.batch_get_standards_control_associations(StandardsControlAssociationIds=ids)
    assert [(d["SecurityControlId"], d["AssociationStatus"]) for d in got["StandardsControlAssociationDetails"]] == [("IAM.6", "DISABLED"), ("S3.1", "ENABLED")]
    assert "UnprocessedAssociations" not in got
    assert sh.batch_disable_standards(StandardsSubscriptionArns=[sub["StandardsSubscriptionArn"]])["StandardsSubscriptions"][0]["StandardsStatus"] == "DELETING"


def test_securityhub_default_standards_are_pending_too(aws, no_rates):
    R = "eu-west-2"
    sh = aws("securityhub", region=R)
    sh.enable_security_hub()
    subs = sh.get_enabled_standards()["StandardsSubscriptions"]
    assert {s["StandardsArn"]: s["StandardsStatus"] for s in subs} == {fsbp(R): "PENDING", CIS_120: "PENDING"}


def test_securityhub_pending_period_set_by_the_hook(aws, endpoint, no_rates):
    R = "eu-west-3"
    sh = aws("securityhub", region=R)
    sh.enable_security_hub(EnableDefaultStandards=False)
    assert hook(endpoint, {"pending_seconds": 0}) == {"pending_seconds": 0, "rate_limits": False, "throttled": 0, "throttled_by_operation": {}}
    out = sh.batch_enable_standards(StandardsSubscriptionRequests=[{"StandardsArn": fsbp(R)}])["StandardsSubscriptions"][0]
    assert (out["StandardsStatus"], out["StandardsControlsUpdatable"]) == ("READY", "READY_FOR_UPDATES")
    hook(endpoint, {"pending_seconds": 1})  # for standards enabled from now on
    assert subscription(sh, fsbp(R))["StandardsStatus"] == "READY"
    enabled_at = time.monotonic()
    assert sh.batch_enable_standards(StandardsSubscriptionRequests=[{"StandardsArn": CIS_120}])["StandardsSubscriptions"][0]["StandardsStatus"] == "PENDING"
    while subscription(sh, CIS_120)["StandardsStatus"] == "PENDING":
        assert time.monotonic() - enabled_at < 3
        time.sleep(0.1)
    assert time.monotonic() - enabled_at >= 0.9
    assert hook(endpoint)["pending_seconds"] == 1
    for bad in ({"pending_seconds": -1}, {"pending_seconds": "3"}, {"pending_seconds": 3601}, {"rate_limits": 1}, {"pending": 3}, [3]):
        with pytest.raises(urllib.error.HTTPError) as e:
            hook(endpoint, bad)
        assert e.value.code == 400
    assert hook(endpoint)["pending_seconds"] == 1


# ---------------------------------------------------------------- Security Hub: control ids the standard does not have


def test_securityhub_unknown_control_ids_are_unprocessed(aws, ready_at_once):
    R = "eu-central-1"
    sh = aws("securityhub", region=R)
    sh.enable_security_hub(EnableDefaultStandards=False)
    sh.batch_enable_standards(StandardsSubscriptionRequests=[{"StandardsArn": fsbp(R)}])
    ids = [{"StandardsArn": fsbp(R), "SecurityControlId": c} for c in ("IAM.6", "Zzz.42", "IAM.9999")]
    got = sh.batch_get_standards_control_associations(StandardsControlAssociationIds=ids)
    assert [d["SecurityControlId"] for d in got["StandardsControlAssociationDetails"]] == ["IAM.6"]
    assert unprocessed(got, "UnprocessedAssociations", "StandardsControlAssociationId") == [("Zzz.42", "RESOURCE_NOT_FOUND"), ("IAM.9999", "RESOURCE_NOT_FOUND")]
    assert all(u["ErrorReason"] for u in got["UnprocessedAssociations"])
    updates = [{"StandardsArn": fsbp(R), "SecurityControlId": c, "AssociationStatus": "DISABLED", "UpdatedReason": "r"} for c in ("IAM.6", "Zzz.42")]
    updates.append({"StandardsArn": fsbp(R), "SecurityControlId": "not-an-id", "AssociationStatus": "DISABLED"})
    updates.append({"StandardsArn": fsbp(R).replace(R, "eu-north-1"), "SecurityControlId": "IAM.6", "AssociationStatus": "DISABLED"})
    upd = sh.batch_update_standards_control_associations(StandardsControlAssociationUpdates=updates)
    assert unprocessed(upd, "UnprocessedAssociationUpdates", "StandardsControlAssociationUpdate") == [
        ("Zzz.42", "RESOURCE_NOT_FOUND"), ("not-an-id", "INVALID_INPUT"), ("IAM.6", "RESOURCE_NOT_FOUND")]
    # the known control of the batch was processed; the unknown one does not appear anywhere
    assert sh.list_standards_control_associations(SecurityControlId="IAM.6")["StandardsControlAssociationSummaries"][0]["AssociationStatus"] == "DISABLED"
    assert sh.list_standards_control_associations(SecurityControlId="Zzz.42")["StandardsControlAssociationSummaries"] == []
    got = sh.batch_get_standards_control_associations(StandardsControlAssociationIds=ids[1:2])
    assert unprocessed(got, "UnprocessedAssociations", "StandardsControlAssociationId") == [("Zzz.42", "RESOURCE_NOT_FOUND")]
    unknown_arn = f"arn:aws:securityhub:{R}:123456789012:control/aws-foundational-security-best-practices/v/1.0.0/Zzz.42"
    assert error_of(sh.update_standards_control, StandardsControlArn=unknown_arn, ControlStatus="ENABLED") == ("ResourceNotFoundException", 404)


def test_securityhub_update_standards_control(aws, ready_at_once):
    R = "eu-south-1"
    sh = aws("securityhub", region=R)
    sh.enable_security_hub(EnableDefaultStandards=False)
    sh.batch_enable_standards(StandardsSubscriptionRequests=[{"StandardsArn": fsbp(R)}])
    arn = f"arn:aws:securityhub:{R}:123456789012:control/aws-foundational-security-best-practices/v/1.0.0/KMS.4"
    assert error_of(sh.update_standards_control, StandardsControlArn=arn, ControlStatus="DISABLED") == ("InvalidInputException", 400)
    sh.update_standards_control(StandardsControlArn=arn, ControlStatus="DISABLED", DisabledReason="keys rotate elsewhere")
    got = sh.batch_get_standards_control_associations(StandardsControlAssociationIds=[{"StandardsArn": fsbp(R), "SecurityControlId": "KMS.4"}])
    detail = got["StandardsControlAssociationDetails"][0]
    assert (detail["AssociationStatus"], detail["UpdatedReason"]) == ("DISABLED", "keys rotate elsewhere")
    sh.update_standards_control(StandardsControlArn=arn, ControlStatus="ENABLED")
    assert sh.list_standards_control_associations(SecurityControlId="KMS.4")["StandardsControlAssociationSummaries"][0]["AssociationStatus"] == "ENABLED"
    # a control of another account, or of a standard not enabled, is not found
    assert error_of(sh.update_standards_control, StandardsControlArn=arn.replace("123456789012", MEMBER_A), ControlStatus="ENABLED")[1] == 404
    cis = f"arn:aws:securityhub:{R}:123456789012:control/cis-aws-foundations-benchmark/v/1.2.0/IAM.6"
    assert error_of(sh.update_standards_control, StandardsControlArn=cis, ControlStatus="ENABLED") == ("ResourceNotFoundException", 404)


# ---------------------------------------------------------------- Security Hub: request rates


def until_throttled(call, most=100):
    """Calls until the answer is TooManyRequestsException; (calls let through, seconds taken)."""
    start, passed = time.monotonic(), 0
    while True:
        try:
            call()
            passed += 1
        except ClientError as e:
            assert (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]) == ("TooManyRequestsException", 429)
            return passed, time.monotonic() - start
        assert passed <= most, "never throttled"


def test_securityhub_batch_enable_standards_is_one_request_per_second(aws, endpoint):
    R = "ca-central-1"
    sh = aws("securityhub", region=R)
    raw, seen = [], []
    sh.meta.events.register("after-call", lambda http_response, **_: raw.append(http_response))
    detector = botocore.retries.standard.ThrottlingErrorDetector(botocore.retries.standard.RetryEventAdapter())
    sh.meta.events.register("needs-retry", lambda **kw: seen.append(detector.is_throttling_error(**kw)))
    hook(endpoint, {"pending_seconds": 0})  # the rates alone here
    try:
        # Every request counts, one AWS refuses too (the hub is not enabled yet).
        assert error_of(sh.batch_enable_standards, StandardsSubscriptionRequests=[{"StandardsArn": fsbp(R)}])[0] == "InvalidAccessException"
        sh.enable_security_hub(EnableDefaultStandards=False)
        with pytest.raises(ClientError) as e:
            sh.batch_enable_standards(StandardsSubscriptionRequests=[{"StandardsArn": fsbp(R)}])
        err = e.value.response
        assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == ("TooManyRequestsException", 429)
        http = raw[-1]
        assert http.headers["x-amzn-ErrorType"] == "TooManyRequestsException"
        assert json.loads(http.content) == {"message": "Too Many Requests"}
        assert seen[-1] is True, "botocore's standard mode retries it as throttling"
        # Per operation, account and Region: the others are not held back.
        assert sh.get_enabled_standards()["StandardsSubscriptions"] == []
        other = aws("securityhub", region="ca-west-1")
        other.enable_security_hub(EnableDefaultStandards=False)
        other.batch_enable_standards(StandardsSubscriptionRequests=[{"StandardsArn": fsbp("ca-west-1")}])
        member = aws("securityhub", region=R, account=MEMBER_B)
        member.enable_security_hub(EnableDefaultStandards=False)
        member.batch_enable_standards(StandardsSubscriptionRequests=[{"StandardsArn": fsbp(R)}])
        # One second later the bucket has a request again (burst 1: one, not two).
        time.sleep(1.05)
        assert sh.batch_enable_standards(StandardsSubscriptionRequests=[{"StandardsArn": fsbp(R)}])["StandardsSubscriptions"][0]["StandardsStatus"] == "READY"
        assert error_of(sh.batch_enable_standards, StandardsSubscriptionRequests=[{"StandardsArn": CIS_120}]) == ("TooManyRequestsException", 429)
        state = hook(endpoint)
        assert (state["throttled"], state["throttled_by_operation"]) == (2, {"BatchEnableStandards": 2})
    finally:
        hook(endpoint, {"pending_seconds": 3})


def test_securityhub_update_standards_control_bursts_to_five(aws, endpoint, ready_at_once):
    R = "sa-east-1"
    sh = aws("securityhub", region=R)
    sh.enable_security_hub(EnableDefaultStandards=False)
    sh.batch_enable_standards(StandardsSubscriptionRequests=[{"StandardsArn": fsbp(R)}])
    hook(endpoint, {"rate_limits": True})
    arn = f"arn:aws:securityhub:{R}:123456789012:control/aws-foundational-security-best-practices/v/1.0.0/IAM.6"
    passed, elapsed = until_throttled(lambda: sh.update_standards_control(StandardsControlArn=arn, ControlStatus="ENABLED"))
    assert 5 <= passed <= 5 + 1 * elapsed + 1, (passed, elapsed)
    time.sleep(1.05)
    sh.update_standards_control(StandardsControlArn=arn, ControlStatus="ENABLED")


def test_securityhub_other_operations_are_ten_per_second_burst_thirty(aws, endpoint):
    R = "us-east-2"
    sh = aws("securityhub", region=R)
    hook(endpoint, {})  # empties the buckets
    sh.enable_security_hub(EnableDefaultStandards=False)
    passed, elapsed = until_throttled(sh.get_enabled_standards)
    assert 30 <= passed <= 30 + 10 * elapsed + 1, (passed, elapsed)
    # switched off, nothing is held back
    hook(endpoint, {"rate_limits": False})
    try:
        for _ in range(40):
            sh.get_enabled_standards()
    finally:
        hook(endpoint, {"rate_limits": True})


# ---------------------------------------------------------------- Detective, Access Analyzer, Config


def test_detective_create_graph_needs_no_guardduty_detector(aws):
    """AWS no longer documents the old prerequisite (GuardDuty enabled for 48 hours before
    CreateGraph; dropped from the API reference in February 2024): a graph is created in a
    Region without any detector, and right after a detector is created."""
    R = "ap-southeast-1"
    assert aws("guardduty", region=R).list_detectors()["DetectorIds"] == []
    d = aws("detective", region=R)
    arn = d.create_graph()["GraphArn"]
    assert [g["Arn"] for g in d.list_graphs()["GraphList"]] == [arn]
    member = aws("guardduty", region=R, account=MEMBER_A)
    member.create_detector(Enable=True)
    assert aws("detective", region=R, account=MEMBER_A).create_graph()["GraphArn"].startswith(f"arn:aws:detective:{R}:{MEMBER_A}:graph:")


def test_access_analyzer_refuses_a_second_account_analyzer_of_a_type(aws):
    R = "ap-southeast-2"
    aa = aws("accessanalyzer", region=R, account=MEMBER_A)
    aa.create_analyzer(analyzerName="customer", type="ACCOUNT")
    with pytest.raises(ClientError) as e:
        aa.create_analyzer(analyzerName="cm-account", type="ACCOUNT")
    err = e.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == ("ServiceQuotaExceededException", 402)
    assert (err["resourceId"], err["resourceType"]) == ("cm-account", "Analyzer")
    assert [a["name"] for a in aa.list_analyzers(type="ACCOUNT")["analyzers"]] == ["customer"]
    aa.create_analyzer(analyzerName="cm-unused", type="ACCOUNT_UNUSED_ACCESS")  # another type has its own place
    aws("accessanalyzer", region="ap-south-1", account=MEMBER_A).create_analyzer(analyzerName="cm-account", type="ACCOUNT")


def test_config_refuses_a_second_recorder_in_a_region(aws):
    cfg = aws("config", region="ap-northeast-3", account=MEMBER_A)
    role = f"arn:aws:iam::{MEMBER_A}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"
    cfg.put_configuration_recorder(ConfigurationRecorder={"name": "customer", "roleARN": role})
    assert error_of(cfg.put_configuration_recorder, ConfigurationRecorder={"name": "cm-recorder", "roleARN": role}) == (
        "MaxNumberOfConfigurationRecordersExceededException", 400)
    assert [r["name"] for r in cfg.describe_configuration_recorders()["ConfigurationRecorders"]] == ["customer"]
    aws("config", region="ap-northeast-2", account=MEMBER_A).put_configuration_recorder(
        ConfigurationRecorder={"name": "cm-recorder", "roleARN": role})


# ---------------------------------------------------------------- reset


def test_reset_restores_the_securityhub_defaults(endpoint):
    hook(endpoint, {"pending_seconds": 0, "rate_limits": False})
    post(endpoint + "/moto-api/reset")
    assert hook(endpoint) == {"pending_seconds": 3, "rate_limits": True, "throttled": 0, "throttled_by_operation": {}}
