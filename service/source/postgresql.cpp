#include "source/postgresql.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <vector>

#include <libpq-fe.h>

namespace mailconfd::source {
namespace {

struct PgResultFree {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Conn = PgHandle;
using Result = std::unique_ptr<PGresult, PgResultFree>;

class Postgresql final : public Connection {
 public:
  explicit Postgresql(Conn conn) : conn_(std::move(conn)) {}

  bool begin(std::string& error) override {
    return command("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", error);
  }

  bool query(const std::string& sql, std::size_t columns, const Each& each,
             std::string& error) override {
    Result r(PQexec(conn_.get(), sql.c_str()));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
      error = pg_message(conn_.get());
      return false;
    }
    if (static_cast<std::size_t>(PQnfields(r.get())) != columns) {
      error = column_count_error(static_cast<std::size_t>(PQnfields(r.get())), columns);
      return false;
    }
    std::vector<std::string_view> fields(columns);
    const int n = PQntuples(r.get());
    for (int i = 0; i < n; ++i) {
      for (std::size_t c = 0; c < columns; ++c) {
        const int column = static_cast<int>(c);
        fields[c] = {PQgetvalue(r.get(), i, column),
                     static_cast<std::size_t>(PQgetlength(r.get(), i, column))};
      }
      each(fields);
    }
    return true;
  }

  void end() override {
    std::string ignored;
    command("COMMIT", ignored);
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

  void cancel() override {
    if (const int fd = PQsocket(conn_.get()); fd >= 0) ::shutdown(fd, SHUT_RDWR);
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
      error = pg_message(conn_.get());
      return false;
    }
    return true;
  }

  Conn conn_;
};

}  // namespace

void PgConnFree::operator()(PGconn* conn) const { PQfinish(conn); }

std::string pg_message(const PGconn* conn) {
  std::string m = PQerrorMessage(conn);
  std::replace(m.begin(), m.end(), '\n', ' ');
  while (!m.empty() && m.back() == ' ') m.pop_back();
  return m.empty() ? "unknown error" : m;
}

PgHandle open_postgresql(const std::string& dsn, const char* application_name, const char* options,
                         std::string& error) {
  // dbname is expanded as a connection string or URI (expand_dbname); the keys before it are
  // defaults the DSN may override.
  std::array<const char*, 5> keys{}, values{};  // null-terminated
  std::size_t n = 0;
  const auto add = [&](const char* key, const char* value) {
    keys[n] = key;
    values[n++] = value;
  };
  add("connect_timeout", "5");
  add("application_name", application_name);
  if (options != nullptr) add("options", options);
  add("dbname", dsn.c_str());
  PgHandle conn(PQconnectdbParams(keys.data(), values.data(), 1));
  if (!conn) {
    error = "out of memory";
    return nullptr;
  }
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    error = pg_message(conn.get());
    return nullptr;
  }
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  return conn;
}

std::unique_ptr<Connection> connect_postgresql(const std::string& dsn, std::string& error) {
  PgHandle conn = open_postgresql(dsn, "mailconfd", nullptr, error);
  if (!conn) return nullptr;
  return std::make_unique<Postgresql>(std::move(conn));
}

}  // namespace mailconfd::source
