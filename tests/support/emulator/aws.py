"""Makes one AWS call against the emulator as a given account, for test fixtures and the
demo (creating the Organization, customer-owned look-alikes, drift). Test support only.

Usage: python aws.py ENDPOINT ACCOUNT SERVICE OPERATION [JSON_PARAMS] [REGION]
ACCOUNT is `management` (the emulator's default account) or a 12-digit member account id,
entered by AssumeRole as the product does (into `cm-policymaintainer`; `ID/ROLE` enters through
role ROLE instead, e.g. `OrganizationAccountAccessRole`, which AWS Organizations creates in the
accounts it creates). Prints the response as JSON.

A fixture stands for something set up some time before the test: a call that a service refuses
only because a role made moments ago has not propagated yet (the emulator's IAM propagation
delay, cm_emulator/iamtrust.py) is tried again for up to 15 seconds.
"""

import json
import sys
import time

import boto3
from botocore.exceptions import ClientError

# What a service answers while a role made moments ago is not usable by it yet.
NOT_YET = {"AccessDeniedException", "InsufficientDeliveryPolicyException"}


def client(endpoint, account, service, region):
    base = dict(endpoint_url=endpoint, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")
    if account != "management":
        account, _, role = account.partition("/")
        sts = boto3.client("sts", **base)
        c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{role or 'cm-policymaintainer'}", RoleSessionName="fixture")["Credentials"]
        base.update(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])
    cfg = boto3.session.Config(s3={"addressing_style": "path"})
    return boto3.client(service, config=cfg, **base)


def main():
    endpoint, account, service, operation = sys.argv[1:5]
    params = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    region = sys.argv[6] if len(sys.argv) > 6 else "ap-northeast-1"
    call = getattr(client(endpoint, account, service, region), operation)
    deadline = time.monotonic() + 15
    while True:
        try:
            out = call(**params)
            break
        except ClientError as e:
            err = e.response["Error"]
            if err.get("Code") not in NOT_YET or "assume" not in err.get("Message", "") or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    out.pop("ResponseMetadata", None)
    for key, value in list(out.items()):
        if hasattr(value, "read"):  # an object's body (S3 GetObject): its text
            out[key] = value.read().decode("utf-8", "replace")
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
