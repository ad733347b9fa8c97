// The quick checks of deploy/ that run in make test: the systemd unit passes systemd-analyze
// verify, the nginx snippet runs for real in front of mailconfd (Debian's nginx on
// 127.0.0.1), the compose proxy and site configurations pass nginx -t, and the Kubernetes
// ConfigMap holds a configuration that mailconfd check accepts. make test-deploy
// (tests/deploy/) runs every deploy file for real: podman, podman-compose, systemd-nspawn.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include <doctest/doctest.h>

#include "service.h"

using e2e::Connection;
using e2e::Service;
using namespace std::chrono_literals;

namespace {

const std::string kDeploy = std::string(MAILCONFD_SOURCE_DIR) + "/deploy";

void write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

// A self-signed certificate made now, for configurations that name one.
std::pair<std::string, std::string> make_certificate(const std::string& dir) {
  const std::string cert = dir + "/fullchain.pem", key = dir + "/privkey.pem";
  auto r = e2e::run_command({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                             "/CN=autoconfig.example.com", "-keyout", key, "-out", cert});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  return {cert, key};
}

// Paths nginx wants to write, all inside dir; it runs as the current user.
std::string nginx_main(const std::string& dir, const std::string& http_block) {
  return "daemon off;\nmaster_process off;\nworker_processes 1;\npid " + dir +
         "/nginx.pid;\nerror_log " + dir + "/error.log warn;\nevents { worker_connections 64; }\n" +
         "http {\n  access_log " + dir + "/access.log;\n  client_body_temp_path " + dir +
         "/body;\n  proxy_temp_path " + dir + "/proxy;\n  fastcgi_temp_path " + dir +
         "/fastcgi;\n  uwsgi_temp_path " + dir + "/uwsgi;\n  scgi_temp_path " + dir + "/scgi;\n" +
         http_block + "}\n";
}

e2e::CommandResult nginx_test(const std::string& conf) {
  return e2e::run_command({"nginx", "-t", "-q", "-c", conf, "-e", "/dev/stderr"});
}

}  // namespace

TEST_CASE("the systemd unit passes systemd-analyze verify") {
  const std::string dir = e2e::temp_dir();
  // verify insists that ExecStart's binary exists: point it at the one just built.
  const std::string unit = dir + "/mailconfd.service";
  write(unit, replace_all(e2e::read_file(kDeploy + "/systemd/mailconfd.service"),
                          "/usr/bin/mailconfd", MAILCONFD_BINARY));
  auto r = e2e::run_command({"systemd-analyze", "verify", unit});
  REQUIRE_MESSAGE(r.exit_code != 127, "systemd-analyze is missing: run .ci/install-deps");
  CHECK_MESSAGE(r.exit_code == 0, (r.out + r.err));
  CHECK(r.out + r.err == "");

  // The check can fail: a misspelt directive is reported.
  write(unit, replace_all(e2e::read_file(unit), "NoNewPrivileges=yes", "NoNewPrivilege=yes"));
  auto bad = e2e::run_command({"systemd-analyze", "verify", unit});
  CHECK(bad.err.find("NoNewPrivilege") != std::string::npos);

  const std::string text = e2e::read_file(kDeploy + "/systemd/mailconfd.service");
  for (const char* line :
       {"Type=notify\n", "ExecReload=/bin/kill -HUP $MAINPID\n", "DynamicUser=yes\n",
        "NoNewPrivileges=yes\n", "ProtectSystem=strict\n", "ProtectHome=yes\n", "PrivateTmp=yes\n",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE\n", "LimitNOFILE=65536\n",
        "TimeoutStopSec=30s\n"}) {
    CHECK_MESSAGE(text.find(line) != std::string::npos, line);
  }
}

// A canned mail log in Debian's rsyslog format: anna relays via the map, bert relays and then
// submits with SMTP-Auth.
std::string canned_log(const std::string& day) {
  const auto login = [&](const std::string& time, const std::string& user, const std::string& ip) {
    return day + "T" + time + ".000000+00:00 mail dovecot: pop3-login: Login: user=<" + user +
           ">, method=PLAIN, rip=" + ip + ", lip=192.0.2.1, mpid=1, TLS, session=<s>\n";
  };
  const auto relay = [&](const std::string& time, const std::string& qid, const std::string& ip,
                         const std::string& from) {
    const std::string t = day + "T" + time + ".000000+00:00 mail ";
    return t + "postfix/smtpd[5]: " + qid + ": client=pc[" + ip + "]\n" + t +
           "postfix/qmgr[6]: " + qid + ": from=<" + from + ">, size=1, nrcpt=1\n" + t +
           "postfix/smtp[7]: " + qid +
           ": to=<r@remote.test>, relay=mx[198.51.100.1]:25, status=sent (ok)\n";
  };
  return login("10:00:00", "anna@customer.test", "203.0.113.10") +
         relay("10:00:05", "A1", "203.0.113.10", "anna@customer.test") +
         login("10:01:00", "bert@customer.test", "203.0.113.11") +
         relay("10:01:05", "B1", "203.0.113.11", "bert@customer.test") + day +
         "T10:05:00.000000+00:00 mail postfix/submission/smtpd[5]: B2: client=pc[203.0.113.11], "
         "sasl_method=PLAIN, sasl_username=bert@customer.test\n" +
         day +
         "T10:05:00.000000+00:00 mail postfix/qmgr[6]: B2: from=<bert@customer.test>, "
         "size=1, nrcpt=1\n";
}

TEST_CASE("the cut-off scan's service and timer pass systemd-analyze verify") {
  const std::string dir = e2e::temp_dir();
  const std::string service = dir + "/mailconfd-cutover-scan.service";
  const std::string text = e2e::read_file(kDeploy + "/systemd/mailconfd-cutover-scan.service");
  write(service, replace_all(text, "/usr/bin/mailconfd", MAILCONFD_BINARY));
  write(dir + "/mailconfd-cutover-scan.timer",
        e2e::read_file(kDeploy + "/systemd/mailconfd-cutover-scan.timer"));
  auto r = e2e::run_command(
      {"systemd-analyze", "verify", service, dir + "/mailconfd-cutover-scan.timer"});
  CHECK_MESSAGE(r.exit_code == 0, (r.out + r.err));
  CHECK(r.out + r.err == "");
  for (const char* line : {"Type=oneshot\n", "User=mailconfd\n", "DynamicUser=yes\n",
                           "SupplementaryGroups=adm ssl-cert\n", "StateDirectory=mailconfd\n",
                           "ProtectSystem=strict\n", "PrivateNetwork=yes\n",
                           "CapabilityBoundingSet=\n", "NoNewPrivileges=yes\n"}) {
    CHECK_MESSAGE(text.find(line) != std::string::npos, line);
  }
  const std::string timer = e2e::read_file(kDeploy + "/systemd/mailconfd-cutover-scan.timer");
  CHECK(timer.find("OnCalendar=*:0/15\n") != std::string::npos);
  CHECK(timer.find("WantedBy=timers.target\n") != std::string::npos);
  // The journal needs a writable place under ProtectSystem=strict: the same state directory.
  CHECK(e2e::read_file(kDeploy + "/systemd/mailconfd.service").find("StateDirectory=mailconfd\n") !=
        std::string::npos);
}

TEST_CASE(
    "the cut-off scan service's command replaces the report, incrementally, on exit 0 and 1") {
  const std::string dir = e2e::temp_dir();
  const std::string text = e2e::read_file(kDeploy + "/systemd/mailconfd-cutover-scan.service");
  // ExecStart's shell command as systemd hands it to sh ($$ is a literal $), the paths
  // pointed into dir.
  const std::string start = "ExecStart=/bin/sh -c '";
  const auto from = text.find(start);
  REQUIRE(from != std::string::npos);
  const auto end = text.find("'\n", from);
  std::string command =
      replace_all(text.substr(from + start.size(), end - from - start.size()), "$$", "$");
  command = replace_all(command, "/usr/bin/mailconfd", MAILCONFD_BINARY);
  command = replace_all(command, "/etc/mailconfd/mailconfd.xml", dir + "/mailconfd.xml");
  write(dir + "/mailconfd.xml",
        "<mailconfd><provider id=\"provider.test\"><incoming protocol=\"imap\" "
        "host=\"imap.provider.test\" port=\"993\" security=\"tls\"/><outgoing "
        "host=\"smtp.provider.test\" port=\"587\" security=\"starttls\"/>"
        "<domain>customer.test</domain></provider></mailconfd>\n");
  write(dir + "/mail.log", canned_log("2026-12-01"));
  const auto run_scan = [&](const std::string& logs) {
    return e2e::run_command({"/bin/sh", "-c",
                             "cd '" + dir + "' && MAILCONFD_SCAN_LOGS='" + logs + "' /bin/sh -c '" +
                                 replace_all(command, "'", "'\\''") + "'"});
  };
  const auto states = [&] {
    return e2e::run_command({"python3", "-c",
                             "import json, sys\n"
                             "for m in json.load(open(sys.argv[1]))['mailboxes']: "
                             "print(m['address'], m['state'])",
                             dir + "/cutover.json"})
        .out;
  };
  // anna is at risk (the scan exits 1): the report is moved into place all the same.
  auto r = run_scan(dir + "/mail.log*");
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK(states() == "anna@customer.test at-risk\nbert@customer.test switched\n");
  CHECK_FALSE(e2e::run_command({"test", "-e", dir + "/cutover.json.tmp"}).exit_code == 0);
  CHECK(e2e::run_command({"test", "-s", dir + "/cutover.state"}).exit_code == 0);
  // The next run reads only what is new and still reports everyone.
  r = run_scan(dir + "/mail.log*");
  CHECK(r.exit_code == 0);
  CHECK(states() == "anna@customer.test at-risk\nbert@customer.test switched\n");
  std::ofstream(dir + "/mail.log", std::ios::app)
      << "2026-12-01T11:00:00.000000+00:00 mail postfix/submission/smtpd[5]: A2: "
         "client=pc[203.0.113.10], sasl_method=PLAIN, sasl_username=anna@customer.test\n"
         "2026-12-01T11:00:00.000000+00:00 mail postfix/qmgr[6]: A2: from=<anna@customer.test>, "
         "size=1, nrcpt=1\n";
  r = run_scan(dir + "/mail.log*");
  CHECK(r.exit_code == 0);
  CHECK(states() == "anna@customer.test switched\nbert@customer.test switched\n");
  // A log that cannot be read (exit 3): the old report stays, the service fails.
  r = run_scan(dir + "/no-such.log");
  CHECK(r.exit_code == 3);
  CHECK(states() == "anna@customer.test switched\nbert@customer.test switched\n");
  CHECK_FALSE(e2e::run_command({"test", "-e", dir + "/cutover.json.tmp"}).exit_code == 0);
}

TEST_CASE("nginx with deploy/nginx/mailconfd-proxy.conf in front of mailconfd") {
  Service s;
  REQUIRE(s.ready());
  const std::string dir = e2e::temp_dir();
  const std::uint16_t port = e2e::free_tcp_port();
  const std::string conf = dir + "/nginx.conf";
  write(conf,
        nginx_main(dir, "  upstream mailconfd {\n    server 127.0.0.1:" + std::to_string(s.port()) +
                            ";\n    keepalive 4;\n  }\n  server {\n    listen 127.0.0.1:" +
                            std::to_string(port) +
                            ";\n    location / {\n      proxy_pass http://mailconfd;\n" +
                            "      include " + kDeploy +
                            "/nginx/mailconfd-proxy.conf;\n    }\n  }\n"));
  auto t = nginx_test(conf);
  REQUIRE_MESSAGE(t.exit_code != 127, "nginx is missing: run .ci/install-deps");
  REQUIRE_MESSAGE(t.exit_code == 0, t.err);

  const pid_t nginx = ::fork();
  if (nginx == 0) {
    ::execlp("nginx", "nginx", "-c", conf.c_str(), "-e", (dir + "/error.log").c_str(), nullptr);
    ::_exit(127);
  }
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    Connection probe(port);
    up = !probe.closed();
    if (!up) std::this_thread::sleep_for(50ms);
  }
  REQUIRE(up);

  const std::string target = "/mail/config-v1.1.xml?emailaddress=alice%40example.com";
  const auto direct = s.get(target);
  {
    Connection c(port);
    for (int i = 0; i < 3; ++i) {  // keep-alive on both sides
      c.send("GET " + target + " HTTP/1.1\r\nHost: autoconfig.example.com\r\n\r\n");
      auto r = c.read_response();
      CHECK(r.status == 200);
      CHECK(r.header("Content-Type") == "application/xml; charset=utf-8");
      CHECK(r.body == direct.body);
    }
    // Without an address the domain comes from Host, which nginx passes on.
    c.send("GET /mail/config-v1.1.xml HTTP/1.1\r\nHost: autoconfig.example.org\r\n\r\n");
    auto by_host = c.read_response();
    CHECK(by_host.status == 200);
    CHECK(by_host.body.find("<domain>example.org</domain>") != std::string::npos);
    // Bodies above client_max_body_size never reach mailconfd.
    c.send("POST /mail/config-v1.1.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 40000\r\n\r\n");
    CHECK(c.read_response().status == 413);
  }
  ::kill(nginx, SIGTERM);
  int status = 0;
  ::waitpid(nginx, &status, 0);
  auto served = [&s] {
    const std::string log = s.log();
    std::size_t n = 0;
    for (auto at = log.find("GET /mail/config-v1.1.xml 200"); at != std::string::npos;
         at = log.find("GET /mail/config-v1.1.xml 200", at + 1))
      ++n;
    return n;
  };
  // Access-log lines are written in batches, within log_limits::kInterval (50 ms).
  for (int i = 0; i < 100 && served() < 5; ++i) std::this_thread::sleep_for(20ms);
  std::this_thread::sleep_for(100ms);
  CHECK(served() == 5);  // the direct one and four through nginx; the 413 stayed in nginx
}

TEST_CASE("the compose proxy and the nginx site example pass nginx -t") {
  const std::string dir = e2e::temp_dir();
  const auto [cert, key] = make_certificate(dir);
  auto adapt = [&](std::string text) {
    text = replace_all(text, "/etc/nginx/snippets/mailconfd-proxy.conf",
                       kDeploy + "/nginx/mailconfd-proxy.conf");
    text = replace_all(text, "/etc/ssl/mailconfd/fullchain.pem", cert);
    text = replace_all(text, "/etc/ssl/mailconfd/privkey.pem", key);
    text = replace_all(text, "include /run/nginx-resolver.conf;", "resolver 127.0.0.1;");
    text = replace_all(text, "/var/log/nginx/mailconfd.access.log", dir + "/access.log");
    return text;
  };
  std::string compose = adapt(e2e::read_file(kDeploy + "/container/nginx.conf"));
  compose = replace_all(compose, "pid /run/nginx.pid;", "pid " + dir + "/compose.pid;");
  compose = replace_all(compose, "user www-data;\n", "");
  write(dir + "/compose.conf", compose);
  auto c = nginx_test(dir + "/compose.conf");
  CHECK_MESSAGE(c.exit_code == 0, c.err);

  write(dir + "/site.conf", adapt(e2e::read_file(kDeploy + "/nginx/mailconfd.conf")));
  write(dir + "/site-main.conf", nginx_main(dir, "  include " + dir + "/site.conf;\n"));
  auto site = nginx_test(dir + "/site-main.conf");
  CHECK_MESSAGE(site.exit_code == 0, site.err);
}

TEST_CASE("the Kubernetes ConfigMap holds a valid configuration, and probes use the health URLs") {
  const std::string yaml = e2e::read_file(kDeploy + "/kubernetes/mailconfd.yaml");
  const auto start = yaml.find("  mailconfd.xml: |\n");
  REQUIRE(start != std::string::npos);
  std::string xml;
  std::size_t at = start + std::string("  mailconfd.xml: |\n").size();
  while (at < yaml.size() && yaml.compare(at, 4, "    ") == 0) {
    const auto end = yaml.find('\n', at);
    xml += yaml.substr(at + 4, end - at - 4) + "\n";
    at = end + 1;
  }
  // The file part: <database> and <journal dsn-file> need the Secrets and a PostgreSQL,
  // which tests/deploy/kubernetes_test.py (make test-deploy) gives them.
  for (const char* element :
       {"  <database driver=\"postgresql\"", "  <journal dsn-file=\"/etc/mailconfd-journal/"}) {
    const auto from = xml.find(element);
    REQUIRE_MESSAGE(from != std::string::npos, element);
    xml.erase(from, xml.find("/>\n", from) + 3 - from);
  }
  const std::string path = e2e::temp_dir() + "/mailconfd.xml";
  write(path, xml);
  auto r = e2e::run_mailconfd({"check", "--config", path});
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK(yaml.find("httpGet: {path: /readyz, port: http}") != std::string::npos);
  CHECK(yaml.find("httpGet: {path: /healthz, port: http}") != std::string::npos);
  for (const char* kind : {"kind: ConfigMap", "kind: Deployment", "kind: Service",
                           "kind: HorizontalPodAutoscaler", "kind: PodDisruptionBudget"}) {
    CHECK_MESSAGE(yaml.find(kind) != std::string::npos, kind);
  }
  // compose mounts what exists in the repository.
  const std::string compose = e2e::read_file(kDeploy + "/container/compose.yaml");
  for (const char* mounted : {"./config:", "./nginx.conf:", "../nginx/mailconfd-proxy.conf:"}) {
    CHECK_MESSAGE(compose.find(mounted) != std::string::npos, mounted);
  }
}
