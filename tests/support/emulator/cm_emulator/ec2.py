"""Amazon EC2 (ec2 query protocol, signing name `ec2`): a test hook and corrections to moto.

Test hook (no AWS counterpart; tests say which Regions an account has active):
- `POST /cm-emulator/regions` with JSON `{"account_id": "...", "regions": ["...", ...]}` makes
  DescribeRegions called by that account return exactly those Regions (RegionName,
  `ec2.<region>.amazonaws.com` Endpoint, OptInStatus opt-in-not-required), whatever its
  filters, RegionNames or AllRegions. `"regions": null` forgets the account. Accounts never
  configured get moto's normal answer. Cleared by `POST /moto-api/reset`.

Corrections (moto 5.2.5 differs from AWS):
- Default VPC: moto creates one per account and Region with a default subnet per
  Availability Zone, but no internet gateway. On AWS the default VPC always has an internet
  gateway attached and a 0.0.0.0/0 route to it in its main route table. Before the first EC2
  call of an account in a Region reaches moto, such a gateway is created and attached in
  moto's backend (once per default VPC, so a gateway a test deletes stays deleted).
- DeleteSubnet with network interfaces in the subnet: moto deletes the subnet; AWS answers
  DependencyViolation "The subnet '<id>' has dependencies and cannot be deleted."
- DeleteVpc: AWS deletes a VPC only when nothing but its default security group, main route
  table and default network ACL is left in it (the API reference of DeleteVpc), and answers
  DependencyViolation "The vpc '<id>' has dependencies and cannot be deleted." otherwise.
  moto refuses only for subnets, other route tables and attached VPN gateways, and deletes
  the VPC with an internet gateway still attached, other security groups, other network
  ACLs, VPC endpoints or egress-only internet gateways. Here all of these, and NAT
  gateways, refuse.
- DetachInternetGateway while a network interface in the VPC has a public IPv4 address (an
  Elastic IP, a NAT gateway's, an instance's own): moto detaches; AWS answers
  DependencyViolation "Network <vpc> has some mapped public address(es). Please unmap those
  public address(es) before detaching the gateway." (its API reference: "The VPC must not
  contain any running instances with Elastic IP addresses or public IPv4 addresses").
  Detaching from a VPC it is not attached to stays moto's Gateway.NotAttached, as AWS.
- DeleteNatGateway: moto marks the gateway deleted but keeps its network interface, with its
  Elastic IP, in the subnet, so the subnet could never be deleted nor the internet gateway
  detached. AWS deletes that interface and disassociates the address; so does this module,
  once moto has deleted the gateway.
- GetEbsDefaultKmsKeyId and ResetEbsDefaultKmsKeyId: moto 5.2.5 has neither (only
  ModifyEbsDefaultKmsKeyId, which keeps the key's ARN). Get answers the ARN Modify or Reset
  set, and `alias/aws/ebs` while neither was ever called, as AWS does for an account that
  never chose a key. Reset sets the default back to the AWS managed key for EBS, creating it
  (alias `alias/aws/ebs`) as AWS does on first use, and answers its ARN, as the API
  reference says. Both take DryRun like every EC2 action: DryRunOperation (412) when set.
Errors use EC2's `<Response><Errors><Error><Code/><Message/></Error></Errors>` body, 400.


This module reads and seeds moto's EC2 backend directly (moto 5.2.5 is pinned).
"""

import threading
import uuid
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from moto.ec2.models import ec2_backends

from .wire import Response, call_moto, hook_answer, hook_request

SIGNING_NAMES = ("ec2",)
EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"

_lock = threading.Lock()
_regions = {}  # account -> [region, ...]
_seeded = set()  # default VPC ids that got their internet gateway


def reset():
    with _lock:
        _regions.clear()
        _seeded.clear()


# ---------------------------------------------------------------- test hook


def regions_hook(environ):
    """`POST /cm-emulator/regions`."""
    doc, answer = hook_request(environ)
    if answer:
        return answer
    account, regions = doc.get("account_id"), doc.get("regions")
    if not isinstance(account, str) or not account.isdigit() or len(account) != 12:
        return hook_answer(400, {"error": "account_id must be a 12-digit string"})
    if regions is not None and (not isinstance(regions, list) or not all(isinstance(r, str) and r for r in regions)):
        return hook_answer(400, {"error": "regions must be a list of region names or null"})
    with _lock:
        if regions is None:
            _regions.pop(account, None)
        else:
            _regions[account] = list(dict.fromkeys(regions))
    return hook_answer(200, {"account_id": account, "regions": regions})


# ---------------------------------------------------------------- EC2 calls


def _error(code, message):
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message></Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>")
    return Response(400, [("Content-Type", "text/xml")], body)


def _ebs_key_answer(action, key_id):
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{EC2_NS}">'
            f"<requestId>{uuid.uuid4()}</requestId><kmsKeyId>{escape(key_id)}</kmsKeyId></{action}Response>")
    return Response(200, [("Content-Type", "text/xml")], body)


def _ebs_default_key(action, params, backend):
    if params.get("DryRun", "").lower() == "true":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>DryRunOperation</Code>'
                f"<Message>Request would have succeeded, but DryRun flag is set.</Message></Error></Errors>"
                f"<RequestID>{uuid.uuid4()}</RequestID></Response>")
        return Response(412, [("Content-Type", "text/xml")], body)
    if action == "ResetEbsDefaultKmsKeyId":
        return _ebs_key_answer(action, backend._create_default_encryption_key())
    return _ebs_key_answer(action, backend.default_kms_key_id or "alias/aws/ebs")


def _describe_regions(regions):
    items = "".join(
        f"<item><regionName>{escape(r)}</regionName><regionEndpoint>ec2.{escape(r)}.amazonaws.com</regionEndpoint>"
        f"<optInStatus>opt-in-not-required</optInStatus></item>"
        for r in regions
    )
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<DescribeRegionsResponse xmlns="{EC2_NS}">'
            f"<requestId>{uuid.uuid4()}</requestId><regionInfo>{items}</regionInfo></DescribeRegionsResponse>")
    return Response(200, [("Content-Type", "text/xml")], body)


def _seed_default_vpc(backend):
    vpc = backend.get_default_vpc()
    if vpc is None or vpc.id in _seeded:
        return
    _seeded.add(vpc.id)
    if any(igw.vpc is not None and igw.vpc.id == vpc.id for igw in backend.internet_gateways.values()):
        return
    igw = backend.create_internet_gateway()
    backend.attach_internet_gateway(igw.id, vpc.id)
    for table in backend.describe_route_tables(filters={"vpc-id": vpc.id}):
        if table.main_association_id:
            backend.create_route(table.id, "0.0.0.0/0", gateway_id=igw.id)


def _vpc_in_use(backend, vpc_id):
    """True when the VPC holds more than what DeleteVpc takes with it."""
    return (
        any(s.vpc_id == vpc_id for s in backend.describe_subnets())
        or any(igw.vpc is not None and igw.vpc.id == vpc_id for igw in backend.internet_gateways.values())
        or any(g.name != "default" for g in backend.describe_security_groups(filters={"vpc-id": [vpc_id]}))
        or any(t.vpc_id == vpc_id and t.main_association_id is None for t in backend.route_tables.values())
        or any(a.vpc_id == vpc_id and not a.default for a in backend.network_acls.values())
        or any(e.vpc_id == vpc_id and e.state != "deleted" for e in backend.vpc_end_points.values())
        or any(g.vpc_id == vpc_id for g in backend.egress_only_internet_gateways.values())
        or any(n.vpc_id == vpc_id and n.state != "deleted" for n in backend.nat_gateways.values())
        or any(a.vpc_id == vpc_id and a.state == "attached" for g in backend.vpn_gateways.values() for a in g.attachments.values())
    )


def handle(req):
    form = {}
    if req.method == "POST":
        form = parse_qs(req.body.decode("utf-8", "replace"))
    params = {**{k: v[-1] for k, v in req.query.items()}, **{k: v[-1] for k, v in form.items()}}
    action = params.get("Action")
    with _lock:
        if action == "DescribeRegions" and req.account in _regions:
            return _describe_regions(_regions[req.account])
        try:
            backend = ec2_backends[req.account][req.region]
        except KeyError:  # a Region moto does not know: its own answer
            return None
        _seed_default_vpc(backend)
    if action in ("GetEbsDefaultKmsKeyId", "ResetEbsDefaultKmsKeyId"):
        with _lock:
            return _ebs_default_key(action, params, backend)
    if action == "DeleteSubnet":
        subnet_id = params.get("SubnetId")
        if any(eni.subnet is not None and eni.subnet.id == subnet_id for eni in backend.enis.values()):
            return _error("DependencyViolation", f"The subnet '{subnet_id}' has dependencies and cannot be deleted.")
    if action == "DeleteVpc":
        vpc_id = params.get("VpcId")
        if vpc_id in backend.vpcs and _vpc_in_use(backend, vpc_id):
            return _error("DependencyViolation", f"The vpc '{vpc_id}' has dependencies and cannot be deleted.")
    if action == "DetachInternetGateway":
        igw, vpc_id = backend.internet_gateways.get(params.get("InternetGatewayId")), params.get("VpcId")
        attached = igw is not None and igw.vpc is not None and igw.vpc.id == vpc_id
        if attached and any(eni.public_ip and eni.subnet is not None and eni.subnet.vpc_id == vpc_id for eni in backend.enis.values()):
            return _error("DependencyViolation", f"Network {vpc_id} has some mapped public address(es). "
                                                 "Please unmap those public address(es) before detaching the gateway.")
    if action == "DeleteNatGateway":
        answer = call_moto(req.moto, req)
        nat = backend.nat_gateways.get(params.get("NatGatewayId"))
        if answer.status == 200 and nat is not None and nat._eni.id in backend.enis:
            if nat._eni.public_ip:
                backend.disassociate_address(address=nat._eni.public_ip)
            backend.delete_network_interface(nat._eni.id)
        return answer
    return None
