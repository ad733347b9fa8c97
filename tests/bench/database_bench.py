#!/usr/bin/env python3
"""make bench, the database source: 1,000,000 domains and 2,000,000 mailboxes with login names
read from a real PostgreSQL 15 (Debian's), against the same 1,000,000 domains from the file.

A temporary cluster (as the end-to-end test starts it: an unprivileged user, a unix socket
in a temporary directory, nothing on the network) gets PostfixAdmin's tables and mailconfd's
(deploy/container/database/postfixadmin.sql, deploy/database/postgresql.sql), filled with SQL
generate_series: customer-0000000.example ... customer-0999999.example, two mailboxes each
(u1@, u2@) with a login name each (w<domain>p1, w<domain>p2). Then, printed as one table:

* load: seconds from the start of `mailconfd serve` to its "listening" line (the rows read,
  checked and indexed), and RSS after the load and at its peak;
* change to answer: a login name changed with UPDATE (the trigger's NOTIFY), then the time
  until the answer carries it (polled every 10 ms), BENCH_DB_CHANGES times (default 3), the
  median and the largest, and the peak RSS while the changes are applied (VmHWM reset after
  the load): with the change log (only the changed domain's rows read and merged), and, as
  before the change log existed, by a second server that reads every row for each change
  (the default queries given as <domains-query>/<logins-query>, which turns the change log
  off);
* CPU per request: GET autoconfig for a mailbox of the generated domains, keep-alive, 64
  connections, with the database source and with the same domains from a <domains file>,
  both servers up at once and measured alternately (BENCH_ROUNDS, at least 3; BENCH_SECONDS
  each), the median and the ratio database/file.

Usage: database_bench.py [MAILCONFD_BINARY]. BENCH_DB_DOMAINS (default 1000000) scales it.
"""
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (the wrk runs, CPU and RSS from /proc, the server wrapper)

ROOT = bench.ROOT
PGBIN = "/usr/lib/postgresql/15/bin"
DOMAINS = int(os.environ.get("BENCH_DB_DOMAINS", "1000000"))
CHANGES = int(os.environ.get("BENCH_DB_CHANGES", "3"))
ROUNDS = max(bench.ROUNDS, 3)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Postgres:
    """A throw-away PostgreSQL 15 cluster on a unix socket in directory."""

    def __init__(self, directory):
        self.dir = directory
        self.data = os.path.join(directory, "pg")
        self.sock = os.path.join(directory, "sock")
        self.as_pg = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        os.mkdir(self.data)
        os.mkdir(self.sock)
        if self.as_pg:
            shutil.chown(self.data, "postgres")
            shutil.chown(self.sock, "postgres")
        subprocess.run([*self.as_pg, f"{PGBIN}/initdb", "-D", self.data, "-U", "admin",
                        "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"],
                       check=True, capture_output=True, timeout=120)
        subprocess.run([*self.as_pg, f"{PGBIN}/pg_ctl", "-D", self.data, "-w", "-t", "60", "-l",
                        os.path.join(self.data, "log"), "-o",
                        f"-k {self.sock} -c listen_addresses='' -c fsync=off "
                        "-c synchronous_commit=off -c full_page_writes=off", "start"],
                       check=True, capture_output=True, timeout=120)

    def sql(self, statements, database="mail"):
        r = subprocess.run([f"{PGBIN}/psql", "-h", self.sock, "-U", "admin", "-d", database,
                            "-v", "ON_ERROR_STOP=1", "-qAt"], input=statements,
                           capture_output=True, text=True, timeout=1800)
        if r.returncode != 0:
            raise SystemExit(f"psql: {r.stderr}")
        return r.stdout

    def stop(self):
        subprocess.run([*self.as_pg, f"{PGBIN}/pg_ctl", "-D", self.data, "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)


def generate(pg, password):
    pg.sql("CREATE DATABASE mail", database="postgres")
    for f in ("deploy/container/database/postfixadmin.sql", "deploy/database/postgresql.sql"):
        with open(os.path.join(ROOT, f)) as sql:
            pg.sql(sql.read())
    last = DOMAINS - 1
    pg.sql(f"""
CREATE ROLE mailconfd LOGIN PASSWORD '{password}';
GRANT SELECT ON domain, alias_domain, mailbox, mailconfd_domain, mailconfd_mailbox,
  mailconfd_change, mailconfd_changed TO mailconfd;
-- as PostfixAdmin's own schema has it (mailbox_domain_idx): the change log reads a domain's
-- mailboxes by it
CREATE INDEX mailbox_domain_idx ON mailbox (domain);
-- the generated rows without the triggers (the change log starts empty)
SET session_replication_role = replica;
INSERT INTO domain (domain)
  SELECT 'customer-' || lpad(i::text, 7, '0') || '.example' FROM generate_series(0, {last}) i;
INSERT INTO mailbox (username, domain)
  SELECT 'u' || j || '@customer-' || lpad(i::text, 7, '0') || '.example',
         'customer-' || lpad(i::text, 7, '0') || '.example'
  FROM generate_series(0, {last}) i, generate_series(1, 2) j;
INSERT INTO mailconfd_mailbox (username, login_name)
  SELECT 'u' || j || '@customer-' || lpad(i::text, 7, '0') || '.example',
         'w' || i || 'p' || j
  FROM generate_series(0, {last}) i, generate_series(1, 2) j;
ANALYZE;
""")
    return pg.sql("SELECT (SELECT count(*) FROM domain WHERE domain <> 'ALL'), "
                  "(SELECT count(*) FROM mailconfd_mailbox)").strip().replace("|", " ")


def default_query(name):
    """The default query `name` as service/source/database.h spells it (adjacent C++ string
    literals), XML-escaped."""
    with open(os.path.join(ROOT, "service/source/database.h")) as f:
        text = f.read()
    body = re.search(name + r" =\s*((?:\s*\"[^\"]*\")+);", text).group(1)
    sql = "".join(re.findall(r'"([^"]*)"', body))
    return sql.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else bench.BINARY
    for tool in (f"{PGBIN}/initdb", binary):
        if not os.access(tool, os.X_OK):
            raise SystemExit(f"database_bench: {tool} missing")
    work = tempfile.mkdtemp(prefix="mailconfd-dbbench-")
    os.chmod(work, 0o755)
    servers = []
    pg = None
    try:
        t0 = time.monotonic()
        pg = Postgres(work)
        password = secrets.token_hex(12)
        counts = generate(pg, password)
        print(f"database bench: PostgreSQL 15 filled with {counts} (domains, login names) in "
              f"{time.monotonic() - t0:.0f} s", flush=True)

        with open(os.path.join(ROOT, "deploy/example/mailconfd.xml")) as f:
            example = f.read()
        with open(f"{work}/dsn", "w") as f:
            f.write(f"host={pg.sock} dbname=mail user=mailconfd password={password}\n")
        with open(f"{work}/database.xml", "w") as f:
            f.write(example.replace("</mailconfd>", '  <database driver="postgresql" dsn-file="dsn"/>\n'
                                    "</mailconfd>"))
        queries = ("<domains-query>" + default_query("kDomainsQuery") + "</domains-query>"
                   "<logins-query>" + default_query("kLoginsQuery") + "</logins-query>")
        with open(f"{work}/full.xml", "w") as f:
            f.write(example.replace("</mailconfd>", '  <database driver="postgresql" dsn-file="dsn">'
                                    + queries + "</database>\n</mailconfd>"))
        with open(f"{work}/domains.txt", "w") as f:
            for i in range(DOMAINS):
                f.write(f"customer-{i:07d}.example\n")
        with open(f"{work}/file.xml", "w") as f:
            f.write(example.replace("<domain>example.org</domain>",
                                    f'<domain>example.org</domain>\n    <domains file="{work}/domains.txt"/>'))

        database = bench.Mailconfd(f"{work}/database.xml", binary=binary)
        servers.append(database)
        load_seconds = database.ready_seconds
        rss_loaded = rss_kb(database.proc.pid) / 1024
        probe = DOMAINS * 3 // 4
        path = f"/mail/config-v1.1.xml?emailaddress=u1%40customer-{probe:07d}.example"
        status, body = bench.fetch(database.url(path))
        assert status == 200 and f"<username>w{probe}p1</username>".encode() in body, (status, body[:300])

        # Change to answer: one row changed, NOTIFY, the changed domain's rows read and merged
        # (or, for the server without the change log, every row read again) and swapped in.
        full = bench.Mailconfd(f"{work}/full.xml", binary=binary)
        servers.append(full)
        full_load = full.ready_seconds
        status, body = bench.fetch(full.url(path))
        assert status == 200 and f"<username>w{probe}p1</username>".encode() in body, (status, body[:300])
        changes = {}
        for name, server in (("log", database), ("full", full)):
            # Peak RSS from here on: the load's own peak is not the changes'.
            with open(f"/proc/{server.proc.pid}/clear_refs", "w") as f:
                f.write("5")
            latencies = []
            for n in range(CHANGES):
                login = f"{name}{n}x{probe}"
                started = time.monotonic()
                pg.sql(f"UPDATE mailconfd_mailbox SET login_name = '{login}' "
                       f"WHERE username = 'u1@customer-{probe:07d}.example'")
                deadline = started + 300
                while time.monotonic() < deadline:
                    if f"<username>{login}</username>".encode() in bench.fetch(server.url(path))[1]:
                        break
                    time.sleep(0.01)
                else:
                    raise SystemExit(f"database bench: the change was not served by {name} within 300 s")
                latencies.append(time.monotonic() - started)
                time.sleep(1)
            # Both servers see every change: wait until the other one is done with them too.
            other = full if server is database else database
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                if f"<username>{login}</username>".encode() in bench.fetch(other.url(path))[1]:
                    break
                time.sleep(0.1)
            changes[name] = (latencies, bench.peak_rss_kb(server.pids()) / 1024,
                             rss_kb(server.proc.pid) / 1024)
        rss_peak = changes["log"][1]
        rss_now = changes["log"][2]
        full.stop()
        servers.remove(full)

        file_server = bench.Mailconfd(f"{work}/file.xml", binary=binary)
        servers.append(file_server)
        file_load = file_server.ready_seconds
        file_rss = rss_kb(file_server.proc.pid) / 1024
        assert bench.fetch(file_server.url(path))[0] == 200
        rows = {"database": [], "file": []}
        for round_number in range(ROUNDS):
            order = [("database", database), ("file", file_server)]
            if round_number % 2:
                order.reverse()
            for name, server in order:
                rows[name].append(bench.measure(server, path, 64))
        db_row, file_row = (bench.median_row(rows[k]) for k in ("database", "file"))
        errors = sum(r["non2xx"] + r["socket_errors"] for k in rows for r in rows[k])
        log = database.log_text()
        if password in log or password in file_server.log_text():
            raise SystemExit("database bench: the DSN's password appeared in a log")

        print(f"\n{DOMAINS:,} domains, {2 * DOMAINS:,} mailboxes with login names; "
              f"{bench.NCPU} CPUs, {os.uname().release}; wrk -t1 -c64 pinned to CPU {bench.NCPU - 1}, "
              f"{bench.SECONDS}s per run, {ROUNDS} alternating rounds, median\n")
        print("| source | ready after start | RSS after load | peak RSS | change to answer median / max "
              "| GET c64 req/s | CPU µs/req |")
        print("|" + "---|" * 7)
        latencies = changes["log"][0]
        print(f"| PostgreSQL | {load_seconds:.2f} s | {rss_loaded:.0f} MB | {rss_peak:.0f} MB "
              f"({rss_now:.0f} MB after {CHANGES} changes) "
              f"| {statistics.median(latencies):.2f} / {max(latencies):.2f} s "
              f"| {db_row['rps']:,.0f} | {db_row['cpu_us']:.1f} |")
        full_latencies, full_peak, full_now = changes["full"]
        print(f"| PostgreSQL, every row read per change (no change log) | {full_load:.2f} s | - "
              f"| {full_peak:.0f} MB ({full_now:.0f} MB after {CHANGES} changes) "
              f"| {statistics.median(full_latencies):.2f} / {max(full_latencies):.2f} s | - | - |")
        print(f"| file (same domains, no login names) | {file_load:.2f} s | {file_rss:.0f} MB | "
              f"{bench.peak_rss_kb(file_server.pids()) / 1024:.0f} MB | - "
              f"| {file_row['rps']:,.0f} | {file_row['cpu_us']:.1f} |")
        per_round = {k: ", ".join("%.1f" % r["cpu_us"] for r in rows[k]) for k in rows}
        print(f"\nCPU per request database/file: {db_row['cpu_us'] / file_row['cpu_us']:.2f} "
              f"(rounds: database {per_round['database']}; file {per_round['file']}); "
              f"failed requests: {errors}")
        reloads = re.findall(r"reloaded .*\(postgresql\)", log)
        updates = re.findall(r"postgresql: 1 changed domains read", log)
        print(f"database reloads logged: {len(reloads)}, of them updates from the change log: "
              f"{len(updates)}", flush=True)
        return 0 if errors == 0 else 1
    finally:
        for server in servers:
            try:
                server.stop()
            except Exception:
                server.proc.send_signal(signal.SIGKILL)
        if pg:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
