"""Local AWS emulator for cm-baseline's tests and demo: moto server, plus a small extension
for the calls moto does not implement, speaking the same wire protocol.

Test support only: nothing here is part of the product. The product's real SDK calls reach
this process exactly as they would reach AWS.

Extension (moto 5.2.5 lacks it):
- S3 GetBucketRequestPayment / PutBucketRequestPayment (`?requestPayment`): moto answers a
  GET with a ListObjects body and a PUT as CreateBucket. Kept per account and bucket.

Corrections (moto answers, but not as AWS does):
- S3 GetBucketVersioning: moto's root element is `GetBucketVersioningResponse`; AWS's (and
  what strict clients parse) is `VersioningConfiguration`.

Usage: python server.py --port PORT [--host 127.0.0.1]
"""

import argparse
import os
import re
import threading

# AWS managed policies (ReadOnlyAccess, AdministratorAccess, AWS_ConfigRole) must exist.
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

from moto.iam.models import get_account_id_from  # noqa: E402
from moto.moto_server.threaded_moto_server import MotoRequestHandler  # noqa: E402
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app  # noqa: E402
from werkzeug.serving import run_simple  # noqa: E402

CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/")
S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


class Extension:
    """WSGI middleware in front of moto that answers the calls moto lacks."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.payer = {}  # (account, bucket) -> "BucketOwner" | "Requester"

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/moto-api/reset"):
            with self.lock:
                self.payer.clear()
        auth = environ.get("HTTP_AUTHORIZATION", "")
        m = CREDENTIAL.search(auth)
        query = environ.get("QUERY_STRING", "")
        if m and m.group(3) == "s3" and re.search(r"(^|&)requestPayment(=|&|$)", query):
            return self.request_payment(environ, start_response, get_account_id_from(m.group(1)), path)
        if m and m.group(3) == "s3" and environ.get("REQUEST_METHOD") == "GET" and re.search(r"(^|&)versioning(=|&|$)", query):
            return self.rewrite(environ, start_response, b"GetBucketVersioningResponse", b"VersioningConfiguration")
        return self.app(environ, start_response)

    def rewrite(self, environ, start_response, old, new):
        """Calls moto and renames an element of its answer."""
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers

        body = b"".join(self.app(environ, capture)).replace(old, new)
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(captured["status"], headers)
        return [body]

    def request_payment(self, environ, start_response, account, path):
        bucket = path.strip("/").split("/")[0]
        key = (account, bucket)
        method = environ.get("REQUEST_METHOD")
        if method == "PUT":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length).decode("utf-8", "replace")
            payer = re.search(r"<Payer>\s*(\w+)\s*</Payer>", body)
            if not payer or payer.group(1) not in ("BucketOwner", "Requester"):
                return self.error(start_response, "400 Bad Request", "MalformedXML", "Payer must be BucketOwner or Requester")
            with self.lock:
                self.payer[key] = payer.group(1)
            start_response("200 OK", [("Content-Length", "0")])
            return [b""]
        with self.lock:
            payer = self.payer.get(key, "BucketOwner")
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n<RequestPaymentConfiguration xmlns="{S3_NS}"><Payer>{payer}</Payer></RequestPaymentConfiguration>'
        data = body.encode()
        start_response("200 OK", [("Content-Type", "application/xml"), ("Content-Length", str(len(data)))])
        return [data]

    @staticmethod
    def error(start_response, status, code, message):
        data = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
        start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(data)))])
        return [data]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, Extension(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
