// HTTP/1.1 request framing (RFC 9112), strict and pure: bytes in, a Request or a status out.
// Debian's Pistache 0.0.5 parser loses pipelined requests, accepts conflicting
// Content-Length headers, waits for timeouts on garbage and answers with exception text
// (../shared/reference/pistache.md), so mailconfd frames requests itself and uses Pistache
// only for sockets and the event loop. No allocation except for header slots and chunked bodies.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/peer.h"

namespace mailconfd::http {

enum class Method { Get, Head, Post, Options, Other };

// Which URLs the listener that received a request serves.
enum class Surface {
  All,      // the main listener when /metrics has no listener of its own
  Public,   // the main listener when it has: everything except /metrics
  Metrics,  // the separate metrics listener: /metrics and the health endpoints only
};

struct Header {
  std::string_view name;   // as sent; compare with ascii_iequals
  std::string_view value;  // without surrounding whitespace
};

// Views into the connection's buffer: valid until that buffer changes.
struct Request {
  Method method = Method::Other;
  std::string_view method_text;
  std::string_view target;  // as sent
  std::string_view path;    // target up to '?', for absolute-form without scheme and authority
  std::string_view query;   // after '?', empty if none
  int minor_version = 1;    // HTTP/1.minor_version
  std::vector<Header> headers;
  std::string_view host;  // from Host (or the absolute-form authority)
  std::string_view body;
  bool keep_alive = true;
  bool expect_continue = false;
  bool secure = false;  // arrived over TLS on mailconfd's own HTTPS listener (set by the server)
  Surface surface = Surface::All;  // set by the server
  PeerAddress peer;  // the connection's client address (set by the server); never logged

  // Case-insensitive lookup of the first header with this name; empty if absent.
  std::string_view header(std::string_view name) const;
  void clear();
};

enum class Parse {
  Complete,    // request parsed; consumed bytes belong to it
  Incomplete,  // need more bytes
  Error,       // answer `status`, then close the connection
};

struct ParseResult {
  Parse outcome = Parse::Incomplete;
  std::size_t consumed = 0;     // bytes of this request (Complete only)
  int status = 0;               // Error only: 400, 408, 413, 414, 431, 501, 505
  bool headers_done = false;    // Incomplete: the header block is complete, the body is not
  std::size_t needed = 0;       // Incomplete with Content-Length: total bytes the request needs
  bool chunked = false;         // parse_head, Complete: the body is chunked (ChunkedDecoder)
  std::size_t body_length = 0;  // parse_head, Complete, not chunked: Content-Length (or 0)
};

// Parses the request at the start of buffer. chunked_body receives the decoded body of a
// chunked request (Request::body then points into it). Never throws.
ParseResult parse_request(std::string_view buffer, const Limits& limits, Request& request,
                          std::string& chunked_body);

// RFC 9112 2.2: CR and LF bytes skipped before a request line, at most this many.
inline constexpr std::size_t kMaxLeadingEmptyBytes = 16;

// Parses only the head (request line, headers, framing checks) at the start of buffer.
// Complete: consumed is where the body starts, and chunked / body_length say how it is
// framed; Request::body stays empty. Same verdicts as parse_request for the head.
ParseResult parse_head(std::string_view buffer, const Limits& limits, Request& request);

// The longest chunk-size line (size and extensions, without CR LF) a chunked body may have.
inline constexpr std::size_t kMaxChunkLine = 1024;

// The most bytes a chunked body may take on the wire (sizes, extensions, CR LFs, data and
// trailers): twice the body limit plus 16 KiB. One-byte chunks with long extensions would
// otherwise make a 32 KiB body cost 33 MB of reading; past this the request gets 413.
std::size_t max_chunked_wire_bytes(const Limits& limits);

// Decodes a chunked body incrementally (RFC 9112 7.1), as nginx's ngx_http_parse_chunked:
// the state survives between calls, so every byte is looked at once however the body is
// split into reads. Verdicts do not depend on the split.
class ChunkedDecoder {
 public:
  explicit ChunkedDecoder(const Limits& limits) : limits_(&limits) {}

  // Takes bytes that follow what it was fed before and appends decoded data to body.
  // Incomplete: all of bytes was used, more are needed. Complete: consumed says how many
  // of bytes belong to the body (the trailer section's end included); the rest is the next
  // request. Error: status is 400, 413 or 431. After Complete or Error it takes nothing.
  ParseResult feed(std::string_view bytes, std::string& body);

  std::size_t wire_bytes() const { return wire_; }  // bytes taken so far

 private:
  enum class Step { Size, Data, DataEnd, DataLf, Trailer, Done };
  bool size_line(std::string& body, int& status);
  bool trailer_line(int& status);

  const Limits* limits_;
  Step step_ = Step::Size;
  std::string line_;           // the current size or trailer line, at most its limit
  std::size_t remaining_ = 0;  // data bytes left in the current chunk
  std::size_t wire_ = 0;
  std::size_t trailer_ = 0;  // bytes of the trailer section so far
  bool cr_ = false;          // Trailer: the last byte was a CR
};

// True when the comma-separated header value contains token (case-insensitive).
bool has_token(std::string_view list, std::string_view token);

}  // namespace mailconfd::http
