// ASCII case folding for names (DNS names, protocol keywords, SMTP replies): A-Z only, never
// the locale's idea of a letter.
#pragma once

#include <string>
#include <string_view>

namespace mailconfd {

inline std::string ascii_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace mailconfd
