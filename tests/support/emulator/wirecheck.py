"""Strict check of raw emulator answers against the botocore service model, for the tests.

boto3 is lenient where the AWS SDK for Rust is not: it accepts a wrong XML root element, a
missing required member, a timestamp string where the model says epoch seconds. `attach(client)`
hooks a boto3 client so that every raw HTTP answer it receives is checked the way a strict,
model-generated client reads it; the problems found are collected in `client.wire_problems`.
Test support only.

Checked:
- JSON protocols (json, rest-json): the body is a JSON object (or empty); every member present
  has the model's type (string, boolean, integer, double, list, map, structure); timestamps use
  the model's format (epoch seconds as a number by default, ISO 8601 / RFC 3339 string when the
  shape says `iso8601`); required members are present. Errors: the error code is given by
  `x-amzn-ErrorType` or `__type`, and the HTTP status matches the model's error shape.
  A code the service's model does not list must be one of AWS's common errors (COMMON_ERRORS).
- rpcv2 CBOR: the error code and status; the body itself is decoded by botocore.
- XML protocols (query, ec2, rest-xml): the root element is the one the model implies
  (`<Op>Response` for query/ec2, the output shape's name or payload member for rest-xml), and
  query answers wrap their members in `<Op>Result`.
"""

import datetime
import json
import re
import xml.etree.ElementTree as ET

# AWS's common errors: any JSON service may answer them, and its model need not list them (the
# "Common Errors" page of each API reference), with their HTTP status. Step Functions answers a
# role it cannot assume with AccessDeniedException, which its model does not list.
COMMON_ERRORS = {"AccessDeniedException": 400}

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")
# Throttling codes an AWS front end answers whether or not the service model lists them (Security
# Hub's TooManyRequestsException), with their status: SDKs know them by name as throttling.
UNMODELED_THROTTLING = {"TooManyRequestsException": 429}


def attach(client):
    client.wire_problems = []
    protocol = client.meta.service_model.protocol

    def check(http_response, model, **_):
        where = f"{client.meta.service_model.service_name}.{model.name}"
        problems = [f"{where}: {p}" for p in check_response(protocol, model, http_response.status_code, http_response.headers, http_response.content)]
        client.wire_problems.extend(problems)

    client.meta.events.register("after-call", check)
    return client


def check_response(protocol, op, status, headers, body):
    headers = {k.lower(): v for k, v in headers.items()}
    if status >= 300:
        return check_error(protocol, op, status, headers, body)
    if protocol in ("json", "rest-json"):
        return check_json_body(protocol, op, headers, body)
    if protocol in ("query", "ec2", "rest-xml"):
        return check_xml_root(protocol, op, body)
    return []


def error_code(protocol, headers, body):
    code = headers.get("x-amzn-errortype")
    if not code and body:
        try:
            doc = json.loads(body)
            code = doc.get("__type") or doc.get("code")
        except ValueError:
            m = re.search(rb"<Code>([^<]+)</Code>", body)
            code = m.group(1).decode() if m else None
    if code:
        code = code.split(":")[0].split("#")[-1]
    return code


def check_error(protocol, op, status, headers, body):
    if protocol not in ("json", "rest-json"):
        return []
    problems = []
    code = error_code(protocol, headers, body)
    if not code:
        return [f"error answer {status} without an error code: {body[:200]!r}"]
    # Models list only some of an operation's errors (AWS answers InvalidAccessException to
    # any Security Hub call before EnableSecurityHub); a strict SDK maps an unlisted code to a
    # generic error, which is fine, so look the code up in the whole service.
    shapes = {s.name: s for s in op.service_model.error_shapes}
    shapes.update({s.name: s for s in op.error_shapes})
    shape = shapes.get(code) or next((s for s in shapes.values() if s.metadata.get("error", {}).get("code") == code), None)
    if shape is None and code in UNMODELED_THROTTLING:
        if protocol == "rest-json" and status != UNMODELED_THROTTLING[code]:
            problems.append(f"error {code}: HTTP {status}, expected {UNMODELED_THROTTLING[code]}")
    elif shape is None and code in COMMON_ERRORS:
        if protocol == "json" and status != COMMON_ERRORS[code]:
            problems.append(f"error {code}: HTTP {status}, AWS's common errors say {COMMON_ERRORS[code]}")
    elif shape is None:
        problems.append(f"error {code} is not an error of the service")
    else:
        want = shape.metadata.get("error", {}).get("httpStatusCode")
        if want and want != status and protocol == "rest-json":
            problems.append(f"error {code}: HTTP {status}, model says {want}")
    try:
        doc = json.loads(body) if body else {}
        if not isinstance(doc, dict):
            problems.append("error body is not a JSON object")
    except ValueError:
        problems.append(f"error body is not JSON: {body[:200]!r}")
    return problems


def check_json_body(protocol, op, headers, body):
    shape = op.output_shape
    if shape is None:
        return []
    if protocol == "rest-json":
        payload = shape.serialization.get("payload")
        if payload:
            member = shape.members[payload]
            if member.type_name in ("blob", "string"):
                return []
            shape = member
    if not body.strip():
        doc = {}
    else:
        try:
            doc = json.loads(body)
        except ValueError:
            return [f"body is not JSON: {body[:200]!r}"]
    problems = []
    if protocol == "rest-json":
        body_members = {n: m for n, m in shape.members.items() if not m.serialization.get("location")}
        for n, m in shape.members.items():
            loc = m.serialization.get("location")
            if loc == "header" and n in shape.required_members and m.serialization.get("name", n).lower() not in headers:
                problems.append(f"required header member {n} missing")
    else:
        body_members = shape.members
    check_structure(protocol, shape, body_members, doc, "$", problems)
    return problems


def timestamp_format(protocol, shape):
    fmt = shape.serialization.get("timestampFormat")
    if fmt:
        return fmt
    return "unixtimestamp" if protocol in ("json", "rest-json") else "iso8601"


def check_structure(protocol, shape, members, value, path, problems):
    if not isinstance(value, dict):
        problems.append(f"{path}: expected object for {shape.name}, got {type(value).__name__}")
        return
    names = {m.serialization.get("name", n): n for n, m in members.items()}
    for required in shape.required_members:
        if required in members and members[required].serialization.get("name", required) not in value:
            problems.append(f"{path}: required member {required} of {shape.name} missing")
    for key, v in value.items():
        if key in names:
            check_value(protocol, members[names[key]], v, f"{path}.{key}", problems)


def check_value(protocol, shape, v, path, problems):
    if v is None:
        return
    t = shape.type_name
    if t == "structure":
        check_structure(protocol, shape, shape.members, v, path, problems)
    elif t == "list":
        if not isinstance(v, list):
            problems.append(f"{path}: expected list, got {type(v).__name__}")
            return
        for i, item in enumerate(v):
            check_value(protocol, shape.member, item, f"{path}[{i}]", problems)
    elif t == "map":
        if not isinstance(v, dict):
            problems.append(f"{path}: expected map, got {type(v).__name__}")
            return
        for k, item in v.items():
            check_value(protocol, shape.value, item, f"{path}.{k}", problems)
    elif t == "string":
        if not isinstance(v, str):
            problems.append(f"{path}: expected string, got {type(v).__name__} {v!r}")
    elif t == "boolean":
        if not isinstance(v, bool):
            problems.append(f"{path}: expected boolean, got {type(v).__name__} {v!r}")
    elif t in ("integer", "long"):
        if isinstance(v, bool) or not isinstance(v, int):
            problems.append(f"{path}: expected integer, got {type(v).__name__} {v!r}")
    elif t in ("double", "float"):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            problems.append(f"{path}: expected number, got {type(v).__name__} {v!r}")
    elif t == "timestamp":
        fmt = timestamp_format(protocol, shape)
        if fmt == "unixtimestamp":
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                problems.append(f"{path}: timestamp must be epoch seconds (number), got {v!r}")
        elif fmt == "iso8601":
            if not isinstance(v, str) or not ISO.match(v):
                problems.append(f"{path}: timestamp must be an RFC 3339 string, got {v!r}")
        elif fmt == "rfc822":
            try:
                datetime.datetime.strptime(v, "%a, %d %b %Y %H:%M:%S GMT")
            except (TypeError, ValueError):
                problems.append(f"{path}: timestamp must be an HTTP date, got {v!r}")
    elif t == "blob":
        if not isinstance(v, str):
            problems.append(f"{path}: expected base64 string, got {type(v).__name__}")


XML_ROOT = {
    "GetBucketVersioning": "VersioningConfiguration",
    "GetBucketRequestPayment": "RequestPaymentConfiguration",
    "GetBucketTagging": "Tagging",
    "GetObjectLockConfiguration": "ObjectLockConfiguration",
    "GetBucketLocation": "LocationConstraint",
    "GetPublicAccessBlock": "PublicAccessBlockConfiguration",
}


def local(tag):
    return tag.split("}")[-1]


def check_xml_root(protocol, op, body):
    if not body.strip():
        return ["empty XML body"] if protocol in ("query", "ec2") and op.output_shape is not None else []
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        return [f"body is not XML: {e}"]
    tag = local(root.tag)
    if protocol in ("query", "ec2"):
        want = f"{op.name}Response"
        if tag != want:
            return [f"root element <{tag}>, expected <{want}>"]
        wrapper = op.output_shape.serialization.get("resultWrapper") if op.output_shape is not None else None
        if protocol == "query" and wrapper and not any(local(c.tag) == wrapper for c in root):
            return [f"<{want}> lacks <{wrapper}>"]
        return []
    shape = op.output_shape
    if shape is None:
        return []
    payload = shape.serialization.get("payload")
    if payload:
        member = shape.members[payload]
        if member.type_name != "structure":
            return []
        want = member.serialization.get("name") or member.name
    else:
        # The botocore model drops the Smithy @xmlName of non-payload outputs; known ones here.
        want = XML_ROOT.get(op.name)
        if want is None:
            return []
    if tag != want:
        return [f"root element <{tag}>, expected <{want}>"]
    return []
