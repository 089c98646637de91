"""Amazon GuardDuty (restJson1, signing name `guardduty`): corrections to moto 5.2.5.

moto keeps detectors (with `features`, `tags`, status) and answers CreateDetector,
ListDetectors, GetDetector and UpdateDetector in the model's shape. Where it differs from AWS:

- A second CreateDetector in the same account and Region: moto makes another detector; AWS
  answers 400 BadRequestException "The request is rejected because a detector already exists
  for the current account." Answered here.
- UpdateDetector with `features`: moto replaces the detector's whole feature list with the
  request's; AWS updates only the features named (and, within one, only the
  additionalConfiguration entries named), keeping the others. The request is merged with the
  detector's current features before moto sees it, and the detector's updatedAt is advanced.
- GetDetector: moto reports the foundational data sources (CloudTrail, DNS logs, flow logs)
  DISABLED and leaves them out of `features`; on AWS they are on while the detector is, and
  GetDetector lists them as features CLOUD_TRAIL, DNS_LOGS, FLOW_LOGS. moto's answer is
  rewritten: those three features are added (ENABLED with the detector), and the deprecated
  `dataSources` follow the detector and the S3_DATA_EVENTS / EKS_AUDIT_LOGS features.
- TagResource / UntagResource / ListTagsForResource (`/tags/{ResourceArn}`): moto has no
  route (HTML 404). Answered here for detector ARNs
  `arn:aws:guardduty:<region>:<account>:detector/<id>` on the tags moto keeps on the detector,
  so GetDetector's `tags` agree. TagResource / UntagResource answer 204 as the model says.

This module reads moto's GuardDuty backend directly (moto 5.2.5 is pinned in requirements).
"""

import datetime
import json
import re

from moto.guardduty.models import guardduty_backends

from .wire import ApiError, RestJsonService, call_moto

SIGNING_NAMES = ("guardduty",)
DETECTOR_ARN = re.compile(r"^arn:aws:guardduty:([a-z0-9-]+):(\d{12}):detector/([0-9a-z]+)$")


def reset():
    pass


def _bad_request(message):
    return ApiError("BadRequestException", message, type="InvalidInputException")


def _backend(req):
    return guardduty_backends[req.account][req.region]


def create_detector(req, p):
    if _backend(req).detectors:
        raise _bad_request("The request is rejected because a detector already exists for the current account.")
    return call_moto(req.moto, req)


def _merge(current, updates):
    merged = {f.get("name"): dict(f) for f in current}
    for f in updates:
        name = f.get("name")
        old = merged.get(name, {})
        new = dict(old, **{k: v for k, v in f.items() if k != "additionalConfiguration"})
        if "additionalConfiguration" in f or "additionalConfiguration" in old:
            extra = {c.get("name"): dict(c) for c in old.get("additionalConfiguration", [])}
            for c in f.get("additionalConfiguration", []):
                extra[c.get("name")] = dict(extra.get(c.get("name"), {}), **c)
            new["additionalConfiguration"] = list(extra.values())
        merged[name] = new
    return list(merged.values())


def update_detector(req, p):
    detector = _backend(req).detectors.get(p["DetectorId"])
    if detector is not None and "features" in req.json():
        body = req.json()
        body["features"] = _merge(detector.features, body["features"] or [])
        req.set_body(json.dumps(body).encode())
    answer = call_moto(req.moto, req)
    if detector is not None and answer.status == 200:
        detector.updated_at = datetime.datetime.now()
    return answer


FOUNDATIONAL = (("CLOUD_TRAIL", "cloudTrail"), ("DNS_LOGS", "dnsLogs"), ("FLOW_LOGS", "flowLogs"))


def get_detector(req, p):
    answer = call_moto(req.moto, req)
    if answer.status != 200:
        return answer
    doc = json.loads(answer.body)
    on = "ENABLED" if doc.get("status") == "ENABLED" else "DISABLED"
    features = doc.get("features") or []
    named = {f.get("name"): f for f in features}
    doc["features"] = [{"name": n, "status": on} for n, _ in FOUNDATIONAL if n not in named] + features
    sources = doc.setdefault("dataSources", {})
    for _, key in FOUNDATIONAL:
        sources[key] = {"status": on}
    if "S3_DATA_EVENTS" in named:
        sources["s3Logs"] = {"status": named["S3_DATA_EVENTS"].get("status", "DISABLED")}
    if "EKS_AUDIT_LOGS" in named:
        sources.setdefault("kubernetes", {})["auditLogs"] = {"status": named["EKS_AUDIT_LOGS"].get("status", "DISABLED")}
    answer.body = json.dumps(doc).encode()
    return answer


def _detector(req, arn):
    m = DETECTOR_ARN.match(arn)
    if not m or m.group(1) != req.region or m.group(2) != req.account:
        raise _bad_request("The request is rejected because the input resourceArn is not valid.")
    detector = _backend(req).detectors.get(m.group(3))
    if detector is None:
        raise _bad_request("The request is rejected because the input detectorId is not owned by the current account.")
    return detector


def tag_resource(req, p):
    tags = p["Tags"]
    if not isinstance(tags, dict) or not tags:
        raise _bad_request("The request is rejected because tags must be a non-empty map.")
    _detector(req, p["ResourceArn"]).tags.update(tags)
    return None


def untag_resource(req, p):
    detector = _detector(req, p["ResourceArn"])
    for key in p["TagKeys"]:
        detector.tags.pop(key, None)
    return None


def list_tags_for_resource(req, p):
    return {"tags": dict(_detector(req, p["ResourceArn"]).tags)}


SERVICE = RestJsonService(
    "guardduty",
    {
        "CreateDetector": create_detector,
        "GetDetector": get_detector,
        "UpdateDetector": update_detector,
        "TagResource": tag_resource,
        "UntagResource": untag_resource,
        "ListTagsForResource": list_tags_for_resource,
    },
    validation_error=_bad_request,
)


def handle(req):
    return SERVICE.handle(req)
