// Hostile clients against the real binary: RFC 9112 framing, every limit and timeout,
// hostile addresses on every endpoint, and slowloris. The service runs with small limits and
// short timeouts (limits_config) so that each case takes at most a few seconds.
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <memory>
#include <thread>

#include <doctest/doctest.h>

#include "service.h"

using e2e::Connection;
using e2e::kAliceGet;
using e2e::Response;
using e2e::Service;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// A configuration with one provider for example.com and the given <limits> attributes.
std::string limits_config(const std::string& limits) {
  const std::string path = e2e::temp_dir() + "/mailconfd.xml";
  std::ofstream(path) << R"(<?xml version="1.0" encoding="utf-8"?>
<mailconfd>
  <server><limits )" << limits
                      << R"(/></server>
  <provider id="example.net">
    <incoming protocol="imap" host="imap.example.net" port="993" security="tls"/>
    <outgoing host="smtp.example.net" port="587" security="starttls"/>
    <domain>example.com</domain>
  </provider>
</mailconfd>
)";
  return path;
}

// Small limits, short timeouts; keep-alive longer than the header timeout so that the two
// can be told apart.
const char* kSmallLimits =
    R"(max-request-line="256" max-header-bytes="1024" max-headers="8" max-body-bytes="1024" )"
    R"(header-timeout="1s" body-timeout="1s" keepalive-timeout="3s" max-connections="2000")";

std::unique_ptr<Service> small_service() {
  auto s =
      std::make_unique<Service>(std::vector<std::string>{"--config", limits_config(kSmallLimits)});
  REQUIRE(s->ready());
  return s;
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Nothing about the implementation in any answer.
void check_no_internals(const std::string& bytes) {
  const std::string l = lower(bytes);
  for (const char* word : {"pistache", "pugi", "std::", "exception", "what()", "spdlog", "libidn",
                           "terminate", "basic_string"}) {
    CHECK_MESSAGE(l.find(word) == std::string::npos, word);
  }
}

bool well_formed(const std::string& xml) {
  const std::string path = e2e::temp_dir() + "/doc.xml";
  std::ofstream(path, std::ios::binary) << xml;
  return e2e::run_command({"xmllint", "--noout", "--nonet", path}).exit_code == 0;
}

// Sends raw, expects one answer with status, a fixed body, Connection: close, then EOF.
void expect_refused(std::uint16_t port, const std::string& raw, int status) {
  Connection c(port);
  c.send(raw);
  const Response r = c.read_response(3s);
  CHECK_MESSAGE(r.status == status, raw);
  CHECK_MESSAGE(r.header("Connection") == "close", raw);
  CHECK(r.body.starts_with(std::to_string(status) + " "));
  check_no_internals(r.status_line + r.body);
  CHECK_MESSAGE(c.wait_closed(3s), raw);
}

std::string percent_encode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '.' || c == '-' || c == '_') {
      out += static_cast<char>(c);
    } else {
      char buffer[4];
      std::snprintf(buffer, sizeof buffer, "%%%02X", c);
      out += buffer;
    }
  }
  return out;
}

void raise_fd_limit(rlim_t wanted) {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = std::min(limit.rlim_max, std::max(limit.rlim_cur, wanted));
  setrlimit(RLIMIT_NOFILE, &limit);
}

}  // namespace

TEST_CASE("framing: ambiguous or invalid requests get 400 and the connection is closed") {
  auto s = small_service();
  const std::string head = "POST /mail/config-v1.1.xml HTTP/1.1\r\nHost: example.com\r\n";
  const char* bad[] = {
      // Content-Length: invalid, conflicting, list-valued, signed, hex, empty
      "Content-Length: abc\r\n\r\n",
      "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
      "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
      "Content-Length: 3, 3\r\n\r\nabc",
      "Content-Length: +3\r\n\r\nabc",
      "Content-Length: -1\r\n\r\n",
      "Content-Length: 0x10\r\n\r\n",
      "Content-Length: 1 2\r\n\r\n",
      "Content-Length:\r\n\r\n",
      // Content-Length with Transfer-Encoding, in both orders
      "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
      // unknown or stacked transfer codings, and a duplicate Transfer-Encoding
      "Transfer-Encoding: gzip\r\n\r\n",
      "Transfer-Encoding: gzip, chunked\r\n\r\n",
      "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "Transfer-Encoding: xchunked\r\n\r\n",
      // whitespace before the colon, obs-fold, bare CR, NUL, no colon
      "Content-Length : 0\r\n\r\n",
      "Transfer-Encoding\t: chunked\r\n\r\n",
      "X-A: b\r\n  folded\r\n\r\n",
      "X-A: b\rc\r\n\r\n",
      "NoColon\r\n\r\n",
      // bad chunk framing
      "Transfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
      "Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
  };
  for (const char* tail : bad) expect_refused(s->port(), head + tail, 400);
  // NUL needs an explicit length (a C string stops at it).
  expect_refused(s->port(), head + std::string("X-A: b\0c\r\n\r\n", 12), 400);
  // Host: missing, duplicate, empty for HTTP/1.1, hostile characters
  expect_refused(s->port(), "GET /mail/config-v1.1.xml HTTP/1.1\r\n\r\n", 400);
  expect_refused(s->port(), "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400);
  expect_refused(s->port(), "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400);
  expect_refused(s->port(), "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400);
  expect_refused(s->port(), "GET / HTTP/1.1\r\nHost: <script>\r\n\r\n", 400);
  expect_refused(s->port(), "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400);
  // request lines: no version, extra spaces, bad version
  expect_refused(s->port(), "GET /\r\nHost: a\r\n\r\n", 400);
  expect_refused(s->port(), "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
  expect_refused(s->port(), "GET / HTTP/1\r\nHost: a\r\n\r\n", 400);
  expect_refused(s->port(), "GET / http/1.1\r\nHost: a\r\n\r\n", 400);
  expect_refused(s->port(), "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400);  // TLS hello
}

TEST_CASE("framing: pipelined requests are answered in order, bodies included") {
  auto s = small_service();
  Connection c(s->port());
  c.send(kAliceGet +
         "POST /mail/config-v1.1.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
         "HEAD /mail/config-v1.1.xml?emailaddress=bob%40example.com HTTP/1.1\r\nHost: x\r\n\r\n" +
         "POST /nothing HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
         "chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n" +
         "GET /mail/config-v1.1.xml?emailaddress=carol%40example.com HTTP/1.1\r\nHost: x\r\n"
         "Connection: close\r\n\r\n");
  const Response a = c.read_response();
  const Response b = c.read_response();
  const Response h = c.read_response(5s, true);
  const Response n = c.read_response();
  const Response d = c.read_response();
  CHECK(a.status == 200);
  CHECK(a.body.find("alice@example.com") != std::string::npos);
  CHECK(b.status == 405);
  CHECK(h.status == 200);
  CHECK(h.body.empty());
  CHECK(n.status == 404);
  CHECK(d.status == 200);
  CHECK(d.body.find("carol@example.com") != std::string::npos);
  CHECK(c.wait_closed(3s));
}

TEST_CASE("framing: a request after a refused one on the same connection is never answered") {
  auto s = small_service();
  Connection c(s->port());
  // The second request would be smuggled if the first were framed by Content-Length.
  c.send(
      "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\n" +
      kAliceGet);
  const std::string all = c.read_all(3s);
  CHECK(c.closed());
  CHECK(all.starts_with("HTTP/1.1 400 "));
  CHECK(all.find("HTTP/1.1", 1) == std::string::npos);
}

TEST_CASE("limits: request line 414, header bytes and count 431, each closing the connection") {
  auto s = small_service();
  expect_refused(s->port(), "GET /" + std::string(300, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", 414);
  // Refused as soon as the line is too long, before it ends.
  expect_refused(s->port(), "GET /" + std::string(300, 'a'), 414);
  expect_refused(s->port(),
                 "GET / HTTP/1.1\r\nHost: x\r\nCookie: " + std::string(1100, 'c') + "\r\n\r\n",
                 431);
  std::string many = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 9; ++i) many += "X-" + std::to_string(i) + ": y\r\n";
  expect_refused(s->port(), many + "\r\n", 431);
  // Eight headers are still fine.
  std::string eight =
      "GET /mail/config-v1.1.xml?emailaddress=a%40example.com HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 7; ++i) eight += "X-" + std::to_string(i) + ": y\r\n";
  CHECK(s->request(eight + "\r\n").status == 200);
}

TEST_CASE("limits: a too-large declared body gets 413 before a byte of it is sent") {
  auto s = small_service();
  for (const char* length : {"1025", "1000000000", "99999999999999999999999"}) {
    Connection c(s->port());
    c.send(std::string("POST /mail/config-v1.1.xml HTTP/1.1\r\nHost: x\r\nContent-Length: ") +
           length + "\r\n\r\n");
    const Response r = c.read_response(2s);
    CHECK_MESSAGE(r.status == 413, length);
    CHECK(r.header("Connection") == "close");
    CHECK(c.wait_closed(3s));
  }
  {
    // With Expect: 100-continue the client gets 413 instead of 100 and never sends the body.
    Connection c(s->port());
    c.send(
        "POST /mail/config-v1.1.xml HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        "Content-Length: 5000\r\n\r\n");
    const Response r = c.read_response(2s);
    CHECK(r.status == 413);
    CHECK(c.wait_closed(3s));
  }
  {
    // A chunked body is cut off at the limit while it arrives.
    Connection c(s->port());
    c.send("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n" +
           std::string(1024, 'a') + "\r\n1\r\n");
    CHECK(c.read_response(2s).status == 413);
    CHECK(c.wait_closed(3s));
  }
}

TEST_CASE("timeouts: header timeout 408 from the first byte, also on a kept-alive connection") {
  auto s = small_service();
  {
    Connection c(s->port());
    const auto started = Clock::now();
    c.send("GET / HTTP/1.1\r\nHost: x\r\n");
    const Response r = c.read_response(5s);
    CHECK(r.status == 408);
    CHECK(r.header("Connection") == "close");
    CHECK(seconds_since(started) >= 0.9);
    CHECK(seconds_since(started) < 2.5);
    CHECK(c.wait_closed(3s));
  }
  {
    // Second request on a keep-alive connection: the header timeout (1 s) runs from its first
    // byte, not the keep-alive timeout (3 s).
    Connection c(s->port());
    c.send(kAliceGet);
    CHECK(c.read_response().status == 200);
    std::this_thread::sleep_for(1500ms);  // longer than the header timeout, shorter than idle
    const auto started = Clock::now();
    c.send("GET /mail/config-v1.1.xml HTTP/1.1\r\n");
    const Response r = c.read_response(5s);
    CHECK(r.status == 408);
    CHECK(seconds_since(started) >= 0.9);
    CHECK(seconds_since(started) < 2.5);
    CHECK(c.wait_closed(3s));
  }
  {
    // A slowly trickled head is cut at the header timeout however steadily bytes arrive.
    Connection c(s->port());
    const auto started = Clock::now();
    const std::string head = "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa";
    std::size_t i = 0;
    while (i < head.size() && seconds_since(started) < 4 && c.send(head.substr(i, 1))) {
      ++i;
      std::this_thread::sleep_for(100ms);
    }
    const Response r = c.read_response(3s);
    CHECK(r.status == 408);
    CHECK(seconds_since(started) < 3.0);
  }
}

TEST_CASE("timeouts: body timeout 408, idle keep-alive connections close silently") {
  auto s = small_service();
  {
    Connection c(s->port());
    c.send("POST /mail/config-v1.1.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    const auto started = Clock::now();
    const Response r = c.read_response(5s);
    CHECK(r.status == 408);
    CHECK(seconds_since(started) < 2.5);
    CHECK(c.wait_closed(3s));
  }
  {
    Connection c(s->port());
    c.send(kAliceGet);
    CHECK(c.read_response().status == 200);
    const auto idle = Clock::now();
    const std::string rest = c.read_all(8s);
    CHECK(c.closed());
    CHECK(rest.empty());  // no 408 for a connection that sent nothing
    CHECK(seconds_since(idle) >= 2.5);
    CHECK(seconds_since(idle) < 5.0);
  }
  {
    // A fresh connection that never sends a byte is closed silently after the header timeout.
    Connection c(s->port());
    const auto started = Clock::now();
    CHECK(c.read_all(5s).empty());
    CHECK(c.closed());
    CHECK(seconds_since(started) < 3.0);
  }
}

TEST_CASE("limits: connections above max-connections get 503 and are closed") {
  Service s({"--config", limits_config(R"(max-connections="4" keepalive-timeout="10s")")});
  REQUIRE(s.ready());
  std::vector<std::unique_ptr<Connection>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<Connection>(s.port()));
    held.back()->send(kAliceGet);
    CHECK(held.back()->read_response().status == 200);
  }
  {
    Connection extra(s.port());
    const Response r = extra.read_response(3s);
    CHECK(r.status == 503);
    CHECK(r.header("Connection") == "close");
    CHECK(extra.wait_closed(3s));
  }
  held.clear();  // capacity comes back once they are gone
  bool served = false;
  for (int attempt = 0; attempt < 40 && !served; ++attempt) {
    std::this_thread::sleep_for(100ms);
    served = s.get("/mail/config-v1.1.xml?emailaddress=a%40example.com").status == 200;
  }
  CHECK(served);
}

TEST_CASE("hostile addresses on every endpoint: never 5xx, never internals, 2xx well-formed") {
  auto s = small_service();
  const std::string big(10 * 1024, 'a');
  const std::string hostile[] = {
      "<script>alert(1)</script>@example.com",
      "alice@example.com<x>",
      "\"><x y=\"@example.com",
      "a&amp;b@example.com",
      "]]>@example.com",
      "alice@example.com\r\nSet-Cookie: x=y",
      "alice\r\n@example.com",
      std::string("ali\0ce@example.com", 18),
      "alice@example.com\0.evil",
      "al\xC3\x28ice@example.com",
      "\xED\xA0\x80@example.com",
      "\xC0\xAF@example.com",
      "alice\xEF\xBC\xA0"
      "example.com",  // fullwidth @
      "alice@example\xEF\xBC\x8E"
      "com",  // fullwidth full stop (IDNA maps it)
      "\xE2\x80\xAE"
      "ecila@example.com",  // right-to-left override
      "alice@\xE2\x80\xAE"
      "example.com",
      "ali\xE2\x80\x8B"
      "ce@example.com",  // zero-width space
      big + "@example.com",
      "alice@" + big + ".com",
      big,
      "{}@example.com",
      "{0}{1}%s%n%x@example.com",
      "%n%n%n%n@example.com",
      "alice@{}.com",
      "${jndi:ldap://x}@example.com",
      "../../etc/passwd@example.com",
      "alice@example.com@example.com",
      "",
      "@",
      "%",
  };
  const char* paths[] = {"/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml"};
  int documents = 0;  // 2xx bodies checked with xmllint
  for (const char* path : paths) {
    for (const std::string& value : hostile) {
      for (const bool encode : {true, false}) {
        const std::string target =
            std::string(path) + "?emailaddress=" + (encode ? percent_encode(value) : value);
        for (const char* method : {"GET", "HEAD"}) {
          Connection c(s->port());
          c.send(std::string(method) + " " + target + " HTTP/1.1\r\nHost: example.com\r\n\r\n");
          const Response r = c.read_response(3s, method[0] == 'H');
          INFO(method, " ", target.substr(0, 120));
          REQUIRE(r.complete);
          CHECK(r.status < 500);
          CHECK((r.status == 200 || r.status == 400 || r.status == 404 || r.status == 414));
          check_no_internals(r.status_line + r.body);
          for (const auto& [name, header_value] : r.headers) {
            CHECK(header_value.find_first_of("<>\r\n") == std::string::npos);
            CHECK(lower(name) != "set-cookie");
          }
          if (r.status == 200 && method[0] == 'G') {
            ++documents;
            CHECK(well_formed(r.body));
            CHECK(r.body.find("<script") == std::string::npos);
            CHECK(r.body.find("<x") == std::string::npos);
          }
        }
      }
    }
    // The Host header as the source of the domain.
    for (const char* host : {"autoconfig.example.com", "EXAMPLE.COM:99999", "a..b", "[::1]:80",
                             "xn--", "example.com.", "_", "-a-.com"}) {
      Connection c(s->port());
      c.send(std::string("GET ") + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
      const Response r = c.read_response(3s);
      INFO(host);
      CHECK((r.status == 200 || r.status == 400 || r.status == 404));
      check_no_internals(r.body);
      if (r.status == 200) CHECK(well_formed(r.body));
    }
  }
  // {} and %n addresses are valid dot-atoms, so some documents do carry hostile text.
  MESSAGE(documents, " documents checked with xmllint");
  CHECK(documents >= 8);
  // Still serving afterwards.
  CHECK(s->get("/mail/config-v1.1.xml?emailaddress=alice%40example.com").status == 200);
}

TEST_CASE("600 slowloris connections do not keep normal requests from being answered") {
  raise_fd_limit(4096);
  Service s({"--config", limits_config(R"(header-timeout="30s" max-connections="2000")")});
  REQUIRE(s.ready());
  constexpr int kSlow = 600;
  std::vector<std::unique_ptr<Connection>> slow;
  for (int i = 0; i < kSlow; ++i) {
    slow.push_back(std::make_unique<Connection>(s.port()));
    REQUIRE_FALSE(slow.back()->closed());
    slow.back()->send("GET /mail/config-v1.1.xml HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  }
  const auto started = Clock::now();
  double worst = 0;
  int answered = 0;
  for (int round = 0; round < 6; ++round) {
    // One more header byte on every slow connection, about once a second.
    for (auto& c : slow) c->send("a");
    for (int k = 0; k < 4; ++k) {
      const auto asked = Clock::now();
      const Response r = s.get("/mail/config-v1.1.xml?emailaddress=alice%40example.com");
      const double took = seconds_since(asked);
      worst = std::max(worst, took);
      if (r.status == 200) ++answered;
      std::this_thread::sleep_for(200ms);
    }
  }
  MESSAGE("normal requests: ", answered, "/24 answered; slowest ", worst, " s over ",
          seconds_since(started), " s");
  CHECK(answered == 24);
  CHECK(worst < 1.0);
  // The slow connections are all still open (they are within their header timeout).
  int open = 0;
  for (auto& c : slow) {
    c->read_all(1ms);
    open += c->closed() ? 0 : 1;
  }
  CHECK(open == kSlow);
}

namespace {

std::size_t rss_kb(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::stoul(line.substr(6));
  }
  return 0;
}

}  // namespace

TEST_CASE("a client that pipelines without reading is closed and its answers do not pile up") {
  auto s = small_service();
  const std::size_t before = rss_kb(s->pid());
  Connection c(s->port());
  const int small = 4096;
  setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  std::string burst;
  for (int i = 0; i < 50; ++i) burst += kAliceGet;
  const auto started = Clock::now();
  std::size_t sent = 0;
  bool cut = false;
  while (seconds_since(started) < 8 && !cut) {
    const ssize_t n = ::send(c.fd(), burst.data(), burst.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      std::this_thread::sleep_for(5ms);
    } else {
      cut = true;  // EPIPE or ECONNRESET: the server closed the connection
    }
  }
  MESSAGE("sent ", sent / 1024, " KiB of requests in ", seconds_since(started), " s; server RSS ",
          before, " -> ", rss_kb(s->pid()), " KiB");
  CHECK(cut);
  CHECK(rss_kb(s->pid()) < before + 16 * 1024);
  CHECK(s->get("/mail/config-v1.1.xml?emailaddress=alice%40example.com").status == 200);
}
