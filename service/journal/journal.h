// The settings journal (opt-in, <journal file=…>): which mailbox fetched settings, through which
// door and with which kind of client, first and last time. These are the provider's customers'
// addresses, so nothing else is kept: no password, no header, no client IP, and a fetch is
// deleted `retention` after it was last seen.
//
// A request never waits for a disk: record() appends to a bounded buffer that belongs to the
// calling thread (its own mutex, uncontended except for the writer's swap once per interval;
// no allocation once the buffer has grown), and one writer thread sorts each batch, folds
// duplicates and writes the rows in key order to the store (SQLite, or the provider's database
// that replicas share) in one transaction. A write that fails (full disk, locked file,
// unreadable directory, a database that is down or refuses the write) keeps the folded rows for the
// next attempt (up to kMaxPending), counts the failure and logs it once until a write succeeds
// again.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "journal/store.h"

namespace mailconfd::journal {

// Through which door a client fetched settings.
enum class Door : std::uint8_t {
  Autoconfig,        // Thunderbird config-v1.1.xml
  Autodiscover,      // Outlook POX (GET or POST)
  AutodiscoverJson,  // Autodiscover v2 JSON
  Redirect,          // the HTTP redirect to the provider's Autodiscover host
  Mobileconfig,      // Apple profile
  Setup,             // the setup page with a hosted address
};
inline constexpr std::size_t kDoors = 6;
std::string_view to_string(Door door);

// The client kinds http::client_kind() gives ("-": no User-Agent), a fixed set: /metrics labels.
inline constexpr std::array<std::string_view, 12> kClientKinds{
    "-",         "thunderbird", "outlook", "evolution", "kmail",   "fairemail",
    "deltachat", "k9",          "apple",   "curl",      "browser", "other"};
// Index into kClientKinds; an unknown kind counts as "other".
std::size_t client_index(std::string_view kind);

// One fetch of settings for a hosted address (lower case). Counts it for /metrics always and,
// while a Journal runs, buffers it for the writer. Never blocks on I/O; safe from any thread.
void record(Door door, std::string_view client_kind, std::string_view address);
// The same for the address local@domain (already normalised by parse_email), copied once
// into the thread's buffer: no string is built for it.
void record(Door door, std::string_view client_kind, std::string_view local,
            std::string_view domain);

// The /metrics lines of the journal: fetches by door and client kind (counted whether or not
// the journal is on), and, when it is on, rows written, records dropped and failed writes.
void append_metrics(std::string& out);

// Folded rows written by any Journal since the process started (the cockpit rebuilds when it
// grows).
std::uint64_t rows_written();

struct Options {
  Location store;                                   // an SQLite file is created when missing
  std::chrono::seconds retention{180 * 24 * 3600};  // fetches last seen before now - retention go
  std::chrono::milliseconds interval{1000};         // how often the writer writes
};

inline constexpr std::size_t kMaxBuffered = 65536;  // per request thread, between two writes
inline constexpr std::size_t kMaxPending = 200000;  // folded rows kept while writes fail

struct Stats {
  std::uint64_t written = 0;         // folded rows written
  std::uint64_t dropped = 0;         // records refused: a buffer or the pending set was full
  std::uint64_t write_failures = 0;  // writes (or opens) that failed
  std::size_t pending = 0;           // folded rows waiting for the next write
};

class Journal {
 public:
  // Starts the writer thread and makes record() buffer. The store is opened by the writer; a
  // store that cannot be opened is a failed write (logged once, retried every interval).
  // At most one Journal runs at a time.
  explicit Journal(Options options);
  ~Journal();  // writes what is buffered (one last attempt) and stops record() buffering
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Writes everything recorded before the call (one attempt); returns true when it all got in.
  // For tests and shutdown; never called from a request thread.
  bool flush();
  Stats stats() const;

 private:
  void run();
  bool write_once(std::unique_lock<std::mutex>& lock);

  Options options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::uint64_t flush_requests_ = 0, flushes_done_ = 0;
  bool last_flush_ok_ = false;
  struct State;
  std::unique_ptr<State> state_;  // touched by the writer thread only (and under mutex_ for stats)
  std::thread thread_;
};

}  // namespace mailconfd::journal
