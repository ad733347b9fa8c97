// Logging: one logger on stderr (stdout carries only the readiness line). Request lines go
// through an asynchronous queue so a slow terminal or journal never stalls a worker.
// Nothing here ever receives a header value or a request body.
#pragma once

#include <memory>

#include <spdlog/spdlog.h>

namespace mailconfd {

// Sets up the default logger. async: queue log lines to a background thread (serve).
void init_logging(bool async);

}  // namespace mailconfd
