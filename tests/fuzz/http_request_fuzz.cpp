// Fuzzes the HTTP/1.1 framing (parse_request) with small limits. The whole buffer is parsed
// as a pipelined sequence, then fed again in pieces split at points chosen by the first
// input byte, as the server sees it arrive; both must give the same sequence of requests and
// the same error. A request refused or framed differently only because it arrived in pieces
// would be a smuggling or denial-of-service bug.
#include <string>
#include <string_view>
#include <vector>

#include "fuzz.h"
#include "http/request.h"

using namespace mailconfd;
using namespace mailconfd::http;

namespace {

struct Outcome {
  Parse outcome = Parse::Incomplete;
  int status = 0;
  std::size_t consumed = 0;
  std::string method, target, path, query, host, body;
  std::size_t headers = 0;
  bool keep_alive = false;
  bool operator==(const Outcome&) const = default;
};

Outcome record(const ParseResult& r, const Request& request, const Limits& limits,
               std::size_t available) {
  Outcome o;
  o.outcome = r.outcome;
  o.status = r.status;
  if (r.outcome == Parse::Error) {
    FUZZ_CHECK(r.status == 400 || r.status == 413 || r.status == 414 || r.status == 431 ||
               r.status == 501 || r.status == 505);
    return o;
  }
  FUZZ_CHECK(r.consumed > 0 && r.consumed <= available);
  FUZZ_CHECK(request.body.size() <= limits.max_body_bytes);
  FUZZ_CHECK(request.headers.size() <= limits.max_headers);
  FUZZ_CHECK(request.host.find_first_of("\r\n\0 <>\"", 0, 7) == std::string_view::npos);
  FUZZ_CHECK(request.path.find_first_of("\r\n ") == std::string_view::npos);
  o.consumed = r.consumed;
  o.method = request.method_text;
  o.target = request.target;
  o.path = request.path;
  o.query = request.query;
  o.host = request.host;
  o.body = request.body;
  o.headers = request.headers.size();
  o.keep_alive = request.keep_alive;
  return o;
}

// Parses every complete request at the front of pending, erasing it; stops at an error.
bool drain(std::string& pending, const Limits& limits, std::vector<Outcome>& out) {
  Request request;
  std::string chunked;
  while (!pending.empty()) {
    const ParseResult r = parse_request(pending, limits, request, chunked);
    if (r.outcome == Parse::Incomplete) {
      FUZZ_CHECK(!r.headers_done || r.needed == 0 || r.needed > pending.size());
      FUZZ_CHECK(r.needed <= pending.size() + limits.max_header_bytes + limits.max_body_bytes);
      return true;
    }
    out.push_back(record(r, request, limits, pending.size()));
    if (r.outcome == Parse::Error) return false;
    pending.erase(0, r.consumed);
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0 || size > 16384) return 0;
  const std::uint8_t control = data[0];
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  Limits limits;
  if ((control & 0x80) == 0) {
    limits.max_request_line = 128;
    limits.max_header_bytes = 512;
    limits.max_headers = 8;
    limits.max_body_bytes = 256;
  }

  std::vector<Outcome> whole;
  std::string pending(bytes);
  drain(pending, limits, whole);

  std::vector<Outcome> split;
  std::string buffer;
  std::uint32_t state = control * 2654435761u + 1;
  std::size_t pos = 0;
  bool open = true;
  while (pos < bytes.size() && open) {
    state = state * 1103515245u + 12345u;
    const std::size_t piece = 1 + (state >> 16) % ((control & 0x0F) + 1);
    buffer.append(bytes.substr(pos, piece));
    pos += piece;
    open = drain(buffer, limits, split);
  }
  FUZZ_CHECK(split == whole);
  return 0;
}
