// The MariaDB/MySQL driver (libmariadb): see source/database.h. MariaDB has no LISTEN/NOTIFY:
// the triggers of deploy/database/mariadb.sql bump mailconfd_change.serial, and wait() reads
// it every poll interval (<database poll>).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "source/database.h"

struct st_mysql;  // MYSQL of <mysql.h>

namespace mailconfd::source {

// The DSN: key=value pairs separated by blanks, as libpq's: host, port, socket, user,
// password, dbname, and TLS: ssl-mode (disabled; required: encrypted, the certificate checked
// against ssl-ca only when one is given; verify-identity: it must chain to ssl-ca, else the
// system's CAs, and name host), ssl-ca (a PEM file), ssl-cert and ssl-key (a client
// certificate, together). ssl-mode defaults to verify-identity with ssl-ca, else disabled;
// the result always has it. A value in single quotes may hold blanks, a backslash escapes the
// next character. nullopt: error names the offset or the key that is wrong (never a value).
std::optional<std::map<std::string, std::string>> parse_mariadb_dsn(std::string_view dsn,
                                                                    std::string& error);

// mysql_library_init, once per process (it is not thread-safe; the source's threads and the
// journal's writer connect from different threads). Every connect calls it.
void init_mariadb_library();

// An open libmariadb connection, closed when it goes.
struct MysqlClose {
  void operator()(st_mysql* m) const;
};
using MysqlHandle = std::unique_ptr<st_mysql, MysqlClose>;

// Connects as dsn says (connect timeout 5 s, read and write timeouts 30 s, utf8mb4): the one
// way the source and the journal (journal/mariadb_store.cpp) open a connection. Null: error
// says why (the password is never part of it).
MysqlHandle open_mariadb(const std::string& dsn, std::string& error);

// Connects as dsn says (connect timeout 5 s, read and write timeouts 30 s). Null: error says
// why (the password is never part of it).
std::unique_ptr<Connection> connect_mariadb(const std::string& dsn, std::chrono::milliseconds poll,
                                            std::string& error);

}  // namespace mailconfd::source
