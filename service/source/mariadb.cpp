#include "source/mariadb.h"

#include <mysql.h>
#include <sys/socket.h>

#include <algorithm>
#include <mutex>
#include <thread>

namespace mailconfd::source {
namespace {

struct ResultFree {
  void operator()(MYSQL_RES* r) const { mysql_free_result(r); }
};
using Handle = MysqlHandle;
using Result = std::unique_ptr<MYSQL_RES, ResultFree>;

constexpr std::string_view kKeys[] = {"host",   "port",     "socket", "user",     "password",
                                      "dbname", "ssl-mode", "ssl-ca", "ssl-cert", "ssl-key"};
constexpr std::string_view kSslModes[] = {"disabled", "required", "verify-identity"};

class Mariadb final : public Connection {
 public:
  Mariadb(Handle handle, std::chrono::milliseconds poll)
      : handle_(std::move(handle)), poll_(poll) {}

  bool begin(std::string& error) override {
    return command("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY", error);
  }

  bool query(const std::string& sql, std::size_t columns, const Each& each,
             std::string& error) override {
    if (mysql_real_query(handle_.get(), sql.data(), sql.size()) != 0) {
      error = message();
      return false;
    }
    Result result(mysql_use_result(handle_.get()));
    if (!result) {
      error = mysql_errno(handle_.get()) != 0 ? message() : column_count_error(0, columns);
      return false;
    }
    const std::size_t got = mysql_num_fields(result.get());
    if (got != columns) {
      error = column_count_error(got, columns);
      while (mysql_fetch_row(result.get()) != nullptr) {
      }
      return false;
    }
    std::vector<std::string_view> fields(columns);
    while (MYSQL_ROW row = mysql_fetch_row(result.get())) {
      const unsigned long* lengths = mysql_fetch_lengths(result.get());
      for (std::size_t i = 0; i < columns; ++i) {
        fields[i] = row[i] != nullptr ? std::string_view(row[i], lengths[i]) : std::string_view();
      }
      each(fields);
    }
    if (mysql_errno(handle_.get()) != 0) {  // the connection broke in the middle
      error = message();
      return false;
    }
    return true;
  }

  void end() override {
    std::string ignored;
    command("COMMIT", ignored);
  }

  bool watch(std::string& error) override {
    auto serial = marker(error);
    if (!serial) return false;
    serial_ = std::move(*serial);
    next_poll_ = std::chrono::steady_clock::now() + poll_;
    return true;
  }

  // Sleeps until the next poll is due (at most timeout), then reads the marker.
  Wait wait(std::chrono::milliseconds timeout) override {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_poll_) {
      std::this_thread::sleep_for(
          std::min<std::chrono::steady_clock::duration>(timeout, next_poll_ - now));
      if (std::chrono::steady_clock::now() < next_poll_) return Wait::Quiet;
    }
    next_poll_ = std::chrono::steady_clock::now() + poll_;
    std::string error;
    auto serial = marker(error);
    if (!serial) return Wait::Lost;
    if (*serial == serial_) return Wait::Quiet;
    serial_ = std::move(*serial);
    return Wait::Changed;
  }

  void cancel() override {
    const my_socket fd = mysql_get_socket(handle_.get());
    if (fd != MARIADB_INVALID_SOCKET) ::shutdown(fd, SHUT_RDWR);
  }

 private:
  std::string message() const { return mysql_error(handle_.get()); }

  bool command(const std::string& sql, std::string& error) {
    if (mysql_real_query(handle_.get(), sql.data(), sql.size()) != 0) {
      error = message();
      return false;
    }
    return true;
  }

  // The marker's value; nullopt when it cannot be read (the table or its row missing is an
  // error too: without it no change would ever be seen).
  std::optional<std::string> marker(std::string& error) {
    std::optional<std::string> serial;
    const bool ok = query(
        std::string(kMarkerQuery), 1, [&](const auto& f) { serial = std::string(f[0]); }, error);
    if (!ok) {
      error = "change marker: " + error;
      return std::nullopt;
    }
    if (!serial) error = "change marker: mailconfd_change has no row";
    return serial;
  }

  Handle handle_;
  std::chrono::milliseconds poll_;
  std::string serial_;
  std::chrono::steady_clock::time_point next_poll_;
};

}  // namespace

std::optional<std::map<std::string, std::string>> parse_mariadb_dsn(std::string_view dsn,
                                                                    std::string& error) {
  std::map<std::string, std::string> pairs;
  std::size_t i = 0;
  const auto blank = [](char c) { return c == ' ' || c == '\t'; };
  while (i < dsn.size()) {
    if (blank(dsn[i])) {
      ++i;
      continue;
    }
    std::size_t eq = i;
    while (eq < dsn.size() && dsn[eq] != '=' && !blank(dsn[eq])) ++eq;
    if (eq == dsn.size() || dsn[eq] != '=') {
      error = "DSN: expected key=value at offset " + std::to_string(i);
      return std::nullopt;
    }
    std::string key(dsn.substr(i, eq - i));
    if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys)) {
      error = "DSN: unknown key '" + printable_key(key) +
              "' (host, port, socket, user, password, dbname, ssl-mode, ssl-ca, ssl-cert, ssl-key)";
      return std::nullopt;
    }
    if (pairs.contains(key)) {
      error = "DSN: " + key + " given twice";
      return std::nullopt;
    }
    std::string value;
    i = eq + 1;
    if (i < dsn.size() && dsn[i] == '\'') {
      ++i;
      while (i < dsn.size() && dsn[i] != '\'') {
        if (dsn[i] == '\\' && i + 1 < dsn.size()) ++i;
        value.push_back(dsn[i++]);
      }
      if (i == dsn.size()) {
        error = "DSN: the quoted value of " + key + " has no closing quote";
        return std::nullopt;
      }
      ++i;
    } else {
      while (i < dsn.size() && !blank(dsn[i])) {
        if (dsn[i] == '\\' && i + 1 < dsn.size()) ++i;
        value.push_back(dsn[i++]);
      }
    }
    if (key == "port") {
      const bool digits =
          !value.empty() && value.size() <= 5 &&
          std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (!digits || std::stoul(value) == 0 || std::stoul(value) > 65535) {
        error = "DSN: port must be a number from 1 to 65535";
        return std::nullopt;
      }
    }
    if (key == "ssl-mode" &&
        std::find(std::begin(kSslModes), std::end(kSslModes), value) == std::end(kSslModes)) {
      error = "DSN: ssl-mode must be disabled, required or verify-identity";
      return std::nullopt;
    }
    pairs[key] = std::move(value);
  }
  if (pairs.contains("ssl-cert") != pairs.contains("ssl-key")) {
    error = "DSN: ssl-cert and ssl-key go together";
    return std::nullopt;
  }
  if (!pairs.contains("ssl-mode")) {
    pairs["ssl-mode"] = pairs.contains("ssl-ca") ? "verify-identity" : "disabled";
  } else if (pairs.at("ssl-mode") == "disabled" &&
             (pairs.contains("ssl-ca") || pairs.contains("ssl-cert"))) {
    error = "DSN: ssl-ca, ssl-cert and ssl-key need ssl-mode required or verify-identity";
    return std::nullopt;
  }
  return pairs;
}

void init_mariadb_library() {
  // mysql_init initializes the library on first use, which is not thread-safe: the builder,
  // the watcher and the journal's writer connect from different threads.
  static std::once_flag initialized;
  std::call_once(initialized, [] { mysql_library_init(0, nullptr, nullptr); });
}

void MysqlClose::operator()(MYSQL* m) const { mysql_close(m); }

MysqlHandle open_mariadb(const std::string& dsn, std::string& error) {
  auto pairs = parse_mariadb_dsn(dsn, error);
  if (!pairs) return nullptr;
  init_mariadb_library();
  MysqlHandle handle(mysql_init(nullptr));
  if (!handle) {
    error = "out of memory";
    return nullptr;
  }
  // Connecting waits at most 5 s; a server that stops answering is given up after 30 s
  // (one read of a large result may take a while).
  const unsigned int connect_timeout = 5;
  const unsigned int io_timeout = 30;
  mysql_optionsv(handle.get(), MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
  mysql_optionsv(handle.get(), MYSQL_OPT_READ_TIMEOUT, &io_timeout);
  mysql_optionsv(handle.get(), MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
  mysql_optionsv(handle.get(), MYSQL_SET_CHARSET_NAME, "utf8mb4");
  const auto get = [&](const char* key) -> const char* {
    auto it = pairs->find(key);
    return it == pairs->end() ? nullptr : it->second.c_str();
  };
  // TLS: required encrypts (libmariadb checks the chain only against a given ssl-ca);
  // verify-identity also checks that it chains to ssl-ca (or the system's CAs) and names host.
  if (const std::string& mode = pairs->at("ssl-mode"); mode != "disabled") {
    const my_bool on = 1;
    mysql_optionsv(handle.get(), MYSQL_OPT_SSL_ENFORCE, &on);
    if (const char* ca = get("ssl-ca")) mysql_optionsv(handle.get(), MYSQL_OPT_SSL_CA, ca);
    if (const char* cert = get("ssl-cert")) {
      mysql_optionsv(handle.get(), MYSQL_OPT_SSL_CERT, cert);
      mysql_optionsv(handle.get(), MYSQL_OPT_SSL_KEY, get("ssl-key"));
    }
    if (mode == "verify-identity") {
      mysql_optionsv(handle.get(), MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on);
    }
  }
  const unsigned int port =
      pairs->contains("port") ? static_cast<unsigned int>(std::stoul(pairs->at("port"))) : 0;
  if (mysql_real_connect(handle.get(), get("host"), get("user"), get("password"), get("dbname"),
                         port, get("socket"), 0) == nullptr) {
    error = mysql_error(handle.get());
    return nullptr;
  }
  return handle;
}

std::unique_ptr<Connection> connect_mariadb(const std::string& dsn, std::chrono::milliseconds poll,
                                            std::string& error) {
  MysqlHandle handle = open_mariadb(dsn, error);
  if (!handle) return nullptr;
  return std::make_unique<Mariadb>(std::move(handle), poll);
}

}  // namespace mailconfd::source
