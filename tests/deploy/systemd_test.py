#!/usr/bin/env python3
"""deploy/systemd/mailconfd.service under real systemd: a Debian 12 tree (debian-base.sh
nspawn-tree) booted with systemd-nspawn, the image's binary (MAILCONFD_BINARY) in
/usr/bin. The container shares the host's network namespace; mailconfd listens on
127.0.0.1 only. Checked: Type=notify readiness, the hardening as the kernel sees it, HTTPS
with a 0640 root:ssl-cert key, <mobileconfig secret-file> readable through the same group,
reload with a good and a broken file, stop with a stalled client, and that a key only root
can read stops the start with a message naming the file."""
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
port, tls_port = free_port(), free_port()

CONFIG = """<?xml version="1.0" encoding="utf-8"?>
<mailconfd>
  <server listen="127.0.0.1:{port}" shutdown-grace="{grace}">
    <tls listen="127.0.0.1:{tls_port}" certificate="/etc/ssl/certs/mailconfd.pem"
         key="/etc/ssl/private/mailconfd.key"/>
  </server>
  <mobileconfig {secret}/>
  <provider id="example.net">
    <display-name>{name}</display-name>
    <incoming protocol="imap" host="imap.example.net" port="993" security="tls"/>
    <outgoing host="smtp.example.net" port="587" security="starttls"/>
    <domain>example.com</domain>
  </provider>
</mailconfd>
"""


def config(name="Example Mail", grace="2s", secret='secret-file="/etc/mailconfd/mobileconfig-secret"'):
    return CONFIG.format(port=port, tls_port=tls_port, grace=grace, name=name, secret=secret)


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
    shutil.copy(os.path.join(DEPLOY, "systemd", "mailconfd.service"),
                os.path.join(tree, "etc/systemd/system/mailconfd.service"))
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
