"""AWS Compute Optimizer (signing name `compute-optimizer`): GetEnrollmentStatus and
UpdateEnrollmentStatus. moto 5.2.5 has no Compute Optimizer at all.

Two wire protocols, as the service's model lists both:
- awsJson1_0: `POST /`, `X-Amz-Target: ComputeOptimizerService.<Op>`, JSON body; errors are
  400 with `{"__type": "<Code>", "message": "..."}`; `lastUpdatedTimestamp` is epoch seconds.
- Smithy RPC v2 CBOR (what aws-sdk-computeoptimizer for Rust sends, checked in 1.128): `POST
  /service/ComputeOptimizerService/operation/<Op>`, `smithy-protocol: rpc-v2-cbor`, CBOR
  bodies, timestamps as CBOR tag 1.

Enrollment is "the enrollment status of an account" (API reference): one setting per account,
not per Region, so it is kept per account (set PER_REGION to key it by Region as well).
Default: `Inactive`. UpdateEnrollmentStatus takes `Active` or `Inactive` (anything else:
InvalidParameterValueException) and `includeMemberAccounts`, echoed as
`memberAccountsEnrolled`; when the caller is the management account of a moto Organization,
`Active` with includeMemberAccounts also enrolls the Organization's member accounts, and its
GetEnrollmentStatus reports `numberOfMemberAccountsOptedIn`, as AWS does.
"""

import json
import re
import threading

from moto.organizations.models import organizations_backends

from . import cbor
from .wire import ApiError, Response, epoch, now

SIGNING_NAMES = ("compute-optimizer",)
TARGET = "ComputeOptimizerService."
RPC_PATH = re.compile(r"^/service/[^/]+/operation/([^/]+)$")

PER_REGION = False

_lock = threading.Lock()
_enrollment = {}  # account (or (account, region)) -> {"status", "members", "updated"}


def reset():
    with _lock:
        _enrollment.clear()


def _key(account, region):
    return (account, region) if PER_REGION else account


def _org_members(account):
    """Member account ids when `account` is the management account of a moto Organization."""
    try:
        backend = organizations_backends[account]["aws"]
        if backend.org is None or backend.org.master_account_id != account:
            return []
        return [a.id for a in backend.accounts if a.id != account]
    except (KeyError, AttributeError):
        return []


def get_enrollment_status(req, p, stamp):
    state = _enrollment.get(_key(req.account, req.region))
    if state is None:
        out = {"status": "Inactive", "memberAccountsEnrolled": False}
    else:
        out = {"status": state["status"], "memberAccountsEnrolled": state["members"], "lastUpdatedTimestamp": stamp(state["updated"])}
    members = _org_members(req.account)
    if members:
        out["numberOfMemberAccountsOptedIn"] = sum(
            1 for m in members if _enrollment.get(_key(m, req.region), {}).get("status") == "Active")
    return out


def update_enrollment_status(req, p, stamp):
    status = p.get("status")
    if status not in ("Active", "Inactive"):
        raise ApiError("InvalidParameterValueException", f"The value '{status}' for parameter status is not valid. Valid values: Active, Inactive.")
    members = p.get("includeMemberAccounts", False)
    if not isinstance(members, bool):
        raise ApiError("InvalidParameterValueException", "includeMemberAccounts must be a boolean")
    t = now()
    _enrollment[_key(req.account, req.region)] = {"status": status, "members": members, "updated": t}
    if status == "Active" and members:
        for member in _org_members(req.account):
            state = _enrollment.setdefault(_key(member, req.region), {"status": "Inactive", "members": False, "updated": t})
            if state["status"] != "Active":
                state.update(status="Active", updated=t)
    return {"status": status}


OPERATIONS = {"GetEnrollmentStatus": get_enrollment_status, "UpdateEnrollmentStatus": update_enrollment_status}


def handle(req):
    target = req.header("X-Amz-Target") or ""
    rpc = RPC_PATH.match(req.raw_path)
    if rpc:
        return _rpc_v2_cbor(req, rpc.group(1))
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
