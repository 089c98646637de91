"""Deploys the member-account bootstrap (deploy/cloudformation/cm-policymaintainer-init-prod.yaml)
into member accounts of the emulated Organization, as the operator's StackSet does before
cm-baseline's first run there. Test support only: the tests, the demo, the benchmark and the
fault matrix all start from an Organization set up this way.

Usage: python stackset.py ENDPOINT ACCOUNT_ID...

Each account gets the stack `StackSet-cm-policymaintainer-init-prod` from the shipped template,
created through moto's CloudFormation, entered as AWS Organizations lets the management account
enter the accounts it created (`OrganizationAccountAccessRole`). Then the emulator is told that
every role that exists was made by someone (`/cm-emulator/iam-trust {"unknown_roles": "deny"}`,
cm_emulator/iamtrust.py): from here on, AssumeRole into a role that was never created is refused
as AWS refuses it, so a test cannot pass by entering an account through a role nobody made.
"""

import json
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3

TEMPLATE = Path(__file__).resolve().parents[3] / "deploy/cloudformation/cm-policymaintainer-init-prod.yaml"
STACK = "StackSet-cm-policymaintainer-init-prod"
MANAGEMENT = "123456789012"  # moto's default account: the credentials cm-baseline runs with
HOME = "ap-northeast-1"


def _deploy_one(endpoint, account, body):
    base = dict(endpoint_url=endpoint, region_name=HOME, aws_access_key_id="testing", aws_secret_access_key="testing")
    sts = boto3.client("sts", **base)
    role = f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole"
    c = sts.assume_role(RoleArn=role, RoleSessionName="stackset")["Credentials"]
    base.update(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                aws_session_token=c["SessionToken"])
    cf = boto3.client("cloudformation", **base)
    cf.create_stack(StackName=STACK, TemplateBody=body, Capabilities=["CAPABILITY_NAMED_IAM"],
                    Parameters=[{"ParameterKey": "ManagementAccountId", "ParameterValue": MANAGEMENT}])
    status = cf.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"]
    if status != "CREATE_COMPLETE":
        raise RuntimeError(f"stack {STACK} in {account}: {status}")


def deny_unknown_roles(endpoint):
    req = urllib.request.Request(f"{endpoint}/cm-emulator/iam-trust", data=json.dumps({"unknown_roles": "deny"}).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        if r.status != 200:
            raise RuntimeError(f"/cm-emulator/iam-trust answered {r.status}")


def deploy(endpoint, accounts, workers=8):
    """Deploys the stack into every account of `accounts`, then denies unknown roles."""
    body = TEMPLATE.read_text()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for f in [pool.submit(_deploy_one, endpoint, a, body) for a in accounts]:
            f.result()
    deny_unknown_roles(endpoint)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    deploy(sys.argv[1], sys.argv[2:])


if __name__ == "__main__":
    main()
