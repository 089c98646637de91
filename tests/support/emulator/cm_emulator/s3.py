"""S3 (restXml, signing name `s3`).

Implemented (moto 5.2.5 lacks it):
- GetBucketRequestPayment / PutBucketRequestPayment (`?requestPayment`): moto answers the GET
  with a ListObjects body and the PUT as CreateBucket. Kept per account and bucket
  (`<RequestPaymentConfiguration><Payer>`), default `BucketOwner`.

Corrected (moto answers, but not as AWS does):
- GetBucketVersioning: moto's root element is `GetBucketVersioningResponse`; AWS's, and what
  strict clients parse, is `VersioningConfiguration`. moto's answer is rewritten.
"""

import re
import threading

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
    return None


def _xml_error(status, code, message):
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return Response(status, [("Content-Type", "application/xml")], body)


def request_payment(req):
    bucket = req.path.strip("/").split("/")[0]
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
