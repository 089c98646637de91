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
  Test hooks for what real fleets hit, each off until a test sets it: server errors (500/503
  in each service's protocol), connection resets and late answers as seeded shares of
  requests; Regions denied to a member account as a service control policy denies them
  (AWS Control Tower's Region deny exemptions by default); credentials that expire mid-run
  (ExpiredToken / ExpiredTokenException / RequestExpired, as each protocol answers). A
  service absent from a Region is no hook: its endpoint's name does not resolve on AWS, so
  tests point `AWS_ENDPOINT_URL_<SERVICE>` at a `.invalid` name for a real DNS failure.
- cbor: minimal CBOR codec (Smithy RPC v2 CBOR).
- s3: GetBucketRequestPayment/PutBucketRequestPayment; GetBucketVersioning root element;
  Object Lock: GetObjectLockConfiguration's zero period removed, a zero period refused,
  versioning of an Object Lock bucket never suspended (checked, see the module).
- securityhub: hub (one per account and Region), tags, standards, controls, finding
  aggregator, automation rules.
  A standard just enabled is PENDING (3 s by default) before READY: control calls for it are
  unprocessed RESOURCE_NOT_FOUND (UpdateStandardsControl 404), BatchDisableStandards 400;
  control ids a standard does not have are unprocessed RESOURCE_NOT_FOUND; request rates per
  account, Region and operation as the API Reference documents (BatchEnableStandards 1/s),
  over them 429 TooManyRequestsException. Test hook `/cm-emulator/securityhub`.
- detective: behavior graphs and their tags. CreateGraph needs no GuardDuty detector: AWS
  dropped the 48-hour GuardDuty prerequisite in 2024 (see the module).
- accessanalyzer: analyzers (one per account-level type and Region), archive rules, tags.
- computeoptimizer: enrollment status (RPC v2 CBOR, which aws-sdk-computeoptimizer uses, and
  awsJson1_0, which boto3 uses).
- guardduty: one detector per Region, GetDetector foundational features/data sources,
  UpdateDetector feature merge, detector tagging.
- stepfunctions: CreateStateMachine name conflict.
- organizations: ListAccounts and ListAccountsForParent 20 accounts a page at most, as AWS
  (moto lists 100), MaxResults above 20 refused (InvalidInputException).
- cloudtrail: CreateTrail/UpdateTrail KmsKeyId resolved to the key's ARN, as AWS keeps it.
- trail_delivery: CreateTrail/UpdateTrail refused unless the bucket policy lets CloudTrail
  deliver (InsufficientS3BucketPolicyException) and the key policy lets it encrypt
  (InsufficientEncryptionPolicyException); a taken trail name is TrailAlreadyExistsException.
- config: PutDeliveryChannel refused unless the bucket exists (NoSuchBucketException) and the
  recorder's role or the AWS Config service principal may deliver to it
  (InsufficientDeliveryPolicyException); asked after iamtrust, whose answer to a recorder
  role Config cannot assume comes first.
- policy: IAM policy evaluation as AWS documents it (resource and identity policies, Deny
  first, principals, wildcards, condition operators), for the delivery checks.
- delivery: what those checks read from moto (buckets, keys, roles) and the requests the
  services make when they deliver.
- s3_policy: PutBucketPolicy answered 204 with no body, as S3 does.
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
DescribeConfigurationRecorderStatus, Start/StopConfigurationRecorder, PutDeliveryChannel but
for its role and delivery checks (iamtrust, config), DescribeDeliveryChannels; one
customer-managed recorder and one delivery channel per account and Region: another name is MaxNumberOfConfigurationRecordersExceededException /
MaxNumberOfDeliveryChannelsExceededException, a delivery channel before any recorder is
NoAvailableConfigurationRecorderException, each a 400 awsJson error) and EventBridge
(CreateEventBus, DescribeEventBus, PutRule, DescribeRule, PutTargets, ListTargetsByRule,
RemoveTargets, TagResource, ListTagsForResource).
"""

from .dispatcher import Dispatcher

__all__ = ["Dispatcher"]
