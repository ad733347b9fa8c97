#include <mysql.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "journal/database_store.h"
#include "source/mariadb.h"
#include "source/mariadb_sql.h"

namespace mailconfd::journal {
namespace {

using Handle = source::MysqlHandle;

// Rows per statement (a few hundred KB, far below max_allowed_packet's 16 MB default).
constexpr std::size_t kChunk = 1000;

class Mariadb final : public Store, private source::MysqlSession {
 public:
  explicit Mariadb(Handle handle) : MysqlSession(std::move(handle)) {}

  bool add_rows(const std::vector<Row>& rows, std::string& error) override {
    if (rows.empty()) return true;
    if (!command("START TRANSACTION", error)) return false;
    std::string sql;
    for (std::size_t start = 0; start < rows.size(); start += kChunk) {
      const std::size_t end = std::min(rows.size(), start + kChunk);
      sql.assign(
          "INSERT INTO mailconfd_journal_fetch "
          "(address, door, client, first_seen, last_seen, fetches) VALUES ");
      for (std::size_t i = start; i < end; ++i) {
        const Row& r = rows[i];
        if (i > start) sql.push_back(',');
        sql.push_back('(');
        quoted(sql, r.address);
        sql.push_back(',');
        quoted(sql, r.door);
        sql.push_back(',');
        quoted(sql, r.client);
        sql += ',' + std::to_string(r.first_seen) + ',' + std::to_string(r.last_seen) + ',' +
               std::to_string(r.count) + ')';
      }
      sql +=
          " ON DUPLICATE KEY UPDATE first_seen = LEAST(first_seen, VALUES(first_seen)), "
          "last_seen = GREATEST(last_seen, VALUES(last_seen)), "
          "fetches = fetches + VALUES(fetches)";
      if (!command(sql, error)) {
        rollback();
        return false;
      }
    }
    if (!command("COMMIT", error)) {
      rollback();
      return false;
    }
    return true;
  }

  std::int64_t expire(std::int64_t cutoff, std::string& error) override {
    if (!command("DELETE FROM mailconfd_journal_fetch WHERE last_seen < " + std::to_string(cutoff),
                 error)) {
      return -1;
    }
    return static_cast<std::int64_t>(mysql_affected_rows(handle_.get()));
  }

  bool fetches(std::vector<Fetch>& out, std::string& error) override {
    return select(
        "SELECT address, door, client, first_seen, last_seen, fetches "
        "FROM mailconfd_journal_fetch ORDER BY address, door, client",
        6,
        [&out](MYSQL_ROW row, const unsigned long* lengths) {
          out.push_back({text(row, lengths, 0), text(row, lengths, 1), text(row, lengths, 2),
                         integer(row, 3), integer(row, 4), integer(row, 5)});
        },
        error);
  }

  bool put_day(const DayCounts& c, std::string& error) override {
    std::string sql =
        "REPLACE INTO mailconfd_journal_history (day, at_risk, fetched, switched, ambiguous, "
        "broke, login_failing, unknown) VALUES (";
    quoted(sql, c.day);
    for (std::int64_t n :
         {c.at_risk, c.fetched, c.switched, c.ambiguous, c.broke, c.login_failing, c.unknown}) {
      sql += ',' + std::to_string(n);
    }
    sql.push_back(')');
    return command(sql, error);
  }

  bool days(std::vector<DayCounts>& out, std::string& error) override {
    return select(
        "SELECT day, at_risk, fetched, switched, ambiguous, broke, login_failing, unknown "
        "FROM mailconfd_journal_history ORDER BY day",
        8,
        [&out](MYSQL_ROW row, const unsigned long* lengths) {
          DayCounts d;
          d.day = text(row, lengths, 0);
          d.at_risk = integer(row, 1);
          d.fetched = integer(row, 2);
          d.switched = integer(row, 3);
          d.ambiguous = integer(row, 4);
          d.broke = integer(row, 5);
          d.login_failing = integer(row, 6);
          d.unknown = integer(row, 7);
          out.push_back(std::move(d));
        },
        error);
  }

 private:
  static std::int64_t integer(MYSQL_ROW row, int i) {
    return row[i] != nullptr ? std::strtoll(row[i], nullptr, 10) : 0;
  }
  void rollback() {
    std::string ignored;
    command("ROLLBACK", ignored);
  }
};

}  // namespace

std::unique_ptr<Store> open_mariadb_store(const std::string& dsn, std::string& error) {
  Handle handle = source::open_mariadb(dsn, error);
  if (!handle) return nullptr;
  return std::make_unique<Mariadb>(std::move(handle));
}

}  // namespace mailconfd::journal
