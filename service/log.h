// Logging: everything goes to stderr (stdout carries only the readiness line). Nothing here
// ever receives a header value or a request body.
//
// When serving, one log thread owns stderr. Access-log lines are appended to a batch that
// belongs to the worker thread that answered the request (no lock contention, no system
// call, no wake-up per request); the log thread writes all batches at once, at most
// kInterval after a line was added, or at once after a quiet period, so a line never waits
// long and a busy server costs one write() per interval instead of one per request.
// Other messages (spdlog) wake the log thread at once. A stderr that does not keep up (a
// stalled journal) never stalls a worker: past kMaxBatchBytes a batch drops lines and the
// log says how many.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string_view>

#include <spdlog/spdlog.h>

namespace mailconfd {

// Sets up the default logger. async: through the log thread (serve); otherwise directly.
void init_logging(bool async);

// Writes what is still batched and stops the log thread. Call before exiting.
void shutdown_logging();

// One access-log line:
// "<UTC time> info <method> <path> <status> <bytes> <micros>us <client> <http|https>"
// (https: mailconfd's own TLS listener; "-" where the listener is not known). Callers pass
// the path without the query (queries carry addresses), or the route when the path carries
// an address.
void log_access(std::string_view method, std::string_view path, int status, std::size_t bytes,
                long long micros, std::string_view client, std::optional<bool> secure = {});

namespace log_limits {
inline constexpr auto kInterval = std::chrono::milliseconds(50);
inline constexpr std::size_t kWakeBytes = 64 * 1024;
inline constexpr std::size_t kMaxBatchBytes = 4 * 1024 * 1024;
}  // namespace log_limits

}  // namespace mailconfd
