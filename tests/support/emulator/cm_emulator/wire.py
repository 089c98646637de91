"""Wire-level helpers shared by the extension modules: the request as the extension sees it,
answers in each AWS protocol, a restJson1 router driven by the botocore service model, and a
way to call moto and look at (or rewrite) its answer.

Why the botocore model: it is the same API description the AWS SDKs are generated from, so
the HTTP method, path template, query/header/label bindings, required members and error
status codes used here are AWS's, not guesses.
"""

import base64
import datetime
import http
import io
import json
import os
import re
import sys
import threading
import time
import uuid
from urllib.parse import parse_qs, unquote

import botocore
import botocore.session

_session = botocore.session.get_session()
_models = {}
_models_lock = threading.Lock()


def service_model(name):
    with _models_lock:
        if name not in _models:
            _models[name] = _session.get_service_model(name)
        return _models[name]


# ---------------------------------------------------------------- request / response


class Request:
    """One HTTP request, with the caller's account and region taken from its SigV4 scope."""

    def __init__(self, environ, account, region, service, moto=None):
        self.environ = environ
        self.moto = moto  # the moto WSGI app, for modules that call it
        self.account = account
        self.region = region
        self.service = service
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
        if "://" in raw:  # absolute-form request target
            raw = "/" + raw.split("://", 1)[1].partition("/")[2]
        self.raw_path = raw.split("?", 1)[0] or "/"
        self.path = environ.get("PATH_INFO", "/")
        self.query_string = environ.get("QUERY_STRING", "")
        self.query = parse_qs(self.query_string, keep_blank_values=True)
        self._body = None

    def header(self, name, default=None):
        key = "HTTP_" + name.upper().replace("-", "_")
        if name.lower() == "content-type":
            return self.environ.get("CONTENT_TYPE", default)
        return self.environ.get(key, default)

    @property
    def body(self):
        """The request body, read once; moto can still read it afterwards."""
        if self._body is None:
            length = self.environ.get("CONTENT_LENGTH")
            stream = self.environ["wsgi.input"]
            if length:
                self._body = stream.read(int(length))
            elif self.environ.get("wsgi.input_terminated"):
                self._body = stream.read()
            else:
                self._body = b""
            self.set_body(self._body)
        return self._body

    def set_body(self, data):
        """Replaces the body moto will read (used to correct a request before moto sees it)."""
        self._body = data
        self.environ["wsgi.input"] = io.BytesIO(data)
        self.environ["CONTENT_LENGTH"] = str(len(data))

    def json(self):
        data = self.body
        if not data.strip():
            return {}
        doc = json.loads(data)
        if not isinstance(doc, dict):
            raise ValueError("JSON body is not an object")
        return doc


class Response:
    def __init__(self, status, headers=None, body=b""):
        self.status = status
        self.headers = list(headers or [])
        self.body = body if isinstance(body, bytes) else body.encode("utf-8")

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def wsgi(self, start_response):
        headers = [(k, v) for k, v in self.headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(self.body))))
        if not any(k.lower() == "x-amzn-requestid" for k, _ in headers):
            headers.append(("x-amzn-RequestId", str(uuid.uuid4())))
        start_response(status_line(self.status), headers)
        return [self.body]


def status_line(code):
    try:
        return f"{code} {http.HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Unknown"


def call_moto(app, req):
    """Passes the request to moto and returns its whole answer as a Response."""
    captured = {}

    def capture(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers

    chunks = app(req.environ, capture)
    try:
        body = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    return Response(int(captured["status"].split()[0]), captured["headers"], body)


def hook_answer(status, doc):
    """The JSON answer of a `/cm-emulator/*` hook."""
    return Response(status, [("Content-Type", "application/json")], json.dumps(doc))


def hook_body(environ):
    """The JSON body of a `/cm-emulator/*` hook request (`{}` when empty); ValueError when
    it is not JSON."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return json.loads(environ["wsgi.input"].read(length) or b"{}")


def hook_request(environ, state=None):
    """A `/cm-emulator/*` hook request: `(body, None)` for a POST with a JSON body, else
    `(None, answer)`: the hook's `state()` for a GET when the hook has one, or the error."""
    method = environ.get("REQUEST_METHOD")
    if method == "GET" and state is not None:
        return None, hook_answer(200, state())
    if method != "POST":
        return None, hook_answer(405, {"error": "use GET or POST" if state else "use POST"})
    try:
        return hook_body(environ), None
    except ValueError:
        return None, hook_answer(400, {"error": "body must be JSON"})


def object_hook_request(environ, lock, state):
    """`hook_request` for a hook whose `state()` is read under `lock` and whose POST body
    must be a JSON object."""
    def locked():
        with lock:
            return state()

    doc, answer = hook_request(environ, locked)
    if answer is None and not isinstance(doc, dict):
        return None, hook_answer(400, {"error": "body must be a JSON object"})
    return doc, answer


def json_response(doc, status=200, content_type="application/json"):
    if doc is None:
        return Response(status, [("Content-Type", content_type)], b"")
    return Response(status, [("Content-Type", content_type)], json.dumps(doc).encode())


# ---------------------------------------------------------------- errors


class ApiError(Exception):
    """An AWS error answer: the code (error shape name), a message, extra body members."""

    def __init__(self, code, message, status=None, **extra):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra


def error_status(model, code, default=400):
    for shape in model.error_shapes:
        if shape.name == code:
            return shape.metadata.get("error", {}).get("httpStatusCode", default)
    return default


def rest_json_error(model, err, message_keys=("message",), code_keys=()):
    status = err.status or error_status(model, err.code)
    body = {"__type": err.code}
    for key in message_keys:
        body[key] = err.message
    for key in code_keys:
        body[key] = err.code
    body.update(err.extra)
    return Response(status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", err.code)], json.dumps(body).encode())


# ---------------------------------------------------------------- time


def now():
    return time.time()


def iso(ts):
    """RFC 3339 / ISO 8601 UTC with milliseconds, as AWS JSON services write `iso8601` timestamps."""
    dt = datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def epoch(ts):
    """Epoch seconds (a JSON number), the JSON protocols' default timestamp format."""
    return round(ts, 3)


# ---------------------------------------------------------------- pagination


def paginate(items, next_token, max_results, invalid):
    """Returns (page, token) with an opaque offset token; `invalid()` builds the error to raise."""
    start = 0
    if next_token:
        try:
            start = int(base64.urlsafe_b64decode(next_token.encode()).decode())
        except (ValueError, UnicodeDecodeError):
            raise invalid()
        if start < 0 or start > len(items):
            raise invalid()
    size = max_results or len(items) or 1
    page = items[start:start + size]
    end = start + len(page)
    token = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return page, token


# ---------------------------------------------------------------- restJson1 router


class RestJsonService:
    """Routes restJson1 requests of one service to handlers by the model's HTTP bindings.

    `handlers` maps operation names to `fn(req, params) -> dict | Response | None`; `params`
    holds the input members by model member name (labels, query, headers and JSON body
    merged). A dict is the JSON body of the answer (status: the model's responseCode, default
    200). Requests for operations without a handler are not matched (moto gets them).
    """

    def __init__(self, botocore_name, handlers, validation_error, message_keys=("message",), code_keys=()):
        self.model = service_model(botocore_name)
        self.handlers = handlers
        self.validation_error = validation_error  # fn(message) -> ApiError
        self.message_keys = message_keys
        self.code_keys = code_keys
        self.routes = []
        for name in handlers:
            op = self.model.operation_model(name)
            method = op.http["method"].upper()
            uri = op.http["requestUri"].split("?", 1)[0]
            self.routes.append((method, self._compile(uri), op))
        # literal paths before templated ones, longer before shorter
        self.routes.sort(key=lambda r: (r[1][0].pattern.count("(?P"), -len(r[1][0].pattern)))

    @staticmethod
    def _compile(uri):
        parts, labels = [], []
        for segment in uri.strip("/").split("/") if uri.strip("/") else []:
            m = re.fullmatch(r"\{(\w+)(\+?)\}", segment)
            if m:
                labels.append(m.group(1))
                parts.append(f"(?P<{m.group(1)}>.+)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)")
            else:
                parts.append(re.escape(segment))
        return re.compile("^/" + "/".join(parts) + "/?$"), labels

    def match(self, req):
        for method, (pattern, _), op in self.routes:
            if method != req.method:
                continue
            m = pattern.match(req.raw_path)
            if m:
                return op, {k: unquote(v) for k, v in m.groupdict().items()}
        return None

    def handle(self, req):
        found = self.match(req)
        if not found:
            return None
        op, labels = found
        try:
            params = self.parse(req, op, labels)
            out = self.handlers[op.name](req, params)
        except ApiError as err:
            return rest_json_error(self.model, err, self.message_keys, self.code_keys)
        if isinstance(out, Response):
            return out
        status = op.http.get("responseCode", 200)
        if out is None or status == 204:
            return Response(status, [("Content-Type", "application/json")], b"" if status == 204 else b"{}")
        return json_response(out, status)

    def parse(self, req, op, labels):
        shape = op.input_shape
        params = {}
        if shape is None:
            return params
        try:
            body = req.json()
        except ValueError:
            raise self.validation_error("The request body is not valid JSON.")
        for name, member in shape.members.items():
            loc = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if loc == "uri":
                if name in labels:
                    params[name] = labels[name]
            elif loc == "querystring":
                if wire in req.query:
                    values = req.query[wire]
                    params[name] = self._typed(member, values if member.type_name == "list" else values[-1])
            elif loc == "header":
                v = req.header(wire)
                if v is not None:
                    params[name] = self._typed(member, v)
            elif wire in body:
                params[name] = body[wire]
        for required in shape.required_members:
            if params.get(required) is None:
                raise self.validation_error(f"1 validation error detected: Value null at '{required}' failed to satisfy constraint: Member must not be null")
        return params

    def _typed(self, member, value):
        t = member.type_name
        try:
            if t in ("integer", "long"):
                return int(value)
            if t == "boolean":
                return str(value).lower() == "true"
        except ValueError:
            raise self.validation_error(f"Invalid value '{value}' for {member.name}")
        return value


# ---------------------------------------------------------------- which service and operation a request is


_signing_index = None
_signing_lock = threading.Lock()


def _signing_index_file():
    return os.path.join(sys.prefix, f".cm-emulator-signing-names-botocore-{botocore.__version__}.json")


def models_for_signing_name(signing_name):
    """The botocore service models whose SigV4 signing name is `signing_name` (S3 and S3
    Control share `s3`; EventBridge and EventBridge v2 share `events`, ...). The index is
    made once per botocore version from every model it ships (a few seconds) and kept in a
    file in the virtualenv."""
    global _signing_index
    with _signing_lock:
        if _signing_index is None:
            path = _signing_index_file()
            try:
                with open(path) as f:
                    _signing_index = json.load(f)
            except (OSError, ValueError):
                loader = _session.get_component("data_loader")
                index = {}
                for name in loader.list_available_services("service-2"):
                    meta = loader.load_service_model(name, "service-2")["metadata"]
                    index.setdefault(meta.get("signingName") or meta.get("endpointPrefix") or name, []).append(name)
                _signing_index = index
                try:
                    tmp = f"{path}.{os.getpid()}"
                    with open(tmp, "w") as f:
                        json.dump(index, f)
                    os.replace(tmp, path)
                except OSError:
                    pass  # a read-only virtualenv: made again by the next process
        names = list(_signing_index.get(signing_name, ()))
    return [service_model(n) for n in names]


def _uri_pattern(uri):
    """(path regex, literal query {key: value or None}, number of literal parts) of a model requestUri."""
    path, _, query = uri.partition("?")
    parts, literals = [], 0
    for segment in path.strip("/").split("/") if path.strip("/") else []:
        m = re.fullmatch(r"\{(\w+)(\+?)\}", segment)
        if m:
            parts.append(".+" if m.group(2) else "[^/]+")
        else:
            parts.append(re.escape(segment))
            literals += 1
    wanted = {}
    for item in query.split("&") if query else []:
        key, eq, value = item.partition("=")
        if key and "{" not in key:
            wanted[key] = value if eq else None
    return re.compile("^/" + "/".join(parts) + "/?$"), wanted, literals + len(wanted)


_rest_routes = {}


def _routes(model):
    with _models_lock:
        routes = _rest_routes.get(model.service_name)
        if routes is None:
            routes = []
            for name in model.operation_names:
                op = model.operation_model(name)
                pattern, query, score = _uri_pattern(op.http.get("requestUri", "/"))
                # of two operations on one route (GetBucketLifecycle, GetBucketLifecycleConfiguration), the current one
                score = (score, not op.deprecated)
                routes.append((op.http.get("method", "POST").upper(), pattern, query, score, name))
            _rest_routes[model.service_name] = routes
        return routes


def _rest_match(model, req):
    """(score, operation name) of the model's best route for the request, or None."""
    best = None
    for method, pattern, query, score, name in _routes(model):
        if method != req.method or not pattern.match(req.raw_path):
            continue
        if any(k not in req.query or (v is not None and req.query[k][-1] != v) for k, v in query.items()):
            continue
        if best is None or score > best[0]:
            best = (score, name)
    return best


RPC_V2_PATH = re.compile(r"^/service/([^/]+)/operation/([^/]+)$")


def identify(req):
    """(model, protocol, operation) of a signed AWS request, or None when no botocore model
    of its signing name fits it. The request's own shape says which protocol family it speaks
    (a `/service/S/operation/O` path: RPC v2 CBOR; `X-Amz-Target`: awsJson; an `Action`
    parameter: query or ec2; otherwise a REST binding); the model says the rest: which
    service, which of query/ec2 or rest-json/rest-xml, and the operation's name."""
    models = models_for_signing_name(req.service)
    rpc = RPC_V2_PATH.match(req.raw_path)
    target = req.header("X-Amz-Target")
    if rpc and (req.header("smithy-protocol") or "").lower() == "rpc-v2-cbor":
        for m in models:
            if "smithy-rpc-v2-cbor" in (m.metadata.get("protocols") or [m.protocol]) and m.metadata.get("targetPrefix") == rpc.group(1):
                return m, "smithy-rpc-v2-cbor", rpc.group(2)
        return None
    if target:
        prefix, _, op = target.rpartition(".")
        for m in models:
            # botocore's prefix may be namespaced (com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101),
            # the Smithy SDKs send the service shape's name alone (CloudTrail_20131101); AWS takes both
            known = m.metadata.get("targetPrefix") or ""
            if "json" in (m.metadata.get("protocols") or [m.protocol]) and prefix and (known == prefix or known.endswith("." + prefix)):
                return m, "json", op
        return None
    action = req.query.get("Action", [None])[-1]
    if action is None and req.method == "POST" and (req.header("content-type") or "").startswith("application/x-www-form-urlencoded"):
        action = parse_qs(req.body.decode("utf-8", "replace")).get("Action", [None])[-1]
    if action:
        for m in models:
            if m.protocol in ("query", "ec2") and action in m.operation_names:
                return m, m.protocol, action
        return None
    best = None
    for m in models:
        if m.protocol in ("rest-json", "rest-xml"):
            found = _rest_match(m, req)
            if found and (best is None or found[0] > best[0]):
                best = (found[0], m, found[1])
    return (best[1], best[1].protocol, best[2]) if best else None
