// The settings journal in the provider's database (<journal dsn-file>): the same rows as the
// SQLite file, in tables every replica shares (deploy/database/postgresql.sql, mariadb.sql:
// mailconfd_journal_fetch, mailconfd_journal_history). Each batch of folded rows is one
// transaction of multi-row upserts: PostgreSQL INSERT … ON CONFLICT DO UPDATE, MariaDB
// INSERT … ON DUPLICATE KEY UPDATE, first seen the earlier, last seen the later, counts
// summed, so that two replicas writing the same mailbox add up. The role needs SELECT, INSERT,
// UPDATE and DELETE on those two tables only (the source's role stays read-only).
#pragma once

#include <memory>
#include <string>

#include "journal/store.h"

namespace mailconfd::journal {

// Connects with dsn (libpq's connection string or URI; connect timeout 5 s, statements at
// most 30 s). nullptr with error (never the password) on failure.
std::unique_ptr<Store> open_postgresql_store(const std::string& dsn, std::string& error);
// Connects with dsn (source/mariadb.h's key=value form; connect timeout 5 s, reads and writes
// at most 30 s). nullptr with error (never the password) on failure.
std::unique_ptr<Store> open_mariadb_store(const std::string& dsn, std::string& error);

}  // namespace mailconfd::journal
