#!/usr/bin/env python3
"""deploy/nginx/mailconfd.conf and mailconfd-proxy.conf, run by Debian's nginx on 127.0.0.1
in front of two mailconfd instances (the binary of the image, MAILCONFD_BINARY):

* the access log holds no mailbox address (query, Basic-auth user, Referer, v2 path);
* /metrics is refused in any letter case and never reaches mailconfd;
* with forwarded-proto="trust", HTTPS through nginx is not redirected, plain HTTP is;
* one instance stopped with SIGTERM under a load of Outlook POSTs loses no request
  (LOSS_ROUNDS rounds, default 6). The same load is also run against the configuration
  without `non_idempotent` and the losses and nginx's reasons for them are printed.
"""
import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from common import (AUTODISCOVER_BODY, DEPLOY, Checks, free_port, metric, read_response,
                    request, run, wait_until)

BINARY = os.environ.get("MAILCONFD_BINARY", "")
ROUNDS = int(os.environ.get("LOSS_ROUNDS", "6"))
c = Checks("nginx")
work = tempfile.mkdtemp(prefix="mailconfd-nginx-")
processes = []

CONFIG = """<?xml version="1.0" encoding="utf-8"?>
<mailconfd>
  <server listen="127.0.0.1:{port}" forwarded-proto="trust" shutdown-grace="10s">
    <limits keepalive-timeout="30s"/>
  </server>
  <provider id="example.net">
    <display-name>Example Mail</display-name>
    <incoming protocol="imap" host="imap.example.net" port="993" security="tls"/>
    <outgoing host="smtp.example.net" port="587" security="starttls"/>
    <autodiscover host="autodiscover.example.net" http-redirect="on"/>
    <domain>example.com</domain>
  </provider>
</mailconfd>
"""


def start_mailconfd(port):
    path = os.path.join(work, f"mailconfd-{port}.xml")
    with open(path, "w") as f:
        f.write(CONFIG.format(port=port))
    log = open(os.path.join(work, f"mailconfd-{port}.log"), "w")
    p = subprocess.Popen([BINARY, "serve", "--config", path], stdout=subprocess.DEVNULL,
                         stderr=log)
    processes.append(p)
    if not wait_until(lambda: request(port, "GET", "/readyz").status == 200, 20):
        raise RuntimeError(f"mailconfd on {port} did not start")
    return p


def make_certificate():
    cert, key = os.path.join(work, "fullchain.pem"), os.path.join(work, "privkey.pem")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=autodiscover.example.com", "-keyout", key,
         "-out", cert], check=True)
    return cert, key


def site_config(name, backends, http_port, https_port, cert, key, proxy_conf):
    """The shipped site with loopback addresses, test paths and the given upstream servers."""
    site = open(os.path.join(DEPLOY, "nginx", "mailconfd.conf")).read()
    site = site.replace("    server 127.0.0.1:8080;\n",
                        "".join(f"    server 127.0.0.1:{p};\n" for p in backends))
    site = site.replace("listen [::]:80;\n", "").replace("listen [::]:443 ssl http2;\n", "")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    site = site.replace("/etc/ssl/mailconfd/fullchain.pem", cert)
    site = site.replace("/etc/ssl/mailconfd/privkey.pem", key)
    site = site.replace("/etc/nginx/snippets/mailconfd-proxy.conf", proxy_conf)
    site = site.replace("/var/log/nginx/mailconfd.access.log", os.path.join(work, f"{name}.access.log"))
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    main = (f"daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\n"
            f"error_log {d}/error.log info;\nevents {{ worker_connections 1024; }}\n"
            f"http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n"
            f"  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n"
            f"  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{site}}}\n")
    path = os.path.join(d, "nginx.conf")
    with open(path, "w") as f:
        f.write(main)
    return path


def start_nginx(conf, port):
    t = run(["nginx", "-t", "-q", "-c", conf, "-e", "/dev/stderr"])
    if not c.eq(t.returncode, 0, f"nginx -t {conf}: {t.stderr}"):
        raise RuntimeError("nginx -t failed")
    p = subprocess.Popen(["nginx", "-c", conf, "-e", "/dev/stderr"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    processes.append(p)
    if not wait_until(lambda: socket.create_connection(("127.0.0.1", port), 1).close() or True, 10):
        raise RuntimeError("nginx did not start")
    return p


def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        p.send_signal(sig)
    try:
        return p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait()


def https_get(port, target, host):
    """One GET over TLS through nginx (the openssl command as the client)."""
    r = run(["openssl", "s_client", "-quiet", "-connect", f"127.0.0.1:{port}", "-servername",
             host], input=f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
            timeout=20)
    m = re.match(r"HTTP/1\.1 (\d+)", r.stdout)
    return int(m.group(1)) if m else None, r.stdout


class Load:
    """THREADS keep-alive clients sending Outlook POSTs through nginx until stopped."""

    THREADS = 8

    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.ok = 0
        self.bad = []
        self.lock = threading.Lock()
        body = AUTODISCOVER_BODY.encode()
        self.request = (b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: "
                        b"autodiscover.example.com\r\nContent-Type: text/xml\r\nContent-Length: "
                        + str(len(body)).encode() + b"\r\n\r\n" + body)
        self.threads = [threading.Thread(target=self.client) for _ in range(self.THREADS)]
        for t in self.threads:
            t.start()

    def client(self):
        sock = None
        while not self.stop.is_set():
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=15)
                sock.sendall(self.request)
                r = read_response(sock, 15)
                with self.lock:
                    if r.status == 200 and b"<Server>smtp.example.net</Server>" in r.body:
                        self.ok += 1
                    else:
                        self.bad.append(r.status)
                if r.headers.get("connection") == "close":
                    sock.close()
                    sock = None
            except (OSError, ConnectionError) as e:
                with self.lock:
                    self.bad.append(repr(e))
                if sock:
                    sock.close()
                sock = None
        if sock:
            sock.close()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


def loss_rounds(name, proxy_conf, cert, key, rounds):
    """Rounds of: two instances, load, SIGTERM one. Returns (answered, lost, nginx reasons)."""
    answered, lost, reasons = 0, [], {}
    for _ in range(rounds):
        a_port, b_port, http_port = free_port(), free_port(), free_port()
        a, b = start_mailconfd(a_port), start_mailconfd(b_port)
        conf = site_config(name, [a_port, b_port], http_port, free_port(), cert, key, proxy_conf)
        nginx = start_nginx(conf, http_port)
        load = Load(http_port)
        time.sleep(0.7)
        stopped = time.monotonic()
        a.send_signal(signal.SIGTERM)
        code = a.wait(timeout=30)
        c.eq(code, 0, "the stopped instance exits 0")
        c.check(time.monotonic() - stopped < 5, "the drain under load ends in time")
        time.sleep(0.5)
        load.finish()
        answered += load.ok
        lost += load.bad
        stop(nginx, signal.SIGQUIT)
        stop(b)
        with open(os.path.join(work, name, "error.log")) as f:
            for line in f:
                m = re.search(r"\[(?:error|warn)\] \d+#\d+: \*\d+ (.*?) while ", line)
                if m:
                    reason = re.sub(r"\(\d+: ", "(", m.group(1))
                    reasons[reason] = reasons.get(reason, 0) + 1
        os.rename(os.path.join(work, name, "error.log"), os.path.join(work, name, f"error-{time.monotonic()}.log"))
    return answered, lost, reasons


try:
    if not BINARY or not os.access(BINARY, os.X_OK):
        raise RuntimeError("set MAILCONFD_BINARY to a mailconfd binary (run.sh does)")
    cert, key = make_certificate()
    proxy_conf = os.path.join(DEPLOY, "nginx", "mailconfd-proxy.conf")

    # One instance behind the shipped site: privacy, /metrics, forwarded-proto.
    m_port, http_port, https_port = free_port(), free_port(), free_port()
    mailconfd = start_mailconfd(m_port)
    conf = site_config("site", [m_port], http_port, https_port, cert, key, proxy_conf)
    nginx = start_nginx(conf, http_port)
    before = request(m_port, "GET", "/metrics").text()

    address = "alice@example.com"
    basic = base64.b64encode(f"{address}:secret-password".encode()).decode()
    g = request(http_port, "GET", "/mail/config-v1.1.xml?emailaddress=alice%40example.com",
                headers={"Referer": "https://autoconfig.example.com/setup?emailaddress=alice%40example.com"})
    c.eq(g.status, 200, "autoconfig through nginx")
    p = request(http_port, "POST", "/autodiscover/autodiscover.xml", host="autodiscover.example.com",
                headers={"Authorization": f"Basic {basic}", "Content-Type": "text/xml"},
                body=AUTODISCOVER_BODY)
    c.eq(p.status, 200, "POST Autodiscover with Basic auth through nginx")
    v2 = request(http_port, "GET",
                 "/autodiscover/autodiscover.json/v1.0/alice@example.com?Protocol=AutodiscoverV1",
                 host="autodiscover.example.com")
    c.eq(v2.status, 200, "Autodiscover v2 through nginx")
    v2u = request(http_port, "GET",
                  "/AutoDiscover/AutoDiscover.json/V1.0/alice%40example.com?Protocol=AutodiscoverV1",
                  host="autodiscover.example.com")
    c.eq(v2u.status, 200, "Autodiscover v2, other case and %40, through nginx")
    s = request(http_port, "GET", "/setup?emailaddress=alice%40example.com",
                headers={"Authorization": f"Basic {basic}"})
    c.eq(s.status, 200, "setup page through nginx")

    # /metrics in any case: nginx answers 404, mailconfd never sees it.
    for path in ("/metrics", "/METRICS", "/Metrics", "/metrics?x=1", "//metrics", "/%6Detrics"):
        c.eq(request(http_port, "GET", path).status, 404, f"nginx refuses {path}")
    after = request(m_port, "GET", "/metrics").text()
    series = 'mailconfd_http_requests_total{endpoint="metrics",code="2xx"}'
    c.eq((metric(after, series) or 0) - (metric(before, series) or 0), 1.0,
         "only the test's own direct /metrics request reached mailconfd")

    # forwarded-proto="trust" with the snippet's X-Forwarded-Proto.
    code, text = https_get(https_port, "/autodiscover/autodiscover.xml", "autodiscover.example.com")
    c.check(code == 200 and "<Server>smtp.example.net</Server>" in text,
            "HTTPS GET on autodiscover.<domain> through nginx: 200 with the settings", text[:400])
    plain = request(http_port, "GET", "/autodiscover/autodiscover.xml", host="autodiscover.example.com")
    c.eq(plain.status, 302, "plain-HTTP GET on autodiscover.<domain> through nginx: 302")
    spoofed = request(http_port, "GET", "/autodiscover/autodiscover.xml",
                      host="autodiscover.example.com", headers={"X-Forwarded-Proto": "https"})
    c.eq(spoofed.status, 302, "a client's own X-Forwarded-Proto is overwritten by nginx")

    stop(nginx, signal.SIGQUIT)
    stop(mailconfd)
    log = open(os.path.join(work, "site.access.log")).read()
    c.eq(len(log.splitlines()), 14, "14 requests in nginx's access log")
    for secret in ("alice", "%40", basic, "secret-password", "emailaddress"):
        c.lacks(log, secret, f"nginx's access log has no {secret!r}")
    c.contains(log, '"GET /autodiscover/autodiscover.json/v1.0/- HTTP/1.1" 200',
               "the v2 path is logged with '-' for the address")
    c.contains(log, '"GET /mail/config-v1.1.xml HTTP/1.1" 200', "autoconfig logged without query")

    # Lost POSTs on a SIGTERM drain. First the configuration without non_idempotent, to show
    # where requests are lost (printed, not asserted: it is a race), then the shipped one.
    old = open(proxy_conf).read().replace("http_503 non_idempotent;", "http_503;")
    old_conf = os.path.join(work, "proxy-without-non-idempotent.conf")
    with open(old_conf, "w") as f:
        f.write(old)
    answered, lost, reasons = loss_rounds("old", old_conf, cert, key, ROUNDS)
    print(f"without non_idempotent: {answered} POSTs answered, {len(lost)} lost in {ROUNDS} "
          f"rounds: {sorted(set(map(str, lost)))}; nginx: {reasons}", flush=True)
    answered, lost, reasons = loss_rounds("shipped", proxy_conf, cert, key, ROUNDS)
    print(f"shipped configuration: {answered} POSTs answered, {len(lost)} lost in {ROUNDS} "
          f"rounds; nginx: {reasons}", flush=True)
    c.check(answered > 100 * ROUNDS, "the load ran", f"{answered} answered")
    c.eq(lost, [], "no POST lost when one instance is stopped under load")
finally:
    for p in processes:
        if p.poll() is None:
            p.kill()
            p.wait()
    if os.environ.get("KEEP"):
        print("kept", work)
    else:
        shutil.rmtree(work, ignore_errors=True)
c.done()
