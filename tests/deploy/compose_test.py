#!/usr/bin/env python3
"""deploy/container/compose.yaml with the compose tool Debian 12 ships (podman-compose),
using the images run.sh built: the stack comes up, requests through its nginx proxy over
HTTP and HTTPS (autoconfig, the Autodiscover redirect on plain HTTP and none over HTTPS
thanks to forwarded-proto, /metrics refused in any case), the documented reload, a
recreated mailconfd container (new address) found again by the proxy, and a clean stop."""
import os
import re
import shutil
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


service = f"{project}_mailconfd_1"
proxy = f"{project}_proxy_1"
target = "/mail/config-v1.1.xml?emailaddress=alice%40example.com"
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
    c.eq(podman("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}",
                service).stdout.strip(), "true 65532:65532", "mailconfd: read-only, non-root")
    pid = podman("inspect", "--format", "{{.State.Pid}}", service).stdout.strip()
    c.eq(re.search(r"CapEff:\s*(\w+)", open(f"/proc/{pid}/status").read()).group(1),
         "0000000000000000", "mailconfd: no capabilities (cap_drop ALL)")

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
    r = podman("kill", "--signal", "HUP", service)
    c.eq(r.returncode, 0, f"podman kill --signal HUP {service}")
    c.check(wait_until(lambda: "Reloaded Mail" in request(http_port, "GET", target).text(), 10),
            "the edited configuration is served after the reload")

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

    # Stop as documented: the drain ends and mailconfd exits 0.
    r = podman("stop", "-t", "20", service)
    c.eq(podman("inspect", "--format", "{{.State.ExitCode}}", service).stdout.strip(), "0",
         "mailconfd exits 0 on stop")
    logs = podman("logs", proxy).stdout
    c.lacks(logs, "alice", "the proxy's access log has no address")
    c.contains(logs, '"GET /mail/config-v1.1.xml HTTP/1.1" 200', "the proxy logs the path")
finally:
    os.chdir(here)
    compose("down", "-t", "20")
    os.chdir("/")
    podman("network", "rm", "-f", f"{project}_default")
    shutil.rmtree(work, ignore_errors=True)
c.done()
