"""WSGI middleware in front of moto: sends each request to the extension module of its
service, or on to moto.

The service is the SigV4 signing name of the request's credential scope (as moto routes), the
account is moto's `get_account_id_from(<access key>)` (so assumed-role credentials of a member
account land in that account, as in moto), the region is the scope's region. A module answers
(a Response) or declines (None: moto answers). `POST /moto-api/reset` clears every module's
state as well as moto's. `/cm-emulator/...` paths are test hooks with no AWS counterpart:
`/cm-emulator/regions` (ec2), `/cm-emulator/faults` (faults: latency and throttling of
every signed AWS request, applied here before any module or moto sees the request) and
`/cm-emulator/deny-assume-role` (faults: STS AssumeRole into chosen accounts denied).
`/cm-emulator/securityhub`: securityhub's hook (how long a new standard stays PENDING; request rates).
Also from faults (`faults.HOOKS`), applied at the same place: `/cm-emulator/deny-regions`
(Regions denied to a member account as a service control policy denies them) and
`/cm-emulator/expire-credentials` (an account's credentials expire mid-run); and
the faults hook's server errors, connection resets and late answers (a late answer is held
back in `start_response`, after the request was carried out).
Also `/cm-emulator/iam-propagation` and `/cm-emulator/iam-trust` (iamtrust: IAM's propagation
delay; roles the emulator has never seen).

DynamoDB (the journal) is moto's, its requests taken one at a time (moto does not make a
conditional write atomic).

Services whose calls the product relies on and that moto answers as AWS does need no module:
EventBridge, and AWS Config but for PutDeliveryChannel's delivery checks (checked, see the
package docstring).
"""

import json
import re
import sys
import threading
import traceback
from urllib.parse import unquote

from moto.iam.models import get_account_id_from

from . import (accessanalyzer, cloudtrail, computeoptimizer, detective, ec2, faults, guardduty, iam, organizations, s3,
               securityhub, stepfunctions)
from . import iamtrust
from . import config, s3_policy, trail_delivery
from .wire import Request, Response

# A service's modules are asked in this order: trail_delivery after cloudtrail (which resolves KmsKeyId first).
MODULES = (s3, securityhub, detective, accessanalyzer, computeoptimizer, guardduty, stepfunctions, ec2, cloudtrail,
           trail_delivery, s3_policy, organizations)
MODULES += (iamtrust,)  # last: a service's own answers (Step Functions' name conflict) come first
MODULES += (config,)  # after iamtrust, whose answer to a recorder role Config cannot assume comes first
CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/([^/]+)/aws4_request")
QUERY_CREDENTIAL = re.compile(r"(?:^|&)X-Amz-Credential=([^&]+)")
DYNAMODB_LOCK = threading.Lock()


class Dispatcher:
    def __init__(self, app):
        self.app = app
        iam.install()
        self.by_service = {}
        for module in MODULES:
            for name in module.SIGNING_NAMES:
                self.by_service.setdefault(name, []).append(module)
        self.reset_lock = threading.Lock()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if path.startswith("/moto-api/reset") and method == "POST":
            with self.reset_lock:
                for module in MODULES:
                    module.reset()
                faults.reset()
        if path == "/cm-emulator/regions":
            return ec2.regions_hook(environ).wsgi(start_response)
        if path == "/cm-emulator/faults":
            return faults.hook(environ).wsgi(start_response)
        if path == "/cm-emulator/deny-assume-role":
            return faults.deny_hook(environ).wsgi(start_response)
        if path == "/cm-emulator/securityhub":
            return securityhub.hook(environ).wsgi(start_response)
        if path in faults.HOOKS:
            return faults.HOOKS[path](environ).wsgi(start_response)
        if path in iamtrust.HOOKS:
            return iamtrust.hook(environ, path).wsgi(start_response)
        if path.startswith(("/moto-api/", "/cm-emulator/")):
            return self.app(environ, start_response)
        scope = self.scope(environ)
        if scope is not None:
            account, region, service = scope
            req = None
            if faults.active():
                req = Request(environ, account, region, service, moto=self.app)
                answer = faults.before(req)
                if answer is not None:
                    return answer.wsgi(start_response)
                start_response = faults.slowed(req, start_response)
            if service == "sts" and faults.denies_assume_role():
                req = req or Request(environ, account, region, service, moto=self.app)
                answer = faults.assume_role_denied(req)
                if answer is not None:
                    return answer.wsgi(start_response)
            if service == "dynamodb":
                # DynamoDB carries out each request on an item atomically: a conditional
                # write's check and its write are one step, so of two writers racing on one
                # condition exactly one wins. moto's tables take no lock: its requests are
                # carried out one at a time here, the answer read in full under the lock.
                with DYNAMODB_LOCK:
                    return list(self.app(environ, start_response))
            modules = self.by_service.get(service)
            if modules:
                req = req or Request(environ, account, region, service, moto=self.app)
                for module in modules:
                    try:
                        answer = module.handle(req)
                    except Exception:  # an emulator bug: say so loudly, in the answer and on stderr
                        traceback.print_exc(file=sys.stderr)
                        body = {"__type": "InternalFailure", "message": traceback.format_exc(limit=3)}
                        answer = Response(500, [("Content-Type", "application/json"), ("x-amzn-ErrorType", "InternalFailure")], json.dumps(body))
                    if answer is not None:
                        return answer.wsgi(start_response)
        return self.app(environ, start_response)

    @staticmethod
    def scope(environ):
        m = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        if m:
            access_key, region, service = m.groups()
        else:
            q = QUERY_CREDENTIAL.search(environ.get("QUERY_STRING", ""))
            if not q:
                return None
            parts = unquote(q.group(1)).split("/")
            if len(parts) < 5:
                return None
            access_key, region, service = parts[0], parts[2], parts[3]
        return get_account_id_from(access_key), region, service
