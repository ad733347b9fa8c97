// Renewal times: two thirds into the lifetime, spread per name.
#include "acme/issuer.h"

#include <chrono>
#include <memory>
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

TEST_CASE("acme: the on-demand queue takes each name once and is bounded") {
  // The account key cannot be written there, so the issuer thread waits (an hour) without
  // taking anything from the queue: what request() answers is all there is to see.
  mailconfd::acme::IssuerOptions options;
  options.directory = "https://127.0.0.1:1/dir";
  options.storage = "/proc/mailconfd-no-such-dir/acme";
  options.names = {"autodiscover.example.net"};
  options.max_requests = 2;
  const auto before = mailconfd::acme::demands();
  {
    mailconfd::acme::Issuer issuer(options, std::make_shared<mailconfd::acme::Tokens>(),
                                   [](const std::string&, const std::string&) {});
    using mailconfd::acme::Demand;
    CHECK(issuer.request("autoconfig.a.example") == Demand::Queued);
    CHECK(issuer.request("autoconfig.a.example") == Demand::Known);
    CHECK(issuer.request("autodiscover.example.net") == Demand::Known);  // wanted anyway
    CHECK(issuer.request("autoconfig.b.example") == Demand::Queued);
    CHECK(issuer.request("autoconfig.c.example") == Demand::Full);
    CHECK(issuer.request("autoconfig.c.example") == Demand::Full);  // not remembered
  }  // stops the waiting thread at once
  const auto after = mailconfd::acme::demands();
  CHECK(after[0] - before[0] == 2);
  CHECK(after[1] - before[1] == 2);
  CHECK(after[2] - before[2] == 2);
}
