"""What the delivery checks of CloudTrail (trail_delivery) and AWS Config (config) read from
moto's state, and the requests AWS's services make when they deliver: the S3 bucket (in any
account, as bucket names are global), its policy and default encryption; a KMS key and its
policy; an IAM role, its trust policy and identity policies. Test support only; reads moto
5.2.5's backends directly (pinned).
"""

import json

from moto.iam.models import iam_backends
from moto.kms.models import kms_backends
from moto.s3.models import s3_backends
from moto.utilities.utils import get_partition

from . import policy
from .wire import Response, error_status, service_model

SECURE = {"aws:SecureTransport": True}  # AWS services reach S3 and KMS over TLS


def partition(region):
    return get_partition(region)


def json_error(botocore_name, code, message):
    """An awsJson error answer, with the model's HTTP status for `code`."""
    model = service_model(botocore_name)
    ctype = f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.0')}"
    return Response(error_status(model, code), [("Content-Type", ctype), ("x-amzn-ErrorType", code)],
                    json.dumps({"__type": code, "message": message}))


# ---------------------------------------------------------------- S3


class Bucket:
    def __init__(self, name, account, part, moto_bucket):
        self.name = name
        self.account = account
        self.partition = part
        self.moto = moto_bucket

    @property
    def arn(self):
        return f"arn:{self.partition}:s3:::{self.name}"

    def object_arn(self, key):
        return f"{self.arn}/{key}"

    @property
    def policy(self):
        """The bucket policy (text), or None."""
        raw = self.moto.policy
        if raw is None:
            return None
        return raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw

    def bucket_key_kms(self):
        """Whether the default encryption is SSE-KMS (or DSSE-KMS) with an S3 Bucket Key."""
        enc = self.moto.encryption or {}
        rules = enc.get("Rule")
        for rule in rules if isinstance(rules, list) else [rules]:
            if not isinstance(rule, dict):
                continue
            default = rule.get("ApplyServerSideEncryptionByDefault") or {}
            if str(default.get("SSEAlgorithm", "")).startswith("aws:kms") and str(rule.get("BucketKeyEnabled", "")).lower() == "true":
                return True
        return False


def find_bucket(name):
    """The bucket of that name in whichever account holds it, or None."""
    where = s3_backends.bucket_accounts.get(name)
    if where is None:
        return None
    part, account = where
    found = s3_backends[account][part].buckets.get(name)
    return Bucket(name, account, part, found) if found is not None else None


# ---------------------------------------------------------------- KMS


class Key:
    def __init__(self, moto_key):
        self.moto = moto_key

    @property
    def arn(self):
        return self.moto.arn

    @property
    def account(self):
        return self.moto.account_id

    @property
    def enabled(self):
        return self.moto.key_state == "Enabled"

    @property
    def policy(self):
        return self.moto.policy


def find_key(arn):
    """The key a key ARN or an alias ARN names (in the ARN's account and Region), or None."""
    parts = arn.split(":", 5) if isinstance(arn, str) else []
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "kms":
        return None
    account, region, resource = parts[4], parts[3], parts[5]
    try:
        backend = kms_backends[account][region]
    except Exception:  # a Region moto does not know
        return None
    if resource.startswith("key/"):
        found = backend.keys.get(resource[len("key/"):])
    elif resource.startswith("alias/"):
        key_id = backend.get_key_id_from_alias(resource)
        found = backend.keys.get(key_id) if key_id else None
    else:
        found = None
    return Key(found) if found is not None else None


# ---------------------------------------------------------------- IAM


class Role:
    def __init__(self, moto_role):
        self.moto = moto_role

    @property
    def arn(self):
        return self.moto.arn

    @property
    def trust_policy(self):
        return self.moto.assume_role_policy_document

    def identity_policies(self):
        """The role's inline policies and the default version of each attached managed policy."""
        docs = list(self.moto.policies.values())
        for managed in self.moto.managed_policies.values():
            for version in managed.versions:
                if version.version_id == managed.default_version_id:
                    docs.append(version.document)
        return [d if isinstance(d, (dict, str)) else str(d) for d in docs]

    def principal(self):
        return policy.Principal.aws(self.arn)


def is_service_linked(role_arn):
    return ":role/aws-service-role/" in role_arn


def find_role(role_arn):
    parts = role_arn.split(":", 5) if isinstance(role_arn, str) else []
    if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
        return None
    try:
        backend = iam_backends[parts[4]][parts[1]]
        return Role(backend.get_role_by_arn(role_arn))
    except Exception:  # no such role (moto raises NotFoundException)
        return None


# ---------------------------------------------------------------- what a service principal may do


def service_request(service, action, resource, source_account, source_arn, **context):
    """A request AWS's `service` makes on behalf of a resource of `source_account`: the
    service principal, with aws:SourceAccount, aws:SourceArn and the keys AWS sets for
    service principals."""
    ctx = {"aws:SourceAccount": source_account, "aws:SourceArn": source_arn, "aws:PrincipalIsAWSService": True,
           "aws:PrincipalServiceName": service, **SECURE}
    ctx.update(context)
    return policy.Request(policy.Principal.service(service), action, resource, ctx)


def role_request(role, action, resource, **context):
    ctx = {"aws:PrincipalArn": role.arn, "aws:PrincipalAccount": role.arn.split(":")[4],
           "aws:PrincipalIsAWSService": False, **SECURE}
    ctx.update(context)
    return policy.Request(role.principal(), action, resource, ctx)


def resource_allows(document, request):
    """Whether a resource policy (None: no policy) allows a service principal's request.
    A policy AWS could not have accepted allows nothing."""
    if document is None:
        return False
    try:
        return policy.evaluate(document, request) == policy.ALLOW
    except policy.PolicyError:
        return False


def decide(request, resource_document, resource_account, identity_documents=(), key_policy=False):
    """`policy.decide`, where a document AWS could not have accepted allows nothing."""
    try:
        return policy.decide(request, resource_document, resource_account, identity_documents, key_policy)
    except policy.PolicyError:
        return False
