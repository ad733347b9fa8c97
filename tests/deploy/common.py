"""Shared helpers of the deploy tests (make test-deploy): checks that count, raw HTTP over
loopback sockets, commands with time limits, podman with the containers.conf this host needs.

Every wait is bounded; nothing here talks to an address outside 127.0.0.0/8 except
containers and network namespaces the tests create themselves.
"""
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(ROOT, "deploy")
BASE = os.path.join(ROOT, "tests", "deploy", "debian-base.sh")
IMAGE = os.environ.get("MAILCONFD_IMAGE", "localhost/mailconfd:latest")
PROXY_IMAGE = os.environ.get("MAILCONFD_PROXY_IMAGE", "localhost/mailconfd-proxy:latest")
DATABASE_IMAGE = os.environ.get("MAILCONFD_DATABASE_IMAGE", "localhost/mailconfd-database:latest")

def runtime_packages():
    """The Debian packages the binary needs at run time: those the Dockerfile's runtime stage
    installs (one list; deploy.build_deps checks it against CMakeLists.txt)."""
    with open(os.path.join(DEPLOY, "container", "Dockerfile"), encoding="utf-8") as f:
        stage = f.read().split("AS runtime\n", 1)[1].split("\nFROM ", 1)[0]
    install = stage.split("apt-get install", 1)[1].split("&&", 1)[0]
    return [w for w in install.replace("\\", " ").split() if not w.startswith("-")]


AUTODISCOVER_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">\n'
    "  <Request>\n"
    "    <EMailAddress>alice@example.com</EMailAddress>\n"
    "    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/"
    "responseschema/2006a</AcceptableResponseSchema>\n"
    "  </Request>\n"
    "</Autodiscover>\n"
)


class Checks:
    """Counts checks; every failure is printed with what was expected."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL [{self.name}] {what}" + (f"\n      {detail}" if detail else ""), flush=True)
        return ok

    def eq(self, actual, expected, what):
        return self.check(actual == expected, what,
                          f"expected {expected!r}, got {actual!r}"[:1500])

    def contains(self, text, part, what):
        return self.check(part in text, what, f"{part!r} not in {text[:600]!r}")

    def lacks(self, text, part, what):
        return self.check(part not in text, what, f"{part!r} found in {text[:600]!r}")

    def done(self):
        status = "ok" if self.failed == 0 else "FAILED"
        print(f"{self.name}: {self.passed} checks passed, {self.failed} failed ({status})", flush=True)
        sys.exit(0 if self.failed == 0 else 1)


def run(args, timeout=120, check=False, env=None, input=None):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, input=input)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {r.returncode}: {r.stderr[-2000:]}")
    return r


def podman_env():
    env = dict(os.environ)
    if "CONTAINERS_CONF" not in env:
        env["CONTAINERS_CONF"] = run([BASE, "containers-conf"], check=True).stdout.strip()
    return env


def podman(*args, timeout=120, check=False, input=None):
    return run(["podman", *args], timeout=timeout, check=check, env=podman_env(), input=input)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> value
        self.body = body

    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return f"Response({self.status}, {self.headers}, {self.body[:200]!r})"


def read_response(sock, timeout=10):
    """One HTTP/1.1 response (Content-Length framed, or until close)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a complete head: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        length = int(headers["content-length"])
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed inside the body")
            rest += chunk
        body = rest[:length]
    else:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        body = rest
    return Response(status, headers, body)


def request(port, method, target, host="autoconfig.example.com", headers=None, body=b"",
            address="127.0.0.1", timeout=10):
    """One request on a new connection (Connection: close)."""
    if isinstance(body, str):
        body = body.encode()
    head = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
    for name, value in (headers or {}).items():
        head += f"{name}: {value}\r\n"
    if body or method == "POST":
        head += f"Content-Length: {len(body)}\r\n"
    with socket.create_connection((address, port), timeout=timeout) as s:
        s.sendall(head.encode() + b"\r\n" + body)
        return read_response(s, timeout)


def wait_until(predicate, seconds, interval=0.1):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except (OSError, ConnectionError, ValueError):
            pass
        time.sleep(interval)
    return False


def answers(port, path="/healthz", address="127.0.0.1"):
    try:
        return request(port, "GET", path, address=address, timeout=2).status
    except (OSError, ConnectionError, ValueError, IndexError):
        return None


def proc_status(pid):
    """Uid, Gid, Groups, CapEff, CapBnd, NoNewPrivs ... of a process, from /proc."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    return fields


def root_mount_options(pid):
    """The mount options of a process's / (from its mountinfo)."""
    with open(f"/proc/{pid}/mountinfo") as f:
        for line in f:
            parts = line.split()
            if parts[4] == "/":
                return parts[5].split(",")
    return []


def metric(text, name):
    """The value of one sample line ('name{labels} value') in a /metrics answer, or None."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line[len(name) + 1:])
    return None
