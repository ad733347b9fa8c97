#include "config/keyed_hash.h"

#include <sys/random.h>

#include <cstring>

namespace mailconfd {
namespace {

constexpr std::uint64_t rotl(std::uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

struct State {
  std::uint64_t v0, v1, v2, v3;
  explicit State(const HashKey& key)
      : v0(key.k0 ^ 0x736f6d6570736575ULL),
        v1(key.k1 ^ 0x646f72616e646f6dULL),
        v2(key.k0 ^ 0x6c7967656e657261ULL),
        v3(key.k1 ^ 0x7465646279746573ULL) {}
  // One message word, one compression round (SipHash-1-3).
  void absorb(std::uint64_t m) {
    v3 ^= m;
    round();
    v0 ^= m;
  }
  // The last word (length byte on top), then three finalization rounds.
  std::uint64_t finish(std::uint64_t last) {
    absorb(last);
    v2 ^= 0xFF;
    round();
    round();
    round();
    return v0 ^ v1 ^ v2 ^ v3;
  }
  void round() {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  }
};

HashKey random_key() {
  HashKey key;
  unsigned char bytes[16] = {};
  std::size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0) got += static_cast<std::size_t>(n);
    // getrandom(2) without GRND_NONBLOCK only fails on EINTR here (the buffer is small).
  }
  std::memcpy(&key.k0, bytes, 8);
  std::memcpy(&key.k1, bytes + 8, 8);
  return key;
}

}  // namespace

const HashKey& process_hash_key() {
  static const HashKey key = random_key();
  return key;
}

std::uint64_t siphash13(const HashKey& key, std::string_view data) {
  State s(key);
  const std::size_t full = data.size() & ~std::size_t{7};
  for (std::size_t i = 0; i < full; i += 8) {
    std::uint64_t m = 0;
    std::memcpy(&m, data.data() + i, 8);  // little-endian hosts (x86-64, arm64)
    s.absorb(m);
  }
  std::uint64_t last = static_cast<std::uint64_t>(data.size() & 0xFF) << 56;
  const std::size_t tail = data.size() - full;
  if (tail != 0 && full != 0) {
    // The last 8 bytes in one load; the tail bytes are its top ones.
    std::uint64_t m = 0;
    std::memcpy(&m, data.data() + data.size() - 8, 8);
    last |= m >> (8 * (8 - tail));
  } else {
    for (std::size_t i = full; i < data.size(); ++i) {
      last |= static_cast<std::uint64_t>(static_cast<unsigned char>(data[i])) << (8 * (i - full));
    }
  }
  return s.finish(last);
}

std::uint64_t siphash13_16(const HashKey& key, std::uint64_t m0, std::uint64_t m1) {
  State s(key);
  s.absorb(m0);
  s.absorb(m1);
  return s.finish(std::uint64_t{16} << 56);
}

}  // namespace mailconfd
