#include "http/request.h"

#include <algorithm>
#include <charconv>

#include "core/ascii.h"

namespace mailconfd::http {
namespace {

// RFC 9110 5.6.2 tchar
bool tchar(char c) {
  if (ascii_alnum(c)) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!tchar(c)) return false;
  }
  return true;
}

bool visible_ascii(std::string_view s) {
  for (char c : s) {
    if (c <= 0x20 || c >= 0x7F) return false;
  }
  return !s.empty();
}

// Field values: VCHAR, SP, HTAB and obs-text; never CR, LF, NUL or other controls.
bool field_value(std::string_view s) {
  for (char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if ((b < 0x20 && c != '\t') || b == 0x7F) return false;
  }
  return true;
}

// Host: reg-name or IP literal, optional port. Anything else is refused before it can be
// echoed anywhere.
bool host_value(std::string_view s) {
  for (char c : s) {
    const bool ok =
        ascii_alnum(c) || c == '-' || c == '.' || c == ':' || c == '[' || c == ']' || c == '_';
    if (!ok) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Method method_of(std::string_view m) {
  if (m == "GET") return Method::Get;
  if (m == "HEAD") return Method::Head;
  if (m == "POST") return Method::Post;
  if (m == "OPTIONS") return Method::Options;
  return Method::Other;
}

ParseResult error(int status) {
  ParseResult r;
  r.outcome = Parse::Error;
  r.status = status;
  return r;
}

// A request line or a header (or trailer) line, checked byte by byte in arrival order, so
// that the verdict is the same however the bytes were split into reads (the HTTP fuzz target
// checks this): a byte that can never be valid is Bad (400) and a byte past the limit is
// TooLong (414 / 431), whichever comes first. budget_end is the buffer index of the first byte
// over the limit; for the request line the CR LF does not count, for header lines it does.
enum class Take { Ok, Incomplete, Bad, TooLong };
Take take_line(std::string_view buffer, std::size_t pos, std::size_t budget_end, bool request_line,
               std::string_view& line, std::size_t& next) {
  const std::size_t lf = buffer.find('\n', pos);
  const std::string_view raw =
      buffer.substr(pos, lf == std::string_view::npos ? std::string_view::npos : lf - pos);
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    const auto b = static_cast<unsigned char>(c);
    const bool last = i + 1 == raw.size();
    // A CR must be directly followed by the LF; at the end of what arrived it may still be.
    const bool bad = c == '\r' ? !last
                               : (b < 0x20 && (request_line || c != '\t')) || b == 0x7F ||
                                     (request_line && b >= 0x80);
    const bool counts = !(request_line && c == '\r' && last);
    if (counts && pos + i >= budget_end) return Take::TooLong;
    if (bad) return Take::Bad;
  }
  if (lf == std::string_view::npos) return Take::Incomplete;
  if (!request_line && lf >= budget_end) return Take::TooLong;
  line = raw.ends_with('\r') ? raw.substr(0, raw.size() - 1) : raw;
  next = lf + 1;
  return Take::Ok;
}

bool parse_request_line(std::string_view line, Request& request, int& status) {
  status = 400;
  const auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return false;
  const auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return false;
  request.method_text = line.substr(0, sp1);
  request.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!token(request.method_text) || !visible_ascii(request.target)) return false;
  if (version.size() != 8 || !version.starts_with("HTTP/") || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
    return false;
  }
  if (version[5] != '1') {
    status = 505;
    return false;
  }
  request.minor_version = version[7] - '0';
  request.method = method_of(request.method_text);
  return true;
}

// Splits the target into path and query; absolute-form gives its authority as host.
bool split_target(Request& request, std::string_view& authority) {
  std::string_view t = request.target;
  if (t.front() != '/') {
    if (t == "*" && request.method == Method::Options) {
      request.path = t;
      return true;
    }
    const auto scheme_end = t.find("://");
    if (scheme_end == std::string_view::npos) return false;
    const std::string_view scheme = t.substr(0, scheme_end);
    if (!(ascii_iequals(scheme, "http") || ascii_iequals(scheme, "https"))) return false;
    t.remove_prefix(scheme_end + 3);
    const auto slash = t.find_first_of("/?");
    authority = t.substr(0, slash);
    if (authority.empty()) return false;
    t = slash == std::string_view::npos ? std::string_view("/") : t.substr(slash);
    if (t.front() == '?') return false;
  }
  const auto question = t.find('?');
  request.path = t.substr(0, question);
  request.query = question == std::string_view::npos ? std::string_view() : t.substr(question + 1);
  if (auto hash = request.query.find('#'); hash != std::string_view::npos) {
    request.query = request.query.substr(0, hash);
  }
  return true;
}

}  // namespace

bool has_token(std::string_view list, std::string_view wanted) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    if (ascii_iequals(trim_ows(list.substr(0, comma)), wanted)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

std::string_view Request::header(std::string_view name) const {
  for (const Header& h : headers) {
    if (ascii_iequals(h.name, name)) return h.value;
  }
  return {};
}

void Request::clear() {
  headers.clear();  // keeps capacity: no allocation on the next request
  method = Method::Other;
  method_text = target = path = query = host = body = {};
  minor_version = 1;
  keep_alive = true;
  expect_continue = false;
  secure = false;
  peer = {};
}

ParseResult parse_head(std::string_view buffer, const Limits& limits, Request& request) {
  request.clear();
  std::size_t pos = 0;
  // RFC 9112 2.2: ignore empty lines before the request line.
  while (pos < buffer.size() && pos < kMaxLeadingEmptyBytes &&
         (buffer[pos] == '\r' || buffer[pos] == '\n'))
    ++pos;
  const std::size_t start = pos;

  std::string_view line;
  std::size_t next = 0;
  // Garbage is refused as soon as it arrives instead of waiting for the timeout.
  switch (take_line(buffer, pos, pos + limits.max_request_line, true, line, next)) {
    case Take::Incomplete:
      return {};
    case Take::Bad:
      return error(400);
    case Take::TooLong:
      return error(414);
    case Take::Ok:
      break;
  }
  int status = 400;
  if (!parse_request_line(line, request, status)) return error(status);
  pos = next;

  // Header section.
  std::size_t host_count = 0;
  std::size_t length_count = 0;
  std::size_t transfer_count = 0;
  std::string_view content_length;
  std::string_view transfer_encoding;
  std::string_view connection;
  while (true) {
    switch (take_line(buffer, pos, start + limits.max_header_bytes, false, line, next)) {
      case Take::Incomplete:
        return {};
      case Take::Bad:
        return error(400);
      case Take::TooLong:
        return error(431);
      case Take::Ok:
        break;
    }
    pos = next;
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t') return error(400);  // obs-fold
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return error(400);
    const std::string_view name = line.substr(0, colon);  // whitespace before ':' fails token()
    const std::string_view value = trim_ows(line.substr(colon + 1));
    if (!token(name) || !field_value(value)) return error(400);
    if (request.headers.size() >= limits.max_headers) return error(431);
    request.headers.push_back({name, value});
    if (ascii_iequals(name, "host")) {
      ++host_count;
      request.host = value;
    } else if (ascii_iequals(name, "content-length")) {
      ++length_count;
      content_length = value;
    } else if (ascii_iequals(name, "transfer-encoding")) {
      ++transfer_count;
      transfer_encoding = value;
    } else if (ascii_iequals(name, "connection")) {
      connection = value;
    } else if (ascii_iequals(name, "expect")) {
      request.expect_continue = request.minor_version >= 1 && ascii_iequals(value, "100-continue");
    }
  }
  const std::size_t header_end = pos;

  // Framing checks (RFC 9112 3.2, 6.1, 6.3): these decide where the next request starts,
  // so anything ambiguous is an error and the connection is closed.
  if (host_count > 1 || (request.minor_version >= 1 && host_count == 0)) return error(400);
  if (!host_value(request.host)) return error(400);
  std::string_view authority;
  if (!split_target(request, authority)) return error(400);
  if (!authority.empty()) {
    if (!host_value(authority)) return error(400);
    request.host = authority;
  }
  if (length_count > 0 && transfer_count > 0) return error(400);
  if (length_count > 1 || transfer_count > 1) return error(400);
  if (request.minor_version == 0) {
    request.keep_alive = has_token(connection, "keep-alive");
  } else {
    request.keep_alive = !has_token(connection, "close");
  }

  ParseResult head;
  head.outcome = Parse::Complete;
  head.consumed = header_end;
  if (transfer_count == 1) {
    if (request.minor_version == 0 || !ascii_iequals(transfer_encoding, "chunked"))
      return error(400);
    head.chunked = true;
    return head;
  }
  if (length_count == 1) {
    if (content_length.empty() || content_length.size() > 15) {
      return content_length.empty()
                 ? error(400)
                 : (visible_ascii(content_length) &&
                            content_length.find_first_not_of("0123456789") == std::string_view::npos
                        ? error(413)
                        : error(400));
    }
    auto [end, ec] = std::from_chars(
        content_length.data(), content_length.data() + content_length.size(), head.body_length);
    if (ec != std::errc() || end != content_length.data() + content_length.size())
      return error(400);
    if (head.body_length > limits.max_body_bytes) return error(413);  // before a byte of it
  }
  return head;
}

ParseResult parse_request(std::string_view buffer, const Limits& limits, Request& request,
                          std::string& chunked_body) {
  const ParseResult head = parse_head(buffer, limits, request);
  if (head.outcome != Parse::Complete) return head;
  const std::size_t header_end = head.consumed;
  if (head.chunked) {
    chunked_body.clear();
    ChunkedDecoder decoder(limits);
    ParseResult r = decoder.feed(buffer.substr(header_end), chunked_body);
    if (r.outcome == Parse::Complete) {
      request.body = chunked_body;
      r.consumed += header_end;
    } else if (r.outcome == Parse::Incomplete) {
      r.headers_done = true;
    }
    return r;
  }
  if (buffer.size() - header_end < head.body_length) {
    ParseResult r;
    r.headers_done = true;
    r.needed = header_end + head.body_length;
    return r;
  }
  request.body = buffer.substr(header_end, head.body_length);
  ParseResult done;
  done.outcome = Parse::Complete;
  done.consumed = header_end + head.body_length;
  return done;
}

std::size_t max_chunked_wire_bytes(const Limits& limits) {
  return 2 * limits.max_body_bytes + 16 * 1024;
}

ParseResult ChunkedDecoder::feed(std::string_view bytes, std::string& body) {
  int status = 0;
  std::size_t i = 0;
  const std::size_t limit = max_chunked_wire_bytes(*limits_);
  while (i < bytes.size() && step_ != Step::Done) {
    if (wire_ >= limit) return error(413);
    if (step_ == Step::Data) {
      // The only step that takes many bytes at once: copy them.
      const std::size_t n = std::min({remaining_, bytes.size() - i, limit - wire_});
      body.append(bytes.substr(i, n));
      i += n;
      wire_ += n;
      remaining_ -= n;
      if (remaining_ == 0) step_ = Step::DataEnd;
      continue;
    }
    const char c = bytes[i++];
    ++wire_;
    switch (step_) {
      case Step::Size:
        if (c != '\n') {
          // A size line longer than its limit (a CR LF end allowed) is refused before its LF.
          if (line_.size() > kMaxChunkLine) return error(400);
          line_.push_back(c);
          break;
        }
        if (!size_line(body, status)) return error(status);
        break;
      case Step::DataEnd:
        if (c == '\r') {
          step_ = Step::DataLf;
        } else if (c == '\n') {
          step_ = Step::Size;
        } else {
          return error(400);
        }
        break;
      case Step::DataLf:
        if (c != '\n') return error(400);
        step_ = Step::Size;
        break;
      case Step::Trailer: {
        // As take_line: bytes are judged in arrival order, a byte past the limit is 431
        // and one that is never valid is 400, whichever comes first; a CR must be
        // followed by the LF.
        if (cr_ && c != '\n') return error(400);
        if (trailer_++ >= limits_->max_header_bytes) return error(431);
        if (c == '\n') {
          if (cr_) line_.pop_back();
          cr_ = false;
          if (!trailer_line(status)) return error(status);
          break;
        }
        const auto b = static_cast<unsigned char>(c);
        if ((b < 0x20 && c != '\t' && c != '\r') || b == 0x7F) return error(400);
        cr_ = c == '\r';
        line_.push_back(c);
        break;
      }
      case Step::Data:
      case Step::Done:
        break;
    }
  }
  ParseResult r;
  if (step_ != Step::Done) return r;  // Incomplete: every byte was taken
  r.outcome = Parse::Complete;
  r.consumed = i;
  return r;
}

// A complete chunk-size line (in line_, without its LF): size, optional OWS, extensions.
bool ChunkedDecoder::size_line(std::string& body, int& status) {
  status = 400;
  std::string_view line = line_;
  if (line.ends_with('\r')) line.remove_suffix(1);
  if (line.size() > kMaxChunkLine || line.find('\r') != std::string_view::npos) return false;
  std::string_view size_text = line.substr(0, line.find(';'));
  const std::string_view extensions = line.substr(size_text.size());
  size_text = trim_ows(size_text);
  if (size_text.empty() || size_text.size() > 8 || !field_value(extensions)) return false;
  std::size_t size = 0;
  auto [end, ec] = std::from_chars(size_text.data(), size_text.data() + size_text.size(), size, 16);
  if (ec != std::errc() || end != size_text.data() + size_text.size()) return false;
  line_.clear();
  if (size == 0) {
    step_ = Step::Trailer;
    return true;
  }
  if (body.size() + size > limits_->max_body_bytes) {
    status = 413;
    return false;
  }
  remaining_ = size;
  step_ = Step::Data;
  return true;
}

// A complete trailer line (in line_, without CR LF): empty ends the body; others must be
// well-formed fields and are ignored.
bool ChunkedDecoder::trailer_line(int& status) {
  status = 400;
  const std::string_view line = line_;
  if (line.empty()) {
    step_ = Step::Done;
    return true;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos || !token(line.substr(0, colon)) ||
      !field_value(line.substr(colon + 1))) {
    return false;
  }
  line_.clear();
  return true;
}

}  // namespace mailconfd::http
