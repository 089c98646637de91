"""Amazon Detective (restJson1, signing name `detective`).

moto 5.2.5 has no Detective at all (it answers an HTML 404). Implemented per account and
region: CreateGraph (Tags) / ListGraphs / DeleteGraph / TagResource / UntagResource /
ListTagsForResource.

- GraphArn `arn:aws:detective:<region>:<account>:graph:<32 hex>`; one behavior graph per
  account and region, a second CreateGraph is 409 ConflictException as on AWS.
- ListGraphs' `CreatedTime` is an ISO 8601 string (the model's timestampFormat iso8601).
- TagResource / UntagResource answer 204, as the model's responseCode says.
- Errors: model status, `x-amzn-ErrorType`, body `{"__type", "message", "Message"}`.
- CreateGraph does not look at GuardDuty, as on AWS today. Until February 2024 the API
  Reference said an account had to be enrolled in GuardDuty for at least 48 hours before
  CreateGraph, else "you cannot enable Detective" (naming no error); the model update of
  2024-02-15 (botocore "Doc only updates for content enhancement") dropped that paragraph,
  and the Detective User Guide's prerequisites now list only IAM permissions
  and the AWS CLI version; Terraform's acceptance test of aws_detective_graph creates a graph
  with no GuardDuty set-up of its own. What remains of GuardDuty in the model concerns member
  accounts (MemberDetail DisabledReason VOLUME_UNKNOWN, "usually because the member account
  is not enrolled in Amazon GuardDuty"), which this module does not implement.
"""

import re
import threading
import uuid

from .wire import ApiError, RestJsonService, iso, now, paginate

SIGNING_NAMES = ("detective",)
GRAPH_ARN = re.compile(r"^arn:aws:detective:([a-z0-9-]+):(\d{12}):graph:([0-9a-f]{32})$")

_lock = threading.Lock()
_graphs = {}  # (account, region) -> {"arn", "created", "tags"}


def reset():
    with _lock:
        _graphs.clear()


def _validation(message):
    return ApiError("ValidationException", message)


def _graph(req, arn):
    if not GRAPH_ARN.match(arn or ""):
        raise _validation(f"Invalid ARN {arn}")
    graph = _graphs.get((req.account, req.region))
    if graph is None or graph["arn"] != arn:
        raise ApiError("ResourceNotFoundException", "The request refers to a nonexistent resource.")
    return graph


def create_graph(req, p):
    key = (req.account, req.region)
    if key in _graphs:
        raise ApiError("ConflictException", "The request attempted an invalid action: a behavior graph already exists for this account in this Region.")
    arn = f"arn:aws:detective:{req.region}:{req.account}:graph:{uuid.uuid4().hex}"
    _graphs[key] = {"arn": arn, "created": now(), "tags": dict(p.get("Tags") or {})}
    return {"GraphArn": arn}


def list_graphs(req, p):
    graph = _graphs.get((req.account, req.region))
    items = [{"Arn": graph["arn"], "CreatedTime": iso(graph["created"])}] if graph else []
    page, token = paginate(items, p.get("NextToken"), p.get("MaxResults"), lambda: _validation("Invalid NextToken"))
    out = {"GraphList": page}
    if token:
        out["NextToken"] = token
    return out


def delete_graph(req, p):
    _graph(req, p["GraphArn"])
    del _graphs[(req.account, req.region)]
    return None


def tag_resource(req, p):
    graph = _graph(req, p["ResourceArn"])
    if not isinstance(p["Tags"], dict) or not p["Tags"]:
        raise _validation("Tags must be a non-empty map")
    graph["tags"].update(p["Tags"])
    return None


def untag_resource(req, p):
    graph = _graph(req, p["ResourceArn"])
    for key in p["TagKeys"]:
        graph["tags"].pop(key, None)
    return None


def list_tags_for_resource(req, p):
    return {"Tags": dict(_graph(req, p["ResourceArn"])["tags"])}


SERVICE = RestJsonService(
    "detective",
    {
        "CreateGraph": create_graph,
        "ListGraphs": list_graphs,
        "DeleteGraph": delete_graph,
        "TagResource": tag_resource,
        "UntagResource": untag_resource,
        "ListTagsForResource": list_tags_for_resource,
    },
    validation_error=_validation,
    message_keys=("message", "Message"),
)


def handle(req):
    with _lock:
        return SERVICE.handle(req)
