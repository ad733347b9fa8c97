// Fuzzes query-string extraction as the autoconfig handler uses it: query_param for
// emailaddress, then percent_decode and parse_email. The first input byte picks the name.
#include <array>
#include <string>
#include <string_view>

#include "core/ascii.h"
#include "core/email_address.h"
#include "fuzz.h"
#include "http/request.h"
#include "http/routes.h"

using namespace mailconfd;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  constexpr std::array<std::string_view, 4> kNames{"emailaddress", "EmailAddress", "x", ""};
  const std::string_view name = kNames[data[0] % kNames.size()];
  const std::string_view query(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto value = http::query_param(query, name);
  if (!value) return 0;
  // The value is a view into the query, after "name=" (or empty for a bare name), and stops
  // at the next '&'.
  FUZZ_CHECK(value->empty() || (value->data() >= query.data() &&
                                value->data() + value->size() <= query.data() + query.size()));
  FUZZ_CHECK(value->find('&') == std::string_view::npos);
  if (!value->empty()) {
    const std::size_t offset = static_cast<std::size_t>(value->data() - query.data());
    FUZZ_CHECK(offset >= name.size() + 1 && query[offset - 1] == '=');
    FUZZ_CHECK(ascii_iequals(query.substr(offset - 1 - name.size(), name.size()), name));
  }
  if (const auto decoded = percent_decode(*value)) {
    if (const auto address = parse_email(*decoded)) {
      FUZZ_CHECK(normalize_domain(address->domain) == address->domain);
    }
  }
  return 0;
}
