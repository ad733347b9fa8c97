// SipHash-1-3 with one random key per process, for every table whose keys come from outside
// (hosted domains a customer can add through a panel, mailbox addresses): names crafted to
// collide under one process's key do not collide under another's, so nobody can turn a
// lookup into a walk through the whole table.
#pragma once

#include <cstdint>
#include <string_view>

namespace mailconfd {

struct HashKey {
  std::uint64_t k0 = 0;
  std::uint64_t k1 = 0;
};

// The process's key: drawn from the kernel's random source on first use, never logged.
const HashKey& process_hash_key();

// SipHash-1-3 of data under key (Aumasson and Bernstein; the variant Rust's HashMap uses).
std::uint64_t siphash13(const HashKey& key, std::string_view data);

// siphash13 of 16 bytes given as two little-endian words (an IPv6 address), without the
// loops: the same value as siphash13 of those bytes.
std::uint64_t siphash13_16(const HashKey& key, std::uint64_t m0, std::uint64_t m1);

// siphash13 under the process's key.
inline std::uint64_t keyed_hash(std::string_view data) {
  return siphash13(process_hash_key(), data);
}

}  // namespace mailconfd
