#!/usr/bin/env python3
"""make bench, TLS part: what many certificates cost, and how fast the built-in ACME client
issues against a real Pebble.

  tls_bench.py MAILCONFD_BINARY

1. Handshake CPU: the same binary started twice, once with 1 certificate and once with 1,000
   (a certificate-directory, one name each), measured alternately in the same run: full
   handshakes (no resumption) with SNI names spread over the 1,000 names, server CPU
   (utime+stime from /proc) per handshake, and the ratio 1,000 : 1.
2. RSS per certificate: (RSS with 1,000 - RSS with 1) / 999, after the handshakes.
3. Issuance: N names (BENCH_ACME_NAMES, default 50) ordered from Pebble (Debian package)
   with http-01 validated against mailconfd through an NSD on loopback; the time from start
   until /metrics counts N issued.

Bounded: BENCH_TLS_HANDSHAKES (default 300) handshakes per round, BENCH_TLS_ROUNDS (default
3) rounds, issuance at most BENCH_ACME_SECONDS (default 600). Only loopback addresses are used.
"""
import os
import re
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from run import free_port  # the bench driver's own (tests/bench/run.py)

BINARY = sys.argv[1] if len(sys.argv) > 1 else "build/release/mailconfd"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HANDSHAKES = int(os.environ.get("BENCH_TLS_HANDSHAKES", "300"))
ROUNDS = int(os.environ.get("BENCH_TLS_ROUNDS", "3"))
ACME_NAMES = int(os.environ.get("BENCH_ACME_NAMES", "50"))
ACME_SECONDS = int(os.environ.get("BENCH_ACME_SECONDS", "600"))
CERTS = 1000
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"^VmRSS:\s+(\d+)", f.read(), re.M).group(1))


def example_config(work, tls, extra=""):
    with open(os.path.join(ROOT, "deploy/example/mailconfd.xml")) as f:
        text = f.read()
    text = text.replace("  </server>", f"    {tls}\n  </server>", 1)
    text = text.replace("</mailconfd>", extra + "</mailconfd>", 1)
    path = os.path.join(work, f"mailconfd-{time.monotonic_ns()}.xml")
    with open(path, "w") as f:
        f.write(text)
    return path


class Mailconfd:
    def __init__(self, config, listen="127.0.0.1:0"):
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [BINARY, "serve", "--config", config, "--listen", listen, "--tls-listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.port = self.tls_port = 0
        for _ in range(4):
            line = self.proc.stdout.readline()
            m = re.match(r"listening on (https?)://127\.0\.0\.1:(\d+)", line)
            if m and m.group(1) == "http":
                self.port = int(m.group(2))
            elif m:
                self.tls_port = int(m.group(2))
                break
        if not self.tls_port:
            self.log.seek(0)
            raise SystemExit(f"mailconfd did not start: {self.log.read().decode(errors='replace')}")

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            return r.read().decode()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)


def handshakes(port, names, count):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    for i in range(count):
        with socket.create_connection(("127.0.0.1", port)) as raw:
            with context.wrap_socket(raw, server_hostname=names[i % len(names)]) as tls:
                tls.do_handshake()


def bench_handshakes(work):
    key = os.path.join(work, "shared.key")
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-out", key], check=True, capture_output=True)
    certs = os.path.join(work, "certs")
    os.mkdir(certs)
    names = [f"host-{i:04}.bench.test" for i in range(CERTS)]
    started = time.monotonic()
    # One openssl process per 100 certificates (a shell loop), not one Python call each.
    for first in range(0, CERTS, 100):
        script = "".join(
            f"openssl req -x509 -key {key} -subj /CN={n} -addext subjectAltName=DNS:{n} "
            f"-days 30 -out {certs}/{n}.pem 2>/dev/null && cp {key} {certs}/{n}.key\n"
            for n in names[first:first + 100])
        subprocess.run(["sh", "-e"], input=script, text=True, check=True)
    print(f"made {CERTS} certificates in {time.monotonic() - started:.1f} s")
    default = os.path.join(work, "default.pem")
    subprocess.run(["openssl", "req", "-x509", "-key", key, "-subj", "/CN=default.bench.test",
                    "-days", "30", "-out", default], check=True, capture_output=True)
    one = Mailconfd(example_config(work, f'<tls certificate="{default}" key="{key}"/>'))
    many = Mailconfd(example_config(
        work, f'<tls certificate="{default}" key="{key}" certificate-directory="{certs}"/>'))
    try:
        handshakes(one.tls_port, names, 20)  # warm up both
        handshakes(many.tls_port, names, 20)
        per = {"1": [], str(CERTS): []}
        for _ in range(ROUNDS):
            for label, server in (("1", one), (str(CERTS), many)):
                before = cpu_ticks(server.proc.pid)
                handshakes(server.tls_port, names, HANDSHAKES)
                per[label].append((cpu_ticks(server.proc.pid) - before) * 1e6 / CLK_TCK / HANDSHAKES)
        rss_one, rss_many = rss_kb(one.proc.pid), rss_kb(many.proc.pid)
    finally:
        one.stop()
        many.stop()
    cpu_one, cpu_many = statistics.median(per["1"]), statistics.median(per[str(CERTS)])
    print(f"handshake CPU, 1 certificate:      {cpu_one:7.0f} us (rounds: "
          + ", ".join(f"{x:.0f}" for x in per["1"]) + ")")
    print(f"handshake CPU, {CERTS} certificates: {cpu_many:7.0f} us (rounds: "
          + ", ".join(f"{x:.0f}" for x in per[str(CERTS)]) + ")")
    print(f"ratio {CERTS} : 1 = {cpu_many / cpu_one:.2f}")
    print(f"RSS: {rss_one / 1024:.1f} MiB with 1, {rss_many / 1024:.1f} MiB with {CERTS}: "
          f"{(rss_many - rss_one) / (CERTS - 1):.1f} KiB per certificate")


def start_nsd(work):
    port = free_port()
    zone = ("$ORIGIN bench.test.\n$TTL 60\n@ IN SOA ns.bench.test. hostmaster.bench.test. 1 3600 "
            "600 86400 60\n@ IN NS ns.bench.test.\n@ IN A 127.0.0.1\n* IN A 127.0.0.1\n")
    with open(f"{work}/bench.test.db", "w") as f:
        f.write(zone)
    with open(f"{work}/nsd.conf", "w") as f:
        f.write(f"""server:
  ip-address: 127.0.0.1@{port}
  port: {port}
  do-ip6: no
  username: ""
  chroot: ""
  zonesdir: "{work}"
  database: ""
  zonelistfile: "{work}/zone.list"
  xfrdfile: "{work}/xfrd.state"
  xfrdir: "{work}"
  pidfile: "{work}/nsd.pid"
  logfile: "{work}/nsd.log"
  server-count: 1
remote-control:
  control-enable: no
zone:
  name: bench.test
  zonefile: "{work}/bench.test.db"
""")
    nsd = subprocess.Popen(["/usr/sbin/nsd", "-d", "-c", f"{work}/nsd.conf"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    time.sleep(1)
    return nsd, port


def bench_issuance(work):
    nsd, dns_port = start_nsd(work)
    pebble_port, http_port = free_port(), free_port()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", f"{work}/pebble.key", "-out", f"{work}/pebble.pem",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-days", "2"], check=True, capture_output=True)
    with open(f"{work}/pebble.json", "w") as f:
        f.write(f'{{"pebble": {{"listenAddress": "127.0.0.1:{pebble_port}", '
                f'"managementListenAddress": "127.0.0.1:{free_port()}", '
                f'"certificate": "{work}/pebble.pem", "privateKey": "{work}/pebble.key", '
                f'"httpPort": {http_port}, "tlsPort": {free_port()}, "ocspResponderURL": "", '
                f'"externalAccountBindingRequired": false}}}}\n')
    env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0")
    pebble = subprocess.Popen(["pebble", "-config", f"{work}/pebble.json", "-dnsserver",
                               f"127.0.0.1:{dns_port}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    server = None
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", pebble_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        names = " ".join(f"n{i:04}.bench.test" for i in range(ACME_NAMES))
        key = f"{work}/shared.key"
        config = example_config(
            work, f'<tls certificate="{work}/default.pem" key="{key}"/>',
            f'  <acme ca="https://127.0.0.1:{pebble_port}/dir" ca-certificate="{work}/pebble.pem" '
            f'storage="{work}/acme" names="{names}"/>\n')
        started = time.monotonic()
        server = Mailconfd(config, listen=f"127.0.0.1:{http_port}")
        issued = 0
        while time.monotonic() - started < ACME_SECONDS:
            m = re.search(r'mailconfd_acme_orders_total\{result="issued"\} (\d+)', server.metrics())
            issued = int(m.group(1))
            failed = re.search(r'mailconfd_acme_orders_total\{result="failed"\} (\d+)',
                               server.metrics()).group(1)
            if issued >= ACME_NAMES or failed != "0":
                break
            time.sleep(0.2)
        took = time.monotonic() - started
        print(f"issuance: {issued} of {ACME_NAMES} names from Pebble (http-01) in {took:.1f} s "
              f"({took / max(issued, 1):.2f} s per name, one order at a time); failed: {failed}")
    finally:
        if server:
            server.stop()
        os.killpg(pebble.pid, signal.SIGTERM)
        pebble.wait(timeout=20)
        os.killpg(nsd.pid, signal.SIGTERM)
        nsd.wait(timeout=20)


def main():
    with tempfile.TemporaryDirectory(prefix="mailconfd-tls-bench-") as work:
        bench_handshakes(work)
        bench_issuance(work)


if __name__ == "__main__":
    main()
