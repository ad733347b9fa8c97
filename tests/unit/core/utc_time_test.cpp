#include "core/utc_time.h"

#include <doctest/doctest.h>

namespace mailconfd {
namespace {

TEST_CASE("format_utc writes the time in UTC, whatever the process's time zone") {
  // 2026-12-03 20:45:07 UTC
  const std::int64_t t = 1796330707;
  CHECK(format_utc(t, "%Y-%m-%d") == "2026-12-03");
  CHECK(format_utc(t, "%Y-%m-%d %H:%M UTC") == "2026-12-03 20:45 UTC");
  CHECK(format_utc(std::int64_t{0}, "%Y-%m-%dT%H:%M:%SZ") == "1970-01-01T00:00:00Z");
  const auto point = std::chrono::system_clock::time_point(std::chrono::seconds(t)) +
                     std::chrono::milliseconds(999);
  CHECK(rfc3339_utc(point) == "2026-12-03T20:45:07Z");  // seconds, not rounded up
}

TEST_CASE("format_utc: a result longer than its buffer is empty, never cut") {
  CHECK(format_utc(std::int64_t{0}, std::string(70, 'x').c_str()).empty());
}

}  // namespace
}  // namespace mailconfd
