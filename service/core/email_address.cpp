#include "core/email_address.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <idn2.h>

#include "core/ascii.h"

namespace mailconfd {
namespace {

constexpr std::size_t kMaxLocal = 64;     // RFC 5321 4.5.3.1.1
constexpr std::size_t kMaxDomain = 253;   // RFC 1035 name length without the root dot
constexpr std::size_t kMaxAddress = 254;  // RFC 5321 path limit minus the angle brackets
constexpr std::size_t kMaxLabel = 63;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes one UTF-8 sequence at text[i]; returns its length (0 if invalid) and the code point.
std::size_t decode_utf8(std::string_view text, std::size_t i, char32_t& cp) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(i);
  std::size_t len = 0;
  char32_t min = 0;
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  } else if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > text.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

// Characters that make text render differently from what it is: C0/C1 controls, DEL,
// zero-width and bidi controls, BOM, line/paragraph separators.
bool deceptive(char32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || (cp >= 0x200B && cp <= 0x200F) ||
         (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x206F) || cp == 0xFEFF;
}

// RFC 5322 atext (ASCII part).
bool atext(char c) {
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
    case '/':
    case '=':
    case '?':
    case '^':
    case '_':
    case '`':
    case '{':
    case '|':
    case '}':
    case '~':
      return true;
    default:
      return false;
  }
}

bool valid_local_part(std::string_view local) {
  if (local.empty() || local.size() > kMaxLocal) return false;
  if (local.front() == '.' || local.back() == '.') return false;
  for (std::size_t i = 0; i < local.size();) {
    const char c = local[i];
    if (c == '.') {
      if (i + 1 < local.size() && local[i + 1] == '.') return false;
      ++i;
      continue;
    }
    if (static_cast<unsigned char>(c) < 0x80) {
      if (!atext(c)) return false;
      ++i;
      continue;
    }
    char32_t cp = 0;
    const std::size_t len = decode_utf8(local, i, cp);
    if (len == 0 || deceptive(cp)) return false;
    i += len;
  }
  return true;
}

}  // namespace

bool valid_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    // Eight ASCII bytes at a time: nothing to decode.
    if (i + 8 <= text.size()) {
      std::uint64_t word = 0;
      std::memcpy(&word, text.data() + i, sizeof word);
      if ((word & 0x8080808080808080ULL) == 0) {
        i += 8;
        continue;
      }
    }
    if (static_cast<unsigned char>(text[i]) < 0x80) {  // ASCII runs: no decoding needed
      ++i;
      continue;
    }
    char32_t cp = 0;
    const std::size_t len = decode_utf8(text, i, cp);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::optional<std::string> percent_decode(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '%') {
      out.push_back(value[i]);
      continue;
    }
    if (i + 2 >= value.size()) return std::nullopt;
    const int hi = hex_value(value[i + 1]);
    const int lo = hex_value(value[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// Lowercases an ASCII name and checks LDH labels of 1..63 octets in one pass.
static bool lower_ldh(std::string_view in, std::string& out) {
  if (in.empty() || in.size() > kMaxDomain) return false;
  out.resize(in.size());
  std::size_t label = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    c = ascii_lower(c);
    if (c == '.') {
      if (label == 0 || out[i - 1] == '-') return false;
      label = 0;
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
      if (c == '-' && label == 0) return false;
      if (++label > kMaxLabel) return false;
    } else {
      return false;
    }
    out[i] = c;
  }
  return label != 0 && out.back() != '-';
}

std::optional<std::string> normalize_domain(std::string_view domain) {
  if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
  if (domain.empty() || domain.size() > 1024) return std::nullopt;
  std::string ascii;
  bool plain_ascii = true;
  for (char c : domain) plain_ascii = plain_ascii && static_cast<unsigned char>(c) < 0x80;
  if (plain_ascii) {
    if (!lower_ldh(domain, ascii)) return std::nullopt;
    return ascii;
  }
  if (!valid_utf8(domain)) return std::nullopt;
  // UTS #46 non-transitional processing maps fullwidth dots, case and compatibility forms,
  // then encodes each label as an A-label ("xn--…").
  const std::string input(domain);
  char* output = nullptr;
  const int rc = idn2_to_ascii_8z(
      input.c_str(), &output, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL | IDN2_USE_STD3_ASCII_RULES);
  std::unique_ptr<char, decltype(&idn2_free)> owned(output, &idn2_free);
  if (rc != IDN2_OK || output == nullptr) return std::nullopt;
  if (!lower_ldh(output, ascii)) return std::nullopt;
  return ascii;
}

std::string domain_to_unicode(std::string_view domain) {
  if (domain.find("xn--") == std::string_view::npos) return std::string(domain);
  std::string out;
  while (!domain.empty()) {
    const auto dot = domain.find('.');
    const std::string label(domain.substr(0, dot));
    char* decoded = nullptr;
    const int rc = label.starts_with("xn--") ? idn2_to_unicode_8z8z(label.c_str(), &decoded, 0)
                                             : IDN2_ENCODING_ERROR;
    std::unique_ptr<char, decltype(&idn2_free)> owned(decoded, &idn2_free);
    // A decoded label that carries deceptive characters would render differently from what
    // it is: keep the A-label then.
    bool shown = rc == IDN2_OK && decoded != nullptr && valid_utf8(decoded);
    if (shown) {
      const std::string_view text(decoded);
      for (std::size_t i = 0; i < text.size() && shown;) {
        char32_t cp = 0;
        const std::size_t len = decode_utf8(text, i, cp);
        shown = len != 0 && !deceptive(cp);
        i += len == 0 ? 1 : len;
      }
    }
    out += shown ? std::string(decoded) : label;
    if (dot == std::string_view::npos) break;
    out += '.';
    domain.remove_prefix(dot + 1);
  }
  return out;
}

std::string EmailAddress::display() const { return local + '@' + domain_to_unicode(domain); }

std::optional<EmailAddress> parse_email(std::string_view address) {
  if (address.empty() || address.size() > 1024) return std::nullopt;
  const auto at = address.rfind('@');
  if (at == std::string_view::npos) return std::nullopt;
  const std::string_view local = address.substr(0, at);
  if (!valid_local_part(local)) return std::nullopt;  // also refuses a second '@'
  auto domain = normalize_domain(address.substr(at + 1));
  if (!domain) return std::nullopt;
  if (local.size() + 1 + domain->size() > kMaxAddress) return std::nullopt;
  return EmailAddress{std::string(local), std::move(*domain)};
}

std::optional<EmailAddress> parse_pasted_email(std::string_view text) {
  constexpr std::string_view kSpace = " \t\r\n";
  auto trim = [&](std::string_view s) {
    const auto first = s.find_first_not_of(kSpace);
    if (first == std::string_view::npos) return std::string_view();
    return s.substr(first, s.find_last_not_of(kSpace) - first + 1);
  };
  text = trim(text);
  if (!text.empty() && text.back() == '>') {
    const auto open = text.rfind('<');
    if (open == std::string_view::npos) return std::nullopt;
    text = trim(text.substr(open + 1, text.size() - open - 2));
  }
  if (text.size() >= 7) {
    if (ascii_iequals(text.substr(0, 7), "mailto:")) {
      text.remove_prefix(7);
      text = text.substr(0, text.find('?'));
      // A mailto: URI percent-encodes (RFC 6068); a pasted one may carry %40 and the like.
      if (text.find('%') != std::string_view::npos) {
        const auto decoded = percent_decode(text);
        return decoded ? parse_email(*decoded) : std::nullopt;
      }
    }
  }
  return parse_email(text);
}

std::optional<std::string> domain_from_host(std::string_view host) {
  if (host.empty() || host.front() == '[') return std::nullopt;  // IP literal: no domain
  if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
    const std::string_view port = host.substr(colon + 1);
    if (port.empty() || port.size() > 5) return std::nullopt;
    for (char c : port) {
      if (c < '0' || c > '9') return std::nullopt;
    }
    host = host.substr(0, colon);
  }
  auto domain = normalize_domain(host);
  if (!domain) return std::nullopt;
  for (std::string_view prefix : {"autoconfig.", "autodiscover."}) {
    if (domain->size() > prefix.size() && domain->starts_with(prefix)) {
      domain->erase(0, prefix.size());
      break;
    }
  }
  return domain;
}

}  // namespace mailconfd
