"""AWS Compute Optimizer (signing name `compute-optimizer`): GetEnrollmentStatus and
UpdateEnrollmentStatus. moto 5.2.5 has no Compute Optimizer at all.

Two wire protocols, as the service's model lists both:
- awsJson1_0: `POST /`, `X-Amz-Target: ComputeOptimizerService.<Op>`, JSON body; errors are
  400 with `{"__type": "<Code>", "message": "..."}`; `lastUpdatedTimestamp` is epoch seconds.
- Smithy RPC v2 CBOR (what newer SDKs pick first): `POST
  /service/ComputeOptimizerService/operation/<Op>`, `smithy-protocol: rpc-v2-cbor`, CBOR
  bodies, timestamps as CBOR tag 1.

Enrollment is a property of the account, not of a Region (AWS opts an account in for every
Region at once), so it is kept per account. Default: `Inactive`. UpdateEnrollmentStatus takes
`Active` or `Inactive` (anything else: InvalidParameterValueException) and
`includeMemberAccounts`, echoed as `memberAccountsEnrolled`.
"""

import json
import threading

from . import cbor
from .wire import ApiError, Response, epoch, now

SIGNING_NAMES = ("compute-optimizer",)
TARGET = "ComputeOptimizerService."
RPC_PREFIX = "/service/ComputeOptimizerService/operation/"

_lock = threading.Lock()
_enrollment = {}  # account -> {"status", "members", "updated"}


def reset():
    with _lock:
        _enrollment.clear()


def get_enrollment_status(req, p, stamp):
    state = _enrollment.get(req.account)
    if state is None:
        return {"status": "Inactive", "memberAccountsEnrolled": False}
    return {"status": state["status"], "memberAccountsEnrolled": state["members"], "lastUpdatedTimestamp": stamp(state["updated"])}


def update_enrollment_status(req, p, stamp):
    status = p.get("status")
    if status not in ("Active", "Inactive"):
        raise ApiError("InvalidParameterValueException", f"The value '{status}' for parameter status is not valid. Valid values: Active, Inactive.")
    members = p.get("includeMemberAccounts", False)
    if not isinstance(members, bool):
        raise ApiError("InvalidParameterValueException", "includeMemberAccounts must be a boolean")
    _enrollment[req.account] = {"status": status, "members": members, "updated": now()}
    return {"status": status}


OPERATIONS = {"GetEnrollmentStatus": get_enrollment_status, "UpdateEnrollmentStatus": update_enrollment_status}


def handle(req):
    target = req.header("X-Amz-Target") or ""
    if req.raw_path.startswith(RPC_PREFIX):
        return _rpc_v2_cbor(req, req.raw_path[len(RPC_PREFIX):])
    if target.startswith(TARGET):
        return _aws_json(req, target[len(TARGET):])
    return _aws_json(req, None)


def _aws_json(req, op):
    ctype = [("Content-Type", "application/x-amz-json-1.0")]

    def error(code, message, status=400):
        return Response(status, ctype + [("x-amzn-ErrorType", code)], json.dumps({"__type": code, "message": message}))

    if op not in OPERATIONS:
        return error("UnknownOperationException", f"Operation {op} is not supported by this emulator")
    try:
        params = req.json()
    except ValueError:
        return error("SerializationException", "The request body is not valid JSON")
    try:
        with _lock:
            out = OPERATIONS[op](req, params, epoch)
    except ApiError as err:
        return error(err.code, err.message)
    return Response(200, ctype, json.dumps(out))


def _rpc_v2_cbor(req, op):
    headers = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]

    def error(code, message, status=400):
        return Response(status, headers, cbor.encode({"__type": f"com.amazonaws.computeoptimizer#{code}", "message": message}))

    if op not in OPERATIONS:
        return error("UnknownOperationException", f"Operation {op} is not supported by this emulator", 404)
    try:
        params = cbor.decode(req.body) or {}
        if not isinstance(params, dict):
            raise cbor.DecodeError("body is not a CBOR map")
    except (cbor.DecodeError, UnicodeDecodeError, IndexError) as e:
        return error("SerializationException", f"The request body is not valid CBOR: {e}")
    try:
        with _lock:
            out = OPERATIONS[op](req, params, cbor.Timestamp)
    except ApiError as err:
        return error(err.code, err.message)
    return Response(200, headers, cbor.encode(out))
