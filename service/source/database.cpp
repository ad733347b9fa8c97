#include "source/database.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include <spdlog/spdlog.h>

#include "core/email_address.h"
#include "core/utc_time.h"
#include "source/mariadb.h"
#include "source/postgresql.h"
#include "source/status.h"

namespace mailconfd::source {
namespace {

constexpr std::string_view kSnapshotMagic = "mailconfd-snapshot 1";

// Fields are separated by tabs and rows by newlines; a backslash escapes \, tab and newline.
void put_field(std::string& out, std::string_view field) {
  for (char c : field) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
}

std::vector<std::string> split_fields(std::string_view line) {
  std::vector<std::string> fields(1);
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == '\t') {
      fields.emplace_back();
    } else if (c == '\\' && i + 1 < line.size()) {
      const char e = line[++i];
      fields.back().push_back(e == 't' ? '\t' : e == 'n' ? '\n' : e);
    } else {
      fields.back().push_back(c);
    }
  }
  return fields;
}

std::optional<std::uint64_t> number(std::string_view text) {
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return n;
}

// The marker's serial in the current transaction. False: error says why.
bool read_serial(Connection& connection, std::optional<std::uint64_t>& serial, std::string& error) {
  serial.reset();
  bool number_ok = true;
  if (!connection.query(
          std::string(kMarkerQuery), 1,
          [&](const std::vector<std::string_view>& f) {
            serial = number(f[0]);
            number_ok = serial.has_value();
          },
          error)) {
    return false;
  }
  if (!serial) error = number_ok ? "mailconfd_change has no row" : "serial is not a number";
  return serial.has_value();
}

// The marker's serial, and whether the log can be read too (no rows: the serial's own and
// later ones come from transactions this one does not see). False: error says why, and serial
// is unset.
bool read_change_log(Connection& connection, std::optional<std::uint64_t>& serial,
                     std::string& error) {
  if (!read_serial(connection, serial, error)) return false;
  const bool readable = connection.query(
      "SELECT count(*) FROM mailconfd_changed WHERE id > " + std::to_string(*serial), 1,
      [](const std::vector<std::string_view>&) {}, error);
  if (!readable) serial.reset();
  return readable;
}

// The rest of fetch_changes's common table expression after k's range: e is every changed
// domain and each alias domain of one (its choices and logins are its target's).
constexpr std::string_view kChangedDomains =
    "), e AS (SELECT domain FROM k UNION "
    "SELECT a.alias_domain FROM alias_domain a JOIN k ON a.target_domain = k.domain) ";
// kLoginsQuery for the domains of e.
constexpr std::string_view kChangedLoginsQuery =
    "SELECT b.username, l.login_name FROM mailbox b "
    "JOIN mailconfd_mailbox l ON l.username = b.username "
    "WHERE b.active AND b.domain IN (SELECT domain FROM e) "
    "UNION ALL "
    "SELECT concat(b.local_part, '@', a.alias_domain), l.login_name FROM alias_domain a "
    "JOIN mailbox b ON b.domain = a.target_domain "
    "JOIN mailconfd_mailbox l ON l.username = b.username "
    "WHERE a.active AND b.active AND a.alias_domain IN (SELECT domain FROM e) AND NOT EXISTS "
    "(SELECT 1 FROM mailbox x WHERE x.username = concat(b.local_part, '@', a.alias_domain))";

// Snapshots are written by the builder thread (full loads) and a SnapshotWriter's thread
// (merged parts): one at a time, and never one read before the newest written.
std::mutex snapshot_mutex;
std::map<std::string, std::chrono::system_clock::time_point> snapshot_written_at;  // by path

bool commit_snapshot(const std::string& path, const std::string& out,
                     std::chrono::system_clock::time_point read_at, std::string& error);

std::string snapshot_header(std::chrono::system_clock::time_point read_at) {
  std::string out(kSnapshotMagic);
  out.push_back('\t');
  out += std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(read_at.time_since_epoch()).count());
  out.push_back('\n');
  return out;
}

}  // namespace

std::string_view driver_name(DatabaseOptions::Driver driver) {
  switch (driver) {
    case DatabaseOptions::Driver::Postgresql:
      return "postgresql";
    case DatabaseOptions::Driver::Mariadb:
      return "mariadb";
  }
  return "?";
}

std::unique_ptr<Connection> connect(const DatabaseOptions& options, std::string& error) {
  switch (options.driver) {
    case DatabaseOptions::Driver::Mariadb:
      return connect_mariadb(options.dsn, options.poll, error);
    case DatabaseOptions::Driver::Postgresql:
      break;
  }
  return connect_postgresql(options.dsn, error);
}

std::string column_count_error(std::size_t got, std::size_t expected) {
  return std::to_string(got) + " columns; " + std::to_string(expected) + " expected";
}

std::optional<Rows> fetch(Connection& connection, const DatabaseOptions& options,
                          std::string& error) {
  if (!connection.begin(error)) return std::nullopt;
  Rows rows;
  const std::string domains =
      options.domains_query.empty() ? std::string(kDomainsQuery) : options.domains_query;
  const std::string logins =
      options.logins_query.empty() ? std::string(kLoginsQuery) : options.logins_query;
  std::string why;
  const auto text = [](std::string_view v) { return std::string(v); };
  bool ok = connection.query(
      domains, 7,
      [&](const std::vector<std::string_view>& f) {
        rows.domains.push_back(
            {text(f[0]), text(f[1]), text(f[2]), text(f[3]), text(f[4]), text(f[5]), text(f[6])});
      },
      why);
  if (!ok) {
    error = "domains query: " + why;
  } else if (ok = connection.query(
                 logins, 2,
                 [&](const std::vector<std::string_view>& f) {
                   rows.logins.push_back({text(f[0]), text(f[1])});
                 },
                 why);
             !ok) {
    error = "logins query: " + why;
  } else if (options.domains_query.empty() && options.logins_query.empty() &&
             !read_change_log(connection, rows.change_serial, why)) {
    // Kept going: without the change log (an older deploy/database script, or no SELECT on
    // it) every change reads all rows, as before it existed.
    spdlog::warn("{}: change log not read ({}); every change reads all rows",
                 driver_name(options.driver), why);
  }
  connection.end();
  if (!ok) return std::nullopt;
  return rows;
}

std::optional<Changes> fetch_changes(Connection& connection, std::uint64_t since,
                                     std::string& error) {
  if (!connection.begin(error)) return std::nullopt;
  Changes changes;
  std::optional<std::uint64_t> serial;
  std::string why;
  bool ok = read_serial(connection, serial, why);
  if (ok) changes.serial = *serial;
  if (ok && changes.serial < since) changes.complete = false;  // the marker went back
  if (ok && changes.complete && changes.serial > since) {
    const std::string range =
        " WHERE id > " + std::to_string(since) + " AND id <= " + std::to_string(changes.serial);
    std::uint64_t count = 0, distinct = 0, blank = 0;
    ok = connection.query(
        "SELECT count(*), count(DISTINCT domain), count(CASE WHEN domain = '' THEN 1 END) "
        "FROM mailconfd_changed" +
            range,
        3,
        [&](const std::vector<std::string_view>& f) {
          count = number(f[0]).value_or(0);
          distinct = number(f[1]).value_or(0);
          blank = number(f[2]).value_or(1);
        },
        why);
    if (ok && (count != changes.serial - since || blank != 0 || distinct > kMaxChangedDomains)) {
      changes.complete = false;
    }
  }
  if (ok && changes.complete && changes.serial > since) {
    const std::string cte = "WITH k AS (SELECT DISTINCT domain FROM mailconfd_changed WHERE id > " +
                            std::to_string(since) + " AND id <= " + std::to_string(changes.serial) +
                            std::string(kChangedDomains);
    const auto text = [](std::string_view v) { return std::string(v); };
    ok = connection.query(
        cte + "SELECT domain FROM e", 1,
        [&](const std::vector<std::string_view>& f) { changes.domains.push_back(text(f[0])); },
        why);
    if (ok) {
      ok = connection.query(
          cte + std::string(kDomainsQuery) + " AND d.domain IN (SELECT domain FROM e)", 7,
          [&](const std::vector<std::string_view>& f) {
            changes.rows.domains.push_back({text(f[0]), text(f[1]), text(f[2]), text(f[3]),
                                            text(f[4]), text(f[5]), text(f[6])});
          },
          why);
    }
    if (ok) {
      ok = connection.query(
          cte + std::string(kChangedLoginsQuery), 2,
          [&](const std::vector<std::string_view>& f) {
            changes.rows.logins.push_back({text(f[0]), text(f[1])});
          },
          why);
    }
  }
  connection.end();
  if (!ok) {
    error = "change log: " + why;
    return std::nullopt;
  }
  return changes;
}

std::optional<Built> update_domains(const Config& config, const HostedDomains& previous, bool& full,
                                    std::string& error) {
  const DatabaseOptions& options = *config.database;
  const std::string_view name = driver_name(options.driver);
  full = false;
  if (previous.change_serial && options.domains_query.empty() && options.logins_query.empty()) {
    const std::uint64_t since = *previous.change_serial;
    std::string why;
    auto connection = connect(options, why);
    std::optional<Changes> changes;
    if (!connection) {
      record_failure("connect");
    } else if (changes = fetch_changes(*connection, since, why); !changes) {
      record_failure("fetch");
    }
    const bool connected = connection != nullptr;
    connection.reset();
    if (!connected) {
      error = std::string(name) + ": " + why;
      return std::nullopt;
    }
    if (!changes) {
      // Connected, but the log could not be read (e.g. SELECT on it revoked): every row.
      spdlog::warn("{}: {}; reading every row", name, why);
    } else if (changes->complete) {
      if (changes->serial == since) return std::nullopt;  // nothing changed
      // The names as the part holds them, and (for the skipped-row gauges) as the rows spell
      // them too.
      std::vector<std::string> normalized;
      std::vector<std::string> keys;
      for (const std::string& raw : changes->domains) {
        keys.push_back(raw);
        if (auto n = normalize_domain(raw)) {
          keys.push_back(*n);
          normalized.push_back(std::move(*n));
        }
      }
      changes->rows.change_serial = changes->serial;
      Built built = apply_changes(config, previous, normalized, changes->rows,
                                  std::chrono::system_clock::now());
      record_update(built, keys, true);
      spdlog::info("{}: {} changed domains read (change log {} to {}), {} skipped rows", name,
                   changes->domains.size(), since, changes->serial, built.skipped.size());
      return built;
    } else {
      spdlog::info("{}: the change log cannot say what changed after {}; reading every row", name,
                   since);
    }
  }
  full = true;
  return load_domains(config, &previous, {}, error);
}

std::optional<Built> load_domains(const Config& config, const HostedDomains* previous,
                                  LoadOptions load, std::string& error) {
  const DatabaseOptions& options = *config.database;
  const std::string_view name = driver_name(options.driver);
  std::string why;
  auto connection = connect(options, why);
  std::optional<Rows> rows;
  if (!connection) {
    record_failure("connect");
  } else if (rows = fetch(*connection, options, why); !rows) {
    record_failure("fetch");
  }
  connection.reset();
  if (rows) {
    const auto now = std::chrono::system_clock::now();
    Built built = build_domains(config, *rows, std::string(name), now, previous);
    record_load(built, load.log_skipped);
    if (load.write_snapshot && !options.snapshot.empty()) {
      std::string failed;
      if (!write_snapshot(options.snapshot, *rows, now, failed)) {
        record_failure("snapshot");
        spdlog::error("{}: snapshot not written: {}", name, failed);
      }
    }
    return built;
  }
  error = std::string(name) + ": " + why;
  if (!load.snapshot_fallback) return std::nullopt;
  if (options.snapshot.empty()) {
    error += "; no <database snapshot> is configured to start from";
    return std::nullopt;
  }
  std::chrono::system_clock::time_point read_at;
  std::string failed;
  auto saved = read_snapshot(options.snapshot, read_at, failed);
  if (!saved) {
    record_failure("snapshot");
    error += "; and no snapshot to start from: " + failed;
    return std::nullopt;
  }
  Built built = build_domains(config, *saved, "snapshot " + options.snapshot, read_at, previous);
  record_load(built, load.log_skipped);
  spdlog::warn("{}; serving the snapshot {} of rows read at {}", error, options.snapshot,
               rfc3339_utc(read_at));
  error.clear();
  return built;
}

bool write_snapshot(const std::string& path, const Rows& rows,
                    std::chrono::system_clock::time_point read_at, std::string& error) {
  std::string out = snapshot_header(read_at);
  out.reserve(64 + rows.domains.size() * 40 + rows.logins.size() * 48);
  for (const DomainRow& r : rows.domains) {
    out += "D";
    for (const std::string* f : {&r.domain, &r.provider, &r.login, &r.incoming, &r.imap_host,
                                 &r.pop3_host, &r.smtp_host}) {
      out.push_back('\t');
      put_field(out, *f);
    }
    out.push_back('\n');
  }
  for (const LoginRow& r : rows.logins) {
    out += "L\t";
    put_field(out, r.address);
    out.push_back('\t');
    put_field(out, r.login);
    out.push_back('\n');
  }
  return commit_snapshot(path, out, read_at, error);
}

bool write_snapshot(const std::string& path, const Config& config, const HostedDomains& domains,
                    std::string& error) {
  std::string out = snapshot_header(domains.read_at);
  out.reserve(64 + domains.size() * 40 + domains.logins.size() * 48);
  domains.table->for_each([&](std::string_view name, DomainEntry entry) {
    if (config.domains.find(name) != nullptr) return;  // the file's own
    const HostOverride& hosts = domains.host_set(entry);
    const std::string_view login = !hosts.login                         ? ""
                                   : *hosts.login == LoginForm::Address ? "address"
                                                                        : "local-part";
    out += "D";
    for (std::string_view f :
         {name, std::string_view(config.providers[entry.provider].id), login,
          to_string(hosts.incoming), std::string_view(hosts.imap_host),
          std::string_view(hosts.pop3_host), std::string_view(hosts.smtp_host)}) {
      out.push_back('\t');
      put_field(out, f);
    }
    out.push_back('\n');
  });
  domains.logins.for_each([&](std::string_view key, std::string_view login) {
    out += "L\t";
    put_field(out, key);
    out.push_back('\t');
    put_field(out, login);
    out.push_back('\n');
  });
  return commit_snapshot(path, out, domains.read_at, error);
}

namespace {

bool commit_snapshot(const std::string& path, const std::string& out,
                     std::chrono::system_clock::time_point read_at, std::string& error) {
  std::lock_guard lock(snapshot_mutex);
  auto& written_at = snapshot_written_at[path];
  if (read_at < written_at) return true;  // a newer one is there already
  // A name of its own per write: replicas may share the snapshot's directory (a compose
  // volume), and two writers of one temporary name could rename a mix of both.
  std::string temporary = path + ".XXXXXX";
  const int fd = ::mkostemp(temporary.data(), O_CLOEXEC);  // mode 0600
  if (fd < 0) {
    error = "cannot write " + temporary + ": " + std::strerror(errno);
    return false;
  }
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::write(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = "cannot write " + temporary + ": " + std::strerror(errno);
      ::close(fd);
      ::unlink(temporary.c_str());
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    error = "cannot write " + temporary + ": " + std::strerror(errno);
    ::unlink(temporary.c_str());
    return false;
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    error = "cannot rename " + temporary + " to " + path + ": " + std::strerror(errno);
    ::unlink(temporary.c_str());
    return false;
  }
  written_at = read_at;
  return true;
}

}  // namespace

std::optional<Rows> read_snapshot(const std::string& path,
                                  std::chrono::system_clock::time_point& read_at,
                                  std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::string line;
  std::getline(in, line);
  const std::vector<std::string> header = split_fields(line);
  long long seconds = -1;
  if (header.size() == 2 && header[0] == kSnapshotMagic) {
    std::istringstream(header[1]) >> seconds;
  }
  if (seconds < 0) {
    error = path + " is not a mailconfd snapshot";
    return std::nullopt;
  }
  read_at = std::chrono::system_clock::time_point(std::chrono::seconds(seconds));
  Rows rows;
  std::size_t number = 1;
  while (std::getline(in, line)) {
    ++number;
    std::vector<std::string> f = split_fields(line);
    if (f.size() == 8 && f[0] == "D") {
      rows.domains.push_back({std::move(f[1]), std::move(f[2]), std::move(f[3]), std::move(f[4]),
                              std::move(f[5]), std::move(f[6]), std::move(f[7])});
    } else if (f.size() == 3 && f[0] == "L") {
      rows.logins.push_back({std::move(f[1]), std::move(f[2])});
    } else {
      error = path + ":" + std::to_string(number) + ": not a snapshot row";
      return std::nullopt;
    }
  }
  return rows;
}

}  // namespace mailconfd::source
