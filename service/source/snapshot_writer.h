// Writes the domain parts that updates merged (update_domains) to the snapshot file on a
// thread of its own: only the newest one, and at most one write per interval (a part of
// 1,000,000 domains and 2,000,000 login names is a file of about 100 MB), so that a stream
// of changes neither waits for the disk nor writes a file per change. Full loads write their
// snapshot themselves (load_domains); a write never replaces a newer snapshot with an older
// part. The destructor writes what is still pending.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>

#include "config/config.h"

namespace mailconfd::source {

class SnapshotWriter {
 public:
  explicit SnapshotWriter(std::chrono::milliseconds interval);
  ~SnapshotWriter();
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  // Writes domains (built for config, whose <database snapshot> names the file) soon: at once
  // when the last write is an interval ago, else when it is. Replaces a part still pending.
  void submit(std::shared_ptr<const Config> config, std::shared_ptr<const HostedDomains> domains);

 private:
  void run(std::stop_token stop);
  void write(const Config& config, const HostedDomains& domains);

  std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::shared_ptr<const Config> config_;
  std::shared_ptr<const HostedDomains> pending_;
  std::jthread thread_;  // last: starts after everything above exists
};

}  // namespace mailconfd::source
