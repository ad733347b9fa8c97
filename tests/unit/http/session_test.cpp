// The connection engine (http/session.h) over an in-memory transport, with a clock the test
// moves: deadlines, back-pressure, the output cap, draining and the in-flight count, without
// sockets and without sleeping.
#include "http/session.h"

#include <time.h>

#include <deque>

#include <doctest/doctest.h>

#include "app.h"
#include "metrics.h"
#include "support.h"

using namespace mailconfd;
using namespace mailconfd::http;
using namespace std::chrono_literals;

namespace {

Clock::time_point fake_now = Clock::time_point(1000h);
Clock::time_point test_clock() { return fake_now; }

// The socket as the test sees it: what the client sends, what the server wrote, and how
// much the client's receive window takes before writes would block.
struct Wire {
  std::deque<std::string> incoming;  // one read returns at most one of these
  bool eof = false;                  // after incoming: the client's FIN
  std::string written;
  std::size_t room = SIZE_MAX;  // bytes a write may still take
  bool fin = false;             // finish() called
  bool secure = false;
  int handshake_rounds = 0;  // TLS: WantRead this many times, then Done
  std::size_t reads = 0;
};

class MemoryTransport final : public Transport {
 public:
  explicit MemoryTransport(Wire& wire) : wire_(wire) {}
  Io handshake() override {
    if (wire_.handshake_rounds == 0) return Io::Done;
    --wire_.handshake_rounds;
    return Io::WantRead;
  }
  std::size_t read(char* data, std::size_t size, Io& io) override {
    ++wire_.reads;
    if (wire_.incoming.empty()) {
      io = wire_.eof ? Io::Closed : Io::WantRead;
      return 0;
    }
    std::string& front = wire_.incoming.front();
    const std::size_t n = std::min(size, front.size());
    front.copy(data, n);
    front.erase(0, n);
    if (front.empty()) wire_.incoming.pop_front();
    io = Io::Done;
    return n;
  }
  std::size_t write(std::string_view data, bool, Io& io) override {
    const std::size_t n = std::min(data.size(), wire_.room);
    if (n == 0) {
      io = Io::WantWrite;
      return 0;
    }
    wire_.written.append(data.substr(0, n));
    if (wire_.room != SIZE_MAX) wire_.room -= n;
    io = Io::Done;
    return n;
  }
  void finish() override { wire_.fin = true; }
  bool secure() const override { return wire_.secure; }

 private:
  Wire& wire_;
};

std::shared_ptr<const App> small_app() {
  static const auto app = build_app(
      testing::load_text(
          testing::minimal_config(
              "", R"(<server><limits max-request-line="256" max-header-bytes="1024" )"
                  R"(max-headers="8" max-body-bytes="1024" header-timeout="1s" body-timeout="2s" )"
                  R"(keepalive-timeout="3s"/></server>)"))
          .config);
  return app;
}

const std::string kGet =
    "GET /mail/config-v1.1.xml?emailaddress=a%40customer.example HTTP/1.1\r\nHost: x\r\n\r\n";

struct Harness {
  Wire wire;
  InFlight in_flight;
  std::shared_ptr<const App> app = small_app();
  std::unique_ptr<Session> session;
  explicit Harness(bool secure = false, int handshake_rounds = 0) {
    wire.secure = secure;
    wire.handshake_rounds = handshake_rounds;
    session = std::make_unique<Session>(std::make_unique<MemoryTransport>(wire),
                                        app->config->server.limits, 5s,
                                        SessionOptions{Surface::All, &in_flight, &test_clock});
  }
  void send(std::string bytes) {
    wire.incoming.push_back(std::move(bytes));
    session->on_ready(true, false, *app, false);
  }
  // Answers written so far, as status codes, in order.
  std::vector<int> statuses() const {
    std::vector<int> out;
    for (std::size_t at = wire.written.find("HTTP/1.1 "); at != std::string::npos;
         at = wire.written.find("HTTP/1.1 ", at + 1)) {
      out.push_back(std::stoi(wire.written.substr(at + 9, 3)));
    }
    return out;
  }
};

double thread_cpu_seconds() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

}  // namespace

TEST_CASE("session: a request split into single bytes is answered once, with linear work") {
  Harness h;
  for (char c : kGet) {
    h.send(std::string(1, c));
    CHECK_FALSE(h.session->may_have_input());  // each read ended at WantRead
  }
  CHECK(h.statuses() == std::vector<int>{200});
  CHECK(h.session->state() == State::Idle);
  CHECK(h.session->work() <= 5 * kGet.size());
  CHECK_FALSE(h.session->busy());
  CHECK(h.in_flight.count() == 0);
}

TEST_CASE("session: empty lines before the request line, one byte at a time, cost no parse each") {
  Harness h;
  // RFC 9112 2.2: the parser skips up to 16 CR/LF bytes; each used to run a full parse of
  // the buffer (quadratic work, found by fuzz_session).
  for (int i = 0; i < 8; ++i) {
    h.send("\r");
    h.send("\n");
  }
  CHECK(h.session->work() <= 16);
  for (char c : kGet) h.send(std::string(1, c));
  CHECK(h.statuses() == std::vector<int>{200});
  CHECK(h.session->work() <= 5 * (16 + kGet.size()));
}

TEST_CASE("session: a 17th empty-line byte before the request line is a 400") {
  Harness h;
  for (int i = 0; i < 17; ++i) h.send("\n");
  CHECK(h.statuses() == std::vector<int>{400});
}

TEST_CASE("session: header, body and keep-alive deadlines follow the injected clock") {
  fake_now = Clock::time_point(1000h);
  {
    Harness h;  // a fresh connection that sends nothing: closed silently at header-timeout
    CHECK(h.session->busy());
    CHECK(h.in_flight.count() == 1);
    fake_now += 999ms;
    h.session->on_tick();
    CHECK_FALSE(h.session->done());
    fake_now += 1ms;
    h.session->on_tick();
    CHECK(h.session->done());
    CHECK(h.wire.written.empty());
    CHECK(h.in_flight.count() == 0);
  }
  {
    Harness h;  // half a head: 408 at header-timeout from the accept
    const auto accepted = fake_now;
    fake_now += 500ms;
    h.send("GET / HTTP/1.1\r\n");
    CHECK(h.session->state() == State::Header);
    CHECK(h.session->deadline() == accepted + 1s);
    fake_now += 500ms;
    h.session->on_tick();
    CHECK(h.statuses() == std::vector<int>{408});
    CHECK(h.session->done());
  }
  {
    Harness h;  // on a kept-alive connection, from the next request's first byte
    h.send(kGet);
    fake_now += 2s;
    h.send("GET / HTTP/1.1\r\n");
    CHECK(h.session->deadline() == fake_now + 1s);
    fake_now += 999ms;
    h.session->on_tick();
    CHECK(h.statuses() == std::vector<int>{200});
    fake_now += 1ms;
    h.session->on_tick();
    CHECK(h.statuses() == std::vector<int>{200, 408});
  }
  {
    Harness h;  // a body that stops: 408 at body-timeout
    h.send(
        "POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12");
    CHECK(h.session->state() == State::Body);
    CHECK(h.session->busy());
    fake_now += 1999ms;
    h.session->on_tick();
    CHECK_FALSE(h.session->done());
    fake_now += 1ms;
    h.session->on_tick();
    CHECK(h.statuses() == std::vector<int>{408});
  }
  {
    Harness h;  // answered, then idle: closed silently at keepalive-timeout
    h.send(kGet);
    CHECK(h.session->state() == State::Idle);
    CHECK_FALSE(h.session->busy());
    const std::size_t answered = h.wire.written.size();
    fake_now += 3s;
    h.session->on_tick();
    CHECK(h.session->done());
    CHECK(h.wire.written.size() == answered);
  }
  {
    Harness h(true, 2);  // TLS: the handshake has its own deadline
    CHECK(h.session->state() == State::Handshake);
    h.session->on_ready(true, false, *h.app, false);
    CHECK(h.session->state() == State::Handshake);
    // Waiting for the client's next flight: nothing to do until epoll says so (a Session
    // that asked to run again here made the worker spin through every handshake).
    CHECK(h.session->wants_read());
    CHECK_FALSE(h.session->may_have_input());
    fake_now += 5s;
    h.session->on_tick();
    CHECK(h.session->done());
  }
}

TEST_CASE(
    "session: pipelined requests stop being answered at the output cap until the client reads") {
  Harness h;
  h.wire.room = 0;  // the client reads nothing
  std::string burst;
  for (int i = 0; i < 2000; ++i) burst += kGet;  // ~2000 answers of ~1.4 KB: far over the cap
  for (std::size_t at = 0; at < burst.size(); at += kReadChunk) {
    h.wire.incoming.push_back(burst.substr(at, kReadChunk));
  }
  h.session->on_ready(true, false, *h.app, false);
  const std::size_t queued = h.session->queued();
  CHECK(queued >= kMaxQueuedBytes);
  CHECK(queued < kMaxQueuedBytes + 4096);  // stopped after the answer that crossed the cap
  CHECK(h.session->buffered() <= kReadChunk + 1024);
  CHECK_FALSE(h.session->wants_read());  // back-pressure: not reading
  CHECK(h.session->wants_write());
  const std::size_t reads = h.wire.reads;
  h.session->on_ready(true, false, *h.app, false);  // readable again: still not read
  CHECK(h.wire.reads == reads);
  CHECK(h.session->busy());

  // The client reads everything: every answer arrives, in order, and nothing more is queued.
  h.wire.room = SIZE_MAX;
  for (int round = 0; round < 100 && (h.session->queued() > 0 || !h.wire.incoming.empty());
       ++round) {
    h.session->on_ready(true, true, *h.app, false);
  }
  CHECK(h.statuses().size() == 2000);
  CHECK(h.session->queued() == 0);
  CHECK(h.session->state() == State::Idle);
}

TEST_CASE("session: a client that reads none of its answers is closed at body-timeout") {
  Harness h;
  h.wire.room = 100;  // reads a little, then nothing
  std::string burst;
  for (int i = 0; i < 400; ++i) burst += kGet;
  h.send(burst);
  CHECK(h.session->queued() > 0);
  fake_now += 1900ms;
  h.session->on_tick();
  CHECK_FALSE(h.session->done());
  fake_now += 100ms;
  h.session->on_tick();
  CHECK(h.session->done());
  CHECK(h.in_flight.count() == 0);
}

TEST_CASE("session: one-byte chunks with long extensions cost linear work and end in 413") {
  Harness h;
  h.send(
      "POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
      "chunked\r\n\r\n");
  const std::string chunk = "1;" + std::string(1000, 'x') + "\r\na\r\n";
  std::size_t sent = 0;
  const double started = thread_cpu_seconds();
  // Under the old decoder (from the first byte on every read) this cost seconds of CPU.
  for (int i = 0; i < 2000 && !h.session->done() && h.session->state() != State::Closing; ++i) {
    for (std::size_t at = 0; at < chunk.size(); at += 100) h.send(chunk.substr(at, 100));
    sent += chunk.size();
  }
  const double cpu = thread_cpu_seconds() - started;
  MESSAGE("sent ", sent, " bytes of chunked body; ", cpu, " s CPU; work ", h.session->work());
  CHECK(h.statuses() == std::vector<int>{413});
  CHECK(sent <= max_chunked_wire_bytes(h.app->config->server.limits) + chunk.size());
  CHECK(h.session->work() <= 3 * (sent + 200));
  CHECK(cpu < 0.5);
}

TEST_CASE("session: a chunked body in one-byte reads is decoded once and answered") {
  Harness h;
  const std::string body = "<Autodiscover/>";
  std::string request =
      "POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
      "chunked\r\n\r\n";
  for (char c : body) request += "1\r\n" + std::string(1, c) + "\r\n";
  request += "0\r\nX-Trailer: y\r\n\r\n";
  request += kGet;  // pipelined after it
  for (char c : request) h.send(std::string(1, c));
  const auto statuses = h.statuses();
  REQUIRE(statuses.size() == 2);
  CHECK(statuses[0] == 200);
  CHECK(statuses[1] == 200);
  CHECK(h.session->work() <= 5 * request.size());
}

TEST_CASE("session: a trickled head costs no parse per byte") {
  Harness h;
  // Header bytes that may be valid (obs-text) used to trigger a full parse each.
  std::string head =
      "GET /mail/config-v1.1.xml?emailaddress=a%40customer.example HTTP/1.1\r\n"
      "Host: x\r\nX-A: ";
  for (char c : head) h.send(std::string(1, c));
  for (int i = 0; i < 800; ++i) h.send("\xC3");
  h.send("\r\n\r\n");
  CHECK(h.statuses() == std::vector<int>{200});
  CHECK(h.session->work() <= 5 * (head.size() + 804));
}

TEST_CASE(
    "session: draining closes idle connections, lets requests in flight finish, counts exactly") {
  fake_now = Clock::time_point(1000h);
  InFlight shared;
  auto app = small_app();
  auto make = [&](Wire& w) {
    return std::make_unique<Session>(std::make_unique<MemoryTransport>(w),
                                     app->config->server.limits, 5s,
                                     SessionOptions{Surface::All, &shared, &test_clock});
  };
  Wire idle_wire, body_wire, fresh_wire;
  auto idle = make(idle_wire);
  auto body = make(body_wire);
  auto fresh = make(fresh_wire);
  idle_wire.incoming.push_back(kGet);
  idle->on_ready(true, false, *app, false);
  body_wire.incoming.push_back(
      "POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab");
  body->on_ready(true, false, *app, false);
  CHECK(shared.count() == 2);  // body (in flight) and fresh (may send a request)

  idle->start_drain();
  body->start_drain();
  fresh->start_drain();
  CHECK(idle_wire.fin);  // idle: FIN at once
  CHECK_FALSE(idle->busy());
  CHECK(shared.count() == 2);

  body_wire.incoming.push_back("cd");
  body->on_ready(true, false, *app, true);
  CHECK(body_wire.written.find("Connection: close\r\n") != std::string::npos);
  CHECK(body_wire.fin);
  CHECK(shared.count() == 1);

  fake_now += kDrainFresh;  // the fresh connection had its chance
  fresh->on_tick();
  CHECK(fresh->done());
  fresh.reset();
  CHECK(shared.count() == 0);
  CHECK(shared.wait_idle(Clock::now()));
}

TEST_CASE("session: a connection accepted during the drain answers only /healthz and /readyz") {
  fake_now = Clock::time_point(1000h);
  InFlight shared;
  auto app = small_app();
  const bool was_ready = metrics::ready();
  metrics::set_ready(false);  // draining
  auto answer = [&](std::string_view request) {
    Wire wire;
    auto late = std::make_unique<Session>(std::make_unique<MemoryTransport>(wire),
                                          app->config->server.limits, 5s,
                                          SessionOptions{Surface::All, &shared, &test_clock});
    CHECK(shared.count() == 1);
    late->admit_draining();
    CHECK(shared.count() == 0);  // the drain does not wait for it
    wire.incoming.emplace_back(request);
    late->on_ready(true, false, *app, true);
    CHECK(shared.count() == 0);
    CHECK(wire.written.find("Connection: close\r\n") != std::string::npos);
    return wire.written;
  };
  const std::string live = answer("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(live.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(live.ends_with("\r\n\r\nok\n"));
  CHECK(answer("HEAD /HEALTHZ HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 200 OK\r\n"));
  const std::string ready = answer("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(ready.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
  CHECK(ready.ends_with("\r\n\r\nnot ready\n"));
  const std::string other = answer(kGet);
  CHECK(other.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
  CHECK(other.ends_with("\r\n\r\n503 Service Unavailable\n"));
  CHECK(answer("GET /healthz/x HTTP/1.1\r\nHost: x\r\n\r\n")
            .starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
  metrics::set_ready(was_ready);

  // One that sends nothing is closed after kDrainFresh, like any fresh connection.
  Wire silent_wire;
  Session silent(std::make_unique<MemoryTransport>(silent_wire), app->config->server.limits, 5s,
                 SessionOptions{Surface::All, &shared, &test_clock});
  silent.admit_draining();
  silent.on_ready(true, false, *app, true);
  fake_now += kDrainFresh - 1ms;
  silent.on_tick();
  CHECK_FALSE(silent.done());
  fake_now += 1ms;
  silent.on_tick();
  CHECK(silent.done());
  CHECK(silent_wire.written.empty());
}

TEST_CASE("session: Connection: close closes at once, a server-decided close lingers after FIN") {
  {
    Harness h;
    h.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(h.statuses() == std::vector<int>{200});
    CHECK(h.session->done());  // clean: closed without lingering
    CHECK_FALSE(h.wire.fin);
  }
  {
    Harness h;
    h.send("GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n");
    CHECK(h.statuses() == std::vector<int>{400});
    CHECK(h.wire.fin);
    CHECK(h.session->state() == State::Closing);
    CHECK_FALSE(h.session->done());
    CHECK_FALSE(h.session->busy());
    h.wire.eof = true;  // the client closes: gone at once
    h.session->on_ready(true, false, *h.app, false);
    CHECK(h.session->done());
  }
}

TEST_CASE("session: a client that sends its requests and FIN still gets every answer") {
  Harness h;
  h.wire.incoming.push_back(kGet + kGet);
  h.wire.eof = true;
  h.session->on_ready(true, false, *h.app, false);
  CHECK(h.statuses() == std::vector<int>{200, 200});
  CHECK(h.session->done());
}
