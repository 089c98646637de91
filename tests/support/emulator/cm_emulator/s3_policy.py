"""S3 (restXml, signing name `s3`): PutBucketPolicy's answer.

moto 5.2.5 stores the policy and answers `200` with the body `True`, which is not XML; AWS
answers `204 No Content` with an empty body (S3 API Reference, PutBucketPolicy). moto's
answer is rewritten when it succeeds; its errors are passed on. The bucket policies that
trail_delivery and config read are the ones stored here, by moto.
"""

import re

from .wire import call_moto

SIGNING_NAMES = ("s3",)


def reset():
    pass


def handle(req):
    if req.method != "PUT" or re.search(r"(^|&)policy(=|&|$)", req.query_string) is None:
        return None
    answer = call_moto(req.moto, req)
    if answer.status == 200:
        answer.status = 204
        answer.body = b""
        answer.headers = [(k, v) for k, v in answer.headers if k.lower() != "content-type"]
    return answer
