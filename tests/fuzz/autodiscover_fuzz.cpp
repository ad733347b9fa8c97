// Fuzzes the Outlook Autodiscover POX request parser (parse_autodiscover_request), then the
// address it yields through parse_email, and json_quote on the raw bytes; the common-form
// scanner against the general reading. A parsed address
// never carries a control character, and a quoted JSON string never carries a raw one.
#include <string>
#include <string_view>

#include "core/email_address.h"
#include "fuzz.h"
#include "render/autodiscover.h"

using namespace mailconfd;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const render::PoxRequest request = render::parse_autodiscover_request(body);
  if (request.kind != render::PoxRequestKind::Outlook) {
    FUZZ_CHECK(request.email_address.empty());
  } else {
    FUZZ_CHECK(size <= render::kMaxPoxRequestBytes);
    FUZZ_CHECK(request.email_address.size() <= size);
    FUZZ_CHECK(valid_utf8(request.email_address));
    for (char c : request.email_address) FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20);
    if (const auto address = parse_email(request.email_address)) {
      FUZZ_CHECK(normalize_domain(address->domain) == address->domain);
    }
  }
  // Where the scanner reads the common form, the general (pugixml) reading agrees. A NUL ends
  // pugixml's text early; acceptable_bytes refuses it before either reading runs.
  if (const auto common = render::parse_autodiscover_common(body);
      common && body.find('\0') == std::string_view::npos) {
    FUZZ_CHECK(*common == render::parse_autodiscover_general(body));
  }
  const std::string quoted = render::json_quote(body.substr(0, 4096));
  FUZZ_CHECK(quoted.size() >= 2 && quoted.front() == '"' && quoted.back() == '"');
  FUZZ_CHECK(valid_utf8(quoted));
  for (char c : quoted) FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20);
  return 0;
}
