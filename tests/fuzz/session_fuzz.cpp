// Fuzzes the connection engine (http/session.h), not only the parser: the input is fed to a
// Session over an in-memory transport in pieces whose sizes, and the client's reading, are
// chosen by the first two bytes; the clock moves between pieces. Whatever arrives, and
// however it is split:
//   - answer bytes queued in the Session stay under the output cap (plus one answer);
//   - request bytes kept stay under the limits (plus one read);
//   - the framing looks at each received byte a bounded number of times (Session::work);
//   - the bytes written are bounded by the requests that could have been in the input;
//   - a connection whose client stopped sending ends by its deadlines, and is never counted
//     in flight afterwards.
#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "app.h"
#include "config/config_file.h"
#include "fuzz.h"
#include "http/session.h"

using namespace mailconfd;
using namespace mailconfd::http;

namespace {

Clock::time_point fake_now = Clock::time_point(std::chrono::hours(1000));
Clock::time_point fuzz_clock() { return fake_now; }

struct Wire {
  std::deque<std::string> incoming;
  bool eof = false;
  std::size_t written = 0;
  std::size_t room = 0;  // what the client reads before writes would block
};

class MemoryTransport final : public Transport {
 public:
  explicit MemoryTransport(Wire& wire) : wire_(wire) {}
  Io handshake() override { return Io::Done; }
  std::size_t read(char* data, std::size_t size, Io& io) override {
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
    wire_.room -= n;
    wire_.written += n;
    io = n > 0 ? Io::Done : Io::WantWrite;
    return n;
  }
  void finish() override {}
  bool secure() const override { return false; }

 private:
  Wire& wire_;
};

const App& app_for(bool small) {
  static const std::string base =
      "<mailconfd><server>LIMITS</server><provider id=\"p.example\">"
      "<incoming protocol=\"imap\" host=\"imap.p.example\" port=\"993\" security=\"tls\"/>"
      "<outgoing host=\"smtp.p.example\" port=\"587\" security=\"starttls\"/>"
      "<domain>example.com</domain></provider></mailconfd>";
  auto make = [](const std::string& limits) {
    std::string text = base;
    text.replace(text.find("LIMITS"), 6, limits);
    Loaded loaded = load_config_text(text, "fuzz.xml", "/nonexistent/mailconfd-fuzz");
    for (const std::string& problem : loaded.problems)
      std::fprintf(stderr, "%s\n", problem.c_str());
    FUZZ_CHECK(loaded.ok());
    return build_app(std::move(loaded.config));
  };
  static const auto small_app = make(
      "<limits max-request-line=\"256\" max-header-bytes=\"1024\" max-headers=\"8\" "
      "max-body-bytes=\"1024\" header-timeout=\"1s\" body-timeout=\"1s\" "
      "keepalive-timeout=\"2s\"/>");
  static const auto default_app = make("");
  return small ? *small_app : *default_app;
}

// The largest single answer (the setup page, a signed profile) is far below this.
constexpr std::size_t kMaxAnswer = 64 * 1024;
// The shortest request that gets an answer of its own: "GET / HTTP/1.0\n\n" (16 bytes); a
// framing error is answered once and ends the connection.
constexpr std::size_t kShortestRequest = 16;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2 || size > 65536) return 0;
  const std::uint8_t control = data[0];
  const std::uint8_t reading = data[1];
  const std::string_view bytes(reinterpret_cast<const char*>(data + 2), size - 2);
  const App& app = app_for((control & 0x80) == 0);
  const Limits& limits = app.config->server.limits;

  Wire wire;
  InFlight in_flight;
  auto session = std::make_unique<Session>(std::make_unique<MemoryTransport>(wire), limits,
                                           std::chrono::seconds(1),
                                           SessionOptions{Surface::All, &in_flight, &fuzz_clock});
  const bool draining = (control & 0x40) != 0;
  std::uint32_t state = control * 2654435761u + reading + 1;
  std::size_t pos = 0;
  std::size_t received = 0;
  const std::size_t kept_bound =
      2 * (limits.max_header_bytes + 16 + limits.max_body_bytes + kReadChunk) + 64;
  while (!session->done() && (pos < bytes.size() || session->queued() > 0)) {
    state = state * 1103515245u + 12345u;
    const std::size_t piece =
        std::min<std::size_t>(1 + (state >> 16) % ((control & 0x3F) + 1), bytes.size() - pos);
    if (piece > 0) wire.incoming.emplace_back(bytes.substr(pos, piece));
    pos += piece;
    received += piece;
    // The client reads some of its answers, or none (reading's low bits).
    wire.room += (reading & 3) == 0 ? 0 : ((state >> 8) % 4096) << (reading & 3);
    session->on_ready(true, true, app, draining);
    FUZZ_CHECK(session->queued() <= kMaxQueuedBytes + kMaxAnswer);
    FUZZ_CHECK(session->buffered() <= kept_bound);
    FUZZ_CHECK(session->work() <= 6 * received + 64);
    if (pos >= bytes.size() && wire.room == 0) break;  // a client that never reads
    fake_now += std::chrono::milliseconds((state >> 4) % 300);
    session->on_tick();
  }
  FUZZ_CHECK(wire.written <= (received / kShortestRequest + 2) * kMaxAnswer);
  // The client goes quiet: the deadlines end every connection, and then it is not in flight.
  for (int i = 0; i < 4 && !session->done(); ++i) {
    fake_now += std::chrono::seconds(31);  // past every timeout of the default limits
    session->on_tick();
  }
  FUZZ_CHECK(session->done());
  FUZZ_CHECK(in_flight.count() == 0);
  return 0;
}
