"""Checks of role trust and IAM's eventual consistency in the emulator (cm_emulator/iamtrust.py)
through boto3, against `server.py` started once for this module on a free 127.0.0.1 port. Every
answer is also checked against the botocore model as a strict SDK reads it (wirecheck.py); STS
errors, which the query protocol leaves out of the model, are checked on the raw XML here.

Member accounts are made as the product's tests make them: AWS Organizations CreateAccount,
which creates `OrganizationAccountAccessRole` in the new account, trusting the management
account; the tests enter a member through that role.

Run: <emulator venv>/bin/python -m pytest -q tests/support/emulator/test_strict_iam.py
"""

import json
import socket
import subprocess
import sys
import time
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import wirecheck
from delivery_policies import config_bucket_policy

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
REGION = "ap-northeast-1"
MANAGEMENT = "123456789012"  # moto's default account: the caller of the "testing" keys
CALLER = f"arn:aws:sts::{MANAGEMENT}:user/moto"
STATES_REFUSAL = ("Neither the global service principal states.amazonaws.com, nor the regional one is authorized to "
                  "assume the provided role.")
DEFINITION = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
STS_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"


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
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")[-4000:]


def hook(endpoint, path, doc=None):
    """GET (no doc) or POST a test hook; returns (status, JSON answer)."""
    data = json.dumps(doc).encode() if doc is not None else None
    req = urllib.request.Request(endpoint + path, data=data, method="POST" if doc is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


class Aws:
    """Checked boto3 clients: as the management account (moto's default caller), or with the
    credentials of an AssumeRole answer."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.clients = []

    def __call__(self, service, creds=None, region=REGION):
        keys = dict(aws_access_key_id="testing", aws_secret_access_key="testing")
        if creds:
            keys = dict(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])
        client = boto3.client(service, endpoint_url=self.endpoint, region_name=region,
                              config=Config(retries={"max_attempts": 1}), **keys)
        self.clients.append(wirecheck.attach(client))
        return client

    def enter(self, account, role="OrganizationAccountAccessRole", session="cm-test", creds=None, **kwargs):
        """Credentials of `role` in `account`, assumed by the management account (or `creds`)."""
        sts = self("sts", creds)
        return sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName=session, **kwargs)["Credentials"]


@pytest.fixture
def aws(endpoint):
    # Each test states the settings it needs; defaults again afterwards.
    hook(endpoint, "/cm-emulator/iam-propagation", {"seconds": 0})
    factory = Aws(endpoint)
    yield factory
    hook(endpoint, "/cm-emulator/iam-propagation", {})
    hook(endpoint, "/cm-emulator/iam-trust", {})
    hook(endpoint, "/cm-emulator/deny-assume-role", {"account_ids": []})
    problems = [p for c in factory.clients for p in c.wire_problems]
    assert not problems, "answers a strict SDK would reject:\n" + "\n".join(problems)


@pytest.fixture(scope="module")
def members(endpoint):
    """Three member accounts of an Organization of the management account."""
    org = boto3.client("organizations", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    org.create_organization(FeatureSet="ALL")
    return [org.create_account(Email=f"m{i}@example.com", AccountName=f"m{i}")["CreateAccountStatus"]["AccountId"]
            for i in range(3)]


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(principal, **extra):
    return {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **extra}


def config_bucket(aws, creds, account, name):
    """A bucket whose policy lets AWS Config deliver for `account` (the emulator checks the
    delivery at PutDeliveryChannel: test_strict_delivery.py)."""
    s3 = aws("s3", creds)
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_policy(Bucket=name, Policy=config_bucket_policy(name, account))


def make_role(iam, name, *statements):
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=policy(*statements))["Role"]["Arn"]


def denied(aws, role_arn, creds=None, **kwargs):
    """AssumeRole of `role_arn` that must be refused as AWS refuses it: HTTP 403, the STS
    query-protocol error body, code AccessDenied. Returns the message."""
    sts = aws("sts", creds)
    raw = {}
    sts.meta.events.register("after-call.sts.AssumeRole", lambda http_response, **_: raw.update(
        status=http_response.status_code, body=http_response.content))
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=role_arn, RoleSessionName="cm-test", **kwargs)
    err = e.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403)
    root = ET.fromstring(raw["body"])
    assert root.tag == f"{STS_NS}ErrorResponse", raw["body"]
    assert [c.tag for c in root] == [f"{STS_NS}Error", f"{STS_NS}RequestId"] and root.find(f"{STS_NS}RequestId").text
    error = root.find(f"{STS_NS}Error")
    assert [(c.tag, c.text) for c in error][:2] == [(f"{STS_NS}Type", "Sender"), (f"{STS_NS}Code", "AccessDenied")]
    assert err["Error"]["Message"] == error.find(f"{STS_NS}Message").text
    return err["Error"]["Message"]


def refusal(role_arn, caller=CALLER, action="sts:AssumeRole"):
    return f"User: {caller} is not authorized to perform: {action} on resource: {role_arn}"


def error_of(call, **kwargs):
    with pytest.raises(ClientError) as e:
        call(**kwargs)
    err = e.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


# ---------------------------------------------------------------- AssumeRole: the trust policy


def test_assume_role_trusted_by_account_lands_in_the_member_account(aws, members):
    """`{"AWS": "arn:aws:iam::<management>:root"}` (what Organizations writes) and a bare
    account id trust every principal of the management account; the credentials act in the
    member account (moto's routing by access key)."""
    a = members[0]
    creds = aws.enter(a)
    me = aws("sts", creds).get_caller_identity()
    assert (me["Account"], me["Arn"]) == (a, f"arn:aws:sts::{a}:assumed-role/OrganizationAccountAccessRole/cm-test")
    iam = aws("iam", creds)
    make_role(iam, "by-account-id", allow({"AWS": MANAGEMENT}))
    again = aws.enter(a, "by-account-id")
    assert aws("sts", again).get_caller_identity()["Account"] == a
    assert "by-account-id" in [r["RoleName"] for r in aws("iam", again).list_roles()["Roles"]]
    assert "by-account-id" not in [r["RoleName"] for r in aws("iam").list_roles()["Roles"]]


def test_assume_role_refused_when_the_trust_policy_names_someone_else(aws, members):
    a = members[0]
    iam = aws("iam", aws.enter(a))
    for name, statement in [
        ("other-account", allow({"AWS": f"arn:aws:iam::{members[1]}:root"})),
        ("other-role", allow({"AWS": f"arn:aws:iam::{MANAGEMENT}:role/cm-daemon"})),
        ("other-user", allow({"AWS": f"arn:aws:iam::{MANAGEMENT}:user/alice"})),
        ("service-only", allow({"Service": "states.amazonaws.com"})),
        ("other-action", {"Effect": "Allow", "Principal": {"AWS": MANAGEMENT}, "Action": "sts:TagSession"}),
        ("empty", None),
    ]:
        arn = make_role(iam, name, *([statement] if statement else []))
        assert denied(aws, arn) == refusal(arn), name


def test_assume_role_principal_arns_match_exactly_that_principal(aws, members):
    """A user ARN trusts that user; a role ARN trusts the sessions of that role, whoever else
    is in the account; "*" trusts anyone. The caller named in a refusal is the session."""
    a, b = members[0], members[1]
    iam_a, iam_b = aws("iam", aws.enter(a)), aws("iam", aws.enter(b))
    user_trusted = make_role(iam_a, "user-trusted", allow({"AWS": f"arn:aws:iam::{MANAGEMENT}:user/moto"}))
    assert aws.enter(a, "user-trusted")
    everyone = make_role(iam_a, "everyone", allow("*"))
    assert aws.enter(a, "everyone")
    # a role of account b trusted by name: its sessions only
    make_role(iam_b, "hop", allow({"AWS": MANAGEMENT}))
    hop = aws.enter(b, "hop", session="s1")
    role_trusted = make_role(iam_a, "role-trusted", allow({"AWS": [f"arn:aws:iam::{b}:role/hop"]}))
    assert aws.enter(a, "role-trusted", creds=hop)
    assert denied(aws, role_trusted) == refusal(role_trusted)
    org_role = aws.enter(b)  # another role of the same account
    assert denied(aws, role_trusted, org_role) == refusal(role_trusted, f"arn:aws:sts::{b}:assumed-role/OrganizationAccountAccessRole/cm-test")
    # a session ARN: that session only
    session_trusted = make_role(iam_a, "session-trusted", allow({"AWS": f"arn:aws:sts::{b}:assumed-role/hop/s1"}))
    assert aws.enter(a, "session-trusted", creds=hop)
    other_session = aws.enter(b, "hop", session="s2")
    assert denied(aws, session_trusted, other_session) == refusal(session_trusted, f"arn:aws:sts::{b}:assumed-role/hop/s2")
    assert user_trusted and everyone


def test_assume_role_explicit_deny_wins(aws, members):
    a = members[0]
    iam = aws("iam", aws.enter(a))
    arn = make_role(iam, "deny-wins", allow({"AWS": MANAGEMENT}),
                    {"Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{MANAGEMENT}:user/moto"}, "Action": "sts:*"})
    assert denied(aws, arn) == refusal(arn)
    # a Deny whose condition does not match does not apply
    iam.update_assume_role_policy(RoleName="deny-wins", PolicyDocument=policy(
        allow({"AWS": MANAGEMENT}),
        {"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"aws:PrincipalAccount": members[2]}}}))
    assert aws.enter(a, "deny-wins")
    # NotPrincipal: everyone but the one named
    iam.update_assume_role_policy(RoleName="deny-wins", PolicyDocument=policy(
        allow({"AWS": MANAGEMENT}),
        {"Effect": "Deny", "NotPrincipal": {"AWS": f"arn:aws:iam::{MANAGEMENT}:user/moto"}, "Action": "sts:AssumeRole"}))
    assert aws.enter(a, "deny-wins")


def test_assume_role_external_id_must_match(aws, members):
    a = members[0]
    iam = aws("iam", aws.enter(a))
    arn = make_role(iam, "with-external-id", allow({"AWS": f"arn:aws:iam::{MANAGEMENT}:root"},
                                                   Condition={"StringEquals": {"sts:ExternalId": "cm-fleet-7"}}))
    assert denied(aws, arn) == refusal(arn)  # no ExternalId: the key is absent, no match
    assert denied(aws, arn, ExternalId="cm-fleet-8") == refusal(arn)
    assert aws.enter(a, "with-external-id", ExternalId="cm-fleet-7")
    # condition keys are case-insensitive, values are not
    iam.update_assume_role_policy(RoleName="with-external-id", PolicyDocument=policy(
        allow({"AWS": MANAGEMENT}, Condition={"StringEquals": {"STS:EXTERNALID": ["x-1", "cm-fleet-7"]}})))
    assert aws.enter(a, "with-external-id", ExternalId="cm-fleet-7")
    assert denied(aws, arn, ExternalId="CM-FLEET-7") == refusal(arn)


def test_assume_role_conditions_on_the_request(aws, members):
    """Conditions on the keys AWS puts in an AssumeRole request; a key the request lacks
    matches no positive operator, and every negated one."""
    a = members[0]
    iam = aws("iam", aws.enter(a))
    org_id = aws("organizations", region="us-east-1").describe_organization()["Organization"]["Id"]
    cases = [
        ({"StringEquals": {"aws:PrincipalAccount": MANAGEMENT}}, True),
        ({"StringEquals": {"aws:PrincipalAccount": members[1]}}, False),
        ({"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{MANAGEMENT}:user/*"}}, True),
        ({"ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{MANAGEMENT}:role/*"}}, False),
        ({"StringEquals": {"aws:PrincipalType": "User", "aws:username": "moto"}}, True),
        ({"StringEquals": {"aws:PrincipalOrgID": org_id}}, True),
        ({"StringLike": {"sts:RoleSessionName": "cm-*"}}, True),
        ({"StringEquals": {"aws:RequestedRegion": REGION}}, True),
        ({"Bool": {"aws:SecureTransport": "true", "aws:PrincipalIsAWSService": "false"}}, True),
        ({"StringEquals": {"sts:SourceIdentity": "ops"}}, False),  # absent
        ({"StringEqualsIfExists": {"sts:SourceIdentity": "ops"}}, True),  # absent: IfExists matches
        ({"StringNotEquals": {"sts:SourceIdentity": "ops"}}, True),  # absent: a negated operator matches
        ({"Null": {"sts:SourceIdentity": "true", "aws:MultiFactorAuthPresent": "true"}}, True),
        ({"Null": {"aws:PrincipalArn": "true"}}, False),
        ({"Bool": {"aws:MultiFactorAuthPresent": "true"}}, False),  # long-term keys: the key is absent
        ({"NumericLessThan": {"aws:EpochTime": "4102444800"}}, True),
        ({"DateGreaterThan": {"aws:CurrentTime": "2099-01-01T00:00:00Z"}}, False),
        ({"StringEquals": {"aws:PrincipalTag/team": "ops"}}, False),  # moto's caller has no tags
        ({"StringEquals": {"aws:PrincipalArn": "arn:aws:iam::${aws:PrincipalAccount}:user/moto"}}, True),
        ({"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}}, False),  # an operator not evaluated: no match
    ]
    for i, (condition, allowed) in enumerate(cases):
        arn = make_role(iam, f"cond-{i}", allow({"AWS": MANAGEMENT}, Condition=condition))
        if allowed:
            assert aws.enter(a, f"cond-{i}"), condition
        else:
            assert denied(aws, arn) == refusal(arn), condition


def test_assume_role_source_identity_and_session_tags_need_their_actions(aws, members):
    a = members[0]
    iam = aws("iam", aws.enter(a))
    arn = make_role(iam, "plain", allow({"AWS": MANAGEMENT}))
    assert denied(aws, arn, SourceIdentity="ops") == refusal(arn, action="sts:SetSourceIdentity")
    assert denied(aws, arn, Tags=[{"Key": "team", "Value": "ops"}]) == refusal(arn, action="sts:TagSession")
    make_role(iam, "tagged", {"Effect": "Allow", "Principal": {"AWS": MANAGEMENT},
                              "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"],
                              "Condition": {"StringEquals": {"sts:SourceIdentity": "ops", "aws:RequestTag/team": "ops"}}})
    assert aws.enter(a, "tagged", SourceIdentity="ops", Tags=[{"Key": "team", "Value": "ops"}])


def test_assume_role_of_a_role_that_does_not_exist(aws, endpoint, members):
    """AWS answers a missing role as one that does not trust the caller. A role the emulator
    has never seen stands in for one the operator deployed before, unless told otherwise."""
    a = members[0]
    iam = aws("iam", aws.enter(a))
    arn = make_role(iam, "short-lived", allow({"AWS": MANAGEMENT}))
    iam.delete_role(RoleName="short-lived")
    assert denied(aws, arn) == refusal(arn)
    never = f"arn:aws:iam::{a}:role/cm-policymaintainer"
    assert aws.enter(a, "cm-policymaintainer")  # never seen: moto answers, as before
    assert hook(endpoint, "/cm-emulator/iam-trust", {"unknown_roles": "deny"})[1]["unknown_roles"] == "deny"
    assert denied(aws, never) == refusal(never)
    assert denied(aws, "arn:aws:iam::210987654321:role/cm-policymaintainer") == refusal("arn:aws:iam::210987654321:role/cm-policymaintainer")
    status, state = hook(endpoint, "/cm-emulator/iam-trust")
    assert status == 200 and state["unknown_roles"] == "deny" and state["refused"]["assume_role"] >= 3


def test_deny_assume_role_hook_still_applies_to_a_trusting_role(aws, endpoint, members):
    a = members[1]
    assert aws.enter(a)
    role = f"arn:aws:iam::{a}:role/OrganizationAccountAccessRole"
    hook(endpoint, "/cm-emulator/deny-assume-role", {"account_ids": [a]})
    assert denied(aws, role) == refusal(role)
    hook(endpoint, "/cm-emulator/deny-assume-role", {"account_ids": []})
    assert aws.enter(a)


def test_the_product_trust_policies_let_in_whom_they_name(aws, members):
    """desired-state/policies/trust/*.json as the product writes them: the member roles trust
    the management account; the service roles trust their service in their own account."""
    a = members[2]
    creds = aws.enter(a)
    iam, sf = aws("iam", creds), aws("stepfunctions", creds)
    trust = {p.stem: p.read_text().replace("{partition}", "aws").replace("{management_account_id}", MANAGEMENT)
             .replace("{account_id}", a) for p in (REPO / "desired-state/policies/trust").glob("*.json")}
    assert set(trust) >= {"management-account", "stepfunctions", "config", "eventbridge"}
    iam.create_role(RoleName="cm-helpdesk", AssumeRolePolicyDocument=trust["management-account"])
    assert aws("sts", aws.enter(a, "cm-helpdesk")).get_caller_identity()["Account"] == a
    iam.create_role(RoleName="cm-alert-statemachine-role", AssumeRolePolicyDocument=trust["stepfunctions"])
    sf.create_state_machine(name="cm-machine", definition=DEFINITION, roleArn=f"arn:aws:iam::{a}:role/cm-alert-statemachine-role")
    # the same policy written for another account (aws:SourceAccount) does not let Step Functions in
    iam.create_role(RoleName="elsewhere", AssumeRolePolicyDocument=trust["stepfunctions"].replace(a, members[0]))
    assert error_of(sf.create_state_machine, name="cm-elsewhere", definition=DEFINITION,
                    roleArn=f"arn:aws:iam::{a}:role/elsewhere") == ("AccessDeniedException", 400, STATES_REFUSAL)
    iam.create_role(RoleName="cm-config-role-all-regions", AssumeRolePolicyDocument=trust["config"])
    cfg = aws("config", creds)
    cfg.put_configuration_recorder(ConfigurationRecorder={"name": "default", "roleARN": f"arn:aws:iam::{a}:role/cm-config-role-all-regions"})
    config_bucket(aws, creds, a, f"cm-members-config-{a}")
    cfg.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": f"cm-members-config-{a}"})


# ---------------------------------------------------------------- services handed a role


def test_step_functions_refuses_a_role_it_cannot_assume(aws, members):
    a = members[1]
    creds = aws.enter(a)
    iam, sf = aws("iam", creds), aws("stepfunctions", creds)
    missing = f"arn:aws:iam::{a}:role/no-such-role"
    assert error_of(sf.create_state_machine, name="m1", definition=DEFINITION, roleArn=missing) == (
        "AccessDeniedException", 400, STATES_REFUSAL)
    config_only = make_role(iam, "config-only", allow({"Service": "config.amazonaws.com"}))
    assert error_of(sf.create_state_machine, name="m1", definition=DEFINITION, roleArn=config_only) == (
        "AccessDeniedException", 400, STATES_REFUSAL)
    assert sf.list_state_machines()["stateMachines"] == []
    # the regional service principal is accepted too
    regional = make_role(iam, "regional", allow({"Service": f"states.{REGION}.amazonaws.com"}))
    arn = sf.create_state_machine(name="m1", definition=DEFINITION, roleArn=regional)["stateMachineArn"]
    # UpdateStateMachine with a role: the same check; without one, none
    assert error_of(sf.update_state_machine, stateMachineArn=arn, roleArn=config_only) == ("AccessDeniedException", 400, STATES_REFUSAL)
    assert sf.describe_state_machine(stateMachineArn=arn)["roleArn"] == regional
    sf.update_state_machine(stateMachineArn=arn, definition=DEFINITION.replace('"P"', '"Q"'))
    # a trust that refuses for good refuses every time (no propagation involved: seconds 0)
    assert error_of(sf.create_state_machine, name="m2", definition=DEFINITION, roleArn=config_only)[0] == "AccessDeniedException"
    # a machine that does not exist: Step Functions' own answer
    assert error_of(sf.update_state_machine, stateMachineArn=arn + "-gone", roleArn=config_only)[0] == "StateMachineDoesNotExist"


def test_config_delivery_channel_refused_while_config_cannot_assume_the_recorder_role(aws, members):
    """PutConfigurationRecorder takes any role ARN (AWS does not refuse it there); Config uses
    the role when it checks delivery to the bucket, at PutDeliveryChannel."""
    a = members[1]
    creds = aws.enter(a)
    iam, cfg = aws("iam", creds), aws("config", creds)
    states_only = make_role(iam, "states-only", allow({"Service": "states.amazonaws.com"}))
    cfg.put_configuration_recorder(ConfigurationRecorder={"name": "default", "roleARN": states_only})
    bucket = f"cm-members-config-{a}"
    config_bucket(aws, creds, a, bucket)
    assert error_of(cfg.put_delivery_channel, DeliveryChannel={"name": "default", "s3BucketName": bucket}) == (
        "InsufficientDeliveryPolicyException", 400, f"Insufficient delivery policy to s3 bucket: {bucket}, unable to assume role: {states_only}")
    missing = f"arn:aws:iam::{a}:role/no-such-role"
    cfg.put_configuration_recorder(ConfigurationRecorder={"name": "default", "roleARN": missing})
    assert error_of(cfg.put_delivery_channel, DeliveryChannel={"name": "default", "s3BucketName": bucket})[0] == "InsufficientDeliveryPolicyException"
    assert cfg.describe_delivery_channels()["DeliveryChannels"] == []
    iam.update_assume_role_policy(RoleName="states-only", PolicyDocument=policy(allow({"Service": "config.amazonaws.com"})))
    cfg.put_configuration_recorder(ConfigurationRecorder={"name": "default", "roleARN": states_only})
    cfg.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": bucket})
    assert [c["name"] for c in cfg.describe_delivery_channels()["DeliveryChannels"]] == ["default"]


def test_eventbridge_put_targets_accepts_a_role_events_cannot_assume(aws, endpoint, members):
    """AWS accepts the target and fails its deliveries later; the emulator runs no deliveries."""
    hook(endpoint, "/cm-emulator/iam-propagation", {"seconds": 60})
    a = members[1]
    creds = aws.enter(a)
    iam, ev = aws("iam", creds), aws("events", creds)
    fresh = make_role(iam, "fresh-forwarder", allow({"Service": "events.amazonaws.com"}))
    ev.put_rule(Name="fwd", EventPattern='{"source":["aws.guardduty"]}', State="ENABLED")
    out = ev.put_targets(Rule="fwd", Targets=[
        {"Id": "fresh", "Arn": f"arn:aws:events:us-east-1:{a}:event-bus/default", "RoleArn": fresh},
        {"Id": "missing", "Arn": f"arn:aws:events:us-west-2:{a}:event-bus/default", "RoleArn": f"arn:aws:iam::{a}:role/none"}])
    assert out["FailedEntryCount"] == 0
    assert sorted(t["Id"] for t in ev.list_targets_by_rule(Rule="fwd")["Targets"]) == ["fresh", "missing"]


# ---------------------------------------------------------------- IAM's eventual consistency


def eventually(call, within, **kwargs):
    """Calls until it succeeds, for at most `within` seconds; returns the seconds it took."""
    start = time.monotonic()
    while True:
        try:
            call(**kwargs)
            return time.monotonic() - start
        except ClientError:
            if time.monotonic() - start > within:
                raise
            time.sleep(0.1)


def test_a_new_role_is_refused_by_step_functions_until_it_has_propagated(aws, endpoint, members):
    delay = 1.5
    assert hook(endpoint, "/cm-emulator/iam-propagation", {"seconds": delay})[1]["seconds"] == delay
    a = members[2]
    creds = aws.enter(a)
    iam, sf = aws("iam", creds), aws("stepfunctions", creds)
    made = time.monotonic()
    role = make_role(iam, "new-machine-role", allow({"Service": "states.amazonaws.com"}))
    assert error_of(sf.create_state_machine, name="new-m", definition=DEFINITION, roleArn=role) == (
        "AccessDeniedException", 400, STATES_REFUSAL)
    eventually(sf.create_state_machine, 10, name="new-m", definition=DEFINITION, roleArn=role)
    assert time.monotonic() - made >= delay
    assert hook(endpoint, "/cm-emulator/iam-propagation")[1]["refused"]["states"] >= 1


def test_a_trust_policy_change_reaches_services_only_after_the_delay(aws, endpoint, members):
    """Until a change has propagated, services see the version before it: a fixed trust is
    refused a little longer, a broken one still works a little longer."""
    a = members[2]
    creds = aws.enter(a)
    iam, sf = aws("iam", creds), aws("stepfunctions", creds)
    role = make_role(iam, "changing", allow({"Service": "config.amazonaws.com"}))
    hook(endpoint, "/cm-emulator/iam-propagation", {"seconds": 1.5})
    time.sleep(1.6)
    changed = time.monotonic()
    iam.update_assume_role_policy(RoleName="changing", PolicyDocument=policy(allow({"Service": "states.amazonaws.com"})))
    assert error_of(sf.create_state_machine, name="changing-m", definition=DEFINITION, roleArn=role)[0] == "AccessDeniedException"
    arn = None
    while arn is None:
        try:
            arn = sf.create_state_machine(name="changing-m", definition=DEFINITION, roleArn=role)["stateMachineArn"]
        except ClientError:
            assert time.monotonic() - changed < 10
            time.sleep(0.1)
    assert time.monotonic() - changed >= 1.5
    # broken again: still usable until the change has propagated, then refused
    iam.update_assume_role_policy(RoleName="changing", PolicyDocument=policy(allow({"Service": "config.amazonaws.com"})))
    sf.update_state_machine(stateMachineArn=arn, roleArn=role)
    time.sleep(1.6)
    assert error_of(sf.update_state_machine, stateMachineArn=arn, roleArn=role)[0] == "AccessDeniedException"
    # a deleted role: still there for the delay
    cfg_role = make_role(iam, "leaving", allow({"Service": "states.amazonaws.com"}))
    time.sleep(1.6)
    iam.delete_role(RoleName="leaving")
    sf.update_state_machine(stateMachineArn=arn, roleArn=cfg_role)


def test_a_new_recorder_role_is_refused_by_config_until_it_has_propagated(aws, endpoint, members):
    hook(endpoint, "/cm-emulator/iam-propagation", {"seconds": 1.5})
    a = members[0]
    creds = aws.enter(a)
    iam, cfg = aws("iam", creds), aws("config", creds)
    made = time.monotonic()
    role = make_role(iam, "new-recorder-role", allow({"Service": "config.amazonaws.com"}))
    cfg.put_configuration_recorder(ConfigurationRecorder={"name": "default", "roleARN": role})  # accepted at once
    channel = {"name": "default", "s3BucketName": "cm-config-bucket"}
    config_bucket(aws, creds, a, "cm-config-bucket")
    assert error_of(cfg.put_delivery_channel, DeliveryChannel=channel)[:2] == ("InsufficientDeliveryPolicyException", 400)
    eventually(cfg.put_delivery_channel, 10, DeliveryChannel=channel)
    assert time.monotonic() - made >= 1.5


def test_a_permissions_policy_change_delays_nothing(aws, endpoint, members):
    """Who may assume a role is its trust policy: an inline or managed policy change leaves it
    assumable by the service at once."""
    hook(endpoint, "/cm-emulator/iam-propagation", {"seconds": 1})
    a = members[0]
    creds = aws.enter(a)
    iam, sf = aws("iam", creds), aws("stepfunctions", creds)
    role = make_role(iam, "steady", allow({"Service": "states.amazonaws.com"}))
    time.sleep(1.1)
    iam.put_role_policy(RoleName="steady", PolicyName="p", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "events:PutEvents", "Resource": "*"}))
    iam.attach_role_policy(RoleName="steady", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    sf.create_state_machine(name="steady-m", definition=DEFINITION, roleArn=role)


def test_assume_role_by_a_principal_waits_for_propagation_only_when_asked(aws, endpoint, members):
    a = members[0]
    iam = aws("iam", aws.enter(a))
    hook(endpoint, "/cm-emulator/iam-propagation", {"seconds": 1.5})
    make_role(iam, "at-once", allow({"AWS": MANAGEMENT}))
    assert aws.enter(a, "at-once")  # default: AssumeRole sees IAM as it is
    assert hook(endpoint, "/cm-emulator/iam-propagation", {"seconds": 1.5, "assume_role": True})[1]["assume_role"] is True
    made = time.monotonic()
    arn = make_role(iam, "later", allow({"AWS": MANAGEMENT}))
    assert denied(aws, arn) == refusal(arn)
    eventually(aws.enter, 10, account=a, role="later")
    assert time.monotonic() - made >= 1.5


# ---------------------------------------------------------------- the hooks


def test_hooks_check_their_bodies_and_reset_restores_the_defaults(aws, endpoint):
    for path, body in [("/cm-emulator/iam-propagation", {"seconds": -1}), ("/cm-emulator/iam-propagation", {"seconds": 601}),
                       ("/cm-emulator/iam-propagation", {"seconds": True}), ("/cm-emulator/iam-propagation", {"assume_role": 1}),
                       ("/cm-emulator/iam-propagation", {"delay": 1}), ("/cm-emulator/iam-propagation", []),
                       ("/cm-emulator/iam-trust", {"unknown_roles": "maybe"}), ("/cm-emulator/iam-trust", {"x": 1})]:
        status, answer = hook(endpoint, path, body)
        assert status == 400 and "error" in answer, (path, body)
    hook(endpoint, "/cm-emulator/iam-propagation", {"seconds": 7, "assume_role": True})
    hook(endpoint, "/cm-emulator/iam-trust", {"unknown_roles": "deny"})
    urllib.request.urlopen(urllib.request.Request(endpoint + "/moto-api/reset", data=b"", method="POST"), timeout=120)
    status, state = hook(endpoint, "/cm-emulator/iam-trust")
    assert status == 200 and state == {"seconds": 2.0, "assume_role": False, "unknown_roles": "allow",
                                       "refused": {"assume_role": 0, "states": 0, "config": 0}}
