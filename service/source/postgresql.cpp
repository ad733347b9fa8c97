#include "source/postgresql.h"

#include <poll.h>

#include <algorithm>
#include <array>

#include <libpq-fe.h>

namespace mailconfd::source {
namespace {

struct PgConnFree {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct PgResultFree {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Conn = std::unique_ptr<PGconn, PgConnFree>;
using Result = std::unique_ptr<PGresult, PgResultFree>;

// libpq's messages end with a newline and may span lines; one line for the log.
std::string message_of(const PGconn* conn) {
  std::string m = PQerrorMessage(conn);
  std::replace(m.begin(), m.end(), '\n', ' ');
  while (!m.empty() && m.back() == ' ') m.pop_back();
  return m;
}

class Postgresql final : public Connection {
 public:
  explicit Postgresql(Conn conn) : conn_(std::move(conn)) {}

  std::optional<Rows> fetch(const DatabaseOptions& options, std::string& error) override {
    if (!command("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", error)) return std::nullopt;
    Rows rows;
    const std::string domains =
        options.domains_query.empty() ? std::string(kDomainsQuery) : options.domains_query;
    const std::string logins =
        options.logins_query.empty() ? std::string(kLoginsQuery) : options.logins_query;
    const bool ok = query(domains, 7, "domains", error,
                          [&](PGresult* r, int i) {
                            rows.domains.push_back({PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                                                    PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
                                                    PQgetvalue(r, i, 4), PQgetvalue(r, i, 5),
                                                    PQgetvalue(r, i, 6)});
                          }) &&
                    query(logins, 2, "logins", error, [&](PGresult* r, int i) {
                      rows.logins.push_back({PQgetvalue(r, i, 0), PQgetvalue(r, i, 1)});
                    });
    std::string ignored;
    command("COMMIT", ignored);
    if (!ok) return std::nullopt;
    return rows;
  }

  bool watch(std::string& error) override {
    return command("LISTEN " + std::string(kChannel), error);
  }

  Wait wait(std::chrono::milliseconds timeout) override {
    if (drain()) return Wait::Changed;
    pollfd fd{PQsocket(conn_.get()), POLLIN, 0};
    if (fd.fd < 0) return Wait::Lost;
    const int n = ::poll(&fd, 1, static_cast<int>(timeout.count()));
    if (n < 0) return Wait::Quiet;  // EINTR
    if (n == 0) return Wait::Quiet;
    if (PQconsumeInput(conn_.get()) == 0 || PQstatus(conn_.get()) != CONNECTION_OK) {
      return Wait::Lost;
    }
    return drain() ? Wait::Changed : Wait::Quiet;
  }

 private:
  // True when at least one notification was waiting (all are taken: one reload covers them).
  bool drain() {
    bool any = false;
    while (PGnotify* n = PQnotifies(conn_.get())) {
      PQfreemem(n);
      any = true;
    }
    return any;
  }

  bool command(const std::string& sql, std::string& error) {
    Result r(PQexec(conn_.get(), sql.c_str()));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      error = message_of(conn_.get());
      return false;
    }
    return true;
  }

  template <typename Each>
  bool query(const std::string& sql, int columns, const char* what, std::string& error, Each each) {
    Result r(PQexec(conn_.get(), sql.c_str()));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
      error = std::string(what) + " query: " + message_of(conn_.get());
      return false;
    }
    if (PQnfields(r.get()) != columns) {
      error = std::string(what) + " query gives " + std::to_string(PQnfields(r.get())) +
              " columns; " + std::to_string(columns) + " expected";
      return false;
    }
    const int n = PQntuples(r.get());
    for (int i = 0; i < n; ++i) each(r.get(), i);
    return true;
  }

  Conn conn_;
};

}  // namespace

std::unique_ptr<Connection> connect_postgresql(const std::string& dsn, std::string& error) {
  // dbname is expanded as a connection string or URI (expand_dbname); connect_timeout comes
  // first so that one in the DSN wins.
  const std::array<const char*, 4> keys{"connect_timeout", "application_name", "dbname", nullptr};
  const std::array<const char*, 4> values{"5", "mailconfd", dsn.c_str(), nullptr};
  Conn conn(PQconnectdbParams(keys.data(), values.data(), 1));
  if (!conn) {
    error = "out of memory";
    return nullptr;
  }
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    error = message_of(conn.get());
    return nullptr;
  }
  return std::make_unique<Postgresql>(std::move(conn));
}

}  // namespace mailconfd::source
