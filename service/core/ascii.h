// ASCII case folding and character classes for names (DNS names, protocol keywords, header
// names, SMTP and IMAP replies, login names): A-Z and a-z only, never the locale's idea of a
// letter. One place for every layer.
#pragma once

#include <string>
#include <string_view>

namespace mailconfd {

constexpr char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
constexpr char ascii_upper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}
constexpr bool ascii_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// text in lower case into out (reused by hot loops: no allocation once out has grown).
inline void ascii_lower_into(std::string& out, std::string_view text) {
  out.assign(text);
  for (char& c : out) c = ascii_lower(c);
}
inline std::string ascii_lower(std::string_view text) {
  std::string out;
  ascii_lower_into(out, text);
  return out;
}
inline std::string ascii_upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = ascii_upper(c);
  return out;
}

// Equal but for the case of ASCII letters.
constexpr bool ascii_iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}
constexpr bool ascii_istarts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && ascii_iequals(text.substr(0, prefix.size()), prefix);
}

}  // namespace mailconfd
