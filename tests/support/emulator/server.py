"""Local AWS emulator for cm-baseline's tests and demo: moto server, plus the project's
extension (package `cm_emulator`) for the calls moto does not implement or answers
differently from AWS, speaking the same wire protocol.

Test support only: nothing here is part of the product. The product's real SDK calls reach
this process exactly as they would reach AWS. What the extension implements and corrects is
listed in cm_emulator/__init__.py and at the top of each of its modules.

Usage: python server.py --port PORT [--host 127.0.0.1]
"""

import argparse
import os
import sys

# AWS managed policies (ReadOnlyAccess, AdministratorAccess, AWS_ConfigRole) must exist.
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cm_emulator import Dispatcher  # noqa: E402
from cm_emulator.faults import request_handler  # noqa: E402
from moto.moto_server.threaded_moto_server import MotoRequestHandler  # noqa: E402
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True, help="0: any free port, printed once listening")
    args = p.parse_args()
    app = Dispatcher(DomainDispatcherApplication(create_backend_app))
    # Bind first (port 0 lets the kernel choose, with no race against other emulators),
    # then say where: "listening on http://HOST:PORT" on stdout.
    # The handler can reset a connection (TCP RST) when a test hook asks for no answer at all.
    server = make_server(args.host, args.port, app, threaded=True, request_handler=request_handler(MotoRequestHandler))
    os.environ.setdefault("MOTO_PORT", str(server.port))
    print(f"listening on http://{args.host}:{server.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
