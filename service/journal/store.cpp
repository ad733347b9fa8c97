#include "journal/store.h"

#include <sqlite3.h>

#include "journal/database_store.h"

namespace mailconfd::journal {
namespace {

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS fetch("
    " address TEXT NOT NULL, door TEXT NOT NULL, client TEXT NOT NULL,"
    " first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, fetches INTEGER NOT NULL,"
    " PRIMARY KEY(address, door, client)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS history("
    " day TEXT PRIMARY KEY, at_risk INTEGER NOT NULL, fetched INTEGER NOT NULL,"
    " switched INTEGER NOT NULL, ambiguous INTEGER NOT NULL, broke INTEGER NOT NULL,"
    " login_failing INTEGER NOT NULL, unknown INTEGER NOT NULL) WITHOUT ROWID;";

// A prepared statement that finalizes itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  explicit operator bool() const { return stmt_ != nullptr; }
  sqlite3_stmt* get() const { return stmt_; }
  // value must outlive the statement's next step (it is not copied).
  void text(int i, std::string_view value) {
    sqlite3_bind_text(stmt_, i, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
  }
  void integer(int i, std::int64_t value) { sqlite3_bind_int64(stmt_, i, value); }
  std::string column_text(int i) const {
    const auto* p = sqlite3_column_text(stmt_, i);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i)))
             : std::string();
  }
  std::int64_t column_int(int i) const { return sqlite3_column_int64(stmt_, i); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

class Sqlite final : public Store {
 public:
  explicit Sqlite(sqlite3* db) : db_(db) {}
  ~Sqlite() override { sqlite3_close(db_); }
  bool exec(const char* sql, std::string& error);
  bool add_rows(const std::vector<Row>& rows, std::string& error) override;
  std::int64_t expire(std::int64_t cutoff, std::string& error) override;
  bool fetches(std::vector<Fetch>& out, std::string& error) override;
  bool put_day(const DayCounts& counts, std::string& error) override;
  bool days(std::vector<DayCounts>& out, std::string& error) override;

 private:
  sqlite3* db_;
};

}  // namespace

std::string Location::name() const {
  switch (kind) {
    case Kind::Postgresql:
      return "the postgresql database";
    case Kind::Mariadb:
      return "the mariadb database";
    case Kind::Sqlite:
      break;
  }
  return file;
}

Location location_of(const Config& config) {
  Location location;
  const JournalOptions& journal = *config.journal;
  if (journal.dsn_file.empty() || !config.database) {
    location.file = journal.file;
    return location;
  }
  location.kind = config.database->driver == DatabaseOptions::Driver::Mariadb
                      ? Location::Kind::Mariadb
                      : Location::Kind::Postgresql;
  location.dsn = journal.dsn;
  return location;
}

std::unique_ptr<Store> open_store(const Location& location, int busy_ms, std::string& error) {
  switch (location.kind) {
    case Location::Kind::Postgresql:
      return open_postgresql_store(location.dsn, error);
    case Location::Kind::Mariadb:
      return open_mariadb_store(location.dsn, error);
    case Location::Kind::Sqlite:
      break;
  }
  return Store::open(location.file, busy_ms, error);
}

std::unique_ptr<Store> Store::open(const std::string& path, int busy_ms, std::string& error) {
  // Before SQLite's first use in the process: no global statistics of its allocations, whose
  // mutex every sqlite3_malloc would take (a good part of the writer's time per row). The call
  // fails harmlessly when SQLite is already initialised.
  static const bool configured = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
  (void)configured;
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    error = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return nullptr;
  }
  sqlite3_busy_timeout(db, busy_ms);
  auto store = std::make_unique<Sqlite>(db);
  // 64 KiB pages for a new file (an existing one keeps the size it has): a batch of new
  // addresses descends a shallower B-tree and changes fewer, larger leaf pages: about 15% less
  // of the writer's CPU per new row than 4 KiB pages (README, "The settings journal's cost").
  if (!store->exec("PRAGMA page_size=65536; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                   "PRAGMA cache_size=-16384;",
                   error) ||
      !store->exec(kSchema, error)) {
    return nullptr;
  }
  return store;
}

bool Sqlite::exec(const char* sql, std::string& error) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) == SQLITE_OK) return true;
  error = message ? message : sqlite3_errmsg(db_);
  sqlite3_free(message);
  return false;
}

bool Store::add(const std::vector<Fetch>& fetches, std::string& error) {
  std::vector<Row> rows;
  rows.reserve(fetches.size());
  for (const Fetch& f : fetches) {
    rows.push_back({f.address, f.door, f.client, f.first_seen, f.last_seen, f.count});
  }
  return add_rows(rows, error);
}

bool Sqlite::add_rows(const std::vector<Row>& fetches, std::string& error) {
  if (fetches.empty()) return true;
  if (!exec("BEGIN IMMEDIATE", error)) return false;
  Statement upsert(db_,
                   "INSERT INTO fetch(address, door, client, first_seen, last_seen, fetches) "
                   "VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(address, door, client) DO UPDATE "
                   "SET first_seen = min(first_seen, excluded.first_seen), "
                   "last_seen = max(last_seen, excluded.last_seen), "
                   "fetches = fetches + excluded.fetches");
  bool ok = static_cast<bool>(upsert);
  for (std::size_t i = 0; ok && i < fetches.size(); ++i) {
    const Row& f = fetches[i];
    upsert.text(1, f.address);
    upsert.text(2, f.door);
    upsert.text(3, f.client);
    upsert.integer(4, f.first_seen);
    upsert.integer(5, f.last_seen);
    upsert.integer(6, f.count);
    ok = sqlite3_step(upsert.get()) == SQLITE_DONE;
    sqlite3_reset(upsert.get());
  }
  if (!ok) {
    error = sqlite3_errmsg(db_);
    std::string ignored;
    exec("ROLLBACK", ignored);
    return false;
  }
  if (!exec("COMMIT", error)) {
    std::string ignored;
    exec("ROLLBACK", ignored);
    return false;
  }
  return true;
}

std::int64_t Sqlite::expire(std::int64_t cutoff, std::string& error) {
  Statement del(db_, "DELETE FROM fetch WHERE last_seen < ?1");
  if (!del) return error = sqlite3_errmsg(db_), -1;
  del.integer(1, cutoff);
  if (sqlite3_step(del.get()) != SQLITE_DONE) return error = sqlite3_errmsg(db_), -1;
  return sqlite3_changes(db_);
}

bool Sqlite::fetches(std::vector<Fetch>& out, std::string& error) {
  Statement select(db_,
                   "SELECT address, door, client, first_seen, last_seen, fetches FROM fetch "
                   "ORDER BY address, door, client");
  if (!select) return error = sqlite3_errmsg(db_), false;
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(select.get())) == SQLITE_ROW) {
    out.push_back({select.column_text(0), select.column_text(1), select.column_text(2),
                   select.column_int(3), select.column_int(4), select.column_int(5)});
  }
  if (rc != SQLITE_DONE) return error = sqlite3_errmsg(db_), false;
  return true;
}

bool Sqlite::put_day(const DayCounts& c, std::string& error) {
  Statement put(db_,
                "INSERT OR REPLACE INTO history(day, at_risk, fetched, switched, ambiguous, "
                "broke, login_failing, unknown) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  if (!put) return error = sqlite3_errmsg(db_), false;
  put.text(1, c.day);
  put.integer(2, c.at_risk);
  put.integer(3, c.fetched);
  put.integer(4, c.switched);
  put.integer(5, c.ambiguous);
  put.integer(6, c.broke);
  put.integer(7, c.login_failing);
  put.integer(8, c.unknown);
  if (sqlite3_step(put.get()) != SQLITE_DONE) return error = sqlite3_errmsg(db_), false;
  return true;
}

bool Sqlite::days(std::vector<DayCounts>& out, std::string& error) {
  Statement select(db_,
                   "SELECT day, at_risk, fetched, switched, ambiguous, broke, login_failing, "
                   "unknown FROM history ORDER BY day");
  if (!select) return error = sqlite3_errmsg(db_), false;
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(select.get())) == SQLITE_ROW) {
    DayCounts d;
    d.day = select.column_text(0);
    d.at_risk = select.column_int(1);
    d.fetched = select.column_int(2);
    d.switched = select.column_int(3);
    d.ambiguous = select.column_int(4);
    d.broke = select.column_int(5);
    d.login_failing = select.column_int(6);
    d.unknown = select.column_int(7);
    out.push_back(std::move(d));
  }
  if (rc != SQLITE_DONE) return error = sqlite3_errmsg(db_), false;
  return true;
}

}  // namespace mailconfd::journal
