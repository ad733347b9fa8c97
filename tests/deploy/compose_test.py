#!/usr/bin/env python3
"""deploy/container/compose.yaml with the compose tool Debian 12 ships (podman-compose),
using the images run.sh built: the stack comes up (the database service, whose
deploy/container/database/entrypoint.sh makes the panel's schema and mailconfd's read-only
role from the DSN secret on first start, two mailconfd replicas reading it, the proxy), requests through its nginx proxy over HTTP and HTTPS
(autoconfig, the Autodiscover redirect on plain HTTP and none over HTTPS thanks to
forwarded-proto, /metrics refused in any case); the DSN secret made as documented (mode
0640, group 65532) and unreadable to other users, its password in no log, no `podman
inspect` and no config; a domain and a mailbox with a login name inserted into the database
are served by every replica (directly and through the proxy) without a restart; the
documented reload of both replicas, recreated replicas (new addresses) found again by the
proxy and reading the database, and a clean stop. The settings journal in the database
(<journal dsn-file>, the second DSN secret whose role the entrypoint creates with write rights
on the journal's tables only): a fetch through either replica is in the cockpit, the CSV and
the /metrics gauges of both replicas, and in the journal's table."""
import os
import re
import shutil
import subprocess
import tempfile
import time

from common import (DEPLOY, IMAGE, PROXY_IMAGE, Checks, free_port, podman_env, request, run,
                    wait_until)

c = Checks("compose")
work = tempfile.mkdtemp(prefix="mailconfd-compose-")
os.chmod(work, 0o755)
project = f"mcdtest{os.getpid()}"
http_port, https_port = free_port(), free_port()
# The deploy/ tree as shipped, plus a certificate made now in container/tls/.
shutil.copytree(DEPLOY, os.path.join(work, "deploy"))
here = os.path.join(work, "deploy", "container")
tls = os.path.join(here, "tls")
os.makedirs(tls)
run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
     "-nodes", "-days", "1", "-subj", "/CN=autodiscover.example.com", "-keyout",
     os.path.join(tls, "privkey.pem"), "-out", os.path.join(tls, "fullchain.pem")], check=True)
for root, dirs, files in os.walk(work):
    for name in dirs:
        os.chmod(os.path.join(root, name), 0o755)
    for name in files:
        os.chmod(os.path.join(root, name), 0o644)
# The DSN secret made by the commands of compose.yaml's comment (mode 0640, group 65532).
commented = re.search(r"^#   (mkdir -p secrets .*?chgrp 65532 secrets/database\.dsn secrets/journal\.dsn)", open(
    os.path.join(here, "compose.yaml")).read(), re.M | re.S).group(1)
command = re.sub(r"\n#\s+", " ", commented).replace("\\ ", "")
r = subprocess.run(["bash", "-euc", command], cwd=here, capture_output=True, text=True, timeout=30)
c.eq((r.returncode, r.stderr), (0, ""), f"the documented commands make the DSN: {command}")
dsn_file = os.path.join(here, "secrets", "database.dsn")
st = os.stat(dsn_file)
c.eq((oct(st.st_mode & 0o777), st.st_uid, st.st_gid), ("0o640", 0, 65532), "secrets/database.dsn: 0640 root:65532")
password = re.search(r"password=(\S+)", open(dsn_file).read()).group(1)
c.eq(len(password), 48, "a random password of 24 bytes in hex")
journal_dsn_file = os.path.join(here, "secrets", "journal.dsn")
st = os.stat(journal_dsn_file)
c.eq((oct(st.st_mode & 0o777), st.st_uid, st.st_gid), ("0o640", 0, 65532), "secrets/journal.dsn: 0640 root:65532")
journal_dsn = open(journal_dsn_file).read()
c.contains(journal_dsn, "user=mailconfd_journal ", "the journal's DSN names its own role")
journal_password = re.search(r"password=(\S+)", journal_dsn).group(1)
c.check(len(journal_password) == 48 and journal_password != password,
        "the journal's role has a random password of its own")
env = dict(podman_env(), MAILCONFD_HTTP=f"127.0.0.1:{http_port}",
           MAILCONFD_HTTPS=f"127.0.0.1:{https_port}")


def compose(*args, timeout=180):
    return run(["podman-compose", "-p", project, *args], timeout=timeout, env=env)


def podman(*args, timeout=120):
    return run(["podman", *args], timeout=timeout, env=env)


def https(target, host):
    r = run(["openssl", "s_client", "-quiet", "-connect", f"127.0.0.1:{https_port}", "-servername",
             host], input=f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
            timeout=20)
    m = re.match(r"HTTP/1\.1 (\d+)", r.stdout)
    return (int(m.group(1)) if m else None), r.stdout


def address(container):
    return podman("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                  container).stdout.strip()


def direct(container, target):
    """A GET to the replica itself, from inside its container (bash's /dev/tcp): (status, text)."""
    r = podman("exec", container, "bash", "-c",
               'exec 3<>/dev/tcp/127.0.0.1/8080 && printf "GET %s HTTP/1.1\\r\\nHost: '
               'autoconfig.example.com\\r\\nConnection: close\\r\\n\\r\\n" "$0" >&3 && cat <&3',
               target, timeout=20)
    m = re.match(r"HTTP/1\.1 (\d+)", r.stdout)
    return (int(m.group(1)) if m else None), r.stdout


def admin(container, target):
    """A GET to the replica's admin listener (127.0.0.1:9187, the cockpit and /metrics), from
    inside its container: (status, text)."""
    r = podman("exec", container, "bash", "-c",
               'exec 3<>/dev/tcp/127.0.0.1/9187 && printf "GET %s HTTP/1.1\\r\\nHost: '
               '127.0.0.1\\r\\nConnection: close\\r\\n\\r\\n" "$0" >&3 && cat <&3',
               target, timeout=20)
    m = re.match(r"HTTP/1\.1 (\d+)", r.stdout)
    return (int(m.group(1)) if m else None), r.stdout


def sql(statements):
    return podman("exec", "-u", "postgres", database, "psql", "-h", "/tmp", "-d", "postfix",
                  "-v", "ON_ERROR_STOP=1", "-qAt", "-c", statements, timeout=30)


service = f"{project}_mailconfd_1"
replicas = [service, f"{project}_mailconfd_2"]
database = f"{project}_database_1"
proxy = f"{project}_proxy_1"
target = "/mail/config-v1.1.xml?emailaddress=alice%40example.com"
anna = "/mail/config-v1.1.xml?emailaddress=anna%40customer.example"
try:
    for image in (IMAGE, PROXY_IMAGE):
        c.eq(podman("image", "exists", image).returncode, 0, f"{image} was built by run.sh")
    old = os.getcwd()
    os.chdir(here)
    # Debian's other compose tool parses the same file (it needs a Docker engine to run it).
    r = run(["docker-compose", "-f", "compose.yaml", "config", "-q"], env=env)
    c.eq((r.returncode, r.stderr), (0, ""), "docker-compose 1.29 accepts the file")
    r = compose("up", "-d")
    os.chdir(old)
    c.eq(r.returncode, 0, f"podman-compose up -d: {r.stderr[-1500:]}")
    c.check(wait_until(lambda: request(http_port, "GET", "/healthz").status == 200, 60),
            "the proxy answers", podman("logs", proxy).stderr[-1500:])
    # A replica started before the database accepted connections exits (no snapshot yet) and
    # is restarted by its restart policy: wait until both serve.
    for replica in replicas:
        c.check(wait_until(lambda: direct(replica, "/readyz")[0] == 200, 60, 0.5),
                f"{replica} is ready", podman("logs", replica).stderr[-1500:])
    for replica in replicas:
        c.eq(podman("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}",
                    replica).stdout.strip(), "true 65532:65532", f"{replica}: read-only, non-root")
        pid = podman("inspect", "--format", "{{.State.Pid}}", replica).stdout.strip()
        c.eq(re.search(r"CapEff:\s*(\w+)", open(f"/proc/{pid}/status").read()).group(1),
             "0000000000000000", f"{replica}: no capabilities (cap_drop ALL)")
        c.eq(podman("exec", replica, "stat", "-c", "%a %u %g", "/run/secrets/database.dsn")
             .stdout.strip(), "640 0 65532", f"{replica}: the DSN secret is 0640 root:65532")
        r = podman("exec", "--user", "1000:1000", replica, "cat", "/run/secrets/database.dsn")
        c.check(r.returncode != 0 and "Permission denied" in r.stderr and password not in r.stdout,
                f"{replica}: another user cannot read the DSN", r.stdout + r.stderr)
        c.contains(podman("logs", replica).stderr, "domains (postgresql) from /etc/mailconfd/mailconfd.xml",
                   f"{replica} serves the database's rows")

    # The settings journal in the database: bob fetches through the first replica, carol
    # through the second; each replica's cockpit, CSV and /metrics show both (the writers
    # flush every second, a cockpit re-reads the shared journal at least every 10 s).
    for replica, who in ((replicas[0], "bob"), (replicas[1], "carol")):
        c.eq(direct(replica, f"/mail/config-v1.1.xml?emailaddress={who}%40example.com")[0], 200,
             f"{who} fetches settings through {replica}")

    def csv_rows(replica):
        status, text = admin(replica, "/cockpit/contacts.csv")
        body = text.replace("\r\n", "\n").partition("\n\n")[2]
        return sorted(",".join(line.split(",")[i] for i in (0, 1, 3))
                      for line in body.splitlines()[1:] if line)

    expected = ['"bob@example.com","example.com","unknown"', '"carol@example.com","example.com","unknown"']
    for replica in replicas:
        c.check(wait_until(lambda: csv_rows(replica) == expected, 40, 1),
                f"{replica}'s cockpit CSV lists the fetches through both replicas",
                f"{csv_rows(replica)} {podman('logs', replica).stderr[-1500:]}")
        metrics = admin(replica, "/metrics")[1]
        c.contains(metrics, 'mailconfd_cutover_mailboxes{state="unknown"} 2\n',
                   f"{replica}'s /metrics: 2 mailboxes fetched settings")
        c.contains(metrics, 'mailconfd_cutover_provider_mailboxes{provider="example.net",state="unknown"} 2\n',
                   f"{replica}'s /metrics: 2 of provider example.net")
        status, page = admin(replica, "/cockpit?lang=en")
        c.check(status == 200 and "bob@example.com" in page and "carol@example.com" in page,
                f"{replica}'s cockpit page lists bob and carol", page[:600])
        c.eq(direct(replica, "/cockpit")[0], 404, f"{replica}: no cockpit on the public listener")
    r = sql("SELECT address, door, client, fetches FROM mailconfd_journal_fetch ORDER BY address")
    c.eq(r.stdout, "bob@example.com|autoconfig|-|1\ncarol@example.com|autoconfig|-|1\n",
         "the journal's rows are in the database")
    r = sql("SELECT has_table_privilege('mailconfd_journal', 'mailconfd_journal_fetch', 'INSERT'),"
            " has_table_privilege('mailconfd_journal', 'mailbox', 'SELECT'),"
            " has_table_privilege('mailconfd', 'mailconfd_journal_fetch', 'INSERT')")
    c.eq(r.stdout, "t|f|f\n", "the journal's role writes its tables only; the source's role reads")

    # A customer domain and a mailbox with its own login name, added in the database: every
    # replica serves them within about a second, without a restart or a reload.
    c.eq(direct(service, anna)[0], 404, "customer.example is not hosted yet")
    started = {r: podman("inspect", "--format", "{{.State.Pid}} {{.State.StartedAt}}", r).stdout
               for r in replicas}
    r = sql("INSERT INTO domain (domain) VALUES ('customer.example');"
            "INSERT INTO mailbox (username, domain) VALUES ('anna@customer.example', 'customer.example');"
            "INSERT INTO mailconfd_mailbox VALUES ('anna@customer.example', 'web12p3')")
    c.eq((r.returncode, r.stderr), (0, ""), "rows inserted with psql in the database container")
    t0 = time.monotonic()
    for replica in replicas:
        c.check(wait_until(lambda: "<username>web12p3</username>" in direct(replica, anna)[1], 15, 0.05),
                f"{replica} serves the new domain with the mailbox's login name",
                direct(replica, anna)[1][-800:])
    print(f"compose: a database change served by both replicas after {time.monotonic() - t0:.2f} s",
          flush=True)
    answers = [request(http_port, "GET", anna) for _ in range(6)]
    c.eq([a.status for a in answers], [200] * 6, "through the proxy: 200 from either replica")
    c.check(all("<username>web12p3</username>" in a.text() for a in answers),
            "through the proxy: the login name from the database")
    c.eq({r: podman("inspect", "--format", "{{.State.Pid}} {{.State.StartedAt}}", r).stdout
          for r in replicas}, started, "no replica was restarted")
    for replica in replicas:
        updates = re.search(r"\nmailconfd_source_updates_total (\d+)\n", admin(replica, "/metrics")[1])
        # Three statements, three commits: one to three updates, as the watcher catches them.
        c.check(updates is not None and 1 <= int(updates.group(1)) <= 3,
                f"{replica} read only the changed domain (the change log, granted by the image)",
                updates.group(0) if updates else "no mailconfd_source_updates_total")
        c.check("change log not read" not in podman("logs", replica).stderr,
                f"{replica} can read the change log")

    a = request(http_port, "GET", target)
    c.eq(a.status, 200, "autoconfig through the proxy")
    c.contains(a.text(), "<displayName>Example Mail</displayName>", "served from config/")
    redirect = request(http_port, "GET", "/autodiscover/autodiscover.xml",
                       host="autodiscover.example.com")
    c.eq(redirect.status, 302, "plain HTTP on autodiscover.<domain>: the redirect method")
    c.eq(redirect.headers.get("location"),
         "https://autodiscover.example.net/autodiscover/autodiscover.xml", "redirect target")
    code, text = https("/autodiscover/autodiscover.xml", "autodiscover.example.com")
    c.check(code == 200 and "<Server>smtp.example.net</Server>" in text,
            "HTTPS on autodiscover.<domain>: 200, not redirected (forwarded-proto)", text[:300])
    for path in ("/metrics", "/METRICS"):
        c.eq(request(http_port, "GET", path).status, 404, f"proxy refuses {path}")
        c.eq(https(path, "autoconfig.example.com")[0], 404, f"proxy refuses {path} over HTTPS")

    # Reload as documented: edit config/mailconfd.xml, then SIGHUP the container.
    config = os.path.join(here, "config", "mailconfd.xml")
    text = open(config).read().replace("<display-name>Example Mail</display-name>",
                                       "<display-name>Reloaded Mail</display-name>")
    with open(config + ".new", "w") as f:
        f.write(text)
    os.chmod(config + ".new", 0o644)
    os.rename(config + ".new", config)
    r = podman("kill", "--signal", "HUP", *replicas)
    c.eq(r.returncode, 0, f"podman kill --signal HUP {' '.join(replicas)}")
    for replica in replicas:
        c.check(wait_until(lambda: "Reloaded Mail" in direct(replica, target)[1], 10),
                f"{replica}: the edited configuration is served after the reload")
    c.check(all("Reloaded Mail" in request(http_port, "GET", target).text() for _ in range(4)),
            "through the proxy too")

    # Recreate the mailconfd container: it comes back with another address, and the proxy
    # finds it by name again (resolver with valid=5s).
    before = address(service)
    os.chdir(here)
    r = compose("up", "-d", "--force-recreate", "mailconfd")
    os.chdir(old)
    c.eq(r.returncode, 0, f"podman-compose up -d --force-recreate mailconfd: {r.stderr[-800:]}")
    after = address(service)
    c.check(before and after and before != after, "the new container has a new address",
            f"{before} -> {after}")
    t0 = time.monotonic()
    ok = wait_until(lambda: request(http_port, "GET", target).status == 200, 20, 0.5)
    c.check(ok, "the proxy reaches the recreated container",
            podman("logs", proxy).stderr[-1500:])
    c.check(time.monotonic() - t0 < 12, "within the resolver's validity",
            f"{time.monotonic() - t0:.1f} s")
    c.eq(podman("inspect", "--format", "{{.State.Running}}", proxy).stdout.strip(), "true",
         "the proxy was not restarted")
    for replica in replicas:
        c.check(wait_until(lambda: "<username>web12p3</username>" in direct(replica, anna)[1], 30, 0.5),
                f"recreated {replica} reads the database")

    # The password is only in the secret file: not in any container's environment or
    # settings, log, or the configuration.
    for container in [*replicas, database, proxy]:
        for secret in (password, journal_password):
            c.lacks(podman("inspect", container).stdout, secret, f"podman inspect {container}")
            logs = podman("logs", container)
            c.lacks(logs.stdout + logs.stderr, secret, f"podman logs {container}")
    for name in os.listdir(os.path.join(here, "config")):
        for secret in (password, journal_password):
            c.lacks(open(os.path.join(here, "config", name)).read(), secret, f"config/{name}")

    # Stop as documented: the drain ends and mailconfd exits 0.
    r = podman("stop", "-t", "20", *replicas)
    for replica in replicas:
        c.eq(podman("inspect", "--format", "{{.State.ExitCode}}", replica).stdout.strip(), "0",
             f"{replica} exits 0 on stop")
    logs = podman("logs", proxy).stdout
    c.lacks(logs, "alice", "the proxy's access log has no address")
    c.lacks(logs, "anna", "the proxy's access log has no address (database)")
    c.contains(logs, '"GET /mail/config-v1.1.xml HTTP/1.1" 200', "the proxy logs the path")
finally:
    os.chdir(here)
    compose("down", "-t", "20")
    os.chdir("/")
    podman("network", "rm", "-f", f"{project}_default")
    podman("volume", "rm", "-f", f"{project}_database", f"{project}_snapshot")
    shutil.rmtree(work, ignore_errors=True)
c.done()
