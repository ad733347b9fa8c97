#include "source/database.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

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
  }
  connection.end();
  if (!ok) return std::nullopt;
  return rows;
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
  const std::time_t t = std::chrono::system_clock::to_time_t(read_at);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char when[32] = {};
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  spdlog::warn("{}; serving the snapshot {} of rows read at {}", error, options.snapshot, when);
  error.clear();
  return built;
}

bool write_snapshot(const std::string& path, const Rows& rows,
                    std::chrono::system_clock::time_point read_at, std::string& error) {
  std::string out;
  out.reserve(64 + rows.domains.size() * 40 + rows.logins.size() * 48);
  out.append(kSnapshotMagic).push_back('\t');
  out += std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(read_at.time_since_epoch()).count());
  out.push_back('\n');
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
  return true;
}

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
