"""AWS CloudTrail (awsJson1_1, signing name `cloudtrail`): one correction to moto 5.2.5.

- CreateTrail / UpdateTrail with KmsKeyId: moto keeps the value as given, so a trail made
  with `alias/name` answers `alias/name` ever after (in the response, DescribeTrails and
  GetTrail). AWS resolves the alias, alias ARN or key id to the key when the trail is created
  or updated and answers "a fully specified ARN to a KMS key"
  (`arn:aws:kms:<region>:<account>:key/<id>`): the trail keeps using that key when the
  alias is later deleted or moved to another key. Here the request's KmsKeyId is replaced by
  the key's ARN, from moto's KMS backend of the caller's account and the trail's Region,
  before moto sees it. A key or alias that does not exist there is answered 400
  KmsKeyNotFoundException (the model's error for it). A key ARN, which may name another
  account's key, and an empty KmsKeyId are passed on as given.

This module reads moto's KMS backend directly (moto 5.2.5 is pinned).
"""

import json

from moto.kms.models import kms_backends

from .wire import Response

SIGNING_NAMES = ("cloudtrail",)
OPERATIONS = ("CreateTrail", "UpdateTrail")


def reset():
    pass


def _key_arn(account, region, key):
    backend = kms_backends[account][region]
    try:
        key_id = backend.any_id_to_key_id(key)
    except Exception:  # an alias moto does not know: any_id_to_key_id fails on None
        return None
    found = backend.keys.get(key_id) if key_id else None
    return found.arn if found is not None else None


def handle(req):
    target = req.header("X-Amz-Target") or ""
    if target.rpartition(".")[2] not in OPERATIONS:
        return None
    try:
        body = req.json()
    except ValueError:
        return None
    key = body.get("KmsKeyId")
    if not isinstance(key, str) or not key or (key.startswith("arn:") and ":key/" in key):
        return None  # a key ARN is kept as given (it may name another account's key)
    arn = _key_arn(req.account, req.region, key)
    if arn is None:
        doc = {"__type": "KmsKeyNotFoundException", "message": f"KMS key {key} does not exist in {req.region}."}
        return Response(400, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", "KmsKeyNotFoundException")],
                        json.dumps(doc))
    if arn != key:
        body["KmsKeyId"] = arn
        req.set_body(json.dumps(body).encode())
    return None
