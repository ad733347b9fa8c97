// Retry-After (RFC 9110 §10.2.3) as the ACME client reads it: delay-seconds or an HTTP-date.
#include "acme/client.h"

#include <chrono>

#include <doctest/doctest.h>

TEST_CASE("acme: Retry-After in seconds and as an HTTP-date, anything else ignored") {
  using namespace std::chrono;
  using mailconfd::acme::parse_retry_after;
  // Sun, 06 Nov 1994 08:49:37 GMT, the example of RFC 9110, half a second past.
  const auto now = system_clock::from_time_t(784111777) + milliseconds(500);
  CHECK(parse_retry_after("120", now) == seconds(120));
  CHECK(parse_retry_after("0", now) == seconds(0));
  CHECK(parse_retry_after("99999999999999999999", now) == seconds(999'999'999));
  // A date: the wait until then, rounded up so that the retry is never early.
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:40 GMT", now) == seconds(3));
  CHECK(parse_retry_after("Sun, 06 Nov 1994 09:49:37 GMT", now) == seconds(3600));
  // The obsolete forms RFC 9110 asks recipients to accept.
  CHECK(parse_retry_after("Sunday, 06-Nov-94 08:49:40 GMT", now) == seconds(3));
  CHECK(parse_retry_after("Sun Nov  6 08:49:40 1994", now) == seconds(3));
  // A date already past: now.
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now) == seconds(0));
  CHECK(parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now) == seconds(0));
  CHECK(parse_retry_after("", now) == std::nullopt);
  CHECK(parse_retry_after("-5", now) == std::nullopt);
  CHECK(parse_retry_after("soon", now) == std::nullopt);
  CHECK(parse_retry_after("1.5", now) == std::nullopt);
}
