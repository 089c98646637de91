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
- DeleteVpc with an internet gateway attached, or with security groups other than the
  default one: moto deletes the VPC (leaving the gateway attached to nothing); AWS answers
  DependencyViolation "The vpc '<id>' has dependencies and cannot be deleted."
Errors use EC2's `<Response><Errors><Error><Code/><Message/></Error></Errors>` body, 400.

This module reads and seeds moto's EC2 backend directly (moto 5.2.5 is pinned).
"""

import threading
import uuid
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from moto.ec2.models import ec2_backends

from .wire import Response, hook_answer, hook_request

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
    if action == "DeleteSubnet":
        subnet_id = params.get("SubnetId")
        if any(eni.subnet is not None and eni.subnet.id == subnet_id for eni in backend.enis.values()):
            return _error("DependencyViolation", f"The subnet '{subnet_id}' has dependencies and cannot be deleted.")
    if action == "DeleteVpc":
        vpc_id = params.get("VpcId")
        attached = any(igw.vpc is not None and igw.vpc.id == vpc_id for igw in backend.internet_gateways.values())
        groups = [g for g in backend.describe_security_groups(filters={"vpc-id": [vpc_id]}) if g.name != "default"] if vpc_id in backend.vpcs else []
        if attached or groups:
            return _error("DependencyViolation", f"The vpc '{vpc_id}' has dependencies and cannot be deleted.")
    return None
