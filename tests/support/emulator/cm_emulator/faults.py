"""Fault injection: network latency and throttling on every AWS request (benchmarks), and
STS AssumeRole denied into chosen accounts (tests of one account failing among others).
Also what real fleets hit besides: server errors, connection resets and late answers
(`/cm-emulator/faults`), Regions denied to an account by a service control policy
(`/cm-emulator/deny-regions`) and credentials that expire mid-run
(`/cm-emulator/expire-credentials`). Every hook is off until a test sets it, and
`POST /moto-api/reset` switches every one off again.

A service AWS does not offer in a Region is no hook here: there its endpoint's name does not
resolve, and a server the client did reach cannot answer that. A test points the product's
endpoint for the service (`AWS_ENDPOINT_URL_<SERVICE>`) at a name under `.invalid`, which
never resolves (RFC 6761), and the SDK meets a real DNS failure.

Test hook (no AWS counterpart), AssumeRole denied:
- `POST /cm-emulator/deny-assume-role` with JSON `{"account_ids": ["111111111111", ...]}`:
  from then on, every STS AssumeRole whose RoleArn is a role of one of those accounts is
  answered as AWS answers a caller the role does not trust: HTTP 403, query-protocol body
  `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: <caller
  ARN> is not authorized to perform: sts:AssumeRole on resource: <role ARN></Message></Error>
  <RequestId/></ErrorResponse>`. The caller ARN is the one moto's GetCallerIdentity gives
  long-term credentials (`arn:aws:sts::<account>:user/moto`). Each POST replaces the list;
  `{"account_ids": []}` lets every AssumeRole through again, as does `POST /moto-api/reset`.
- `GET /cm-emulator/deny-assume-role`: `{"account_ids": [...], "denied": n}` (AssumeRole
  calls denied since the last POST).
Moto itself never denies AssumeRole (it does not check the role exists or trusts anyone).

Test hook (no AWS counterpart):
- `POST /cm-emulator/faults` with JSON `{"latency_ms": 50, "throttle_share": 0.1, "seed": 1,
  "tally": true}`, every member optional; `{}` switches everything off. Each POST starts a
  new period: its counters start at zero. Cleared by `POST /moto-api/reset`. More members,
  below: `internal_error_share`, `unavailable_share`, `reset_share`, `slow_share`, `slow_ms`.
- `GET /cm-emulator/faults`: the settings and what happened since they were set (below).

An AWS request is one signed with SigV4 (an `Authorization` header or a presigned
`X-Amz-Credential`); `/moto-api/...` and `/cm-emulator/...` requests are never delayed,
throttled or counted.

- `latency_ms`: every AWS request first sleeps this long, before anything else (a throttled
  answer too, as a round trip to AWS takes the same time either way). The server is
  threaded, one thread per connection, so concurrent requests overlap their sleeps: a client
  with C requests in flight sees about C / latency requests per second, as against AWS.
- `throttle_share` (0 to 1) and `seed` (an integer, default 0): every AWS request draws the
  next number of one `random.Random(seed)` stream; a draw below the share answers the request
  with throttling instead of passing it on. The decisions are a fixed sequence for a seed:
  the k-th AWS request since the POST gets the k-th decision (which request is k-th depends
  on arrival order when a client sends several at once). A retry is a new request, with a
  new draw.
- `tally` (bool): also count requests by account, region, service and operation (the
  operation is found from the botocore model, as below), for benchmarks; and among them the
  `identical` ones: requests let through that repeat an earlier let-through request of the
  period byte for byte (same account, region, operation, method, path, query and body;
  signature headers aside), that is calls a client could have spared.

Faults beyond throttling, drawn from the same single draw per request (so a seed gives the
same throttling decisions whatever else is set): the draw u falls into consecutive bands of
the unit interval, in this order: `throttle_share`, `internal_error_share`,
`unavailable_share`, `reset_share`, `slow_share` (their sum at most 1; a draw past them all
lets the request through untouched).
- `internal_error_share`: HTTP 500, the service's own internal-error code in its protocol
  (below), as AWS answers when a request fails on its side.
- `unavailable_share`: HTTP 503, the service's own unavailable code (below).
- `reset_share`: the connection is reset (TCP RST) without a byte of answer, as when a load
  balancer or the network drops the request in flight. Nothing reaches moto: the request has
  no effect. A client sees a connection error, never an HTTP status.
- `slow_share` with `slow_ms` (default 10000, at most 600000): the request is passed on and
  carried out at once, but its answer is held back for `slow_ms` before it is sent, so a
  client that times out first has had its call applied all the same (as with AWS, where a
  timeout says nothing of whether the call took effect); a retry then finds the change made.
Answers that no botocore model fits stay unfaulted (counted as `unidentified`), except
resets and slow answers, which need no protocol.

Throttling is answered as the request's service does on its wire protocol, the protocol
being that of the botocore model of the request's signing name that fits the request
(`wire.identify`):
- query (IAM, STS): HTTP 400 `<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>
  <Message>Rate exceeded</Message></Error><RequestId/></ErrorResponse>`.
- ec2: HTTP 503 `<Response><Errors><Error><Code>RequestLimitExceeded</Code>...` (EC2 answers
  its request-rate limit with 503 Service Unavailable; the code is what SDKs classify).
- rest-xml: S3 HTTP 503 `<Error><Code>SlowDown</Code>...` (S3's errors are not wrapped);
  other rest-xml services (S3 Control) the same code in `<ErrorResponse><Error>`.
- awsJson (KMS, CloudTrail, Organizations, Config, EventBridge, ...), restJson (Security Hub,
  GuardDuty, Detective, Access Analyzer, ...) and Smithy RPC v2 CBOR (Compute Optimizer): the
  service's own throttling error when its model declares one (a shape with the
  `retryable: {throttling: true}` trait, else one named ThrottlingException,
  TooManyRequestsException or Throttling; with the model's HTTP status), else
  ThrottlingException: 400 for awsJson, 429 for restJson and CBOR. JSON bodies carry `__type`
  and `message`, with `x-amzn-ErrorType`; CBOR bodies `__type`
  `com.amazonaws.<service>#<Code>` and `message`, with `smithy-protocol: rpc-v2-cbor`.
A request no model fits is passed on unthrottled and counted as `unidentified`.

Server errors, in each protocol (the error shapes are looked up in the operation's errors
first, then the service's):
- query: 500 the model's own (IAM `ServiceFailure`), else `InternalFailure`; 503
  `ServiceUnavailable`; `<Type>Receiver</Type>`.
- ec2: 500 `InternalError`, 503 `Unavailable` (EC2's server error codes), EC2's error body.
- rest-xml: 500 `InternalError`, 503 `ServiceUnavailable` (S3's codes), S3's error body.
- awsJson, restJson, CBOR: 500 the model's own internal error when it declares one
  (KMS `KMSInternalException`, Organizations `ServiceException`, EventBridge and Security Hub
  `InternalException`, GuardDuty `InternalServerErrorException`, Detective, Access Analyzer and
  Compute Optimizer `InternalServerException`), else `InternalFailure`; 503 the model's own
  (Compute Optimizer `ServiceUnavailableException`), else `ServiceUnavailable`. Bodies as for
  throttling.
Every SDK retries these (HTTP 500, 502, 503 and 504 are transient whatever the code).

`GET` answers `{"latency_ms", "throttle_share", "seed", "tally", "requests", "delayed",
"throttled", "unidentified", "throttled_by_code": {"<service>:<Code>": n}, "by_operation":
[{"account", "region", "service", "operation", "requests", "throttled", "identical"}, ...]}` (`by_operation`
with `tally` only; `service` is the botocore service name, `operation` null when unidentified),
and also `"internal_error_share", "unavailable_share", "reset_share", "slow_share", "slow_ms",
"internal_errors", "unavailable", "resets", "slowed", "failed_by_code": {"<service>:<Code>": n}`
(the 500 and 503 answers by code).

Test hook (no AWS counterpart), Regions denied by a service control policy:
- `POST /cm-emulator/deny-regions` with JSON `{"account_id": "111111111111", "regions":
  ["eu-west-1", ...], "not_actions": "control-tower" | ["service:Action", ...], "message":
  "..."}` (`not_actions` and `message` optional): from then on every request signed with
  credentials of that member account (its assumed-role sessions included, as SCPs apply to
  every principal of a member account) whose SigV4 Region (AWS's `aws:RequestedRegion`) is
  one of `regions` is refused as an explicit deny in an SCP refuses it, unless its IAM action
  matches `not_actions` (IAM wildcards `*` and `?`, case-insensitive). Each POST replaces that
  account's denial; `"regions": []` or `null` forgets the account. The management account is
  refused (HTTP 400): SCPs never apply to it.
- `not_actions` defaults to `"control-tower"`: the NotAction list of AWS Control Tower's
  Region deny control (GRREGIONDENY, and CT.MULTISERVICE.PV.1 without additions), the usual
  source of such denials. It exempts global services and a few global reads, so in a denied
  Region these still work: `iam:*`, `sts:*` (regional endpoints too), `organizations:*`,
  `kms:*`, `config:*`, `access-analyzer:*`, `compute-optimizer:*`, `ec2:DescribeRegions`,
  `s3:ListAllMyBuckets`, `s3:GetBucketLocation`, `s3:GetBucketPolicyStatus`,
  `s3:GetBucketPublicAccessBlock`, `s3:GetAccountPublicAccessBlock`,
  `s3:PutAccountPublicAccessBlock`, `cloudtrail:LookupEvents`, ... (the whole list is
  `CONTROL_TOWER_NOT_ACTIONS`); everything else the product calls (Security Hub, GuardDuty,
  Detective, CloudTrail, EventBridge, Step Functions, EC2 but DescribeRegions, S3 bucket
  settings) is denied. Global services are not regional: IAM, Organizations and the global
  STS endpoint are signed for us-east-1, so a policy without those exemptions (`"not_actions":
  []`) denies them exactly when us-east-1 is denied, as `aws:RequestedRegion` does on AWS.
- The IAM action is `<signing name>:<operation>` (the signing name is the IAM prefix of every
  service the product calls), except for S3, whose actions differ from its operations
  (`ListBuckets` is `s3:ListAllMyBuckets`, `GetBucketEncryption`
  `s3:GetEncryptionConfiguration`, S3 Control `GetPublicAccessBlock`
  `s3:GetAccountPublicAccessBlock`, ...: `S3_ACTIONS`).
- The answer, in the request's protocol: query `AccessDenied` 403 (`<Type>Sender</Type>`);
  ec2 `UnauthorizedOperation` 403; rest-xml `AccessDenied` 403; awsJson `AccessDeniedException`
  with the model's status when it declares the shape, else 400 (KMS, Config, Step Functions,
  CloudTrail, EventBridge: 400); restJson `AccessDeniedException` 403; CBOR as awsJson
  (Compute Optimizer declares 403). JSON and CBOR denials are written as AWS's request
  framework writes them (authorization happens before the service): awsJson body `__type`
  `com.amazon.coral.service#AccessDeniedException` without `x-amzn-ErrorType`; restJson
  `x-amzn-ErrorType: AccessDeniedException:http://internal.amazon.com/coral/com.amazon.coral.service/`
  and body `{"message": ...}`; SDKs strip both decorations. The message, unless `message` is
  given: `User: <caller ARN> is not authorized to perform: <action>[ on resource: "<bucket
  ARN>"] with an explicit deny in a service control policy: <policy ARN>` (EC2 prefixes `You
  are not authorized to perform this operation. `); the caller ARN is what GetCallerIdentity
  says of the credentials (`arn:aws:sts::<account>:assumed-role/<role>/<session>`).
- ec2:DescribeRegions is exempt: in an allowed Region it still lists the denied Region as
  enabled (the Region is opted in; the SCP only refuses calls there).
- `GET /cm-emulator/deny-regions`: `{"accounts": [{"account_id", "regions", "not_actions",
  "message"}], "denied": n, "denied_by_code": {"<service>:<Code>": n}}` (requests denied since
  the last POST).

Test hook (no AWS counterpart), credentials that expire mid-run:
- `POST /cm-emulator/expire-credentials` with JSON `{"account_id": "management" |
  "<12-digit id>", "after_requests": N, "at": <epoch seconds>}` or `{"access_key_id": "...",
  ...}` (or a list of such rules; each POST replaces them all; `[]` or `{}` clears):
  `account_id` names the account's own credentials (every access key of the account that
  AssumeRole did not issue: the management account's credentials when `management`, the
  emulator's default account); `access_key_id` one key exactly (an assumed-role session of a
  member, say). The first `after_requests` requests signed with those credentials since the
  POST pass; every one after them, and every one from the time `at` on, is refused as AWS
  refuses an expired session token. With neither member they are expired at once.
- As on AWS, credentials issued earlier by AssumeRole called with the expiring credentials
  stay valid until their own expiry (a role session does not end with its caller's), so
  member accounts entered before the expiry keep working; what fails is every call made with
  the expired credentials themselves, AssumeRole into another member included.
- The answer, per protocol (the SDKs' "expired credentials" codes): query `ExpiredToken` 403
  "The security token included in the request is expired"; ec2 `RequestExpired` 400 "Request
  has expired." (EC2's code for it); S3 `ExpiredToken` 400 "The provided token has expired."
  (with `<Token-0>`, the session token, when the request carried one); awsJson
  `ExpiredTokenException` 400, restJson `ExpiredTokenException` 403, CBOR
  `ExpiredTokenException` 400, written as the request framework writes them (see above).
  Authentication comes before authorization: an expired request is refused as expired even
  in a denied Region.
- `GET /cm-emulator/expire-credentials`: `{"rules": [{"account_id" or "access_key_id",
  "after_requests", "at", "passed", "expired"}], "expired": n}`.

Order in which a signed request meets the hooks: latency and the draw; a drawn reset; expired credentials; a denied Region; a drawn throttle
or server error; a drawn late answer; then STS AssumeRole denial, the extension modules and
moto.
"""

import fnmatch
import hashlib
import json
import random
import re
import socket
import struct
import threading
import time
import uuid
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import iam_backends
from moto.sts.models import sts_backends
from moto.utilities.utils import PARTITION_NAMES

from . import cbor
from .wire import Response, hook_answer, hook_request, identify, models_for_signing_name, object_hook_request

THROTTLE_NAMES = ("ThrottlingException", "TooManyRequestsException", "Throttling")
MESSAGE = "Rate exceeded"
SHARES = ("throttle_share", "internal_error_share", "unavailable_share", "reset_share", "slow_share")
OUTCOMES = ("throttle", "internal", "unavailable", "reset", "slow")  # the bands of SHARES, in order
SLOW_MS = 10000

_lock = threading.Lock()
_settings = {}  # replaced (never mutated) on every change
_rng = None
_counts = {}
_tally = {}
_seen = set()  # digests of the requests let through this period (tally)
_by_code = {}
_failed_by_code = {}


def _clear_counts():
    _counts.clear()
    _counts.update(requests=0, delayed=0, throttled=0, unidentified=0, internal_errors=0, unavailable=0, resets=0, slowed=0)
    _tally.clear()
    _seen.clear()
    _by_code.clear()
    _failed_by_code.clear()


_clear_counts()

_denied_accounts = frozenset()  # replaced (never mutated) on every change
_denied_count = [0]

_deny_regions = {}  # account -> {"regions": frozenset, "not_actions": "control-tower" | [..], "patterns": (..), "message"}
_deny_counts = {"denied": 0}
_denied_by_code = {}

_expiry = []  # rules: {"account_id"|"access_key_id", "after_requests", "at", "passed", "expired"}
_expired_count = [0]


def reset():
    global _rng, _settings, _denied_accounts, _deny_regions, _expiry
    with _lock:
        _settings = {}
        _rng = None
        _clear_counts()
        _denied_accounts = frozenset()
        _denied_count[0] = 0
        _deny_regions = {}
        _deny_counts["denied"] = 0
        _denied_by_code.clear()
        _expiry = []
        _expired_count[0] = 0


def active():
    """True while any hook that looks at every AWS request is set (`before` must see them)."""
    return bool(_settings or _deny_regions or _expiry)


# ---------------------------------------------------------------- the faults hook


def _state():
    out = {
        "latency_ms": _settings.get("latency_ms", 0),
        "throttle_share": _settings.get("throttle_share", 0.0),
        "seed": _settings.get("seed", 0),
        "tally": _settings.get("tally", False),
        "requests": _counts["requests"],
        "delayed": _counts["delayed"],
        "throttled": _counts["throttled"],
        "unidentified": _counts["unidentified"],
        "throttled_by_code": dict(sorted(_by_code.items())),
        "internal_error_share": _settings.get("internal_error_share", 0.0),
        "unavailable_share": _settings.get("unavailable_share", 0.0),
        "reset_share": _settings.get("reset_share", 0.0),
        "slow_share": _settings.get("slow_share", 0.0),
        "slow_ms": _settings.get("slow_ms", 0),
        "internal_errors": _counts["internal_errors"],
        "unavailable": _counts["unavailable"],
        "resets": _counts["resets"],
        "slowed": _counts["slowed"],
        "failed_by_code": dict(sorted(_failed_by_code.items())),
    }
    if _settings.get("tally"):
        out["by_operation"] = [
            {"account": a, "region": r, "service": s, "operation": o, "requests": n, "throttled": t, "identical": i}
            for (a, r, s, o), (n, t, i) in sorted(_tally.items(), key=lambda kv: tuple(x or "" for x in kv[0]))
        ]
    return out


def _number(value, low, high):
    return not isinstance(value, bool) and isinstance(value, (int, float)) and low <= value <= high


def hook(environ):
    """`POST|GET /cm-emulator/faults`."""
    global _rng, _settings
    doc, answer = object_hook_request(environ, _lock, _state)
    if answer:
        return answer
    unknown = set(doc) - {"latency_ms", "seed", "tally", "slow_ms", *SHARES}
    if unknown:
        return hook_answer(400, {"error": f"unknown members: {sorted(unknown)}"})
    latency, seed, tally = doc.get("latency_ms", 0), doc.get("seed", 0), doc.get("tally", False)
    shares = {name: doc.get(name, 0) for name in SHARES}
    if not _number(latency, 0, 60000):
        return hook_answer(400, {"error": "latency_ms must be a number of milliseconds, 0 to 60000"})
    for name, share in shares.items():
        if not _number(share, 0, 1):
            return hook_answer(400, {"error": f"{name} must be a number from 0 to 1"})
    if sum(shares.values()) > 1 + 1e-9:
        return hook_answer(400, {"error": f"the shares ({', '.join(SHARES)}) add up to more than 1"})
    slow_ms = doc.get("slow_ms", SLOW_MS if shares["slow_share"] else 0)
    if not _number(slow_ms, 0, 600000):
        return hook_answer(400, {"error": "slow_ms must be a number of milliseconds, 0 to 600000"})
    if isinstance(seed, bool) or not isinstance(seed, int):
        return hook_answer(400, {"error": "seed must be an integer"})
    if not isinstance(tally, bool):
        return hook_answer(400, {"error": "tally must be true or false"})
    drawn = any(shares.values())
    if drawn or tally:
        models_for_signing_name("sts")  # builds the signing-name index now, not in a measured request
    with _lock:
        if latency or drawn or tally:
            _settings = dict(latency_ms=latency, seed=seed, tally=tally, slow_ms=slow_ms if shares["slow_share"] else 0,
                             **{name: float(share) for name, share in shares.items()})
        else:
            _settings = {}
        _rng = random.Random(seed) if drawn else None
        _clear_counts()
        return hook_answer(200, _state())


def _draw(settings):
    """The outcome of the next draw (one of OUTCOMES, or None: let through); under _lock."""
    u = _rng.random()
    edge = 0.0
    for name, outcome in zip(SHARES, OUTCOMES):
        edge += settings[name]
        if u < edge:
            return outcome
    return None


# ---------------------------------------------------------------- every AWS request


def before(req):
    """Called for every signed AWS request while any hook is set: drops the connection (a
    Response whose `wsgi` raises), sleeps, answers with an error (a Response), or lets the
    request through (None; `req.late_ms` set when its answer is to be held back)."""
    settings = _settings
    outcome, tally = None, False
    if settings:
        latency = settings.get("latency_ms", 0)
        if latency:
            time.sleep(latency / 1000.0)
        with _lock:
            if _settings is settings:  # else changed while this request slept: not part of the new period
                _counts["requests"] += 1
                _counts["delayed"] += bool(latency)
                outcome = _draw(settings) if _rng is not None else None
                tally = settings.get("tally")
            else:
                settings = None
    if outcome == "reset":
        with _lock:
            _counts["resets"] += 1
            if tally:
                _tally_count(req, None, False, None)
        return Dropped(req.environ)

    found = None
    answer = None
    expired = _expiry and _expired(req)
    if expired:
        found = _found_or_guess(req)
        answer = _expired_answer(req, found)
        with _lock:
            _expired_count[0] += 1
    elif _deny_regions:
        rule = _deny_regions.get(req.account)
        if rule is not None and req.region in rule["regions"]:
            found = _found_or_guess(req)
            answer = _region_denied(req, found, rule)
    if (answer is None and outcome in ("throttle", "internal", "unavailable")) or (tally and found is None):
        found = found or identify(req)
    if answer is None and found:
        if outcome == "throttle":
            answer = throttling_answer(req, found)
        elif outcome in ("internal", "unavailable"):
            answer = server_error_answer(req, found, 500 if outcome == "internal" else 503)
    if answer is not None and req.method == "HEAD":
        answer.body = b""  # HEAD answers carry no body
    if answer is None and outcome == "slow":
        req.late_ms = settings["slow_ms"]
    if not settings:  # no faults period (or it changed while this request slept): nothing to count
        return answer
    digest = None
    if tally and answer is None:
        op = found[2] if found else req.header("X-Amz-Target")
        h = hashlib.sha1(f"{req.account}\n{req.region}\n{req.service}\n{op}\n{req.method}\n{req.raw_path}\n".encode())
        h.update("&".join(sorted(req.query_string.split("&"))).encode() + b"\n")
        h.update(req.body)
        digest = h.digest()
    with _lock:
        faulted = outcome in ("throttle", "internal", "unavailable")
        if answer is not None and faulted and not (expired or getattr(answer, "denied", False)):
            key = f"{found[0].service_name}:{answer.code}"
            if outcome == "throttle":
                _counts["throttled"] += 1
                _by_code[key] = _by_code.get(key, 0) + 1
            else:
                _counts["internal_errors" if outcome == "internal" else "unavailable"] += 1
                _failed_by_code[key] = _failed_by_code.get(key, 0) + 1
        elif (faulted or tally) and not found:
            _counts["unidentified"] += 1
        if answer is None and outcome == "slow":
            _counts["slowed"] += 1
        if tally:
            _tally_count(req, found, answer is not None and outcome == "throttle" and not expired
                         and not getattr(answer, "denied", False), digest)
    return answer


def _tally_count(req, found, throttled, digest):
    """Counts one request in the tally (under _lock)."""
    key = (req.account, req.region, found[0].service_name if found else req.service, found[2] if found else None)
    n, t, i = _tally.get(key, (0, 0, 0))
    repeat = digest is not None and digest in _seen
    if digest is not None:
        _seen.add(digest)
    _tally[key] = (n + 1, t + throttled, i + repeat)


def slowed(req, start_response):
    """`start_response`, or when `before` chose to hold this request's answer back, one that
    waits `req.late_ms` before the answer goes out (the request has been carried out by then:
    WSGI apps call start_response once their answer is made)."""
    late = getattr(req, "late_ms", 0)
    if not late:
        return start_response

    def late_start_response(status, headers, exc_info=None):
        time.sleep(late / 1000.0)
        return start_response(status, headers, exc_info)

    return late_start_response


# ---------------------------------------------------------------- dropped connections

RESET_KEY = "cm_emulator.reset_connection"


class Dropped(Response):
    """No answer at all: the connection is reset. Its `wsgi` raises ConnectionAbortedError,
    which the werkzeug server takes as a dropped connection (nothing is written or logged)."""

    def __init__(self, environ):
        super().__init__(0)
        self.environ = environ
        self.code = None

    def wsgi(self, start_response):
        drop = self.environ.get(RESET_KEY)
        if drop is not None:
            drop()
        else:  # another server: at least close without an answer (the client sees end of stream)
            sock = self.environ.get("werkzeug.socket")
            if sock is not None:
                try:  # the body first, else the server would read it as a next request
                    self.environ["wsgi.input"].read(int(self.environ.get("CONTENT_LENGTH") or 0))
                except (OSError, ValueError):
                    pass
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        raise ConnectionAbortedError("cm-emulator: connection dropped without an answer (test hook)")


def request_handler(base):
    """A subclass of the werkzeug request handler `base` that can reset its connection: the
    handler puts a function in each request's environ (`RESET_KEY`); once called, the handler
    ends the connection by closing its socket with SO_LINGER 0, which sends a TCP RST instead
    of an orderly FIN (the server's own `shutdown_request` would send a FIN first)."""

    class ResettingRequestHandler(base):
        _reset = False

        def make_environ(self):
            environ = super().make_environ()
            environ[RESET_KEY] = self._reset_connection
            return environ

        def _reset_connection(self):
            self._reset = True
            self.close_connection = True

        def finish(self):
            try:
                super().finish()
            finally:
                if self._reset:
                    try:
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        self.connection.close()  # rfile and wfile are closed: the descriptor closes now
                    except OSError:
                        pass

    ResettingRequestHandler.__name__ = ResettingRequestHandler.__qualname__ = f"Resetting{base.__name__}"
    return ResettingRequestHandler


# ---------------------------------------------------------------- answers in each protocol

CORAL = "com.amazon.coral.service"
COMMON_500 = "The request processing has failed because of an unknown error, exception or failure."
COMMON_503 = "The request has failed due to a temporary failure of the server."
INTERNAL_NAMES = ("InternalException", "InternalServerException", "InternalServerErrorException", "InternalFailure",
                  "KMSInternalException", "ServiceFailureException", "ServiceException")
UNAVAILABLE_NAMES = ("ServiceUnavailableException", "ServiceUnavailable")


def _found_or_guess(req):
    """(model, protocol, operation) of the request; when no model fits, the first model of its
    signing name with that model's protocol (operation None), or None when there is none. An
    authentication or authorization answer is due whatever the request is."""
    found = identify(req)
    if found:
        return found
    models = models_for_signing_name(req.service)
    return (models[0], models[0].protocol, None) if models else None


def _is_s3(model):
    return model is not None and model.metadata.get("serviceId") == "S3"


def error_answer(req, found, code, status, message, receiver=False, framework=False, extra_xml=""):
    """An AWS error answer in the request's protocol. `framework`: written as AWS's request
    framework writes the errors it raises before the service sees the request (expired
    credentials, authorization): awsJson and CBOR `__type` `com.amazon.coral.service#<Code>`
    (awsJson without x-amzn-ErrorType), restJson `x-amzn-ErrorType: <Code>:http://internal...`
    with `{"message"}`. `extra_xml` goes into S3's `<Error>` before `<RequestId>`."""
    model, protocol = (found[0], found[1]) if found else (None, "rest-json")
    rid = str(uuid.uuid4())
    kind = "Receiver" if receiver else "Sender"
    if protocol == "query":
        ns = f"https://{model.metadata.get('endpointPrefix', req.service)}.amazonaws.com/doc/{model.api_version}/"
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="{ns}"><Error><Type>{kind}</Type>'
                f"<Code>{code}</Code><Message>{escape(message)}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>")
        answer = Response(status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], body)
    elif protocol == "ec2":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
                f"<Message>{escape(message)}</Message></Error></Errors><RequestID>{rid}</RequestID></Response>")
        answer = Response(status, [("Content-Type", "text/xml")], body)
    elif protocol == "rest-xml":
        host_id = uuid.uuid4().hex
        if _is_s3(model):
            body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{escape(message)}</Message>'
                    f"{extra_xml}<RequestId>{rid}</RequestId><HostId>{host_id}</HostId></Error>")
        else:
            body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code>'
                    f"<Message>{escape(message)}</Message></Error><RequestId>{rid}</RequestId><HostId>{host_id}</HostId></ErrorResponse>")
        answer = Response(status, [("Content-Type", "application/xml"), ("x-amz-request-id", rid), ("x-amz-id-2", host_id)], body)
    elif protocol == "json":
        ctype = f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.0')}"
        if framework:
            answer = Response(status, [("Content-Type", ctype)], json.dumps({"__type": f"{CORAL}#{code}", "message": message}))
        else:
            answer = Response(status, [("Content-Type", ctype), ("x-amzn-ErrorType", code)], json.dumps({"__type": code, "message": message}))
    elif protocol == "smithy-rpc-v2-cbor":
        namespace = CORAL if framework else "com.amazonaws." + model.metadata.get("serviceId", model.service_name).lower().replace(" ", "")
        answer = Response(status, [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")],
                          cbor.encode({"__type": f"{namespace}#{code}", "message": message}))
    else:  # rest-json, and requests of no known service
        if framework:
            answer = Response(status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", f"{code}:http://internal.amazon.com/coral/{CORAL}/")],
                              json.dumps({"message": message}))
        else:
            answer = Response(status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)], json.dumps({"__type": code, "message": message}))
    answer.code = code
    if req.method == "HEAD":
        answer.body = b""
    return answer


def _error_shapes(found):
    """The operation's error shapes, then the service's."""
    model, _, op = found
    shapes = []
    if op:
        try:
            shapes = list(model.operation_model(op).error_shapes)
        except Exception:  # an operation name the model does not have
            shapes = []
    return shapes + [s for s in model.error_shapes if s not in shapes]


def _modeled(found, names, status):
    """(code, status) of the first error shape named in `names` (in that order of preference;
    within a name, the operation's own errors first) whose declared HTTP status is `status` or
    none; None when the model has none of them."""
    shapes = _error_shapes(found)
    for name in names:
        for shape in shapes:
            err = shape.metadata.get("error", {})
            if shape.name == name and err.get("httpStatusCode", status) == status:
                return err.get("code") or shape.name, status
    return None


def server_error_answer(req, found, status):
    """HTTP 500 (an internal error) or 503 (service unavailable) in the request's protocol."""
    protocol = found[1]
    message = COMMON_500 if status == 500 else COMMON_503
    if protocol == "ec2":
        code, message = ("InternalError", "An internal error has occurred.") if status == 500 else \
            ("Unavailable", "The server is overloaded and can't handle the request.")
    elif protocol == "rest-xml":
        code, message = ("InternalError", "We encountered an internal error. Please try again.") if status == 500 else \
            ("ServiceUnavailable", "Service is unable to handle request.")
    else:
        names = INTERNAL_NAMES if status == 500 else UNAVAILABLE_NAMES
        code = (_modeled(found, names, status) or ("InternalFailure" if status == 500 else "ServiceUnavailable", status))[0]
    return error_answer(req, found, code, status, message, receiver=True)


# ---------------------------------------------------------------- throttling answers


def _modeled_throttle(model):
    """(code, HTTP status or None) of the model's own throttling error, if it declares one."""
    shapes = list(model.error_shapes)
    for shape in shapes:
        if (shape.metadata.get("retryable") or {}).get("throttling"):
            return shape.metadata.get("error", {}).get("code") or shape.name, shape.metadata.get("error", {}).get("httpStatusCode")
    for name in THROTTLE_NAMES:
        for shape in shapes:
            if shape.name == name:
                return shape.metadata.get("error", {}).get("code") or shape.name, shape.metadata.get("error", {}).get("httpStatusCode")
    return None


def throttling_answer(req, found):
    model, protocol, _ = found
    rid = str(uuid.uuid4())
    if protocol == "query":
        ns = f"https://{model.metadata.get('endpointPrefix', req.service)}.amazonaws.com/doc/{model.api_version}/"
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="{ns}"><Error><Type>Sender</Type>'
                f"<Code>Throttling</Code><Message>{MESSAGE}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>")
        return _xml(400, "Throttling", body, rid)
    if protocol == "ec2":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>RequestLimitExceeded</Code>'
                f"<Message>Request limit exceeded.</Message></Error></Errors><RequestID>{rid}</RequestID></Response>")
        return _xml(503, "RequestLimitExceeded", body, rid)
    if protocol == "rest-xml":
        inner = f"<Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>{rid}</RequestId>"
        if model.metadata.get("serviceId") == "S3":
            body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{inner}<HostId>{escape(rid)}</HostId></Error>'
        else:
            body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Error><Type>Sender</Type><Code>SlowDown</Code>'
                    f"<Message>Please reduce your request rate.</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>")
        answer = _xml(503, "SlowDown", body, rid)
        answer.headers.append(("x-amz-request-id", rid))
        return answer
    code, status = _modeled_throttle(model) or ("ThrottlingException", None)
    if protocol == "json":
        ctype = f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.0')}"
        answer = Response(status or 400, [("Content-Type", ctype), ("x-amzn-ErrorType", code)],
                          json.dumps({"__type": code, "message": MESSAGE}))
    elif protocol == "rest-json":
        answer = Response(status or 429, [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)],
                          json.dumps({"__type": code, "message": MESSAGE}))
    elif protocol == "smithy-rpc-v2-cbor":
        namespace = "com.amazonaws." + model.metadata.get("serviceId", model.service_name).lower().replace(" ", "")
        answer = Response(status or 429, [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")],
                          cbor.encode({"__type": f"{namespace}#{code}", "message": MESSAGE}))
    else:
        return None
    answer.code = code
    return answer


def _xml(status, code, body, rid):
    answer = Response(status, [("Content-Type", "text/xml")], body)
    answer.code = code
    return answer


# ---------------------------------------------------------------- whose credentials

CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
QUERY_CREDENTIAL = re.compile(r"(?:^|&)X-Amz-Credential=([^&]+)")


def access_key_of(req):
    """The access key id a request is signed with (as the dispatcher reads its scope)."""
    m = CREDENTIAL.search(req.header("Authorization") or "")
    if m:
        return m.group(1)
    q = QUERY_CREDENTIAL.search(req.query_string)
    return unquote(q.group(1)).split("/")[0] if q else ""


def _issued_by_assume_role(account, key):
    """True when `key` is an assumed-role session key (moto keeps it among the access keys of
    the role's account, with the role's ARN)."""
    for partition in PARTITION_NAMES:
        try:
            found = iam_backends[account][partition].access_keys.get(key)
        except KeyError:
            continue
        if found is not None:
            return bool(getattr(found, "role_arn", None))
    return False


def caller_arn(req):
    """What GetCallerIdentity says of the request's credentials."""
    key = access_key_of(req)
    for partition in PARTITION_NAMES:
        try:
            backend = sts_backends[req.account][partition]
        except KeyError:
            continue
        role = backend.get_assumed_role_from_access_key(key)
        if role is not None:
            return role.arn
    return f"arn:aws:sts::{req.account}:user/moto"


# ---------------------------------------------------------------- Regions denied by an SCP

# The NotAction list of AWS Control Tower's Region deny control (GRREGIONDENY; the OU control
# CT.MULTISERVICE.PV.1 starts from the same list), as its documentation gives it.
CONTROL_TOWER_NOT_ACTIONS = (
    "a4b:*", "access-analyzer:*", "account:*", "acm:*", "activate:*", "artifact:*", "aws-marketplace-management:*",
    "aws-marketplace:*", "aws-portal:*", "billing:*", "billingconductor:*", "budgets:*", "ce:*", "chatbot:*", "chime:*",
    "cloudfront:*", "cloudtrail:LookupEvents", "compute-optimizer:*", "config:*", "consoleapp:*", "consolidatedbilling:*",
    "cur:*", "datapipeline:GetAccountLimits", "devicefarm:*", "directconnect:*", "ec2:DescribeRegions",
    "ec2:DescribeTransitGateways", "ec2:DescribeVpnGateways", "ecr-public:*", "fms:*", "freetier:*", "globalaccelerator:*",
    "health:*", "iam:*", "importexport:*", "invoicing:*", "iq:*", "kms:*", "license-manager:ListReceivedLicenses",
    "lightsail:Get*", "mobileanalytics:*", "networkmanager:*", "notifications-contacts:*", "notifications:*",
    "organizations:*", "payments:*", "pricing:*", "quicksight:DescribeAccountSubscription", "resource-explorer-2:*",
    "route53-recovery-cluster:*", "route53-recovery-control-config:*", "route53-recovery-readiness:*", "route53:*",
    "route53domains:*", "s3:CreateMultiRegionAccessPoint", "s3:DeleteMultiRegionAccessPoint",
    "s3:DescribeMultiRegionAccessPointOperation", "s3:GetAccountPublicAccessBlock", "s3:GetBucketLocation",
    "s3:GetBucketPolicyStatus", "s3:GetBucketPublicAccessBlock", "s3:GetMultiRegionAccessPoint",
    "s3:GetMultiRegionAccessPointPolicy", "s3:GetMultiRegionAccessPointPolicyStatus", "s3:GetStorageLensConfiguration",
    "s3:GetStorageLensDashboard", "s3:ListAllMyBuckets", "s3:ListMultiRegionAccessPoints",
    "s3:ListStorageLensConfigurations", "s3:PutAccountPublicAccessBlock", "s3:PutMultiRegionAccessPointPolicy",
    "savingsplans:*", "shield:*", "sso:*", "sts:*", "support:*", "supportapp:*", "supportplans:*", "sustainability:*",
    "tag:GetResources", "tax:*", "trustedadvisor:*", "vendor-insights:ListEntitledSecurityProfiles", "waf-regional:*",
    "waf:*", "wafv2:*",
)

# S3 operations whose IAM action has another name (the Service Authorization Reference).
S3_ACTIONS = {
    ("s3", "ListBuckets"): "ListAllMyBuckets",
    ("s3", "HeadBucket"): "ListBucket",
    ("s3", "ListObjects"): "ListBucket",
    ("s3", "ListObjectsV2"): "ListBucket",
    ("s3", "ListObjectVersions"): "ListBucketVersions",
    ("s3", "HeadObject"): "GetObject",
    ("s3", "GetBucketEncryption"): "GetEncryptionConfiguration",
    ("s3", "PutBucketEncryption"): "PutEncryptionConfiguration",
    ("s3", "DeleteBucketEncryption"): "PutEncryptionConfiguration",
    ("s3", "GetBucketLifecycleConfiguration"): "GetLifecycleConfiguration",
    ("s3", "PutBucketLifecycleConfiguration"): "PutLifecycleConfiguration",
    ("s3", "DeleteBucketLifecycle"): "PutLifecycleConfiguration",
    ("s3", "GetObjectLockConfiguration"): "GetBucketObjectLockConfiguration",
    ("s3", "PutObjectLockConfiguration"): "PutBucketObjectLockConfiguration",
    ("s3", "GetPublicAccessBlock"): "GetBucketPublicAccessBlock",
    ("s3", "PutPublicAccessBlock"): "PutBucketPublicAccessBlock",
    ("s3", "DeletePublicAccessBlock"): "PutBucketPublicAccessBlock",
    ("s3", "DeleteBucketTagging"): "PutBucketTagging",
    ("s3control", "GetPublicAccessBlock"): "GetAccountPublicAccessBlock",
    ("s3control", "PutPublicAccessBlock"): "PutAccountPublicAccessBlock",
    ("s3control", "DeletePublicAccessBlock"): "PutAccountPublicAccessBlock",
}

SCP_ARN = f"arn:aws:organizations::{DEFAULT_ACCOUNT_ID}:policy/o-cmemulator/service_control_policy/p-regiondeny"


def iam_action(req, found):
    """The IAM action of a request: `<signing name>:<operation>`, S3's own names aside."""
    op = found[2] if found and found[2] else (req.header("X-Amz-Target") or "").rpartition(".")[2] or "Unknown"
    if found:
        op = S3_ACTIONS.get((found[0].service_name, op), op)
    return f"{req.service}:{op}"


def _compile_actions(patterns):
    """IAM action patterns (`*` any run of characters, `?` one; case-insensitive) as regexes."""
    return tuple(re.compile(fnmatch.translate(p.lower())) for p in patterns)


_CONTROL_TOWER_PATTERNS = None


def deny_regions_hook(environ):
    """`POST|GET /cm-emulator/deny-regions`."""
    global _deny_regions, _CONTROL_TOWER_PATTERNS

    def state():
        with _lock:
            return _deny_state()

    doc, answer = hook_request(environ, state)
    if answer:
        return answer
    if not isinstance(doc, dict) or set(doc) - {"account_id", "regions", "not_actions", "message"}:
        return hook_answer(400, {"error": 'body must be {"account_id": "...", "regions": [...], "not_actions"?: ..., "message"?: "..."}'})
    account, regions = doc.get("account_id"), doc.get("regions")
    not_actions, message = doc.get("not_actions", "control-tower"), doc.get("message")
    if not isinstance(account, str) or not account.isdigit() or len(account) != 12:
        return hook_answer(400, {"error": "account_id must be a 12-digit string"})
    if account == DEFAULT_ACCOUNT_ID:
        return hook_answer(400, {"error": "service control policies never apply to the management account"})
    if regions is not None and (not isinstance(regions, list) or not all(isinstance(r, str) and r for r in regions)):
        return hook_answer(400, {"error": "regions must be a list of region names or null"})
    if not_actions != "control-tower" and (not isinstance(not_actions, list) or not all(
            isinstance(a, str) and ":" in a for a in not_actions)):
        return hook_answer(400, {"error": 'not_actions must be "control-tower" or a list of IAM actions ("service:Action", wildcards allowed)'})
    if message is not None and not isinstance(message, str):
        return hook_answer(400, {"error": "message must be a string"})
    if not_actions == "control-tower":
        if _CONTROL_TOWER_PATTERNS is None:
            _CONTROL_TOWER_PATTERNS = _compile_actions(CONTROL_TOWER_NOT_ACTIONS)
        patterns = _CONTROL_TOWER_PATTERNS
    else:
        patterns = _compile_actions(not_actions)
    models_for_signing_name("sts")  # builds the signing-name index now
    with _lock:
        rules = dict(_deny_regions)
        if regions:
            rules[account] = {"regions": frozenset(regions), "listed": list(dict.fromkeys(regions)), "not_actions": not_actions,
                              "patterns": patterns, "message": message}
        else:
            rules.pop(account, None)
        _deny_regions = rules
        _deny_counts["denied"] = 0
        _denied_by_code.clear()
        return hook_answer(200, _deny_state())


def _deny_state():
    return {
        "accounts": [{"account_id": a, "regions": r["listed"], "not_actions": r["not_actions"], "message": r["message"]}
                     for a, r in sorted(_deny_regions.items())],
        "denied": _deny_counts["denied"],
        "denied_by_code": dict(sorted(_denied_by_code.items())),
    }


def _bucket(req):
    first = req.raw_path.lstrip("/").split("/", 1)[0]
    return unquote(first) if first else None


def _region_denied(req, found, rule):
    """The SCP's explicit deny of `req` under `rule`, or None when its action is exempt."""
    action = iam_action(req, found)
    if any(p.match(action.lower()) for p in rule["patterns"]):
        return None
    model, protocol = (found[0], found[1]) if found else (None, "rest-json")
    message = rule["message"]
    if message is None:
        bucket = _bucket(req) if _is_s3(model) else None
        resource = f' on resource: "arn:aws:s3:::{bucket}"' if bucket else ""
        message = (f"User: {caller_arn(req)} is not authorized to perform: {action}{resource} "
                   f"with an explicit deny in a service control policy: {SCP_ARN}")
        if protocol == "ec2":
            message = "You are not authorized to perform this operation. " + message
    if protocol == "query":
        code, status = "AccessDenied", 403
    elif protocol == "ec2":
        code, status = "UnauthorizedOperation", 403
    elif protocol == "rest-xml":
        code, status = "AccessDenied", 403
    else:
        default = 403 if protocol == "rest-json" else 400
        code, status = "AccessDeniedException", default
        for shape in model.error_shapes if model is not None else ():
            if shape.name == "AccessDeniedException":
                status = shape.metadata.get("error", {}).get("httpStatusCode", default)
    answer = error_answer(req, found, code, status, message, framework=True)
    answer.denied = True
    with _lock:
        _deny_counts["denied"] += 1
        key = f"{model.service_name if model is not None else req.service}:{code}"
        _denied_by_code[key] = _denied_by_code.get(key, 0) + 1
    return answer


# ---------------------------------------------------------------- credentials that expire


def expire_credentials_hook(environ):
    """`POST|GET /cm-emulator/expire-credentials`."""
    global _expiry

    def state():
        with _lock:
            return _expiry_state()

    doc, answer = hook_request(environ, state)
    if answer:
        return answer
    docs = doc if isinstance(doc, list) else [doc] if doc else []
    rules = []
    for item in docs:
        if not isinstance(item, dict) or len(set(item) & {"account_id", "access_key_id"}) != 1 or \
                set(item) - {"account_id", "access_key_id", "after_requests", "at"}:
            return hook_answer(400, {"error": 'each rule is {"account_id": "management" | "<12 digits>"} or {"access_key_id": "..."}, '
                                              'with "after_requests"?: N and "at"?: epoch seconds'})
        rule = {"after_requests": item.get("after_requests"), "at": item.get("at"), "passed": 0, "expired": 0}
        if "account_id" in item:
            account = item["account_id"]
            account = DEFAULT_ACCOUNT_ID if account == "management" else account
            if not isinstance(account, str) or not account.isdigit() or len(account) != 12:
                return hook_answer(400, {"error": 'account_id must be "management" or a 12-digit string'})
            rule = {"account_id": account, **rule}
        else:
            key = item["access_key_id"]
            if not isinstance(key, str) or not key:
                return hook_answer(400, {"error": "access_key_id must be an access key id"})
            rule = {"access_key_id": key, **rule}
        if rule["after_requests"] is not None and (isinstance(rule["after_requests"], bool) or not isinstance(rule["after_requests"], int)
                                                    or rule["after_requests"] < 0):
            return hook_answer(400, {"error": "after_requests must be a whole number, 0 or more"})
        if rule["at"] is not None and not _number(rule["at"], 0, 1e11):
            return hook_answer(400, {"error": "at must be a time in epoch seconds"})
        if rule["after_requests"] is None and rule["at"] is None:
            rule["after_requests"] = 0
        rules.append(rule)
    models_for_signing_name("sts")  # builds the signing-name index now
    with _lock:
        _expiry = rules
        _expired_count[0] = 0
        return hook_answer(200, _expiry_state())


def _expiry_state():
    return {"rules": [dict(r) for r in _expiry], "expired": _expired_count[0]}


def _expired(req):
    """True when the request's credentials have expired under a rule (and counts it)."""
    rules = _expiry
    key = access_key_of(req)
    for rule in rules:
        if "access_key_id" in rule:
            if key != rule["access_key_id"]:
                continue
        elif req.account != rule["account_id"] or _issued_by_assume_role(req.account, key):
            continue
        with _lock:
            limit, at = rule["after_requests"], rule["at"]
            if (limit is not None and rule["passed"] >= limit) or (at is not None and time.time() >= at):
                rule["expired"] += 1
                return True
            rule["passed"] += 1
        return False
    return False


def _expired_answer(req, found):
    protocol = found[1] if found else "rest-json"
    model = found[0] if found else None
    message = "The security token included in the request is expired"
    extra = ""
    if protocol == "query":
        code, status = "ExpiredToken", 403
    elif protocol == "ec2":
        code, status, message = "RequestExpired", 400, "Request has expired."
    elif protocol == "rest-xml":
        code, status, message = "ExpiredToken", 400, "The provided token has expired."
        token = req.header("X-Amz-Security-Token")
        if token and _is_s3(model):
            extra = f"<Token-0>{escape(token)}</Token-0>"
    elif protocol == "rest-json":
        code, status = "ExpiredTokenException", 403
    else:
        code, status = "ExpiredTokenException", 400
    return error_answer(req, found, code, status, message, framework=True, extra_xml=extra)


HOOKS = {
    "/cm-emulator/deny-regions": deny_regions_hook,
    "/cm-emulator/expire-credentials": expire_credentials_hook,
}


# ---------------------------------------------------------------- AssumeRole denied


def deny_hook(environ):
    """`POST|GET /cm-emulator/deny-assume-role`."""
    global _denied_accounts
    def state():
        with _lock:
            return {"account_ids": sorted(_denied_accounts), "denied": _denied_count[0]}

    doc, answer = hook_request(environ, state)
    if answer:
        return answer
    ids = doc.get("account_ids") if isinstance(doc, dict) else None
    if set(doc if isinstance(doc, dict) else ()) != {"account_ids"} or not isinstance(ids, list) or not all(
            isinstance(i, str) and len(i) == 12 and i.isdigit() for i in ids):
        return hook_answer(400, {"error": 'body must be {"account_ids": ["<12-digit account id>", ...]}'})
    with _lock:
        _denied_accounts = frozenset(ids)
        _denied_count[0] = 0
        return hook_answer(200, {"account_ids": sorted(_denied_accounts), "denied": 0})


def denies_assume_role():
    return bool(_denied_accounts)


def assume_role_denied(req):
    """AWS's AccessDenied answer when `req` is an STS AssumeRole into a denied account, else None."""
    params = parse_qs(req.query_string)
    if req.method == "POST":
        params.update(parse_qs(req.body.decode("utf-8", "replace")))
    if params.get("Action", [""])[0] != "AssumeRole":
        return None
    role_arn = params.get("RoleArn", [""])[0]
    parts = role_arn.split(":")
    if len(parts) < 6 or parts[4] not in _denied_accounts:
        return None
    with _lock:
        _denied_count[0] += 1
    rid = str(uuid.uuid4())
    caller = f"arn:aws:sts::{req.account}:user/moto"
    message = f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            f"<Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{rid}</RequestId></ErrorResponse>")
    return Response(403, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], body)
