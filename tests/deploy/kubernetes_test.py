#!/usr/bin/env python3
"""deploy/kubernetes/mailconfd.yaml without a cluster:

* every object validated offline against the Kubernetes schemas of the npm
  kubernetes-models package, unknown fields refused (kubernetes_validate.js), and a
  misspelt field and a wrong type are caught;
* the Deployment's pod run with podman as the kubelet would: the image, its args, the pod's
  and container's security settings, the memory limit, the ConfigMap and the Secret mounted
  read-only in the kubelet's layout (files are symlinks into ..data, a symlink to a
  timestamped directory; the Secret's files with its defaultMode and the fsGroup), the
  emptyDir for the snapshot; the database a PostgreSQL container (the compose stack's
  database image) started here on a network of its own under the Secret's host name
  "postgresql", with the Secret's DSN (its password replaced by a random one); its probes
  and the metrics port answered; a domain and a login name inserted into the database
  served without a restart; the password in no log and no `podman inspect`; a ConfigMap
  update (the kubelet's atomic ..data swap) plus the documented reload serve the new
  configuration; SIGTERM ends the pod with exit 0 within terminationGracePeriodSeconds.
"""
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time

from common import (DATABASE_IMAGE, DEPLOY, IMAGE, Checks, free_port, metric, podman, proc_status, request,
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
secret = by_kind["Secret"]
hpa = by_kind["HorizontalPodAutoscaler"]["spec"]
c.check(hpa["minReplicas"] >= 2, "at least two replicas", str(hpa))
volumes = {v["name"]: v for v in pod["volumes"]}
mounts = {m["name"]: m for m in container["volumeMounts"]}
mount = mounts["config"]
c.eq(volumes["config"]["configMap"]["name"], configmap["metadata"]["name"], "the volume is the ConfigMap")
c.eq(volumes["database"]["secret"]["secretName"], secret["metadata"]["name"], "the volume is the Secret")
secret_mode = volumes["database"]["secret"]["defaultMode"]
c.eq(secret_mode, 0o440, "the Secret's files: 0440 (owner and fsGroup)")
c.eq(pod["securityContext"]["fsGroup"], pod["securityContext"]["runAsGroup"],
     "fsGroup is the pod's group: it reads the Secret, nobody else does")
c.check(mounts["database"].get("readOnly") is True, "the Secret is mounted read-only")
c.check("emptyDir" in volumes["snapshot"], "the snapshot on an emptyDir")
xml = configmap["data"]["mailconfd.xml"]
dsn_key = list(secret["stringData"])[0]
c.contains(xml, f'dsn-file="{mounts["database"]["mountPath"]}/{dsn_key}"',
           "the ConfigMap's <database> reads the Secret's file")
c.contains(xml, f'snapshot="{mounts["snapshot"]["mountPath"]}/', "the snapshot is on the emptyDir")
manifest_dsn = secret["stringData"][dsn_key]
c.check("host=postgresql " in manifest_dsn and "password=REPLACE-ME" in manifest_dsn,
        "the Secret's DSN names host postgresql and a password to replace", manifest_dsn)
c.check("env" not in container and "envFrom" not in container, "no environment variables")

# The ConfigMap as the kubelet lays it out.
config_dir = os.path.join(work, "configmap")
os.mkdir(config_dir)
os.chmod(config_dir, 0o755)


def publish(data, stamp, directory=config_dir, mode=0o644, group=0):
    """Writes a new timestamped directory and swaps ..data to it atomically, as the kubelet."""
    d = os.path.join(directory, f"..{stamp}")
    os.mkdir(d)
    os.chmod(d, 0o755)
    for name, value in data.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(value)
        os.chown(os.path.join(d, name), 0, group)
        os.chmod(os.path.join(d, name), mode)
        link = os.path.join(directory, name)
        if not os.path.islink(link):
            os.symlink(f"..data/{name}", link)
    os.symlink(f"..{stamp}", os.path.join(directory, "..data_tmp"))
    os.rename(os.path.join(directory, "..data_tmp"), os.path.join(directory, "..data"))


publish(configmap["data"], "2026_12_01_10_00_00.1")
# The Secret as the kubelet lays it out with defaultMode and fsGroup; the operator's DSN is
# the manifest's with its password replaced.
password = secrets.token_hex(24)
secret_dir = os.path.join(work, "secret")
os.mkdir(secret_dir)
os.chmod(secret_dir, 0o755)
dsn = manifest_dsn.replace("REPLACE-ME", password) + "\n"
publish({dsn_key: dsn}, "2026_12_01_10_00_00.1", secret_dir, secret_mode,
        pod["securityContext"]["fsGroup"])
snapshot_dir = os.path.join(work, "emptydir")
os.mkdir(snapshot_dir)
os.chmod(snapshot_dir, 0o777)  # an emptyDir's mode

# The provider's database, reachable from the pod as "postgresql" on a network of its own.
network = f"mcdk8s{os.getpid()}"
database = f"mailconfd-pgsql-{os.getpid()}"
c.eq(podman("network", "create", network).returncode, 0, "podman network create")
r = podman("run", "-d", "--name", database, "--network", network, "--network-alias", "postgresql",
           "-v", f"{os.path.realpath(os.path.join(secret_dir, dsn_key))}:/run/secrets/database.dsn:ro",
           DATABASE_IMAGE)
c.eq(r.returncode, 0, f"the database container starts: {r.stderr}")


def sql(statements):
    return podman("exec", "-u", "postgres", database, "psql", "-h", "/tmp", "-d", "postfix",
                  "-v", "ON_ERROR_STOP=1", "-qAt", "-c", statements, timeout=30)


c.check(wait_until(lambda: "created the database postfix" in podman("logs", database).stderr
                   and sql("SELECT 1").stdout.strip() == "1", 60, 0.5),
        "the database is up", podman("logs", database).stderr[-1500:])

security = pod["securityContext"]
csec = container["securityContext"]
http_port, metrics_port = free_port(), free_port()
name = f"mailconfd-pod-{os.getpid()}"
args = ["run", "-d", "--name", name, "--network", network,
        "--user", f"{security['runAsUser']}:{security['runAsGroup']}",
        "-m", container["resources"]["limits"]["memory"].replace("Mi", "m"),
        "-v", f"{config_dir}:{mount['mountPath']}:ro",
        "-v", f"{secret_dir}:{mounts['database']['mountPath']}:ro",
        "-v", f"{snapshot_dir}:{mounts['snapshot']['mountPath']}",
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
    c.contains(podman("logs", name).stderr, "domains (postgresql) from /etc/mailconfd/mailconfd.xml",
               "serves the database's rows")

    # The Secret: readable by the pod's user through fsGroup, by no other user.
    dsn_path = f"{mounts['database']['mountPath']}/{dsn_key}"
    c.eq(podman("exec", name, "stat", "-L", "-c", "%a %u %g", dsn_path).stdout.strip(),
         f"440 0 {pod['securityContext']['fsGroup']}", "the Secret's file: 0440 root:fsGroup")
    r = podman("exec", "--user", "1000:1000", name, "cat", dsn_path)
    c.check(r.returncode != 0 and "Permission denied" in r.stderr, "another user cannot read it",
            r.stdout + r.stderr)

    # A domain and a mailbox login added in the database: served without a restart.
    anna = "/mail/config-v1.1.xml?emailaddress=anna%40customer.example"
    c.eq(request(http_port, "GET", anna).status, 404, "customer.example is not hosted yet")
    pid_before = podman("inspect", "--format", "{{.State.Pid}}", name).stdout.strip()
    r = sql("INSERT INTO domain (domain) VALUES ('customer.example');"
            "INSERT INTO mailbox (username, domain) VALUES ('anna@customer.example', 'customer.example');"
            "INSERT INTO mailconfd_mailbox VALUES ('anna@customer.example', 'web12p3')")
    c.eq((r.returncode, r.stderr), (0, ""), "rows inserted")
    t0 = time.monotonic()
    c.check(wait_until(lambda: "<username>web12p3</username>" in request(http_port, "GET", anna).text(),
                       15, 0.05), "the pod serves the new domain with the login name")
    print(f"kubernetes: a database change served after {time.monotonic() - t0:.2f} s", flush=True)
    c.eq(podman("inspect", "--format", "{{.State.Pid}}", name).stdout.strip(), pid_before,
         "without a restart")
    c.check(wait_until(lambda: podman("exec", name, "test", "-s",
                                      f"{mounts['snapshot']['mountPath']}/database.snapshot")
                       .returncode == 0, 10), "the snapshot is written to the emptyDir")
    for who in (name, database):
        c.lacks(podman("inspect", who).stdout, password, f"the password is not in podman inspect {who}")
        logs = podman("logs", who)
        c.lacks(logs.stdout + logs.stderr, password, f"the password is not in the logs of {who}")
    reloads = metric(request(metrics_port, "GET", "/metrics").text(),
                     'mailconfd_config_reloads_total{result="success"}')

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
                'mailconfd_config_reloads_total{result="success"}'), reloads + 1, "one reload counted")
    c.contains(request(http_port, "GET", anna).text(), "<username>web12p3</username>",
               "the reload read the database again")
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
    podman("rm", "-f", "-v", "-t", "0", database)
    podman("network", "rm", "-f", network)
    shutil.rmtree(work, ignore_errors=True)
c.done()
