"""Fault injection: network latency and throttling on every AWS request (benchmarks), and
STS AssumeRole denied into chosen accounts (tests of one account failing among others).

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
  new period: its counters start at zero. Cleared by `POST /moto-api/reset`.
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

`GET` answers `{"latency_ms", "throttle_share", "seed", "tally", "requests", "delayed",
"throttled", "unidentified", "throttled_by_code": {"<service>:<Code>": n}, "by_operation":
[{"account", "region", "service", "operation", "requests", "throttled", "identical"}, ...]}` (`by_operation`
with `tally` only; `service` is the botocore service name, `operation` null when unidentified).
"""

import hashlib
import json
import random
import threading
import time
import uuid
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from . import cbor
from .wire import Response, hook_answer, hook_request, identify, models_for_signing_name

THROTTLE_NAMES = ("ThrottlingException", "TooManyRequestsException", "Throttling")
MESSAGE = "Rate exceeded"

_lock = threading.Lock()
_settings = {}  # replaced (never mutated) on every change
_rng = None
_counts = {}
_tally = {}
_seen = set()  # digests of the requests let through this period (tally)
_by_code = {}


def _clear_counts():
    _counts.clear()
    _counts.update(requests=0, delayed=0, throttled=0, unidentified=0)
    _tally.clear()
    _seen.clear()
    _by_code.clear()


_clear_counts()

_denied_accounts = frozenset()  # replaced (never mutated) on every change
_denied_count = [0]


def reset():
    global _rng, _settings, _denied_accounts
    with _lock:
        _settings = {}
        _rng = None
        _clear_counts()
        _denied_accounts = frozenset()
        _denied_count[0] = 0


def active():
    return bool(_settings)


# ---------------------------------------------------------------- the hook


def _state():
    out = {
        "latency_ms": _settings.get("latency_ms", 0),
        "throttle_share": _settings.get("throttle_share", 0.0),
        "seed": _settings.get("seed", 0),
        "tally": _settings.get("tally", False),
        **_counts,
        "throttled_by_code": dict(sorted(_by_code.items())),
    }
    if _settings.get("tally"):
        out["by_operation"] = [
            {"account": a, "region": r, "service": s, "operation": o, "requests": n, "throttled": t, "identical": i}
            for (a, r, s, o), (n, t, i) in sorted(_tally.items(), key=lambda kv: tuple(x or "" for x in kv[0]))
        ]
    return out


def hook(environ):
    """`POST|GET /cm-emulator/faults`."""
    global _rng, _settings
    def state():
        with _lock:
            return _state()

    doc, answer = hook_request(environ, state)
    if answer:
        return answer
    if not isinstance(doc, dict):
        return hook_answer(400, {"error": "body must be a JSON object"})
    unknown = set(doc) - {"latency_ms", "throttle_share", "seed", "tally"}
    if unknown:
        return hook_answer(400, {"error": f"unknown members: {sorted(unknown)}"})
    latency, share, seed, tally = doc.get("latency_ms", 0), doc.get("throttle_share", 0), doc.get("seed", 0), doc.get("tally", False)
    if isinstance(latency, bool) or not isinstance(latency, (int, float)) or not 0 <= latency <= 60000:
        return hook_answer(400, {"error": "latency_ms must be a number of milliseconds, 0 to 60000"})
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
        return hook_answer(400, {"error": "throttle_share must be a number from 0 to 1"})
    if isinstance(seed, bool) or not isinstance(seed, int):
        return hook_answer(400, {"error": "seed must be an integer"})
    if not isinstance(tally, bool):
        return hook_answer(400, {"error": "tally must be true or false"})
    if share > 0 or tally:
        models_for_signing_name("sts")  # builds the signing-name index now, not in a measured request
    with _lock:
        _settings = dict(latency_ms=latency, throttle_share=float(share), seed=seed, tally=tally) if (latency or share or tally) else {}
        _rng = random.Random(seed) if share > 0 else None
        _clear_counts()
        return hook_answer(200, _state())


# ---------------------------------------------------------------- every AWS request


def before(req):
    """Called for every signed AWS request while faults are set: sleeps, then answers with
    throttling (a Response) or lets the request through (None)."""
    settings = _settings
    if not settings:
        return None
    latency = settings.get("latency_ms", 0)
    if latency:
        time.sleep(latency / 1000.0)
    with _lock:
        if _settings is not settings:  # changed while this request slept
            return None
        _counts["requests"] += 1
        _counts["delayed"] += bool(latency)
        throttle = _rng is not None and _rng.random() < settings["throttle_share"]
        tally = settings.get("tally")
    found = identify(req) if (throttle or tally) else None
    answer = throttling_answer(req, found) if (throttle and found) else None
    if answer is not None and req.method == "HEAD":
        answer.body = b""  # HEAD answers carry no body
    digest = None
    if tally and answer is None:
        op = found[2] if found else req.header("X-Amz-Target")
        h = hashlib.sha1(f"{req.account}\n{req.region}\n{req.service}\n{op}\n{req.method}\n{req.raw_path}\n".encode())
        h.update("&".join(sorted(req.query_string.split("&"))).encode() + b"\n")
        h.update(req.body)
        digest = h.digest()
    with _lock:
        if answer is not None:
            _counts["throttled"] += 1
            key = f"{found[0].service_name}:{answer.code}"
            _by_code[key] = _by_code.get(key, 0) + 1
        elif (throttle or tally) and not found:
            _counts["unidentified"] += 1
        if tally:
            key = (req.account, req.region, found[0].service_name if found else req.service, found[2] if found else None)
            n, t, i = _tally.get(key, (0, 0, 0))
            repeat = digest is not None and digest in _seen
            if digest is not None:
                _seen.add(digest)
            _tally[key] = (n + 1, t + (answer is not None), i + repeat)
    return answer


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
