#!/usr/bin/env python3
"""The scan's JSON report for the benchmark's generated mail log stays byte for byte the same.

Generates the first LINES lines of the log tests/bench/cutover_bench.py measures (the same
generator, tests/bench/cutover_log.py, with its fixed seed), runs `mailconfd cutover scan
--json` over it, and compares the SHA-256 of the report (its "generated" time, the only part
that depends on the clock, replaced by a fixed one) with the digest checked in next to this
script: any change to what the scan reports for this log (a mailbox, a state, a count, the
order, a byte of formatting) fails it. Then scans the same log in two parts through --state
(the first part, then the whole file again as if the log had grown) and requires the same
report: the saved grace window, logins, pending messages and mailboxes carry over exactly.

After an intended change of the report: BLESS=1 prints the new digest to check in.
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "bench"))
from cutover_log import CONFIG, DOMAINS, generate  # noqa: E402

LINES = 200000
SPLIT = 120000
DIGEST_FILE = os.path.join(HERE, "cutover_output.sha256")


def scan(binary, directory, path, state=None):
    argv = [binary, "cutover", "scan", "--config", os.path.join(directory, "mailconfd.xml"),
            "--mynetworks", "127.0.0.0/8", "--json"]
    if state:
        argv += ["--state", state]
    result = subprocess.run(argv + [path], capture_output=True, env=dict(os.environ, TZ="UTC"),
                            timeout=300)
    if result.returncode not in (0, 1) or result.stderr:
        sys.exit("cutover_output_test: the scan exited %d: %s" % (
            result.returncode, result.stderr[:500].decode(errors="replace")))
    return re.sub(rb'^\{"generated":"[^"]*"', b'{"generated":"-"', result.stdout)


def main():
    binary = sys.argv[1]
    directory = tempfile.mkdtemp(prefix="mailconfd-cutover-output-")
    try:
        with open(os.path.join(directory, "domains.txt"), "w") as f:
            f.write("".join("customer%d.test\n" % i for i in range(DOMAINS)))
        with open(os.path.join(directory, "mailconfd.xml"), "w") as f:
            f.write(CONFIG)
        whole = os.path.join(directory, "mail.log")
        first = os.path.join(directory, "mail-first.log")
        generate(whole, LINES, first, SPLIT)
        report = scan(binary, directory, whole)
        digest = hashlib.sha256(report).hexdigest()
        if os.environ.get("BLESS") == "1":
            print(digest)
            return
        with open(DIGEST_FILE) as f:
            expected = f.read().split()[0]
        if digest != expected:
            sys.exit("cutover_output_test: the report changed: sha256 %s, expected %s (%d bytes, "
                     "starts %r)" % (digest, expected, len(report), report[:300]))
        if report.count(b'"address":') < 1000:
            sys.exit("cutover_output_test: the report names too few mailboxes: %r" % report[:300])
        # In two runs through --state: the first SPLIT lines, then the grown file.
        growing = os.path.join(directory, "growing.log")
        state = os.path.join(directory, "cutover.state")
        shutil.copyfile(first, growing)
        scan(binary, directory, growing, state)
        shutil.copyfile(whole, growing)
        resumed = scan(binary, directory, growing, state)
        if resumed != report:
            sys.exit("cutover_output_test: the report resumed through --state differs: sha256 %s"
                     % hashlib.sha256(resumed).hexdigest())
        print("cutover_output_test: %d lines, report of %d bytes, sha256 %s, the same through "
              "--state" % (LINES, len(report), digest))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
