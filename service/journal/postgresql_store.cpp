#include <algorithm>
#include <array>
#include <cstdlib>
#include <string>
#include <vector>

#include <libpq-fe.h>

#include "journal/database_store.h"
#include "source/postgresql.h"

namespace mailconfd::journal {
namespace {

struct PgResultFree {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Conn = source::PgHandle;
using Result = std::unique_ptr<PGresult, PgResultFree>;

// Rows per statement: one round trip carries this many upserts.
constexpr std::size_t kChunk = 5000;

constexpr const char* kUpsert =
    "INSERT INTO mailconfd_journal_fetch AS f "
    "(address, door, client, first_seen, last_seen, fetches) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], "
    "$6::bigint[]) "
    "ON CONFLICT (address, door, client) DO UPDATE SET "
    "first_seen = LEAST(f.first_seen, EXCLUDED.first_seen), "
    "last_seen = GREATEST(f.last_seen, EXCLUDED.last_seen), "
    "fetches = f.fetches + EXCLUDED.fetches";

// A text[] literal's element: quoted, backslash before " and \.
void array_text(std::string& out, std::string_view value) {
  out.push_back('"');
  for (char c : value) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
}

class Postgresql final : public Store {
 public:
  explicit Postgresql(Conn conn) : conn_(std::move(conn)) {}

  bool add_rows(const std::vector<Row>& rows, std::string& error) override {
    if (rows.empty()) return true;
    if (!command("BEGIN", error)) return false;
    std::array<std::string, 6> arrays;
    for (std::size_t start = 0; start < rows.size(); start += kChunk) {
      const std::size_t end = std::min(rows.size(), start + kChunk);
      for (std::string& a : arrays) a.assign("{");
      for (std::size_t i = start; i < end; ++i) {
        const Row& r = rows[i];
        if (i > start) {
          for (std::string& a : arrays) a.push_back(',');
        }
        array_text(arrays[0], r.address);
        array_text(arrays[1], r.door);
        array_text(arrays[2], r.client);
        arrays[3] += std::to_string(r.first_seen);
        arrays[4] += std::to_string(r.last_seen);
        arrays[5] += std::to_string(r.count);
      }
      std::array<const char*, 6> values{};
      for (std::size_t i = 0; i < arrays.size(); ++i) {
        arrays[i].push_back('}');
        values[i] = arrays[i].c_str();
      }
      Result r(PQexecParams(conn_.get(), kUpsert, 6, nullptr, values.data(), nullptr, nullptr, 0));
      if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
        error = source::pg_message(conn_.get());
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
    const std::string text = std::to_string(cutoff);
    const char* values[] = {text.c_str()};
    Result r(PQexecParams(conn_.get(), "DELETE FROM mailconfd_journal_fetch WHERE last_seen < $1",
                          1, nullptr, values, nullptr, nullptr, 0));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK)
      return error = source::pg_message(conn_.get()), -1;
    return std::strtoll(PQcmdTuples(r.get()), nullptr, 10);
  }

  bool fetches(std::vector<Fetch>& out, std::string& error) override {
    Result r(PQexec(conn_.get(),
                    "SELECT address, door, client, first_seen, last_seen, fetches "
                    "FROM mailconfd_journal_fetch "
                    "ORDER BY address COLLATE \"C\", door COLLATE \"C\", client COLLATE \"C\""));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
      return error = source::pg_message(conn_.get()), false;
    const int n = PQntuples(r.get());
    out.reserve(out.size() + static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      out.push_back({text(r.get(), i, 0), text(r.get(), i, 1), text(r.get(), i, 2),
                     integer(r.get(), i, 3), integer(r.get(), i, 4), integer(r.get(), i, 5)});
    }
    return true;
  }

  bool put_day(const DayCounts& c, std::string& error) override {
    const std::array<std::string, 8> texts{c.day,
                                           std::to_string(c.at_risk),
                                           std::to_string(c.fetched),
                                           std::to_string(c.switched),
                                           std::to_string(c.ambiguous),
                                           std::to_string(c.broke),
                                           std::to_string(c.login_failing),
                                           std::to_string(c.unknown)};
    std::array<const char*, 8> values{};
    for (std::size_t i = 0; i < texts.size(); ++i) values[i] = texts[i].c_str();
    Result r(PQexecParams(
        conn_.get(),
        "INSERT INTO mailconfd_journal_history (day, at_risk, fetched, switched, ambiguous, "
        "broke, login_failing, unknown) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
        "ON CONFLICT (day) DO UPDATE SET at_risk = EXCLUDED.at_risk, fetched = EXCLUDED.fetched, "
        "switched = EXCLUDED.switched, ambiguous = EXCLUDED.ambiguous, broke = EXCLUDED.broke, "
        "login_failing = EXCLUDED.login_failing, unknown = EXCLUDED.unknown",
        8, nullptr, values.data(), nullptr, nullptr, 0));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK)
      return error = source::pg_message(conn_.get()), false;
    return true;
  }

  bool days(std::vector<DayCounts>& out, std::string& error) override {
    Result r(PQexec(conn_.get(),
                    "SELECT day, at_risk, fetched, switched, ambiguous, broke, login_failing, "
                    "unknown FROM mailconfd_journal_history ORDER BY day COLLATE \"C\""));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
      return error = source::pg_message(conn_.get()), false;
    const int n = PQntuples(r.get());
    for (int i = 0; i < n; ++i) {
      DayCounts d;
      d.day = text(r.get(), i, 0);
      d.at_risk = integer(r.get(), i, 1);
      d.fetched = integer(r.get(), i, 2);
      d.switched = integer(r.get(), i, 3);
      d.ambiguous = integer(r.get(), i, 4);
      d.broke = integer(r.get(), i, 5);
      d.login_failing = integer(r.get(), i, 6);
      d.unknown = integer(r.get(), i, 7);
      out.push_back(std::move(d));
    }
    return true;
  }

 private:
  static std::string text(const PGresult* r, int row, int column) {
    return {PQgetvalue(r, row, column), static_cast<std::size_t>(PQgetlength(r, row, column))};
  }
  static std::int64_t integer(const PGresult* r, int row, int column) {
    return std::strtoll(PQgetvalue(r, row, column), nullptr, 10);
  }

  bool command(const char* sql, std::string& error) {
    Result r(PQexec(conn_.get(), sql));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      error = source::pg_message(conn_.get());
      return false;
    }
    return true;
  }
  void rollback() {
    if (PQstatus(conn_.get()) != CONNECTION_OK) return;
    Result r(PQexec(conn_.get(), "ROLLBACK"));
  }

  Conn conn_;
};

}  // namespace

std::unique_ptr<Store> open_postgresql_store(const std::string& dsn, std::string& error) {
  Conn conn =
      source::open_postgresql(dsn, "mailconfd-journal", "-c statement_timeout=30000", error);
  if (!conn) return nullptr;
  return std::make_unique<Postgresql>(std::move(conn));
}

}  // namespace mailconfd::journal
