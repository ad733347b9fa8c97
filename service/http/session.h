// One HTTP/1.1 connection's protocol state, independent of the transport: bytes in →
// framed requests (request.h) → routed replies (routes.h) → bytes out, with keep-alive,
// pipelining, 100-continue and the deadline of the current phase. The plain listener
// (server.cpp, Pistache) and the HTTPS listener (tls_listener.cpp) own the sockets and call this.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "app.h"
#include "http/request.h"
#include "metrics.h"

namespace mailconfd::http {

using Clock = std::chrono::steady_clock;

// How long a closing connection may linger after our FIN, so the client reads the last
// answer before the socket goes away (instead of an RST eating it).
inline constexpr auto kLinger = std::chrono::milliseconds(2000);

// What both listeners share: the current snapshot, the open-connection count (limits apply to
// plain and TLS connections together) and whether the server is draining.
struct ServerState {
  std::atomic<std::shared_ptr<const App>> app;
  std::atomic<std::size_t> connections{0};
  std::atomic<bool> draining{false};
  Surface surface = Surface::All;  // which URLs these listeners serve; set before they start

  // Counts a connection for the limits and for /metrics (not on the metrics listener);
  // returns how many are open with it.
  std::size_t opened(bool tls) {
    if (surface != Surface::Metrics) metrics::connection_opened(tls);
    return connections.fetch_add(1) + 1;
  }
  void closed(bool tls) {
    if (surface != Surface::Metrics) metrics::connection_closed(tls);
    connections.fetch_sub(1);
  }
};

enum class State {
  Header,   // waiting for (the rest of) a request head; header_timeout
  Body,     // head complete, body incomplete; body_timeout
  Idle,     // between keep-alive requests; keepalive_timeout
  Closing,  // last answer sent (or being sent), FIN sent or pending; kLinger
};

class Session {
 public:
  // secure: the connection arrived over TLS (Request::secure); surface: Request::surface.
  Session(Clock::time_point now, const Limits& limits, bool secure, Surface surface = Surface::All)
      : deadline(now + limits.header_timeout), secure_(secure), surface_(surface) {}

  // Takes bytes that arrived; appends every answer they complete to out (which the caller
  // writes, in order, before anything later). Returns true when the connection must close
  // once out is written (state became Closing). Bytes after the last answer are discarded.
  bool on_input(std::string_view fresh, const App& app, bool draining, std::string& out);

  // Marks the connection as closing (the caller sends FIN when its output is written).
  void close(Clock::time_point now);

  // True when a request has started but is not answered yet: it gets a 408 at its deadline,
  // and a draining server waits for it.
  bool in_flight() const { return (state == State::Header && saw_bytes_) || state == State::Body; }
  // True for a connection that has not sent a byte yet (nothing answered on it so far).
  bool fresh() const { return state == State::Header && !saw_bytes_; }
  // True when the connection is Closing after a complete request whose every byte was read,
  // that asked for the close itself (Connection: close, HTTP/1.0) and that nothing followed:
  // the client is not sending, so the socket may close at once instead of lingering. When
  // the server decides to close (errors, draining) or bytes were left unread, a client's
  // next bytes arriving at a closed socket would draw an RST that can destroy the answer in
  // the client's receive buffer; those connections shut down their side and linger.
  bool clean_close() const { return state == State::Closing && clean_close_; }

  State state = State::Header;
  Clock::time_point deadline;

 private:
  void process(const App& app, const Limits& limits, bool draining, std::string& out);

  std::string in_;  // received, not yet consumed
  Request request_;
  std::string chunked_body_;
  std::size_t needed_ = 0;  // Body with Content-Length: bytes the request needs in total
  bool continue_sent_ = false;
  bool saw_bytes_ = false;  // any byte of the current request arrived
  bool clean_close_ = false;
  bool secure_ = false;
  Surface surface_ = Surface::All;
};

// The complete answer to a connection over max-connections (or arriving while draining).
std::string_view busy_answer();
// The complete answer to a request that missed its deadline; logs it.
std::string_view timeout_answer();

}  // namespace mailconfd::http
