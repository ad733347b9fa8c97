// One T per thread that touches it, for counters and buffers written without locks by their
// own thread and summed by a reader. Each T lives until the process ends: a reader still
// counts what a thread that has ended left behind, and a thread may write during exit.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

namespace mailconfd {

template <class T>
class PerThread {
 public:
  // This thread's T; the first call registers it (one lock per thread, never again).
  static T& own() {
    thread_local T* mine = [] {
      auto item = std::make_unique<T>();
      T* raw = item.get();
      std::lock_guard lock(registry().mutex);
      registry().items.push_back(std::move(item));
      return raw;
    }();
    return *mine;
  }

  // visit(T&) for every thread's T, under the lock that registration takes.
  template <class Visit>
  static void for_each(Visit&& visit) {
    std::lock_guard lock(registry().mutex);
    for (const auto& item : registry().items) visit(*item);
  }

 private:
  struct Registry {
    std::mutex mutex;
    std::vector<std::unique_ptr<T>> items;
  };

  static Registry& registry() {
    static Registry* r = new Registry;  // never destroyed: threads may write during exit
    return *r;
  }
};

}  // namespace mailconfd
