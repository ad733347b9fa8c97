// Operations against the real binary: SIGHUP reload under load and with broken files,
// SIGTERM drain, health endpoints, /metrics (promtool), the metrics listener, sd_notify.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "service.h"

using e2e::Connection;
using e2e::kAliceGet;
using e2e::Service;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

std::string config_text(const std::string& display_name, const std::string& server = "<server/>",
                        const std::string& provider_extra = "") {
  return "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<mailconfd>\n  " + server +
         "\n  <provider id=\"example.net\">\n    <display-name>" + display_name +
         "</display-name>\n"
         "    <incoming protocol=\"imap\" host=\"imap.example.net\" port=\"993\" "
         "security=\"tls\"/>\n"
         "    <outgoing host=\"smtp.example.net\" port=\"587\" security=\"starttls\"/>\n"
         "    <domain>example.com</domain>\n" +
         provider_extra + "  </provider>\n</mailconfd>\n";
}

// Replaces the file atomically, as editors and configuration management do.
void write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
  }
  REQUIRE(std::rename(tmp.c_str(), path.c_str()) == 0);
}

std::size_t count_of(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1))
    ++n;
  return n;
}

// Waits until the service's log contains needle at least n times.
bool wait_log(const Service& s, const std::string& needle, std::size_t n = 1,
              std::chrono::milliseconds timeout = 10s) {
  const auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    if (count_of(s.log(), needle) >= n) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// The value of one sample line "NAME VALUE" in a Prometheus exposition; -1 if absent.
double sample(const std::string& text, const std::string& name) {
  const auto at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::atof(text.c_str() + at + name.size() + 2);
}

}  // namespace

TEST_CASE("SIGHUP with a good file under concurrent load: no request fails, new answer appears") {
  const std::string dir = e2e::temp_dir();
  const std::string path = dir + "/mailconfd.xml";
  write_file(path, config_text("Before Reload"));
  Service s({"--config", path});
  REQUIRE(s.ready());

  std::atomic<int> failures{0}, answered{0}, after_seen{0};
  auto client = [&](bool keep_alive) {
    std::unique_ptr<Connection> c;
    int after_here = 0;
    const auto until = Clock::now() + 20s;
    for (int i = 0; i < 3000 && after_here < 30 && Clock::now() < until; ++i) {
      if (!c || !keep_alive) c = std::make_unique<Connection>(s.port());
      if (!c->send(kAliceGet)) {
        ++failures;
        c.reset();
        continue;
      }
      const auto r = c->read_response(5s);
      if (r.status != 200 || c->closed() ||
          (r.body.find("Before Reload") == std::string::npos &&
           r.body.find("After Reload") == std::string::npos)) {
        ++failures;
        c.reset();
        continue;
      }
      ++answered;
      if (r.body.find("After Reload") != std::string::npos) {
        ++after_here;
        ++after_seen;
      } else if (after_here > 0) {
        ++failures;  // an old answer after a new one on the same client: not atomic
      }
    }
  };
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) clients.emplace_back(client, i % 2 == 0);
  while (answered.load() < 200 && failures.load() == 0) std::this_thread::sleep_for(5ms);
  write_file(path, config_text("After Reload"));
  s.signal(SIGHUP);
  CHECK(wait_log(s, "reloaded " + path));
  for (auto& t : clients) t.join();
  CHECK(failures.load() == 0);
  CHECK(after_seen.load() >= 4 * 30);
  MESSAGE("answered " << answered.load() << " requests across the reload");
  CHECK(s.get("/mail/config-v1.1.xml?emailaddress=alice%40example.com").body.find("After Reload") !=
        std::string::npos);
}

TEST_CASE("SIGHUP with each kind of broken file keeps the old answers byte-identical") {
  const std::string dir = e2e::temp_dir();
  const std::string path = dir + "/mailconfd.xml";
  write_file(path, config_text("Stays"));
  Service s({"--config", path});
  REQUIRE(s.ready());
  auto snapshot = [&] {
    Connection c(s.port());
    c.send(kAliceGet);
    c.send("GET /mail/config-v1.1.xml?emailaddress=bob%40list.example HTTP/1.1\r\nHost: x\r\n\r\n");
    auto a = c.read_response();
    auto b = c.read_response();
    return std::to_string(a.status) + a.header("Content-Type") + a.body + std::to_string(b.status) +
           b.body;
  };
  const std::string before = snapshot();
  REQUIRE(before.find("Stays") != std::string::npos);

  struct Broken {
    std::string text;
    std::string why;  // what the log must say
  } cases[] = {
      {config_text("Gone").substr(0, 120), "not well-formed XML"},
      {config_text("Gone", "<server/>", "    <outgoing host=\"smtp.example.net\" port=\"25\"/>\n"),
       "port 25 is for server-to-server relay"},
      {config_text("Gone", "<server/>", "    <domains file=\"missing-domains.txt\"/>\n"),
       "missing-domains.txt"},
  };
  std::size_t n = 0;
  for (const auto& broken : cases) {
    write_file(path, broken.text);
    s.signal(SIGHUP);
    REQUIRE(wait_log(s, "still serving the previous configuration", ++n));
    const std::string log = s.log();
    CHECK_MESSAGE(log.find(broken.why) != std::string::npos, broken.why);
    CHECK(snapshot() == before);
  }
  CHECK(s.get("/readyz").status == 200);
  const std::string metrics = s.get("/metrics").body;
  CHECK(sample(metrics, "mailconfd_config_reloads_total{result=\"failure\"}") == 3);
  CHECK(sample(metrics, "mailconfd_config_reloads_total{result=\"success\"}") == 0);
}

TEST_CASE("SIGTERM drains: requests in flight finish, idle connections close, new ones get 503") {
  Service s;
  REQUIRE(s.ready());
  Connection idle(s.port());
  idle.send(kAliceGet);
  REQUIRE(idle.read_response().status == 200);
  Connection body(s.port());  // a request whose body is still arriving
  body.send("POST /mail/config-v1.1.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345");
  Connection head(s.port());  // a request whose head is still arriving
  head.send("GET /mail/config-v1.1.xml?emailaddress=alice%40example.com HTTP/1.1\r\n");
  Connection ready(s.port());
  ready.send("GET /readyz HTTP/1.1\r\n");
  std::this_thread::sleep_for(200ms);

  const auto stopped_at = Clock::now();
  s.signal(SIGTERM);
  CHECK(idle.wait_closed(3s));  // closed at once, not at the end of the drain
  CHECK(Clock::now() - stopped_at < 3s);

  Connection late(s.port());
  late.send(kAliceGet);
  const auto refused = late.read_response(3s);
  CHECK(refused.status == 503);
  CHECK(refused.header("Connection") == "close");
  // Liveness stays 200 until the process exits, also on a connection opened during the
  // drain (a kubelet probe opens a new one each time); readiness answers 503 there.
  Connection live(s.port());
  live.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto alive = live.read_response(3s);
  CHECK(alive.status == 200);
  CHECK(alive.body == "ok\n");
  CHECK(alive.header("Connection") == "close");
  Connection probe(s.port());
  probe.send("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto not_ready = probe.read_response(3s);
  CHECK(not_ready.status == 503);
  CHECK(not_ready.body == "not ready\n");
  CHECK(not_ready.header("Connection") == "close");

  std::this_thread::sleep_for(300ms);
  CHECK(s.wait_exit(0ms) == -1);  // still draining: three requests are unfinished
  body.send("67890");
  auto r1 = body.read_response();
  CHECK(r1.status == 405);
  CHECK(r1.header("Connection") == "close");
  head.send("Host: x\r\n\r\n");
  auto r2 = head.read_response();
  CHECK(r2.status == 200);
  CHECK(r2.body.find("alice@example.com") != std::string::npos);
  CHECK(r2.header("Connection") == "close");
  ready.send("Host: x\r\n\r\n");
  auto r3 = ready.read_response();
  CHECK(r3.status == 503);
  CHECK(r3.body == "not ready\n");
  CHECK(s.wait_exit(5s) == 0);
}

TEST_CASE("SIGTERM: a request that never completes is cut at shutdown-grace, exit 0") {
  const std::string path = e2e::temp_dir() + "/mailconfd.xml";
  write_file(path, config_text("Grace", "<server shutdown-grace=\"1s\"/>"));
  Service s({"--config", path});
  REQUIRE(s.ready());
  Connection stuck(s.port());
  stuck.send("POST /mail/config-v1.1.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n1");
  std::this_thread::sleep_for(200ms);
  const auto stopped_at = Clock::now();
  s.signal(SIGTERM);
  CHECK(s.wait_exit(8s) == 0);
  const auto took = Clock::now() - stopped_at;
  CHECK(took >= 900ms);
  CHECK(took < 6s);
  CHECK(stuck.wait_closed(2s));
}

TEST_CASE("access log: one exact line per request, written while serving, none lost in a burst") {
  Service s;
  REQUIRE(s.ready());
  // After a quiet period the first line is written at once, not at the next interval.
  REQUIRE(s.get("/mail/config-v1.1.xml?emailaddress=alice%40example.com",
                {"User-Agent: Thunderbird/128.0"})
              .status == 200);
  CHECK(wait_log(s, "GET /mail/config-v1.1.xml 200 ", 1, 1s));

  // A burst on several connections, pipelined: every request gets its line while the
  // service keeps running (batched per worker, so this also counts what the batches carry).
  constexpr int kConnections = 4;
  constexpr int kPerConnection = 500;
  std::vector<std::thread> clients;
  std::atomic<int> answered{0};
  for (int c = 0; c < kConnections; ++c) {
    clients.emplace_back([&] {
      Connection conn(s.port());
      for (int batch = 0; batch < kPerConnection / 50; ++batch) {
        std::string requests;
        for (int i = 0; i < 50; ++i) requests += kAliceGet;
        conn.send(requests);
        for (int i = 0; i < 50; ++i) {
          if (conn.read_response().status == 200) ++answered;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  CHECK(answered.load() == kConnections * kPerConnection);
  CHECK(wait_log(s, "GET /mail/config-v1.1.xml 200 ", 1 + kConnections * kPerConnection, 2s));

  static const std::regex line(
      R"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z info GET )"
      R"(/mail/config-v1\.1\.xml 200 [0-9]+ [0-9]+us (thunderbird|-) http)");
  std::istringstream log(s.log());
  std::size_t access = 0;
  std::size_t matching = 0;
  for (std::string text; std::getline(log, text);) {
    if (text.find(" GET ") == std::string::npos) continue;
    ++access;
    if (std::regex_match(text, line)) ++matching;
  }
  CHECK(access == 1 + kConnections * kPerConnection);
  CHECK(matching == access);
}

TEST_CASE("a stderr nobody reads never stalls a worker, and its lines follow once read") {
  const std::string fifo = e2e::temp_dir() + "/stderr.fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);  // lets the service open it
  REQUIRE(reader >= 0);
  Service s({}, true, fifo);
  REQUIRE(s.ready());
  // About 100 bytes of log per request: 3,000 requests are several times the 64 KiB a pipe
  // holds, so the log thread blocks in write() while the workers go on answering.
  constexpr int kRequests = 3000;
  int answered = 0;
  {
    Connection c(s.port());
    for (int batch = 0; batch < kRequests / 50; ++batch) {
      std::string requests;
      for (int i = 0; i < 50; ++i) requests += kAliceGet;
      c.send(requests);
      for (int i = 0; i < 50; ++i) answered += c.read_response().status == 200 ? 1 : 0;
    }
  }
  CHECK(answered == kRequests);
  int queued = 0;
  REQUIRE(::ioctl(reader, FIONREAD, &queued) == 0);
  CHECK(queued >= 48 * 1024);  // the pipe is full: the log thread is blocked

  // Once somebody reads, every line arrives (nothing was dropped at this size).
  std::string text;
  const auto until = Clock::now() + 20s;
  while (count_of(text, "GET /mail/config-v1.1.xml 200 ") < kRequests && Clock::now() < until) {
    pollfd p{reader, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buffer[65536];
    const ssize_t n = ::read(reader, buffer, sizeof buffer);
    if (n > 0) text.append(buffer, static_cast<std::size_t>(n));
  }
  CHECK(count_of(text, "GET /mail/config-v1.1.xml 200 ") == kRequests);
  CHECK(count_of(text, "dropped") == 0);
  // Keep reading while it stops, so that its last lines cannot block the exit.
  s.signal(SIGTERM);
  const auto stop_until = Clock::now() + 10s;
  int status = -1;
  while (status < 0 && Clock::now() < stop_until) {
    char buffer[65536];
    while (::read(reader, buffer, sizeof buffer) > 0) {
    }
    status = s.wait_exit(50ms);
  }
  CHECK(status == 0);
  ::close(reader);
}

TEST_CASE("/healthz and /readyz: plain text, never cached") {
  Service s;
  auto health = s.get("/healthz");
  CHECK(health.status == 200);
  CHECK(health.body == "ok\n");
  CHECK(health.header("Content-Type") == "text/plain; charset=utf-8");
  CHECK(health.header("Cache-Control") == "no-store");
  auto ready = s.get("/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.body == "ready\n");
  CHECK(ready.header("Cache-Control") == "no-store");
  auto head = s.request("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(head.status == 200);
  CHECK(head.header("Content-Length") == "3");
  CHECK(s.request("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").status == 405);
}

TEST_CASE("/metrics counts requests by endpoint and class and passes promtool check metrics") {
  Service s;
  for (int i = 0; i < 3; ++i) s.get("/mail/config-v1.1.xml?emailaddress=alice%40example.com");
  s.get("/mail/config-v1.1.xml?emailaddress=nobody%40not-hosted.example");
  s.get("/no/such/path?x=<label-injection\"");
  s.signal(SIGHUP);  // the built-in example cannot be reloaded: a failure
  REQUIRE(wait_log(s, "cannot be reloaded"));
  auto r = s.get("/metrics");
  CHECK(r.status == 200);
  CHECK(r.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(r.header("Cache-Control") == "no-store");
  const std::string& m = r.body;
  CHECK(sample(m, "mailconfd_http_requests_total{endpoint=\"autoconfig\",code=\"2xx\"}") == 3);
  CHECK(sample(m, "mailconfd_http_requests_total{endpoint=\"autoconfig\",code=\"4xx\"}") == 1);
  CHECK(sample(m, "mailconfd_http_requests_total{endpoint=\"other\",code=\"4xx\"}") == 1);
  CHECK(sample(m, "mailconfd_http_request_duration_seconds_count{endpoint=\"autoconfig\"}") == 4);
  CHECK(sample(m,
               "mailconfd_http_request_duration_seconds_bucket{endpoint=\"autoconfig\",le=\"+"
               "Inf\"}") == 4);
  CHECK(sample(m, "mailconfd_hosted_domains") == 2);
  CHECK(sample(m, "mailconfd_config_reloads_total{result=\"failure\"}") == 1);
  CHECK(sample(m, "mailconfd_config_last_reload_success_timestamp_seconds") > 1.7e9);
  CHECK(sample(m, "mailconfd_ready") == 1);
  CHECK(m.find("mailconfd_build_info{version=\"" MAILCONFD_TEST_VERSION "\"} 1\n") !=
        std::string::npos);
  CHECK(m.find("label-injection") == std::string::npos);
  CHECK(m.find("not-hosted") == std::string::npos);

  const std::string file = e2e::temp_dir() + "/metrics.txt";
  {
    std::ofstream out(file, std::ios::binary);
    out << m;
  }
  auto check = e2e::run_command({"sh", "-c", "promtool check metrics < " + file});
  REQUIRE_MESSAGE(check.exit_code != 127, "promtool is missing: run .ci/install-deps");
  CHECK_MESSAGE(check.exit_code == 0, (check.out + check.err));
  CHECK(check.out + check.err == "");
}

TEST_CASE("/metrics: the open-connections gauge follows the connections") {
  Service s;
  const std::string http = "mailconfd_open_connections{listener=\"http\"}";
  const std::string https = "mailconfd_open_connections{listener=\"https\"}";
  // Each scrape is a connection of its own, counted while it is answered.
  auto scrape = [&](const std::string& name) { return sample(s.get("/metrics").body, name); };
  CHECK(scrape(http) == 1);
  CHECK(scrape(https) == 0);
  {
    Connection a(s.port());
    Connection b(s.port());
    for (Connection* c : {&a, &b}) {  // answered, so surely accepted
      c->send(kAliceGet);
      REQUIRE(c->read_response().status == 200);
    }
    CHECK(scrape(http) == 3);
  }
  // Closed by the clients: the server notices and counts them out.
  double open = -1;
  for (int i = 0; i < 100 && open != 1; ++i) {
    open = scrape(http);
    if (open != 1) std::this_thread::sleep_for(20ms);
  }
  CHECK(open == 1);
}

TEST_CASE("a separate metrics listener serves /metrics and health, and the main one does not") {
  const std::string path = e2e::temp_dir() + "/mailconfd.xml";
  write_file(path, config_text("Split", "<server><metrics listen=\"127.0.0.1:0\"/></server>"));
  Service s({"--config", path});
  REQUIRE(s.ready());
  REQUIRE(s.metrics_port() != 0);
  CHECK(s.metrics_port() != s.port());
  CHECK(s.get("/metrics").status == 404);
  CHECK(s.get("/healthz").status == 200);
  CHECK(s.get("/mail/config-v1.1.xml?emailaddress=alice%40example.com").status == 200);

  auto on_metrics = [&](const std::string& target) {
    Connection c(s.metrics_port());
    c.send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
    return c.read_response();
  };
  auto m = on_metrics("/metrics");
  CHECK(m.status == 200);
  CHECK(sample(m.body, "mailconfd_http_requests_total{endpoint=\"autoconfig\",code=\"2xx\"}") == 1);
  CHECK(on_metrics("/readyz").status == 200);
  CHECK(on_metrics("/mail/config-v1.1.xml?emailaddress=alice%40example.com").status == 404);
}

TEST_CASE("under systemd: READY=1 after listening, RELOADING=1/READY=1 around SIGHUP, STOPPING=1") {
  const std::string socket_path = e2e::temp_dir() + "/notify";
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket_path.c_str(), sizeof address.sun_path - 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  auto next = [fd] {
    char buffer[512];
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
  };
  ::setenv("NOTIFY_SOCKET", socket_path.c_str(), 1);
  Service s;
  ::unsetenv("NOTIFY_SOCKET");
  REQUIRE(s.ready());
  CHECK(next().starts_with("READY=1\n"));
  s.signal(SIGHUP);
  CHECK(next().starts_with("RELOADING=1\nMONOTONIC_USEC="));
  CHECK(next().starts_with("READY=1\n"));
  s.signal(SIGTERM);
  CHECK(next().starts_with("STOPPING=1\n"));
  CHECK(s.wait_exit(5s) == 0);
  ::close(fd);
}

TEST_CASE("a burst of SIGHUPs during reloads never ends the process") {
  // Each signal arriving while main is busy reloading used to be delivered to a logger
  // thread that did not block it, whose default action ends the process (exit 129).
  Service s({"--config", std::string(MAILCONFD_SOURCE_DIR) + "/deploy/example/mailconfd.xml"});
  REQUIRE(s.ready());
  for (int i = 0; i < 500; ++i) {
    s.signal(SIGHUP);
    std::this_thread::sleep_for(300us);
  }
  CHECK(s.get("/healthz").status == 200);
  CHECK(s.wait_exit(0ms) == -1);
  s.signal(SIGTERM);
  CHECK(s.wait_exit(10s) == 0);
}
