// Watches the database for changes on a thread of its own: connects (with backoff from 1 s
// to 30 s while it cannot), starts watching (PostgreSQL LISTEN, MariaDB the change marker),
// and calls changed() after every (re)connect (a full reload: changes made while it was
// away are not lost) and after every change. Never blocks a request; changed() must not
// block either (Publisher::trigger).
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>

#include "config/config.h"
#include "source/database.h"

namespace mailconfd::source {

class Watcher {
 public:
  Watcher(DatabaseOptions options, std::function<void(std::string reason)> changed);
  // Stops the thread: at most one connection attempt (5 s) later. A wait or a read blocked
  // on a server that stopped answering is cut short (Connection::cancel), so it does not
  // take the connection's read timeout (MariaDB: 30 s).
  ~Watcher();
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

 private:
  void run(std::stop_token stop);

  DatabaseOptions options_;
  std::function<void(std::string)> changed_;
  std::mutex mutex_;  // for the backoff's wait only
  std::condition_variable_any wake_;
  std::mutex current_mutex_;
  Connection* current_ = nullptr;  // the connection run() is using, for ~Watcher to cancel
  std::jthread thread_;            // last: starts after everything above exists
};

}  // namespace mailconfd::source
