"""IAM role trust and IAM's eventual consistency (signing names `sts`, `iam`, `states`,
`config`): moto 5.2.5 lets any caller assume any role (it does not read trust policies, nor
check that the role exists) and lets any service use any role the moment it is created.
AWS does neither. Here:

STS AssumeRole (by a principal: a user, a role session, moto's default caller)
- The role's trust policy is evaluated as AWS evaluates a role trust policy: an explicit
  Deny wins, else an Allow must apply, else the call is denied. A statement applies when
  its Principal (or NotPrincipal), Action (or NotAction) and every Condition match.
  - Principal `"*"` or `{"AWS": "*"}`: anyone. `{"AWS": "<account id>"}` or
    `{"AWS": "arn:aws:iam::<account id>:root"}`: any principal of that account (AWS then also
    requires the caller's own identity policies to allow `sts:AssumeRole` on the role; the
    emulator has no identity-policy evaluation and takes that as allowed). A role ARN: the
    sessions of that role (by account and name); a user ARN: that user; an assumed-role
    session ARN: that session. `{"Service": ...}` never matches a principal's call;
    `Federated` and `CanonicalUser` match nothing here.
  - Action: `sts:AssumeRole`, case-insensitive, with `*` and `?` wildcards. A request with
    `SourceIdentity` also needs `sts:SetSourceIdentity`, one with session `Tags`
    `sts:TagSession`, as AWS requires of the trust policy.
  - Condition: the string (`StringEquals`, `StringNotEquals`, `...IgnoreCase`, `StringLike`,
    `StringNotLike`), ARN, Bool, Null, numeric and date operators, with `IfExists` and the
    `ForAnyValue:` / `ForAllValues:` qualifiers; several keys of an operator and several
    operators must all match, one of several values is enough. A key absent from the request
    matches no positive operator (`...IfExists` and the negated operators do match it), as on
    AWS. Condition keys are case-insensitive; `${key}` policy variables are replaced by the
    request's value (a value whose variable is absent matches nothing). Keys in the request:
    `sts:ExternalId` (the ExternalId parameter), `sts:RoleSessionName`, `sts:SourceIdentity`,
    `aws:RequestTag/<key>` and `aws:TagKeys` (session tags), `aws:PrincipalArn` (for a role
    session: the role's ARN), `aws:PrincipalAccount`, `aws:PrincipalType` (`User`,
    `AssumedRole`), `aws:userid`, `aws:username` (users), `aws:PrincipalTag/<key>` (the
    user's or the session's role's tags), `aws:PrincipalOrgID` (when the caller's account is
    in moto's Organization), `aws:PrincipalIsAWSService` (false), `aws:RequestedRegion`,
    `aws:SecureTransport` (true, as every call to AWS is HTTPS), `aws:CurrentTime`,
    `aws:EpochTime`. Any other key (`aws:SourceIp`, `aws:MultiFactorAuthPresent`,
    `aws:SourceIdentity` of the calling session, ...) is absent. An operator not listed
    above matches nothing.
- Refused as AWS refuses it: HTTP 403, query-protocol body `<ErrorResponse xmlns=
  "https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied
  </Code><Message>User: <caller ARN> is not authorized to perform: sts:AssumeRole on
  resource: <RoleArn as given></Message></Error><RequestId>...</RequestId></ErrorResponse>`
  (the action named is the one the trust policy does not allow). The caller ARN is what
  GetCallerIdentity gives those credentials: moto's default caller
  `arn:aws:sts::<account>:user/moto`, an IAM user's ARN, or an assumed-role session's
  `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
- A role that does not exist is refused the same way (AWS does not tell a missing role from
  one that does not trust the caller) once the emulator knows the role's name: it existed,
  or was created or deleted through IAM. A role name the emulator has never seen in that
  account stands in, by default, for a role made before the test by the operator's
  deployment (the member role `cm-policymaintainer`, which the StackSet creates in every
  member account, is such a role in the tests): moto's AssumeRole answers, as before. The
  test hook below turns this off (`"unknown_roles": "deny"`) to get AWS's answer for them
  too.
- Allowed calls reach moto unchanged: moto makes the credentials in the role's account, so
  that requests signed with them are routed to that account (`get_account_id_from`).
- The test hook `/cm-emulator/deny-assume-role` (faults) is applied before all this.

A service handed a role (the service principal must be able to assume it)
- Step Functions CreateStateMachine and UpdateStateMachine with a `roleArn` (not a repeated
  CreateStateMachine of an existing machine, whose roleArn AWS ignores; not an update of a
  machine that does not exist, which moto answers): the role must exist and its trust policy
  must let `states.amazonaws.com` or `states.<region>.amazonaws.com` assume it, with
  `aws:SourceAccount` (the caller's account), `aws:SourceArn` (the state machine's ARN),
  `aws:PrincipalServiceName` and `aws:PrincipalIsAWSService` (true) in the request. Else
  HTTP 400 awsJson1_0 `{"__type": "AccessDeniedException", "message": "Neither the global
  service principal states.amazonaws.com, nor the regional one is authorized to assume the
  provided role."}` (AccessDeniedException is one of AWS's common errors, which the
  Step Functions model does not list).
- AWS Config: PutConfigurationRecorder takes any role ARN (its model's InvalidRoleException
  is for a null or empty one, and moto keeps the ARN as given); Config first uses the role
  when it checks that it can deliver to the bucket, at PutDeliveryChannel. There, when the
  account and Region have a recorder and the channel names a bucket, the recorder's role
  must exist and trust `config.amazonaws.com` (with `aws:SourceAccount`, and no
  `aws:SourceArn`, in the request). Else HTTP 400 awsJson1_1 `{"__type":
  "InsufficientDeliveryPolicyException", "message": "Insufficient delivery policy to s3
  bucket: <bucket>, unable to assume role: <role ARN>"}`, AWS's answer to a recorder role
  Config cannot assume.
- Not emulated, on purpose: EventBridge PutTargets accepts a target RoleArn that
  `events.amazonaws.com` cannot assume (yet); AWS answers the same, and fails the deliveries
  later (FailedInvocations), which the emulator does not run. CloudTrail is handed a role
  only with CloudWatchLogsRoleArn, which cm-baseline does not set.
- A trust policy that does not let the service in is refused every time; a role the service
  cannot assume yet (below) only until the change has propagated.

IAM's eventual consistency (AWS: "Changes that I make are not always immediately visible")
- A role's trust policy as created or changed through IAM (CreateRole,
  UpdateAssumeRolePolicy, DeleteRole, CreateServiceLinkedRole, DeleteServiceLinkedRole) is
  what the services above see only `seconds` after the change (default 2): until then they
  see the version before it (for a role created moments ago: no role, for one deleted
  moments ago: the role as it was). A permissions-policy change (PutRolePolicy,
  AttachRolePolicy, ...) does not change who can assume the role, so it delays nothing here.
- AssumeRole by a principal sees the same delayed version only with `"assume_role": true`
  (default false): cm-baseline assumes only the member role, which in production exists
  long before a run; in the tests the product creates it during the first apply, and the
  next command, a second later, would be refused for a reason production never meets.

Test hooks (no AWS counterpart), both cleared by `POST /moto-api/reset`:
- `POST /cm-emulator/iam-propagation` with JSON `{"seconds": 2, "assume_role": false}`, each
  member optional (a member left out takes its default). `seconds`: 0 to 600.
- `POST /cm-emulator/iam-trust` with JSON `{"unknown_roles": "allow" | "deny"}` (default
  "allow", above).
- `GET` of either: `{"seconds", "assume_role", "unknown_roles", "refused": {"assume_role",
  "states", "config"}}` (calls refused by this module since the last reset).

This module reads moto's IAM, STS, Organizations, Step Functions and Config backends directly
(moto 5.2.5 is pinned).
"""

import calendar
import datetime
import json
import re
import threading
import time
import uuid
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

from moto.config.models import config_backends
from moto.iam.models import iam_backends
from moto.organizations.models import organizations_backends
from moto.stepfunctions.models import stepfunctions_backends
from moto.sts.models import sts_backends

from .wire import Response, call_moto, hook_answer, object_hook_request

SIGNING_NAMES = ("sts", "iam", "states", "config")
HOOKS = ("/cm-emulator/iam-propagation", "/cm-emulator/iam-trust")
PARTITION = "aws"
DEFAULTS = {"seconds": 2.0, "assume_role": False, "unknown_roles": "allow"}
MAX_SECONDS = 600
STATES_REFUSAL = ("Neither the global service principal states.amazonaws.com, nor the regional one is authorized to "
                  "assume the provided role.")

ROLE_ARN = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):role/(?:[^/]+/)*([\w+=,.@-]+)$")
CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
QUERY_CREDENTIAL = re.compile(r"(?:^|&)X-Amz-Credential=([^&%/]+)")
ROLE_CHANGES = ("CreateRole", "UpdateAssumeRolePolicy", "DeleteRole", "CreateServiceLinkedRole", "DeleteServiceLinkedRole")

_lock = threading.Lock()
_settings = dict(DEFAULTS)  # replaced (never mutated) on every change
_history = {}  # (account, role name) -> [(monotonic time, trust policy text or None)], oldest first
_refused = {"assume_role": 0, "states": 0, "config": 0}
_UNKNOWN = object()  # a role name the emulator has never seen in that account


def reset():
    global _settings
    with _lock:
        _settings = dict(DEFAULTS)
        _history.clear()
        for k in _refused:
            _refused[k] = 0


# ---------------------------------------------------------------- the hooks


def _state():
    return {**_settings, "refused": dict(_refused)}


def hook(environ, path):
    """`POST|GET /cm-emulator/iam-propagation` and `/cm-emulator/iam-trust`."""
    global _settings

    doc, answer = object_hook_request(environ, _lock, _state)
    if answer:
        return answer
    if path.endswith("/iam-propagation"):
        unknown = set(doc) - {"seconds", "assume_role"}
        seconds, assume_role = doc.get("seconds", DEFAULTS["seconds"]), doc.get("assume_role", DEFAULTS["assume_role"])
        if unknown:
            return hook_answer(400, {"error": f"unknown members: {sorted(unknown)}"})
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= MAX_SECONDS:
            return hook_answer(400, {"error": f"seconds must be a number from 0 to {MAX_SECONDS}"})
        if not isinstance(assume_role, bool):
            return hook_answer(400, {"error": "assume_role must be true or false"})
        change = {"seconds": float(seconds), "assume_role": assume_role}
    else:
        if set(doc) - {"unknown_roles"} or doc.get("unknown_roles", "allow") not in ("allow", "deny"):
            return hook_answer(400, {"error": 'body must be {"unknown_roles": "allow" | "deny"}'})
        change = {"unknown_roles": doc.get("unknown_roles", "allow")}
    with _lock:
        _settings = {**_settings, **change}
        return hook_answer(200, _state())


# ---------------------------------------------------------------- requests


def handle(req):
    if req.service == "sts":
        return _assume_role(req)
    if req.service == "iam":
        return _iam(req)
    if req.service == "states":
        return _states(req)
    if req.service == "config":
        return _config(req)
    return None


def _params(req):
    """The query-protocol parameters of a request (query string and form body), one value each."""
    params = {k: v[-1] for k, v in req.query.items()}
    if req.method == "POST" and (req.header("content-type") or "").startswith("application/x-www-form-urlencoded"):
        params.update({k: v[-1] for k, v in parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True).items()})
    return params


def _target(req):
    return (req.header("X-Amz-Target") or "").rpartition(".")[2]


def _json_error(status, code, message, json_version):
    doc = {"__type": code, "message": message}
    return Response(status, [("Content-Type", f"application/x-amz-json-{json_version}"), ("x-amzn-ErrorType", code)],
                    json.dumps(doc))


def _count(what):
    with _lock:
        _refused[what] += 1


# ---------------------------------------------------------------- roles as IAM holds them, and as others see them


def _moto_role(account, name):
    backend = iam_backends[account][PARTITION]
    for role in list(backend.roles.values()):
        if role.name == name:
            return role
    return None


def _trust_text(role):
    return None if role is None else role.assume_role_policy_document


def _visible(account, name, delay):
    """The trust policy of role `name` as a reader `delay` seconds behind IAM sees it: its text,
    None (no such role then), or _UNKNOWN (a name the emulator has never seen there)."""
    with _lock:
        versions = _history.get((account, name))
        if versions:
            cutoff = time.monotonic() - delay
            seen = versions[0][1]
            for t, text in versions:
                if t > cutoff:
                    break
                seen = text
            return seen
    role = _moto_role(account, name)
    return _UNKNOWN if role is None else _trust_text(role)


def _iam(req):
    """Records when a role's trust policy changes (moto answers the call)."""
    params = _params(req)
    action = params.get("Action")
    if action not in ROLE_CHANGES:
        return None
    name = params.get("RoleName")
    before = _trust_text(_moto_role(req.account, name)) if name else None
    answer = call_moto(req.moto, req)
    if answer.status != 200:
        return answer
    if action == "CreateServiceLinkedRole":
        m = re.search(rb"<RoleName>([^<]+)</RoleName>", answer.body)
        name = m.group(1).decode() if m else None
    if name:
        after = _trust_text(_moto_role(req.account, name))
        now = time.monotonic()
        with _lock:
            versions = _history.setdefault((req.account, name), [(float("-inf"), before)])
            versions.append((now, after))
            # keep the newest version older than the longest delay, and every later one
            old = [i for i, (t, _) in enumerate(versions) if t <= now - MAX_SECONDS]
            if len(old) > 1:
                del versions[:old[-1]]
    return answer


# ---------------------------------------------------------------- who is asking


class Caller:
    """A principal's identity: the ARN AWS names in its errors, and its request context."""

    def __init__(self, arn, account, kind, name, principal_arn, userid, session=None, tags=None):
        self.arn = arn
        self.account = account
        self.kind = kind  # "User" or "AssumedRole"
        self.name = name  # user name, or the session's role name
        self.principal_arn = principal_arn
        self.userid = userid
        self.session = session
        self.tags = tags or {}


class ServicePrincipal:
    def __init__(self, name):
        self.name = name


def _access_key(req):
    m = CREDENTIAL.search(req.header("Authorization") or "")
    if m:
        return m.group(1)
    q = QUERY_CREDENTIAL.search(req.query_string)
    return unquote(q.group(1)) if q else None


def _tags(items):
    out = {}
    for t in items or []:
        if isinstance(t, dict) and "Key" in t:
            out[t["Key"]] = t.get("Value", "")
    return out


def _caller(req):
    """The signing credentials' identity, as moto's GetCallerIdentity gives it."""
    key = _access_key(req) or ""
    account = req.account
    assumed = sts_backends[account][PARTITION].get_assumed_role_from_access_key(key)
    if assumed is not None:
        role_name = assumed.role_arn.split("/")[-1]
        role = _moto_role(account, role_name)
        role_arn = role.arn if role is not None else f"arn:aws:iam::{account}:role/{role_name}"
        return Caller(assumed.arn, account, "AssumedRole", role_name, role_arn, assumed.user_id, assumed.session_name,
                      _tags(role.tags) if role is not None else {})
    user = iam_backends[account][PARTITION].get_user_from_access_key_id(key)
    if user is not None:
        tags = user.tags if isinstance(user.tags, dict) else {}
        tags = {k: (v.get("Value") if isinstance(v, dict) else v) for k, v in tags.items()}
        return Caller(user.arn, account, "User", user.name, user.arn, user.id, tags=tags)
    # moto's caller for credentials it did not issue (the management account's "testing" keys)
    return Caller(f"arn:aws:sts::{account}:user/moto", account, "User", "moto", f"arn:aws:iam::{account}:user/moto",
                  "AKIAIOSFODNN7EXAMPLE")


def _org_id(account):
    try:
        owner = organizations_backends.master_accounts.get(account)
        master, partition = owner if owner else (account, PARTITION)
        org = organizations_backends[master][partition].org
        return org.id if org is not None else None
    except Exception:  # no Organization here: the key is absent
        return None


def _clock():
    now = datetime.datetime.now(datetime.timezone.utc)
    return {"aws:currenttime": [now.strftime("%Y-%m-%dT%H:%M:%SZ")], "aws:epochtime": [str(calendar.timegm(now.timetuple()))],
            "aws:securetransport": ["true"]}


# ---------------------------------------------------------------- trust policy evaluation


def _list(v):
    return v if isinstance(v, list) else [v]


def _glob(pattern, value, ignore_case=False):
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def _aws_principal_matches(value, who):
    if not isinstance(who, Caller) or not isinstance(value, str):
        return False
    if value == "*":
        return True
    if re.fullmatch(r"\d{12}", value):
        return value == who.account
    m = re.fullmatch(r"arn:aws[\w-]*:(?:iam|sts)::(\d{12}):(.+)", value)
    if not m or m.group(1) != who.account:
        return False
    resource = m.group(2)
    if resource == "root":
        return True
    if resource.startswith("role/"):
        return who.kind == "AssumedRole" and resource.split("/")[-1] == who.name
    if resource.startswith("user/"):
        return who.kind == "User" and resource.split("/")[-1] == who.name
    if resource.startswith("assumed-role/"):
        parts = resource.split("/")
        return who.kind == "AssumedRole" and len(parts) == 3 and parts[1] == who.name and parts[2] == who.session
    return False


def _principal_matches(element, who):
    if element == "*":
        return True
    if not isinstance(element, dict):
        return False
    for kind, values in element.items():
        for value in _list(values):
            if kind == "AWS" and (value == "*" or _aws_principal_matches(value, who)):
                return True
            if kind == "Service" and isinstance(who, ServicePrincipal) and isinstance(value, str) and value.lower() == who.name:
                return True
    return False


def _action_matches(patterns, action):
    return any(isinstance(p, str) and _glob(p, action, ignore_case=True) for p in _list(patterns))


def _substitute(value, ctx):
    """The condition value with its `${key}` policy variables replaced, or None when one is absent."""
    if not isinstance(value, str) or "${" not in value:
        return value
    missing = []

    def one(m):
        key = m.group(1)
        if key in ("*", "?", "$"):
            return key
        got = ctx.get(key.lower())
        if not got:
            missing.append(key)
            return ""
        return got[0]

    out = re.sub(r"\$\{([^}]+)\}", one, value)
    return None if missing else out


def _arn_like(pattern, value):
    p, v = pattern.split(":", 5), value.split(":", 5)
    return len(p) == len(v) == 6 and all(_glob(a, b) for a, b in zip(p, v))


def _number(s):
    return float(s)


def _date(s):
    s = str(s)
    if re.fullmatch(r"\d+", s):
        return float(s)
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


# operator -> (test(request value, policy value) of one pair, whether the operator is negated)
OPERATORS = {
    "StringEquals": (lambda v, w: v == w, False),
    "StringNotEquals": (lambda v, w: v == w, True),
    "StringEqualsIgnoreCase": (lambda v, w: v.lower() == w.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda v, w: v.lower() == w.lower(), True),
    "StringLike": (lambda v, w: _glob(w, v), False),
    "StringNotLike": (lambda v, w: _glob(w, v), True),
    "ArnEquals": (lambda v, w: _arn_like(w, v), False),
    "ArnLike": (lambda v, w: _arn_like(w, v), False),
    "ArnNotEquals": (lambda v, w: _arn_like(w, v), True),
    "ArnNotLike": (lambda v, w: _arn_like(w, v), True),
    "Bool": (lambda v, w: v.lower() == w.lower(), False),
    "NumericEquals": (lambda v, w: _number(v) == _number(w), False),
    "NumericNotEquals": (lambda v, w: _number(v) == _number(w), True),
    "NumericLessThan": (lambda v, w: _number(v) < _number(w), False),
    "NumericLessThanEquals": (lambda v, w: _number(v) <= _number(w), False),
    "NumericGreaterThan": (lambda v, w: _number(v) > _number(w), False),
    "NumericGreaterThanEquals": (lambda v, w: _number(v) >= _number(w), False),
    "DateEquals": (lambda v, w: _date(v) == _date(w), False),
    "DateNotEquals": (lambda v, w: _date(v) == _date(w), True),
    "DateLessThan": (lambda v, w: _date(v) < _date(w), False),
    "DateLessThanEquals": (lambda v, w: _date(v) <= _date(w), False),
    "DateGreaterThan": (lambda v, w: _date(v) > _date(w), False),
    "DateGreaterThanEquals": (lambda v, w: _date(v) >= _date(w), False),
}


def _one_value(test, negated, value, wanted, ctx):
    hit = False
    for w in wanted:
        w = _substitute(w if isinstance(w, str) else json.dumps(w), ctx)
        if w is None:
            continue
        try:
            if test(value, w):
                hit = True
                break
        except (ValueError, TypeError):
            continue
    return not hit if negated else hit


def _condition(operator, key, wanted, ctx):
    qualifier, _, op = operator.rpartition(":")
    if_exists = op.endswith("IfExists") and op != "Null"
    if if_exists:
        op = op[: -len("IfExists")]
    present = ctx.get(key.lower())
    if op == "Null":
        return any((present is None) == (str(w).lower() == "true") for w in wanted)
    if op not in OPERATORS or qualifier not in ("", "ForAnyValue", "ForAllValues"):
        return False  # an operator this evaluation does not know never matches
    test, negated = OPERATORS[op]
    if present is None:
        if qualifier == "ForAllValues":
            return True
        if qualifier == "ForAnyValue":
            return False
        return if_exists or negated
    results = [_one_value(test, negated, v, wanted, ctx) for v in present]
    if qualifier == "ForAllValues":
        return all(results)
    return any(results)


def _conditions(block, ctx):
    if not isinstance(block, dict):
        return False
    for operator, keys in block.items():
        if not isinstance(keys, dict):
            return False
        for key, wanted in keys.items():
            if not _condition(operator, key, _list(wanted), ctx):
                return False
    return True


def _statements(text):
    if text is None:
        return []
    try:
        doc = json.loads(text)
    except ValueError:
        try:
            doc = json.loads(unquote(text))
        except ValueError:
            return []
    statements = doc.get("Statement") if isinstance(doc, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    return [s for s in statements or [] if isinstance(s, dict)]


def allows(text, who, action, ctx):
    """Whether the trust policy `text` lets `who` perform `action`, given the request context."""
    allowed = False
    for st in _statements(text):
        if "Principal" in st:
            if not _principal_matches(st["Principal"], who):
                continue
        elif "NotPrincipal" in st:
            if _principal_matches(st["NotPrincipal"], who):
                continue
        else:
            continue
        if "Action" in st:
            if not _action_matches(st["Action"], action):
                continue
        elif "NotAction" in st:
            if _action_matches(st["NotAction"], action):
                continue
        else:
            continue
        if "Condition" in st and not _conditions(st["Condition"], ctx):
            continue
        if st.get("Effect") == "Deny":
            return False
        if st.get("Effect") == "Allow":
            allowed = True
    return allowed


# ---------------------------------------------------------------- STS AssumeRole


def _session_tags(params):
    tags, i = {}, 1
    while f"Tags.member.{i}.Key" in params:
        tags[params[f"Tags.member.{i}.Key"]] = params.get(f"Tags.member.{i}.Value", "")
        i += 1
    return tags


def _principal_context(req, who, params):
    ctx = {
        "aws:principalarn": [who.principal_arn],
        "aws:principalaccount": [who.account],
        "aws:principaltype": [who.kind],
        "aws:userid": [who.userid],
        "aws:principalisawsservice": ["false"],
        "aws:requestedregion": [req.region],
        **_clock(),
    }
    if who.kind == "User":
        ctx["aws:username"] = [who.name]
    for k, v in who.tags.items():
        ctx[f"aws:principaltag/{k.lower()}"] = [v]
    org = _org_id(who.account)
    if org:
        ctx["aws:principalorgid"] = [org]
    for param, key in (("ExternalId", "sts:externalid"), ("RoleSessionName", "sts:rolesessionname"),
                       ("SourceIdentity", "sts:sourceidentity")):
        if param in params:
            ctx[key] = [params[param]]
    tags = _session_tags(params)
    if tags:
        ctx["aws:tagkeys"] = list(tags)
        for k, v in tags.items():
            ctx[f"aws:requesttag/{k.lower()}"] = [v]
    return ctx


def access_denied(caller_arn, action, resource):
    """AWS's AccessDenied answer of STS (query protocol, HTTP 403)."""
    rid = str(uuid.uuid4())
    message = f"User: {caller_arn} is not authorized to perform: {action} on resource: {resource}"
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            f"<Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{rid}</RequestId></ErrorResponse>")
    return Response(403, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], body)


def _assume_role(req):
    params = _params(req)
    if params.get("Action") != "AssumeRole":
        return None
    role_arn = params.get("RoleArn", "")
    m = ROLE_ARN.match(role_arn)
    if not m:
        return None  # not a role ARN: moto answers (and validates)
    account, name = m.groups()
    settings = _settings
    text = _visible(account, name, settings["seconds"] if settings["assume_role"] else 0)
    if text is _UNKNOWN:
        if settings["unknown_roles"] == "allow":
            return None
        text = None
    who = _caller(req)
    actions = ["sts:AssumeRole"]
    if "SourceIdentity" in params:
        actions.append("sts:SetSourceIdentity")
    if _session_tags(params):
        actions.append("sts:TagSession")
    ctx = _principal_context(req, who, params)
    refused = next((a for a in actions if text is None or not allows(text, who, a, ctx)), None)
    if refused is None:
        return None
    _count("assume_role")
    return access_denied(who.arn, refused, role_arn)


# ---------------------------------------------------------------- services handed a role


def service_can_assume(account, role_arn, services, ctx):
    """Whether one of the service principals `services` can assume `role_arn` now (the role
    as the propagation delay lets services see it); None when `role_arn` is no role ARN."""
    m = ROLE_ARN.match(role_arn or "")
    if not m:
        return None
    role_account, name = m.groups()
    text = _visible(role_account, name, _settings["seconds"])
    if text is _UNKNOWN or text is None:
        return False
    base = {**_clock(), "aws:principalisawsservice": ["true"], **ctx}
    return any(allows(text, ServicePrincipal(s), "sts:AssumeRole", {**base, "aws:principalservicename": [s]}) for s in services)


def _states(req):
    op = _target(req)
    if op not in ("CreateStateMachine", "UpdateStateMachine"):
        return None
    try:
        body = req.json()
    except ValueError:
        return None
    role_arn = body.get("roleArn")
    if not isinstance(role_arn, str) or not role_arn:
        return None
    backend = stepfunctions_backends[req.account][req.region]
    if op == "CreateStateMachine":
        machine = f"arn:aws:states:{req.region}:{req.account}:stateMachine:{body.get('name')}"
        if any(sm.arn == machine for sm in list(backend.state_machines)):
            return None  # an idempotent repeat: AWS ignores its roleArn
    else:
        machine = body.get("stateMachineArn")
        if not any(sm.arn == machine for sm in list(backend.state_machines)):
            return None  # moto answers StateMachineDoesNotExist
    services = ("states.amazonaws.com", f"states.{req.region}.amazonaws.com")
    ok = service_can_assume(req.account, role_arn, services, {"aws:sourceaccount": [req.account], "aws:sourcearn": [machine]})
    if ok is None or ok:
        return None
    _count("states")
    return _json_error(400, "AccessDeniedException", STATES_REFUSAL, "1.0")


def _config(req):
    if _target(req) != "PutDeliveryChannel":
        return None
    try:
        channel = req.json().get("DeliveryChannel")
    except ValueError:
        return None
    bucket = channel.get("s3BucketName") if isinstance(channel, dict) else None
    if not isinstance(bucket, str) or not bucket:
        return None  # moto answers
    recorders = list(config_backends[req.account][req.region].recorders.values())
    if not recorders:
        return None  # moto answers NoAvailableConfigurationRecorderException
    role_arn = recorders[0].role_arn
    ok = service_can_assume(req.account, role_arn, ("config.amazonaws.com",), {"aws:sourceaccount": [req.account]})
    if ok is None or ok:
        return None
    _count("config")
    return _json_error(400, "InsufficientDeliveryPolicyException",
                       f"Insufficient delivery policy to s3 bucket: {bucket}, unable to assume role: {role_arn}", "1.1")
