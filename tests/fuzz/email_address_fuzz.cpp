// Fuzzes the address path of every request: percent_decode → parse_email, plus
// normalize_domain and domain_from_host on the raw bytes.
#include <string>
#include <string_view>

#include "core/email_address.h"
#include "fuzz.h"
#include "render/xml.h"

using namespace mailconfd;

namespace {

bool has_control(std::string_view s) {
  for (char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7F) return true;
  }
  return false;
}

// Invariants of a normalized domain: a lowercase LDH A-label that normalizes to itself.
void check_domain(const std::string& domain) {
  FUZZ_CHECK(!domain.empty() && domain.size() <= 253);
  for (char c : domain) {
    FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.');
  }
  const auto again = normalize_domain(domain);
  FUZZ_CHECK(again && *again == domain);
}

void check_address(std::string_view text) {
  const auto address = parse_email(text);
  if (!address) return;
  FUZZ_CHECK(!address->local.empty() && address->local.size() <= 64);
  FUZZ_CHECK(address->full().size() <= 254);
  FUZZ_CHECK(valid_utf8(address->local) && !has_control(address->local));
  FUZZ_CHECK(address->local.find('@') == std::string::npos);
  check_domain(address->domain);
  // Parsing the normalized form gives the same address.
  const auto again = parse_email(address->full());
  FUZZ_CHECK(again && again->local == address->local && again->domain == address->domain);
  // What the renderer would write: no markup survives escaping.
  const std::string escaped = render::xml::escape(address->full());
  FUZZ_CHECK(escaped.find_first_of("<>\"") == std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_address(input);
  if (const auto decoded = percent_decode(input)) {
    FUZZ_CHECK(decoded->size() <= input.size());
    check_address(*decoded);
  }
  if (const auto domain = normalize_domain(input)) check_domain(*domain);
  if (const auto domain = domain_from_host(input)) check_domain(*domain);
  if (valid_utf8(input)) {
    const std::string escaped = render::xml::escape(input);
    FUZZ_CHECK(escaped.find('<') == std::string::npos);
    FUZZ_CHECK(valid_utf8(escaped));
  }
  return 0;
}
