#include "journal/journal.h"

#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <sqlite3.h>

#include "journal/store.h"
#include "support.h"

using namespace mailconfd;
using namespace mailconfd::journal;

namespace {

std::vector<Fetch> rows_of(const std::string& file) {
  std::string error;
  auto store = Store::open(file, 2000, error);
  REQUIRE_MESSAGE(store, error);
  std::vector<Fetch> rows;
  REQUIRE(store->fetches(rows, error));
  return rows;
}

Options options_for(const std::string& file) {
  Options options;
  options.store.file = file;
  options.interval = std::chrono::hours(1);  // only flush() writes: deterministic tests
  return options;
}

}  // namespace

TEST_CASE("the journal folds duplicate fetches from several threads into one row each") {
  const std::string file = testing::temp_dir() + "/journal.sqlite";
  const auto before = rows_written();
  {
    Journal journal(options_for(file));
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([] {
        for (int i = 0; i < 250; ++i) {
          record(Door::Autoconfig, "thunderbird", "alice@customer.example");
          record(Door::Autodiscover, "outlook", "bob@customer.example");
        }
      });
    }
    for (auto& t : threads) t.join();
    record(Door::Setup, "browser", "alice@customer.example");
    record(Door::Mobileconfig, "no such kind", "carol@customer.example");
    CHECK(journal.flush());
    CHECK(journal.stats().pending == 0);
  }
  CHECK(rows_written() - before == 4);
  const auto rows = rows_of(file);
  REQUIRE(rows.size() == 4);
  CHECK(rows[0].address == "alice@customer.example");
  CHECK(rows[0].door == "autoconfig");
  CHECK(rows[0].client == "thunderbird");
  CHECK(rows[0].count == 1000);
  CHECK(rows[0].first_seen <= rows[0].last_seen);
  CHECK(rows[0].last_seen > 1700000000);
  CHECK(rows[1].door == "setup");
  CHECK(rows[1].client == "browser");
  CHECK(rows[1].count == 1);
  CHECK(rows[2].address == "bob@customer.example");
  CHECK(rows[2].door == "autodiscover");
  CHECK(rows[2].count == 1000);
  CHECK(rows[3].client == "other");  // an unknown kind is "other", never the raw text
  CHECK(rows[3].door == "mobileconfig");
}

TEST_CASE("a second batch adds to the row: counts summed, first and last widened") {
  const std::string file = testing::temp_dir() + "/journal.sqlite";
  std::string error;
  {
    auto store = Store::open(file, 2000, error);
    REQUIRE(store);
    const std::int64_t now = std::time(nullptr);
    REQUIRE(store->add({{"dora@customer.example", "autoconfig", "k9", now - 3600, now - 1800, 7}},
                       error));
  }
  {
    Journal journal(options_for(file));
    record(Door::Autoconfig, "k9", "dora@customer.example");
    record(Door::Autoconfig, "k9", "dora@customer.example");
    CHECK(journal.flush());
  }
  const auto rows = rows_of(file);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].count == 9);
  CHECK(rows[0].first_seen == std::time(nullptr) - 3600);
  CHECK(rows[0].last_seen >= std::time(nullptr) - 2);
}

TEST_CASE("fetches last seen before the retention period are deleted") {
  const std::string file = testing::temp_dir() + "/journal.sqlite";
  std::string error;
  const std::int64_t now = std::time(nullptr);
  {
    auto store = Store::open(file, 2000, error);
    REQUIRE(store);
    REQUIRE(store->add(
        {{"old@customer.example", "setup", "browser", now - 40 * 86400, now - 31 * 86400, 1},
         {"recent@customer.example", "setup", "browser", now - 40 * 86400, now - 29 * 86400, 1}},
        error));
  }
  {
    Options options = options_for(file);
    options.retention = std::chrono::hours(24 * 30);
    Journal journal(options);
    CHECK(journal.flush());
  }
  const auto rows = rows_of(file);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].address == "recent@customer.example");
}

TEST_CASE("a locked database never blocks record(): the rows wait and are written later") {
  const std::string file = testing::temp_dir() + "/journal.sqlite";
  std::string error;
  REQUIRE(Store::open(file, 0, error));
  sqlite3* locker = nullptr;
  REQUIRE(sqlite3_open(file.c_str(), &locker) == SQLITE_OK);
  REQUIRE(sqlite3_exec(locker, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
  {
    Journal journal(options_for(file));
    const auto failures = journal.stats().write_failures;
    const auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < 1000; ++i) {
      record(Door::AutodiscoverJson, "outlook", "erin" + std::to_string(i) + "@customer.example");
    }
    // 1000 records while the file is locked: no disk, no wait (well under a millisecond each).
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::milliseconds(500));
    CHECK_FALSE(journal.flush());
    CHECK(journal.stats().write_failures > failures);
    CHECK(journal.stats().pending == 1000);
    // A kept row folds with the same fetch recorded after the failed write (here through the
    // overload that takes the parse_email parts), a new one joins them.
    record(Door::AutodiscoverJson, "outlook", "erin7", "customer.example");
    record(Door::AutodiscoverJson, "outlook", "Zoe", "customer.example");
    CHECK_FALSE(journal.flush());
    CHECK(journal.stats().pending == 1001);
    REQUIRE(sqlite3_exec(locker, "ROLLBACK", nullptr, nullptr, nullptr) == SQLITE_OK);
    CHECK(journal.flush());
    CHECK(journal.stats().pending == 0);
  }
  sqlite3_close(locker);
  const auto rows = rows_of(file);
  REQUIRE(rows.size() == 1001);
  CHECK(rows[0].address == "Zoe@customer.example");  // in byte order: 'Z' before 'e'
  CHECK(rows[0].count == 1);
  for (const auto& row : rows) {
    CHECK(row.door == "autodiscover-json");
    CHECK(row.client == "outlook");
    CHECK(row.count == (row.address == "erin7@customer.example" ? 2 : 1));
  }
}

TEST_CASE("a file that cannot be opened is a counted failure, and a full buffer drops") {
  Journal journal(options_for("/proc/mailconfd-no-such-dir/journal.sqlite"));
  const Stats before = journal.stats();
  for (std::size_t i = 0; i < kMaxBuffered + 10; ++i) {
    record(Door::Redirect, "-", "frank@customer.example");
  }
  CHECK(journal.stats().dropped - before.dropped == 10);
  CHECK_FALSE(journal.flush());
  CHECK(journal.stats().write_failures > before.write_failures);
  CHECK(journal.stats().pending == 1);  // folded: one address, door and client
}

TEST_CASE("fetches are counted for /metrics by door and client kind, journal or not") {
  std::string before;
  append_metrics(before);
  record(Door::Mobileconfig, "apple", "gina@customer.example");
  record(Door::Mobileconfig, "-", "gina@customer.example");
  std::string after;
  append_metrics(after);
  auto value = [](const std::string& text, const std::string& series) {
    const auto at = text.find(series + " ");
    REQUIRE(at != std::string::npos);
    return std::stoll(text.substr(at + series.size() + 1));
  };
  const std::string apple =
      R"(mailconfd_settings_fetched_total{door="mobileconfig",client="apple"})";
  const std::string unknown =
      R"(mailconfd_settings_fetched_total{door="mobileconfig",client="unknown"})";
  CHECK(value(after, apple) - value(before, apple) == 1);
  CHECK(value(after, unknown) - value(before, unknown) == 1);
  CHECK(after.find("gina") == std::string::npos);
}

namespace {

std::int64_t page_size(const std::string& file) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  std::int64_t size = -1;
  sqlite3_exec(
      db, "PRAGMA page_size",
      [](void* n, int, char** values, char**) {
        *static_cast<std::int64_t*>(n) = std::stoll(values[0]);
        return 0;
      },
      &size, nullptr);
  sqlite3_close(db);
  return size;
}

}  // namespace

TEST_CASE("a new SQLite file has 64 KiB pages, a file made with 4 KiB pages keeps them and works") {
  const std::string fresh = testing::temp_dir() + "/fresh.sqlite";
  std::string error;
  {
    auto store = Store::open(fresh, 2000, error);
    REQUIRE_MESSAGE(store, error);
    REQUIRE(store->add({{"olga@customer.example", "autoconfig", "-", 5, 6, 1}}, error));
  }
  CHECK(page_size(fresh) == 65536);
  CHECK(rows_of(fresh).size() == 1);

  const std::string old = testing::temp_dir() + "/old.sqlite";
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(old.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db,
                       "PRAGMA page_size=4096; PRAGMA journal_mode=WAL;"
                       "CREATE TABLE fetch(address TEXT NOT NULL, door TEXT NOT NULL,"
                       " client TEXT NOT NULL, first_seen INTEGER NOT NULL,"
                       " last_seen INTEGER NOT NULL, fetches INTEGER NOT NULL,"
                       " PRIMARY KEY(address, door, client)) WITHOUT ROWID;"
                       "INSERT INTO fetch VALUES('paul@customer.example', 'setup', 'browser', 1, 2,"
                       " 3);",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  {
    auto store = Store::open(old, 2000, error);
    REQUIRE_MESSAGE(store, error);
    REQUIRE(store->add({{"paul@customer.example", "setup", "browser", 4, 9, 1}}, error));
  }
  CHECK(page_size(old) == 4096);
  const auto rows = rows_of(old);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].first_seen == 1);
  CHECK(rows[0].last_seen == 9);
  CHECK(rows[0].count == 4);
}
