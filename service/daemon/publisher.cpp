#include "daemon/publisher.h"

#include <algorithm>
#include <exception>
#include <utility>

#include <spdlog/spdlog.h>

#include "metrics.h"
#include "notify.h"

namespace mailconfd::daemon {

Publisher::Publisher(std::shared_ptr<const App> first, Builder builder, PublisherOptions options)
    : slot_(std::make_shared<AppSlot>(std::move(first))),
      builder_(std::move(builder)),
      options_(std::move(options)),
      thread_([this](std::stop_token stop) { run(std::move(stop)); }) {}

Publisher::~Publisher() {
  stop();
  // ~jthread joins: a build still running finishes first (bounded by the builder; serve's
  // watchdog bounds the whole shutdown).
}

void Publisher::trigger(std::string reason) {
  {
    std::lock_guard lock(mutex_);
    ++requested_;
    if (std::find(reasons_.begin(), reasons_.end(), reason) == reasons_.end()) {
      reasons_.push_back(std::move(reason));
    }
  }
  wake_.notify_one();
}

void Publisher::stop() {
  {
    std::lock_guard lock(publish_mutex_);
    stopped_ = true;
  }
  thread_.request_stop();  // wakes the thread's waits (condition_variable_any + stop_token)
}

bool Publisher::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return idle_.wait_for(lock, timeout, [this] { return answered_ == requested_; });
}

std::uint64_t Publisher::builds_published() const {
  std::lock_guard lock(mutex_);
  return published_;
}

std::uint64_t Publisher::builds_failed() const {
  std::lock_guard lock(mutex_);
  return failed_;
}

void Publisher::run(std::stop_token stop) {
  while (true) {
    std::vector<std::string> reasons;
    std::uint64_t covers = 0;
    {
      std::unique_lock lock(mutex_);
      if (!wake_.wait(lock, stop, [this] { return requested_ != answered_; })) return;
      // Debounce: what arrives meanwhile joins this build.
      const auto until = std::chrono::steady_clock::now() + options_.debounce;
      wake_.wait_until(lock, stop, until, [] { return false; });
      if (stop.stop_requested()) return;
      reasons = std::exchange(reasons_, {});
      covers = requested_;  // triggers after this point need another build
    }
    {
      std::lock_guard lock(publish_mutex_);
      if (stopped_) return;
      notify_systemd_reloading();
    }
    Build next;
    try {
      next = builder_(slot_->load(), reasons, stop);
    } catch (const std::exception& e) {
      next = {nullptr, {e.what()}};
    }
    {
      std::lock_guard lock(publish_mutex_);
      if (stopped_) return;  // nothing is published, logged or notified after stop()
      if (next.app) {
        slot_->store(next.app);
        if (next.config_read) metrics::count_reload(true);
        if (options_.published) options_.published(next.app, reasons);
      } else {
        // Counted before it is logged: whoever reads the log and then /metrics sees the
        // failure in both.
        if (next.config_read) metrics::count_reload(false);
        for (const std::string& problem : next.problems) spdlog::error("reload: {}", problem);
        spdlog::error("reload failed: {} problem(s); still serving the previous configuration",
                      next.problems.size());
      }
      notify_systemd("READY=1\nSTATUS=serving");
    }
    {
      std::lock_guard lock(mutex_);
      answered_ = covers;
      ++(next.app ? published_ : failed_);
    }
    idle_.notify_all();
  }
}

}  // namespace mailconfd::daemon
