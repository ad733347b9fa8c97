// The settings journal's SQLite file (one file, WAL): which mailbox fetched settings through
// which door with which client kind, first and last time, and how often; and the cockpit's
// day-by-day counts of mailboxes per state. Only the journal's writer thread and the cockpit's
// refresher use it, never a request thread. Each user opens its own Store (SQLite connection).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;

namespace mailconfd::journal {

// One folded row of the fetch table.
struct Fetch {
  std::string address;          // lower-case mailbox address as the request named it
  std::string door;             // to_string(Door)
  std::string client;           // a client kind (kClientKinds)
  std::int64_t first_seen = 0;  // Unix seconds
  std::int64_t last_seen = 0;
  std::int64_t count = 0;
};

// One day of the cockpit's burn-down: mailboxes per state in the newest scan of that day.
struct DayCounts {
  std::string day;  // YYYY-MM-DD (UTC)
  std::int64_t at_risk = 0, fetched = 0, switched = 0, ambiguous = 0, broke = 0, login_failing = 0,
               unknown = 0;
};

class Store {
 public:
  // Opens (creating when missing) the file in WAL mode. nullptr with error set on failure.
  // busy_ms: how long a statement waits for a lock held by another connection.
  static std::unique_ptr<Store> open(const std::string& path, int busy_ms, std::string& error);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Adds folded fetches in one transaction (first/last widened, counts summed). False with
  // error (SQLite's message: full disk, locked file …) when nothing was written.
  bool add(const std::vector<Fetch>& fetches, std::string& error);
  // The same from views (the journal's folded rows, without copying their strings).
  struct Row {
    std::string_view address, door, client;
    std::int64_t first_seen, last_seen, count;
  };
  bool add_rows(const std::vector<Row>& rows, std::string& error);
  // Deletes fetches whose last_seen is before cutoff; returns how many (or -1 on failure).
  // (A scan of the table: it runs once an hour, and an index on last_seen would cost every
  // insert more than the scan costs.)
  std::int64_t expire(std::int64_t cutoff, std::string& error);
  // Every fetch row, ordered by address, door, client.
  bool fetches(std::vector<Fetch>& out, std::string& error);

  // Replaces the row of counts.day.
  bool put_day(const DayCounts& counts, std::string& error);
  // Every day, oldest first.
  bool days(std::vector<DayCounts>& out, std::string& error);

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  bool exec(const char* sql, std::string& error);
  sqlite3* db_;
};

}  // namespace mailconfd::journal
