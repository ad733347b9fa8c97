// Renewal times: two thirds into the lifetime, spread per name.
#include "acme/issuer.h"

#include <chrono>
#include <set>
#include <string>

#include <doctest/doctest.h>

TEST_CASE("acme: renewal at two thirds of the lifetime, spread by at most a thirtieth per name") {
  using namespace std::chrono;
  const system_clock::time_point from = system_clock::from_time_t(1'800'000'000);
  const auto until = from + hours(24 * 90);
  std::set<system_clock::time_point> seen;
  for (int i = 0; i < 200; ++i) {
    const std::string name = "autoconfig.customer" + std::to_string(i) + ".example";
    const auto at = mailconfd::acme::renewal_time(from, until, name);
    CHECK(at >= from + hours(24 * 60) - hours(24 * 3));
    CHECK(at <= from + hours(24 * 60) + hours(24 * 3));
    CHECK(at == mailconfd::acme::renewal_time(from, until, name));  // stable for a name
    seen.insert(at);
  }
  // Spread: 200 names issued in one burst do not fall due at one moment.
  CHECK(seen.size() > 150);
  const auto earliest = *seen.begin(), latest = *seen.rbegin();
  CHECK(latest - earliest > hours(24 * 5));
}
