#!/usr/bin/env python3
"""The image of deploy/container/Dockerfile (target runtime, built by run.sh) run with podman
as an operator would: read-only root, every capability dropped, no-new-privileges, the
image's own non-root user, the configuration directory mounted read-only. Every endpoint is
asked, SIGHUP reloads a good and a broken file, SIGTERM drains a request still arriving and
the container exits 0."""
import os
import re
import shutil
import socket
import tempfile
import time

from common import (AUTODISCOVER_BODY, DEPLOY, IMAGE, Checks, free_port, metric, podman,
                    proc_status, read_response, request, root_mount_options, wait_until)

c = Checks("container")
work = tempfile.mkdtemp(prefix="mailconfd-container-")
os.chmod(work, 0o755)
config_dir = os.path.join(work, "config")
os.mkdir(config_dir)
os.chmod(config_dir, 0o755)
example = open(os.path.join(DEPLOY, "example", "mailconfd.xml")).read()
config = os.path.join(config_dir, "mailconfd.xml")


def write_config(text):
    # Replaced by rename, as editors do: the directory mount shows the new file.
    with open(config + ".new", "w") as f:
        f.write(text)
    os.chmod(config + ".new", 0o644)
    os.rename(config + ".new", config)


write_config(example)
port = free_port()
name = f"mailconfd-test-{os.getpid()}"
r = podman("run", "-d", "--name", name, "--read-only", "--cap-drop", "all",
           "--security-opt", "no-new-privileges", "-v", f"{config_dir}:/etc/mailconfd:ro",
           "-p", f"127.0.0.1:{port}:8080", IMAGE)
c.eq(r.returncode, 0, f"podman run starts the image: {r.stderr}")
try:
    c.check(wait_until(lambda: request(port, "GET", "/readyz").status == 200, 30),
            "/readyz answers 200 within 30 s", podman("logs", name).stderr)

    # The process as the kernel sees it: the image's user, no capabilities, read-only root.
    pid = podman("inspect", "--format", "{{.State.Pid}}", name).stdout.strip()
    status = proc_status(pid)
    c.eq(status["Uid"].split(), ["65532"] * 4, "runs as uid 65532")
    c.eq(status["Gid"].split(), ["65532"] * 4, "runs as gid 65532")
    c.eq(status["CapEff"], "0000000000000000", "no effective capabilities")
    c.eq(status["CapPrm"], "0000000000000000", "no permitted capabilities")
    c.eq(status["CapBnd"], "0000000000000000", "empty bounding set")
    c.eq(status["NoNewPrivs"], "1", "no-new-privileges")
    c.check("ro" in root_mount_options(pid), "root file system mounted read-only",
            str(root_mount_options(pid)))
    c.eq(os.readlink(f"/proc/{pid}/exe"), "/usr/bin/mailconfd", "the process is mailconfd")

    # Every endpoint, compared with what `mailconfd render` prints in the same image.
    def render(kind):
        r = podman("run", "--rm", "--read-only", "--cap-drop", "all", "-v",
                   f"{config_dir}:/etc/mailconfd:ro", IMAGE, "render", kind, "alice@example.com",
                   "--config", "/etc/mailconfd/mailconfd.xml")
        c.eq(r.returncode, 0, f"render {kind}: {r.stderr}")
        return r.stdout.encode()

    a = request(port, "GET", "/mail/config-v1.1.xml?emailaddress=alice%40example.com")
    c.eq(a.status, 200, "autoconfig status")
    c.eq(a.headers.get("content-type"), "application/xml; charset=utf-8", "autoconfig type")
    c.eq(a.body, render("autoconfig"), "autoconfig bytes = mailconfd render autoconfig")
    w = request(port, "GET", "/.well-known/autoconfig/mail/config-v1.1.xml",
                host="example.com")
    c.eq(w.status, 200, "well-known autoconfig by Host")
    c.contains(w.text(), "<domain>example.com</domain>", "well-known autoconfig names the domain")
    d = request(port, "POST", "/autodiscover/autodiscover.xml", host="autodiscover.example.com",
                headers={"Content-Type": "text/xml"}, body=AUTODISCOVER_BODY)
    c.eq(d.status, 200, "POST Autodiscover status")
    c.contains(d.text(), "<Server>smtp.example.net</Server>", "POST Autodiscover names SMTP")
    j = request(port, "GET",
                "/autodiscover/autodiscover.json/v1.0/alice@example.com?Protocol=AutodiscoverV1",
                host="autodiscover.example.com")
    c.eq(j.status, 200, "Autodiscover v2 JSON status")
    c.eq(j.headers.get("content-type"), "application/json; charset=utf-8", "v2 type")
    m = request(port, "GET", "/email.mobileconfig?emailaddress=alice%40example.com")
    c.eq(m.status, 200, "mobileconfig status")
    c.eq(m.body, render("mobileconfig"), "mobileconfig bytes = mailconfd render mobileconfig")
    s = request(port, "GET", "/setup?emailaddress=alice%40example.com")
    c.eq(s.status, 200, "setup page status")
    c.contains(s.text(), "smtp.example.net", "setup page shows the SMTP host")
    c.eq(request(port, "GET", "/").status, 200, "/ status")
    h = request(port, "GET", "/healthz")
    c.eq((h.status, h.body), (200, b"ok\n"), "/healthz")
    redirect = request(port, "GET", "/autodiscover/autodiscover.xml",
                       host="autodiscover.example.com")
    c.eq(redirect.status, 302, "plain-HTTP GET on autodiscover.<domain> is redirected")
    c.eq(redirect.headers.get("location"),
         "https://autodiscover.example.net/autodiscover/autodiscover.xml", "redirect target")
    c.eq(request(port, "GET", "/nothing-here").status, 404, "unknown path 404")
    metrics = request(port, "GET", "/metrics").text()
    c.eq(metric(metrics, "mailconfd_hosted_domains"), 2.0, "/metrics hosted domains")
    c.eq(metric(metrics, "mailconfd_ready"), 1.0, "/metrics ready")

    # SIGHUP with a good file: the new display name is served, the reload counted.
    write_config(example.replace("<display-name>Example Mail</display-name>",
                                 "<display-name>Reloaded Mail</display-name>"))
    c.eq(podman("kill", "--signal", "HUP", name).returncode, 0, "podman kill -s HUP")
    c.check(wait_until(lambda: "Reloaded Mail" in request(
        port, "GET", "/mail/config-v1.1.xml?emailaddress=alice%40example.com").text(), 10),
        "good reload: the new configuration is served")
    metrics = request(port, "GET", "/metrics").text()
    c.eq(metric(metrics, 'mailconfd_config_reloads_total{result="success"}'), 1.0,
         "one successful reload counted")

    # SIGHUP with a broken file: logged with FILE:LINE, the previous configuration serves on.
    write_config(example.replace("<display-name>Example Mail</display-name>",
                                 "<display-name>Broken</display-name><nonsense/>"))
    podman("kill", "--signal", "HUP", name)
    c.check(wait_until(lambda: "reload failed" in podman("logs", name).stderr, 10),
            "bad reload is logged", podman("logs", name).stderr[-2000:])
    logs = podman("logs", name).stderr
    c.check(re.search(r"reload: /etc/mailconfd/mailconfd\.xml:\d+:\d+: ", logs) is not None,
            "bad reload names FILE:LINE:COLUMN", logs[-2000:])
    c.contains(request(port, "GET", "/mail/config-v1.1.xml?emailaddress=alice%40example.com")
               .text(), "Reloaded Mail", "bad reload: the previous configuration still serves")
    c.eq(request(port, "GET", "/readyz").status, 200, "bad reload: still ready")
    metrics = request(port, "GET", "/metrics").text()
    c.eq(metric(metrics, 'mailconfd_config_reloads_total{result="failure"}'), 1.0,
         "one failed reload counted")

    # SIGTERM while a POST is still arriving: the drain waits for it, answers it with
    # Connection: close, refuses new connections with 503, and the container exits 0.
    slow = socket.create_connection(("127.0.0.1", port), timeout=10)
    body = AUTODISCOVER_BODY.encode()
    slow.sendall(b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: autodiscover.example.com"
                 b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:100])
    time.sleep(0.3)
    stopped_at = time.monotonic()
    c.eq(podman("kill", "--signal", "TERM", name).returncode, 0, "podman kill -s TERM")
    time.sleep(0.5)
    c.eq(podman("inspect", "--format", "{{.State.Running}}", name).stdout.strip(), "true",
         "still running while a request is in flight")
    during = request(port, "GET", "/readyz")
    c.eq(during.status, 503, "a new connection during the drain gets 503")
    live = request(port, "GET", "/healthz")
    c.eq((live.status, live.body), (200, b"ok\n"), "/healthz stays 200 during the drain")
    slow.sendall(body[100:])
    answer = read_response(slow)
    slow.close()
    c.eq(answer.status, 200, "the request in flight is answered")
    c.eq(answer.headers.get("connection"), "close", "the answer in flight closes")
    c.contains(answer.text(), "<Server>smtp.example.net</Server>", "the answer is complete")
    code = podman("wait", name, timeout=30).stdout.strip()
    c.eq(code, "0", "the container exits 0 after the drain")
    c.check(time.monotonic() - stopped_at < 10, "the drain ended before shutdown-grace",
            f"{time.monotonic() - stopped_at:.1f} s")
    logs = podman("logs", name).stderr
    # The v2 form carries the address in the path: the access log shows the route instead.
    c.contains(logs, "/autodiscover/autodiscover.json/v1.0/{address}",
               "the v2 path form is logged as its route")
    c.lacks(logs, "alice", "the container's log has no mailbox address")
finally:
    podman("rm", "-f", "-t", "0", name)
    shutil.rmtree(work, ignore_errors=True)
c.done()
