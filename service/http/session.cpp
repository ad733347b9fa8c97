#include "http/session.h"

#include <algorithm>

#include "http/reply.h"
#include "http/routes.h"
#include "log.h"
#include "metrics.h"

namespace mailconfd::http {
namespace {

void log_request(const Request& request, const Reply& reply, std::size_t bytes,
                 Clock::duration took) {
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(took).count();
  // The path only: queries carry addresses, and headers carry passwords (Authorization).
  log_access(request.method_text.substr(0, 16), request.path.substr(0, 200), reply.status, bytes,
             micros, client_kind(request.header("User-Agent")));
}

// True when bytes can change what parse_request says about an incomplete head: a line end,
// or a byte that is never valid in a head (so it is refused at once, not at the timeout).
bool worth_parsing(std::string_view fresh) {
  for (char c : fresh) {
    const auto b = static_cast<unsigned char>(c);
    if (c == '\n' || (b < 0x20 && c != '\r' && c != '\t') || b >= 0x7F) return true;
  }
  return false;
}

std::string serialized(int status) {
  std::string out;
  Reply reply = error_reply(status);
  reply.close = true;
  serialize(reply, false, false, out);
  return out;
}

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

void Session::close(Clock::time_point now) {
  state = State::Closing;
  deadline = now + kLinger;
  in_.clear();
}

bool Session::on_input(std::string_view fresh, const App& app, bool draining, std::string& out) {
  if (state == State::Closing) return false;  // discard what arrives after the last answer
  const Limits& limits = app.config.server.limits;
  in_.append(fresh);
  if (state == State::Idle) {
    state = State::Header;
    deadline = Clock::now() + limits.header_timeout;  // from the first byte of the request
  }
  saw_bytes_ = true;
  if (state == State::Header && !worth_parsing(fresh) &&
      in_.size() <= std::min(limits.max_request_line, limits.max_header_bytes)) {
    return false;
  }
  if (state == State::Body && needed_ > in_.size()) return false;
  process(app, limits, draining, out);
  return state == State::Closing;
}

void Session::process(const App& app, const Limits& limits, bool draining, std::string& out) {
  bool closing = false;
  bool last_complete = false;  // the last answer was to a complete request, all of it read
  while (!in_.empty() && !closing) {
    const Clock::time_point started = Clock::now();
    const ParseResult r = parse_request(in_, limits, request_, chunked_body_);
    request_.secure = secure_;
    if (r.outcome == Parse::Incomplete) {
      if (r.headers_done && state != State::Body) {
        state = State::Body;
        deadline = started + limits.body_timeout;
        needed_ = r.needed;
        if (request_.expect_continue && !continue_sent_) {
          out.append("HTTP/1.1 100 Continue\r\n\r\n");
          continue_sent_ = true;
        }
      }
      break;
    }
    Reply reply;
    bool keep_alive = false;
    if (r.outcome == Parse::Error) {
      reply = error_reply(r.status);
      reply.close = true;
      log_access("-", "-", r.status, 0, 0, "framing");
    } else {
      request_.surface = surface_;
      reply = route(app, request_);
      keep_alive = request_.keep_alive && !reply.close && !draining;
    }
    const std::size_t before = out.size();
    serialize(reply, keep_alive, request_.method == Method::Head, out);
    const Clock::time_point finished = Clock::now();  // one reading for log, metrics, deadline
    last_complete = r.outcome == Parse::Complete;
    if (last_complete) {
      log_request(request_, reply, out.size() - before, finished - started);
      in_.erase(0, r.consumed);
    }
    metrics::count_request(reply.endpoint, reply.status, finished - started);
    needed_ = 0;
    continue_sent_ = false;
    closing = !keep_alive;
    state = in_.empty() ? State::Idle : State::Header;
    deadline = finished + (in_.empty() ? limits.keepalive_timeout : limits.header_timeout);
    saw_bytes_ = !in_.empty();
  }
  if (closing) {
    // The client asked for the close (it must not send more, RFC 9112 §9.6); a close the
    // server decides (errors, draining) may cross a request the client is already sending.
    clean_close_ = last_complete && in_.empty() && !request_.keep_alive;
    close(Clock::now());
  }
}

}  // namespace mailconfd::http
