"""cm-baseline's extension of the moto server: the AWS calls the product makes that moto
5.2.5 lacks or answers differently from AWS, answered on the same wire protocol so that the
product's real SDK calls are what the tests exercise. Test support only.

Modules (each documents what it implements or corrects, and why):
- dispatcher: WSGI middleware; routes by SigV4 signing name, account and region; reset.
- wire: request/response helpers, model-driven restJson1 router, timestamps, pagination;
  which botocore model and operation a signed request is (`identify`).
- faults: test hook for benchmarks: latency and throttling of every AWS request, each
  service's throttling answered in its own wire protocol; request counts by operation. Test
  hook: STS AssumeRole into chosen accounts denied (403 AccessDenied, as AWS answers).
- cbor: minimal CBOR codec (Smithy RPC v2 CBOR).
- s3: GetBucketRequestPayment/PutBucketRequestPayment; GetBucketVersioning root element;
  Object Lock: GetObjectLockConfiguration's zero period removed, a zero period refused,
  versioning of an Object Lock bucket never suspended (checked, see the module).
- securityhub: hub (one per account and Region), tags, standards, controls, finding
  aggregator, automation rules.
- detective: behavior graphs and their tags.
- accessanalyzer: analyzers (one per account-level type and Region), archive rules, tags.
- computeoptimizer: enrollment status (RPC v2 CBOR, which aws-sdk-computeoptimizer uses, and
  awsJson1_0, which boto3 uses).
- guardduty: one detector per Region, GetDetector foundational features/data sources,
  UpdateDetector feature merge, detector tagging.
- stepfunctions: CreateStateMachine name conflict.
- cloudtrail: CreateTrail/UpdateTrail KmsKeyId resolved to the key's ARN, as AWS keeps it.
- iam: AWS managed policies built for the `aws` partition only, from one shared parse
  (a new account costs moto about 1 s and tens of MB otherwise).
- ec2: DescribeRegions test hook; default VPC internet gateway; DeleteSubnet/DeleteVpc
  dependency checks; DetachInternetGateway refused while public addresses are mapped;
  DeleteNatGateway releases the gateway's network interface and address.
- iamtrust: STS AssumeRole evaluates the role's trust policy (principal, action, explicit
  Deny, conditions such as sts:ExternalId) and refuses as AWS does (403 AccessDenied); a
  service handed a role it cannot assume refuses it (Step Functions Create/UpdateStateMachine:
  400 AccessDeniedException; Config PutDeliveryChannel: 400
  InsufficientDeliveryPolicyException); IAM's propagation delay (a role's trust policy reaches
  services `seconds` after a change, default 2). Test hooks: `/cm-emulator/iam-propagation`,
  `/cm-emulator/iam-trust` (roles the emulator has never seen, taken as deployed before).

Checked and left to moto (its raw answers match the botocore model and AWS's behaviour for
the calls the product makes): AWS Config (PutConfigurationRecorder, DescribeConfigurationRecorders,
DescribeConfigurationRecorderStatus, Start/StopConfigurationRecorder, PutDeliveryChannel,
DescribeDeliveryChannels; one customer-managed recorder and one delivery channel per account
and Region: another name is MaxNumberOfConfigurationRecordersExceededException /
MaxNumberOfDeliveryChannelsExceededException, a delivery channel before any recorder is
NoAvailableConfigurationRecorderException, each a 400 awsJson error) and EventBridge
(CreateEventBus, DescribeEventBus, PutRule, DescribeRule, PutTargets, ListTargetsByRule,
RemoveTargets, TagResource, ListTagsForResource).
"""

from .dispatcher import Dispatcher

__all__ = ["Dispatcher"]
