// Fixed-length byte compares for the scan's parsers: a word at a time and inline, where a
// call to memcmp per field would cost more than the compare.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace mailconfd::cutover {

// The n bytes at a equal those at b. n is a constant: when b is a literal, its words are
// constants once inlined. The words overlap rather than read past the n bytes, and each is
// one load of the bytes as they are (no copy through the stack, so no stall on a load of
// several smaller stores).
template <std::size_t n>
inline bool same_bytes(const char* a, const char* b) {
  auto word = [](const char* p, auto zero) {
    decltype(zero) w = 0;
    std::memcpy(&w, p, sizeof w);
    return w;
  };
  if constexpr (n >= 8) {
    for (std::size_t i = 0; i + 8 <= n; i += 8) {
      if (word(a + i, std::uint64_t{}) != word(b + i, std::uint64_t{})) return false;
    }
    if constexpr (n % 8 != 0) {
      return word(a + n - 8, std::uint64_t{}) == word(b + n - 8, std::uint64_t{});
    }
    return true;
  } else if constexpr (n >= 4) {
    return word(a, std::uint32_t{}) == word(b, std::uint32_t{}) &&
           word(a + n - 4, std::uint32_t{}) == word(b + n - 4, std::uint32_t{});
  } else if constexpr (n >= 2) {
    return word(a, std::uint16_t{}) == word(b, std::uint16_t{}) && a[n - 1] == b[n - 1];
  } else if constexpr (n == 1) {
    return a[0] == b[0];
  } else {
    return true;
  }
}

}  // namespace mailconfd::cutover
