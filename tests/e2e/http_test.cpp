// HTTP/1.1 connection behaviour of the real binary: keep-alive, pipelining, framing errors.
#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "service.h"

using e2e::Connection;
using e2e::kAliceGet;
using e2e::Service;
using namespace std::chrono_literals;

TEST_CASE("HTTP/1.1 without a Connection header keeps the connection open") {
  Service s;
  Connection c(s.port());
  for (int i = 0; i < 3; ++i) {
    c.send(kAliceGet);
    auto r = c.read_response();
    CHECK(r.status == 200);
    CHECK(r.count("Connection") == 0);
  }
  CHECK_FALSE(c.closed());
}

TEST_CASE("pipelined requests are all answered, in order") {
  Service s;
  Connection c(s.port());
  c.send(kAliceGet + "GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n" +
         "GET /mail/config-v1.1.xml?emailaddress=bob%40example.org HTTP/1.1\r\nHost: "
         "x\r\nConnection: close\r\n\r\n");
  auto a = c.read_response();
  auto b = c.read_response();
  auto d = c.read_response();
  CHECK(a.status == 200);
  CHECK(a.body.find("alice@example.com") != std::string::npos);
  CHECK(b.status == 404);
  CHECK(d.status == 200);
  CHECK(d.body.find("bob@example.org") != std::string::npos);
  CHECK(d.header("Connection") == "close");
  CHECK(c.wait_closed(3s));
}

TEST_CASE("a request split into single bytes is still answered") {
  Service s;
  Connection c(s.port());
  for (char ch : kAliceGet) {
    c.send(std::string_view(&ch, 1));
    std::this_thread::sleep_for(1ms);
  }
  CHECK(c.read_response().status == 200);
}

TEST_CASE("Connection: close and HTTP/1.0 close after the answer") {
  Service s;
  {
    Connection c(s.port());
    c.send(
        "GET /mail/config-v1.1.xml?emailaddress=alice%40example.com HTTP/1.1\r\nHost: "
        "x\r\nConnection: close\r\n\r\n");
    auto r = c.read_response();
    CHECK(r.status == 200);
    CHECK(r.header("Connection") == "close");
    CHECK(c.wait_closed(3s));
  }
  {
    Connection c(s.port());
    c.send("GET /mail/config-v1.1.xml?emailaddress=alice%40example.com HTTP/1.0\r\n\r\n");
    auto r = c.read_response();
    CHECK(r.status == 200);
    CHECK(r.header("Connection") == "close");
    CHECK(c.wait_closed(3s));
  }
}

TEST_CASE("Connection: close: the answer and the FIN arrive at once, not after a cork timer") {
  // The final answer is sent with MSG_MORE so that the FIN leaves in the same segment; the
  // FIN must follow at once (Linux would otherwise flush corked data only after 200 ms).
  Service s;
  std::vector<std::chrono::steady_clock::duration> took;
  for (int i = 0; i < 5; ++i) {
    Connection c(s.port());
    const auto start = std::chrono::steady_clock::now();
    c.send(
        "GET /mail/config-v1.1.xml?emailaddress=alice%40example.com HTTP/1.1\r\nHost: "
        "x\r\nConnection: close\r\n\r\n");
    const std::string bytes = c.read_all(3s);
    took.push_back(std::chrono::steady_clock::now() - start);
    CHECK(c.closed());
    CHECK(bytes.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(bytes.ends_with("</clientConfig>\n"));
  }
  std::sort(took.begin(), took.end());
  CHECK(took[2] < 150ms);  // the median; the cork timer is 200 ms
}

TEST_CASE("closing: unread bytes or a server-decided close linger, so no RST eats the answer") {
  // A clean close (nothing unread) closes the socket at once; with unread bytes, a close()
  // would send an RST that can destroy the answer in the client's receive buffer (Windows
  // discards it), so the server shuts down its side and lingers instead.
  Service s;
  for (const std::string& extra :
       {std::string("GET /second HTTP/1.1\r\nHost: x\r\n\r\n"), std::string(20000, 'x')}) {
    Connection c(s.port());
    c.send(
        "GET /mail/config-v1.1.xml?emailaddress=alice%40example.com HTTP/1.1\r\nHost: "
        "x\r\nConnection: close\r\n\r\n" +
        extra);
    std::this_thread::sleep_for(200ms);  // an RST, if one came, has arrived by now
    const std::string bytes = c.read_all(3s);
    CHECK(c.closed());
    CHECK(bytes.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(bytes.ends_with("</clientConfig>\n"));
    CHECK(bytes.find("HTTP/1.1", 1) == std::string::npos);  // the second request is not answered
  }
  // The server closes after a 400 on a keep-alive connection while the client, not yet
  // knowing, sends its next request. The server must not answer that with an RST (Windows
  // would discard the unread 400): the socket lingers, so the client's writes still succeed
  // (after an RST, the second send fails with EPIPE).
  Connection c(s.port());
  c.send("GET /mail/config-v1.1.xml?emailaddress=not-an-address HTTP/1.1\r\nHost: x\r\n\r\n");
  std::this_thread::sleep_for(100ms);
  CHECK(c.send(kAliceGet));
  std::this_thread::sleep_for(100ms);
  CHECK(c.send(kAliceGet));
  const std::string bytes = c.read_all(3s);
  CHECK(bytes.starts_with("HTTP/1.1 400 Bad Request\r\n"));
  CHECK(bytes.ends_with("400 Bad Request\n"));
}

TEST_CASE("framing errors are answered at once with a fixed body and the connection closed") {
  Service s;
  struct Case {
    std::string raw;
    int status;
  } cases[] = {
      {"GARBAGE\r\n\r\n", 400},
      {"GET /mail/config-v1.1.xml HTTP/1.1\r\n\r\n", 400},  // no Host
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", 400},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
       400},
      {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: br\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000\r\n\r\n", 413},
      {"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505},
      {"G\x01T / HTTP/1.1\r\n", 400},
  };
  for (const auto& c : cases) {
    Connection conn(s.port());
    conn.send(c.raw);
    const auto started = std::chrono::steady_clock::now();
    auto r = conn.read_response(3s);
    CHECK_MESSAGE(r.status == c.status, c.raw);
    CHECK(r.header("Connection") == "close");
    CHECK(r.body == std::to_string(c.status) + " " + r.status_line.substr(13) + "\n");
    CHECK(conn.wait_closed(3s));
    CHECK(std::chrono::steady_clock::now() - started < 2s);
  }
}

TEST_CASE("unknown paths get 404, unknown methods 501, and no answer is a 5xx for client input") {
  Service s;
  CHECK(s.get("/nothing-here").status == 404);  // "/" is the setup page
  CHECK(s.get("/../../etc/passwd").status == 404);
  auto r = s.request("BREW /mail/config-v1.1.xml HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(r.status == 405);
  CHECK(s.request("BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n").status == 501);
}

TEST_CASE("every answer has Date, Server, Content-Length and nosniff") {
  Service s;
  auto r = s.get("/mail/config-v1.1.xml?emailaddress=alice%40example.com");
  CHECK(r.header("Server") == "mailconfd");
  CHECK(r.header("X-Content-Type-Options") == "nosniff");
  CHECK(r.header("Date").size() == 29);
  CHECK(r.count("Content-Length") == 1);
}
