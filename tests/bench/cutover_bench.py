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
import random
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "release", "mailconfd")
LINES = int(os.environ.get("BENCH_CUTOVER_LINES", "5000000"))
ROUNDS = int(os.environ.get("BENCH_CUTOVER_ROUNDS", "3"))
DOMAINS = 1000
USERS = 50000

CONFIG = """<mailconfd><provider id="provider.test">
<incoming protocol="pop3" host="pop.provider.test" port="995" security="tls"/>
<outgoing host="smtp.provider.test" port="587" security="starttls"/>
<domains file="domains.txt"/></provider></mailconfd>
"""


def generate(path, lines, prefix_path, prefix_lines):
    """Writes `lines` lines; the first `prefix_lines` also go to prefix_path."""
    rng = random.Random(14)
    t = 1764633600.0  # 2025-12-02T00:00:00Z
    written = 0
    qid_counter = 0x10000000
    out = open(path, "w")
    prefix = open(prefix_path, "w")
    chunk = []

    def stamp():
        seconds = int(t)
        micros = int((t - seconds) * 1e6)
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + ".%06d+00:00 mail " % micros

    def ip():
        r = rng.random()
        if r < 0.85:
            return "198.%d.%d.%d" % (rng.randrange(18, 20), rng.randrange(256), rng.randrange(1, 255))
        if r < 0.95:
            return "2001:db8:%x::%x" % (rng.randrange(4096), rng.randrange(1, 65535))
        return "::ffff:203.0.%d.%d" % (rng.randrange(256), rng.randrange(1, 255))

    def user():
        n = rng.randrange(USERS)
        return "user%d@customer%d.test" % (n, n % DOMAINS)

    while written < lines:
        t += rng.random() * 0.02
        s = stamp()
        kind = rng.random()
        pid = rng.randrange(1000, 60000)
        block = []
        client_ip = ip()
        if kind < 0.35:  # a POP3/IMAP login
            proto = "pop3" if rng.random() < 0.6 else "imap"
            block.append(s + "dovecot: %s-login: Login: user=<%s>, method=PLAIN, rip=%s, "
                         "lip=192.0.2.1, mpid=%d, TLS, session=<%x>" % (proto, user(), client_ip, pid, rng.getrandbits(64)))
            block.append(s + "dovecot: %s(%s)<%d><%x>: Disconnected: Logged out top=0/0, retr=1/2048, "
                         "del=0/1, size=2048" % (proto, user(), pid, rng.getrandbits(48)))
        elif kind < 0.85:  # a message: inbound, relayed without AUTH, or submitted with AUTH
            qid_counter += 1
            qid = "%X" % qid_counter
            sender = user()
            sub = rng.random()
            tag = "postfix/submission/smtpd" if sub < 0.3 else "postfix/smtpd"
            block.append(s + "%s[%d]: connect from unknown[%s]" % (tag, pid, client_ip))
            if sub < 0.3:
                block.append(s + "%s[%d]: %s: client=unknown[%s], sasl_method=PLAIN, sasl_username=%s" % (tag, pid, qid, client_ip, sender))
            else:
                block.append(s + "%s[%d]: %s: client=unknown[%s]" % (tag, pid, qid, client_ip))
            block.append(s + "postfix/cleanup[%d]: %s: message-id=<%x@pc.example>" % (pid + 1, qid, rng.getrandbits(64)))
            block.append(s + "postfix/qmgr[900]: %s: from=<%s>, size=%d, nrcpt=1 (queue active)" % (qid, sender, rng.randrange(500, 90000)))
            block.append(s + "%s[%d]: disconnect from unknown[%s] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5" % (tag, pid, client_ip))
            if sub < 0.6:
                block.append(s + "postfix/smtp[%d]: %s: to=<friend%d@remote.example>, relay=mx.remote.example[198.51.100.25]:25, "
                             "delay=0.4, delays=0.1/0/0.1/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as %X)" % (pid + 2, qid, rng.randrange(1000), rng.getrandbits(40)))
            else:
                block.append(s + "postfix/lmtp[%d]: %s: to=<%s>, relay=mail.provider.test[private/dovecot-lmtp], "
                             "delay=0.1, delays=0.05/0/0/0.05, dsn=2.0.0, status=sent (250 2.0.0 <%s> Saved)" % (pid + 2, qid, user(), sender))
            block.append(s + "postfix/qmgr[900]: %s: removed" % qid)
        elif kind < 0.92:  # refused relay attempts (spam) and dry-run warnings
            word = "reject" if rng.random() < 0.7 else "reject_warning"
            block.append(s + "postfix/smtpd[%d]: NOQUEUE: %s: RCPT from unknown[%s]: 554 5.7.1 <x@spam.example>: "
                         "Relay access denied; from=<%s> to=<x@spam.example> proto=ESMTP helo=<pc>" % (pid, word, client_ip, user()))
        elif kind < 0.95:
            block.append(s + "postfix/submission/smtpd[%d]: warning: unknown[%s]: SASL PLAIN authentication failed: "
                         "UGFzc3dvcmQ6, sasl_username=%s" % (pid, client_ip, user()))
        else:  # noise
            block.append(s + "postfix/anvil[77]: statistics: max connection rate 3/60s for (smtp:%s) at Dec  2 10:00:00" % client_ip)
            block.append(s + "postfix/smtpd[%d]: Anonymous TLS connection established from unknown[%s]: TLSv1.3 "
                         "with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" % (pid, client_ip))
        for line in block:
            if written >= lines:
                break
            chunk.append(line)
            written += 1
            if written <= prefix_lines:
                prefix.write(line + "\n")
        if len(chunk) >= 20000:
            out.write("\n".join(chunk) + "\n")
            chunk = []
    if chunk:
        out.write("\n".join(chunk) + "\n")
    out.close()
    prefix.close()


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
