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

namespace mailconfd::source {

// The DSN: key=value pairs separated by blanks, as libpq's: host, port, socket, user,
// password, dbname; a value in single quotes may hold blanks, a backslash escapes the next
// character. nullopt: error names the offset or the key that is wrong (never a value).
std::optional<std::map<std::string, std::string>> parse_mariadb_dsn(std::string_view dsn,
                                                                    std::string& error);

// mysql_library_init, once per process (it is not thread-safe; the source's threads and the
// journal's writer connect from different threads). Every connect calls it.
void init_mariadb_library();

// Connects as dsn says (connect timeout 5 s, read and write timeouts 30 s). Null: error says
// why (the password is never part of it).
std::unique_ptr<Connection> connect_mariadb(const std::string& dsn, std::chrono::milliseconds poll,
                                            std::string& error);

}  // namespace mailconfd::source
