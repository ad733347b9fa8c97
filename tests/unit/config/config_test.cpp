#include "config/config.h"

#include <cstring>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "config/keyed_hash.h"

using namespace mailconfd;

TEST_CASE("DomainTable finds what was inserted and refuses duplicates") {
  DomainTable t;
  CHECK(t.find("example.com") == nullptr);
  CHECK(t.insert("example.com", {1, 2}));
  CHECK_FALSE(t.insert("example.com", {3, 4}));
  REQUIRE(t.find("example.com") != nullptr);
  CHECK(t.find("example.com")->provider == 1);
  CHECK(t.find("example.com")->hosts == 2);
  CHECK(t.find("example.co") == nullptr);
  CHECK(t.find("") == nullptr);
  CHECK(t.size() == 1);
}

TEST_CASE("DomainTable keeps every entry across growth, with or without reserve") {
  for (bool reserve : {false, true}) {
    DomainTable t;
    if (reserve) t.reserve(50'000);
    for (std::uint32_t i = 0; i < 50'000; ++i) {
      REQUIRE(t.insert("d" + std::to_string(i) + ".example", {i, 0}));
    }
    CHECK(t.size() == 50'000);
    for (std::uint32_t i = 0; i < 50'000; i += 997) {
      const DomainEntry* e = t.find("d" + std::to_string(i) + ".example");
      REQUIRE(e != nullptr);
      CHECK(e->provider == i);
    }
    CHECK(t.find("d50000.example") == nullptr);
  }
}

TEST_CASE("DomainTable::sorted lists every domain in order") {
  DomainTable t;
  for (auto d : {"b.example", "a.example", "c.example"}) t.insert(d, {});
  const auto names = t.sorted();
  REQUIRE(names.size() == 3);
  CHECK(names[0] == "a.example");
  CHECK(names[1] == "b.example");
  CHECK(names[2] == "c.example");
}

namespace {

// The hash the domain table used before it was keyed: 32-bit FNV-1a, the same for every
// process, so names colliding under it could be computed once and sent by anybody.
std::uint32_t fnv1a(std::string_view s) {
  std::uint32_t h = 2166136261u;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  return h;
}

// count names whose FNV-1a hashes agree in their low 16 bits: under the old table every one
// of them started probing at the same slot (the index is smaller than 2^16 here).
std::vector<std::string> fnv_colliding_names(std::size_t count) {
  std::vector<std::string> names;
  const std::uint32_t target = fnv1a("c0.example") & 0xFFFF;
  for (std::uint64_t i = 0; names.size() < count; ++i) {
    std::string name = "c" + std::to_string(i) + ".example";
    if ((fnv1a(name) & 0xFFFF) == target) names.push_back(std::move(name));
  }
  return names;
}

}  // namespace

TEST_CASE("DomainTable's keyed hash keeps names colliding under FNV-1a apart") {
  const std::vector<std::string> names = fnv_colliding_names(200);
  DomainTable table;
  for (std::uint32_t i = 0; i < names.size(); ++i) REQUIRE(table.insert(names[i], {i, 0}));
  for (std::uint32_t i = 0; i < names.size(); ++i) {
    const DomainEntry* entry = table.find(names[i]);
    REQUIRE(entry != nullptr);
    CHECK(entry->provider == i);
  }
  // Unkeyed, all 200 share one home slot: the last one inserted walks 200 slots. Keyed, they
  // spread like random names: 200 random names in 512 slots gave at most 24 in 20,000 runs.
  CHECK(table.max_probe() <= 48);
  CHECK(table.find("c1.example") == nullptr);
}

TEST_CASE("siphash13 depends on the key and on every byte") {
  const HashKey a{1, 2};
  const HashKey b{1, 3};
  CHECK(siphash13(a, "customer.example") == siphash13(a, "customer.example"));
  CHECK(siphash13(a, "customer.example") != siphash13(b, "customer.example"));
  CHECK(siphash13(a, "customer.example") != siphash13(a, "customer.exampld"));
  CHECK(siphash13(a, "") != siphash13(a, std::string_view("\0", 1)));
  CHECK(keyed_hash("x.example") == siphash13(process_hash_key(), "x.example"));
}

namespace {

// SipHash-1-3 as the paper writes it, one byte at a time: the reference for the word loads.
std::uint64_t reference_siphash13(const HashKey& key, std::string_view data) {
  auto rotl = [](std::uint64_t x, int b) { return (x << b) | (x >> (64 - b)); };
  std::uint64_t v0 = key.k0 ^ 0x736f6d6570736575ULL, v1 = key.k1 ^ 0x646f72616e646f6dULL,
                v2 = key.k0 ^ 0x6c7967656e657261ULL, v3 = key.k1 ^ 0x7465646279746573ULL;
  auto round = [&] {
    v0 += v1, v1 = rotl(v1, 13), v1 ^= v0, v0 = rotl(v0, 32);
    v2 += v3, v3 = rotl(v3, 16), v3 ^= v2;
    v0 += v3, v3 = rotl(v3, 21), v3 ^= v0;
    v2 += v1, v1 = rotl(v1, 17), v1 ^= v2, v2 = rotl(v2, 32);
  };
  std::size_t i = 0;
  for (; i + 8 <= data.size(); i += 8) {
    std::uint64_t m = 0;
    for (int b = 0; b < 8; ++b) {
      m |= static_cast<std::uint64_t>(static_cast<unsigned char>(data[i + b])) << (8 * b);
    }
    v3 ^= m, round(), v0 ^= m;
  }
  std::uint64_t m = static_cast<std::uint64_t>(data.size() & 0xFF) << 56;
  for (std::size_t b = 0; i + b < data.size(); ++b) {
    m |= static_cast<std::uint64_t>(static_cast<unsigned char>(data[i + b])) << (8 * b);
  }
  v3 ^= m, round(), v0 ^= m;
  v2 ^= 0xFF, round(), round(), round();
  return v0 ^ v1 ^ v2 ^ v3;
}

}  // namespace

TEST_CASE("siphash13 gives the reference values for every length and tail") {
  const HashKey key{0x0706050403020100ULL, 0x0F0E0D0C0B0A0908ULL};
  std::string data;
  for (int size = 0; size <= 40; ++size) {
    CHECK(siphash13(key, data) == reference_siphash13(key, data));
    data += static_cast<char>(0xF0 - size * 7);
  }
  // The 16-byte form an IP address is hashed with.
  const std::string ip = data.substr(3, 16);
  std::uint64_t words[2];
  std::memcpy(words, ip.data(), sizeof words);
  CHECK(siphash13_16(key, words[0], words[1]) == siphash13(key, ip));
  CHECK(siphash13_16(key, words[0], words[1]) == reference_siphash13(key, ip));
}

TEST_CASE("LoginTable finds each mailbox's login and refuses duplicates") {
  LoginTable logins;
  CHECK_FALSE(logins.find("alice@customer.example"));
  CHECK(logins.insert("alice@customer.example", "web12p3"));
  CHECK_FALSE(logins.insert("alice@customer.example", "web12p4"));
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(
        logins.insert("u" + std::to_string(i) + "@customer.example", "web" + std::to_string(i)));
  }
  CHECK(logins.size() == 1001);
  CHECK(logins.find("alice@customer.example") == std::optional<std::string_view>("web12p3"));
  CHECK(logins.find("u999@customer.example") == std::optional<std::string_view>("web999"));
  CHECK_FALSE(logins.find("u1000@customer.example"));
  CHECK(login_key("Alice.B", "customer.example") == "alice.b@customer.example");
}
