// What the issuer learnt from the CA as rows of the shared storage (mailconfd_acme_hold,
// mailconfd_acme_renewal) and back: exact values, rounding, and the rows that are refused.
#include "acme_store/memory.h"

#include <chrono>

#include <doctest/doctest.h>

using mailconfd::acme_store::from_row;
using mailconfd::acme_store::StoredBackoff;
using mailconfd::acme_store::StoredHold;
using mailconfd::acme_store::StoredRenewal;
using mailconfd::acme_store::to_row;

namespace {

using SystemClock = std::chrono::system_clock;
SystemClock::time_point at(std::int64_t seconds) {
  return SystemClock::time_point(std::chrono::seconds(seconds));
}

}  // namespace

TEST_CASE("acme_store: the CA's hold as a row and back") {
  mailconfd::acme::Hold hold{at(1'800'000'000) + std::chrono::milliseconds(1),
                             std::chrono::seconds(600), "the CA failed"};
  const StoredHold row = to_row(hold);
  // Rounded up: a replica that reads it never orders before the CA allowed.
  CHECK(row.until == 1'800'000'001);
  CHECK(row.ca_delay == 600);
  CHECK(row.reason == "the CA failed");
  const auto back = from_row(row);
  REQUIRE(back);
  CHECK(back->until == at(1'800'000'001));
  CHECK(back->ca_delay == std::chrono::seconds(600));
  CHECK(back->reason == "the CA failed");
  CHECK(to_row(mailconfd::acme::Hold{at(1'800'000'000), {}, "Retry-After"}).until == 1'800'000'000);

  CHECK(!from_row(StoredHold{1'800'000'000, -1, "x"}));
  CHECK(!from_row(StoredHold{1'800'000'000, 86'401, "x"}));
  CHECK(from_row(StoredHold{0, 86'400, ""}));
}

TEST_CASE("acme_store: a renewalInfo answer as a row and back") {
  const mailconfd::acme::RenewalState state{"aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE",
                                            {at(1'800'000'000), at(1'800'086'400)},
                                            at(1'800'040'000),
                                            at(1'800'000'000) + std::chrono::milliseconds(500)};
  const StoredRenewal row = to_row("autoconfig.customer.example", state);
  CHECK(row.name == "autoconfig.customer.example");
  CHECK(row.cert_id == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
  CHECK(row.window_start == 1'800'000'000);
  CHECK(row.window_end == 1'800'086'400);
  CHECK(row.renew_at == 1'800'040'000);
  CHECK(row.ask_again == 1'800'000'001);  // rounded up: not asked again before its Retry-After
  const auto back = from_row(row);
  REQUIRE(back);
  CHECK(back->cert_id == state.cert_id);
  CHECK(back->window.start == state.window.start);
  CHECK(back->window.end == state.window.end);
  CHECK(back->renew_at == state.renew_at);
  CHECK(back->ask_again == at(1'800'000'001));

  StoredRenewal bad = row;
  bad.cert_id.clear();
  CHECK(!from_row(bad));
  bad = row;
  bad.window_end = bad.window_start;
  CHECK(!from_row(bad));
  bad = row;
  bad.renew_at = bad.window_end + 1;
  CHECK(!from_row(bad));
  bad = row;
  bad.renew_at = bad.window_start - 1;
  CHECK(!from_row(bad));
  bad = row;
  bad.renew_at = bad.window_start;
  CHECK(from_row(bad));
}

TEST_CASE("acme_store: a name's wait after a failed order as a row and back") {
  const mailconfd::acme::NameBackoff wait{at(1'800'000'000) + std::chrono::milliseconds(1),
                                          std::chrono::seconds(600)};
  const StoredBackoff row = to_row("autoconfig.customer.example", wait);
  CHECK(row.name == "autoconfig.customer.example");
  CHECK(row.not_before == 1'800'000'001);  // rounded up: never ordered before the wait ends
  CHECK(row.delay == 600);
  const auto back = from_row(row);
  REQUIRE(back);
  CHECK(back->not_before == at(1'800'000'001));
  CHECK(back->delay == std::chrono::seconds(600));

  CHECK(!from_row(StoredBackoff{"a.example", 1'800'000'000, 0}));
  CHECK(!from_row(StoredBackoff{"a.example", 1'800'000'000, -300}));
  CHECK(!from_row(StoredBackoff{"a.example", 1'800'000'000, 86'401}));
  CHECK(from_row(StoredBackoff{"a.example", 0, 86'400}));
}
