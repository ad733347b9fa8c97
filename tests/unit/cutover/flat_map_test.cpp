#include "cutover/flat_map.h"

#include <cstdint>
#include <random>
#include <unordered_map>

#include <doctest/doctest.h>

using namespace mailconfd::cutover;

namespace {

// Every key lands in one of four home slots: long clusters that wrap around the table's end.
struct CollidingHash {
  std::size_t operator()(std::uint32_t key) const { return (key % 4) * 4 + 13; }
};

struct MixHash {
  std::size_t operator()(std::uint32_t key) const {
    std::uint64_t h = key * 0x9E3779B97F4A7C15ULL;
    return static_cast<std::size_t>(h ^ (h >> 31));
  }
};

// Applies the same random inserts and erases to a FlatMap and to std::unordered_map, and
// checks after each that both hold exactly the same entries.
template <typename Hash>
void against_reference(std::uint32_t key_range, int steps) {
  FlatMap<std::uint32_t, int, Hash> map;
  std::unordered_map<std::uint32_t, int> reference;
  std::mt19937 random(14);
  for (int step = 0; step < steps; ++step) {
    const std::uint32_t key = random() % key_range;
    if (random() % 3 == 0) {
      CHECK(map.erase(key) == (reference.erase(key) == 1));
    } else {
      const auto [value, inserted] = map.try_emplace(key);
      CHECK(inserted == (reference.count(key) == 0));
      *value = step;
      reference[key] = step;
    }
    REQUIRE(map.size() == reference.size());
    if (step % 97 == 0 || step == steps - 1) {
      for (std::uint32_t k = 0; k < key_range; ++k) {
        const int* found = map.find(k);
        const auto it = reference.find(k);
        REQUIRE((found != nullptr) == (it != reference.end()));
        if (found != nullptr) CHECK(*found == it->second);
      }
      std::size_t visited = 0;
      map.for_each([&](std::uint32_t k, int v) {
        ++visited;
        CHECK(reference.at(k) == v);
      });
      CHECK(visited == reference.size());
    }
  }
}

}  // namespace

TEST_CASE("FlatMap finds, inserts and erases like std::unordered_map") {
  FlatMap<std::uint32_t, int, MixHash> map;
  CHECK(map.empty());
  CHECK(map.find(7) == nullptr);
  CHECK_FALSE(map.erase(7));
  map[7] = 70;
  CHECK(map.try_emplace(7).second == false);
  CHECK(*map.find(7) == 70);
  CHECK(map.size() == 1);
  CHECK(map.erase(7));
  CHECK(map.find(7) == nullptr);
  CHECK(map.empty());
  against_reference<MixHash>(3000, 20000);
}

TEST_CASE("FlatMap keeps every entry findable when erasing inside clusters that wrap around") {
  against_reference<CollidingHash>(40, 4000);
}
