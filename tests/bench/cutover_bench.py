#!/usr/bin/env python3
"""make bench (part): `mailconfd cutover scan` over a generated mail log, against grep.

Generates a realistic Debian 12 mail log (rsyslog RFC 3339 lines; Postfix smtpd, cleanup,
qmgr, smtp/lmtp deliveries, submission with AUTH, relay refusals, SASL failures, anvil and
TLS noise; Dovecot POP3/IMAP logins; IPv4, IPv6 and ::ffff:) of BENCH_CUTOVER_LINES lines
(default 5,000,000) and a 1,000,000-line prefix of it. With the file in the page cache, it
times `grep -c 'client='` and the scan (--json) on one core (taskset), best of
BENCH_CUTOVER_ROUNDS (default 3) each: wall-clock and CPU (user + system) seconds, and the
scan's peak RSS per run (wait4). Both ratios to grep are printed: on a shared machine the
CPU-time ratio is the steadier one. The mailboxes column is the report's mailbox count: the
part of the memory that grows with the number of distinct mailboxes, not with lines.
The files live in a temporary directory that is removed afterwards.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from cutover_log import CONFIG, DOMAINS, generate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "release", "mailconfd")
LINES = int(os.environ.get("BENCH_CUTOVER_LINES", "5000000"))
ROUNDS = int(os.environ.get("BENCH_CUTOVER_ROUNDS", "3"))


def timed(argv, stdout):
    """(wall seconds, CPU seconds, peak RSS in MiB, exit status) of one run."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    return (time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0,
            os.waitstatus_to_exitcode(status))


def best(argv):
    """(best wall s, best CPU s, peak RSS MiB, exit status, output of the last run)."""
    # Output to a real file: GNU grep stops at the first match when its output is /dev/null.
    with tempfile.TemporaryFile() as out:
        runs = []
        for _ in range(ROUNDS):
            out.seek(0)
            out.truncate()
            runs.append(timed(argv, out))
        out.seek(0)
        output = out.read()
    return (min(r[0] for r in runs), min(r[1] for r in runs), max(r[2] for r in runs), runs[-1][3],
            output)


def main():
    if not os.access(BINARY, os.X_OK):
        sys.exit("cutover_bench: %s is not built (make build)" % BINARY)
    directory = tempfile.mkdtemp(prefix="mailconfd-cutover-bench-")
    try:
        with open(os.path.join(directory, "domains.txt"), "w") as f:
            f.write("".join("customer%d.test\n" % i for i in range(DOMAINS)))
        with open(os.path.join(directory, "mailconfd.xml"), "w") as f:
            f.write(CONFIG)
        big = os.path.join(directory, "mail.log")
        small = os.path.join(directory, "mail-1M.log")
        started = time.perf_counter()
        generate(big, LINES, small, min(LINES, 1000000))
        print("cutover bench: generated %d lines (%.0f MB) in %.0f s" % (
            LINES, os.path.getsize(big) / 1e6, time.perf_counter() - started))
        pin = ["taskset", "-c", str((os.cpu_count() or 1) - 1)] if shutil.which("taskset") else []
        env_tz = dict(os.environ, TZ="UTC")
        os.environ.update(env_tz)
        print("%-11s %9s %5s %7s %7s %7s %7s %10s %6s %7s %7s %7s %9s" % (
            "file", "lines", "MB", "grep s", "cpu s", "scan s", "cpu s", "lines/s", "MB/s",
            "x wall", "x cpu", "RSS MiB", "mailboxes"))
        for path, lines in ((small, min(LINES, 1000000)), (big, LINES)):
            subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)  # page cache
            megabytes = os.path.getsize(path) / 1e6
            grep_s, grep_cpu, _, _, _ = best(pin + ["grep", "-c", "client=", path])
            scan_argv = pin + [BINARY, "cutover", "scan", "--config", os.path.join(directory, "mailconfd.xml"),
                               "--mynetworks", "127.0.0.0/8", "--json", path]
            scan_s, scan_cpu, rss, status, output = best(scan_argv)
            if status not in (0, 1):
                sys.exit("cutover_bench: the scan exited %d" % status)
            summary = json.loads(output)["summary"]
            print("%-11s %9d %5.0f %7.2f %7.2f %7.2f %7.2f %10.0f %6.0f %6.1fx %6.1fx %7.1f %9d" % (
                os.path.basename(path), lines, megabytes, grep_s, grep_cpu, scan_s, scan_cpu,
                lines / scan_s, megabytes / scan_s, scan_s / grep_s, scan_cpu / max(grep_cpu, 1e-3),
                rss, summary["total"] + summary["not_hosted"]))
        print("summary of the %d-line scan: %s" % (LINES, json.dumps(summary, separators=(",", ":"))))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
