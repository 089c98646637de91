"""AWS Security Hub (restJson1, signing name `securityhub`).

moto 5.2.5 has only enable/describe/disable hub, findings, members and organization admin.
It lacks standards, controls, finding aggregators, automation rules and tagging, and its hub
operations differ from AWS (a second EnableSecurityHub succeeds instead of
ResourceConflictException; DescribeHub ignores the `HubArn` query parameter and always reports
ControlFindingGenerator SECURITY_CONTROL; there is no UpdateSecurityHubConfiguration). So that
hub state (HubArn `arn:aws:securityhub:<region>:<account>:hub/default`, SubscribedAt,
AutoEnableControls, ControlFindingGenerator) and tags live in one place, this module owns the
hub and answers, per account and region:

- EnableSecurityHub (Tags, EnableDefaultStandards, ControlFindingGenerator): once per account
  and Region; again is 409 ResourceConflictException "Account is already subscribed to
  Security Hub" (AWS's text; tools match on it) and changes nothing. DescribeHub,
  UpdateSecurityHubConfiguration, DisableSecurityHub (drops the account+region's standards,
  controls, rules, aggregator and tags), GetAdministratorAccount (hub check here, the answer
  from moto's organization state, its `InvitedAt` made RFC 3339 as the model's iso8601 says).
- TagResource / UntagResource / ListTagsForResource for any securityhub ARN of the caller's
  account and region.
- BatchEnableStandards / BatchDisableStandards / GetEnabledStandards, with the subscription's
  PENDING period (below).
- BatchGetStandardsControlAssociations / BatchUpdateStandardsControlAssociations /
  ListStandardsControlAssociations / UpdateStandardsControl: a control of an enabled standard
  is ENABLED unless it was disabled. Only a catalogued standard has controls: FSBP v1.0.0,
  whose control ids are FSBP_CONTROLS below (a subset of AWS's; add a control there before a
  test uses it).
- Create/List/Get/Update/DeleteFindingAggregator: one per account (its Region is the
  aggregation Region); update and delete only from that Region.
- Create/List/BatchGet/BatchUpdate/BatchDeleteAutomationRules: Criteria and Actions kept as
  sent, so they round-trip.

Before EnableSecurityHub every one of these answers 401 InvalidAccessException "Account <id>
is not subscribed to AWS Security Hub", as AWS does. Errors carry `x-amzn-ErrorType`, and the
body has `__type`, `message` and the model's own `Message`/`Code` members.
Other securityhub operations (findings, members, organization) still reach moto.

A standard just enabled is PENDING, then READY (always on; length set by the hook below).
BatchEnableStandards (and EnableSecurityHub's default standards) start a subscription
`StandardsStatus` PENDING, `StandardsControlsUpdatable` NOT_READY_FOR_UPDATES, for
`pending_seconds` (default PENDING_SECONDS = 3); GetEnabledStandards then reports it READY,
READY_FOR_UPDATES. The botocore model (the API Reference) documents what a subscription that
is NOT_READY_FOR_UPDATES does to control calls: BatchGetStandardsControlAssociations and
BatchUpdateStandardsControlAssociations (member StandardsControlAssociationUpdates) "return a
RESOURCE_NOT_FOUND_EXCEPTION error", UpdateStandardsControl likewise, and
ListStandardsControlAssociations "omits" such subscriptions. The two batch operations list no
ResourceNotFoundException among their errors and answer each item in Unprocessed... with an
UnprocessedErrorCode, whose RESOURCE_NOT_FOUND replaced NOT_FOUND (deprecated); so here:
- BatchGet/BatchUpdateStandardsControlAssociations: HTTP 200, each association of a PENDING
  standard in UnprocessedAssociations / UnprocessedAssociationUpdates, ErrorCode
  RESOURCE_NOT_FOUND (ErrorReason this module's own text: match on the code).
- UpdateStandardsControl: HTTP 404 ResourceNotFoundException "StandardsControl not found" (the
  text AWS gives for a control it does not find, as users report it; DISABLED without
  DisabledReason is 400 InvalidInputException, the model says one is required).
- ListStandardsControlAssociations: the PENDING standard is left out.
- BatchDisableStandards of a PENDING subscription: HTTP 400 InvalidInputException
  "StandardsSubscription(s) in state PENDING, please try later: [\"<subscription ARN>\"]"
  (AWS's text, as reported in aws-samples/aws-control-tower-securityhub-enabler#18); nothing
  is disabled.
Control ids the standard does not have (and any control of an uncatalogued standard) are not
processed either, as on AWS: per item, ErrorCode RESOURCE_NOT_FOUND; UpdateStandardsControl
404 ResourceNotFoundException. A malformed item is INVALID_INPUT; a standard not enabled,
RESOURCE_NOT_FOUND.

Request rates (always on; the hook can switch them off). The API Reference's throttling limits
(botocore's service documentation), per account, Region and operation, as token buckets:
BatchEnableStandards 1 request per second, burst 1; UpdateStandardsControl 1, burst 5;
GetFindings 3, burst 6; BatchImportFindings and BatchUpdateFindings 10, burst 30; every other
operation (EnableSecurityHub, GetEnabledStandards, BatchUpdateStandardsControlAssociations,
...) 10, burst 30 (RATE_LIMITS, OTHER_RATE_LIMIT). Every request counts, those AWS then refuses
too. Over the rate: HTTP 429, `x-amzn-ErrorType: TooManyRequestsException`, body
`{"message": "Too Many Requests"}` - what Security Hub's front end answers (users report
TooManyRequestsException "Too Many Requests" from GetFindings and UpdateStandardsControl, e.g.
prowler-cloud/prowler#5004, aws-samples/aws-secure-environment-accelerator#1024). The code is
not in the securityhub model; the SDKs retry it as throttling by its name (botocore's standard
and legacy modes, aws-smithy's THROTTLING_ERRORS).

Test hook (no AWS counterpart): `POST /cm-emulator/securityhub` with JSON
`{"pending_seconds": 0, "rate_limits": false}`, each member optional (an omitted one keeps its
value); `pending_seconds` (0 to 3600) applies to standards enabled from then on; each POST
empties the rate buckets. `GET` answers `{"pending_seconds", "rate_limits", "throttled",
"throttled_by_operation": {"<Operation>": n}}` (requests refused since the last POST or
reset). `POST /moto-api/reset` restores the defaults (3 seconds, rates on).
"""

import json
import re
import threading
import time
import uuid

from .wire import (ApiError, Response, RestJsonService, _rest_match, call_moto, hook_answer, iso, now, object_hook_request,
                   paginate)

SIGNING_NAMES = ("securityhub",)

FSBP = "aws-foundational-security-best-practices/v/1.0.0"
CIS_120 = "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0"

# AWS Foundational Security Best Practices v1.0.0: control id -> title.
FSBP_CONTROLS = {
    "Account.1": "Security contact information should be provided for an AWS account",
    "ACM.1": "Imported and ACM-issued certificates should be renewed after a specified time period",
    "APIGateway.1": "API Gateway REST and WebSocket API execution logging should be enabled",
    "AutoScaling.1": "Auto Scaling groups associated with a load balancer should use ELB health checks",
    "CloudFront.1": "CloudFront distributions should have a default root object configured",
    "CloudTrail.1": "CloudTrail should be enabled and configured with at least one multi-Region trail that includes read and write management events",
    "CloudTrail.2": "CloudTrail should have encryption at-rest enabled",
    "CloudTrail.4": "CloudTrail log file validation should be enabled",
    "CloudTrail.5": "CloudTrail trails should be integrated with Amazon CloudWatch Logs",
    "CodeBuild.1": "CodeBuild Bitbucket source repository URLs should not contain sensitive credentials",
    "Config.1": "AWS Config should be enabled and use the service-linked role for resource recording",
    "DynamoDB.1": "DynamoDB tables should automatically scale capacity with demand",
    "EC2.1": "Amazon EBS snapshots should not be publicly restorable",
    "EC2.2": "VPC default security groups should not allow inbound or outbound traffic",
    "EC2.3": "Attached Amazon EBS volumes should be encrypted at-rest",
    "EC2.6": "VPC flow logging should be enabled in all VPCs",
    "EC2.7": "EBS default encryption should be enabled",
    "EC2.8": "EC2 instances should use Instance Metadata Service Version 2 (IMDSv2)",
    "EC2.9": "Amazon EC2 instances should not have a public IPv4 address",
    "EC2.10": "Amazon EC2 should be configured to use VPC endpoints that are created for the Amazon EC2 service",
    "EC2.19": "Security groups should not allow unrestricted access to ports with high risk",
    "ECR.1": "ECR private repositories should have image scanning configured",
    "ECS.1": "Amazon ECS task definitions should have secure networking modes and user definitions",
    "EFS.1": "Elastic File System should be configured to encrypt file data at-rest using AWS KMS",
    "EKS.1": "EKS cluster endpoints should not be publicly accessible",
    "ELB.1": "Application Load Balancer should be configured to redirect all HTTP requests to HTTPS",
    "GuardDuty.1": "GuardDuty should be enabled",
    "IAM.1": "IAM policies should not allow full \"*\" administrative privileges",
    "IAM.2": "IAM users should not have IAM policies attached",
    "IAM.3": "IAM users' access keys should be rotated every 90 days or less",
    "IAM.4": "IAM root user access key should not exist",
    "IAM.5": "MFA should be enabled for all IAM users that have a console password",
    "IAM.6": "Hardware MFA should be enabled for the root user",
    "IAM.7": "Password policies for IAM users should have strong configurations",
    "IAM.8": "Unused IAM user credentials should be removed",
    "IAM.21": "IAM customer managed policies that you create should not allow wildcard actions for services",
    "KMS.1": "IAM customer managed policies should not allow decryption actions on all KMS keys",
    "KMS.2": "IAM principals should not have IAM inline policies that allow decryption actions on all KMS keys",
    "KMS.3": "AWS KMS keys should not be deleted unintentionally",
    "KMS.4": "AWS KMS key rotation should be enabled",
    "Lambda.1": "Lambda function policies should prohibit public access",
    "Lambda.2": "Lambda functions should use supported runtimes",
    "RDS.1": "RDS snapshot should be private",
    "RDS.2": "RDS DB Instances should prohibit public access, as determined by the PubliclyAccessible configuration",
    "RDS.3": "RDS DB instances should have encryption at-rest enabled",
    "S3.1": "S3 general purpose buckets should have block public access settings enabled",
    "S3.2": "S3 general purpose buckets should block public read access",
    "S3.3": "S3 general purpose buckets should block public write access",
    "S3.5": "S3 general purpose buckets should require requests to use SSL",
    "S3.8": "S3 general purpose buckets should block public access",
    "S3.9": "S3 general purpose buckets should have server access logging enabled",
    "SecretsManager.1": "Secrets Manager secrets should have automatic rotation enabled",
    "SNS.1": "SNS topics should be encrypted at-rest using AWS KMS",
    "SQS.1": "Amazon SQS queues should be encrypted at rest",
    "SSM.1": "Amazon EC2 instances should be managed by AWS Systems Manager",
}

CONTROL_ID = re.compile(r"^[A-Za-z][A-Za-z0-9]*\.\d+$")
STANDARD = re.compile(r"^arn:aws:securityhub:([a-z0-9-]*)::(standards|ruleset)/(.+)$")
# arn:aws:securityhub:<region>:<account>:control/<standard's path>/<control id>
CONTROL_ARN = re.compile(r"^arn:aws:securityhub:([a-z0-9-]+):(\d{12}):control/(.+)/([^/]+)$")
LINKING_MODES = ("ALL_REGIONS", "ALL_REGIONS_EXCEPT_SPECIFIED", "SPECIFIED_REGIONS", "NO_REGIONS")

# Request rates: operation -> (requests per second, burst), per account, Region and operation.
# The Security Hub API Reference's throttling limits (the service documentation of botocore's
# securityhub 2018-10-26 model); every operation not named here: OTHER_RATE_LIMIT.
RATE_LIMITS = {
    "BatchEnableStandards": (1, 1),
    "GetFindings": (3, 6),
    "BatchImportFindings": (10, 30),
    "BatchUpdateFindings": (10, 30),
    "UpdateStandardsControl": (1, 5),
}
OTHER_RATE_LIMIT = (10, 30)
# How long a standard just enabled stays PENDING (seconds); see the module docstring.
PENDING_SECONDS = 3.0
DEFAULT_SETTINGS = {"pending_seconds": PENDING_SECONDS, "rate_limits": True}

_lock = threading.RLock()
_hubs = {}  # (account, region) -> hub state, see _Hub
_aggregators = {}  # account -> {"arn", "region", "mode", "regions"}
_settings = dict(DEFAULT_SETTINGS)  # the test hook's settings
_buckets = {}  # (account, region, operation) -> [tokens, time.monotonic() of the last refill]
_throttled = {}  # operation -> requests answered TooManyRequestsException since the last reset or hook POST


class _Hub:
    def __init__(self, account, region, generator):
        self.arn = f"arn:aws:securityhub:{region}:{account}:hub/default"
        self.subscribed_at = now()
        self.auto_enable_controls = True
        self.generator = generator
        self.standards = {}  # standards arn -> _Subscription
        self.controls = {}  # (standards arn, control id) -> {"status", "reason", "updated"}
        self.rules = {}  # rule arn -> rule
        self.tags = {}  # resource arn -> {key: value}


class _Subscription:
    """A standard enabled in a hub: PENDING (its controls not ready for updates) until
    `ready_at`, READY after."""

    def __init__(self, arn, pending_seconds):
        self.arn = arn
        self.enabled_at = now()
        self.ready_at = self.enabled_at + pending_seconds

    def status(self):
        return "READY" if now() >= self.ready_at else "PENDING"


def reset():
    with _lock:
        _hubs.clear()
        _aggregators.clear()
        _buckets.clear()
        _settings.clear()
        _settings.update(DEFAULT_SETTINGS)
        _throttled.clear()


def _invalid_input(message):
    return ApiError("InvalidInputException", message)


def _not_subscribed(account):
    return ApiError("InvalidAccessException", f"Account {account} is not subscribed to AWS Security Hub")


def _hub(req):
    hub = _hubs.get((req.account, req.region))
    if hub is None:
        raise _not_subscribed(req.account)
    return hub


# ---------------------------------------------------------------- hub


def enable_security_hub(req, p):
    generator = p.get("ControlFindingGenerator") or "SECURITY_CONTROL"
    if generator not in ("STANDARD_CONTROL", "SECURITY_CONTROL"):
        raise _invalid_input(f"Invalid ControlFindingGenerator {generator}")
    key = (req.account, req.region)
    if key in _hubs:
        raise ApiError("ResourceConflictException", "Account is already subscribed to Security Hub")
    hub = _Hub(req.account, req.region, generator)
    tags = p.get("Tags") or {}
    if tags:
        hub.tags[hub.arn] = dict(tags)
    if p.get("EnableDefaultStandards", True):
        for arn in (_fsbp_arn(req.region), CIS_120):
            hub.standards[arn] = _Subscription(_subscription_arn(req, arn), _settings["pending_seconds"])
    _hubs[key] = hub
    return {}


def describe_hub(req, p):
    hub = _hub(req)
    if p.get("HubArn") and p["HubArn"] != hub.arn:
        raise ApiError("ResourceNotFoundException", f"The request was rejected because no hub was found with ARN {p['HubArn']}.")
    return {
        "HubArn": hub.arn,
        "SubscribedAt": iso(hub.subscribed_at),
        "AutoEnableControls": hub.auto_enable_controls,
        "ControlFindingGenerator": hub.generator,
    }


def update_security_hub_configuration(req, p):
    hub = _hub(req)
    generator = p.get("ControlFindingGenerator")
    if generator is not None:
        if generator not in ("STANDARD_CONTROL", "SECURITY_CONTROL"):
            raise _invalid_input(f"Invalid ControlFindingGenerator {generator}")
        hub.generator = generator
    if p.get("AutoEnableControls") is not None:
        hub.auto_enable_controls = bool(p["AutoEnableControls"])
    return {}


def disable_security_hub(req, p):
    _hub(req)
    del _hubs[(req.account, req.region)]
    agg = _aggregators.get(req.account)
    if agg and agg["region"] == req.region:
        del _aggregators[req.account]
    return {}


def get_administrator_account(req, p):
    _hub(req)
    answer = call_moto(req.moto, req)
    # moto writes InvitedAt without a UTC offset; the model's iso8601 needs RFC 3339.
    answer.body = re.sub(rb'("InvitedAt": "[0-9T:.-]+)"', rb'\1Z"', answer.body)
    return answer


# ---------------------------------------------------------------- tags


def _check_arn(req, hub, arn):
    prefix = f"arn:aws:securityhub:{req.region}:{req.account}:"
    if not arn.startswith(prefix) or len(arn) == len(prefix):
        raise ApiError("ResourceNotFoundException", f"Resource {arn} not found")
    if ":automation-rule/" in arn and arn not in hub.rules:
        raise ApiError("ResourceNotFoundException", f"Automation rule {arn} not found")


def tag_resource(req, p):
    hub = _hub(req)
    arn = p["ResourceArn"]
    _check_arn(req, hub, arn)
    tags = p["Tags"]
    if not isinstance(tags, dict) or not tags:
        raise _invalid_input("Tags must be a non-empty map")
    hub.tags.setdefault(arn, {}).update(tags)
    return {}


def untag_resource(req, p):
    hub = _hub(req)
    arn = p["ResourceArn"]
    _check_arn(req, hub, arn)
    for key in p["TagKeys"]:
        hub.tags.get(arn, {}).pop(key, None)
    return {}


def list_tags_for_resource(req, p):
    hub = _hub(req)
    arn = p["ResourceArn"]
    _check_arn(req, hub, arn)
    return {"Tags": dict(hub.tags.get(arn, {}))}


# ---------------------------------------------------------------- standards


def _fsbp_arn(region):
    return f"arn:aws:securityhub:{region}::standards/{FSBP}"


def _subscription_arn(req, standards_arn):
    m = STANDARD.match(standards_arn)
    return f"arn:aws:securityhub:{req.region}:{req.account}:subscription/{m.group(3)}"


def _valid_standard(req, arn):
    m = STANDARD.match(arn or "")
    if not m or (m.group(1) not in ("", req.region)) or (m.group(2) == "ruleset") != (m.group(1) == ""):
        return False
    return True


def _subscription(standards_arn, subscription_arn, status):
    return {
        "StandardsSubscriptionArn": subscription_arn,
        "StandardsArn": standards_arn,
        "StandardsInput": {},
        "StandardsStatus": status,
        "StandardsControlsUpdatable": "READY_FOR_UPDATES" if status == "READY" else "NOT_READY_FOR_UPDATES",
    }


def batch_enable_standards(req, p):
    hub = _hub(req)
    requests = p["StandardsSubscriptionRequests"]
    if not requests or len(requests) > 25:
        raise _invalid_input("StandardsSubscriptionRequests must have 1 to 25 items")
    for r in requests:
        if not _valid_standard(req, r.get("StandardsArn")):
            raise _invalid_input(f"Invalid StandardsArn {r.get('StandardsArn')} for region {req.region}")
    out = []
    for r in requests:
        arn = r["StandardsArn"]
        if arn not in hub.standards:
            hub.standards[arn] = _Subscription(_subscription_arn(req, arn), _settings["pending_seconds"])
        sub = _subscription(arn, hub.standards[arn].arn, hub.standards[arn].status())
        sub["StandardsInput"] = dict(r.get("StandardsInput") or {})
        out.append(sub)
    return {"StandardsSubscriptions": out}


def batch_disable_standards(req, p):
    hub = _hub(req)
    arns = p["StandardsSubscriptionArns"]
    by_sub = {sub.arn: std for std, sub in hub.standards.items()}
    if not arns or len(arns) > 25:
        raise _invalid_input("StandardsSubscriptionArns must have 1 to 25 items")
    for arn in arns:
        if arn not in by_sub:
            raise _invalid_input(f"Standards subscription {arn} does not exist")
    pending = [arn for arn in arns if hub.standards[by_sub[arn]].status() == "PENDING"]
    if pending:
        raise _invalid_input(f"StandardsSubscription(s) in state PENDING, please try later: {json.dumps(pending)}")
    out = []
    for arn in arns:
        std = by_sub[arn]
        del hub.standards[std]
        for key in [k for k in hub.controls if k[0] == std]:
            del hub.controls[key]
        out.append(_subscription(std, arn, "DELETING"))
    return {"StandardsSubscriptions": out}


def get_enabled_standards(req, p):
    hub = _hub(req)
    wanted = p.get("StandardsSubscriptionArns")
    subs = [_subscription(std, sub.arn, sub.status()) for std, sub in hub.standards.items() if not wanted or sub.arn in wanted]
    page, token = paginate(subs, p.get("NextToken"), p.get("MaxResults"), lambda: _invalid_input("Invalid NextToken"))
    out = {"StandardsSubscriptions": page}
    if token:
        out["NextToken"] = token
    return out


# ---------------------------------------------------------------- controls


def _is_fsbp(std):
    return std.endswith("::standards/" + FSBP)


def _in_standard(std, control):
    """Whether the standard has the control: only standards catalogued here have controls."""
    return _is_fsbp(std) and control in FSBP_CONTROLS


def _association(req, hub, std, control, with_arns=False):
    state = hub.controls.get((std, control), {"status": "ENABLED", "updated": hub.standards[std].enabled_at})
    path = STANDARD.match(std).group(3)
    out = {
        "StandardsArn": std,
        "SecurityControlId": control,
        "SecurityControlArn": f"arn:aws:securityhub:{req.region}:{req.account}:security-control/{control}",
        "AssociationStatus": state["status"],
        "RelatedRequirements": [],
        "UpdatedAt": iso(state["updated"]),
    }
    if state.get("reason"):
        out["UpdatedReason"] = state["reason"]
    if control in FSBP_CONTROLS and _is_fsbp(std):
        out["StandardsControlTitle"] = FSBP_CONTROLS[control]
    if with_arns:
        out["StandardsControlArns"] = [f"arn:aws:securityhub:{req.region}:{req.account}:control/{path}/{control}"]
    return out


def _association_problem(hub, std, control):
    """(ErrorCode, ErrorReason) of a well-formed association AWS would not process, or None."""
    sub = hub.standards.get(std)
    if sub is None:
        return "RESOURCE_NOT_FOUND", f"Standard {std} is not enabled"
    if sub.status() != "READY":
        return "RESOURCE_NOT_FOUND", f"Standards subscription {sub.arn} is not ready for updates (NOT_READY_FOR_UPDATES)"
    if not _in_standard(std, control):
        return "RESOURCE_NOT_FOUND", f"Control {control} was not found in standard {std}"
    return None


def batch_get_standards_control_associations(req, p):
    hub = _hub(req)
    ids = p["StandardsControlAssociationIds"]
    if not ids or len(ids) > 100:
        raise _invalid_input("StandardsControlAssociationIds must have 1 to 100 items")
    details, unprocessed = [], []
    for item in ids:
        std, control = item.get("StandardsArn"), item.get("SecurityControlId")
        if not std or not control or not CONTROL_ID.match(control):
            problem = ("INVALID_INPUT", "Invalid SecurityControlId or StandardsArn")
        else:
            problem = _association_problem(hub, std, control)
        if problem:
            unprocessed.append({"StandardsControlAssociationId": item, "ErrorCode": problem[0], "ErrorReason": problem[1]})
        else:
            details.append(_association(req, hub, std, control, with_arns=True))
    out = {"StandardsControlAssociationDetails": details}
    if unprocessed:
        out["UnprocessedAssociations"] = unprocessed
    return out


def batch_update_standards_control_associations(req, p):
    hub = _hub(req)
    updates = p["StandardsControlAssociationUpdates"]
    if not updates or len(updates) > 100:
        raise _invalid_input("StandardsControlAssociationUpdates must have 1 to 100 items")
    unprocessed = []
    for u in updates:
        std, control, status = u.get("StandardsArn"), u.get("SecurityControlId"), u.get("AssociationStatus")
        if not std or not control or not CONTROL_ID.match(control) or status not in ("ENABLED", "DISABLED"):
            problem = ("INVALID_INPUT", "Invalid SecurityControlId, StandardsArn or AssociationStatus")
        else:
            problem = _association_problem(hub, std, control)
        if problem:
            unprocessed.append({"StandardsControlAssociationUpdate": u, "ErrorCode": problem[0], "ErrorReason": problem[1]})
        else:
            hub.controls[(std, control)] = {"status": status, "reason": u.get("UpdatedReason"), "updated": now()}
    out = {}
    if unprocessed:
        out["UnprocessedAssociationUpdates"] = unprocessed
    return out


def update_standards_control(req, p):
    hub = _hub(req)
    status = p.get("ControlStatus")
    if status is not None and status not in ("ENABLED", "DISABLED"):
        raise _invalid_input(f"Invalid ControlStatus {status}")
    if status == "DISABLED" and not p.get("DisabledReason"):
        raise _invalid_input("DisabledReason is required when ControlStatus is DISABLED")
    m = CONTROL_ARN.match(p["StandardsControlArn"])
    std = None
    if m and m.group(1) == req.region and m.group(2) == req.account:
        std = next((s for s in hub.standards if STANDARD.match(s).group(3) == m.group(3)), None)
    if std is None or _association_problem(hub, std, m.group(4)):
        raise ApiError("ResourceNotFoundException", "StandardsControl not found")
    if status is not None:
        reason = p.get("DisabledReason") if status == "DISABLED" else None
        hub.controls[(std, m.group(4))] = {"status": status, "reason": reason, "updated": now()}
    return {}


def list_standards_control_associations(req, p):
    hub = _hub(req)
    control = p["SecurityControlId"]
    if not CONTROL_ID.match(control):
        raise _invalid_input(f"Invalid SecurityControlId {control}")
    # subscriptions not ready for updates are left out, as AWS documents
    items = [_association(req, hub, std, control) for std in hub.standards if not _association_problem(hub, std, control)]
    page, token = paginate(items, p.get("NextToken"), p.get("MaxResults"), lambda: _invalid_input("Invalid NextToken"))
    out = {"StandardsControlAssociationSummaries": page}
    if token:
        out["NextToken"] = token
    return out


# ---------------------------------------------------------------- finding aggregator


def _check_linking(p):
    mode, regions = p.get("RegionLinkingMode"), p.get("Regions")
    if mode not in LINKING_MODES:
        raise _invalid_input(f"Invalid RegionLinkingMode {mode}")
    if mode in ("ALL_REGIONS", "NO_REGIONS") and regions:
        raise _invalid_input(f"Regions cannot be specified when RegionLinkingMode is {mode}")
    if mode in ("ALL_REGIONS_EXCEPT_SPECIFIED", "SPECIFIED_REGIONS") and not regions:
        raise _invalid_input(f"Regions must be specified when RegionLinkingMode is {mode}")
    return mode, list(regions or [])


def _aggregator_out(agg):
    out = {"FindingAggregatorArn": agg["arn"], "FindingAggregationRegion": agg["region"], "RegionLinkingMode": agg["mode"]}
    if agg["regions"]:
        out["Regions"] = list(agg["regions"])
    return out


def _aggregator(req, arn, same_region):
    agg = _aggregators.get(req.account)
    if agg is None or agg["arn"] != arn:
        raise ApiError("ResourceNotFoundException", f"Finding aggregator {arn} not found")
    if same_region and agg["region"] != req.region:
        raise _invalid_input(f"Finding aggregator {arn} can only be changed from its aggregation Region {agg['region']}")
    return agg


def create_finding_aggregator(req, p):
    _hub(req)
    mode, regions = _check_linking(p)
    if req.account in _aggregators:
        raise _invalid_input("A finding aggregator already exists for this account")
    arn = f"arn:aws:securityhub:{req.region}:{req.account}:finding-aggregator/{uuid.uuid4()}"
    _aggregators[req.account] = {"arn": arn, "region": req.region, "mode": mode, "regions": regions}
    return _aggregator_out(_aggregators[req.account])


def list_finding_aggregators(req, p):
    _hub(req)
    agg = _aggregators.get(req.account)
    return {"FindingAggregators": [{"FindingAggregatorArn": agg["arn"]}] if agg else []}


def get_finding_aggregator(req, p):
    _hub(req)
    return _aggregator_out(_aggregator(req, p["FindingAggregatorArn"], same_region=False))


def update_finding_aggregator(req, p):
    _hub(req)
    agg = _aggregator(req, p["FindingAggregatorArn"], same_region=True)
    agg["mode"], agg["regions"] = _check_linking(p)
    return _aggregator_out(agg)


def delete_finding_aggregator(req, p):
    _hub(req)
    _aggregator(req, p["FindingAggregatorArn"], same_region=True)
    del _aggregators[req.account]
    return {}


# ---------------------------------------------------------------- automation rules

RULE_FIELDS = ("RuleStatus", "RuleOrder", "RuleName", "Description", "IsTerminal", "Criteria", "Actions")


def _check_rule(p, partial=False):
    if "RuleOrder" in p and p["RuleOrder"] is not None:
        if not isinstance(p["RuleOrder"], int) or not 1 <= p["RuleOrder"] <= 1000:
            raise _invalid_input("RuleOrder must be between 1 and 1000")
    if p.get("RuleStatus") is not None and p["RuleStatus"] not in ("ENABLED", "DISABLED"):
        raise _invalid_input(f"Invalid RuleStatus {p['RuleStatus']}")
    if p.get("Actions") is not None and (not isinstance(p["Actions"], list) or not 1 <= len(p["Actions"]) <= 1):
        raise _invalid_input("Actions must have exactly 1 item")
    if p.get("Criteria") is not None and not isinstance(p["Criteria"], dict):
        raise _invalid_input("Criteria must be an object")
    if not partial and not p.get("RuleName"):
        raise _invalid_input("RuleName must not be empty")


def create_automation_rule(req, p):
    hub = _hub(req)
    _check_rule(p)
    if len(hub.rules) >= 100:
        raise ApiError("LimitExceededException", "The maximum number of automation rules (100) has been reached")
    arn = f"arn:aws:securityhub:{req.region}:{req.account}:automation-rule/{uuid.uuid4()}"
    t = now()
    hub.rules[arn] = {
        "RuleArn": arn,
        "RuleStatus": p.get("RuleStatus") or "ENABLED",
        "RuleOrder": p["RuleOrder"],
        "RuleName": p["RuleName"],
        "Description": p["Description"],
        "IsTerminal": bool(p.get("IsTerminal", False)),
        "Criteria": p["Criteria"],
        "Actions": p["Actions"],
        "CreatedAt": t,
        "UpdatedAt": t,
        "CreatedBy": f"arn:aws:iam::{req.account}:root",
    }
    if p.get("Tags"):
        hub.tags[arn] = dict(p["Tags"])
    return {"RuleArn": arn}


def _rule_out(rule, full=True):
    out = {k: rule[k] for k in ("RuleArn", "RuleStatus", "RuleOrder", "RuleName", "Description", "IsTerminal", "CreatedBy")}
    out["CreatedAt"], out["UpdatedAt"] = iso(rule["CreatedAt"]), iso(rule["UpdatedAt"])
    if full:
        out["Criteria"], out["Actions"] = rule["Criteria"], rule["Actions"]
    return out


def _ordered(hub):
    return sorted(hub.rules.values(), key=lambda r: (r["RuleOrder"], r["CreatedAt"]))


def list_automation_rules(req, p):
    hub = _hub(req)
    items = [_rule_out(r, full=False) for r in _ordered(hub)]
    page, token = paginate(items, p.get("NextToken"), p.get("MaxResults"), lambda: _invalid_input("Invalid NextToken"))
    out = {"AutomationRulesMetadata": page}
    if token:
        out["NextToken"] = token
    return out


def _unprocessed(arn):
    return {"RuleArn": arn, "ErrorCode": 404, "ErrorMessage": f"Automation rule {arn} not found"}


def batch_get_automation_rules(req, p):
    hub = _hub(req)
    arns = p["AutomationRulesArns"]
    if not arns or len(arns) > 100:
        raise _invalid_input("AutomationRulesArns must have 1 to 100 items")
    out = {"Rules": [_rule_out(hub.rules[a]) for a in arns if a in hub.rules]}
    missing = [_unprocessed(a) for a in arns if a not in hub.rules]
    if missing:
        out["UnprocessedAutomationRules"] = missing
    return out


def batch_update_automation_rules(req, p):
    hub = _hub(req)
    items = p["UpdateAutomationRulesRequestItems"]
    if not items or len(items) > 100:
        raise _invalid_input("UpdateAutomationRulesRequestItems must have 1 to 100 items")
    for item in items:
        _check_rule(item, partial=True)
    processed, missing = [], []
    for item in items:
        rule = hub.rules.get(item.get("RuleArn"))
        if rule is None:
            missing.append(_unprocessed(item.get("RuleArn")))
            continue
        for field in RULE_FIELDS:
            if item.get(field) is not None:
                rule[field] = item[field]
        rule["UpdatedAt"] = now()
        processed.append(rule["RuleArn"])
    out = {"ProcessedAutomationRules": processed}
    if missing:
        out["UnprocessedAutomationRules"] = missing
    return out


def batch_delete_automation_rules(req, p):
    hub = _hub(req)
    arns = p["AutomationRulesArns"]
    if not arns or len(arns) > 100:
        raise _invalid_input("AutomationRulesArns must have 1 to 100 items")
    processed, missing = [], []
    for arn in arns:
        if hub.rules.pop(arn, None) is None:
            missing.append(_unprocessed(arn))
        else:
            hub.tags.pop(arn, None)
            processed.append(arn)
    out = {"ProcessedAutomationRules": processed}
    if missing:
        out["UnprocessedAutomationRules"] = missing
    return out


# ---------------------------------------------------------------- routing

SERVICE = RestJsonService(
    "securityhub",
    {
        "EnableSecurityHub": enable_security_hub,
        "DescribeHub": describe_hub,
        "UpdateSecurityHubConfiguration": update_security_hub_configuration,
        "DisableSecurityHub": disable_security_hub,
        "GetAdministratorAccount": get_administrator_account,
        "TagResource": tag_resource,
        "UntagResource": untag_resource,
        "ListTagsForResource": list_tags_for_resource,
        "BatchEnableStandards": batch_enable_standards,
        "BatchDisableStandards": batch_disable_standards,
        "GetEnabledStandards": get_enabled_standards,
        "BatchGetStandardsControlAssociations": batch_get_standards_control_associations,
        "BatchUpdateStandardsControlAssociations": batch_update_standards_control_associations,
        "ListStandardsControlAssociations": list_standards_control_associations,
        "UpdateStandardsControl": update_standards_control,
        "CreateFindingAggregator": create_finding_aggregator,
        "ListFindingAggregators": list_finding_aggregators,
        "GetFindingAggregator": get_finding_aggregator,
        "UpdateFindingAggregator": update_finding_aggregator,
        "DeleteFindingAggregator": delete_finding_aggregator,
        "CreateAutomationRule": create_automation_rule,
        "ListAutomationRules": list_automation_rules,
        "BatchGetAutomationRules": batch_get_automation_rules,
        "BatchUpdateAutomationRules": batch_update_automation_rules,
        "BatchDeleteAutomationRules": batch_delete_automation_rules,
    },
    validation_error=_invalid_input,
    message_keys=("message", "Message"),
    code_keys=("Code",),
)


# ---------------------------------------------------------------- request rates


def _allowed(req):
    """Takes a token from the bucket of the request's account, Region and operation; False when
    it is empty (the request is over the rate). Requests no operation of the model fits are
    not counted (AWS would not know them either)."""
    found = _rest_match(SERVICE.model, req)
    if found is None:
        return True
    op = found[1]
    rate, burst = RATE_LIMITS.get(op, OTHER_RATE_LIMIT)
    key = (req.account, req.region, op)
    t = time.monotonic()
    bucket = _buckets.setdefault(key, [float(burst), t])
    bucket[0] = min(float(burst), bucket[0] + (t - bucket[1]) * rate)
    bucket[1] = t
    if bucket[0] >= 1.0:
        bucket[0] -= 1.0
        return True
    _throttled[op] = _throttled.get(op, 0) + 1
    return False


def _too_many_requests():
    # What Security Hub's front end answers over the rate: HTTP 429, the code in
    # x-amzn-ErrorType, the message "Too Many Requests" (see the module docstring).
    return Response(429, [("Content-Type", "application/json"), ("x-amzn-ErrorType", "TooManyRequestsException")],
                    json.dumps({"message": "Too Many Requests"}))


def handle(req):
    with _lock:
        if _settings["rate_limits"] and not _allowed(req):
            return _too_many_requests()
        return SERVICE.handle(req)


# ---------------------------------------------------------------- test hook


def _state():
    return {**_settings, "throttled": sum(_throttled.values()), "throttled_by_operation": dict(sorted(_throttled.items()))}


def hook(environ):
    """`POST|GET /cm-emulator/securityhub`."""
    doc, answer = object_hook_request(environ, _lock, _state)
    if answer:
        return answer
    unknown = set(doc) - set(DEFAULT_SETTINGS)
    if unknown:
        return hook_answer(400, {"error": f"unknown members: {sorted(unknown)}"})
    pending = doc.get("pending_seconds", _settings["pending_seconds"])
    if isinstance(pending, bool) or not isinstance(pending, (int, float)) or not 0 <= pending <= 3600:
        return hook_answer(400, {"error": "pending_seconds must be a number of seconds, 0 to 3600"})
    limits = doc.get("rate_limits", _settings["rate_limits"])
    if not isinstance(limits, bool):
        return hook_answer(400, {"error": "rate_limits must be true or false"})
    with _lock:
        _settings.update(pending_seconds=float(pending), rate_limits=limits)
        _buckets.clear()
        _throttled.clear()
        return hook_answer(200, _state())
