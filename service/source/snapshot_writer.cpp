#include "source/snapshot_writer.h"

#include <spdlog/spdlog.h>

#include "source/database.h"
#include "source/status.h"

namespace mailconfd::source {

SnapshotWriter::SnapshotWriter(std::chrono::milliseconds interval)
    : interval_(interval), thread_([this](std::stop_token stop) { run(std::move(stop)); }) {}

SnapshotWriter::~SnapshotWriter() {
  thread_.request_stop();
  wake_.notify_all();
}

void SnapshotWriter::submit(std::shared_ptr<const Config> config,
                            std::shared_ptr<const HostedDomains> domains) {
  {
    std::lock_guard lock(mutex_);
    config_ = std::move(config);
    pending_ = std::move(domains);
  }
  wake_.notify_all();
}

void SnapshotWriter::write(const Config& config, const HostedDomains& domains) {
  if (!config.database || config.database->snapshot.empty()) return;
  std::string error;
  const auto started = std::chrono::steady_clock::now();
  if (!write_snapshot(config.database->snapshot, config, domains, error)) {
    record_failure("snapshot");
    spdlog::error("{}: snapshot not written: {}", driver_name(config.database->driver), error);
    return;
  }
  spdlog::debug("snapshot {} written in {} ms", config.database->snapshot,
                std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - started)
                    .count());
}

void SnapshotWriter::run(std::stop_token stop) {
  auto last = std::chrono::steady_clock::now() - interval_;
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, stop, [this] { return pending_ != nullptr; });
    if (!stop.stop_requested()) {
      // Not before an interval after the last write; a newer part may replace this one.
      wake_.wait_until(lock, stop, last + interval_, [] { return false; });
    }
    if (pending_ == nullptr) {
      if (stop.stop_requested()) return;
      continue;
    }
    auto config = std::move(config_);
    auto domains = std::move(pending_);
    config_.reset();
    pending_.reset();
    lock.unlock();
    write(*config, *domains);
    last = std::chrono::steady_clock::now();
    lock.lock();
    if (stop.stop_requested() && pending_ == nullptr) return;
  }
}

}  // namespace mailconfd::source
