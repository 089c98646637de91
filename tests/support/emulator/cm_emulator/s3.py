"""S3 (restXml, signing name `s3`).

Implemented (moto 5.2.5 lacks it):
- GetBucketRequestPayment / PutBucketRequestPayment (`?requestPayment`): moto answers the GET
  with a ListObjects body and the PUT as CreateBucket. Kept per account and bucket
  (`<RequestPaymentConfiguration><Payer>`), default `BucketOwner`.

Corrected (moto answers, but not as AWS does):
- GetBucketVersioning: moto's root element is `GetBucketVersioningResponse`; AWS's, and what
  strict clients parse, is `VersioningConfiguration`. moto's answer is rewritten.
- GetObjectLockConfiguration: moto answers the default retention with both periods, the one
  not set as 0 (`<Days>0</Days><Years>1</Years>` after a PUT of 1 year); AWS answers only the
  period that was set. The zero member is removed from moto's answer.
- PutObjectLockConfiguration with a default retention of 0 (or fewer) days or years: moto
  stores it; AWS answers 400 InvalidArgument "Default retention period must be a positive
  integer value." (ArgumentName Days or Years).
- PutObjectLockConfiguration on a bucket without versioning: moto answers InvalidBucketState
  with 400; AWS with 409 Conflict, that error's status. The status is corrected.
- PutBucketVersioning `Suspended` on a bucket with Object Lock enabled: moto suspends
  versioning; AWS answers 409 InvalidBucketState "An Object Lock configuration is present on
  this bucket, so the versioning state cannot be changed." (Object Lock needs versioning, and
  once enabled neither can be turned off.) `Enabled` is accepted, as on AWS.

Checked and left to moto (it answers as AWS does): CreateBucket with
ObjectLockEnabledForBucket (versioning Enabled, GetObjectLockConfiguration
`ObjectLockEnabled: Enabled` without a rule); PutObjectLockConfiguration with both Days and
Years (400 MalformedXML); the retention mode and period round-trip (1 year COMPLIANCE, as the
baseline's buckets have it); GetObjectLockConfiguration on a bucket without Object Lock (404
ObjectLockConfigurationNotFoundError). Not checked: a mode outside GOVERNANCE|COMPLIANCE, or
a retention without a period (moto stores both; the product never sends them).
"""

import re
import threading

from moto.s3.exceptions import MissingBucket
from moto.s3.models import s3_backends

from .wire import Response, call_moto

SIGNING_NAMES = ("s3",)
S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"

_lock = threading.Lock()
_payer = {}  # (account, bucket) -> "BucketOwner" | "Requester"


def reset():
    with _lock:
        _payer.clear()


def _has_flag(query, flag):
    return re.search(rf"(^|&){flag}(=|&|$)", query) is not None


def handle(req):
    if _has_flag(req.query_string, "requestPayment"):
        return request_payment(req)
    if req.method == "GET" and _has_flag(req.query_string, "versioning"):
        answer = call_moto(req.moto, req)
        answer.body = answer.body.replace(b"GetBucketVersioningResponse", b"VersioningConfiguration")
        return answer
    if req.method == "PUT" and _has_flag(req.query_string, "versioning"):
        return suspend_locked_versioning(req)
    if _has_flag(req.query_string, "object-lock"):
        return object_lock(req)
    return None


def _xml_error(status, code, message, extra=""):
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>{extra}</Error>'
    return Response(status, [("Content-Type", "application/xml")], body)


def _bucket_name(req):
    return req.path.strip("/").split("/")[0]


def suspend_locked_versioning(req):
    status = re.search(rb"<Status>\s*(\w+)\s*</Status>", req.body)
    if not status or status.group(1) != b"Suspended":
        return None
    try:
        bucket = s3_backends[req.account]["aws"].get_bucket(_bucket_name(req))
    except MissingBucket:
        return None
    if not bucket.object_lock_enabled:
        return None
    return _xml_error(409, "InvalidBucketState",
                      "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.")


def object_lock(req):
    if req.method == "PUT":
        periods = re.findall(rb"<(Days|Years)>\s*(-?\d+)\s*</(?:Days|Years)>", req.body)
        if len(periods) == 1 and int(periods[0][1]) <= 0:
            return _xml_error(400, "InvalidArgument", "Default retention period must be a positive integer value.",
                              f"<ArgumentName>{periods[0][0].decode()}</ArgumentName>")
        answer = call_moto(req.moto, req)
        if answer.status == 400 and b"<Code>InvalidBucketState</Code>" in answer.body:
            answer.status = 409
        return answer
    if req.method == "GET":
        answer = call_moto(req.moto, req)
        if answer.status == 200:
            answer.body = re.sub(rb"<(Days|Years)>\s*0\s*</\1>", b"", answer.body)
        return answer
    return None


def request_payment(req):
    bucket = _bucket_name(req)
    key = (req.account, bucket)
    if req.method == "PUT":
        payer = re.search(rb"<Payer>\s*(\w+)\s*</Payer>", req.body)
        value = payer.group(1).decode() if payer else None
        if value not in ("BucketOwner", "Requester"):
            return _xml_error(400, "MalformedXML", "Payer must be BucketOwner or Requester")
        with _lock:
            _payer[key] = value
        return Response(200, [], b"")
    with _lock:
        payer = _payer.get(key, "BucketOwner")
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<RequestPaymentConfiguration xmlns="{S3_NS}"><Payer>{payer}</Payer></RequestPaymentConfiguration>'
    return Response(200, [("Content-Type", "application/xml")], body)
