#include "journal/journal.h"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "journal/store.h"

namespace mailconfd::journal {
namespace {

using Counter = std::atomic<std::uint64_t>;

// One buffered fetch: the address lives in the buffer's arena.
struct Entry {
  std::uint32_t offset;
  std::uint16_t length;
  std::uint8_t door;
  std::uint8_t client;
  std::int64_t when;
};

// A request thread's own buffer and counters. Only its thread appends and counts; the writer
// takes the mutex only to swap the entries out.
struct Buffer {
  std::mutex mutex;
  std::string arena;
  std::vector<Entry> entries;
  std::array<std::array<Counter, kClientKinds.size()>, kDoors> fetches{};
};

struct Registry {
  std::mutex mutex;
  std::vector<std::unique_ptr<Buffer>> buffers;
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: threads may record during exit
  return *r;
}

Buffer& own_buffer() {
  thread_local Buffer* buffer = [] {
    auto b = std::make_unique<Buffer>();
    Buffer* raw = b.get();
    std::lock_guard lock(registry().mutex);
    registry().buffers.push_back(std::move(b));
    return raw;
  }();
  return *buffer;
}

std::atomic<bool> buffering{false};  // a Journal runs
Counter dropped_total{0};
Counter written_total{0};
Counter failures_total{0};
std::atomic<bool> journal_on{false};  // for /metrics: the journal lines only when it is on

constexpr std::array<std::string_view, kDoors> kDoorNames{
    "autoconfig", "autodiscover", "autodiscover-json", "redirect", "mobileconfig", "setup"};

std::int64_t now_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return ts.tv_sec;
}

}  // namespace

std::string_view to_string(Door door) {
  const auto i = static_cast<std::size_t>(door);
  return i < kDoors ? kDoorNames[i] : "other";
}

std::size_t client_index(std::string_view kind) {
  for (std::size_t i = 0; i < kClientKinds.size(); ++i) {
    if (kClientKinds[i] == kind) return i;
  }
  return kClientKinds.size() - 1;
}

void record(Door door, std::string_view client_kind, std::string_view address) {
  Buffer& b = own_buffer();
  const auto d = std::min(static_cast<std::size_t>(door), kDoors - 1);
  const std::size_t c = client_index(client_kind);
  Counter& counter = b.fetches[d][c];
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  if (!buffering.load(std::memory_order_relaxed) || address.empty() || address.size() > 320) {
    return;
  }
  std::lock_guard lock(b.mutex);
  if (b.entries.size() >= kMaxBuffered) {
    dropped_total.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  b.entries.push_back({static_cast<std::uint32_t>(b.arena.size()),
                       static_cast<std::uint16_t>(address.size()), static_cast<std::uint8_t>(d),
                       static_cast<std::uint8_t>(c), now_seconds()});
  b.arena.append(address);
}

std::uint64_t rows_written() { return written_total.load(); }

void append_metrics(std::string& out) {
  std::array<std::array<std::uint64_t, kClientKinds.size()>, kDoors> sums{};
  {
    std::lock_guard lock(registry().mutex);
    for (const auto& b : registry().buffers) {
      for (std::size_t d = 0; d < kDoors; ++d) {
        for (std::size_t c = 0; c < kClientKinds.size(); ++c) {
          sums[d][c] += b->fetches[d][c].load(std::memory_order_relaxed);
        }
      }
    }
  }
  out +=
      "# HELP mailconfd_settings_fetched_total Settings answered for a hosted address, by door "
      "and client kind.\n"
      "# TYPE mailconfd_settings_fetched_total counter\n";
  for (std::size_t d = 0; d < kDoors; ++d) {
    for (std::size_t c = 0; c < kClientKinds.size(); ++c) {
      fmt::format_to(std::back_inserter(out),
                     "mailconfd_settings_fetched_total{{door=\"{}\",client=\"{}\"}} {}\n",
                     kDoorNames[d], kClientKinds[c] == "-" ? "unknown" : kClientKinds[c],
                     sums[d][c]);
    }
  }
  if (!journal_on.load()) return;
  fmt::format_to(std::back_inserter(out),
                 "# HELP mailconfd_journal_rows_written_total Folded fetch rows written to the "
                 "settings journal.\n"
                 "# TYPE mailconfd_journal_rows_written_total counter\n"
                 "mailconfd_journal_rows_written_total {}\n"
                 "# HELP mailconfd_journal_dropped_total Fetches not journaled: a buffer or the "
                 "pending set was full.\n"
                 "# TYPE mailconfd_journal_dropped_total counter\n"
                 "mailconfd_journal_dropped_total {}\n"
                 "# HELP mailconfd_journal_write_failures_total Journal writes that failed (full "
                 "disk, locked or unreadable file); the rows are kept for the next attempt.\n"
                 "# TYPE mailconfd_journal_write_failures_total counter\n"
                 "mailconfd_journal_write_failures_total {}\n",
                 written_total.load(), dropped_total.load(), failures_total.load());
}

struct Journal::State {
  std::unique_ptr<Store> store;
  // Folded rows: key = address, '\0', door and client as one letter each.
  struct Folded {
    std::int64_t first_seen, last_seen, count;
  };
  std::unordered_map<std::string, Folded> pending;
  std::string arena;
  std::vector<Entry> entries;
  bool failing = false;
  std::int64_t next_expiry = 0;
  std::atomic<std::size_t> pending_size{0};
};

Journal::Journal(Options options)
    : options_(std::move(options)), state_(std::make_unique<State>()) {
  journal_on.store(true);
  buffering.store(true);
  thread_ = std::thread([this] { run(); });
}

Journal::~Journal() {
  buffering.store(false);
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

bool Journal::flush() {
  std::unique_lock lock(mutex_);
  const std::uint64_t mine = ++flush_requests_;
  wake_.notify_all();
  wake_.wait(lock, [&] { return flushes_done_ >= mine || stopping_; });
  return last_flush_ok_;
}

Stats Journal::stats() const {
  Stats s;
  s.written = written_total.load();
  s.dropped = dropped_total.load();
  s.write_failures = failures_total.load();
  s.pending = state_->pending_size.load();
  return s;
}

void Journal::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, options_.interval,
                   [&] { return stopping_ || flush_requests_ != flushes_done_; });
    if (stopping_) break;
    const std::uint64_t target = flush_requests_;
    const bool ok = write_once(lock);
    flushes_done_ = target;
    last_flush_ok_ = ok;
    wake_.notify_all();
  }
  write_once(lock);  // what was buffered before the stop
  flushes_done_ = flush_requests_;
  wake_.notify_all();
}

// Called with lock held; releases it during the I/O.
bool Journal::write_once(std::unique_lock<std::mutex>& lock) {
  lock.unlock();
  State& s = *state_;
  // Take every thread's entries and fold them: one row per address, door and client.
  std::vector<Buffer*> buffers;
  {
    std::lock_guard guard(registry().mutex);
    for (const auto& b : registry().buffers) buffers.push_back(b.get());
  }
  for (Buffer* b : buffers) {
    s.arena.clear();
    s.entries.clear();
    {
      std::lock_guard guard(b->mutex);
      std::swap(s.arena, b->arena);
      std::swap(s.entries, b->entries);
    }
    std::string key;
    for (const Entry& e : s.entries) {
      const std::string_view address(s.arena.data() + e.offset, e.length);
      key.assign(address);
      key.push_back('\0');
      key.push_back(static_cast<char>('a' + e.door));
      key.push_back(static_cast<char>('a' + e.client));
      auto it = s.pending.find(key);
      if (it == s.pending.end()) {
        if (s.pending.size() >= kMaxPending) {
          dropped_total.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        s.pending.emplace(key, State::Folded{e.when, e.when, 1});
      } else {
        it->second.first_seen = std::min(it->second.first_seen, e.when);
        it->second.last_seen = std::max(it->second.last_seen, e.when);
        ++it->second.count;
      }
    }
  }
  s.pending_size.store(s.pending.size());

  bool ok = true;
  std::string error;
  const std::int64_t now = now_seconds();
  if (!s.store && (!s.pending.empty() || now >= s.next_expiry)) {
    s.store = Store::open(options_.file, 200, error);
    if (!s.store) ok = false;
  }
  if (ok && !s.pending.empty()) {
    std::vector<Store::Row> rows;
    rows.reserve(s.pending.size());
    for (const auto& [key, f] : s.pending) {
      const std::string_view k(key);
      const std::size_t door = static_cast<std::size_t>(k[k.size() - 2] - 'a');
      const std::size_t client = static_cast<std::size_t>(k[k.size() - 1] - 'a');
      rows.push_back({k.substr(0, k.size() - 3), kDoorNames[door], kClientKinds[client],
                      f.first_seen, f.last_seen, f.count});
    }
    if (s.store->add_rows(rows, error)) {
      written_total.fetch_add(rows.size());
      s.pending.clear();
      s.pending_size.store(0);
    } else {
      ok = false;
    }
  }
  if (ok && s.store && now >= s.next_expiry) {
    const std::int64_t cutoff = now - options_.retention.count();
    const std::int64_t gone = s.store->expire(cutoff, error);
    if (gone < 0) {
      ok = false;
    } else {
      if (gone > 0) spdlog::info("journal: {} fetch(es) past the retention period deleted", gone);
      s.next_expiry = now + 3600;
    }
  }
  if (!ok) {
    failures_total.fetch_add(1);
    if (!s.failing) {
      spdlog::error(
          "journal: cannot write {}: {}; requests are answered as usual, fetches are kept in "
          "memory (up to {}) and written when it works again",
          options_.file, error, kMaxPending);
    }
    s.failing = true;
    s.store.reset();  // reopen next time: the file may have been replaced or its disk remounted
  } else if (s.failing) {
    spdlog::info("journal: writing {} again", options_.file);
    s.failing = false;
  }
  lock.lock();
  return ok;
}

}  // namespace mailconfd::journal
