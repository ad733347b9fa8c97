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
  configuration; SIGTERM ends the pod with exit 0 within terminationGracePeriodSeconds;
* the settings journal in the database (<journal dsn-file>, the second Secret mounted like
  the first, for the role the database image creates with write rights on the journal's
  tables only): a fetch through the pod and one through a second pod of the same spec are
  rows of the one journal table (each pod counts its written row), the journal's role
  writes only its tables, its password in no log and no `podman inspect`.
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
hpa = by_kind["HorizontalPodAutoscaler"]["spec"]
c.check(hpa["minReplicas"] >= 2, "at least two replicas", str(hpa))
volumes = {v["name"]: v for v in pod["volumes"]}
mounts = {m["name"]: m for m in container["volumeMounts"]}
mount = mounts["config"]
c.eq(volumes["config"]["configMap"]["name"], configmap["metadata"]["name"], "the volume is the ConfigMap")
secret_objects = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
c.eq(sorted(secret_objects), ["mailconfd-database", "mailconfd-journal"], "two Secrets")
secret = secret_objects[volumes["database"]["secret"]["secretName"]]
journal_secret = secret_objects[volumes["journal"]["secret"]["secretName"]]
secret_mode = volumes["database"]["secret"]["defaultMode"]
c.eq(secret_mode, 0o440, "the Secret's files: 0440 (owner and fsGroup)")
c.eq(volumes["journal"]["secret"]["defaultMode"], 0o440, "the journal's Secret: 0440 too")
c.check(mounts["journal"].get("readOnly") is True, "the journal's Secret is mounted read-only")
c.eq(pod["securityContext"]["fsGroup"], pod["securityContext"]["runAsGroup"],
     "fsGroup is the pod's group: it reads the Secret, nobody else does")
c.check(mounts["database"].get("readOnly") is True, "the Secret is mounted read-only")
c.check("emptyDir" in volumes["snapshot"], "the snapshot on an emptyDir")
xml = configmap["data"]["mailconfd.xml"]
dsn_key = list(secret["stringData"])[0]
c.contains(xml, f'dsn-file="{mounts["database"]["mountPath"]}/{dsn_key}"',
           "the ConfigMap's <database> reads the Secret's file")
c.contains(xml, f'snapshot="{mounts["snapshot"]["mountPath"]}/', "the snapshot is on the emptyDir")
journal_key = list(journal_secret["stringData"])[0]
c.contains(xml, f'<journal dsn-file="{mounts["journal"]["mountPath"]}/{journal_key}"',
           "the ConfigMap's <journal> reads the second Secret's file")
manifest_journal_dsn = journal_secret["stringData"][journal_key]
c.check("host=postgresql " in manifest_journal_dsn and " user=mailconfd_journal " in manifest_journal_dsn
        and "password=REPLACE-ME" in manifest_journal_dsn,
        "the journal's DSN: host postgresql, its own role, a password to replace", manifest_journal_dsn)
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
journal_password = secrets.token_hex(24)
journal_dir = os.path.join(work, "journal-secret")
os.mkdir(journal_dir)
os.chmod(journal_dir, 0o755)
publish({journal_key: manifest_journal_dsn.replace("REPLACE-ME", journal_password) + "\n"},
        "2026_12_01_10_00_00.1", journal_dir, secret_mode, pod["securityContext"]["fsGroup"])
snapshot_dir = os.path.join(work, "emptydir")
os.mkdir(snapshot_dir)
os.chmod(snapshot_dir, 0o777)  # an emptyDir's mode
second_snapshot_dir = os.path.join(work, "emptydir2")
os.mkdir(second_snapshot_dir)
os.chmod(second_snapshot_dir, 0o777)

# The provider's database, reachable from the pod as "postgresql" on a network of its own.
network = f"mcdk8s{os.getpid()}"
database = f"mailconfd-pgsql-{os.getpid()}"
c.eq(podman("network", "create", network).returncode, 0, "podman network create")
r = podman("run", "-d", "--name", database, "--network", network, "--network-alias", "postgresql",
           "-v", f"{os.path.realpath(os.path.join(secret_dir, dsn_key))}:/run/secrets/database.dsn:ro",
           "-v", f"{os.path.realpath(os.path.join(journal_dir, journal_key))}:/run/secrets/journal.dsn:ro",
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
second = f"mailconfd-pod2-{os.getpid()}"
second_http_port, second_metrics_port = free_port(), free_port()


def pod_args(pod_name, snapshot, http, metrics):
    args = ["run", "-d", "--name", pod_name, "--network", network,
            "--user", f"{security['runAsUser']}:{security['runAsGroup']}",
            "-m", container["resources"]["limits"]["memory"].replace("Mi", "m"),
            "-v", f"{config_dir}:{mount['mountPath']}:ro",
            "-v", f"{secret_dir}:{mounts['database']['mountPath']}:ro",
            "-v", f"{journal_dir}:{mounts['journal']['mountPath']}:ro",
            "-v", f"{snapshot}:{mounts['snapshot']['mountPath']}",
            "-p", f"127.0.0.1:{http}:{ports['http']}",
            "-p", f"127.0.0.1:{metrics}:{ports['metrics']}"]
    if csec.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    for cap in csec["capabilities"]["drop"]:
        args += ["--cap-drop", cap.lower()]
    if csec.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    return args


args = pod_args(name, snapshot_dir, http_port, metrics_port)
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

    # The settings journal in the database: bob fetches through this pod, carol through a
    # second pod of the same spec; both are rows of the one journal table.
    r = podman(*pod_args(second, second_snapshot_dir, second_http_port, second_metrics_port),
               IMAGE, *container["args"])
    c.eq(r.returncode, 0, f"a second pod starts: {r.stderr}")
    c.check(wait_until(lambda: request(second_http_port, "GET", "/readyz").status == 200, 30),
            "the second pod is ready", podman("logs", second).stderr[-1500:])
    for port, who in ((http_port, "bob"), (second_http_port, "carol")):
        c.eq(request(port, "GET", f"/mail/config-v1.1.xml?emailaddress={who}%40example.com",
                     headers={"User-Agent": "Thunderbird/128.0"}).status, 200, f"{who} fetches settings")

    def journal_rows():
        return sql("SELECT address, door, client, fetches FROM mailconfd_journal_fetch "
                   "WHERE address IN ('bob@example.com', 'carol@example.com') ORDER BY address").stdout

    expected = "bob@example.com|autoconfig|thunderbird|1\ncarol@example.com|autoconfig|thunderbird|1\n"
    c.check(wait_until(lambda: journal_rows() == expected, 20, 0.5),
            "both pods' fetches are in the one journal table", journal_rows())
    for port in (metrics_port, second_metrics_port):
        c.check((metric(request(port, "GET", "/metrics").text(),
                        "mailconfd_journal_rows_written_total") or 0) >= 1,
                "each pod counts the rows it wrote to the journal")
    r = sql("SELECT has_table_privilege('mailconfd_journal', 'mailconfd_journal_fetch', 'INSERT'),"
            " has_table_privilege('mailconfd_journal', 'mailbox', 'SELECT'),"
            " has_table_privilege('mailconfd', 'mailconfd_journal_fetch', 'INSERT')")
    c.eq(r.stdout, "t|f|f\n", "the journal's role writes its tables only; the source's role reads")
    podman("kill", "--signal", "TERM", second)
    c.eq(podman("wait", second, timeout=60).stdout.strip(), "0", "the second pod: exit 0")
    for who in (name, second, database):
        for secret_text in (password, journal_password):
            c.lacks(podman("inspect", who).stdout, secret_text,
                    f"the passwords are not in podman inspect {who}")
            logs = podman("logs", who)
            c.lacks(logs.stdout + logs.stderr, secret_text, f"the passwords are not in the logs of {who}")
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
    podman("rm", "-f", "-t", "0", second)
    podman("rm", "-f", "-v", "-t", "0", database)
    podman("network", "rm", "-f", network)
    shutil.rmtree(work, ignore_errors=True)
c.done()
