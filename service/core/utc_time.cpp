#include "core/utc_time.h"

#include <ctime>

namespace mailconfd {

std::string format_utc(std::int64_t unix_seconds, const char* format) {
  const auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char out[64];
  const std::size_t n = std::strftime(out, sizeof out, format, &tm);
  return std::string(out, n);
}

std::string format_utc(std::chrono::system_clock::time_point t, const char* format) {
  return format_utc(static_cast<std::int64_t>(std::chrono::system_clock::to_time_t(t)), format);
}

}  // namespace mailconfd
