"""Makes one AWS call against the emulator as a given account, for test fixtures and the
demo (creating the Organization, customer-owned look-alikes, drift). Test support only.

Usage: python aws.py ENDPOINT ACCOUNT SERVICE OPERATION [JSON_PARAMS] [REGION]
ACCOUNT is `management` (the emulator's default account) or a 12-digit member account id,
entered by AssumeRole as the product does. Prints the response as JSON.
"""

import json
import sys

import boto3


def client(endpoint, account, service, region):
    base = dict(endpoint_url=endpoint, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")
    if account != "management":
        sts = boto3.client("sts", **base)
        c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/cm-policymaintainer", RoleSessionName="fixture")["Credentials"]
        base.update(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])
    cfg = boto3.session.Config(s3={"addressing_style": "path"})
    return boto3.client(service, config=cfg, **base)


def main():
    endpoint, account, service, operation = sys.argv[1:5]
    params = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    region = sys.argv[6] if len(sys.argv) > 6 else "ap-northeast-1"
    out = getattr(client(endpoint, account, service, region), operation)(**params)
    out.pop("ResponseMetadata", None)
    for key, value in list(out.items()):
        if hasattr(value, "read"):  # an object's body (S3 GetObject): its text
            out[key] = value.read().decode("utf-8", "replace")
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
