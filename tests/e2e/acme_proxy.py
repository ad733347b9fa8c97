#!/usr/bin/env python3
"""A fault-injecting HTTPS proxy in front of a real Pebble, for tests/e2e/acme_test.cpp.

A test double for two things Debian's Pebble 2.4 lacks, everything else forwarded to the
real Pebble unchanged (same Host header, so the URLs Pebble writes point at the proxy):

* rate limits: the first requests to newOrder or newNonce are answered `429` with a
  `Retry-After` (seconds, or an HTTP-date; or none) and an RFC 7807 `rateLimited` problem;
* the CA failing: the same with a `5xx` status and a `serverInternal` problem;
* ARI (RFC 9773): the directory gains `renewalInfo`, and `GET renewalInfo/CERTID` answers
  the suggestedWindow the test chose (or a `5xx` with a `serverInternal` problem).

usage: acme_proxy.py UPSTREAM_PORT CERT KEY UPSTREAM_CA RULES LOG PORT_FILE

RULES (JSON, read again at every request, so a test may change it while the proxy runs):
  {"reject": [{"endpoint": "newOrder" | "newNonce", "status": 429 (default) | 5xx,
               "retry_after": "3" | "date+3" (default: no Retry-After)}, ...],
   "renewal_info": {"start": RFC 3339, "end": RFC 3339, "retry_after": seconds}
                   | {"status": 5xx}}
The "reject" entries are used in order, each for one request: the first one not used yet
answers the next request to its endpoint; "date+N" sends the
HTTP-date N seconds after the current whole second. Without "renewal_info" the directory is
Pebble's own.

LOG: a line per request, tab-separated: the Unix time it arrived (seconds, microseconds),
the endpoint (newOrder, newNonce, renewalInfo, directory or the path), the status answered,
the Unix time a Retry-After sent allows the next request (or -), and the newOrder's
`replaces` or the certID renewalInfo was asked about (or -). PORT_FILE gets the port the proxy listens on (127.0.0.1), once it does.
"""

import base64
import email.utils
import http.client
import http.server
import json
import os
import ssl
import sys
import threading
import time

UPSTREAM_PORT, CERT, KEY, UPSTREAM_CA, RULES, LOG, PORT_FILE = sys.argv[1:8]

lock = threading.Lock()
used = set()  # indexes of the "reject" entries already answered
endpoints = {}  # path → endpoint name, from Pebble's directory
upstream_context = ssl.create_default_context(cafile=UPSTREAM_CA)


def rules():
    try:
        with open(RULES, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def log(arrived, endpoint, status, not_before="-", replaces="-"):
    with lock, open(LOG, "a", encoding="utf-8") as f:
        f.write(f"{arrived:.6f}\t{endpoint}\t{status}\t{not_before}\t{replaces}\n")


def replaces_of(body):
    """The `replaces` of a newOrder JWS (flattened JSON serialization), or "-"."""
    try:
        payload = json.loads(body)["payload"]
        payload += "=" * (-len(payload) % 4)
        return json.loads(base64.urlsafe_b64decode(payload)).get("replaces", "-")
    except (ValueError, KeyError, AttributeError):
        return "-"


def failed():
    return json.dumps({"type": "urn:ietf:params:acme:error:serverInternal",
                       "detail": "the CA failed (acme_proxy.py)"}).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, headers, body):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def forward(self, body):
        conn = http.client.HTTPSConnection("127.0.0.1", int(UPSTREAM_PORT),
                                           context=upstream_context, timeout=30)
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() not in ("content-length", "connection"):
                conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        data = r.read()
        headers = [(n, v) for n, v in r.getheaders()
                   if n.lower() not in ("content-length", "connection", "transfer-encoding")]
        conn.close()
        return r.status, headers, data

    def handle_any(self):
        arrived = time.time()
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        r = rules()
        path = self.path.split("?")[0]
        if path == "/dir":
            status, headers, data = self.forward(body)
            directory = json.loads(data)
            for name in ("newNonce", "newOrder"):
                endpoints["/" + directory[name].split("/", 3)[3]] = name
            if "renewal_info" in r:
                directory["renewalInfo"] = f"https://{self.headers['Host']}/renewal-info"
                data = json.dumps(directory).encode()
            log(arrived, "directory", status)
            return self.answer(status, headers, data)
        if path.startswith("/renewal-info/") and "renewal_info" in r:
            info = r["renewal_info"]
            if "status" in info:
                log(arrived, "renewalInfo", info["status"], "-", path[len("/renewal-info/"):])
                return self.answer(info["status"], [("Content-Type", "application/problem+json")],
                                   failed())
            data = json.dumps({"suggestedWindow": {"start": info["start"],
                                                   "end": info["end"]}}).encode()
            log(arrived, "renewalInfo", 200, "-", path[len("/renewal-info/"):])
            return self.answer(200, [("Content-Type", "application/json"),
                                     ("Retry-After", str(info.get("retry_after", 21600)))], data)
        endpoint = endpoints.get(path, path)
        rule = None
        with lock:
            pending = [i for i in range(len(r.get("reject", []))) if i not in used]
            if pending and r["reject"][pending[0]]["endpoint"] == endpoint:
                used.add(pending[0])
                rule = r["reject"][pending[0]]
        if rule:
            status = rule.get("status", 429)
            headers = [("Content-Type", "application/problem+json")]
            not_before = "-"
            value = rule.get("retry_after")
            if value is not None:
                if value.startswith("date+"):
                    not_before = int(time.time()) + int(value[5:])
                    value = email.utils.formatdate(not_before, usegmt=True)
                else:
                    not_before = arrived + int(value)
                headers.append(("Retry-After", value))
                not_before = f"{not_before:.6f}"
            if status >= 500:
                problem = failed()
            else:
                problem = json.dumps({"type": "urn:ietf:params:acme:error:rateLimited",
                                      "detail": "too many requests (acme_proxy.py)"}).encode()
            log(arrived, endpoint, status, not_before)
            return self.answer(status, headers, problem)
        status, headers, data = self.forward(body)
        log(arrived, endpoint, status, "-", replaces_of(body) if endpoint == "newOrder" else "-")
        return self.answer(status, headers, data)

    do_GET = do_POST = do_HEAD = handle_any


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(CERT, KEY)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    with open(PORT_FILE + ".tmp", "w", encoding="utf-8") as f:
        f.write(str(server.server_address[1]))
    os.rename(PORT_FILE + ".tmp", PORT_FILE)
    server.serve_forever()


if __name__ == "__main__":
    main()
