// ACME: http-01 answers served from <acme challenge-directory> (for certbot --webroot, lego,
// uacme), against the real binary over plain HTTP.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "dns_server.h"
#include "service.h"
#include "tls_client.h"

using e2e::Service;

namespace {

// The example configuration with text inserted before </mailconfd>, written to DIR/mailconfd.xml.
std::string write_config(const std::string& dir, const std::string& text) {
  std::string config =
      e2e::read_file(std::string(MAILCONFD_SOURCE_DIR) + "/deploy/example/mailconfd.xml");
  config.insert(config.rfind("</mailconfd>"), text);
  const std::string path = dir + "/mailconfd.xml";
  std::ofstream(path, std::ios::binary | std::ios::trunc) << config;
  return path;
}

}  // namespace

TEST_CASE("acme: /.well-known/acme-challenge/ answers from challenge-directory, nothing else") {
  const std::string dir = e2e::temp_dir();
  std::filesystem::create_directory(dir + "/webroot");
  const std::string config = write_config(dir, "  <acme challenge-directory=\"webroot\"/>\n");
  const std::string token = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";
  const std::string answer = token + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";
  std::ofstream(dir + "/webroot/" + token) << answer;
  std::ofstream(dir + "/secret.txt") << "not for you\n";
  REQUIRE(::mkfifo((dir + "/webroot/fifo").c_str(), 0600) == 0);

  Service s({"--config", config});
  REQUIRE(s.ready());
  auto r = s.get("/.well-known/acme-challenge/" + token);
  CHECK(r.status == 200);
  CHECK(r.header("Content-Type") == "application/octet-stream");
  CHECK(r.header("Cache-Control") == "no-store");
  CHECK(r.body == answer);
  // A file written after start is served at once (certbot writes it just before the CA asks).
  std::ofstream(dir + "/webroot/second") << "second.key";
  CHECK(s.get("/.well-known/acme-challenge/second").body == "second.key");
  CHECK(s.get("/.well-known/acme-challenge/missing").status == 404);
  CHECK(s.get("/.well-known/acme-challenge/").status == 404);
  CHECK(s.get("/.well-known/acme-challenge/fifo").status == 404);  // and does not hang
  CHECK(s.get("/.well-known/acme-challenge/..%2Fsecret.txt").status == 404);
  CHECK(s.get("/.well-known/acme-challenge/a.b").status == 404);
  const auto traversal = s.get("/.well-known/acme-challenge/../secret.txt");
  CHECK(traversal.body.find("not for you") == std::string::npos);
  CHECK((traversal.status == 404 || traversal.status == 400));
  CHECK(s.get("/.well-known/acme-challenge/" + token, {"Host: autoconfig.example.com"}).status ==
        200);
  const auto post = s.request("POST /.well-known/acme-challenge/" + token +
                              " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  CHECK(post.status == 405);
  CHECK(post.header("Allow") == "GET, HEAD");
}

TEST_CASE(
    "acme: without <acme> the challenge path is 404, and a bad <acme> is a FILE:LINE problem") {
  Service s;
  REQUIRE(s.ready());
  CHECK(s.get("/.well-known/acme-challenge/abc").status == 404);

  const std::string dir = e2e::temp_dir();
  const std::string missing = write_config(dir, "  <acme challenge-directory=\"nowhere\"/>\n");
  auto r = e2e::run_mailconfd({"check", missing});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(missing + ":") != std::string::npos);
  CHECK(r.err.find("<acme>: challenge-directory '" + dir + "/nowhere' is not a directory") !=
        std::string::npos);
  std::filesystem::create_directory(dir + "/webroot");
  const std::string twice = write_config(
      dir,
      "  <acme challenge-directory=\"webroot\"/>\n  <acme challenge-directory=\"webroot\"/>\n");
  r = e2e::run_mailconfd({"check", twice});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("<acme> may appear only once in <mailconfd>") != std::string::npos);
  const std::string empty = write_config(dir, "  <acme/>\n");
  r = e2e::run_mailconfd({"check", empty});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("<acme> needs challenge-directory") != std::string::npos);
}

namespace {

bool connects(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// Pebble (Debian package pebble), the ACME test CA, on 127.0.0.1, validating http-01 on
// http_port of the addresses dns_port's server gives. Stopped with its process group.
class Pebble {
 public:
  Pebble(const std::string& dir, std::uint16_t http_port, std::uint16_t dns_port) {
    const e2e::Certificate tls = e2e::make_certificate(dir, "pebble", "localhost");
    ca_file_ = tls.certificate;
    port_ = e2e::free_tcp_port();
    const std::string config = dir + "/pebble.json";
    std::ofstream(config) << "{\"pebble\": {\"listenAddress\": \"127.0.0.1:" << port_
                          << "\", \"managementListenAddress\": \"127.0.0.1:" << e2e::free_tcp_port()
                          << "\", \"certificate\": \"" << tls.certificate
                          << "\", \"privateKey\": \"" << tls.key
                          << "\", \"httpPort\": " << http_port
                          << ", \"tlsPort\": " << e2e::free_tcp_port()
                          << ", \"ocspResponderURL\": \"\", "
                             "\"externalAccountBindingRequired\": false}}\n";
    log_ = dir + "/pebble.log";
    const std::string dns = "127.0.0.1:" + std::to_string(dns_port);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      const int out = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(out, 1), ::dup2(out, 2);
      ::setenv("PEBBLE_VA_NOSLEEP", "1", 1);
      ::setenv("PEBBLE_WFE_NONCEREJECT", "0", 1);
      ::execlp("pebble", "pebble", "-config", config.c_str(), "-dnsserver", dns.c_str(),
               static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 200 && !ready_; ++i) {
      ready_ = connects(port_);
      if (!ready_) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~Pebble() {
    if (pid_ > 0) {
      ::kill(-pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool ready() const { return ready_; }
  std::string directory() const { return "https://127.0.0.1:" + std::to_string(port_) + "/dir"; }
  const std::string& ca_file() const { return ca_file_; }
  std::string log() const { return e2e::read_file(log_); }

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  bool ready_ = false;
  std::string ca_file_, log_;
};

std::string zone(const std::string& name) {
  return "$ORIGIN " + name + ".\n$TTL 60\n@ IN SOA ns." + name + ". hostmaster." + name +
         ". 1 3600 600 86400 60\n@ IN NS ns." + name + ".\n@ IN A 127.0.0.1\n* IN A 127.0.0.1\n";
}

// The subject CN and issuer the HTTPS listener presents for server_name.
std::string served(std::uint16_t port, const std::string& server_name) {
  const auto r =
      e2e::run_command({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port),
                        "-servername", server_name});
  const auto at = r.out.find("\nsubject=");
  const auto issuer = r.out.find("\nissuer=");
  if (at == std::string::npos || issuer == std::string::npos) return "(none)";
  return r.out.substr(at + 1, r.out.find('\n', at + 1) - at - 1) + " | " +
         r.out.substr(issuer + 1, r.out.find('\n', issuer + 1) - issuer - 1);
}

std::uint64_t metric(const std::string& metrics, const std::string& series) {
  const auto at = metrics.find("\n" + series + " ");
  if (at == std::string::npos) return 0;
  return std::stoull(metrics.substr(at + series.size() + 2));
}

}  // namespace

TEST_CASE("acme: certificates from a real Pebble via http-01, served by SNI, kept over restart") {
  e2e::TempDir dir;
  e2e::Nsd nsd(dir.path(), {{"example.com", zone("example.com")},
                            {"example.org", zone("example.org")},
                            {"example.net", zone("example.net")},
                            {"unhosted.test", zone("unhosted.test")}});
  REQUIRE_MESSAGE(nsd.ready(), nsd.log());
  const std::uint16_t http_port = e2e::free_tcp_port();
  Pebble pebble(dir.path(), http_port, nsd.port());
  REQUIRE_MESSAGE(pebble.ready(), pebble.log());
  const e2e::Certificate fallback = e2e::make_certificate(dir.path(), "default", "default.test");
  std::string text =
      e2e::read_file(std::string(MAILCONFD_SOURCE_DIR) + "/deploy/example/mailconfd.xml");
  text.insert(text.find("  </server>"), "    <tls certificate=\"" + fallback.certificate +
                                            "\" key=\"" + fallback.key + "\"/>\n");
  text.insert(text.rfind("</mailconfd>"),
              "  <acme ca=\"" + pebble.directory() + "\" ca-certificate=\"" + pebble.ca_file() +
                  "\" storage=\"acme\" contact=\"mailto:hostmaster@example.net\"\n"
                  "        names=\"autodiscover.example.net\" "
                  "hosted-names=\"autoconfig autodiscover\"/>\n");
  const std::string config = dir.path() + "/mailconfd.xml";
  std::ofstream(config) << text;
  const std::vector<std::string> args{"--config",     config,
                                      "--listen",     "127.0.0.1:" + std::to_string(http_port),
                                      "--tls-listen", "127.0.0.1:0"};
  const std::vector<std::string> names{"autoconfig.example.com", "autoconfig.example.org",
                                       "autodiscover.example.com", "autodiscover.example.net",
                                       "autodiscover.example.org"};
  {
    Service s(args);
    REQUIRE(s.tls_port() != 0);
    // Until a name has its certificate, the default serves it; nothing waits.
    CHECK(s.get("/healthz").status == 200);
    std::string metrics;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(90);
    while (std::chrono::steady_clock::now() < until) {
      metrics = s.get("/metrics").body;
      if (metric(metrics, "mailconfd_acme_orders_total{result=\"issued\"}") == 5 &&
          s.log().find("acme: serving") != std::string::npos &&
          metric(metrics, "mailconfd_tls_certificates{state=\"valid\"}") == 6) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    INFO(s.log());
    INFO(pebble.log());
    CHECK(metric(metrics, "mailconfd_acme_orders_total{result=\"issued\"}") == 5);
    CHECK(metric(metrics, "mailconfd_acme_orders_total{result=\"failed\"}") == 0);
    CHECK(metric(metrics, "mailconfd_tls_certificates{state=\"valid\"}") == 6);
    for (const std::string& name : names) {
      const std::string got = served(s.tls_port(), name);
      CHECK_MESSAGE(got.find("subject=CN = " + name + " | issuer=CN = Pebble Intermediate CA") == 0,
                    got);
    }
    // Never anything outside the hosted domains and the configured names.
    CHECK(served(s.tls_port(), "autoconfig.unhosted.test").find("subject=CN = default.test") == 0);
    std::vector<std::string> files;
    for (const auto& e : std::filesystem::directory_iterator(dir.path() + "/acme/certificates")) {
      files.push_back(e.path().filename().string());
      struct stat st {};
      ::stat(e.path().c_str(), &st);
      CHECK_MESSAGE((st.st_mode & 0777) == 0600, e.path());
    }
    std::sort(files.begin(), files.end());
    std::vector<std::string> expected;
    for (const auto& n : names) expected.insert(expected.end(), {n + ".key", n + ".pem"});
    CHECK(files == expected);
    struct stat st {};
    REQUIRE(::stat((dir.path() + "/acme/account.key").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }
  // A restart serves them from disk at once and orders nothing.
  Service again(args);
  REQUIRE(again.tls_port() != 0);
  CHECK(served(again.tls_port(), "autoconfig.example.org")
            .find("subject=CN = autoconfig.example.org | issuer=CN = Pebble") == 0);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < until &&
         again.log().find("acme: 0 issued") == std::string::npos) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(again.log().find("acme: 0 issued, 0 failed, 5 current of 5 names") != std::string::npos);
}

TEST_CASE("acme: a CA that cannot be reached changes no answer, and the log says why") {
  const std::string dir = e2e::temp_dir();
  const e2e::Certificate fallback = e2e::make_certificate(dir, "default", "default.test");
  std::string text =
      e2e::read_file(std::string(MAILCONFD_SOURCE_DIR) + "/deploy/example/mailconfd.xml");
  text.insert(text.find("  </server>"), "    <tls certificate=\"" + fallback.certificate +
                                            "\" key=\"" + fallback.key + "\"/>\n");
  const std::uint16_t closed = e2e::free_tcp_port();
  text.insert(text.rfind("</mailconfd>"),
              "  <acme ca=\"https://127.0.0.1:" + std::to_string(closed) +
                  "/dir\" storage=\"acme\" names=\"a.example.net\"/>\n");
  const std::string config = dir + "/mailconfd.xml";
  std::ofstream(config) << text;
  Service s({"--config", config, "--tls-listen", "127.0.0.1:0"});
  REQUIRE(s.tls_port() != 0);
  std::string metrics;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < until &&
         metric(metrics, "mailconfd_acme_orders_total{result=\"failed\"}") == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    metrics = s.get("/metrics").body;
  }
  CHECK(metric(metrics, "mailconfd_acme_orders_total{result=\"failed\"}") == 1);
  CHECK(metric(metrics, "mailconfd_acme_orders_total{result=\"issued\"}") == 0);
  CHECK(s.log().find("acme: directory https://127.0.0.1:" + std::to_string(closed) +
                     "/dir: Couldn't connect to server; a.example.net waits 300s") !=
        std::string::npos);
  auto r = s.get("/mail/config-v1.1.xml?emailaddress=alice%40example.com");
  CHECK(r.status == 200);
  CHECK(r.body == e2e::golden("autoconfig/example-alice.xml"));
  CHECK(served(s.tls_port(), "a.example.net").find("subject=CN = default.test") == 0);
  // The account key exists (0600) even though no account could be made.
  struct stat st {};
  REQUIRE(::stat((dir + "/acme/account.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  // <acme ca> without <tls> is refused.
  const std::string no_tls = dir + "/no-tls.xml";
  std::string without =
      e2e::read_file(std::string(MAILCONFD_SOURCE_DIR) + "/deploy/example/mailconfd.xml");
  without.insert(without.rfind("</mailconfd>"),
                 "  <acme ca=\"https://ca.example/dir\" storage=\"acme\"/>\n");
  std::ofstream(no_tls) << without;
  const auto check = e2e::run_mailconfd({"check", no_tls});
  CHECK(check.exit_code == 2);
  CHECK(check.err.find("<acme> with ca needs <tls> (HTTPS to serve on)") != std::string::npos);
}
