"""Recording proxy for the benchmark's replay endpoint (test support only).

Sits between cm-baseline and the emulator, forwards every request unchanged and appends
each exchange to a JSON-lines file: the request (method, path with query, the headers that
identify an AWS call, body) and the answer (status, headers, body). `replay` (the Rust
server beside this file) answers from such a recording.

Usage: python record.py --upstream http://127.0.0.1:PORT --out FILE [--port 0]
Prints "listening on http://127.0.0.1:PORT" once ready; stops on SIGTERM.
"""

import argparse
import base64
import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Request headers that decide what an AWS call is (the rest is signing and transport).
KEPT_REQUEST = ("authorization", "x-amz-target", "content-type", "host")
# Answer headers not worth replaying (transport, or made again by the replaying server).
DROPPED_ANSWER = {"date", "server", "connection", "content-length", "transfer-encoding", "keep-alive"}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--upstream", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    up = urlsplit(args.upstream)
    out = open(args.out, "a", encoding="utf-8")
    lock = threading.Lock()
    local = threading.local()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):  # quiet
            pass

        def _any(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            conn = getattr(local, "conn", None)
            for attempt in range(2):
                if conn is None:
                    conn = local.conn = http.client.HTTPConnection(up.hostname, up.port, timeout=300)
                try:
                    conn.request(self.command, self.path, body=body,
                                 headers={k: v for k, v in self.headers.items() if k.lower() != "connection"})
                    r = conn.getresponse()
                    answer = r.read()
                    break
                except (http.client.HTTPException, OSError):
                    conn.close()
                    conn = local.conn = None
                    if attempt:
                        raise
            headers = [(k, v) for k, v in r.getheaders() if k.lower() not in DROPPED_ANSWER]
            if not self.path.startswith(("/cm-emulator/", "/moto-api/")):
                line = json.dumps({
                    "method": self.command, "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items() if k.lower() in KEPT_REQUEST},
                    "body": base64.b64encode(body).decode(),
                    "status": r.status, "answer_headers": headers, "answer": base64.b64encode(answer).decode(),
                })
                with lock:
                    out.write(line + "\n")
                    out.flush()
            self.send_response_only(r.status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _any

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(f"listening on http://{args.host}:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
