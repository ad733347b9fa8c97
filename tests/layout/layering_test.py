#!/usr/bin/env python3
"""The include layering README's tour states, checked on every source file of service/.

cli/ may use daemon/ (and everything below it); daemon/ may use http/; the rooms below http/
and the files at the top of service/ (app, metrics, endpoint, log, notify) never include http/,
daemon/ or cli/; main.cpp is a dispatcher that includes only cli/ headers
(and the standard library); every subcommand in main.cpp's table lives in cli/<name>.cpp.
Exit 0 when all holds, 1 with one line per violation.
"""
import os
import re
import sys

ROOT = sys.argv[1]
SERVICE = os.path.join(ROOT, "service")
BELOW_HTTP = ["config", "core", "render", "sign", "tls", "dns", "probe", "cutover", "journal",
              "cockpit", "acme", "acme_store", "source"]
INCLUDE = re.compile(r'^#include "([^"]+)"', re.M)

problems = []


def includes(path):
    with open(path, encoding="utf-8") as f:
        return INCLUDE.findall(f.read())


for dirpath, _, files in os.walk(SERVICE):
    for name in files:
        if not name.endswith((".h", ".cpp")):
            continue
        path = os.path.join(dirpath, name)
        rel = os.path.relpath(path, SERVICE)
        room = rel.split(os.sep)[0] if os.sep in rel else ""
        for inc in includes(path):
            top = inc.split("/")[0] if "/" in inc else ""
            if (room in BELOW_HTTP or room == "") and rel != "main.cpp" and top in ("http", "daemon", "cli"):
                problems.append(f"service/{rel}: {room or rel} is below http/ but includes {inc}")
            if room == "http" and top in ("daemon", "cli"):
                problems.append(f"service/{rel}: http/ includes {inc}")
            if room == "daemon" and top == "cli":
                problems.append(f"service/{rel}: daemon/ includes {inc}")

main = os.path.join(SERVICE, "main.cpp")
for inc in includes(main):
    if not inc.startswith("cli/"):
        problems.append(f"service/main.cpp: a dispatcher includes {inc}")
with open(main, encoding="utf-8") as f:
    text = f.read()
for name, function in re.findall(r'Command\{"([a-z]+)", cli::([a-z_]+)\}', text):
    if not os.path.exists(os.path.join(SERVICE, "cli", name + ".cpp")):
        problems.append(f"service/main.cpp: command {name} has no service/cli/{name}.cpp")
if len(re.findall(r"Command\{", text)) < 7:
    problems.append("service/main.cpp: the command table lists fewer than 7 commands")
if len(text.splitlines()) > 120:
    problems.append(f"service/main.cpp: {len(text.splitlines())} lines; a dispatcher stays short")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
