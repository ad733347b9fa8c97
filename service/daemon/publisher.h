// The one place a process's current App is published (style guide §3a). Every listener
// (plain, TLS, metrics/admin) reads the same AppSlot; one builder thread makes the next App
// when something asks for it (SIGHUP today; a database change or a renewed certificate
// later), off the request and signal threads, and stores it only when it is whole. A failed
// build logs its problems and leaves the current App serving.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "app.h"

namespace mailconfd::daemon {

// What a build gives: the next App, or (app null) why there is none, one problem per line
// ("FILE:LINE:COLUMN: message" where it comes from a file).
struct Build {
  std::shared_ptr<const App> app;
  std::vector<std::string> problems;
  // The build read the configuration file again (SIGHUP): only such builds are counted in
  // mailconfd_config_reloads_total; a database change or an issued certificate is not a reload
  // of the configuration.
  bool config_read = false;
};

// Makes the next App from the current one, sharing the parts whose inputs did not change
// (build_app's previous). reasons: the triggers this build answers, oldest first, each once.
// stop: requested when the process stops; a slow builder may give up early, since its result
// would be discarded anyway. Runs on the builder thread only; may throw (a problem).
using Builder = std::function<Build(const std::shared_ptr<const App>& current,
                                    const std::vector<std::string>& reasons, std::stop_token stop)>;

struct PublisherOptions {
  // After the first trigger, wait this long for more before building: a burst (a SIGHUP
  // storm, many rows changing at once) makes one build.
  std::chrono::milliseconds debounce{50};
  // Called on the builder thread after a new App is stored (and before READY=1), e.g. to log
  // it or hand it to the cockpit. Must not block.
  std::function<void(const std::shared_ptr<const App>&, const std::vector<std::string>& reasons)>
      published;
};

class Publisher {
 public:
  // Publishes first (never null) in a new slot and starts the builder thread.
  Publisher(std::shared_ptr<const App> first, Builder builder, PublisherOptions options = {});
  // stop(), then waits for a build in progress to return (its result is discarded).
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // The slot every listener reads; the Publisher is its only writer.
  const std::shared_ptr<AppSlot>& slot() const { return slot_; }
  std::shared_ptr<const App> current() const { return slot_->load(); }

  // Asks for a build. Returns at once: it only records reason and wakes the builder thread,
  // so it is safe on the signal thread. Triggers that arrive while a build waits for its
  // debounce or runs are coalesced into the next one build.
  void trigger(std::string reason);

  // From now on nothing is published and systemd hears nothing more from the publisher; a
  // build in progress is told to stop (its stop_token) and its result discarded. Returns
  // without waiting for that build, so SIGTERM is never delayed by a slow rebuild.
  void stop();

  // Waits until every trigger given so far has been answered by a finished build (tests).
  // False on timeout.
  bool wait_idle(std::chrono::milliseconds timeout);

  std::uint64_t builds_published() const;
  std::uint64_t builds_failed() const;

 private:
  void run(std::stop_token stop);

  std::shared_ptr<AppSlot> slot_;
  Builder builder_;
  PublisherOptions options_;

  mutable std::mutex mutex_;  // guards the fields below up to thread_
  std::condition_variable_any wake_;
  std::condition_variable_any idle_;
  std::vector<std::string> reasons_;  // waiting for the next build, each once
  std::uint64_t requested_ = 0;       // triggers given
  std::uint64_t answered_ = 0;        // triggers covered by finished builds
  std::uint64_t published_ = 0, failed_ = 0;

  // Held while a result is published (store, published hook, READY=1) and by stop(), so
  // that nothing is published or notified after stop() returns.
  std::mutex publish_mutex_;
  bool stopped_ = false;  // guarded by publish_mutex_

  std::jthread thread_;  // last: starts after everything above exists
};

}  // namespace mailconfd::daemon
