"""Checks of the emulator's hooks for what real fleets hit (cm_emulator/faults.py): Regions
denied by a service control policy, server errors, connection resets and late answers,
credentials that expire mid-run. Each calls real boto3 clients through `server.py` (started
once for this module, as in test_extension.py) and checks the error code, HTTP status and
wire protocol of every answer against the botocore model, the way a strict SDK reads it
(wirecheck.py). (A service absent from a Region is no hook: its endpoint's name does not
resolve, which tests get for real from an `AWS_ENDPOINT_URL_<SERVICE>` under `.invalid`.)

Run: <emulator venv>/bin/python -m pytest -q tests/support/emulator
"""

import json
import socket
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import wirecheck
from cm_emulator import cbor
from test_extension import MEMBER_A, MEMBER_B, cbor_session, endpoint, post  # noqa: F401 (endpoint is a fixture)

MANAGEMENT = "123456789012"
MEMBER_C = "333333333303"
CORAL = "com.amazon.coral.service"
SESSIONS = {}  # member account -> assumed-role credentials from this module's emulator (until its reset)


def hook(endpoint, name, doc=None):
    """POSTs `doc` to `/cm-emulator/<name>`, or GETs its state; returns the JSON answer."""
    if doc is None:
        with urllib.request.urlopen(f"{endpoint}/cm-emulator/{name}", timeout=10) as r:
            return json.loads(r.read())
    return json.loads(post(f"{endpoint}/cm-emulator/{name}", doc)[1])


def refused(endpoint, name, doc):
    with pytest.raises(urllib.error.HTTPError) as e:
        hook(endpoint, name, doc)
    return e.value.code


def credentials(endpoint, account):
    """Assumed-role credentials of a member account (issued once per account, as the product
    holds one session per member)."""
    if account not in SESSIONS:
        sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                           aws_secret_access_key="testing")
        SESSIONS[account] = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/cm-test", RoleSessionName="cm-test")["Credentials"]
    return SESSIONS[account]


class Client:
    """A boto3 client (management credentials, or a member's assumed-role session) that keeps
    every raw answer; `check` also puts each one through wirecheck (only for answers whose
    error code the model declares: AWS's authentication errors are in no model)."""

    def __init__(self, endpoint, service, region, account=None, attempts=1, session=None, check=False, read_timeout=60):
        keys = dict(aws_access_key_id="testing", aws_secret_access_key="testing")
        if account:
            c = credentials(endpoint, account)
            keys = dict(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])
        cfg = Config(s3={"addressing_style": "path"}, retries={"mode": "standard", "total_max_attempts": attempts},
                     read_timeout=read_timeout, connect_timeout=5)
        self.client = (session or boto3.Session()).client(service, endpoint_url=endpoint, region_name=region, config=cfg, **keys)
        if service == "s3control":  # the endpoint rules put the account id in the host; the emulator has one host
            def drop_account_host(request, **_):
                request.url = request.url.replace(f"//{account or MANAGEMENT}.", "//")
            self.client.meta.events.register("before-sign", drop_account_host)
        self.raw = []
        self.client.meta.events.register("after-call", lambda http_response, **_: self.raw.append(http_response))
        if check:
            wirecheck.attach(self.client)

    def __getattr__(self, name):
        return getattr(self.client, name)

    def error(self, op, **params):
        """(code, HTTP status, message, raw answer) of a call that fails."""
        with pytest.raises(ClientError) as e:
            getattr(self.client, op)(**params)
        err = e.value.response
        return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"].get("Message", ""), self.raw[-1]

    def problems(self):
        return getattr(self.client, "wire_problems", [])


def xml_of(raw):
    root = ET.fromstring(raw.content)
    return root.tag.split("}")[-1], (lambda path: root.findtext("/".join("{*}" + p for p in path.split("/"))))


def strict_code(protocol, raw):
    """The error code a strict SDK reads from the raw answer (namespace and URI suffix stripped)."""
    return wirecheck.error_code(protocol, {k.lower(): v for k, v in raw.headers.items()}, raw.content)


def assert_wire(protocol, raw, code, framework=False):
    """The raw answer is `code` in `protocol`'s error shape."""
    headers = {k.lower(): v for k, v in raw.headers.items()}
    if protocol == "query":
        tag, text = xml_of(raw)
        assert tag == "ErrorResponse" and text("Error/Code") == code and text("Error/Type") in ("Sender", "Receiver") and text("RequestId")
    elif protocol == "ec2":
        tag, text = xml_of(raw)
        assert tag == "Response" and text("Errors/Error/Code") == code and text("RequestID")
    elif protocol == "s3":
        tag, text = xml_of(raw)
        assert tag == "Error" and text("Code") == code and text("RequestId") and text("HostId")  # S3 does not wrap its errors
    elif protocol == "rest-xml":
        tag, text = xml_of(raw)
        assert tag == "ErrorResponse" and text("Error/Code") == code
    elif protocol == "cbor":
        assert headers["smithy-protocol"] == "rpc-v2-cbor" and headers["content-type"] == "application/cbor"
        doc = cbor.decode(raw.content)
        assert doc["__type"] == (f"{CORAL}#{code}" if framework else f"com.amazonaws.computeoptimizer#{code}") and doc["message"]
    elif protocol == "json":
        doc = json.loads(raw.content)
        assert headers["content-type"].startswith("application/x-amz-json-") and doc["message"]
        if framework:  # as AWS's request framework writes it: namespaced __type, no x-amzn-ErrorType
            assert doc["__type"] == f"{CORAL}#{code}" and "x-amzn-errortype" not in headers
        else:
            assert doc["__type"] == headers["x-amzn-errortype"] == code
    elif protocol == "rest-json":
        doc = json.loads(raw.content)
        assert doc["message"]
        if framework:
            assert headers["x-amzn-errortype"] == f"{code}:http://internal.amazon.com/coral/{CORAL}/"
        else:
            assert headers["x-amzn-errortype"] == doc["__type"] == code
    if protocol != "cbor":  # (CBOR's __type was read above)
        assert strict_code({"s3": "rest-xml"}.get(protocol, protocol), raw) == code


# ---------------------------------------------------------------- Regions denied by an SCP

DENIED = "eu-west-3"
ALLOWED = "eu-central-1"

REGION_DENIALS = [
    # service, operation, params, code, HTTP status, wire protocol (the model declares the code: wirecheck applies)
    ("securityhub", "describe_hub", {}, "AccessDeniedException", 403, "rest-json", True),
    ("guardduty", "list_detectors", {}, "AccessDeniedException", 403, "rest-json", True),
    ("detective", "list_graphs", {}, "AccessDeniedException", 403, "rest-json", True),
    ("cloudtrail", "describe_trails", {}, "AccessDeniedException", 400, "json", True),
    ("events", "describe_event_bus", {}, "AccessDeniedException", 400, "json", True),
    ("stepfunctions", "list_state_machines", {}, "AccessDeniedException", 400, "json", False),
    ("ec2", "describe_vpcs", {}, "UnauthorizedOperation", 403, "ec2", False),
    ("ec2", "get_ebs_encryption_by_default", {}, "UnauthorizedOperation", 403, "ec2", False),
    ("s3", "get_bucket_versioning", {"Bucket": "cm-denied-bucket"}, "AccessDenied", 403, "s3", False),
]

# Exempt by AWS Control Tower's Region deny control: these reach the emulator (moto's own
# answer, whatever it is, shows the request got through).
REGION_EXEMPT = [
    ("kms", "list_keys", {}),
    ("config", "describe_configuration_recorders", {}),
    ("accessanalyzer", "list_analyzers", {}),
    ("compute-optimizer", "get_enrollment_status", {}),
    ("sts", "get_caller_identity", {}),
    ("ec2", "describe_regions", {}),
    ("s3", "list_buckets", {}),
]


@pytest.fixture
def regions_denied(endpoint):
    hook(endpoint, "deny-regions", {"account_id": MEMBER_A, "regions": [DENIED, "us-east-1"]})
    yield
    for account in (MEMBER_A, MEMBER_B):
        hook(endpoint, "deny-regions", {"account_id": account, "regions": []})


@pytest.mark.parametrize("service,op,params,code,status,wire,modeled", REGION_DENIALS, ids=[f"{d[0]}-{d[1]}" for d in REGION_DENIALS])
def test_region_deny_answers_as_a_service_control_policy(endpoint, regions_denied, service, op, params, code, status, wire, modeled):
    client = Client(endpoint, service, DENIED, account=MEMBER_A, check=modeled)
    got_code, got_status, message, raw = client.error(op, **params)
    assert (got_code, got_status) == (code, status)
    assert_wire(wire, raw, code, framework=True)
    assert not client.problems(), client.problems()
    prefix = {"stepfunctions": "states"}.get(service, service)
    action = {"get_bucket_versioning": "GetBucketVersioning"}.get(op, client.meta.method_to_api_mapping[op])
    caller = f"arn:aws:sts::{MEMBER_A}:assumed-role/cm-test/cm-test"
    resource = ' on resource: "arn:aws:s3:::cm-denied-bucket"' if service == "s3" else ""
    want = (f"User: {caller} is not authorized to perform: {prefix}:{action}{resource} with an explicit deny in a service "
            f"control policy: arn:aws:organizations::{MANAGEMENT}:policy/o-cmemulator/service_control_policy/p-regiondeny")
    assert message == ("You are not authorized to perform this operation. " + want if wire == "ec2" else want)
    # the same call in an allowed Region, or by another account, reaches the service
    for other in (Client(endpoint, service, ALLOWED, account=MEMBER_A), Client(endpoint, service, DENIED, account=MEMBER_B)):
        try:
            getattr(other, op)(**params)
        except ClientError as e:
            assert e.response["Error"]["Code"] != code


def test_region_deny_exempts_what_control_tower_exempts(endpoint, regions_denied, tmp_path):
    for service, op, params in REGION_EXEMPT:
        client = Client(endpoint, service, DENIED, account=MEMBER_A)
        try:
            getattr(client, op)(**params)
        except ClientError as e:
            assert "service control policy" not in e.response["Error"].get("Message", ""), (service, op)
    Client(endpoint, "compute-optimizer", DENIED, account=MEMBER_A, session=cbor_session(tmp_path)).get_enrollment_status()
    # S3 Control's account-level public access block is exempt too (s3:GetAccountPublicAccessBlock)
    s3control = Client(endpoint, "s3control", DENIED, account=MEMBER_A)
    with pytest.raises(ClientError) as e:
        s3control.get_public_access_block(AccountId=MEMBER_A)
    assert e.value.response["Error"]["Code"] == "NoSuchPublicAccessBlockConfiguration"
    # IAM is global (signed for us-east-1, which is denied here too) and exempt
    assert Client(endpoint, "iam", "us-east-1", account=MEMBER_A).list_roles()["Roles"] is not None
    # DescribeRegions from an allowed Region still lists the denied Region as enabled
    regions = Client(endpoint, "ec2", ALLOWED, account=MEMBER_A).describe_regions()["Regions"]
    assert DENIED in [r["RegionName"] for r in regions]
    state = hook(endpoint, "deny-regions")
    assert state["accounts"] == [{"account_id": MEMBER_A, "regions": [DENIED, "us-east-1"], "not_actions": "control-tower", "message": None}]
    assert state["denied"] == 0


def test_region_deny_without_exemptions_reaches_global_services(endpoint, regions_denied, tmp_path):
    """A policy of one's own (`not_actions`): IAM and the global STS endpoint are signed for
    us-east-1, so they are denied exactly when us-east-1 is."""
    hook(endpoint, "deny-regions", {"account_id": MEMBER_B, "regions": ["us-east-1", DENIED], "not_actions": ["sts:GetCallerIdentity"],
                                    "message": "Region not allowed by your organization"})
    iam = Client(endpoint, "iam", "us-east-1", account=MEMBER_B)
    code, status, message, raw = iam.error("list_roles")
    assert (code, status, message) == ("AccessDenied", 403, "Region not allowed by your organization")
    assert_wire("query", raw, code)
    assert xml_of(raw)[1]("Error/Type") == "Sender"
    assert Client(endpoint, "sts", "us-east-1", account=MEMBER_B).get_caller_identity()["Account"] == MEMBER_B
    kms = Client(endpoint, "kms", DENIED, account=MEMBER_B)
    code, status, _, raw = kms.error("list_keys")
    assert (code, status) == ("AccessDeniedException", 400)  # KMS declares no such shape: awsJson's 400
    assert_wire("json", raw, code, framework=True)
    for session, wire in ((None, "json"), (cbor_session(tmp_path), "cbor")):
        co = Client(endpoint, "compute-optimizer", DENIED, account=MEMBER_B, session=session, check=True)
        code, status, _, raw = co.error("get_enrollment_status")
        assert (code, status) == ("AccessDeniedException", 403)  # the status Compute Optimizer's model declares
        assert_wire(wire, raw, code, framework=True)
        assert not co.problems(), co.problems()
    assert Client(endpoint, "kms", ALLOWED, account=MEMBER_B).list_keys()["Keys"] is not None
    state = hook(endpoint, "deny-regions")
    assert state["denied"] == 4
    assert state["denied_by_code"] == {"compute-optimizer:AccessDeniedException": 2, "iam:AccessDenied": 1, "kms:AccessDeniedException": 1}
    assert state["accounts"][1] == {"account_id": MEMBER_B, "regions": ["us-east-1", DENIED], "not_actions": ["sts:GetCallerIdentity"],
                                    "message": "Region not allowed by your organization"}


def test_region_deny_hook_rejects_bad_bodies(endpoint):
    for doc in ({"account_id": MANAGEMENT, "regions": [DENIED]},  # SCPs never apply to the management account
                {"account_id": "12345", "regions": [DENIED]}, {"account_id": MEMBER_A, "regions": DENIED},
                {"account_id": MEMBER_A, "regions": [DENIED], "not_actions": "everything"},
                {"account_id": MEMBER_A, "regions": [DENIED], "not_actions": ["iam"]},
                {"account_id": MEMBER_A, "regions": [DENIED], "extra": 1}, [MEMBER_A]):
        assert refused(endpoint, "deny-regions", doc) == 400
    assert hook(endpoint, "deny-regions")["accounts"] == []


# ---------------------------------------------------------------- server errors, resets, late answers


def signed_request(endpoint, region, service, body=b"{}", path="/graphs/list"):
    """A raw signed-looking POST as an SDK sends it; returns what the socket gives back: the
    bytes read, and the error that ended the read (None: the server closed in order)."""
    host, port = endpoint.split("//")[1].split(":")
    request = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
               f"Authorization: AWS4-HMAC-SHA256 Credential=testing/20250101/{region}/{service}/aws4_request, "
               f"SignedHeaders=host, Signature=0\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data, None
                data += chunk
        except OSError as e:
            return data, e


def faults(endpoint, doc=None):
    return hook(endpoint, "faults", doc)


@pytest.fixture
def faults_off(endpoint):
    yield
    faults(endpoint, {})


SERVER_ERRORS = [
    # service, operation, params, (500 code, 503 code), wire protocol
    ("iam", "list_roles", {}, ("ServiceFailure", "ServiceUnavailable"), "query"),
    ("sts", "get_caller_identity", {}, ("InternalFailure", "ServiceUnavailable"), "query"),
    ("ec2", "describe_vpcs", {}, ("InternalError", "Unavailable"), "ec2"),
    ("s3", "list_buckets", {}, ("InternalError", "ServiceUnavailable"), "s3"),
    ("s3control", "get_public_access_block", {"AccountId": MANAGEMENT}, ("InternalError", "ServiceUnavailable"), "rest-xml"),
    ("kms", "list_keys", {}, ("KMSInternalException", "ServiceUnavailable"), "json"),
    ("cloudtrail", "describe_trails", {}, ("InternalFailure", "ServiceUnavailable"), "json"),
    ("organizations", "list_accounts", {}, ("ServiceException", "ServiceUnavailable"), "json"),
    ("config", "describe_configuration_recorders", {}, ("InternalFailure", "ServiceUnavailable"), "json"),
    ("events", "describe_event_bus", {}, ("InternalException", "ServiceUnavailable"), "json"),
    ("stepfunctions", "list_state_machines", {}, ("InternalFailure", "ServiceUnavailable"), "json"),
    ("securityhub", "describe_hub", {}, ("InternalException", "ServiceUnavailable"), "rest-json"),
    ("guardduty", "list_detectors", {}, ("InternalServerErrorException", "ServiceUnavailable"), "rest-json"),
    ("detective", "list_graphs", {}, ("InternalServerException", "ServiceUnavailable"), "rest-json"),
    ("accessanalyzer", "list_analyzers", {}, ("InternalServerException", "ServiceUnavailable"), "rest-json"),
    ("compute-optimizer", "get_enrollment_status", {}, ("InternalServerException", "ServiceUnavailableException"), "json"),
    ("compute-optimizer", "get_enrollment_status", {}, ("InternalServerException", "ServiceUnavailableException"), "cbor"),
]


@pytest.mark.parametrize("service,op,params,codes,wire", SERVER_ERRORS, ids=[f"{e[0]}-{e[4]}" for e in SERVER_ERRORS])
def test_faults_server_errors_in_the_protocol_of_the_service(endpoint, faults_off, tmp_path, service, op, params, codes, wire):
    session = cbor_session(tmp_path) if wire == "cbor" else None
    for share, status, code in (("internal_error_share", 500, codes[0]), ("unavailable_share", 503, codes[1])):
        client = Client(endpoint, service, "ap-south-1", attempts=2, session=session)
        client.meta.events.register("before-sleep", lambda **_: None)
        faults(endpoint, {share: 1.0, "seed": 1})
        with pytest.raises(ClientError) as e:
            getattr(client, op)(**params)
        meta = e.value.response["ResponseMetadata"]
        assert (e.value.response["Error"]["Code"], meta["HTTPStatusCode"]) == (code, status)
        assert meta["RetryAttempts"] == 1, "botocore's standard mode retries a 5xx as transient"
        assert_wire(wire, client.raw[-1], code)
        if wire == "query":
            assert xml_of(client.raw[-1])[1]("Error/Type") == "Receiver"
        modeled = {s.name: s for s in client.meta.service_model.error_shapes}.get(code)
        if modeled is not None:  # the model's own error: its declared status, if any, is the one sent
            assert modeled.metadata.get("error", {}).get("httpStatusCode", status) == status
            if wire in ("json", "rest-json"):
                assert wirecheck.check_error(wire, client.meta.service_model.operation_model(client.meta.method_to_api_mapping[op]),
                                             status, client.raw[-1].headers, client.raw[-1].content) == []
        state = faults(endpoint)
        name = client.meta.service_model.service_name
        counted = "internal_errors" if status == 500 else "unavailable"
        assert (state["requests"], state[counted], state["throttled"], state["failed_by_code"]) == (2, 2, 0, {f"{name}:{code}": 2})


def test_faults_resets_are_connection_errors_and_change_nothing(endpoint, faults_off):
    iam = Client(endpoint, "iam", "us-east-1", attempts=3)
    iam.meta.events.register("before-sleep", lambda **_: None)
    faults(endpoint, {"reset_share": 1.0})
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        iam.create_role(RoleName="cm-reset-never-made", AssumeRolePolicyDocument="{}")
    data, err = signed_request(endpoint, "us-east-1", "iam", body=b"Action=ListRoles&Version=2010-05-08", path="/")
    assert data == b"" and isinstance(err, ConnectionResetError), (data, err)
    state = faults(endpoint)
    assert (state["requests"], state["resets"], state["reset_share"]) == (4, 4, 1.0)
    faults(endpoint, {})
    with pytest.raises(ClientError) as e:
        iam.get_role(RoleName="cm-reset-never-made")
    assert e.value.response["Error"]["Code"] == "NoSuchEntity"  # a reset request never reaches the service


def test_faults_mixed_shares_are_one_seeded_draw(endpoint, faults_off):
    sts = Client(endpoint, "sts", "ap-south-1")

    def outcomes():
        out = []
        for _ in range(60):
            try:
                sts.get_caller_identity()
                out.append("ok")
            except ClientError as e:
                out.append(e.response["Error"]["Code"])
            except botocore.exceptions.ConnectionClosedError:
                out.append("reset")
        return out

    mix = {"throttle_share": 0.2, "internal_error_share": 0.15, "unavailable_share": 0.15, "reset_share": 0.1, "seed": 11}
    faults(endpoint, mix)
    first = outcomes()
    state = faults(endpoint)
    assert state["throttled"] == first.count("Throttling") > 0
    assert state["internal_errors"] == first.count("InternalFailure") > 0
    assert state["unavailable"] == first.count("ServiceUnavailable") > 0
    assert state["resets"] == first.count("reset") > 0 and first.count("ok") > 0
    assert state["failed_by_code"] == {"sts:InternalFailure": state["internal_errors"], "sts:ServiceUnavailable": state["unavailable"]}
    faults(endpoint, mix)
    assert outcomes() == first
    # throttling decisions are the same draws whatever else is set
    faults(endpoint, {"throttle_share": 0.2, "seed": 11})
    assert [o == "Throttling" for o in outcomes()] == [o == "Throttling" for o in first]
    for bad in ({"internal_error_share": 0.7, "unavailable_share": 0.5}, {"reset_share": -0.1}, {"slow_share": 0.5, "slow_ms": -1},
                {"slow_share": 2}, {"error_share": 0.1}):
        assert refused(endpoint, "faults", bad) == 400


def test_faults_late_answer_after_the_change_is_made(endpoint, faults_off):
    """A client that times out has had its call applied all the same; its retry finds it made."""
    faults(endpoint, {"slow_share": 1.0, "slow_ms": 1500})
    impatient = Client(endpoint, "iam", "us-east-1", read_timeout=0.5)
    t = time.monotonic()
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        impatient.create_role(RoleName="cm-slow-role", AssumeRolePolicyDocument="{}")
    assert time.monotonic() - t < 1.4
    patient = Client(endpoint, "iam", "us-east-1")
    t = time.monotonic()
    with pytest.raises(ClientError) as e:
        patient.create_role(RoleName="cm-slow-role", AssumeRolePolicyDocument="{}")  # the retry a client would make
    assert e.value.response["Error"]["Code"] == "EntityAlreadyExists" and time.monotonic() - t >= 1.5
    state = faults(endpoint)
    assert (state["requests"], state["slowed"], state["slow_ms"]) == (2, 2, 1500)
    faults(endpoint, {})
    assert patient.get_role(RoleName="cm-slow-role")["Role"]["RoleName"] == "cm-slow-role"
    assert faults(endpoint, {"slow_share": 0.5})["slow_ms"] == 10000  # the default hold-back


# ---------------------------------------------------------------- credentials that expire


@pytest.fixture
def expiry_off(endpoint):
    yield
    hook(endpoint, "expire-credentials", [])
    hook(endpoint, "deny-regions", {"account_id": MEMBER_C, "regions": None})


def test_management_credentials_expire_mid_run(endpoint, expiry_off, tmp_path):
    region = "sa-east-1"
    member = Client(endpoint, "securityhub", region, account=MEMBER_A)  # a session issued before the expiry
    sts = Client(endpoint, "sts", region)
    state = hook(endpoint, "expire-credentials", {"account_id": "management", "after_requests": 2})
    assert state == {"rules": [{"account_id": MANAGEMENT, "after_requests": 2, "at": None, "passed": 0, "expired": 0}], "expired": 0}
    sts.get_caller_identity()
    sts.get_caller_identity()
    code, status, message, raw = sts.error("get_caller_identity")
    assert (code, status, message) == ("ExpiredToken", 403, "The security token included in the request is expired")
    assert_wire("query", raw, code)
    # entering another member needs the management credentials: refused the same way
    code, status, _, raw = sts.error("assume_role", RoleArn=f"arn:aws:iam::{MEMBER_B}:role/cm-test", RoleSessionName="cm-test")
    assert (code, status) == ("ExpiredToken", 403)
    cases = [
        ("iam", "list_roles", {}, "ExpiredToken", 403, "query", None),
        ("ec2", "describe_vpcs", {}, "RequestExpired", 400, "ec2", None),
        ("s3", "list_buckets", {}, "ExpiredToken", 400, "s3", None),
        ("kms", "list_keys", {}, "ExpiredTokenException", 400, "json", None),
        ("organizations", "list_accounts", {}, "ExpiredTokenException", 400, "json", None),
        ("securityhub", "describe_hub", {}, "ExpiredTokenException", 403, "rest-json", None),
        ("compute-optimizer", "get_enrollment_status", {}, "ExpiredTokenException", 400, "cbor", cbor_session(tmp_path)),
    ]
    for service, op, params, want, want_status, wire, session in cases:
        code, status, _, raw = Client(endpoint, service, "us-east-1" if service == "iam" else region, session=session).error(op, **params)
        assert (code, status) == (want, want_status), service
        assert_wire(wire, raw, code, framework=True)
    # the member session issued earlier lives on until its own expiry
    with pytest.raises(ClientError) as e:
        member.describe_hub()
    assert e.value.response["Error"]["Code"] == "InvalidAccessException"  # the service's own answer: no hub there
    assert Client(endpoint, "sts", region, account=MEMBER_A).get_caller_identity()["Account"] == MEMBER_A
    state = hook(endpoint, "expire-credentials")
    assert state["rules"][0]["passed"] == 2 and state["rules"][0]["expired"] == state["expired"] == 2 + len(cases)


def test_credentials_expire_at_a_time_and_by_key(endpoint, expiry_off):
    region = "ca-central-1"
    c = credentials(endpoint, MEMBER_C)
    at = time.time() + 1.0
    hook(endpoint, "expire-credentials", [{"access_key_id": c["AccessKeyId"], "at": at}])
    s3 = Client(endpoint, "s3", region, account=MEMBER_C)
    assert s3.list_buckets()["Buckets"] is not None
    time.sleep(max(0.0, at - time.time()) + 0.05)
    code, status, message, raw = s3.error("list_buckets")
    assert (code, status, message) == ("ExpiredToken", 400, "The provided token has expired.")
    assert_wire("s3", raw, code)
    assert xml_of(raw)[1]("Token-0") == c["SessionToken"]  # S3 names the expired token
    assert Client(endpoint, "s3", region).list_buckets()["Buckets"] is not None  # other credentials live on
    # authentication comes before authorization: expired even where the Region is denied
    hook(endpoint, "deny-regions", {"account_id": MEMBER_C, "regions": [region]})
    code, status, _, raw = Client(endpoint, "securityhub", region, account=MEMBER_C).error("describe_hub")
    assert (code, status) == ("ExpiredTokenException", 403)
    assert hook(endpoint, "deny-regions")["denied"] == 0
    state = hook(endpoint, "expire-credentials")
    assert state["rules"] == [{"access_key_id": c["AccessKeyId"], "after_requests": None, "at": at, "passed": 1, "expired": 2}]
    for bad in ({"account_id": "management", "access_key_id": "x"}, {"account_id": "mgmt"}, {"account_id": MEMBER_A, "after_requests": -1},
                {"account_id": MEMBER_A, "at": "soon"}, {"after_requests": 1}, [{"account_id": MEMBER_A}, 3]):
        assert refused(endpoint, "expire-credentials", bad) == 400
    assert hook(endpoint, "expire-credentials", {}) == {"rules": [], "expired": 0}
    assert s3.list_buckets()["Buckets"] is not None


# ---------------------------------------------------------------- reset


def test_reset_switches_every_strict_hook_off(endpoint):
    hook(endpoint, "deny-regions", {"account_id": MEMBER_B, "regions": [DENIED]})
    hook(endpoint, "expire-credentials", {"account_id": "management"})
    faults(endpoint, {"internal_error_share": 0.1, "unavailable_share": 0.1, "reset_share": 0.1, "slow_share": 0.1, "slow_ms": 5})
    post(endpoint + "/moto-api/reset")
    SESSIONS.clear()
    assert hook(endpoint, "deny-regions") == {"accounts": [], "denied": 0, "denied_by_code": {}}
    assert hook(endpoint, "expire-credentials") == {"rules": [], "expired": 0}
    state = faults(endpoint)
    assert all(state[k] == 0 for k in ("internal_error_share", "unavailable_share", "reset_share", "slow_share", "slow_ms", "requests"))
    assert Client(endpoint, "detective", DENIED, account=MEMBER_B).list_graphs()["GraphList"] == []
