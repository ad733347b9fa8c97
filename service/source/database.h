// The provider's database as a source of hosted domains and per-mailbox logins: reads the
// rows (PostgreSQL with libpq, MariaDB/MySQL with libmariadb), waits for changes (PostgreSQL
// LISTEN/NOTIFY, MariaDB a polled change marker), and keeps the last good rows in a snapshot
// file. Only the builder and watcher threads call this: a request never waits on
// a database.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "source/rows.h"

namespace mailconfd::source {

// The default queries: PostfixAdmin's tables (domain, alias_domain, mailbox) joined with
// mailconfd's own (deploy/database/postgresql.sql, mariadb.sql), the same SQL for both
// drivers. An alias domain (a row of domain, as PostfixAdmin requires, and an active row of
// alias_domain) gets its target's mailconfd_domain choices; each mailbox of the target with a
// login name gets it at the alias domain too (user@alias logs in as user@target does), unless
// that address is a mailbox of its own. A <domains-query> must give the DomainRow columns in
// their order, a <logins-query> the LoginRow columns.
inline constexpr std::string_view kDomainsQuery =
    "SELECT d.domain, m.provider, m.login, m.incoming, m.imap_host, m.pop3_host, m.smtp_host "
    "FROM domain d "
    "LEFT JOIN alias_domain a ON a.alias_domain = d.domain AND a.active "
    "LEFT JOIN mailconfd_domain m ON m.domain = COALESCE(a.target_domain, d.domain) "
    "WHERE d.active";
inline constexpr std::string_view kLoginsQuery =
    "SELECT b.username, l.login_name FROM mailbox b "
    "JOIN mailconfd_mailbox l ON l.username = b.username WHERE b.active "
    "UNION ALL "
    "SELECT concat(b.local_part, '@', a.alias_domain), l.login_name FROM alias_domain a "
    "JOIN mailbox b ON b.domain = a.target_domain "
    "JOIN mailconfd_mailbox l ON l.username = b.username "
    "WHERE a.active AND b.active AND NOT EXISTS (SELECT 1 FROM mailbox x "
    "WHERE x.username = concat(b.local_part, '@', a.alias_domain))";
// The change marker the triggers bump (MariaDB's watcher polls it), and the change log they
// write: one row (serial, domain) per changed row of a domain's, with serial the marker's new
// value. Bumping the one marker row serializes the writers, so serials are in commit order and
// without gaps: the rows after the serial a part was read at name every domain changed since
// (a serial with no row, e.g. after a TRUNCATE, or rows pruned away: read everything).
inline constexpr std::string_view kMarkerQuery = "SELECT serial FROM mailconfd_change";
// More changed domains than this at once: read every row instead.
inline constexpr std::size_t kMaxChangedDomains = 10000;
// The watcher's reasons: a change it saw (a NOTIFY, the marker moved), its first connection,
// and a connection made again after one was lost (which reads every row: a NOTIFY may have
// been lost with it). The first two read only what the change log names since the part was
// read (the first connection: what changed since the load at start).
inline constexpr std::string_view kChanged = "database changed";
inline constexpr std::string_view kConnected = "database connected";
inline constexpr std::string_view kReconnected = "database reconnected";
// PostgreSQL: the channel the triggers notify.
inline constexpr std::string_view kChannel = "mailconfd";

std::string_view driver_name(DatabaseOptions::Driver driver);  // "postgresql", "mariadb"

// One open connection: what a driver (postgresql.*, mariadb.*) provides. Not thread-safe;
// each thread opens its own.
class Connection {
 public:
  virtual ~Connection() = default;
  // One row's fields (NULL reads as empty), valid during the call only.
  using Each = std::function<void(const std::vector<std::string_view>& fields)>;
  // Starts a read-only transaction with one consistent view of every table. False: error.
  virtual bool begin(std::string& error) = 0;
  // Runs sql, which must give `columns` columns, and calls each for every row. False: error
  // says why (the database's message, or the column count).
  virtual bool query(const std::string& sql, std::size_t columns, const Each& each,
                     std::string& error) = 0;
  // Ends what begin started.
  virtual void end() = 0;
  enum class Wait { Changed, Quiet, Lost };
  // Starts watching for changes (LISTEN, or the marker's first reading). False: error.
  virtual bool watch(std::string& error) = 0;
  // Waits up to timeout for a change: Changed, Quiet (none), Lost (the connection broke).
  virtual Wait wait(std::chrono::milliseconds timeout) = 0;
  // The one call another thread may make, while the owner may be blocked in wait() or query()
  // on a server that stopped answering: shuts the socket down, so that they return at once
  // (Lost, or an error). The connection is of no use afterwards.
  virtual void cancel() {}
};

// "N columns; M expected": a driver's query() error for a query giving other columns.
std::string column_count_error(std::size_t got, std::size_t expected);

// Both queries (options' or the defaults) in one read-only transaction of connection.
// nullopt: error says why.
std::optional<Rows> fetch(Connection& connection, const DatabaseOptions& options,
                          std::string& error);

// Connects with options' DSN (connect timeout 5 s). Null: error says why (the DSN's password
// is never part of it).
std::unique_ptr<Connection> connect(const DatabaseOptions& options, std::string& error);

// The domains changed after serial `since` (the log's raw names, plus each alias domain of
// one), their rows and logins as the default queries give them, and the marker's serial, in one
// read-only transaction. complete false: the log cannot say (rows missing, a row with an empty
// name, or more than kMaxChangedDomains): read everything. nullopt: error says why.
struct Changes {
  std::uint64_t serial = 0;
  bool complete = true;
  std::vector<std::string> domains;
  Rows rows;
};
std::optional<Changes> fetch_changes(Connection& connection, std::uint64_t since,
                                     std::string& error);

struct LoadOptions {
  // A database that cannot be read gives the snapshot's rows instead (origin
  // "snapshot PATH", logged as a warning).
  bool snapshot_fallback = false;
  bool log_skipped = true;     // log each skipped row (`check` lists them itself)
  bool write_snapshot = true;  // after a good read, when a snapshot is configured
};

// Reads config.database's rows and builds the domain part (build_domains with previous),
// records it (status.h: skipped rows counted) and writes the snapshot, as options say.
// nullopt: error says why.
std::optional<Built> load_domains(const Config& config, const HostedDomains* previous,
                                  LoadOptions options, std::string& error);

// The next domain part after a change: with a change serial in previous (built for config) only
// the changed domains' rows are read and merged (apply_changes; record_update); otherwise, or
// when the change log cannot say what changed, every row (load_domains, full set). nullopt
// with an empty error: nothing changed; with an error: the database could not be read. A
// merged part is not written to the snapshot here: the caller hands it to a SnapshotWriter.
std::optional<Built> update_domains(const Config& config, const HostedDomains& previous, bool& full,
                                    std::string& error);

// The snapshot file: the rows of the last good load and when they were read, written to a
// temporary file, flushed and renamed over path (never half-written). False: error.
bool write_snapshot(const std::string& path, const Rows& rows,
                    std::chrono::system_clock::time_point read_at, std::string& error);
// The same file from a domain part (the rows it serves, as normalized; skipped rows are not in
// it), for the database's domains of config (not the file's).
bool write_snapshot(const std::string& path, const Config& config, const HostedDomains& domains,
                    std::string& error);
// Reads what write_snapshot wrote. nullopt: error (missing, unreadable, not a snapshot).
std::optional<Rows> read_snapshot(const std::string& path,
                                  std::chrono::system_clock::time_point& read_at,
                                  std::string& error);

}  // namespace mailconfd::source
