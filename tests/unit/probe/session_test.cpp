#include "probe/session.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <doctest/doctest.h>

using namespace mailconfd::probe;
using namespace std::chrono_literals;

namespace {

// A one-connection server on 127.0.0.1: sends greeting, then keeps the socket open until the
// test ends; with drip, it then sends one 'x' every 50 ms (at most 100), never a line end.
class StallingServer {
 public:
  explicit StallingServer(std::string greeting, bool drip = false) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::listen(fd_, 1);
    socklen_t length = sizeof address;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this, drip, greeting = std::move(greeting)] {
      client_ = ::accept(fd_, nullptr, nullptr);
      if (client_ < 0) return;
      ::send(client_, greeting.data(), greeting.size(), MSG_NOSIGNAL);
      for (int i = 0; drip && i < 100 && !stop_; ++i) {
        std::this_thread::sleep_for(50ms);
        if (::send(client_, "x", 1, MSG_NOSIGNAL) != 1) break;
      }
    });
  }
  ~StallingServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    if (client_ >= 0) ::close(client_);
    ::close(fd_);
  }
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  int client_ = -1;
  std::atomic<bool> stop_{false};
  std::uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace

TEST_CASE("parse_connect_to reads HOST:PORT:TO_HOST:TO_PORT") {
  auto rule = parse_connect_to("SMTP.example.net:587:127.0.0.1:2587");
  REQUIRE(rule);
  CHECK(rule->host == "smtp.example.net");
  CHECK(rule->port == 587);
  CHECK(rule->to_host == "127.0.0.1");
  CHECK(rule->to_port == 2587);
  rule = parse_connect_to("imap.example.net:993:[::1]:1993");
  REQUIRE(rule);
  CHECK(rule->to_host == "::1");
  for (auto bad : {"", "host", "host:587", "host:587:127.0.0.1", ":587:a:1", "h:0:a:1",
                   "h:587:a:70000", "h:x:a:1", "h:587::1"}) {
    CHECK_MESSAGE(!parse_connect_to(bad), bad);
  }
}

TEST_CASE("parse_timeout takes ms, s, m or bare seconds, from 100ms to 10m") {
  CHECK(parse_timeout("10s") == 10s);
  CHECK(parse_timeout("500ms") == 500ms);
  CHECK(parse_timeout("2m") == 2min);
  CHECK(parse_timeout("7") == 7s);
  for (auto bad : {"", "s", "99ms", "11m", "1h", "-1s", "1.5s"}) {
    CHECK_MESSAGE(!parse_timeout(bad), bad);
  }
}

TEST_CASE("read_line gives up after the timeout when the server stops talking") {
  StallingServer server("220 hello\r\n");
  Options options;
  options.timeout = 300ms;
  std::string error;
  auto session = Session::open("127.0.0.1", server.port(), options, error);
  REQUIRE(session);
  CHECK(session->peer() == "127.0.0.1:" + std::to_string(server.port()));
  CHECK(session->read_line() == "220 hello");
  const auto start = std::chrono::steady_clock::now();
  CHECK_FALSE(session->read_line());
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(waited >= 250ms);
  CHECK(waited < 10s);  // generous: the machine may be loaded
  CHECK(session->error() == "no answer within 300 ms");
}

TEST_CASE("read_line's timeout covers the whole line, however slowly it drips in") {
  StallingServer server("220-", true);
  Options options;
  options.timeout = 300ms;
  std::string error;
  auto session = Session::open("127.0.0.1", server.port(), options, error);
  REQUIRE(session);
  const auto start = std::chrono::steady_clock::now();
  CHECK_FALSE(session->read_line());
  CHECK(std::chrono::steady_clock::now() - start < 4s);  // the drip would last 5 s
  CHECK(session->error() == "no answer within 300 ms");
}

TEST_CASE("start_tls refuses when plaintext arrived after the go-ahead (STARTTLS injection)") {
  StallingServer server("220 go ahead\r\n250 injected\r\n");
  Options options;
  options.timeout = 2s;
  std::string error;
  auto session = Session::open("127.0.0.1", server.port(), options, error);
  REQUIRE(session);
  CHECK(session->read_line() == "220 go ahead");
  CHECK_FALSE(session->start_tls("smtp.example.net", error));
  CHECK(error == "the server sent plaintext after its go-ahead, before the TLS handshake");
}
