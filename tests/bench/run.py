#!/usr/bin/env python3
"""make bench: mailconfd against nginx serving the same bytes as static files, in one run.

Both servers run on 127.0.0.1 and are measured alternately with wrk (pinned to the last CPU).
For every row it prints requests/s, p50/p99 latency, server CPU microseconds per request
(utime+stime from /proc, all server processes) and peak RSS, and mailconfd/nginx ratios.
Then it checks the 1,000,000-domain case: load time, RSS, throughput, reload under load.

Bounded: every wrk run lasts BENCH_SECONDS (default 6) and the whole run a few minutes.
Only loopback addresses are used.
"""
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.path.join(ROOT, "build", "release", "mailconfd")
SECONDS = int(os.environ.get("BENCH_SECONDS", "6"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1"))
ONLY = os.environ.get("BENCH_ONLY", "")  # regex on "scenario conns": run only those rows
MILLION = os.environ.get("BENCH_MILLION", "1") != "0"  # 0 skips the 1M-domain checks
JOURNAL = os.environ.get("BENCH_JOURNAL", "1") != "0"  # 0 skips the settings-journal rows
# Another mailconfd binary (the build before a change) measured in the same alternation, so a
# change is judged against its baseline in the same run, under the same load.
BASELINE = os.environ.get("BENCH_BASELINE", "")
CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
ADDRESS = "alice%40example.com"
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


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except FileNotFoundError:
            pass
    return total


def peak_rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if not m:
        raise SystemExit(f"wrk printed a latency this script cannot read: {text!r}")
    value, unit = float(m.group(1)), m.group(2)
    return {"us": value / 1000, "ms": value, "s": value * 1000, "m": value * 60000}[unit]


def wrk(url, connections, seconds, script=None, headers=()):
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    if NCPU > 1 and subprocess.run(["which", "taskset"], capture_output=True).returncode == 0:
        cmd = ["taskset", "-c", str(NCPU - 1)] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    # The latency distribution's own lines ("     50%    1.20ms"), not a "+/- Stdev" column
    # that happens to end in 50% or 99% ("71.50%").
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests": requests, "rps": rps, "p50": p50, "p99": p99,
        "non2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
    }


class Mailconfd:
    def __init__(self, config=None, extra=(), binary=BINARY):
        args = [binary, "serve", "--listen", "127.0.0.1:0"] + (["--config", config] if config else []) + list(extra)
        self.log = tempfile.TemporaryFile()
        started = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        self.ready_seconds = time.monotonic() - started
        m = re.match(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if not m:
            raise SystemExit(f"mailconfd did not start: {line!r}")
        self.port = int(m.group(1))

    def pids(self):
        return [self.proc.pid]

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def log_text(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)


class Nginx:
    CONF = """
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 1000000; keepalive_timeout 65s;
  open_file_cache max=100 inactive=60s; open_file_cache_valid 60s;
  types {{ }}
  server {{
    listen 127.0.0.1:{port} reuseport backlog=4096;
    root {dir}/root;
    location = /mail/config-v1.1.xml {{ default_type "application/xml; charset=utf-8"; }}
    location = /autodiscover/autodiscover.xml {{ default_type "text/xml; charset=utf-8"; }}
  }}
}}
"""

    def __init__(self, directory, port):
        self.dir = directory
        self.port = port
        with open(f"{directory}/nginx.conf", "w") as f:
            f.write(self.CONF.format(workers=NCPU, dir=directory, port=port))
        subprocess.run(["nginx", "-c", f"{directory}/nginx.conf", "-p", directory], check=True)
        for _ in range(100):
            if os.path.exists(f"{directory}/nginx.pid"):
                break
            time.sleep(0.05)
        with open(f"{directory}/nginx.pid") as f:
            self.master = int(f.read())
        time.sleep(0.2)

    def pids(self):
        return [self.master] + children(self.master)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        os.kill(self.master, signal.SIGQUIT)
        time.sleep(0.3)


def measure(server, path, connections, script=None, headers=()):
    pids = server.pids()
    before = cpu_ticks(pids)
    result = wrk(server.url(path), connections, SECONDS, script, headers)
    used = cpu_ticks(pids) - before
    result["cpu_us"] = used * 1e6 / CLK_TCK / max(result["requests"], 1)
    result["rss_mb"] = peak_rss_kb(server.pids()) / 1024
    return result


def fetch(url, body=None):
    request = urllib.request.Request(url, data=body.encode() if body else None,
                                     headers={"Content-Type": "text/xml; charset=utf-8"} if body else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def median_row(rows):
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]}


def journal_rows(work, started):
    """The settings journal's cost: GET autoconfig with a new address on every request (nothing
    folds; each run has addresses of its own, so no run repeats another's), keep-alive, 64
    connections, against the same binary with the journal off; they alternate, at least 3
    rounds, median. With BENCH_BASELINE the baseline binary's off and on runs join the same
    alternation (its own journal file)."""
    with open(os.path.join(ROOT, "deploy/example/mailconfd.xml")) as f:
        example = f.read()
    binaries = {"": BINARY}
    if BASELINE:
        binaries["baseline "] = BASELINE
    configs = {}
    for prefix in binaries:
        for name, extra in (("off", ""),
                            ("on", f'<journal file="{work}/{prefix.strip() or "now"}.sqlite"/>')):
            configs[prefix + name] = f"{work}/journal-{prefix.strip() or 'now'}-{name}.xml"
            with open(configs[prefix + name], "w") as f:
                f.write(example.replace("<setup lang=\"en\"/>", "<setup lang=\"en\"/>" + extra))
    rows = {name: [] for name in configs}
    loads = []
    run = 0
    for round_number in range(max(ROUNDS, 3)):
        order = list(configs) if round_number % 2 == 0 else list(reversed(configs))
        for name in order:
            run += 1
            script = f"{work}/distinct-{run}.lua"
            with open(script, "w") as f:
                f.write("counter = 0\n"
                        "request = function()\n"
                        "  counter = counter + 1\n"
                        f"  return wrk.format(nil, \"/mail/config-v1.1.xml?emailaddress=u{run}x\" .."
                        " counter .. \"%40example.com\")\n"
                        "end\n")
            binary = binaries["baseline "] if name.startswith("baseline ") else BINARY
            server = Mailconfd(configs[name], binary=binary)
            started.append(server)
            rows[name].append(measure(server, "/", 64, script))
            server.stop()
            started.remove(server)
            loads.append(os.getloadavg()[0])
    print("\n| GET autoconfig, a new address per request, c64 | req/s | CPU µs/req | p99 ms | errors |")
    print("|---|---|---|---|---|")
    for prefix in binaries:
        off, on = median_row(rows[prefix + "off"]), median_row(rows[prefix + "on"])
        label = prefix or ("now " if BASELINE else "")
        for name, r in (("journal off", off), ("journal on", on)):
            print(f"| {label}{name} | {r['rps']:,.0f} | {r['cpu_us']:.1f} | {r['p99']:.2f} "
                  f"| {r['non2xx'] + r['socket_errors']:.0f} |")
        print(f"| {label}on/off | {on['rps'] / off['rps']:.3f} | {on['cpu_us'] / off['cpu_us']:.3f} | | |")
        ratios = [f"{a['cpu_us'] / b['cpu_us']:.2f}" for a, b in zip(rows[prefix + "on"],
                                                                    rows[prefix + "off"])]
        print(f"{label}CPU on/off per round: {', '.join(ratios)}")
    with_rows = subprocess.run(["sqlite3", f"{work}/now.sqlite", "SELECT count(*) FROM fetch"],
                               capture_output=True, text=True).stdout.strip()
    print(f"journal rows written: {with_rows}")
    print(f"load average (1 min) after each run: {', '.join(f'{x:.1f}' for x in loads)}")


def main():
    work = tempfile.mkdtemp(prefix="mailconfd-bench-")
    os.chmod(work, 0o755)  # nginx workers run as an unprivileged user
    started = []
    try:
        run(work, started)
    finally:
        for server in started:
            try:
                server.stop()
            except Exception:
                pass
        subprocess.run(["rm", "-rf", work])


def run(work, started):
    os.makedirs(f"{work}/root/mail")
    os.makedirs(f"{work}/root/autodiscover")
    post_lua = f"{work}/post.lua"
    with open(post_lua, "w") as f:
        body = AUTODISCOVER_BODY.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        f.write('wrk.method = "POST"\n')
        f.write(f'wrk.body = "{body}"\n')
        f.write('wrk.headers["Content-Type"] = "text/xml; charset=utf-8"\n')

    mailconfd = Mailconfd()
    started.append(mailconfd)
    status, autoconfig = fetch(mailconfd.url(f"/mail/config-v1.1.xml?emailaddress={ADDRESS}"))
    assert status == 200, status
    with open(f"{work}/root/mail/config-v1.1.xml", "wb") as f:
        f.write(autoconfig)
    status, pox = fetch(mailconfd.url("/autodiscover/autodiscover.xml"), AUTODISCOVER_BODY)
    have_pox = status == 200
    if have_pox:
        with open(f"{work}/root/autodiscover/autodiscover.xml", "wb") as f:
            f.write(pox)
    baseline = None
    if BASELINE:
        baseline = Mailconfd(binary=BASELINE)
        started.append(baseline)
    nginx = Nginx(work, free_port())
    started.append(nginx)
    assert fetch(nginx.url("/mail/config-v1.1.xml"))[1] == autoconfig, "nginx must serve identical bytes"

    scenarios = [
        ("GET autoconfig keep-alive", f"/mail/config-v1.1.xml?emailaddress={ADDRESS}", 16, None, ()),
        ("GET autoconfig keep-alive", f"/mail/config-v1.1.xml?emailaddress={ADDRESS}", 64, None, ()),
        ("GET autoconfig keep-alive", f"/mail/config-v1.1.xml?emailaddress={ADDRESS}", 256, None, ()),
        ("GET autoconfig Connection: close", f"/mail/config-v1.1.xml?emailaddress={ADDRESS}", 64, None,
         ("Connection: close",)),
    ]
    if have_pox:
        for c in (16, 64, 256):
            scenarios.append(("POST Autodiscover (nginx: GET same-size file)", "/autodiscover/autodiscover.xml",
                              c, post_lua, ()))

    scenarios = [s for s in scenarios if re.search(ONLY, f"{s[0]} {s[2]}")]
    table = []
    for name, path, conns, script, headers in scenarios:
        m_rows, n_rows, b_rows = [], [], []
        for round_number in range(ROUNDS):
            order = [(mailconfd, m_rows), (nginx, n_rows)]
            if baseline:
                order.insert(1, (baseline, b_rows))
            if round_number % 2:
                order.reverse()
            for server, rows in order:
                nginx_side = server is nginx
                rows.append(measure(server, path, conns, None if nginx_side else script, headers))
        table.append((name, conns, median_row(m_rows), median_row(n_rows),
                      median_row(b_rows) if b_rows else None))
    for server in (mailconfd, nginx, baseline):
        if server:
            server.stop()
            started.remove(server)

    print(f"\nmachine: {NCPU} CPUs, {os.uname().release}; wrk -t1 pinned to CPU {NCPU - 1}; "
          f"{SECONDS}s per run, {ROUNDS} round(s), median; nginx {NCPU} workers, static files\n")
    header = ("| scenario | conns | mailconfd req/s | nginx req/s | ratio | p50 ms m/n | p99 ms m/n "
              "| CPU µs/req m/n | CPU ratio | peak RSS MB m/n | errors m/n |")
    print(header)
    print("|" + "---|" * 11)
    for name, conns, m, n, _ in table:
        print(f"| {name} | {conns} | {m['rps']:,.0f} | {n['rps']:,.0f} | {m['rps'] / n['rps']:.2f} "
              f"| {m['p50']:.2f} / {n['p50']:.2f} | {m['p99']:.2f} / {n['p99']:.2f} "
              f"| {m['cpu_us']:.1f} / {n['cpu_us']:.1f} | {m['cpu_us'] / n['cpu_us']:.2f} "
              f"| {m['rss_mb']:.1f} / {n['rss_mb']:.1f} "
              f"| {m['non2xx'] + m['socket_errors']:.0f} / {n['non2xx'] + n['socket_errors']:.0f} |")

    if baseline:
        print(f"\nbaseline {BASELINE} in the same alternation:\n")
        print("| scenario | conns | CPU µs/req now / baseline / nginx | now/baseline | baseline/nginx "
              "| now/nginx |")
        print("|" + "---|" * 6)
        for name, conns, m, n, b in table:
            print(f"| {name} | {conns} | {m['cpu_us']:.1f} / {b['cpu_us']:.1f} / {n['cpu_us']:.1f} "
                  f"| {m['cpu_us'] / b['cpu_us']:.2f} | {b['cpu_us'] / n['cpu_us']:.2f} "
                  f"| {m['cpu_us'] / n['cpu_us']:.2f} |")

    if JOURNAL and re.search(ONLY, "journal"):
        journal_rows(work, started)

    if not MILLION:
        return
    # One million hosted domains.
    with open(f"{work}/domains.txt", "w") as f:
        for i in range(1_000_000):
            f.write(f"customer-{i:07d}.example\n")
    with open(os.path.join(ROOT, "deploy/example/mailconfd.xml")) as f:
        example = f.read()
    million = example.replace("<domain>example.org</domain>",
                              f'<domain>example.org</domain>\n    <domains file="{work}/domains.txt"/>')
    with open(f"{work}/million.xml", "w") as f:
        f.write(million)
    big = Mailconfd(f"{work}/million.xml")
    started.append(big)
    rss_loaded = peak_rss_kb(big.pids()) / 1024
    path = "/mail/config-v1.1.xml?emailaddress=bob%40customer-0765432.example"
    assert fetch(big.url(path))[0] == 200
    m = measure(big, path, 64)
    # Reload twice while wrk runs; not one request may fail.
    reload_seconds = max(SECONDS, 8)
    wrk_proc = subprocess.Popen(["wrk", "-t1", "-c64", f"-d{reload_seconds}s", "--timeout", "5s", big.url(path)],
                                stdout=subprocess.PIPE, text=True)
    for _ in range(2):
        time.sleep(reload_seconds / 3)
        big.proc.send_signal(signal.SIGHUP)
    out = wrk_proc.communicate(timeout=reload_seconds + 30)[0]
    time.sleep(0.5)
    reloads = big.log_text().count("reloaded ")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    total = re.search(r"(\d+) requests in", out).group(1)
    rss_after = peak_rss_kb(big.pids()) / 1024
    small = [m_row for name, conns, m_row, *_ in table if name == "GET autoconfig keep-alive" and conns == 64]
    ratio_to_small = f"{m['rps'] / small[0]['rps']:.2f}" if small else "n/a"
    big.stop()
    started.remove(big)
    print(f"\n1,000,000 domains: ready in {big.ready_seconds:.2f} s, RSS {rss_loaded:.0f} MB after load, "
          f"peak {rss_after:.0f} MB after 2 reloads; GET c64 {m['rps']:,.0f} req/s "
          f"({ratio_to_small}x the 2-domain config), {m['cpu_us']:.1f} µs/req; "
          f"reload under load: {reloads} reloads, {total} requests, "
          f"{bad.group(1) if bad else 0} non-2xx, {errors.group(0) if errors else 'no socket errors'}")


if __name__ == "__main__":
    sys.exit(main())
