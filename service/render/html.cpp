#include "render/html.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

namespace mailconfd::render::html {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the UTF-8 sequence at text[i] (1..4), or 0 if it is not a valid one.
std::size_t sequence_length(std::string_view text, std::size_t i, char32_t& code) {
  const auto b0 = static_cast<unsigned char>(text[i]);
  std::size_t length = 0;
  if (b0 < 0x80) {
    code = b0;
    return 1;
  }
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
    code = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    code = b0 & 0x0F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    code = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    const auto b = static_cast<unsigned char>(text[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    code = (code << 6) | (b & 0x3F);
  }
  const bool overlong = (length == 3 && code < 0x800) || (length == 4 && code < 0x10000);
  const bool surrogate = code >= 0xD800 && code <= 0xDFFF;
  if (overlong || surrogate || code > 0x10FFFF) return 0;
  return length;
}

bool hidden_or_control(char32_t code) {
  return code < 0x20 || (code >= 0x7F && code <= 0x9F) || (code >= 0x202A && code <= 0x202E) ||
         (code >= 0x2066 && code <= 0x2069);
}

}  // namespace

void escape_to(std::string_view text, std::string& out) {
  std::size_t i = 0;
  while (i < text.size()) {
    char32_t code = 0;
    const std::size_t length = sequence_length(text, i, code);
    if (length == 0) {
      out.append(kReplacement);
      ++i;
      continue;
    }
    switch (code) {
      case '&':
        out.append("&amp;");
        break;
      case '<':
        out.append("&lt;");
        break;
      case '>':
        out.append("&gt;");
        break;
      case '"':
        out.append("&quot;");
        break;
      case '\'':
        out.append("&#39;");
        break;
      default:
        if (hidden_or_control(code)) {
          out.append(kReplacement);
        } else {
          out.append(text.substr(i, length));
        }
    }
    i += length;
  }
}

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  escape_to(text, out);
  return out;
}

std::string url_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if ((b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || b == '-' ||
        b == '.' || b == '_' || b == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 0x0F]);
    }
  }
  return out;
}

std::string content_security_policy(std::string_view css) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(css.data()), css.size(), digest);
  unsigned char base64[4 * ((SHA256_DIGEST_LENGTH + 2) / 3) + 1];
  const int n = EVP_EncodeBlock(base64, digest, SHA256_DIGEST_LENGTH);
  std::string csp = "default-src 'none'; style-src 'sha256-";
  csp.append(reinterpret_cast<const char*>(base64), static_cast<std::size_t>(n));
  csp += "'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
  return csp;
}

}  // namespace mailconfd::render::html
