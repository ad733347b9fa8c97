// The cockpit's data, kept current off the request path: one thread re-reads the scan report
// when its file changes, and the journal when it has written new rows (or a day has passed, or
// the configuration was reloaded), builds a new Model and swaps it in. It also writes today's
// counts into the journal database's history (the burn-down). Requests only load the Model.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "app.h"
#include "cockpit/model.h"

namespace mailconfd::cockpit {

class Board {
 public:
  // Starts the thread; app->config->cockpit and app->config->journal must be set. At most one
  // Board runs at a time; current() returns its model.
  explicit Board(std::shared_ptr<const App> app);
  ~Board();
  Board(const Board&) = delete;
  Board& operator=(const Board&) = delete;

  // After a reload: the next model uses the new configuration (report path, providers).
  void swap(std::shared_ptr<const App> app);
  // Rebuilds now and waits for it (tests, start-up).
  void refresh();
  std::shared_ptr<const Model> model() const { return model_.load(); }

 private:
  void run();
  void rebuild();

  std::atomic<std::shared_ptr<const App>> app_;
  std::atomic<std::shared_ptr<const Model>> model_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::uint64_t requests_ = 0, done_ = 0;
  struct Seen;
  std::unique_ptr<Seen> seen_;  // the thread's own: what the last model was built from
  std::thread thread_;
};

// How long the Board waits after a rebuild that took last_read before new journal rows (or a
// shared journal's age) make it rebuild again: one second, or ten times last_read when that is
// longer, so that re-reading a large journal under steady traffic (a million rows take about a
// second) keeps at most about a tenth of a core busy. A new report, a reload or a new day
// rebuild at once.
std::chrono::milliseconds journal_pause(std::chrono::milliseconds last_read);

// The running Board's model; nullptr when no cockpit runs.
std::shared_ptr<const Model> current();

// The /metrics gauges of the current model: mailboxes per state, and per provider and state
// (bounded: provider ids come from the configuration). Nothing when no cockpit runs.
void append_metrics(std::string& out);

}  // namespace mailconfd::cockpit
