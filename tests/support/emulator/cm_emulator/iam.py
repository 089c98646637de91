"""AWS IAM (signing name `iam`): the cost of a new account in moto, not its behaviour.

moto 5.2.5 builds, for every account it sees, one IAM backend per partition (aws, aws-cn,
aws-us-gov, aws-iso, aws-iso-b, aws-eusc), and with MOTO_IAM_LOAD_MANAGED_POLICIES (which
server.py sets: the baseline attaches AWS managed policies such as ReadOnlyAccess) each of the
six parses moto's copy of the AWS managed policies (~1,600) and builds an object per policy.
That is about 1 s and tens of MB per account, which makes an emulated fleet of hundreds of
accounts slow to create and large in memory.

This emulator answers commercial Regions only (every test and the benchmark run there), so:
- AWS managed policies are built only in the `aws` partition's backends; the other
  partitions' backends have none (nothing here calls them);
- moto's policy data is parsed once per process and shared; each account still gets its own
  policy objects (attachment counts are per account, as on AWS).

A role made by CloudFormation (`AWS::IAM::Role` with inline `Policies`, as the member-account
bootstrap stack deploy/cloudformation/cm-policymaintainer-init-prod.yaml has) keeps its inline
policy documents as moto's CloudFormation parser hands them over, a Python dict, and
GetRolePolicy then answers with the dict's repr instead of the JSON document AWS returns.
Such documents are stored as JSON, as IAM stores what CloudFormation passes it.

Applied by `install()`, from the dispatcher at import time (moto 5.2.5 is pinned).
"""

import json
import threading

from moto.iam import models as iam_models
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.settings import load_iam_aws_managed_policies

_lock = threading.Lock()
_parsed = None


def _policy_data():
    global _parsed
    with _lock:
        if _parsed is None:
            _parsed = json.loads(aws_managed_policies_data)
        return _parsed


def _init_aws_policies(self):
    # The IAM backends are keyed by partition: `region_name` is the partition's name.
    if not load_iam_aws_managed_policies() or self.region_name != "aws":
        return []
    return [iam_models.AWSManagedPolicy.from_data(name, self.account_id, self.region_name, d)
            for name, d in _policy_data().items()]


def _put_policy_as_json(put_policy):
    def wrapped(self, policy_name, policy_json):
        if not isinstance(policy_json, str):
            policy_json = json.dumps(policy_json)
        return put_policy(self, policy_name, policy_json)

    wrapped.cm_emulator = True
    return wrapped


def install():
    iam_models.IAMBackend._init_aws_policies = _init_aws_policies
    if not getattr(iam_models.Role.put_policy, "cm_emulator", False):
        iam_models.Role.put_policy = _put_policy_as_json(iam_models.Role.put_policy)
