#include "source/watcher.h"

#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include "source/database.h"
#include "source/status.h"

namespace mailconfd::source {

Watcher::Watcher(DatabaseOptions options, std::function<void(std::string)> changed)
    : options_(std::move(options)),
      changed_(std::move(changed)),
      thread_([this](std::stop_token stop) { run(std::move(stop)); }) {}

Watcher::~Watcher() {
  thread_.request_stop();
  wake_.notify_all();
  // run() checks for the stop under this lock before it publishes a connection, so a
  // connection published after this point does not exist.
  std::lock_guard lock(current_mutex_);
  if (current_ != nullptr) current_->cancel();
}

void Watcher::run(std::stop_token stop) {
  constexpr std::chrono::seconds kMaxBackoff{30};
  const std::string_view name = driver_name(options_.driver);
  std::chrono::seconds backoff{1};
  bool connected_before = false;
  bool down_logged = false;
  while (!stop.stop_requested()) {
    std::string error;
    auto connection = connect(options_, error);
    if (connection && !connection->watch(error)) connection.reset();
    if (!connection) {
      record_failure("connect");
      // One line when it goes down, then one per backoff step up to the cap: a database down
      // for a day does not fill the log.
      if (!down_logged || backoff < kMaxBackoff) {
        spdlog::warn("{}: {}; serving the rows read before, retrying in {}s", name, error,
                     backoff.count());
      }
      down_logged = true;
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, stop, backoff, [] { return false; });
      backoff = std::min(backoff * 2, kMaxBackoff);
      continue;
    }
    {
      std::lock_guard lock(current_mutex_);
      if (stop.stop_requested()) break;
      current_ = connection.get();
    }
    if (down_logged || connected_before) {
      record_reconnect();
      spdlog::info("{}: connected again; reloading", name);
    }
    backoff = std::chrono::seconds(1);
    down_logged = false;
    changed_(std::string(connected_before ? kReconnected : kConnected));
    connected_before = true;
    while (!stop.stop_requested()) {
      const Connection::Wait w = connection->wait(std::chrono::milliseconds(500));
      if (w == Connection::Wait::Changed) changed_(std::string(kChanged));
      if (w == Connection::Wait::Lost) {
        if (stop.stop_requested()) break;  // cancelled by ~Watcher
        record_failure("connect");
        spdlog::warn("{}: connection lost; serving the rows read before, reconnecting", name);
        break;
      }
    }
    std::lock_guard lock(current_mutex_);
    current_ = nullptr;
  }
}

}  // namespace mailconfd::source
