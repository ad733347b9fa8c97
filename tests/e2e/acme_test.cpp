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
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

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
// http_port and tls-alpn-01 on tls_port (0: a port nothing listens on) of the addresses
// dns_port's server gives; nonce_reject: the percentage of good nonces it answers with
// badNonce. Stopped with its process group.
class Pebble {
 public:
  Pebble(const std::string& dir, std::uint16_t http_port, std::uint16_t dns_port,
         std::uint16_t tls_port = 0, int nonce_reject = 0) {
    const e2e::Certificate tls = e2e::make_certificate(dir, "pebble", "localhost");
    ca_file_ = tls.certificate;
    key_file_ = tls.key;
    port_ = e2e::free_tcp_port();
    const std::string config = dir + "/pebble.json";
    std::ofstream(config) << "{\"pebble\": {\"listenAddress\": \"127.0.0.1:" << port_
                          << "\", \"managementListenAddress\": \"127.0.0.1:" << e2e::free_tcp_port()
                          << "\", \"certificate\": \"" << tls.certificate
                          << "\", \"privateKey\": \"" << tls.key
                          << "\", \"httpPort\": " << http_port
                          << ", \"tlsPort\": " << (tls_port ? tls_port : e2e::free_tcp_port())
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
      ::setenv("PEBBLE_WFE_NONCEREJECT", std::to_string(nonce_reject).c_str(), 1);
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
  std::uint16_t port() const { return port_; }
  const std::string& ca_file() const { return ca_file_; }
  const std::string& key_file() const { return key_file_; }
  std::string log() const { return e2e::read_file(log_); }

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  bool ready_ = false;
  std::string ca_file_, key_file_, log_;
};

// tests/e2e/acme_proxy.py in front of pebble: a test double for what Pebble 2.4 lacks (429 +
// Retry-After, ARI's renewalInfo), as DIR/proxy-rules.json says; everything else goes to
// the real Pebble. Its HTTPS uses Pebble's own certificate, so the client trusts both alike.
class Proxy {
 public:
  Proxy(const std::string& dir, const Pebble& pebble, const std::string& rules)
      : rules_(dir + "/proxy-rules.json"), log_(dir + "/proxy.log") {
    set_rules(rules);
    const std::string port_file = dir + "/proxy.port";
    const std::string script = std::string(MAILCONFD_SOURCE_DIR) + "/tests/e2e/acme_proxy.py";
    const std::string upstream = std::to_string(pebble.port());
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      const int err = ::open((dir + "/proxy.err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(err, 2);
      ::execlp("python3", "python3", script.c_str(), upstream.c_str(), pebble.ca_file().c_str(),
               pebble.key_file().c_str(), pebble.ca_file().c_str(), rules_.c_str(), log_.c_str(),
               port_file.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 200 && port_ == 0; ++i) {
      if (std::ifstream in(port_file); in) in >> port_;
      if (port_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~Proxy() {
    if (pid_ > 0) {
      ::kill(-pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool ready() const { return port_ != 0; }
  std::string directory() const { return "https://127.0.0.1:" + std::to_string(port_) + "/dir"; }
  void set_rules(const std::string& rules) const {
    std::ofstream(rules_ + ".tmp", std::ios::trunc) << rules;
    std::filesystem::rename(rules_ + ".tmp", rules_);
  }

  // One request the proxy saw (a line of its log).
  struct Seen {
    double arrived = 0;
    std::string endpoint;
    int status = 0;
    double not_before = 0;  // what its Retry-After allowed; 0: none
    std::string replaces;   // a newOrder's replaces; "-": none
  };
  std::vector<Seen> seen(const std::vector<std::string>& endpoints) const {
    std::vector<Seen> out;
    std::istringstream in(e2e::read_file(log_));
    for (std::string line; std::getline(in, line);) {
      std::istringstream fields(line);
      Seen s;
      std::string not_before;
      fields >> s.arrived >> s.endpoint >> s.status >> not_before >> s.replaces;
      s.not_before = not_before == "-" ? 0 : std::stod(not_before);
      if (std::find(endpoints.begin(), endpoints.end(), s.endpoint) != endpoints.end()) {
        out.push_back(s);
      }
    }
    return out;
  }

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::string rules_, log_;
};

std::string zone(const std::string& name) {
  return "$ORIGIN " + name + ".\n$TTL 60\n@ IN SOA ns." + name + ". hostmaster." + name +
         ". 1 3600 600 86400 60\n@ IN NS ns." + name + ".\n@ IN A 127.0.0.1\n* IN A 127.0.0.1\n";
}

// What the tests against a real CA share: in a temporary directory, NSD answering 127.0.0.1
// for every name of domains, Pebble validating http-01 on http_port (nothing listens there
// unless the test starts mailconfd on it) and tls-alpn-01 on tls_port through that NSD, and
// a self-signed default certificate for mailconfd (CN default.test).
struct Ca {
  explicit Ca(const std::vector<std::string>& domains, std::uint16_t tls_port = 0,
              int nonce_reject = 0)
      : nsd(dir.path(), zones(domains)),
        pebble(dir.path(), http_port, nsd.port(), tls_port, nonce_reject),
        fallback(e2e::make_certificate(dir.path(), "default", "default.test")) {}
  bool ready() const { return nsd.ready() && pebble.ready(); }
  std::string log() const { return nsd.log() + pebble.log(); }

  e2e::TempDir dir;
  const std::uint16_t http_port = e2e::free_tcp_port();
  e2e::Nsd nsd;
  Pebble pebble;
  const e2e::Certificate fallback;

 private:
  static std::vector<e2e::Zone> zones(const std::vector<std::string>& domains) {
    std::vector<e2e::Zone> out;
    for (const auto& d : domains) out.push_back({d, zone(d)});
    return out;
  }
};

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
  Ca ca({"example.com", "example.org", "example.net", "unhosted.test"});
  REQUIRE_MESSAGE(ca.ready(), ca.log());
  std::string text =
      e2e::read_file(std::string(MAILCONFD_SOURCE_DIR) + "/deploy/example/mailconfd.xml");
  text.insert(text.find("  </server>"), "    <tls certificate=\"" + ca.fallback.certificate +
                                            "\" key=\"" + ca.fallback.key + "\"/>\n");
  text.insert(text.rfind("</mailconfd>"),
              "  <acme ca=\"" + ca.pebble.directory() + "\" ca-certificate=\"" +
                  ca.pebble.ca_file() +
                  "\" storage=\"acme\" contact=\"mailto:hostmaster@example.net\"\n"
                  "        names=\"autodiscover.example.net\" "
                  "hosted-names=\"autoconfig autodiscover\"/>\n");
  const std::string config = ca.dir.path() + "/mailconfd.xml";
  std::ofstream(config) << text;
  const std::vector<std::string> args{"--config",     config,
                                      "--listen",     "127.0.0.1:" + std::to_string(ca.http_port),
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
    INFO(ca.pebble.log());
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
    for (const auto& e :
         std::filesystem::directory_iterator(ca.dir.path() + "/acme/certificates")) {
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
    REQUIRE(::stat((ca.dir.path() + "/acme/account.key").c_str(), &st) == 0);
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
                     "/dir: Couldn't connect to server; no orders for 300s (the CA failed)") !=
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

namespace {

// The example configuration with the default certificate fallback, <acme ACME/> and
// provider_attributes added to <provider id="example.net">, written to DIR/mailconfd.xml.
std::string write_acme_config(const std::string& dir, const e2e::Certificate& fallback,
                              const std::string& acme,
                              const std::string& provider_attributes = "") {
  std::string text =
      e2e::read_file(std::string(MAILCONFD_SOURCE_DIR) + "/deploy/example/mailconfd.xml");
  text.insert(text.find("  </server>"), "    <tls certificate=\"" + fallback.certificate +
                                            "\" key=\"" + fallback.key + "\"/>\n");
  const std::string provider = "<provider id=\"example.net\"";
  text.insert(text.find(provider) + provider.size(), provider_attributes);
  text.insert(text.rfind("</mailconfd>"), "  <acme " + acme + "/>\n");
  const std::string config = dir + "/mailconfd.xml";
  std::ofstream(config) << text;
  return config;
}

std::string pebble_acme(const Pebble& pebble) {
  return "ca=\"" + pebble.directory() + "\" ca-certificate=\"" + pebble.ca_file() +
         "\" storage=\"acme\" ";
}

// Polls /metrics until series reaches want (or timeout); returns the last /metrics.
std::string wait_for_metric(Service& s, const std::string& series, std::uint64_t want,
                            std::chrono::seconds timeout) {
  std::string metrics;
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    metrics = s.get("/metrics").body;
    if (metric(metrics, series) >= want) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return metrics;
}

// What `openssl s_client -alpn PROTOCOL` says about ALPN: "ALPN protocol: X" or
// "No ALPN negotiated".
std::string alpn(std::uint16_t port, const std::string& server_name, const std::string& protocol) {
  const auto r =
      e2e::run_command({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port),
                        "-servername", server_name, "-alpn", protocol});
  for (const std::string& line :
       {"ALPN protocol: " + protocol, std::string("No ALPN negotiated")}) {
    if (r.out.find(line) != std::string::npos) return line;
  }
  return "(handshake failed)";
}

// A self-signed P-256 certificate for name, valid from 5 hours ago to 1 hour from now (two
// thirds of its lifetime are over), written to pem and key.
void write_short_lived(const std::string& name, const std::string& pem, const std::string& key) {
  EVP_PKEY* pkey = EVP_EC_gen("P-256");
  X509* x = X509_new();
  X509_set_version(x, X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
  X509_gmtime_adj(X509_getm_notBefore(x), -5 * 3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, pkey);
  X509_NAME* subject = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, subject);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x, x, nullptr, nullptr, 0);
  X509_EXTENSION* san =
      X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, ("DNS:" + name).c_str());
  X509_add_ext(x, san, -1);
  X509_EXTENSION_free(san);
  X509_sign(x, pkey, EVP_sha256());
  FILE* f = std::fopen(pem.c_str(), "w");
  PEM_write_X509(f, x);
  std::fclose(f);
  f = std::fopen(key.c_str(), "w");
  PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  ::chmod(key.c_str(), 0600);
  X509_free(x);
  EVP_PKEY_free(pkey);
}

}  // namespace

TEST_CASE("acme: tls-alpn-01 on the TLS listener, validated by a real Pebble, others unaffected") {
  // Pebble's http-01 port has nothing behind it: only tls-alpn-01 can succeed.
  const std::uint16_t tls_port = e2e::free_tcp_port();
  Ca ca({"example.net"}, tls_port);
  REQUIRE_MESSAGE(ca.ready(), ca.log());
  const std::string config =
      write_acme_config(ca.dir.path(), ca.fallback,
                        pebble_acme(ca.pebble) +
                            "challenge=\"tls-alpn-01\" names=\"autodiscover.example.net "
                            "autoconfig.example.net\"");
  Service s({"--config", config, "--tls-listen", "127.0.0.1:" + std::to_string(tls_port)});
  REQUIRE(s.tls_port() == tls_port);
  const std::string metrics = wait_for_metric(s, "mailconfd_acme_orders_total{result=\"issued\"}",
                                              2, std::chrono::seconds(90));
  INFO(s.log());
  INFO(ca.pebble.log());
  CHECK(metric(metrics, "mailconfd_acme_orders_total{result=\"issued\"}") == 2);
  CHECK(metric(metrics, "mailconfd_acme_orders_total{result=\"failed\"}") == 0);
  CHECK(s.log().find("acme: 2 names from " + ca.pebble.directory() + " (tls-alpn-01 first)") !=
        std::string::npos);
  REQUIRE(e2e::wait_for_log(s, "acme/certificates/autoconfig.example.net.pem",
                            std::chrono::seconds(10)));
  for (const std::string name : {"autodiscover.example.net", "autoconfig.example.net"}) {
    const std::string got = served(s.tls_port(), name);
    CHECK_MESSAGE(got.find("subject=CN = " + name + " | issuer=CN = Pebble Intermediate CA") == 0,
                  got);
  }
  // Normal clients: http/1.1 as before; acme-tls/1 without a pending challenge is not
  // answered (the normal certificate, no ALPN); requests over HTTPS unchanged.
  CHECK(alpn(s.tls_port(), "autoconfig.example.net", "http/1.1") == "ALPN protocol: http/1.1");
  CHECK(alpn(s.tls_port(), "autoconfig.example.net", "acme-tls/1") == "No ALPN negotiated");
  CHECK(served(s.tls_port(), "other.example.net").find("subject=CN = default.test") == 0);
  CHECK(s.get("/mail/config-v1.1.xml?emailaddress=alice%40example.com").body ==
        e2e::golden("autoconfig/example-alice.xml"));
}

TEST_CASE("acme: on demand at the first handshake for hosted names only, per-provider opt-in") {
  Ca ca({"example.com", "example.org", "unhosted.test"});
  REQUIRE_MESSAGE(ca.ready(), ca.log());
  // The global hosted-names would take both; the provider opts in to autoconfig. alone.
  const std::string config = write_acme_config(
      ca.dir.path(), ca.fallback,
      pebble_acme(ca.pebble) + "on-demand=\"yes\" hosted-names=\"autoconfig autodiscover\"",
      " acme-hosted-names=\"autoconfig\"");
  const std::vector<std::string> args{"--config",     config,
                                      "--listen",     "127.0.0.1:" + std::to_string(ca.http_port),
                                      "--tls-listen", "127.0.0.1:0"};
  {
    Service s(args);
    REQUIRE(s.tls_port() != 0);
    // Nothing is ordered ahead of time.
    REQUIRE(e2e::wait_for_log(s, "acme: 0 issued, 0 failed, 0 current of 0 names",
                              std::chrono::seconds(30)));
    // The first handshake gets the default certificate at once and queues the order.
    CHECK(served(s.tls_port(), "autoconfig.example.com").find("subject=CN = default.test") == 0);
    // Not hosted, or hosted but not opted in, or not an autoconfig./autodiscover. name:
    // the default, and never an order.
    for (const std::string name :
         {"autoconfig.unhosted.test", "autodiscover.example.com", "www.example.com"}) {
      CHECK(served(s.tls_port(), name).find("subject=CN = default.test") == 0);
    }
    std::string metrics = wait_for_metric(s, "mailconfd_acme_orders_total{result=\"issued\"}", 1,
                                          std::chrono::seconds(90));
    INFO(s.log());
    INFO(ca.pebble.log());
    CHECK(metric(metrics, "mailconfd_acme_orders_total{result=\"issued\"}") == 1);
    REQUIRE(e2e::wait_for_log(s, "acme/certificates/autoconfig.example.com.pem",
                              std::chrono::seconds(10)));
    // A later handshake gets the new certificate.
    const std::string got = served(s.tls_port(), "autoconfig.example.com");
    CHECK_MESSAGE(got.find("subject=CN = autoconfig.example.com | issuer=CN = Pebble") == 0, got);
    metrics = s.get("/metrics").body;
    CHECK(metric(metrics, "mailconfd_acme_on_demand_total{result=\"queued\"}") == 1);
    CHECK(metric(metrics, "mailconfd_acme_on_demand_total{result=\"refused\"}") == 3);
    CHECK(metric(metrics, "mailconfd_acme_orders_total{result=\"failed\"}") == 0);
    CHECK(s.log().find("acme: autoconfig.example.com asked for at a handshake") !=
          std::string::npos);
    CHECK(s.log().find("unhosted") == std::string::npos);
    // Pebble saw one order: for the hosted name.
    const std::string log = ca.pebble.log();
    CHECK(log.find("unhosted.test") == std::string::npos);
    CHECK(log.find("autodiscover.example.com") == std::string::npos);
    std::vector<std::string> files;
    for (const auto& e :
         std::filesystem::directory_iterator(ca.dir.path() + "/acme/certificates")) {
      files.push_back(e.path().filename().string());
    }
    std::sort(files.begin(), files.end());
    CHECK(files ==
          std::vector<std::string>{"autoconfig.example.com.key", "autoconfig.example.com.pem"});
  }
  // After a restart the name issued on demand is served from disk and kept for renewal.
  Service again(args);
  REQUIRE(again.tls_port() != 0);
  REQUIRE(e2e::wait_for_log(again, "acme: 0 issued, 0 failed, 1 current of 1 names",
                            std::chrono::seconds(30)));
  CHECK(served(again.tls_port(), "autoconfig.example.com")
            .find("subject=CN = autoconfig.example.com | issuer=CN = Pebble") == 0);
}

TEST_CASE("acme: a certificate near its end is renewed while it serves, badNonce is retried") {
  Ca ca({"example.net"}, 0, 50);
  REQUIRE_MESSAGE(ca.ready(), ca.log());
  // Half of all good nonces are answered with badNonce (RFC 8555 §6.5).
  std::filesystem::create_directories(ca.dir.path() + "/acme/certificates");
  const std::string old_pem = ca.dir.path() + "/acme/certificates/autodiscover.example.net.pem";
  write_short_lived("autodiscover.example.net", old_pem,
                    ca.dir.path() + "/acme/certificates/autodiscover.example.net.key");
  // Two new names first: the renewal comes after two orders, so the old certificate serves
  // for a while.
  const std::string config = write_acme_config(
      ca.dir.path(), ca.fallback,
      pebble_acme(ca.pebble) + "names=\"a.example.net b.example.net autodiscover.example.net\"");
  Service s({"--config", config, "--listen", "127.0.0.1:" + std::to_string(ca.http_port),
             "--tls-listen", "127.0.0.1:0"});
  REQUIRE(s.tls_port() != 0);
  CHECK(served(s.tls_port(), "autodiscover.example.net")
            .find("subject=CN = autodiscover.example.net | issuer=CN = autodiscover.example.net") ==
        0);
  CHECK(s.log().find("certificate " + old_pem + ": autodiscover.example.net; valid until") !=
        std::string::npos);
  const std::string metrics = wait_for_metric(s, "mailconfd_acme_orders_total{result=\"issued\"}",
                                              3, std::chrono::seconds(120));
  INFO(s.log());
  INFO(ca.pebble.log());
  CHECK(metric(metrics, "mailconfd_acme_orders_total{result=\"issued\"}") == 3);
  CHECK(metric(metrics, "mailconfd_acme_orders_total{result=\"failed\"}") == 0);
  CHECK(s.log().find("acme: renewed the certificate for autodiscover.example.net") !=
        std::string::npos);
  CHECK(s.log().find("acme: issued a certificate for a.example.net") != std::string::npos);
  REQUIRE(e2e::wait_for_log(s, "acme: serving " + old_pem, std::chrono::seconds(10)));
  const std::string got = served(s.tls_port(), "autodiscover.example.net");
  CHECK_MESSAGE(
      got.find("subject=CN = autodiscover.example.net | issuer=CN = Pebble Intermediate CA") == 0,
      got);
  // Pebble did reject nonces (it does not log them), and the client retried each time.
  CHECK(metric(metrics, "mailconfd_acme_bad_nonces_total") > 0);
  CHECK(s.get("/mail/config-v1.1.xml?emailaddress=alice%40example.com").body ==
        e2e::golden("autoconfig/example-alice.xml"));
}

namespace {

std::size_t occurrences(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("acme: 429 with Retry-After (seconds, then an HTTP-date) holds every order until then") {
  Ca ca({"example.net"});
  REQUIRE_MESSAGE(ca.ready(), ca.log());
  // The first newOrder: 429, Retry-After: 3; the newNonce asked for next: 429 with an
  // HTTP-date 3 seconds ahead; then Pebble answers everything.
  Proxy proxy(ca.dir.path(), ca.pebble,
              R"({"reject": [{"endpoint": "newOrder", "retry_after": "3"},
                              {"endpoint": "newNonce", "retry_after": "date+3"}]})");
  REQUIRE(proxy.ready());
  const std::string config =
      write_acme_config(ca.dir.path(), ca.fallback,
                        "ca=\"" + proxy.directory() + "\" ca-certificate=\"" + ca.pebble.ca_file() +
                            "\" storage=\"acme\" names=\"autodiscover.example.net\"");
  Service s({"--config", config, "--listen", "127.0.0.1:" + std::to_string(ca.http_port),
             "--tls-listen", "127.0.0.1:0"});
  REQUIRE(s.tls_port() != 0);
  // Requests are answered throughout, while the CA holds the order and after.
  int answered = 0, other = 0;
  std::string metrics;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < until &&
         metric(metrics, "mailconfd_acme_orders_total{result=\"issued\"}") == 0) {
    const auto r = s.get("/mail/config-v1.1.xml?emailaddress=alice%40example.com");
    (r.status == 200 && r.body == e2e::golden("autoconfig/example-alice.xml") ? answered : other)++;
    metrics = s.get("/metrics").body;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  INFO(s.log());
  INFO(ca.pebble.log());
  CHECK(other == 0);
  CHECK(answered >= 30);  // the two holds take 6 seconds at least
  CHECK(metric(metrics, "mailconfd_acme_orders_total{result=\"issued\"}") == 1);
  CHECK(metric(metrics, "mailconfd_acme_orders_total{result=\"rate_limited\"}") == 2);
  CHECK(metric(metrics, "mailconfd_acme_orders_total{result=\"failed\"}") == 0);
  // What the CA saw: each retry not before the Retry-After allowed, and soon after.
  const auto seen = proxy.seen({"newOrder", "newNonce"});
  REQUIRE(seen.size() == 5);
  const std::vector<std::pair<std::string, int>> expected{{"newNonce", 200},
                                                          {"newOrder", 429},
                                                          {"newNonce", 429},
                                                          {"newNonce", 200},
                                                          {"newOrder", 201}};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CHECK(seen[i].endpoint == expected[i].first);
    CHECK(seen[i].status == expected[i].second);
  }
  CHECK(seen[1].not_before == doctest::Approx(seen[1].arrived + 3).epsilon(1e-9));
  CHECK(seen[2].arrived >= seen[1].not_before);
  CHECK(seen[2].arrived < seen[1].not_before + 3);
  CHECK(seen[2].not_before == std::floor(seen[2].not_before));  // a whole second: an HTTP-date
  CHECK(seen[2].not_before > seen[2].arrived + 2);
  CHECK(seen[3].arrived >= seen[2].not_before);
  CHECK(seen[3].arrived < seen[2].not_before + 3);
  // The log says so once for each.
  const std::string log = s.log();
  CHECK(occurrences(log,
                    "acme: newOrder autodiscover.example.net: HTTP 429 "
                    "urn:ietf:params:acme:error:rateLimited: too many requests (acme_proxy.py); "
                    "no orders for 3s (Retry-After)") == 1);
  CHECK(occurrences(log,
                    "acme: newOrder autodiscover.example.net (newNonce): HTTP 429; no orders "
                    "for ") == 1);
  CHECK(occurrences(log, "(Retry-After)") == 2);
  // Each walk the CA stopped says so: the name neither failed nor is current.
  CHECK(occurrences(log, "acme: 0 issued, 0 failed, 0 current of 1 names, 1 rate-limited\n") == 2);
  CHECK(occurrences(log, "acme: issued a certificate for autodiscover.example.net") == 1);
  REQUIRE(e2e::wait_for_log(s, "acme/certificates/autodiscover.example.net.pem",
                            std::chrono::seconds(10)));
  const std::string got = served(s.tls_port(), "autodiscover.example.net");
  CHECK_MESSAGE(got.find("subject=CN = autodiscover.example.net | issuer=CN = Pebble") == 0, got);
}

namespace {

std::string base64url(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

std::string from_hex(std::string hex) {
  std::erase(hex, ':');
  if (hex.size() % 2) hex.insert(0, "0");
  std::string out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

// RFC 9773's certID of the certificate in pem, from what `openssl x509` prints.
std::string cert_id(const std::string& pem) {
  const auto r = e2e::run_command(
      {"openssl", "x509", "-in", pem, "-noout", "-serial", "-ext", "authorityKeyIdentifier"});
  std::istringstream in(r.out);
  std::string serial, key_id;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("serial=", 0) == 0) serial = line.substr(7);
    if (line.rfind("    ", 0) == 0) key_id = line.substr(line.find_first_not_of(' '));
  }
  if (key_id.rfind("keyid:", 0) == 0) key_id = key_id.substr(6);
  std::string serial_bytes = from_hex(serial);
  if (!serial_bytes.empty() && (static_cast<unsigned char>(serial_bytes[0]) & 0x80)) {
    serial_bytes.insert(0, 1, '\0');  // DER: a positive INTEGER
  }
  return base64url(from_hex(key_id)) + "." + base64url(serial_bytes);
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  const std::time_t time = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&time, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string renewal_rules(std::chrono::system_clock::time_point start,
                          std::chrono::system_clock::time_point end, int retry_after) {
  return R"({"renewal_info": {"start": ")" + rfc3339(start) + R"(", "end": ")" + rfc3339(end) +
         R"(", "retry_after": )" + std::to_string(retry_after) + "}}";
}

}  // namespace

TEST_CASE("acme: ARI (RFC 9773): the CA's suggested window decides renewal, with replaces") {
  using namespace std::chrono;
  Ca ca({"example.net"});
  REQUIRE_MESSAGE(ca.ready(), ca.log());
  // Pebble 2.4 has no renewalInfo: the proxy adds it to the directory and answers the
  // window this test sets. A window a month ahead first.
  const auto now = system_clock::now();
  Proxy proxy(ca.dir.path(), ca.pebble,
              renewal_rules(now + hours(24 * 30), now + hours(24 * 31), 7200));
  REQUIRE(proxy.ready());
  const std::string config =
      write_acme_config(ca.dir.path(), ca.fallback,
                        "ca=\"" + proxy.directory() + "\" ca-certificate=\"" + ca.pebble.ca_file() +
                            "\" storage=\"acme\" names=\"autodiscover.example.net\"");
  const std::vector<std::string> args{"--config",     config,
                                      "--listen",     "127.0.0.1:" + std::to_string(ca.http_port),
                                      "--tls-listen", "127.0.0.1:0"};
  const std::string pem = ca.dir.path() + "/acme/certificates/autodiscover.example.net.pem";
  {
    Service s(args);
    REQUIRE(s.tls_port() != 0);
    REQUIRE_MESSAGE(
        e2e::wait_for_log(s, "acme: 1 issued, 0 failed, 0 current of 1 names", seconds(90)),
        s.log());
    CHECK(s.log().find("acme: issued a certificate for autodiscover.example.net\n") !=
          std::string::npos);
  }
  const std::string first = cert_id(pem);
  REQUIRE(first.size() > 20);
  // A restart: the certificate is far from two thirds of its life, and the window is a month
  // ahead: asked about, not renewed; asked again after the CA's Retry-After.
  {
    Service s(args);
    REQUIRE(s.tls_port() != 0);
    REQUIRE_MESSAGE(
        e2e::wait_for_log(s, "acme: 0 issued, 0 failed, 1 current of 1 names", seconds(30)),
        s.log());
    const std::string log = s.log();
    INFO(log);
    const std::string said = "acme: renewal info for autodiscover.example.net: window " +
                             rfc3339(now + hours(24 * 30)) + " to " +
                             rfc3339(now + hours(24 * 31)) + "; renewing at ";
    const auto at = log.find(said);
    REQUIRE(at != std::string::npos);
    const auto renew_at =
        e2e::run_command({"date", "-u", "-d", log.substr(at + said.size(), 20), "+%s"});
    CHECK(std::stoll(renew_at.out) >= system_clock::to_time_t(now + hours(24 * 30)) - 1);
    CHECK(std::stoll(renew_at.out) <= system_clock::to_time_t(now + hours(24 * 31)));
    CHECK(log.find(", asking again in 7200s\n", at) != std::string::npos);
  }
  auto seen = proxy.seen({"renewalInfo", "newOrder"});
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].endpoint == "newOrder");
  CHECK(seen[0].replaces == "-");
  CHECK(seen[1].endpoint == "renewalInfo");
  CHECK(seen[1].replaces == first);  // the certID it asked about
  // The CA moves the window into the past (as after a revocation): renewed at once, two
  // thirds of the lifetime notwithstanding, and the new order names the certificate it
  // replaces. A Retry-After under a minute counts as a minute.
  proxy.set_rules(renewal_rules(now - hours(2), now - hours(1), 5));
  {
    Service s(args);
    REQUIRE(s.tls_port() != 0);
    REQUIRE_MESSAGE(
        e2e::wait_for_log(s, "acme: 1 issued, 0 failed, 0 current of 1 names", seconds(90)),
        s.log());
    const std::string log = s.log();
    INFO(log);
    CHECK(log.find(", asking again in 60s\n") != std::string::npos);
    CHECK(log.find("acme: renewed the certificate for autodiscover.example.net (replaces " + first +
                   ")\n") != std::string::npos);
    CHECK(metric(s.get("/metrics").body, "mailconfd_acme_orders_total{result=\"issued\"}") == 1);
    REQUIRE(e2e::wait_for_log(s, "acme: serving " + pem, seconds(10)));
    const std::string got = served(s.tls_port(), "autodiscover.example.net");
    CHECK_MESSAGE(got.find("subject=CN = autodiscover.example.net | issuer=CN = Pebble") == 0, got);
  }
  seen = proxy.seen({"renewalInfo", "newOrder"});
  REQUIRE(seen.size() == 4);
  CHECK(seen[2].endpoint == "renewalInfo");
  CHECK(seen[2].replaces == first);
  CHECK(seen[3].endpoint == "newOrder");
  CHECK(seen[3].status == 201);
  CHECK(seen[3].replaces == first);
  CHECK(cert_id(pem) != first);  // a new certificate
}

TEST_CASE(
    "acme: a CA's 5xx holds every order 5 minutes, a bare 429 an hour, and a renewalInfo error "
    "falls back to the lifetime") {
  using namespace std::chrono;
  Ca ca({"example.net"});
  REQUIRE_MESSAGE(ca.ready(), ca.log());
  // The first newOrder: 500 with a serverInternal problem and no Retry-After.
  Proxy proxy(ca.dir.path(), ca.pebble, R"({"reject": [{"endpoint": "newOrder", "status": 500}]})");
  REQUIRE(proxy.ready());
  const std::string config =
      write_acme_config(ca.dir.path(), ca.fallback,
                        "ca=\"" + proxy.directory() + "\" ca-certificate=\"" + ca.pebble.ca_file() +
                            "\" storage=\"acme\" names=\"autodiscover.example.net\"");
  const std::vector<std::string> args{"--config",     config,
                                      "--listen",     "127.0.0.1:" + std::to_string(ca.http_port),
                                      "--tls-listen", "127.0.0.1:0"};
  const std::string failed = "mailconfd_acme_orders_total{result=\"failed\"}";
  const std::string limited = "mailconfd_acme_orders_total{result=\"rate_limited\"}";
  const std::string issued = "mailconfd_acme_orders_total{result=\"issued\"}";
  {
    Service s(args);
    REQUIRE(s.tls_port() != 0);
    const std::string metrics = wait_for_metric(s, failed, 1, seconds(60));
    INFO(s.log());
    CHECK(metric(metrics, failed) == 1);
    CHECK(metric(metrics, limited) == 0);
    CHECK(metric(metrics, issued) == 0);
    REQUIRE(e2e::wait_for_log(s, "(the CA failed)", seconds(10)));
    CHECK(occurrences(s.log(),
                      "acme: newOrder autodiscover.example.net: HTTP 500 "
                      "urn:ietf:params:acme:error:serverInternal: the CA failed (acme_proxy.py); "
                      "no orders for 300s (the CA failed)\n") == 1);
    // Held: no other order meanwhile, and answers as before.
    std::this_thread::sleep_for(seconds(3));
    const auto r = s.get("/mail/config-v1.1.xml?emailaddress=alice%40example.com");
    CHECK(r.status == 200);
    CHECK(r.body == e2e::golden("autoconfig/example-alice.xml"));
    CHECK(served(s.tls_port(), "autodiscover.example.net").find("subject=CN = default.test") == 0);
    const auto seen = proxy.seen({"newOrder"});
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].status == 500);
  }
  // Restarted (a hold lives in the process): the next newOrder gets 429 with a rateLimited
  // problem and no Retry-After: every order held for an hour.
  proxy.set_rules(
      R"({"reject": [{"endpoint": "newOrder", "status": 500}, {"endpoint": "newOrder"}]})");
  {
    Service s(args);
    REQUIRE(s.tls_port() != 0);
    const std::string metrics = wait_for_metric(s, limited, 1, seconds(60));
    INFO(s.log());
    CHECK(metric(metrics, limited) == 1);
    CHECK(metric(metrics, failed) == 0);
    REQUIRE(e2e::wait_for_log(s, "(rate limited, no Retry-After)", seconds(10)));
    CHECK(occurrences(s.log(),
                      "acme: newOrder autodiscover.example.net: HTTP 429 "
                      "urn:ietf:params:acme:error:rateLimited: too many requests (acme_proxy.py); "
                      "no orders for 3600s (rate limited, no Retry-After)\n") == 1);
    std::this_thread::sleep_for(seconds(3));
    CHECK(s.get("/mail/config-v1.1.xml?emailaddress=alice%40example.com").status == 200);
    const auto seen = proxy.seen({"newOrder"});
    REQUIRE(seen.size() == 2);
    CHECK(seen[1].status == 429);
    CHECK(seen[1].not_before == 0);  // no Retry-After sent
  }
  // Issued, then renewalInfo answers 500: the lifetime rule decides (the certificate is far
  // from two thirds of its life): nothing renewed, and the log says why.
  const std::string pem = ca.dir.path() + "/acme/certificates/autodiscover.example.net.pem";
  {
    Service s(args);
    REQUIRE(s.tls_port() != 0);
    REQUIRE_MESSAGE(
        e2e::wait_for_log(s, "acme: 1 issued, 0 failed, 0 current of 1 names", seconds(90)),
        s.log());
  }
  proxy.set_rules(R"({"renewal_info": {"status": 500}})");
  {
    Service s(args);
    REQUIRE(s.tls_port() != 0);
    REQUIRE_MESSAGE(
        e2e::wait_for_log(s, "acme: 0 issued, 0 failed, 1 current of 1 names", seconds(30)),
        s.log());
    const std::string directory = proxy.directory();
    CHECK(occurrences(s.log(), "acme: renewal info for autodiscover.example.net: renewalInfo " +
                                   directory.substr(0, directory.size() - 4) + "/renewal-info/" +
                                   cert_id(pem) +
                                   ": HTTP 500 urn:ietf:params:acme:error:serverInternal: the CA "
                                   "failed (acme_proxy.py); renewing two thirds into its "
                                   "lifetime\n") == 1);
    CHECK(metric(s.get("/metrics").body, issued) == 0);
  }
  const auto seen = proxy.seen({"newOrder", "renewalInfo"});
  REQUIRE(seen.size() == 4);
  CHECK(seen[2].endpoint == "newOrder");
  CHECK(seen[2].status == 201);
  CHECK(seen[3].endpoint == "renewalInfo");
  CHECK(seen[3].status == 500);
}

namespace {

// A TLS handshake with SNI server_name (the certificate not verified); whether it completed.
bool handshake(std::uint16_t port, const std::string& server_name) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, server_name.c_str());
    ok = SSL_connect(ssl) == 1;
    if (ok) SSL_shutdown(ssl);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
  }
  ::close(fd);
  return ok;
}

}  // namespace

TEST_CASE("acme: on demand, a name is queued once and the queue holds 1,000 (known, full)") {
  const std::string dir = e2e::temp_dir();
  const e2e::Certificate fallback = e2e::make_certificate(dir, "default", "default.test");
  // 1,001 hosted domains besides the example's; the account key cannot be written, so the
  // issuer never takes a name from the queue and what the handshakes queue stays there.
  std::ofstream domains(dir + "/domains.txt");
  for (int i = 0; i < 1001; ++i) domains << "c" << i << ".example\n";
  domains.close();
  std::string text =
      e2e::read_file(std::string(MAILCONFD_SOURCE_DIR) + "/deploy/example/mailconfd.xml");
  text.insert(text.find("  </server>"), "    <tls certificate=\"" + fallback.certificate +
                                            "\" key=\"" + fallback.key + "\"/>\n");
  const std::string domain = "<domain>example.org</domain>\n";
  text.insert(text.find(domain) + domain.size(), "    <domains file=\"domains.txt\"/>\n");
  text.insert(text.rfind("</mailconfd>"),
              "  <acme ca=\"https://127.0.0.1:" + std::to_string(e2e::free_tcp_port()) +
                  "/dir\" storage=\"/proc/mailconfd-no-such-dir/acme\" on-demand=\"yes\" "
                  "hosted-names=\"autoconfig\"/>\n");
  const std::string config = dir + "/mailconfd.xml";
  std::ofstream(config) << text;
  Service s({"--config", config, "--tls-listen", "127.0.0.1:0"});
  REQUIRE(s.tls_port() != 0);
  INFO(s.log());
  int done = 0;
  for (int i = 0; i < 1001; ++i) {
    done += handshake(s.tls_port(), "autoconfig.c" + std::to_string(i) + ".example");
  }
  done += handshake(s.tls_port(), "autoconfig.c0.example");     // queued already
  done += handshake(s.tls_port(), "autoconfig.c1000.example");  // dropped, still full
  done += handshake(s.tls_port(), "www.c1.example");            // never a name to order
  CHECK(done == 1004);  // every handshake completed, with the default certificate
  const std::string metrics = s.get("/metrics").body;
  CHECK(metric(metrics, "mailconfd_acme_on_demand_total{result=\"queued\"}") == 1000);
  CHECK(metric(metrics, "mailconfd_acme_on_demand_total{result=\"known\"}") == 1);
  CHECK(metric(metrics, "mailconfd_acme_on_demand_total{result=\"full\"}") == 2);
  CHECK(metric(metrics, "mailconfd_acme_on_demand_total{result=\"refused\"}") == 1);
  CHECK(metric(metrics, "mailconfd_acme_orders_total{result=\"failed\"}") == 0);
  CHECK(served(s.tls_port(), "autoconfig.c5.example").find("subject=CN = default.test") == 0);
  CHECK(s.get("/mail/config-v1.1.xml?emailaddress=alice%40example.com").status == 200);
}

TEST_CASE("check and start warn when no certificate covers a provider's Autodiscover host") {
  const std::string dir = e2e::temp_dir();
  const e2e::Certificate fallback = e2e::make_certificate(dir, "default", "default.test");
  const std::string warning =
      "warning: no certificate covers autodiscover.example.net, the Autodiscover host of "
      "provider example.net (Outlook's HTTPS requests to it fail; the default certificate "
      "answers)\n";
  std::string text =
      e2e::read_file(std::string(MAILCONFD_SOURCE_DIR) + "/deploy/example/mailconfd.xml");
  text.insert(text.find("  </server>"), "    <tls certificate=\"" + fallback.certificate +
                                            "\" key=\"" + fallback.key + "\"/>\n");
  const std::string config = dir + "/mailconfd.xml";
  std::ofstream(config) << text;
  auto r = e2e::run_mailconfd({"check", config});
  CHECK(r.exit_code == 0);  // a warning, not a refusal
  CHECK(r.err == warning);
  Service s({"--config", config, "--tls-listen", "127.0.0.1:0"});
  REQUIRE(s.tls_port() != 0);
  // The log is written by its own thread: the line can follow the listener's port.
  CHECK(e2e::wait_for_log(s, warning.substr(9, warning.size() - 10), std::chrono::seconds(10)));

  // Covered by a certificate: no warning.
  const e2e::Certificate own{dir + "/own.pem", dir + "/own.key"};
  write_short_lived("autodiscover.example.net", own.certificate, own.key);
  std::string covered =
      e2e::read_file(std::string(MAILCONFD_SOURCE_DIR) + "/deploy/example/mailconfd.xml");
  covered.insert(covered.find("  </server>"),
                 "    <tls certificate=\"" + fallback.certificate + "\" key=\"" + fallback.key +
                     "\">\n      <certificate file=\"" + own.certificate + "\" key=\"" + own.key +
                     "\"/>\n    </tls>\n");
  std::ofstream(config, std::ios::trunc) << covered;
  r = e2e::run_mailconfd({"check", config});
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.err == "");
  // Listed in <acme names>: the built-in client gets it, no warning either.
  text.insert(text.rfind("</mailconfd>"),
              "  <acme ca=\"https://ca.example/dir\" storage=\"acme\" "
              "names=\"autodiscover.example.net\"/>\n");
  std::ofstream(config, std::ios::trunc) << text;
  r = e2e::run_mailconfd({"check", config});
  CHECK(r.exit_code == 0);
  CHECK(r.err == "");
}
