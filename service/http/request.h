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

namespace mailconfd::http {

enum class Method { Get, Head, Post, Options, Other };

// Which URLs the listener that received a request serves.
enum class Surface {
  All,      // the main listener when /metrics has no listener of its own
  Public,   // the main listener when it has: everything except /metrics
  Metrics,  // the separate metrics listener: /metrics and the health endpoints only
};

struct Header {
  std::string_view name;   // as sent; compare with iequals
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
  std::size_t consumed = 0;   // bytes of this request (Complete only)
  int status = 0;             // Error only: 400, 408, 413, 414, 431, 501, 505
  bool headers_done = false;  // Incomplete: the header block is complete, the body is not
  std::size_t needed = 0;     // Incomplete with Content-Length: total bytes the request needs
};

// Parses the request at the start of buffer. chunked_body receives the decoded body of a
// chunked request (Request::body then points into it). Never throws.
ParseResult parse_request(std::string_view buffer, const Limits& limits, Request& request,
                          std::string& chunked_body);

bool iequals(std::string_view a, std::string_view b);

// True when the comma-separated header value contains token (case-insensitive).
bool has_token(std::string_view list, std::string_view token);

}  // namespace mailconfd::http
