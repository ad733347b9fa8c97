// HTTPS on mailconfd's own TLS listener, against the real binary, with certificates made at
// test time: answers, ALPN, close_notify, slow and silent clients, aborting peers, reloads of
// the certificate and the handshake timeout.
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "service.h"
#include "tls_client.h"

using e2e::Certificate;
using e2e::Service;
using e2e::TlsClient;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kAlice = "/mail/config-v1.1.xml?emailaddress=alice%40example.com";

struct TlsSetup {
  std::string dir = e2e::temp_dir();
  Certificate certificate = e2e::make_certificate(dir, "server", "first.test");
  std::string config = dir + "/mailconfd.xml";
  explicit TlsSetup(const std::string& handshake_timeout = "10s") {
    e2e::write_tls_config(config, certificate, handshake_timeout);
  }
  std::vector<std::string> args() const {
    return {"--config", config, "--tls-listen", "127.0.0.1:0"};
  }
};

// The first bytes of a TLS record announcing a 512-byte ClientHello, so the server waits for more.
const std::string kHelloStart("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);

bool alive(const Service& s) { return ::kill(s.pid(), 0) == 0; }

}  // namespace

TEST_CASE("https: the golden autoconfig over TLS 1.2+, ALPN http/1.1, keep-alive, close_notify") {
  TlsSetup setup;
  Service s(setup.args());
  REQUIRE(s.ready());
  REQUIRE(s.tls_port() != 0);
  CHECK(s.tls_port() != s.port());

  TlsClient client(s.tls_port(), setup.certificate.certificate);
  REQUIRE_MESSAGE(client.ok(), client.error());
  CHECK(client.subject_cn() == "first.test");
  CHECK(client.alpn() == "http/1.1");
  CHECK((client.version() == "TLSv1.3" || client.version() == "TLSv1.2"));
  // Two requests on one connection, then one asking to close.
  for (int i = 0; i < 2; ++i) {
    REQUIRE(client.send("GET " + kAlice + " HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    auto r = client.read_response();
    CHECK(r.status == 200);
    CHECK(r.header("Content-Type") == "application/xml; charset=utf-8");
    CHECK(r.body == e2e::golden("autoconfig/example-alice.xml"));
  }
  // /metrics (over plain HTTP) counts this connection under https.
  const std::string metrics = s.get("/metrics").body;
  CHECK(metrics.find("\nmailconfd_open_connections{listener=\"https\"} 1\n") != std::string::npos);
  REQUIRE(
      client.send("GET " + kAlice + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
  auto last = client.read_response();
  CHECK(last.status == 200);
  CHECK(last.header("Connection") == "close");
  CHECK(client.read_close_notify());

  // Plain HTTP keeps answering next to it.
  auto plain = s.get(kAlice);
  CHECK(plain.status == 200);
  CHECK(plain.body == e2e::golden("autoconfig/example-alice.xml"));

  // The log says which requests came over HTTPS, and the start-up line names both listeners.
  std::string log;
  std::size_t https_lines = 0;
  std::size_t http_lines = 0;
  for (int attempt = 0; attempt < 60 && (https_lines != 3 || http_lines != 1); ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    log = s.log();
    https_lines = http_lines = 0;
    for (std::size_t at = log.find(" info GET /mail/config-v1.1.xml 200 "); at != std::string::npos;
         at = log.find(" info GET /mail/config-v1.1.xml 200 ", at + 1)) {
      const std::string line = log.substr(at, log.find('\n', at) - at);
      if (line.ends_with(" https")) ++https_lines;
      if (line.ends_with(" http")) ++http_lines;
    }
  }
  CHECK(https_lines == 3);
  CHECK(http_lines == 1);
  CHECK(log.find("on http://127.0.0.1:" + std::to_string(s.port()) + " and https://127.0.0.1:" +
                 std::to_string(s.tls_port()) + "\n") != std::string::npos);
}

TEST_CASE("https: framing errors and pipelining behave as on plain HTTP") {
  TlsSetup setup;
  Service s(setup.args());
  REQUIRE(s.tls_port() != 0);
  TlsClient client(s.tls_port(), setup.certificate.certificate);
  REQUIRE(client.ok());
  const std::string one = "GET " + kAlice + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
  REQUIRE(client.send(one + one + "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"));
  CHECK(client.read_response().status == 200);
  CHECK(client.read_response().status == 200);
  auto bad = client.read_response();
  CHECK(bad.status == 400);
  CHECK(bad.body == "400 Bad Request\n");
  CHECK(client.read_close_notify());
}

TEST_CASE("https: silent and trickling clients do not delay other clients' handshakes") {
  TlsSetup setup;  // handshake timeout 10 s: the silent ones stay open during the test
  Service s(setup.args());
  REQUIRE(s.tls_port() != 0);

  std::vector<std::unique_ptr<e2e::Connection>> silent;
  for (int i = 0; i < 50; ++i) silent.push_back(std::make_unique<e2e::Connection>(s.tls_port()));
  std::vector<std::unique_ptr<e2e::Connection>> trickling;
  for (int i = 0; i < 5; ++i) {
    trickling.push_back(std::make_unique<e2e::Connection>(s.tls_port()));
    trickling.back()->send(kHelloStart.substr(0, 3));
  }
  std::atomic<bool> done{false};
  std::thread trickler([&] {
    // One more byte of a ClientHello per connection every 100 ms, never enough to finish.
    for (int round = 0; round < 200 && !done.load(); ++round) {
      for (auto& c : trickling) c->send(std::string(1, static_cast<char>(round)));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  std::chrono::milliseconds slowest{0};
  int answered = 0;
  const auto started = Clock::now();
  for (int i = 0; i < 20; ++i) {
    const auto t0 = Clock::now();
    auto r = e2e::https_get(s.tls_port(), setup.certificate.certificate, kAlice);
    slowest =
        std::max(slowest, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0));
    answered += r.status == 200 ? 1 : 0;
  }
  const auto total = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  done.store(true);
  trickler.join();
  MESSAGE("20 HTTPS requests next to 55 stalled handshakes: total "
          << total.count() << " ms, slowest " << slowest.count() << " ms");
  CHECK(answered == 20);
  // Pistache's own TLS stalls every new connection for ~10 s behind one silent client.
  CHECK(slowest < std::chrono::milliseconds(1000));
  CHECK(total < std::chrono::milliseconds(8000));
  // The stalled clients were accepted and are still waiting, not refused.
  for (auto& c : silent) CHECK_FALSE(c->wait_closed(std::chrono::milliseconds(1)));
}

TEST_CASE("https: aborting peers (half handshakes, resets mid-answer) never kill the process") {
  TlsSetup setup;
  Service s(setup.args());
  REQUIRE(s.tls_port() != 0);
  for (int i = 0; i < 100; ++i) {
    e2e::Connection c(s.tls_port());
    c.send(kHelloStart);
    linger l{1, 0};
    ::setsockopt(c.fd(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }  // closed with RST
  const std::string request = "GET " + kAlice + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
  std::string many;
  for (int i = 0; i < 50; ++i) many += request;  // ~70 KB of answers to write into a reset
  for (int i = 0; i < 60; ++i) {
    TlsClient client(s.tls_port(), setup.certificate.certificate);
    REQUIRE(client.ok());
    client.send(many);
    client.reset();
  }
  for (int i = 0; i < 20; ++i) {
    TlsClient client(s.tls_port(), setup.certificate.certificate);
    REQUIRE(client.ok());
  }  // closed without close_notify
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(alive(s));
  auto r = e2e::https_get(s.tls_port(), setup.certificate.certificate, kAlice);
  CHECK(r.status == 200);
  CHECK(r.body == e2e::golden("autoconfig/example-alice.xml"));
  s.signal(SIGTERM);
  CHECK(s.wait_exit(std::chrono::seconds(10)) == 0);
}

TEST_CASE("https: SIGHUP loads a new certificate, and a broken one keeps the old and says why") {
  TlsSetup setup;
  Service s(setup.args());
  REQUIRE(s.tls_port() != 0);
  // The client trusts the old and the new certificate.
  const Certificate next = e2e::make_certificate(setup.dir, "next", "second.test");
  const std::string bundle = setup.dir + "/bundle.pem";
  std::ofstream(bundle) << e2e::read_file(setup.certificate.certificate)
                        << e2e::read_file(next.certificate);
  CHECK(TlsClient(s.tls_port(), bundle).subject_cn() == "first.test");

  // A connection that is open before the reload keeps working after it.
  TlsClient before(s.tls_port(), bundle);
  REQUIRE(before.ok());
  std::ofstream(setup.certificate.certificate, std::ios::trunc) << e2e::read_file(next.certificate);
  std::ofstream(setup.certificate.key, std::ios::trunc) << e2e::read_file(next.key);
  s.signal(SIGHUP);
  REQUIRE(wait_for_log(s, "reloaded", std::chrono::seconds(10)));
  CHECK(TlsClient(s.tls_port(), bundle).subject_cn() == "second.test");
  REQUIRE(before.send("GET " + kAlice + " HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  CHECK(before.read_response().status == 200);

  // A broken certificate: the reload goes on (other changes take effect) and the one loaded
  // before keeps serving; the log names the file, the line of <tls> and OpenSSL's reason.
  std::ofstream(setup.certificate.certificate, std::ios::trunc) << "not a certificate\n";
  s.signal(SIGHUP);
  REQUIRE(wait_for_log(s, "keeping the certificate loaded before", std::chrono::seconds(10)));
  const std::string log = s.log();
  CHECK(log.find("reload: " + setup.config + ":") != std::string::npos);
  CHECK(log.find("<tls>: cannot load certificate '" + setup.certificate.certificate) !=
        std::string::npos);
  CHECK(log.find("no start line") != std::string::npos);  // OpenSSL's reason
  TlsClient after(s.tls_port(), bundle);
  REQUIRE_MESSAGE(after.ok(), after.error());
  CHECK(after.subject_cn() == "second.test");
  REQUIRE(after.send("GET " + kAlice + " HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  CHECK(after.read_response().body == e2e::golden("autoconfig/example-alice.xml"));
}

TEST_CASE("https: the handshake timeout closes silent connections") {
  TlsSetup setup("500ms");
  Service s(setup.args());
  REQUIRE(s.tls_port() != 0);
  e2e::Connection silent(s.tls_port());
  e2e::Connection trickling(s.tls_port());
  const auto started = Clock::now();
  trickling.send(kHelloStart.substr(0, 4));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  trickling.send(kHelloStart.substr(4, 2));  // progress does not extend the deadline
  CHECK(silent.wait_closed(std::chrono::seconds(5)));
  CHECK(trickling.wait_closed(std::chrono::seconds(5)));
  const auto elapsed = Clock::now() - started;
  CHECK(elapsed >= std::chrono::milliseconds(400));
  CHECK(elapsed < std::chrono::milliseconds(4000));
  CHECK(e2e::https_get(s.tls_port(), setup.certificate.certificate, kAlice).status == 200);
}

TEST_CASE("https: check reports unusable certificates and keys as FILE:LINE:COLUMN") {
  const std::string dir = e2e::temp_dir();
  const Certificate a = e2e::make_certificate(dir, "a", "a.test");
  const Certificate b = e2e::make_certificate(dir, "b", "b.test");
  const std::string config = dir + "/mailconfd.xml";

  e2e::write_tls_config(config, Certificate{a.certificate, b.key});
  // Where <tls> landed in the generated file (it follows the example config's layout).
  const std::string text = e2e::read_file(config);
  const auto at = text.find("<tls ");
  REQUIRE(at != std::string::npos);
  const auto line_start = text.rfind('\n', at) + 1;
  const std::string where =
      config + ":" +
      std::to_string(
          std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n') + 1) +
      ":" + std::to_string(at - line_start + 1);
  auto mismatch = e2e::run_mailconfd({"check", "--config", config});
  CHECK(mismatch.exit_code == 2);
  CHECK(mismatch.err.find(where + ": <tls>: cannot load key '" + b.key + "': ") !=
        std::string::npos);
  CHECK(mismatch.err.find("key values mismatch") != std::string::npos);  // OpenSSL's reason

  e2e::write_tls_config(config, Certificate{dir + "/missing.crt", a.key});
  auto missing = e2e::run_mailconfd({"check", "--config", config});
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find(where + ": <tls>: cannot load certificate") != std::string::npos);

  e2e::write_tls_config(config, a);
  CHECK(e2e::run_mailconfd({"check", "--config", config}).exit_code == 0);
}

TEST_CASE("serve --tls-listen without <tls> is a usage error") {
  auto r = e2e::run_mailconfd({"serve", "--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--tls-listen needs a <tls> element") != std::string::npos);
}

TEST_CASE("https: SIGTERM lets a request in flight finish, then exits 0") {
  TlsSetup setup;
  Service s(setup.args());
  REQUIRE(s.tls_port() != 0);
  TlsClient idle(s.tls_port(), setup.certificate.certificate);
  TlsClient client(s.tls_port(), setup.certificate.certificate);
  REQUIRE(client.ok());
  REQUIRE(client.send("GET " + kAlice + " HTTP/1.1\r\nHost: localhost\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  s.signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  REQUIRE(client.send("\r\n"));
  auto r = client.read_response();
  CHECK(r.status == 200);
  CHECK(r.header("Connection") == "close");
  CHECK(r.body == e2e::golden("autoconfig/example-alice.xml"));
  CHECK(s.wait_exit(std::chrono::seconds(10)) == 0);
}
