// The PostgreSQL driver (libpq): see source/database.h.
#pragma once

#include <memory>
#include <string>

#include "source/database.h"

struct pg_conn;  // PGconn of <libpq-fe.h>

namespace mailconfd::source {

std::unique_ptr<Connection> connect_postgresql(const std::string& dsn, std::string& error);

// An open libpq connection, finished when it goes.
struct PgConnFree {
  void operator()(pg_conn* conn) const;
};
using PgHandle = std::unique_ptr<pg_conn, PgConnFree>;

// Connects with dsn (a connection string or URI; its own keys win over these defaults:
// connect_timeout 5 s, application_name, and options when not null, e.g. "-c
// statement_timeout=30000"): the one way the source and the journal
// (journal/postgresql_store.cpp) open a connection. The server's notices are not printed
// (a server shutting down says so before it closes; the errors that matter come back from
// the calls). Null: error says why (the password is never part of it).
PgHandle open_postgresql(const std::string& dsn, const char* application_name, const char* options,
                         std::string& error);

// libpq's last message for conn on one line (its messages end with a newline and may span
// lines); "unknown error" when it has none.
std::string pg_message(const pg_conn* conn);

}  // namespace mailconfd::source
