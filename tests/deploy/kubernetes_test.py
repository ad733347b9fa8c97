#!/usr/bin/env python3
"""deploy/kubernetes/mailconfd.yaml without a cluster:

* every object validated offline against the Kubernetes schemas of the npm
  kubernetes-models package, unknown fields refused (kubernetes_validate.js), and a
  misspelt field and a wrong type are caught;
* the Deployment's pod run with podman as the kubelet would: the image, its args, the pod's
  and container's security settings, the memory limit, the ConfigMap mounted read-only in
  the kubelet's layout (files are symlinks into ..data, a symlink to a timestamped
  directory); its probes and the metrics port answered; a ConfigMap update (the kubelet's
  atomic ..data swap) plus the documented reload serve the new configuration; SIGTERM
  ends the pod with exit 0 within terminationGracePeriodSeconds.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time

from common import (DEPLOY, IMAGE, Checks, free_port, metric, podman, proc_status, request,
                    root_mount_options, run, wait_until)

NPM_DIR = os.path.join(os.environ.get("MAILCONFD_TEST_CACHE", "/var/cache/mailconfd-tests"), "npm")
MANIFEST = os.path.join(DEPLOY, "kubernetes", "mailconfd.yaml")
VALIDATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kubernetes_validate.js")
c = Checks("kubernetes")
work = tempfile.mkdtemp(prefix="mailconfd-k8s-")
os.chmod(work, 0o755)


def node_env():
    return dict(os.environ, NODE_PATH=os.path.join(NPM_DIR, "node_modules"))


def validate(path):
    return run(["node", VALIDATE, path], env=node_env())


# The validator's packages, installed once into the test cache (npm registry).
if not os.path.isdir(os.path.join(NPM_DIR, "node_modules", "kubernetes-models")):
    os.makedirs(NPM_DIR, exist_ok=True)
    run(["npm", "install", "--prefix", NPM_DIR, "--no-audit", "--no-fund",
         "kubernetes-models@4.5.1", "js-yaml@4"], timeout=600, check=True)

r = validate(MANIFEST)
c.eq((r.returncode, r.stdout + r.stderr), (0, ""), "every object passes strict validation")
text = open(MANIFEST).read()
for broken, message in [
        (text.replace("revisionHistoryLimit:", "revisionHistoryLimt:"),
         'Deployment/mailconfd: /spec/revisionHistoryLimt: unknown field "revisionHistoryLimt"'),
        (text.replace("periodSeconds: 5", 'periodSeconds: "5"'),
         "Deployment/mailconfd: /spec/template/spec/containers/0/readinessProbe/periodSeconds: type"),
        (text.replace("minAvailable: 1", "minAvailable: 1\n  maxUnavailabe: 1"),
         'PodDisruptionBudget/mailconfd: /spec/maxUnavailabe: unknown field "maxUnavailabe"')]:
    path = os.path.join(work, "broken.yaml")
    with open(path, "w") as f:
        f.write(broken)
    r = validate(path)
    c.check(r.returncode == 1 and message in r.stdout, f"the validator catches: {message}",
            r.stdout + r.stderr)

docs = json.loads(run(["node", "-e", "const y=require('js-yaml'),fs=require('fs');"
                       "console.log(JSON.stringify(y.loadAll(fs.readFileSync(process.argv[1],'utf8'))))",
                       MANIFEST], env=node_env(), check=True).stdout)
by_kind = {d["kind"]: d for d in docs}
deployment = by_kind["Deployment"]
c.check("replicas" not in deployment["spec"], "the Deployment leaves the count to the HPA")
c.eq(by_kind["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"],
     deployment["metadata"]["name"], "the HPA scales this Deployment")
pod = deployment["spec"]["template"]["spec"]
container = pod["containers"][0]
ports = {p["name"]: p["containerPort"] for p in container["ports"]}
annotations = deployment["spec"]["template"]["metadata"]["annotations"]
c.eq(int(annotations["prometheus.io/port"]), ports["metrics"], "scrape port = metrics port")
service = by_kind["Service"]["spec"]["ports"][0]
c.check(service["targetPort"] in ports, "the Service targets a named container port")
configmap = by_kind["ConfigMap"]
mount = container["volumeMounts"][0]
c.eq(pod["volumes"][0]["configMap"]["name"], configmap["metadata"]["name"], "the volume is the ConfigMap")

# The ConfigMap as the kubelet lays it out.
config_dir = os.path.join(work, "configmap")
os.mkdir(config_dir)
os.chmod(config_dir, 0o755)


def publish(data, stamp):
    """Writes a new timestamped directory and swaps ..data to it atomically, as the kubelet."""
    d = os.path.join(config_dir, f"..{stamp}")
    os.mkdir(d)
    os.chmod(d, 0o755)
    for name, value in data.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(value)
        os.chmod(os.path.join(d, name), 0o644)
        link = os.path.join(config_dir, name)
        if not os.path.islink(link):
            os.symlink(f"..data/{name}", link)
    os.symlink(f"..{stamp}", os.path.join(config_dir, "..data_tmp"))
    os.rename(os.path.join(config_dir, "..data_tmp"), os.path.join(config_dir, "..data"))


publish(configmap["data"], "2026_12_01_10_00_00.1")

security = pod["securityContext"]
csec = container["securityContext"]
http_port, metrics_port = free_port(), free_port()
name = f"mailconfd-pod-{os.getpid()}"
args = ["run", "-d", "--name", name,
        "--user", f"{security['runAsUser']}:{security['runAsGroup']}",
        "-m", container["resources"]["limits"]["memory"].replace("Mi", "m"),
        "-v", f"{config_dir}:{mount['mountPath']}:ro",
        "-p", f"127.0.0.1:{http_port}:{ports['http']}",
        "-p", f"127.0.0.1:{metrics_port}:{ports['metrics']}"]
if csec.get("readOnlyRootFilesystem"):
    args.append("--read-only")
for cap in csec["capabilities"]["drop"]:
    args += ["--cap-drop", cap.lower()]
if csec.get("allowPrivilegeEscalation") is False:
    args += ["--security-opt", "no-new-privileges"]
c.eq(security["seccompProfile"]["type"], "RuntimeDefault", "seccomp RuntimeDefault (podman's default)")
image_user = podman("image", "inspect", "--format", "{{.Config.User}}", IMAGE).stdout.strip()
c.check(security["runAsNonRoot"] and image_user.split(":")[0].isdigit() and image_user != "0",
        "runAsNonRoot can verify the image's numeric user", image_user)
r = podman(*args, IMAGE, *container["args"])
c.eq(r.returncode, 0, f"the pod's container starts: {r.stderr}")
try:
    def probe(spec):
        port = {"http": http_port, "metrics": metrics_port}[spec["httpGet"]["port"]]
        return request(port, "GET", spec["httpGet"]["path"], host="10.0.0.1").status

    c.check(wait_until(lambda: probe(container["readinessProbe"]) == 200, 30),
            "the readiness probe passes", podman("logs", name).stderr[-1500:])
    c.eq(probe(container["livenessProbe"]), 200, "the liveness probe passes")
    pid = podman("inspect", "--format", "{{.State.Pid}}", name).stdout.strip()
    status = proc_status(pid)
    c.eq(status["Uid"].split()[0], str(security["runAsUser"]), "runs as runAsUser")
    c.eq(status["CapEff"], "0000000000000000", "no capabilities")
    c.eq(status["NoNewPrivs"], "1", "no privilege escalation")
    c.eq(status["Seccomp"], "2", "a seccomp filter")
    c.check("ro" in root_mount_options(pid), "read-only root file system")

    m = request(metrics_port, "GET", "/metrics")
    c.eq(m.status, 200, "/metrics on the metrics port")
    c.eq(metric(m.text(), "mailconfd_ready"), 1.0, "mailconfd_ready 1")
    c.eq(request(http_port, "GET", "/metrics").status, 404, "/metrics not on the http port")
    c.eq(request(metrics_port, "GET", "/mail/config-v1.1.xml?emailaddress=a%40example.com").status,
         404, "the metrics port serves nothing else")
    https = request(http_port, "GET", "/autodiscover/autodiscover.xml",
                    host="autodiscover.example.com", headers={"X-Forwarded-Proto": "https"})
    c.eq(https.status, 200, "forwarded-proto=trust: the Ingress's HTTPS is not redirected")
    plain = request(http_port, "GET", "/autodiscover/autodiscover.xml",
                    host="autodiscover.example.com", headers={"X-Forwarded-Proto": "http"})
    c.eq(plain.status, 302, "plain HTTP through the Ingress is redirected")
    target = "/mail/config-v1.1.xml?emailaddress=alice%40example.com"
    c.contains(request(http_port, "GET", target).text(), "Example Mail", "serves the ConfigMap")

    # The kubelet's update, then the documented in-place reload.
    new = {k: v.replace("<display-name>Example Mail</display-name>",
                        "<display-name>Updated Mail</display-name>") for k, v in configmap["data"].items()}
    publish(new, "2026_12_01_10_05_00.2")
    shutil.rmtree(os.path.join(config_dir, "..2026_12_01_10_00_00.1"))
    r = podman("exec", name, "bash", "-c", "kill -HUP 1")
    c.eq(r.returncode, 0, f"kubectl exec POD -- bash -c 'kill -HUP 1': {r.stderr}")
    c.check(wait_until(lambda: "Updated Mail" in request(http_port, "GET", target).text(), 10),
            "the updated ConfigMap is served after the reload")
    c.eq(metric(request(metrics_port, "GET", "/metrics").text(),
                'mailconfd_config_reloads_total{result="success"}'), 1.0, "one reload counted")
    c.eq(podman("exec", name, *container["lifecycle"]["preStop"]["exec"]["command"][:1], "0")
         .returncode, 0, "the preStop command exists in the image")

    t0 = time.monotonic()
    podman("kill", "--signal", "TERM", name)
    code = podman("wait", name, timeout=60).stdout.strip()
    c.eq(code, "0", "SIGTERM: exit 0")
    c.check(time.monotonic() - t0 < pod["terminationGracePeriodSeconds"],
            "within terminationGracePeriodSeconds")
finally:
    podman("rm", "-f", "-t", "0", name)
    shutil.rmtree(work, ignore_errors=True)
c.done()
