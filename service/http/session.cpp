#include "http/session.h"

#include <algorithm>

#include "http/reply.h"
#include "http/routes.h"
#include "log.h"
#include "metrics.h"
#include "tls/certificates.h"

namespace mailconfd::http {
namespace {

void log_request(const Request& request, const Reply& reply, std::size_t bytes,
                 Clock::duration took) {
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(took).count();
  // The path only: queries carry addresses, and headers carry passwords (Authorization).
  log_access(request.method_text.substr(0, 16),
             reply.log_path.empty() ? request.path.substr(0, 200) : reply.log_path, reply.status,
             bytes, micros, client_kind(request.header("User-Agent")), request.secure);
}

std::string serialized(int status) {
  std::string out;
  Reply reply = error_reply(status);
  reply.close = true;
  serialize(reply, false, false, out);
  return out;
}

constexpr std::size_t kLeadingEmptyLines = kMaxLeadingEmptyBytes;

}  // namespace

std::string_view busy_answer() {
  static const std::string answer = serialized(503);
  metrics::count_request(Endpoint::Other, 503, {});
  return answer;
}

std::string_view timeout_answer() {
  static const std::string answer = serialized(408);
  log_access("-", "-", 408, 0, 0, "timeout");
  metrics::count_request(Endpoint::Other, 408, {});
  return answer;
}

void InFlight::remove() {
  // Only a waiting drain is told (seq_cst: either this sees waiting_, or the waiter sees 0).
  if (count_.fetch_sub(1) == 1 && waiting_.load()) {
    std::lock_guard lock(mutex_);
    idle_.notify_all();
  }
}

bool InFlight::wait_idle(Clock::time_point until) {
  std::unique_lock lock(mutex_);
  waiting_.store(true);
  const bool idle = idle_.wait_until(lock, until, [this] { return count_.load() == 0; });
  waiting_.store(false);
  return idle;
}

Session::Session(std::unique_ptr<Transport> transport, const Limits& limits,
                 std::chrono::milliseconds handshake_timeout, const SessionOptions& options)
    : transport_(std::move(transport)), limits_(limits), options_(options) {
  const auto now = options_.now();
  if (transport_->secure()) {
    state_ = State::Handshake;
    deadline_ = now + handshake_timeout;
  } else {
    state_ = State::Header;
    deadline_ = now + limits.header_timeout;
  }
  readable_ = true;  // the first bytes may be there already
  account();
}

Session::~Session() {
  if (counted_ && options_.in_flight) options_.in_flight->remove();
}

bool Session::busy() const {
  if (done_) return false;
  if (state_ == State::Handshake || (state_ == State::Header && !saw_bytes_)) return true;
  return in_flight() || queued() > 0;
}

void Session::account() {
  const bool now_busy = !late_ && busy();
  if (now_busy == counted_) return;
  counted_ = now_busy;
  if (!options_.in_flight) return;
  if (now_busy) {
    options_.in_flight->add();
  } else {
    options_.in_flight->remove();
  }
}

bool Session::wants_read() const {
  if (done_) return false;
  if (write_wants_read_) return true;
  if (read_wants_write_) return false;
  if (state_ == State::Handshake) return true;
  return !input_closed_ && queued() < kMaxQueuedBytes;
}

bool Session::wants_write() const {
  if (done_) return false;
  return read_wants_write_ || (queued() > 0 && !write_wants_read_);
}

void Session::on_ready(bool readable, bool writable, const App& app, bool draining) {
  if (done_) return;
  if (readable) readable_ = true;
  if (state_ == State::Handshake) {
    handshake();
    if (state_ == State::Handshake || done_) return account();
  }
  if (read_wants_write_ && writable) {
    read_wants_write_ = false;
    readable_ = true;
  }
  if (queued() > 0 && (writable || (readable && write_wants_read_))) flush();
  read_some(app, draining);
  account();
}

void Session::handshake() {
  switch (transport_->handshake()) {
    case Io::Done:
      state_ = State::Header;
      deadline_ = options_.now() + limits_.header_timeout;
      read_wants_write_ = false;
      readable_ = true;  // the request may have come with the client's Finished
      return;
    case Io::WantRead:
      read_wants_write_ = false;
      readable_ = false;  // wait for epoll: nothing more to take now
      return;
    case Io::WantWrite:
      read_wants_write_ = true;
      return;
    case Io::Closed:
      done_ = true;
      return;
  }
}

// Answers what is buffered, writes, reads more; stops while the queued answers are over the
// cap (back-pressure), when the socket has nothing more, or after kReadsPerEvent reads.
void Session::read_some(const App& app, bool draining) {
  thread_local char buffer[kReadChunk];
  for (int reads = 0; !done_;) {
    pump(app, draining);
    if (queued() > 0) flush();
    if (done_) return;
    if (input_closed_) {
      // The client sent everything it will; answer what is complete, then close.
      if (state_ != State::Closing && queued() == 0) done_ = true;
      return;
    }
    if (queued() >= kMaxQueuedBytes || !readable_ || read_wants_write_ || reads == kReadsPerEvent) {
      return;
    }
    Io io = Io::Done;
    const std::size_t n = transport_->read(buffer, sizeof buffer, io);
    ++reads;
    if (n > 0) {
      take(std::string_view(buffer, n), app);
      continue;
    }
    switch (io) {
      case Io::WantRead:
        readable_ = false;
        return;
      case Io::WantWrite:
        read_wants_write_ = true;
        return;
      case Io::Done:
      case Io::Closed:
        input_closed_ = true;
        if (state_ == State::Closing && fin_sent_) done_ = true;
        if (state_ == State::Header && !saw_bytes_) done_ = true;
        break;
    }
  }
}

// Bytes that arrived: kept for pump(), or discarded once the last answer is queued.
void Session::take(std::string_view fresh, const App& app) {
  if (state_ == State::Closing) return;
  if (state_ == State::Idle) {
    state_ = State::Header;
    deadline_ = options_.now() + app.config->server.limits.header_timeout;  // from its first byte
  }
  saw_bytes_ = true;
  const char* const data = in_.data();
  if (in_start_ > 0 && in_start_ * 2 >= in_.size()) {
    in_.erase(0, in_start_);  // at most once per read: no memmove per pipelined request
    scanned_ -= std::min(scanned_, in_start_);
    in_start_ = 0;
    views_moved_ = true;
  }
  in_.append(fresh);
  views_moved_ = views_moved_ || in_.data() != data;
  if (state_ == State::Header) scan_head(app.config->server.limits);
}

// Looks at each head byte once and notes when parsing can give a verdict: at the request
// line's LF (a bad line is refused at once), at the empty line that ends the head, at a byte
// that is never valid there, and when the head outgrows its limits. Parsing only then keeps
// a head trickled in one byte per read from costing a parse per byte.
void Session::scan_head(const Limits& limits) {
  const std::string_view bytes = std::string_view(in_).substr(in_start_);
  std::size_t i = scanned_ > in_start_ ? scanned_ - in_start_ : 0;
  const std::size_t before = i;
  // The empty lines the parser skips before a request line are no verdict yet: a client
  // sending them one byte at a time must not make the parser run once per byte.
  std::size_t skipped = 0;
  while (skipped < bytes.size() && skipped < kLeadingEmptyLines &&
         (bytes[skipped] == '\r' || bytes[skipped] == '\n'))
    ++skipped;
  if (!line_seen_) i = std::max(i, skipped);
  for (; i < bytes.size() && !head_ready_; ++i) {
    const char c = bytes[i];
    const auto b = static_cast<unsigned char>(c);
    if (c == '\n') {
      const bool empty_line = (i >= 1 && bytes[i - 1] == '\n') ||
                              (i >= 2 && bytes[i - 1] == '\r' && bytes[i - 2] == '\n');
      if (!line_seen_ || empty_line) head_ready_ = true;
      line_seen_ = true;
    } else if ((b < 0x20 && c != '\r' && c != '\t') || b == 0x7F || (!line_seen_ && b >= 0x80)) {
      head_ready_ = true;
    }
  }
  // Past these sizes the parser has a verdict (414 or 431) whatever follows.
  const auto crossed = [&](std::size_t limit) { return before <= limit && bytes.size() > limit; };
  if ((!line_seen_ && crossed(limits.max_request_line + kLeadingEmptyLines + 1)) ||
      crossed(limits.max_header_bytes + kLeadingEmptyLines)) {
    head_ready_ = true;
  }
  work_ += i - before;
  scanned_ = in_start_ + i;
}

// Answers every complete request that is buffered, in order, while the queued answers are
// under the cap.
void Session::pump(const App& app, bool draining) {
  const Limits& limits = app.config->server.limits;
  while (!done_ && state_ != State::Closing && queued() < kMaxQueuedBytes &&
         in_start_ < in_.size()) {
    const std::string_view pending = std::string_view(in_).substr(in_start_);
    if (state_ == State::Header || state_ == State::Idle) {
      if (!head_ready_) return;
      head_ready_ = false;
      const ParseResult head = parse_head(pending, limits, request_);
      work_ += head.outcome == Parse::Complete ? head.consumed : pending.size();
      if (head.outcome == Parse::Incomplete) {
        scan_head(limits);  // go on looking from where the scan stopped
        if (!head_ready_) return;
        continue;
      }
      if (head.outcome == Parse::Error) {
        answer(app, draining, head);
        return;
      }
      head_ = head;
      views_moved_ = false;
      state_ = State::Body;
      if (head.chunked) {
        chunked_.emplace(limits);
        chunked_body_.clear();
      }
      if (head.chunked || pending.size() < head.consumed + head.body_length) {
        deadline_ = options_.now() + limits.body_timeout;
        if (request_.expect_continue && !continue_sent_) {
          out_.append("HTTP/1.1 100 Continue\r\n\r\n");
          continue_sent_ = true;
        }
      }
    }
    // Body: Content-Length waits for its bytes; chunked decodes what arrived and drops it.
    ParseResult r;
    if (chunked_) {
      r = chunked_->feed(pending.substr(head_.consumed), chunked_body_);
      work_ += pending.size() - head_.consumed;
      if (r.outcome == Parse::Incomplete) {
        in_.resize(in_start_ + head_.consumed);  // every byte was taken: only the head stays
        return;
      }
      if (r.outcome == Parse::Complete) {
        in_.erase(in_start_ + head_.consumed, r.consumed);
        r.consumed = head_.consumed;
      }
    } else {
      if (pending.size() < head_.consumed + head_.body_length) return;
      r.outcome = Parse::Complete;
      r.consumed = head_.consumed + head_.body_length;
    }
    if (r.outcome == Parse::Complete && views_moved_) {
      // The head's views point into a buffer that has moved since: parse it again (the same
      // bytes, so the same result; a head costs at most two passes, not one per read).
      (void)parse_head(std::string_view(in_).substr(in_start_), limits, request_);
      work_ += head_.consumed;
    }
    if (r.outcome == Parse::Complete) {
      request_.body =
          chunked_ ? std::string_view(chunked_body_)
                   : std::string_view(in_).substr(in_start_ + head_.consumed, head_.body_length);
    }
    answer(app, draining, r);
  }
}

// Queues the answer to the request at the front of the buffer (or to a framing error).
void Session::answer(const App& app, bool draining, const ParseResult& r) {
  const Limits& limits = app.config->server.limits;
  const Clock::time_point started = options_.now();
  Reply reply;
  bool keep_alive = false;
  if (r.outcome == Parse::Error) {
    reply = error_reply(r.status);
    reply.close = true;
    log_access("-", "-", r.status, 0, 0, "framing", transport_->secure());
  } else {
    request_.secure = transport_->secure();
    request_.surface = options_.surface;
    request_.peer = transport_->peer();
    reply = late_ ? route_draining(app, request_) : route(app, request_);
    keep_alive = request_.keep_alive && !reply.close && !draining;
  }
  const std::size_t before = out_.size();
  serialize(reply, keep_alive, request_.method == Method::Head, out_);
  const Clock::time_point finished = options_.now();  // one reading for log, metrics, deadline
  const bool complete = r.outcome == Parse::Complete;
  if (complete) {
    log_request(request_, reply, out_.size() - before, finished - started);
    in_start_ += r.consumed;
    if (in_start_ == in_.size()) {
      in_.clear();
      in_start_ = 0;
    }
  }
  metrics::count_request(reply.endpoint, reply.status, finished - started);
  continue_sent_ = false;
  chunked_.reset();
  head_ready_ = false;
  line_seen_ = false;
  scanned_ = in_start_;
  const bool more = in_start_ < in_.size();
  if (!keep_alive) {
    // The client asked for the close (it must not send more, RFC 9112 §9.6); a close the
    // server decides (errors, draining) may cross a request the client is already sending.
    clean_close_ = complete && !more && !request_.keep_alive;
    return closing();
  }
  state_ = more ? State::Header : State::Idle;
  deadline_ = finished + (more ? limits.header_timeout : limits.keepalive_timeout);
  saw_bytes_ = more;
  if (more) scan_head(limits);
}

// The last answer is queued: nothing more is read into the buffer.
void Session::closing() {
  state_ = State::Closing;
  deadline_ = options_.now() + kLinger;
  in_.clear();
  in_start_ = 0;
  scanned_ = 0;
}

void Session::flush() {
  while (queued() > 0) {
    Io io = Io::Done;
    const std::size_t n =
        transport_->write(std::string_view(out_).substr(out_pos_), state_ == State::Closing, io);
    if (n > 0) {
      out_pos_ += n;
      write_deadline_.reset();
      continue;
    }
    if (io == Io::Closed || io == Io::Done) {
      done_ = true;
      return;
    }
    write_wants_read_ = io == Io::WantRead;
    break;
  }
  if (queued() > 0) {
    if (out_pos_ >= 64 * 1024 && out_pos_ * 2 >= out_.size()) {
      out_.erase(0, out_pos_);  // no quadratic copying of a large backlog
      out_pos_ = 0;
    }
    // A client that reads none of its answers for body-timeout is gone (nginx's send_timeout).
    if (!write_deadline_) write_deadline_ = options_.now() + limits_.body_timeout;
    return;
  }
  out_.clear();
  out_pos_ = 0;
  write_wants_read_ = false;
  write_deadline_.reset();
  if (state_ == State::Closing && !fin_sent_) finished_writing();
}

// The last answer is written.
void Session::finished_writing() {
  if (clean_close_ && !transport_->secure()) {
    // As nginx does: the client asked for the close and sends nothing more, so close now
    // (the FIN leaves with the answer's tail, sent with MSG_MORE) rather than shut down,
    // wait for the client's FIN and only then close.
    done_ = true;
    return;
  }
  // FIN (after close_notify over TLS); then linger until the client closes or kLinger
  // passes, so that bytes it is still sending do not draw an RST that destroys the answer.
  transport_->finish();
  fin_sent_ = true;
  deadline_ = options_.now() + kLinger;
  if (input_closed_) done_ = true;
}

void Session::on_tick() {
  if (done_) return;
  const Clock::time_point now = options_.now();
  if (queued() > 0) {
    // Waiting for the client to read: only the write deadline applies.
    if (write_deadline_ && now >= *write_deadline_) done_ = true;
    return account();
  }
  if (now < deadline_) return;
  if (state_ == State::Handshake) tls::count_handshake_failure(tls::HandshakeFailure::Timeout);
  if (in_flight()) {
    // A request that missed its deadline gets a 408; the connection closes without lingering.
    out_.append(timeout_answer());
    closing();
    flush();
  }
  done_ = true;
  account();
}

void Session::start_drain() {
  if (done_) return;
  if (state_ == State::Idle) {
    // Closed at once (a client that sends on it at this moment retries, as after any
    // keep-alive timeout); an answer still being written is finished first.
    clean_close_ = false;
    closing();
    if (queued() == 0) finished_writing();
  } else if (state_ == State::Handshake || (state_ == State::Header && !saw_bytes_)) {
    deadline_ = std::min(deadline_, options_.now() + kDrainFresh);
  }
  account();
}

void Session::refuse(bool linger) {
  out_.append(busy_answer());
  clean_close_ = false;
  closing();
  flush();
  // Over capacity: give the descriptor back at once instead of lingering, so that a flood
  // of connections cannot use up the descriptors.
  if (!linger) done_ = true;
  account();
}

void Session::admit_draining() {
  if (late_) return;
  late_ = true;
  deadline_ = std::min(deadline_, options_.now() + kDrainFresh);
  account();
}

}  // namespace mailconfd::http
