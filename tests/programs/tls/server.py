"""A small TLS GraphQL server on 127.0.0.1 for the TLS gate tests.

Usage: server.py DIR
Generates DIR/cert.pem and DIR/key.pem (self-signed, CN/SAN localhost + 127.0.0.1) with the
openssl CLI if absent, listens on an ephemeral port, writes the port to DIR/port, and after
every request rewrites DIR/state.json: {"volumes": [...], "ops": [...]} where ops lists every
GraphQL operation received (top-level field names, in order). It serves until killed.

Also: POST /upload (any size; answers the byte count) and GET /ping, for the benchmarks; and
POST /echo, which appends one JSON line per request to DIR/echo.log: {"te": Transfer-Encoding,
"cl": Content-Length, "body": the body as received} (chunked bodies are decoded), and answers
{"len": <body length>}.
"""

import json
import os
import re
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIR = sys.argv[1]
CERT = os.path.join(DIR, "cert.pem")
KEY = os.path.join(DIR, "key.pem")
LOCK = threading.Lock()
STORE = {
    "projects": [{"id": "p1", "name": "prod"}],
    "volumes": [
        {"id": "vol-prod-db", "project": "p1", "name": "postgres-data"},
        {"id": "vol-prod-backups", "project": "p1", "name": "backups"},
    ],
    "ops": [],
}


def ensure_cert():
    if os.path.exists(CERT) and os.path.exists(KEY):
        return
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", KEY,
         "-out", CERT, "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def save():
    tmp = os.path.join(DIR, "state.json.tmp")
    with open(tmp, "w") as f:
        json.dump({"volumes": STORE["volumes"], "ops": STORE["ops"]}, f)
    os.replace(tmp, os.path.join(DIR, "state.json"))


FIELD = re.compile(r"\{\s*(\w+)")


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle + delayed ACK add 40 ms
    # to every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, *a):
        pass

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.reply(200, {"ok": True})

    def read_chunked(self):
        body = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return body
            body += self.rfile.read(size)
            self.rfile.readline()

    def do_POST(self):
        if self.path == "/echo":
            te = self.headers.get("Transfer-Encoding")
            cl = self.headers.get("Content-Length")
            if te and "chunked" in te.lower():
                raw = self.read_chunked()
            else:
                raw = self.rfile.read(int(cl or "0"))
            with LOCK, open(os.path.join(DIR, "echo.log"), "a") as f:
                f.write(json.dumps({"te": te, "cl": cl, "body": raw.decode("utf-8", "replace")}) + "\n")
            return self.reply(200, {"len": len(raw)})
        n = int(self.headers.get("Content-Length", "0"))
        if self.path == "/upload":
            left = n
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
            return self.reply(200, {"bytes": n - left})
        raw = self.rfile.read(n)
        try:
            req = json.loads(raw)
            q = req.get("query", "")
            variables = req.get("variables") or {}
        except Exception:
            return self.reply(400, {"errors": [{"message": "bad json"}]})
        m = FIELD.search(q)
        field = m.group(1) if m else ""
        with LOCK:
            STORE["ops"].append(field)
            if field == "volumes":
                data = {"volumes": STORE["volumes"]}
            elif field == "volumeDelete":
                vid = variables.get("id", "")
                before = len(STORE["volumes"])
                STORE["volumes"] = [v for v in STORE["volumes"] if v["id"] != vid]
                data = {"volumeDelete": len(STORE["volumes"]) < before}
            else:
                data = None
            save()
        self.reply(200, {"data": data})


def main():
    ensure_cert()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERT, KEY)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    with LOCK:
        save()
    with open(os.path.join(DIR, "port.tmp"), "w") as f:
        f.write(str(srv.server_address[1]))
    os.replace(os.path.join(DIR, "port.tmp"), os.path.join(DIR, "port"))
    srv.serve_forever()


main()
