#include "log.h"

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace mailconfd {

void init_logging(bool async) {
  std::shared_ptr<spdlog::logger> logger;
  if (async) {
    spdlog::init_thread_pool(8192, 1);
    logger = spdlog::create_async_nb<spdlog::sinks::stderr_sink_mt>("mailconfd");
  } else {
    logger = spdlog::stderr_logger_mt("mailconfd");
  }
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %v", spdlog::pattern_time_type::utc);
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
}

}  // namespace mailconfd
