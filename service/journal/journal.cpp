#include "journal/journal.h"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/per_thread.h"
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

namespace {

// Counts the fetch and, while a Journal runs, appends the address (local, '@' and domain when
// domain is not empty; else local alone) to the calling thread's buffer.
void record_parts(Door door, std::string_view client_kind, std::string_view local,
                  std::string_view domain) {
  Buffer& b = PerThread<Buffer>::own();
  const auto d = std::min(static_cast<std::size_t>(door), kDoors - 1);
  const std::size_t c = client_index(client_kind);
  Counter& counter = b.fetches[d][c];
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  const std::size_t size = local.size() + (domain.empty() ? 0 : 1 + domain.size());
  if (!buffering.load(std::memory_order_relaxed) || local.empty() || size > 320) return;
  const std::int64_t when = now_seconds();
  std::lock_guard lock(b.mutex);
  if (b.entries.size() >= kMaxBuffered) {
    dropped_total.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  b.entries.push_back({static_cast<std::uint32_t>(b.arena.size()), static_cast<std::uint16_t>(size),
                       static_cast<std::uint8_t>(d), static_cast<std::uint8_t>(c), when});
  b.arena.append(local);
  if (!domain.empty()) {
    b.arena.push_back('@');
    b.arena.append(domain);
  }
}

}  // namespace

void record(Door door, std::string_view client_kind, std::string_view address) {
  record_parts(door, client_kind, address, {});
}

void record(Door door, std::string_view client_kind, std::string_view local,
            std::string_view domain) {
  record_parts(door, client_kind, local, domain);
}

std::uint64_t rows_written() { return written_total.load(); }

void append_metrics(std::string& out) {
  std::array<std::array<std::uint64_t, kClientKinds.size()>, kDoors> sums{};
  PerThread<Buffer>::for_each([&sums](const Buffer& b) {
    for (std::size_t d = 0; d < kDoors; ++d) {
      for (std::size_t c = 0; c < kClientKinds.size(); ++c) {
        sums[d][c] += b.fetches[d][c].load(std::memory_order_relaxed);
      }
    }
  });
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
  // One row of a batch: the address points into one of the arenas below or into kept_arena.
  struct Folded {
    std::string_view address;
    std::uint8_t door, client;
    bool kept;  // waiting since a failed write
    std::int64_t first_seen, last_seen, count;
  };
  // The request threads' buffers, swapped in (their capacity goes back with the next swap, so
  // that neither side allocates once the buffers have grown).
  std::vector<std::string> arenas;
  std::vector<std::vector<Entry>> entries;
  std::vector<Folded> batch;
  // Rows of a failed write, kept for the next attempt (at most kMaxPending).
  std::string kept_arena;
  std::vector<Folded> kept;
  std::vector<Store::Row> rows;
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
  // Take every thread's entries, sort them by address, door and client and fold each run of
  // equal keys into one row. The rows reach SQLite in key order, so that consecutive upserts
  // walk the B-tree's pages in order.
  std::vector<Buffer*> buffers;
  PerThread<Buffer>::for_each([&buffers](Buffer& b) { buffers.push_back(&b); });
  if (s.arenas.size() < buffers.size()) {
    s.arenas.resize(buffers.size());
    s.entries.resize(buffers.size());
  }
  s.batch.clear();
  s.batch.insert(s.batch.end(), s.kept.begin(), s.kept.end());
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    Buffer* b = buffers[i];
    s.arenas[i].clear();
    s.entries[i].clear();
    {
      std::lock_guard guard(b->mutex);
      std::swap(s.arenas[i], b->arena);
      std::swap(s.entries[i], b->entries);
    }
    for (const Entry& e : s.entries[i]) {
      s.batch.push_back({std::string_view(s.arenas[i].data() + e.offset, e.length), e.door,
                         e.client, false, e.when, e.when, 1});
    }
  }
  auto key_less = [](const State::Folded& a, const State::Folded& b) {
    if (a.address != b.address) return a.address < b.address;
    if (a.door != b.door) return a.door < b.door;
    return a.client < b.client;
  };
  std::sort(s.batch.begin(), s.batch.end(), key_less);
  std::size_t folded = 0;
  for (std::size_t i = 0; i < s.batch.size(); ++i) {
    State::Folded& row = s.batch[i];
    if (folded > 0) {
      State::Folded& last = s.batch[folded - 1];
      if (last.address == row.address && last.door == row.door && last.client == row.client) {
        last.first_seen = std::min(last.first_seen, row.first_seen);
        last.last_seen = std::max(last.last_seen, row.last_seen);
        last.count += row.count;
        last.kept = last.kept || row.kept;
        continue;
      }
    }
    s.batch[folded++] = row;
  }
  s.batch.resize(folded);
  s.pending_size.store(s.batch.size());

  bool ok = true;
  std::string error;
  const std::int64_t now = now_seconds();
  if (!s.store && (!s.batch.empty() || now >= s.next_expiry)) {
    s.store = open_store(options_.store, 200, error);
    if (!s.store) ok = false;
  }
  if (ok && !s.batch.empty()) {
    s.rows.clear();
    s.rows.reserve(s.batch.size());
    for (const State::Folded& f : s.batch) {
      s.rows.push_back({f.address, kDoorNames[f.door], kClientKinds[f.client], f.first_seen,
                        f.last_seen, f.count});
    }
    bool added = s.store->add_rows(s.rows, error);
    if (!added && options_.store.shared()) {
      // The connection may have broken since the last write (the server restarted): one more
      // try on a new one, so that only a database that is down or refuses counts as failed.
      std::string ignored;
      s.store = open_store(options_.store, 200, ignored);
      added = s.store && s.store->add_rows(s.rows, error);
    }
    if (added) {
      written_total.fetch_add(s.rows.size());
      s.batch.clear();
      s.kept.clear();
      s.kept_arena.clear();
      s.pending_size.store(0);
    } else {
      ok = false;
    }
  }
  if (!s.batch.empty()) {
    // Not written: keep the rows (their own copy of the addresses: the arenas go back to the
    // request threads). Rows kept before go first; new keys beyond kMaxPending are dropped.
    if (s.batch.size() > kMaxPending) {
      std::stable_partition(s.batch.begin(), s.batch.end(),
                            [](const State::Folded& f) { return f.kept; });
      dropped_total.fetch_add(s.batch.size() - kMaxPending, std::memory_order_relaxed);
      s.batch.resize(kMaxPending);
      std::sort(s.batch.begin(), s.batch.end(), key_less);
    }
    std::string arena;  // the old kept_arena may still hold some of the addresses
    for (const State::Folded& f : s.batch) arena.append(f.address);
    s.kept_arena = std::move(arena);
    std::size_t offset = 0;
    for (State::Folded& f : s.batch) {
      const std::size_t length = f.address.size();
      f.address = std::string_view(s.kept_arena.data() + offset, length);
      f.kept = true;
      offset += length;
    }
    s.kept.swap(s.batch);
    s.batch.clear();
    s.pending_size.store(s.kept.size());
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
          options_.store.name(), error, kMaxPending);
    }
    s.failing = true;
    // Reopen next time: the file may have been replaced or its disk remounted, the database
    // restarted.
    s.store.reset();
  } else if (s.failing) {
    spdlog::info("journal: writing {} again", options_.store.name());
    s.failing = false;
  }
  lock.lock();
  return ok;
}

}  // namespace mailconfd::journal
