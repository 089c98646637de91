"""IAM policy evaluation, as AWS documents it, for the emulator's checks of what a resource
policy (an S3 bucket policy, a KMS key policy, a role's trust policy) and a role's identity
policies let a principal do. Pure Python, no moto: the callers read the documents.

AWS's documented logic, implemented here:
- One policy: a statement applies to a request when its principal, action, resource and
  condition all match. Any applicable Deny wins; else any applicable Allow allows; else the
  request is implicitly denied (`evaluate` answers DENY, ALLOW or None).
- Principal / NotPrincipal (resource-based policies): `"*"` and `{"AWS": "*"}` are everyone
  (IAM documents them as equivalent); `{"Service": ...}` a service principal;
  `{"AWS": ...}` an ARN (exactly) or an account (`"123456789012"` or
  `"arn:aws:iam::123456789012:root"`). An account in an Allow grants nothing by itself: it
  delegates to the account, whose identity policies must then allow (`evaluate` answers
  DELEGATED); an account in a Deny denies every principal of the account. A service principal
  is never part of an account. A statement without Principal (an identity policy) applies to
  its principal.
- Action / NotAction: `service:Action`, case-insensitive, with `*` and `?` wildcards.
- Resource / NotResource: case-sensitive, with `*` and `?` (which match `:` and `/` too).
  Without either (a trust policy), any resource.
- Condition: every operator of the block, every key of an operator, must match (AND); the
  values of one key are alternatives (OR), and for negated operators (StringNotEquals,
  StringNotLike, ArnNotEquals, ArnNotLike, NumericNotEquals, DateNotEquals, NotIpAddress) the
  request value must match none of them (NOR). Keys are case-insensitive. A key missing from
  the request: the condition is false, except for negated operators (true), `...IfExists`
  (true), `Null` (true for `"true"`), `ForAllValues:` (true) and `ForAnyValue:` (false).
  `ForAnyValue:`: some request value matches; `ForAllValues:`: every request value matches.
  Operators: String{Equals,NotEquals,EqualsIgnoreCase,NotEqualsIgnoreCase,Like,NotLike},
  Numeric*, Date*, Bool, BinaryEquals, IpAddress, NotIpAddress, Arn{Equals,Like,NotEquals,
  NotLike} (each of the six colon-separated parts matched on its own, wildcards allowed),
  Null. An unknown operator is a PolicyError (AWS refuses such a policy when it is written).
- Policy variables (`${aws:SourceAccount}`, `${*}`, `${?}`, `${$}`) in Resource and condition
  values of a `"Version": "2012-10-17"` policy; a variable the request lacks makes that value
  match nothing.

Across policies (`decide`), AWS's logic for a request to a resource with a resource-based
policy: an explicit Deny in any policy denies. Otherwise a service principal (or any principal
named directly) is allowed by the resource policy's Allow. An IAM principal of the resource's
own account is allowed by either its identity policies or the resource policy, except for KMS
keys: a key policy must allow the principal or its account (DELEGATED), and only then do
identity policies count. A principal of another account needs both: the resource policy must
allow it (directly or through its account) and its identity policies must allow the request.
Not modelled: SCPs, permission boundaries, session policies, ACLs, grants.
"""

import datetime
import ipaddress
import json
import re

ALLOW = "Allow"
DENY = "Deny"
DELEGATED = "Delegated"  # allowed to the principal's account only: identity policies decide

VARIABLE = re.compile(r"\$\{([^}]*)\}")
ACCOUNT_ROOT = re.compile(r"^arn:[^:]+:iam::(\d{12}):root$")


class PolicyError(ValueError):
    """A policy document AWS would not accept (so cannot be evaluated)."""


class Principal:
    """Who makes the request: `Principal.service("cloudtrail.amazonaws.com")` or
    `Principal.aws("arn:aws:iam::123456789012:role/name")`."""

    def __init__(self, kind, ident, account=None, aliases=()):
        self.kind = kind
        self.id = ident
        self.account = account
        self.aliases = tuple(aliases)

    @classmethod
    def service(cls, name):
        return cls("Service", name)

    @classmethod
    def aws(cls, arn, aliases=()):
        parts = arn.split(":")
        account = parts[4] if len(parts) > 5 else (arn if re.fullmatch(r"\d{12}", arn) else None)
        return cls("AWS", arn, account, aliases)

    def __repr__(self):
        return f"Principal({self.kind}, {self.id})"


class Request:
    """What is asked: principal, action (`s3:PutObject`), resource ARN, and the request
    context (condition keys, any case; a value is a string, a bool, a number or a list)."""

    def __init__(self, principal, action, resource, context=None):
        self.principal = principal
        self.action = action
        self.resource = resource
        self.context = {k.lower(): v for k, v in (context or {}).items()}

    def __repr__(self):
        return f"Request({self.principal}, {self.action}, {self.resource}, {self.context})"


# ---------------------------------------------------------------- one policy


def load(policy):
    """A policy document from JSON text, bytes or a dict."""
    if isinstance(policy, (bytes, bytearray)):
        policy = policy.decode("utf-8")
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError as e:
            raise PolicyError(f"policy is not JSON: {e}")
    if not isinstance(policy, dict):
        raise PolicyError("policy is not a JSON object")
    return policy


def _list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def statements(policy):
    doc = load(policy)
    sts = doc.get("Statement")
    if sts is None:
        raise PolicyError("policy has no Statement")
    sts = _list(sts)
    for st in sts:
        if not isinstance(st, dict) or st.get("Effect") not in (ALLOW, DENY):
            raise PolicyError(f"statement without a valid Effect: {st!r}")
    return sts


def evaluate(policy, request):
    """DENY, ALLOW, DELEGATED or None (no statement applies: implicitly denied)."""
    doc = load(policy)
    variables = doc.get("Version") == "2012-10-17"
    decision = None
    for st in statements(doc):
        how = _applies(st, request, variables)
        if how is None:
            continue
        if st["Effect"] == DENY:
            return DENY
        if how == "account":
            decision = decision or DELEGATED
        else:
            decision = ALLOW
    return decision


def allows(policy, request):
    """Whether the policy alone allows the request (explicitly, to the principal itself)."""
    return evaluate(policy, request) == ALLOW


def decide(request, resource_policy=None, resource_account=None, identity_policies=(), key_policy=False):
    """AWS's decision across a resource policy and the principal's identity policies (see
    the module docstring). `key_policy`: the resource policy is a KMS key policy."""
    found = [evaluate(resource_policy, request)] if resource_policy is not None else [None]
    ids = [evaluate(p, request) for p in identity_policies]
    if DENY in found or DENY in ids:
        return False
    res = found[0]
    identity = ALLOW in ids
    p = request.principal
    if p.kind != "AWS":
        return res == ALLOW
    same = p.account is not None and p.account == resource_account
    if key_policy or not same:
        return res == ALLOW and (same or identity) or (res == DELEGATED and identity)
    return res == ALLOW or identity


# ---------------------------------------------------------------- one statement


def _applies(st, request, variables):
    """None when the statement does not apply, else "direct" or "account" (how the
    principal matched; "direct" when the statement names no principal)."""
    how = "direct"
    if "Principal" in st:
        how = _principal_match(st["Principal"], request.principal)
        if how is None:
            return None
    elif "NotPrincipal" in st:
        if _principal_match(st["NotPrincipal"], request.principal) is not None:
            return None
    if "Action" in st:
        if not any(_glob(a, request.action, case=False) for a in _list(st["Action"])):
            return None
    elif "NotAction" in st:
        if any(_glob(a, request.action, case=False) for a in _list(st["NotAction"])):
            return None
    else:
        raise PolicyError(f"statement without Action or NotAction: {st!r}")
    if "Resource" in st:
        if not any(_resource_match(r, request, variables) for r in _list(st["Resource"])):
            return None
    elif "NotResource" in st:
        if any(_resource_match(r, request, variables) for r in _list(st["NotResource"])):
            return None
    cond = st.get("Condition")
    if cond is not None and not _conditions(cond, request, variables):
        return None
    return how


def _principal_match(spec, principal):
    if spec == "*":
        return "direct"
    if not isinstance(spec, dict):
        raise PolicyError(f"invalid Principal: {spec!r}")
    found = None
    for kind, values in spec.items():
        for v in _list(values):
            if not isinstance(v, str):
                raise PolicyError(f"invalid Principal value: {v!r}")
            if kind == "AWS":
                if v == "*":
                    return "direct"
                if principal.kind != "AWS":
                    continue
                if v == principal.id or v in principal.aliases:
                    return "direct"
                m = ACCOUNT_ROOT.match(v)
                account = m.group(1) if m else (v if re.fullmatch(r"\d{12}", v) else None)
                if account is not None and account == principal.account:
                    found = "account"
            elif kind == "Service":
                if principal.kind == "Service" and v.lower() == principal.id.lower():
                    return "direct"
            elif kind in ("Federated", "CanonicalUser"):
                if principal.kind == kind and v == principal.id:
                    return "direct"
            else:
                raise PolicyError(f"unknown principal type {kind!r}")
    return found


def _wild(text):
    """Regex source of a policy pattern: `*` any run of characters, `?` any one."""
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)


def _glob(pattern, value, case=True):
    if not isinstance(pattern, str) or not isinstance(value, str):
        return False
    if not case:
        pattern, value = pattern.lower(), value.lower()
    return re.fullmatch(_wild(pattern), value, re.DOTALL) is not None


class Pattern:
    """A policy value with its policy variables filled in: pieces of text, each either a
    pattern (`*` and `?` are wildcards) or literal (what a variable gave, and `${*}`)."""

    def __init__(self, pieces):
        self.pieces = pieces  # [(text, literal)]

    @property
    def text(self):
        return "".join(t for t, _ in self.pieces)

    def matches(self, value, case=True):
        if not isinstance(value, str):
            return False
        src = "".join(re.escape(t) if lit else _wild(t) for t, lit in self.pieces)
        return re.fullmatch(src, value, re.DOTALL | (0 if case else re.IGNORECASE)) is not None

    def split(self, sep, maxsplit):
        """The pattern cut at `sep` (in its pattern pieces only) into at most maxsplit + 1 parts."""
        parts, current, cuts = [], [], 0
        for text, literal in self.pieces:
            if literal:
                current.append((text, True))
                continue
            chunks = text.split(sep, maxsplit - cuts) if cuts < maxsplit else [text]
            for i, chunk in enumerate(chunks):
                if i:
                    parts.append(Pattern(current))
                    current, cuts = [], cuts + 1
                current.append((chunk, False))
        parts.append(Pattern(current))
        return parts


def _expand(value, request, variables):
    """The policy value as a Pattern, its variables filled in from the request context, or
    None when a variable is missing (that value then matches nothing)."""
    value = _text(value)
    if not variables or "${" not in value:
        return Pattern([(value, False)])
    pieces, last = [], 0
    for m in VARIABLE.finditer(value):
        pieces.append((value[last:m.start()], False))
        name = m.group(1).strip()
        default = None
        if "," in name:  # ${key, 'default'}
            name, _, rest = name.partition(",")
            name, default = name.strip(), rest.strip().strip("'")
        if name in ("*", "?", "$"):
            pieces.append((name, True))
        else:
            got = request.context.get(name.lower(), default)
            if got is None or isinstance(got, (list, tuple)):
                return None
            pieces.append((_text(got), True))
        last = m.end()
    pieces.append((value[last:], False))
    return Pattern(pieces)


def _resource_match(pattern, request, variables):
    if not isinstance(pattern, str):
        raise PolicyError(f"invalid Resource: {pattern!r}")
    p = _expand(pattern, request, variables)
    return p is not None and p.matches(request.resource)


# ---------------------------------------------------------------- conditions


def _text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# Each comparison takes the request value and the policy value (a Pattern).


def _string_eq(rv, pv):
    return _text(rv) == pv.text


def _string_eq_ic(rv, pv):
    return _text(rv).lower() == pv.text.lower()


def _string_like(rv, pv):
    return pv.matches(_text(rv))


def _number(v):
    if isinstance(v, bool):
        raise ValueError("a boolean is not a number")
    return float(v)


def _numeric(compare):
    def fn(rv, pv):
        try:
            return compare(_number(rv), _number(pv.text))
        except (TypeError, ValueError):
            return False
    return fn


def _date_value(v):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    s = _text(v)
    if re.fullmatch(r"-?\d+(\.\d+)?", s):
        return float(s)
    dt = datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


def _date(compare):
    def fn(rv, pv):
        try:
            return compare(_date_value(rv), _date_value(pv.text))
        except (TypeError, ValueError):
            return False
    return fn


def _bool(rv, pv):
    return _text(rv).lower() == pv.text.lower()


def _ip(rv, pv):
    try:
        return ipaddress.ip_address(_text(rv)) in ipaddress.ip_network(pv.text, strict=False)
    except ValueError:
        return False


def _arn_like(rv, pv):
    r, p = _text(rv).split(":", 5), pv.split(":", 5)
    if len(r) != 6 or len(p) != 6:
        return False
    return all(pp.matches(rr) for pp, rr in zip(p, r))


# name: (comparison, negated)
OPERATORS = {
    "stringequals": (_string_eq, False),
    "stringnotequals": (_string_eq, True),
    "stringequalsignorecase": (_string_eq_ic, False),
    "stringnotequalsignorecase": (_string_eq_ic, True),
    "stringlike": (_string_like, False),
    "stringnotlike": (_string_like, True),
    "numericequals": (_numeric(lambda a, b: a == b), False),
    "numericnotequals": (_numeric(lambda a, b: a == b), True),
    "numericlessthan": (_numeric(lambda a, b: a < b), False),
    "numericlessthanequals": (_numeric(lambda a, b: a <= b), False),
    "numericgreaterthan": (_numeric(lambda a, b: a > b), False),
    "numericgreaterthanequals": (_numeric(lambda a, b: a >= b), False),
    "dateequals": (_date(lambda a, b: a == b), False),
    "datenotequals": (_date(lambda a, b: a == b), True),
    "datelessthan": (_date(lambda a, b: a < b), False),
    "datelessthanequals": (_date(lambda a, b: a <= b), False),
    "dategreaterthan": (_date(lambda a, b: a > b), False),
    "dategreaterthanequals": (_date(lambda a, b: a >= b), False),
    "bool": (_bool, False),
    "binaryequals": (_string_eq, False),
    "ipaddress": (_ip, False),
    "notipaddress": (_ip, True),
    "arnequals": (_arn_like, False),
    "arnlike": (_arn_like, False),
    "arnnotequals": (_arn_like, True),
    "arnnotlike": (_arn_like, True),
}


def _conditions(block, request, variables):
    if not isinstance(block, dict):
        raise PolicyError(f"invalid Condition: {block!r}")
    for operator, keys in block.items():
        if not isinstance(keys, dict):
            raise PolicyError(f"invalid Condition block for {operator}: {keys!r}")
        for key, values in keys.items():
            if not _condition(operator, key, _list(values), request, variables):
                return False
    return True


def _condition(operator, key, policy_values, request, variables):
    op, qualifier = operator, None
    low = op.lower()
    if low.startswith("foranyvalue:"):
        qualifier, op = "any", op[len("ForAnyValue:"):]
    elif low.startswith("forallvalues:"):
        qualifier, op = "all", op[len("ForAllValues:"):]
    low = op.lower()
    present = key.lower() in request.context
    requested = _list(request.context.get(key.lower()))
    if low == "null":
        if qualifier:
            raise PolicyError("Null takes no ForAnyValue:/ForAllValues: qualifier")
        missing = not present or not requested
        return any(missing == (_text(v).lower() == "true") for v in policy_values)
    if_exists = low.endswith("ifexists")
    base = low[:-len("ifexists")] if if_exists else low
    if base not in OPERATORS:
        raise PolicyError(f"unknown condition operator {operator!r}")
    compare, negated = OPERATORS[base]
    values = [p for p in (_expand(v, request, variables) for v in policy_values) if p is not None]

    def one(rv):
        hit = any(compare(rv, pv) for pv in values)
        return not hit if negated else hit

    if not present or not requested:
        if if_exists or qualifier == "all":
            return True
        if qualifier == "any":
            return False
        return negated
    if qualifier == "all":
        return all(one(rv) for rv in requested)
    if qualifier == "any" or not negated:
        return any(one(rv) for rv in requested)
    return all(one(rv) for rv in requested)
