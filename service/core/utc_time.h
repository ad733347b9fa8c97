// Times written for people and logs, always in UTC: one strftime over gmtime_r, instead of the
// same five lines in every file that prints a date.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace mailconfd {

// FORMAT is a strftime(3) format; the result is at most 63 bytes.
std::string format_utc(std::int64_t unix_seconds, const char* format);
std::string format_utc(std::chrono::system_clock::time_point t, const char* format);

// "2026-12-03T20:45:07Z" (RFC 3339, seconds).
inline std::string rfc3339_utc(std::chrono::system_clock::time_point t) {
  return format_utc(t, "%Y-%m-%dT%H:%M:%SZ");
}

}  // namespace mailconfd
