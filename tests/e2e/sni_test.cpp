// Several certificates on the HTTPS listener, chosen by SNI, against the real binary with
// `openssl s_client` as the client: hundreds from a certificate directory, a wildcard from a
// <certificate> element, the default for clients without SNI; reload keeping a broken one's
// predecessor; check's report; /metrics; session resumption with tickets across a reload.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "service.h"
#include "tls_client.h"

using e2e::CommandResult;
using e2e::Service;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kHosts = 200;

// A configuration with a default certificate (CN default.test), a wildcard *.wild.test in a
// <certificate> element and `hosts` certificates host-NNN.test in certs/.
struct SniSetup {
  std::string dir = e2e::temp_dir();
  std::string config = dir + "/mailconfd.xml";
  std::string certs = dir + "/certs";
  explicit SniSetup(int hosts) {
    std::filesystem::create_directory(certs);
    const auto run = [](const std::string& script) {
      const CommandResult r = e2e::run_command({"sh", "-ec", script});
      if (r.exit_code != 0) throw std::runtime_error("openssl failed: " + r.err);
    };
    // One key for all of them keeps the set-up fast; the server cannot tell.
    run("cd '" + dir +
        "'; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out shared.key "
        "2>/dev/null\n"
        "cert() { openssl req -x509 -key shared.key -days 2 -subj \"/CN=$1\" -addext "
        "\"subjectAltName=DNS:$2\" -out \"$3\" 2>/dev/null; }\n"
        "cert default.test localhost default.pem\n"
        "cert wild.test '*.wild.test' wild.pem\n"
        "i=0; while [ $i -lt " +
        std::to_string(hosts) +
        " ]; do n=$(printf 'host-%03d.test' $i); cert $n $n certs/$n.pem; "
        "cp shared.key certs/$n.key; i=$((i+1)); done");
    std::string text =
        e2e::read_file(std::string(MAILCONFD_SOURCE_DIR) + "/deploy/example/mailconfd.xml");
    const auto at = text.find("  </server>");
    text.insert(at,
                "    <tls listen=\"127.0.0.1:443\" certificate=\"default.pem\" key=\"shared.key\"\n"
                "         certificate-directory=\"certs\">\n"
                "      <certificate file=\"wild.pem\" key=\"shared.key\"/>\n"
                "    </tls>\n");
    std::ofstream(config, std::ios::binary | std::ios::trunc) << text;
  }
  std::vector<std::string> args() const {
    return {"--config", config, "--tls-listen", "127.0.0.1:0"};
  }
};

// The subject CN the server presents for server_name ("" = no SNI), by openssl s_client.
std::string served_cn(std::uint16_t port, const std::string& server_name) {
  std::vector<std::string> argv{"openssl", "s_client", "-connect",
                                "127.0.0.1:" + std::to_string(port)};
  if (server_name.empty()) {
    argv.push_back("-noservername");
  } else {
    argv.insert(argv.end(), {"-servername", server_name});
  }
  const CommandResult r = e2e::run_command(argv);
  const auto at = r.out.find("\nsubject=CN = ");
  if (at == std::string::npos) return "(none: " + r.err + ")";
  const auto start = at + 14;
  return r.out.substr(start, r.out.find('\n', start) - start);
}

// s_client sending one request with Connection: close, saving or reusing its session.
std::string s_client_session(std::uint16_t port, const std::string& option,
                             const std::string& file) {
  const CommandResult r = e2e::run_command(
      {"sh", "-c",
       "printf 'GET /healthz HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' | "
       "openssl s_client -connect 127.0.0.1:" +
           std::to_string(port) + " -servername host-001.test -ign_eof " + option + " " + file});
  return r.out;
}

// A certificate for old.test valid from 2020-01-01 to 2020-01-02 (openssl req in Debian 12
// cannot set past dates), self-signed with the key at key_path.
void write_expired_certificate(const std::string& key_path, const std::string& path) {
  FILE* in = std::fopen(key_path.c_str(), "r");
  REQUIRE(in);
  EVP_PKEY* key = PEM_read_PrivateKey(in, nullptr, nullptr, nullptr);
  std::fclose(in);
  REQUIRE(key);
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
  ASN1_TIME_set_string(X509_getm_notBefore(x), "20200101000000Z");
  ASN1_TIME_set_string(X509_getm_notAfter(x), "20200102000000Z");
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("old.test"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_set_pubkey(x, key);
  REQUIRE(X509_sign(x, key, EVP_sha256()) > 0);
  FILE* out = std::fopen(path.c_str(), "w");
  REQUIRE(out);
  PEM_write_X509(out, x);
  std::fclose(out);
  X509_free(x);
  EVP_PKEY_free(key);
}

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("https: SNI picks the certificate among hundreds, the wildcard, and the default") {
  SniSetup setup(kHosts);
  Service s(setup.args());
  REQUIRE(s.tls_port() != 0);
  CHECK(served_cn(s.tls_port(), "host-137.test") == "host-137.test");
  CHECK(served_cn(s.tls_port(), "host-000.test") == "host-000.test");
  CHECK(served_cn(s.tls_port(), "HOST-199.Test.") == "host-199.test");  // case, trailing dot
  CHECK(served_cn(s.tls_port(), "autoconfig.wild.test") == "wild.test");
  CHECK(served_cn(s.tls_port(), "a.b.wild.test") == "default.test");  // one label deep only
  CHECK(served_cn(s.tls_port(), "wild.test") == "default.test");      // not the bare domain
  CHECK(served_cn(s.tls_port(), "unknown.test") == "default.test");
  CHECK(served_cn(s.tls_port(), "") == "default.test");  // no SNI

  // Start-up names every certificate with its expiry.
  const std::string log = s.log();
  CHECK(count(log, "valid until ") == kHosts + 2);
  CHECK(log.find("certificate " + setup.dir + "/default.pem: localhost; valid until ") !=
        std::string::npos);
  CHECK(log.find("certificate " + setup.certs +
                 "/host-137.test.pem: host-137.test; valid "
                 "until ") != std::string::npos);
  CHECK(log.find("(default)") != std::string::npos);

  const std::string metrics = s.get("/metrics").body;
  CHECK(metrics.find("\nmailconfd_tls_certificates{state=\"valid\"} " + std::to_string(kHosts + 2) +
                     "\n") != std::string::npos);
  CHECK(metrics.find("\nmailconfd_tls_certificates{state=\"expired\"} 0\n") != std::string::npos);
  CHECK(metrics.find("\nmailconfd_tls_handshakes_total{resumed=\"no\"} 8\n") != std::string::npos);

  // check reports the same certificates; an expired one is a warning, not a problem.
  const CommandResult ok = e2e::run_mailconfd({"check", setup.config});
  CHECK(ok.exit_code == 0);
  CHECK(count(ok.out, "valid until ") == kHosts + 2);
  CHECK(ok.out.find("certificate " + setup.dir + "/wild.pem: *.wild.test; valid until ") !=
        std::string::npos);
  write_expired_certificate(setup.dir + "/shared.key", setup.certs + "/old.test.pem");
  std::filesystem::copy_file(setup.dir + "/shared.key", setup.certs + "/old.test.key");
  const CommandResult warned = e2e::run_mailconfd({"check", setup.config});
  CHECK(warned.exit_code == 0);
  CHECK(warned.err.find("warning: certificate " + setup.certs +
                        "/old.test.pem expired at 2020-01-02T00:00:00Z") != std::string::npos);
}

TEST_CASE("https: a reload keeps a broken certificate's predecessor, says which, adds new ones") {
  SniSetup setup(10);
  Service s(setup.args());
  REQUIRE(s.tls_port() != 0);
  std::ofstream(setup.certs + "/host-005.test.pem", std::ios::trunc) << "not a certificate\n";
  e2e::run_command({"cp", setup.certs + "/host-006.test.pem", setup.certs + "/copy.pem"});
  e2e::run_command({"cp", setup.dir + "/shared.key", setup.certs + "/copy.key"});
  s.signal(SIGHUP);
  REQUIRE(wait_for_log(s, "reloaded", std::chrono::seconds(20)));
  const std::string log = s.log();
  CHECK(log.find("reload: " + setup.config + ":") != std::string::npos);
  CHECK(log.find("<tls>: cannot load certificate '" + setup.certs + "/host-005.test.pem': ") !=
        std::string::npos);
  CHECK(log.find("; keeping the certificate loaded before") != std::string::npos);
  CHECK(log.find("reload: certificate " + setup.certs + "/copy.pem: host-006.test") !=
        std::string::npos);
  CHECK(served_cn(s.tls_port(), "host-005.test") == "host-005.test");
  CHECK(served_cn(s.tls_port(), "host-004.test") == "host-004.test");

  // At start, the same broken file is a problem naming the configuration's line.
  const CommandResult check = e2e::run_mailconfd({"check", setup.config});
  CHECK(check.exit_code == 2);
  CHECK(check.err.find(setup.config + ":") != std::string::npos);
  CHECK(check.err.find("<tls>: cannot load certificate '" + setup.certs + "/host-005.test.pem'") !=
        std::string::npos);
}

TEST_CASE("https: handshake failures are counted by reason") {
  SniSetup setup(10);
  Service s(setup.args());
  REQUIRE(s.tls_port() != 0);
  // A client that does not trust the certificate says so (unknown CA alert).
  const e2e::Certificate other = e2e::make_certificate(setup.dir, "other", "other.test");
  const CommandResult rejected = e2e::run_command(
      {"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(s.tls_port()),
       "-servername", "host-001.test", "-CAfile", other.certificate, "-verify_return_error"});
  CHECK(rejected.exit_code != 0);
  // Plain HTTP on the HTTPS port.
  e2e::Connection plain(s.tls_port());
  plain.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(plain.wait_closed(std::chrono::seconds(5)));
  // Connected, then gone before saying anything.
  { e2e::Connection gone(s.tls_port()); }
  const auto until = Clock::now() + std::chrono::seconds(5);
  std::string metrics;
  while (Clock::now() < until) {
    metrics = s.get("/metrics").body;
    if (metrics.find("reason=\"closed_early\"} 1\n") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(metrics.find("\nmailconfd_tls_handshake_failures_total{reason=\"certificate_rejected\"} "
                     "1\n") != std::string::npos);
  CHECK(metrics.find("\nmailconfd_tls_handshake_failures_total{reason=\"not_tls\"} 1\n") !=
        std::string::npos);
  CHECK(metrics.find("\nmailconfd_tls_handshake_failures_total{reason=\"closed_early\"} 1\n") !=
        std::string::npos);
  CHECK(metrics.find("\nmailconfd_tls_handshake_failures_total{reason=\"other\"} 0\n") !=
        std::string::npos);
}

TEST_CASE("https: a returning client resumes its session with a ticket, also after a reload") {
  SniSetup setup(10);
  Service s(setup.args());
  REQUIRE(s.tls_port() != 0);
  const std::string session = setup.dir + "/session.pem";
  const std::string first = s_client_session(s.tls_port(), "-sess_out", session);
  CHECK(first.find("New, TLSv1.3") != std::string::npos);
  CHECK(first.find("HTTP/1.1 200 OK") != std::string::npos);
  const std::string second = s_client_session(s.tls_port(), "-sess_in", session);
  CHECK(second.find("Reused, TLSv1.3") != std::string::npos);
  CHECK(second.find("HTTP/1.1 200 OK") != std::string::npos);
  // The ticket keys belong to the process, not to a snapshot's contexts.
  s.signal(SIGHUP);
  REQUIRE(wait_for_log(s, "reloaded", std::chrono::seconds(20)));
  const std::string third = s_client_session(s.tls_port(), "-sess_in", session);
  CHECK(third.find("Reused, TLSv1.3") != std::string::npos);
  const std::string metrics = s.get("/metrics").body;
  CHECK(metrics.find("\nmailconfd_tls_handshakes_total{resumed=\"yes\"} 2\n") != std::string::npos);
}
