// One client connection, plain or TLS, from its accept to its close: the one place where
// the HTTP/1.1 protocol state (framing with the pure parser, keep-alive, pipelining,
// 100-continue), the limits, the output cap and back-pressure, the deadlines and the
// in-flight count live. The bytes go through a Transport (transport.h); the event loop
// (server.cpp) only tells the Session what the socket is ready for and asks it what to
// wait for next. A Session is used by one thread only; its clock is injectable, so
// deadlines are tested without sleeping (tests/unit/http/session_test.cpp).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "app.h"
#include "http/request.h"
#include "http/transport.h"
#include "metrics.h"

namespace mailconfd::http {

using Clock = std::chrono::steady_clock;
using Now = Clock::time_point (*)();

// How long a closing connection may linger after our FIN, so the client reads the last
// answer before the socket goes away (instead of an RST eating it).
inline constexpr auto kLinger = std::chrono::milliseconds(2000);

// Answer bytes a connection may have queued (written by the Session, not yet taken by the
// socket) before it stops reading and answering: a client that pipelines requests without
// reading its answers is not read from until it reads (nginx does the same). The same for
// plain and TLS connections.
inline constexpr std::size_t kMaxQueuedBytes = 256 * 1024;

// Bytes read per read call, and read calls per readiness event (then the loop serves other
// connections; the socket stays readable and is reported again).
inline constexpr std::size_t kReadChunk = 16 * 1024;
inline constexpr int kReadsPerEvent = 4;

// During a drain, a connection that has not sent a request yet (or is still in its TLS
// handshake) may send one for this long; then it is closed.
inline constexpr auto kDrainFresh = std::chrono::milliseconds(1000);

// Connections with a request in flight, across every listener of a server: a request
// started (a byte of it arrived, or the connection is new) and not yet answered, or an
// answer not yet written. Exact: each Session adds and removes itself as its state changes.
class InFlight {
 public:
  void add() { count_.fetch_add(1); }
  void remove();
  std::size_t count() const { return count_.load(); }
  // Waits until the count is 0 or until; true when it is 0.
  bool wait_idle(Clock::time_point until);

 private:
  std::atomic<std::size_t> count_{0};
  std::atomic<bool> waiting_{false};
  std::mutex mutex_;
  std::condition_variable idle_;
};

// What every Session of a listener shares; set before the listener starts.
struct SessionOptions {
  Surface surface = Surface::All;
  InFlight* in_flight = nullptr;  // may be null (tests)
  Now now = &Clock::now;
};

enum class State {
  Handshake,  // TLS handshake not complete; handshake-timeout
  Header,     // waiting for (the rest of) a request head; header_timeout
  Body,       // head complete, body incomplete; body_timeout
  Idle,       // between keep-alive requests; keepalive_timeout
  Closing,    // last answer queued; once written, FIN; then linger (kLinger) or close
};

class Session {
 public:
  // limits and handshake_timeout: from the snapshot current at accept.
  Session(std::unique_ptr<Transport> transport, const Limits& limits,
          std::chrono::milliseconds handshake_timeout, const SessionOptions& options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // The socket is readable and/or writable (or hung up: report it as readable). app: the
  // current snapshot; draining: every answer closes its connection.
  void on_ready(bool readable, bool writable, const App& app, bool draining);
  // Deadlines: call at least once per tick (and whenever convenient; it is cheap).
  void on_tick();
  // The server started draining: an idle connection closes now, a fresh one gets kDrainFresh.
  void start_drain();
  // Answers 503 and closes, at accept (over max-connections, or draining). linger: wait for
  // the client's FIN (draining) rather than close at once (over capacity: give the
  // descriptor back).
  void refuse(bool linger);
  // Accepted while the server drains: the request it sends (within kDrainFresh) is answered
  // by route_draining() and the connection closes. Not counted in flight: the drain does not
  // wait for it.
  void admit_draining();

  // What the event loop should wait for.
  bool wants_read() const;
  bool wants_write() const;
  // Reading stopped with the socket possibly still holding bytes (after kReadsPerEvent
  // reads, or TLS records buffered inside OpenSSL): call on_ready again soon.
  bool may_have_input() const { return readable_ && !done_; }
  // The connection is over: the caller destroys the Session (which closes the socket).
  bool done() const { return done_; }

  State state() const { return state_; }
  Clock::time_point deadline() const { return deadline_; }
  std::size_t queued() const { return out_.size() - out_pos_; }  // answer bytes not written
  std::size_t buffered() const { return in_.size(); }  // request bytes kept (incl. consumed)
  // A request in flight (see InFlight), or a fresh connection: a drain waits for it.
  bool busy() const;
  // Bytes the framing has looked at so far (head scans and parses, chunked decoding): at
  // most a small multiple of the bytes received, however they were split (session_test,
  // fuzz_session).
  std::size_t work() const { return work_; }

 private:
  void handshake();
  void read_some(const App& app, bool draining);
  void take(std::string_view fresh, const App& app);
  void scan_head(const Limits& limits);
  void pump(const App& app, bool draining);
  void answer(const App& app, bool draining, const ParseResult& r);
  void closing();
  void flush();
  void finished_writing();
  void account();
  bool in_flight() const {
    return (state_ == State::Header && saw_bytes_) || state_ == State::Body;
  }

  std::unique_ptr<Transport> transport_;
  Limits limits_;  // of the snapshot at accept, for the deadlines set outside on_ready
  SessionOptions options_;
  State state_;
  Clock::time_point deadline_;
  std::optional<Clock::time_point> write_deadline_;  // queued output, no progress since

  std::string in_;  // received; in_start_ bytes of it are consumed
  std::size_t in_start_ = 0;
  Request request_;
  ParseResult head_;          // the current request's head, once complete (state Body)
  bool views_moved_ = false;  // in_ moved since head_ was parsed: request_'s views are stale
  bool head_ready_ = false;   // Header: a parse may now complete or refuse the head
  bool late_ = false;         // accepted during the drain (admit_draining)
  bool line_seen_ = false;    // Header: the request line's LF has arrived
  std::size_t scanned_ = 0;   // Header: in_ is looked at up to here for the head's end
  std::optional<ChunkedDecoder> chunked_;
  std::string chunked_body_;
  bool continue_sent_ = false;
  bool saw_bytes_ = false;  // any byte of the current request arrived
  bool clean_close_ = false;

  std::string out_;  // answers; out_pos_ bytes of it are written
  std::size_t out_pos_ = 0;
  bool readable_ = false;          // the socket may have bytes we have not read
  bool read_wants_write_ = false;  // TLS: a read needs writability first
  bool write_wants_read_ = false;  // TLS: a write needs readability first
  bool input_closed_ = false;      // end of stream from the client
  bool fin_sent_ = false;
  bool done_ = false;
  bool counted_ = false;  // counted in options_.in_flight
  std::size_t work_ = 0;
};

// The complete answer to a connection over max-connections (or arriving while draining).
std::string_view busy_answer();
// The complete answer to a request that missed its deadline; logs it.
std::string_view timeout_answer();

}  // namespace mailconfd::http
