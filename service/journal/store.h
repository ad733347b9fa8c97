// Where the settings journal keeps its rows: which mailbox fetched settings through which door
// with which client kind, first and last time, and how often; and the cockpit's day-by-day
// counts of mailboxes per state. Either an SQLite file (one file, WAL; Store::open) or the
// provider's database, PostgreSQL or MariaDB, shared by every replica (journal/database_store.h,
// tables of deploy/database/*.sql). Only the journal's writer thread and the cockpit's
// refresher use a Store, never a request thread. Each user opens its own (one connection).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

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
  // The SQLite store: opens (creating when missing) the file in WAL mode. nullptr with error
  // set on failure. busy_ms: how long a statement waits for a lock held by another connection.
  static std::unique_ptr<Store> open(const std::string& path, int busy_ms, std::string& error);
  Store() = default;
  virtual ~Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Adds folded fetches in one transaction (first/last widened, counts summed). False with
  // error (the database's message: full disk, locked file, connection lost …) when nothing
  // was written.
  bool add(const std::vector<Fetch>& fetches, std::string& error);
  // The same from views (the journal's folded rows, without copying their strings). The rows'
  // keys (address, door, client) are distinct; in key order, so that two replicas writing
  // the same keys lock them in the same order.
  struct Row {
    std::string_view address, door, client;
    std::int64_t first_seen, last_seen, count;
  };
  virtual bool add_rows(const std::vector<Row>& rows, std::string& error) = 0;
  // Deletes fetches whose last_seen is before cutoff; returns how many (or -1 on failure).
  // (A scan of the table: it runs once an hour, and an index on last_seen would cost every
  // insert more than the scan costs.)
  virtual std::int64_t expire(std::int64_t cutoff, std::string& error) = 0;
  // Every fetch row, ordered by address, door, client (bytewise).
  virtual bool fetches(std::vector<Fetch>& out, std::string& error) = 0;

  // Replaces the row of counts.day.
  virtual bool put_day(const DayCounts& counts, std::string& error) = 0;
  // Every day, oldest first.
  virtual bool days(std::vector<DayCounts>& out, std::string& error) = 0;
};

// Which store a Journal or the cockpit opens.
struct Location {
  enum class Kind { Sqlite, Postgresql, Mariadb };
  Kind kind = Kind::Sqlite;
  std::string file;  // Sqlite: the file
  std::string dsn;   // Postgresql, Mariadb: the DSN (source/database.h's form); never logged
  bool shared() const { return kind != Kind::Sqlite; }  // other replicas write it too
  // For the log: the file, or "the postgresql database" (never the DSN).
  std::string name() const;
  bool operator==(const Location&) const = default;
};

// The store config.journal (which must be set) names: its file, or the <database>'s driver
// with the journal's own DSN.
Location location_of(const Config& config);

// Opens the store location names (busy_ms: SQLite's lock wait). nullptr with error set.
std::unique_ptr<Store> open_store(const Location& location, int busy_ms, std::string& error);

}  // namespace mailconfd::journal
