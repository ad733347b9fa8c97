#!/usr/bin/env python3
"""deploy/systemd/mailconfd.service under real systemd: a Debian 12 tree (debian-base.sh
nspawn-tree) booted with systemd-nspawn, the image's binary (MAILCONFD_BINARY) in
/usr/bin. The container shares the host's network namespace; mailconfd listens on
127.0.0.1 only. Checked: Type=notify readiness, the hardening as the kernel sees it, HTTPS
with a 0640 root:ssl-cert key, <mobileconfig secret-file> readable through the same group,
reload with a good and a broken file, the settings journal and the cockpit under the unit
(StateDirectory), the cut-off scan's service and timer (deploy/systemd/mailconfd-cutover-scan.*)
on a canned /var/log/mail.log (root:adm 0640) with the report shown by the cockpit, stop with a
stalled client, and that a key only root can read stops the start with a message naming the
file."""
import base64
import csv
import io
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

from common import (BASE, DEPLOY, Checks, answers, free_port, request, run, runtime_packages,
                    wait_until)

BINARY = os.environ.get("MAILCONFD_BINARY", "")
# The binary's libraries as the image has them; procps: /bin/kill of ExecReload.
PACKAGES = runtime_packages() + ["ssl-cert", "openssl", "procps"]
SECRET = "a-profile-secret-that-never-changes"
c = Checks("systemd")
work = tempfile.mkdtemp(prefix="mailconfd-systemd-", dir="/var/tmp")
tree = os.path.join(work, "tree")
port, tls_port, admin_port = free_port(), free_port(), free_port()
COCKPIT_PASSWORD = "cockpit-password-for-the-test"

CONFIG = """<?xml version="1.0" encoding="utf-8"?>
<mailconfd>
  <server listen="127.0.0.1:{port}" shutdown-grace="{grace}">
    <tls listen="127.0.0.1:{tls_port}" certificate="/etc/ssl/certs/mailconfd.pem"
         key="/etc/ssl/private/mailconfd.key"/>
  </server>
  <mobileconfig {secret}/>{cockpit}
  <provider id="example.net">
    <display-name>{name}</display-name>
    <incoming protocol="imap" host="imap.example.net" port="993" security="tls"/>
    <outgoing host="smtp.example.net" port="587" security="starttls"/>
    <domain>example.com</domain>
  </provider>
</mailconfd>
"""


# README's snippets for the journal and the cockpit, as they are.
COCKPIT = """
  <journal file="/var/lib/mailconfd/journal.sqlite" retention="180d"/>
  <cockpit report="/var/lib/mailconfd/cutover.json" password-file="/etc/mailconfd/cockpit.passwd"/>"""


def config(name="Example Mail", grace="2s", secret='secret-file="/etc/mailconfd/mobileconfig-secret"',
           cockpit=False):
    text = CONFIG.format(port=port, tls_port=tls_port, grace=grace, name=name, secret=secret,
                         cockpit=COCKPIT if cockpit else "")
    if cockpit:
        text = text.replace('shutdown-grace="2s">',
                            f'shutdown-grace="2s">\n    <metrics listen="127.0.0.1:{admin_port}"/>')
    return text


# anna relays via the POP-before-SMTP map; bert relays, then submits with SMTP-Auth (rsyslog's
# format, as Debian 12 writes /var/log/mail.log).
MAIL_LOG = "".join(f"2026-12-01T{t}.000000+00:00 mail {line}\n" for t, line in [
    ("10:00:00", "dovecot: pop3-login: Login: user=<anna@example.com>, method=PLAIN, "
                 "rip=203.0.113.10, lip=192.0.2.1, mpid=1, TLS, session=<a>"),
    ("10:00:05", "postfix/smtpd[5]: A1: client=pc[203.0.113.10]"),
    ("10:00:05", "postfix/qmgr[6]: A1: from=<anna@example.com>, size=1, nrcpt=1"),
    ("10:00:05", "postfix/smtp[7]: A1: to=<r@remote.test>, relay=mx[198.51.100.1]:25, status=sent (ok)"),
    ("10:01:00", "dovecot: pop3-login: Login: user=<bert@example.com>, method=PLAIN, "
                 "rip=203.0.113.11, lip=192.0.2.1, mpid=1, TLS, session=<b>"),
    ("10:01:05", "postfix/smtpd[5]: B1: client=pc[203.0.113.11]"),
    ("10:01:05", "postfix/qmgr[6]: B1: from=<bert@example.com>, size=1, nrcpt=1"),
    ("10:01:05", "postfix/smtp[7]: B1: to=<r@remote.test>, relay=mx[198.51.100.1]:25, status=sent (ok)"),
    ("10:05:00", "postfix/submission/smtpd[5]: B2: client=pc[203.0.113.11], sasl_method=PLAIN, "
                 "sasl_username=bert@example.com"),
    ("10:05:00", "postfix/qmgr[6]: B2: from=<bert@example.com>, size=1, nrcpt=1"),
])


def write_config(text):
    path = os.path.join(tree, "etc/mailconfd/mailconfd.xml")
    with open(path + ".new", "w") as f:
        f.write(text)
    os.chmod(path + ".new", 0o644)
    os.rename(path + ".new", path)


def descendants(root):
    """Host pids of every process below root."""
    children = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(pid))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def pid_inside(pid):
    """A process's pid in its innermost pid namespace."""
    try:
        m = re.search(r"NSpid:\s+([\d\s]+)\n", open(f"/proc/{pid}/status").read())
    except OSError:
        return None
    return int(m.group(1).split()[-1]) if m else None


def container_init(nspawn_pid, seconds=60):
    """The host pid of the container's systemd (pid 1 inside, below systemd-nspawn)."""
    found = []

    def look():
        for pid in descendants(nspawn_pid):
            if pid_inside(pid) == 1:
                found.append(pid)
                return True
        return False

    wait_until(look, seconds, 0.2)
    return found[0] if found else None


def inside(init, *args, timeout=60):
    return run(["nsenter", "-t", str(init), "-a", *args], timeout=timeout)


def main_pid(init):
    return int(inside(init, "systemctl", "show", "-P", "MainPID", "mailconfd").stdout.strip() or 0)


def host_pid(init, pid_in_container):
    """The host pid of a process known by its pid inside the container."""
    for pid in descendants(init):
        if pid_inside(pid) == pid_in_container:
            return pid
    return None


nspawn = None
init = None
try:
    if not BINARY or not os.access(BINARY, os.X_OK):
        raise RuntimeError("set MAILCONFD_BINARY to a mailconfd binary (run.sh does)")
    run([BASE, "nspawn-tree", tree, *PACKAGES], timeout=900, check=True)
    shutil.copy(BINARY, os.path.join(tree, "usr/bin/mailconfd"))
    for unit in ("mailconfd.service", "mailconfd-cutover-scan.service",
                 "mailconfd-cutover-scan.timer"):
        shutil.copy(os.path.join(DEPLOY, "systemd", unit),
                    os.path.join(tree, "etc/systemd/system", unit))
    os.makedirs(os.path.join(tree, "etc/mailconfd"), exist_ok=True)
    write_config(config())
    # The key: 0640 root:ssl-cert in /etc/ssl/private, as Debian keeps keys.
    key = os.path.join(tree, "etc/ssl/private/mailconfd.key")
    cert = os.path.join(tree, "etc/ssl/certs/mailconfd.pem")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=autodiscover.example.com", "-keyout", key,
         "-out", cert], check=True)
    ssl_cert_gid = int(re.search(r"^ssl-cert:x:(\d+):", open(os.path.join(tree, "etc/group")).read(),
                                 re.M).group(1))
    os.chown(key, 0, ssl_cert_gid)
    os.chmod(key, 0o640)
    os.chmod(cert, 0o644)
    secret_path = os.path.join(tree, "etc/mailconfd/mobileconfig-secret")
    with open(secret_path, "w") as f:
        f.write(SECRET + "\n")
    os.chown(secret_path, 0, ssl_cert_gid)
    os.chmod(secret_path, 0o640)
    # The cockpit's password file, made as README says, readable through ssl-cert; the mail log
    # as Debian's rsyslog keeps it: root:adm 0640.
    passwd = os.path.join(tree, "etc/mailconfd/cockpit.passwd")
    with open(passwd, "w") as f:
        f.write(subprocess.run([BINARY, "cockpit", "password", "admin"], input=COCKPIT_PASSWORD + "\n",
                               capture_output=True, text=True, timeout=30, check=True).stdout)
    os.chown(passwd, 0, ssl_cert_gid)
    os.chmod(passwd, 0o640)
    adm_gid = int(re.search(r"^adm:x:(\d+):", open(os.path.join(tree, "etc/group")).read(),
                            re.M).group(1))
    mail_log = os.path.join(tree, "var/log/mail.log")
    with open(mail_log, "w") as f:
        f.write(MAIL_LOG)
    os.chown(mail_log, 0, adm_gid)
    os.chmod(mail_log, 0o640)
    # A container shares nothing it needs to talk to; no getty on a console nobody reads.
    for unit in ("getty@tty1.service", "console-getty.service"):
        os.symlink("/dev/null", os.path.join(tree, "etc/systemd/system", unit))

    log = open(os.path.join(work, "nspawn.log"), "w")
    nspawn = subprocess.Popen(["systemd-nspawn", "-q", "--register=no", "--keep-unit", "-D", tree,
                               "-b"], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    init = container_init(nspawn.pid)
    if not c.check(init is not None, "the container's systemd runs",
                   open(os.path.join(work, "nspawn.log")).read()[-2000:]):
        raise RuntimeError("no container")
    c.check(wait_until(lambda: inside(init, "systemctl", "is-system-running").stdout.strip()
                       in ("running", "degraded"), 90, 0.5), "the container finishes booting",
            inside(init, "systemctl", "--failed", "--no-legend").stdout)

    # Type=notify: `systemctl start` returns once mailconfd said READY=1, so the very first
    # request after it is answered.
    started = inside(init, "systemctl", "start", "mailconfd")
    c.eq(started.returncode, 0, f"systemctl start: {started.stderr}")
    first = request(port, "GET", "/readyz", timeout=5)
    c.eq(first.status, 200, "answers at once when systemctl start returns (READY=1)")
    show = inside(init, "systemctl", "show", "-p", "Type,ActiveState,SubState,NRestarts",
                  "mailconfd").stdout
    c.eq(sorted(show.split()), ["ActiveState=active", "NRestarts=0", "SubState=running",
                                "Type=notify"], "unit state")

    # The hardening as the kernel sees it.
    pid = host_pid(init, main_pid(init))
    status = open(f"/proc/{pid}/status").read()
    field = lambda name: re.search(rf"^{name}:\s*(.*)$", status, re.M).group(1).split()
    uid = int(field("Uid")[0])
    c.check(61184 <= uid <= 65519, "runs as a dynamic user", f"uid {uid}")
    c.eq(field("Uid"), [str(uid)] * 4, "no other uid")
    c.check(str(ssl_cert_gid) in field("Groups"), "member of ssl-cert", str(field("Groups")))
    c.eq(field("NoNewPrivs"), ["1"], "NoNewPrivileges")
    c.eq(field("Seccomp"), ["2"], "system-call filter")
    c.eq(field("CapBnd"), ["0000000000000400"], "bounding set: CAP_NET_BIND_SERVICE only")
    c.eq(field("CapEff"), ["0000000000000400"], "effective: CAP_NET_BIND_SERVICE only")
    mounts = open(f"/proc/{pid}/mountinfo").read().splitlines()
    opts = {line.split()[4]: line.split()[5] for line in mounts}
    c.check(opts.get("/", "").startswith("ro"), "/ is read-only (ProtectSystem=strict)", opts.get("/"))
    c.check(opts.get("/etc", opts.get("/", "")).startswith("ro"), "/etc is read-only")
    c.check("/tmp" in opts, "a private /tmp (PrivateTmp)")
    c.check(os.listdir(f"/proc/{pid}/root/home") == [], "/home is empty (ProtectHome)")
    # ProtectProc=invisible: the service sees only its own processes.
    seen = inside(init, "nsenter", "-t", str(main_pid(init)), "-m", "-S", str(uid), "-G",
                  str(uid), "ls", "/proc").stdout.split()
    c.check("self" in seen and "1" not in seen and len([p for p in seen if p.isdigit()]) <= 2,
            "the service user sees no other user's process (ProtectProc=invisible)",
            str(seen)[:300])

    # HTTPS with the 0640 root:ssl-cert key; the profile with the secret from its file.
    tls = run(["openssl", "s_client", "-quiet", "-connect", f"127.0.0.1:{tls_port}", "-servername",
               "autodiscover.example.com"],
              input="GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=20)
    c.check(tls.stdout.startswith("HTTP/1.1 200") and tls.stdout.endswith("ok\n"),
            "HTTPS answers with the ssl-cert key", tls.stdout[:300] + tls.stderr[-300:])
    host_config = os.path.join(work, "inline-secret.xml")
    with open(host_config, "w") as f:
        f.write(config(secret=f'secret="{SECRET}"').replace(
            "/etc/ssl/", os.path.join(tree, "etc/ssl/")))
    expected = subprocess.run([BINARY, "render", "mobileconfig", "alice@example.com", "--config",
                               host_config], capture_output=True, timeout=30).stdout
    profile = request(port, "GET", "/email.mobileconfig?emailaddress=alice%40example.com")
    c.eq(profile.status, 200, "profile status")
    c.check(len(expected) > 500 and profile.body == expected,
            "the profile's ids come from the secret in secret-file")

    # Reload: a good file is served; a broken one fails `systemctl reload` and changes nothing.
    before = main_pid(init)
    write_config(config(name="Reloaded Mail"))
    r = inside(init, "systemctl", "reload", "mailconfd")
    c.eq(r.returncode, 0, f"systemctl reload with a good file: {r.stderr}")
    c.check(wait_until(lambda: "Reloaded Mail" in request(
        port, "GET", "/mail/config-v1.1.xml?emailaddress=alice%40example.com").text(), 10),
        "the reloaded configuration is served",
        inside(init, "journalctl", "-u", "mailconfd", "--no-pager", "-o", "cat").stdout[-3000:])
    write_config(config(name="Broken").replace("<domain>", "<domian>"))
    r = inside(init, "systemctl", "reload", "mailconfd")
    c.check(r.returncode != 0, "systemctl reload with a broken file fails", r.stderr)
    journal = inside(init, "journalctl", "-u", "mailconfd", "--no-pager", "-o", "cat").stdout
    c.check(re.search(r"/etc/mailconfd/mailconfd\.xml:\d+:\d+: not well-formed XML", journal)
            is not None,
            "the journal names FILE:LINE of the problem", journal[-1500:])
    c.eq(main_pid(init), before, "same process after both reloads")
    c.eq(inside(init, "systemctl", "is-active", "mailconfd").stdout.strip(), "active",
         "still active after the broken reload")
    c.contains(request(port, "GET", "/mail/config-v1.1.xml?emailaddress=alice%40example.com").text(),
               "Reloaded Mail", "the previous configuration still serves")
    write_config(config(name="Reloaded Mail"))

    # The journal and the cockpit under the shipped unit: adding them needs a restart; the
    # journal writes into the StateDirectory (/var/lib/mailconfd, ProtectSystem=strict).
    write_config(config(name="Reloaded Mail", cockpit=True))
    r = inside(init, "systemctl", "restart", "mailconfd")
    c.eq(r.returncode, 0, f"systemctl restart with the journal and the cockpit: {r.stderr}")
    cockpit_auth = {"Authorization": "Basic " + base64.b64encode(
        f"admin:{COCKPIT_PASSWORD}".encode()).decode()}

    def cockpit_csv():
        answer = request(admin_port, "GET", "/cockpit/contacts.csv", headers=cockpit_auth)
        if answer.status != 200:
            return {}
        return {row["address"]: row for row in csv.DictReader(io.StringIO(answer.text()))}

    c.eq(request(admin_port, "GET", "/cockpit").status, 401, "the cockpit asks for the password")
    c.contains(request(admin_port, "GET", "/cockpit", headers=cockpit_auth).text(),
               "No scan report yet", "the cockpit before the first scan")
    # anna fetches new settings with Thunderbird: the journal records it in its file.
    c.eq(request(port, "GET", "/mail/config-v1.1.xml?emailaddress=anna%40example.com",
                 headers={"User-Agent": "Mozilla/5.0 Thunderbird/128.5.0"}).status, 200,
         "anna's autoconfig request")
    state_dir = os.path.join(tree, "var/lib/private/mailconfd")
    c.check(wait_until(lambda: os.path.getsize(os.path.join(state_dir, "journal.sqlite")) > 0, 10),
            "the journal's file is written in the state directory",
            inside(init, "journalctl", "-u", "mailconfd", "--no-pager", "-o", "cat").stdout[-2000:])
    c.check(os.path.islink(os.path.join(tree, "var/lib/mailconfd")),
            "/var/lib/mailconfd is the dynamic user's state directory")
    journal = inside(init, "journalctl", "-u", "mailconfd", "--no-pager", "-o", "cat").stdout
    c.lacks(journal, "journal: cannot write", "the journal writes under the unit")
    c.contains(journal, "settings journal on: /var/lib/mailconfd/journal.sqlite",
               "the journal is on")

    # The scan's service, as the timer starts it: the report appears and the cockpit shows it.
    r = inside(init, "systemctl", "start", "mailconfd-cutover-scan.service", timeout=120)
    scan_log = inside(init, "journalctl", "-u", "mailconfd-cutover-scan", "--no-pager", "-o",
                      "cat").stdout
    c.eq(r.returncode, 0, f"systemctl start mailconfd-cutover-scan.service: {r.stderr} {scan_log[-1500:]}")
    show = inside(init, "systemctl", "show", "-p", "Result,ExecMainStatus",
                  "mailconfd-cutover-scan.service").stdout
    c.eq(sorted(show.split()), ["ExecMainStatus=0", "Result=success"],
         "the scan succeeded (anna at risk still moves the report into place)")
    report = os.path.join(state_dir, "cutover.json")
    c.check(os.path.exists(report) and not os.path.exists(report + ".tmp"),
            "the report replaced atomically", str(os.listdir(state_dir)))
    c.check(os.path.exists(os.path.join(state_dir, "cutover.state")), "the scan's state is kept")
    c.eq(os.stat(report).st_uid, os.stat(os.path.join(state_dir, "journal.sqlite")).st_uid,
         "the scan runs as mailconfd's user")
    rows = {}
    c.check(wait_until(lambda: rows.update(cockpit_csv()) or
                       rows.get("anna@example.com", {}).get("state") == "fetched", 10),
            "the cockpit shows the scan's report", str(rows))
    c.eq({a: (r["state"], r["ips"], r["fetched_settings"] != "") for a, r in rows.items()},
         {"anna@example.com": ("fetched", "203.0.113.10", True),
          "bert@example.com": ("switched", "203.0.113.11", False)},
         "the cockpit's contact list: anna fetched new settings, bert switched")
    # The timer is enabled and waits for its next run.
    r = inside(init, "systemctl", "enable", "--now", "mailconfd-cutover-scan.timer")
    c.eq(r.returncode, 0, f"systemctl enable --now the timer: {r.stderr}")
    c.eq(inside(init, "systemctl", "is-active", "mailconfd-cutover-scan.timer").stdout.strip(),
         "active", "the timer is active")
    c.check(inside(init, "systemctl", "show", "-P", "NextElapseUSecRealtime",
                   "mailconfd-cutover-scan.timer").stdout.strip() != "",
            "the timer has a next run")

    # Stop with a client that never finishes its request: the drain waits shutdown-grace
    # (2 s here), then mailconfd exits 0 well before TimeoutStopSec.
    stalled = socket.create_connection(("127.0.0.1", port), timeout=10)
    stalled.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()
    r = inside(init, "systemctl", "stop", "mailconfd")
    took = time.monotonic() - t0
    stalled.close()
    c.eq(r.returncode, 0, "systemctl stop")
    c.check(1.5 <= took < 8, "stop waits for the stalled client up to shutdown-grace, no longer",
            f"{took:.1f} s")
    show = inside(init, "systemctl", "show", "-p", "Result,ExecMainStatus,ActiveState",
                  "mailconfd").stdout
    c.eq(sorted(show.split()), ["ActiveState=inactive", "ExecMainStatus=0", "Result=success"],
         "clean exit after the drain")

    # A key only root can read: the start fails, and the journal names the file.
    os.chmod(key, 0o600)
    os.chown(key, 0, 0)
    r = inside(init, "systemctl", "start", "mailconfd")
    c.check(r.returncode != 0, "start fails with a 0600 root key")
    journal = inside(init, "journalctl", "-u", "mailconfd", "--no-pager", "-o", "cat").stdout
    c.contains(journal, "cannot load key '/etc/ssl/private/mailconfd.key': "
               "error:8000000D:system library::Permission denied",
               "the journal names the file the service user cannot read")
    c.eq(answers(port), None, "nothing listens after the failed start")
finally:
    if init:
        inside(init, "systemctl", "poweroff", "--no-block")
    if nspawn:
        try:
            nspawn.wait(timeout=60)
        except subprocess.TimeoutExpired:
            nspawn.kill()
            nspawn.wait()
    shutil.rmtree(work, ignore_errors=True)
c.done()
