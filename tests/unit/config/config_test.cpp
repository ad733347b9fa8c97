#include "config/config.h"

#include <string>

#include <doctest/doctest.h>

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
