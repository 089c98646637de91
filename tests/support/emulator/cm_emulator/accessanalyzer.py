"""IAM Access Analyzer (restJson1, signing name `access-analyzer`).

moto 5.2.5 has no Access Analyzer at all. Implemented per account and region:
CreateAnalyzer (analyzerName, type, tags, archiveRules, configuration) / GetAnalyzer /
ListAnalyzers (type filter) / DeleteAnalyzer / CreateArchiveRule / GetArchiveRule /
ListArchiveRules / UpdateArchiveRule / DeleteArchiveRule / TagResource / UntagResource /
ListTagsForResource.

- Analyzer ARN `arn:aws:access-analyzer:<region>:<account>:analyzer/<name>`, status ACTIVE.
- Timestamps (createdAt, updatedAt) are ISO 8601 strings: this service's model marks them
  `iso8601`, unlike the JSON protocols' epoch-seconds default.
- An archive rule's `filter` is a map of criteria, each with at least one of eq / neq /
  contains (non-empty string lists) or exists (boolean); anything else is ValidationException.
- Analyzer names are unique per account and Region: a second CreateAnalyzer of a name is
  ConflictException (409), whatever its type.
- One analyzer of each account-level type (ACCOUNT, ACCOUNT_UNUSED_ACCESS,
  ACCOUNT_INTERNAL_ACCESS) per account and Region, five of ORGANIZATION and of
  ORGANIZATION_UNUSED_ACCESS, one of ORGANIZATION_INTERNAL_ACCESS (the IAM User Guide's
  "IAM Access Analyzer quotas"; the account-level quota of 1 cannot be raised). One more
  under another name is ServiceQuotaExceededException, the model's quota error, with its
  status 402: a customer's analyzer of the type the baseline wants blocks the baseline's,
  as on AWS.
- Errors carry the model's required members: ResourceNotFoundException,
  ConflictException and ServiceQuotaExceededException have resourceId/resourceType,
  ValidationException has reason.
"""

import re
import threading

from .wire import ApiError, RestJsonService, iso, now, paginate

SIGNING_NAMES = ("access-analyzer",)
# analyzer type -> how many an account may have of it in a Region (AWS's default quota)
TYPES = {"ACCOUNT": 1, "ACCOUNT_UNUSED_ACCESS": 1, "ACCOUNT_INTERNAL_ACCESS": 1,
         "ORGANIZATION": 5, "ORGANIZATION_UNUSED_ACCESS": 5, "ORGANIZATION_INTERNAL_ACCESS": 1}
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,254}$")

_lock = threading.Lock()
_analyzers = {}  # (account, region) -> {name: analyzer}


def reset():
    with _lock:
        _analyzers.clear()


def _validation(message, reason="fieldValidationFailed"):
    return ApiError("ValidationException", message, reason=reason)


def _not_found(resource_id, resource_type):
    return ApiError("ResourceNotFoundException", f"{resource_type} {resource_id} not found", resourceId=resource_id, resourceType=resource_type)


def _conflict(resource_id, resource_type):
    return ApiError("ConflictException", f"{resource_type} {resource_id} already exists", resourceId=resource_id, resourceType=resource_type)


def _scope(req):
    return _analyzers.setdefault((req.account, req.region), {})


def _analyzer(req, name):
    analyzer = _scope(req).get(name)
    if analyzer is None:
        raise _not_found(name, "Analyzer")
    return analyzer


def _check_filter(flt):
    if not isinstance(flt, dict) or not flt:
        raise _validation("filter must be a non-empty map of criteria")
    for key, criterion in flt.items():
        if not isinstance(criterion, dict) or not criterion:
            raise _validation(f"Criterion for {key} must set at least one of eq, neq, contains, exists")
        for op, value in criterion.items():
            if op in ("eq", "neq", "contains"):
                if not isinstance(value, list) or not 1 <= len(value) <= 20 or not all(isinstance(v, str) for v in value):
                    raise _validation(f"{key}.{op} must be a list of 1 to 20 strings")
            elif op == "exists":
                if not isinstance(value, bool):
                    raise _validation(f"{key}.exists must be a boolean")
            else:
                raise _validation(f"Unknown criterion operator {op} for {key}")
    return {k: dict(v) for k, v in flt.items()}


def _check_rule_name(name):
    if not isinstance(name, str) or not NAME.match(name):
        raise _validation(f"Invalid ruleName {name}")


def _new_rule(name, flt):
    t = now()
    return {"ruleName": name, "filter": _check_filter(flt), "createdAt": t, "updatedAt": t}


def _rule_out(rule):
    return {"ruleName": rule["ruleName"], "filter": rule["filter"], "createdAt": iso(rule["createdAt"]), "updatedAt": iso(rule["updatedAt"])}


def _summary(a):
    out = {"arn": a["arn"], "name": a["name"], "type": a["type"], "createdAt": iso(a["createdAt"]), "status": "ACTIVE", "tags": dict(a["tags"])}
    if a.get("configuration"):
        out["configuration"] = a["configuration"]
    return out


def create_analyzer(req, p):
    name, kind = p["analyzerName"], p["type"]
    if not NAME.match(name):
        raise _validation(f"Invalid analyzerName {name}")
    if kind not in TYPES:
        raise _validation(f"Invalid type {kind}")
    scope = _scope(req)
    if name in scope:
        raise _conflict(name, "Analyzer")
    if sum(a["type"] == kind for a in scope.values()) >= TYPES[kind]:
        raise ApiError("ServiceQuotaExceededException", f"You have reached the quota of {TYPES[kind]} {kind} analyzer(s) in this account and Region",
                       resourceId=name, resourceType="Analyzer")
    rules = {}
    for inline in p.get("archiveRules") or []:
        _check_rule_name(inline.get("ruleName"))
        if inline["ruleName"] in rules:
            raise _validation(f"Duplicate archive rule {inline['ruleName']}")
        rules[inline["ruleName"]] = _new_rule(inline["ruleName"], inline.get("filter"))
    configuration = p.get("configuration")
    if kind.endswith("UNUSED_ACCESS"):
        configuration = dict(configuration or {})
        configuration.setdefault("unusedAccess", {})
        configuration["unusedAccess"] = dict(configuration["unusedAccess"], unusedAccessAge=configuration["unusedAccess"].get("unusedAccessAge", 90))
    arn = f"arn:aws:access-analyzer:{req.region}:{req.account}:analyzer/{name}"
    scope[name] = {"arn": arn, "name": name, "type": kind, "createdAt": now(), "tags": dict(p.get("tags") or {}), "rules": rules, "configuration": configuration}
    return {"arn": arn}


def get_analyzer(req, p):
    return {"analyzer": _summary(_analyzer(req, p["analyzerName"]))}


def list_analyzers(req, p):
    kind = p.get("type")
    if kind is not None and kind not in TYPES:
        raise _validation(f"Invalid type {kind}")
    items = [_summary(a) for a in _scope(req).values() if kind is None or a["type"] == kind]
    page, token = paginate(items, p.get("nextToken"), p.get("maxResults"), lambda: _validation("Invalid nextToken", "other"))
    out = {"analyzers": page}
    if token:
        out["nextToken"] = token
    return out


def delete_analyzer(req, p):
    _analyzer(req, p["analyzerName"])
    del _scope(req)[p["analyzerName"]]
    return None


def create_archive_rule(req, p):
    analyzer = _analyzer(req, p["analyzerName"])
    _check_rule_name(p["ruleName"])
    if p["ruleName"] in analyzer["rules"]:
        raise _conflict(p["ruleName"], "ArchiveRule")
    analyzer["rules"][p["ruleName"]] = _new_rule(p["ruleName"], p["filter"])
    return None


def _rule(req, p):
    analyzer = _analyzer(req, p["analyzerName"])
    rule = analyzer["rules"].get(p["ruleName"])
    if rule is None:
        raise _not_found(p["ruleName"], "ArchiveRule")
    return analyzer, rule


def get_archive_rule(req, p):
    return {"archiveRule": _rule_out(_rule(req, p)[1])}


def list_archive_rules(req, p):
    analyzer = _analyzer(req, p["analyzerName"])
    items = [_rule_out(r) for r in analyzer["rules"].values()]
    page, token = paginate(items, p.get("nextToken"), p.get("maxResults"), lambda: _validation("Invalid nextToken", "other"))
    out = {"archiveRules": page}
    if token:
        out["nextToken"] = token
    return out


def update_archive_rule(req, p):
    _, rule = _rule(req, p)
    rule["filter"] = _check_filter(p["filter"])
    rule["updatedAt"] = now()
    return None


def delete_archive_rule(req, p):
    analyzer, _ = _rule(req, p)
    del analyzer["rules"][p["ruleName"]]
    return None


def _by_arn(req, arn):
    prefix = f"arn:aws:access-analyzer:{req.region}:{req.account}:analyzer/"
    if not arn.startswith(prefix):
        raise _not_found(arn, "Analyzer")
    return _analyzer(req, arn[len(prefix):])


def tag_resource(req, p):
    analyzer = _by_arn(req, p["resourceArn"])
    if not isinstance(p["tags"], dict):
        raise _validation("tags must be a map")
    analyzer["tags"].update(p["tags"])
    return {}


def untag_resource(req, p):
    analyzer = _by_arn(req, p["resourceArn"])
    for key in p["tagKeys"]:
        analyzer["tags"].pop(key, None)
    return {}


def list_tags_for_resource(req, p):
    return {"tags": dict(_by_arn(req, p["resourceArn"])["tags"])}


SERVICE = RestJsonService(
    "accessanalyzer",
    {
        "CreateAnalyzer": create_analyzer,
        "GetAnalyzer": get_analyzer,
        "ListAnalyzers": list_analyzers,
        "DeleteAnalyzer": delete_analyzer,
        "CreateArchiveRule": create_archive_rule,
        "GetArchiveRule": get_archive_rule,
        "ListArchiveRules": list_archive_rules,
        "UpdateArchiveRule": update_archive_rule,
        "DeleteArchiveRule": delete_archive_rule,
        "TagResource": tag_resource,
        "UntagResource": untag_resource,
        "ListTagsForResource": list_tags_for_resource,
    },
    validation_error=lambda message: _validation(message),
)


def handle(req):
    with _lock:
        return SERVICE.handle(req)
