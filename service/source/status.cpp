#include "source/status.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <iterator>
#include <mutex>
#include <unordered_set>
#include <vector>

#include <spdlog/spdlog.h>

#include "core/ascii.h"

namespace mailconfd::source {
namespace {

constexpr std::array<std::string_view, 3> kFailureKinds = {"connect", "fetch", "snapshot"};

struct State {
  std::mutex mutex;
  // The skipped rows of the part being served: the last full load's, as updates changed them.
  std::vector<BadRow> rows;
  std::uint64_t loads = 0;
  std::uint64_t updates = 0;
  std::uint64_t reconnects = 0;
  std::array<std::uint64_t, kFailureKinds.size()> failures{};
};

State& state() {
  static State s;
  return s;
}

// Prometheus label values escape backslash, double quote and newline; printable_key() already
// left only printable ASCII.
std::string label(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\' || c == '"') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

void log_skipped(const Built& built, bool log) {
  if (!log) return;
  for (const BadRow& row : built.skipped) {
    spdlog::warn("{}: skipped {} '{}': {}", built.domains->origin, row.table, row.key, row.reason);
  }
}

}  // namespace

void record_load(const Built& built, bool log) {
  log_skipped(built, log);
  State& s = state();
  std::lock_guard lock(s.mutex);
  ++s.loads;
  s.rows = built.skipped;
}

void record_update(const Built& built, const std::vector<std::string>& changed, bool log) {
  log_skipped(built, log);
  // A skipped row's key is its domain (domain rows) or its address (mailbox rows), as far as
  // printable_key kept it; compared in ASCII lower case, as names are normalized.
  const auto lower = [](std::string_view text) {
    std::string out(text);
    for (char& c : out) c = ascii_lower(c);
    return out;
  };
  std::unordered_set<std::string> names;
  for (const std::string& name : changed) names.insert(lower(printable_key(name)));
  State& s = state();
  std::lock_guard lock(s.mutex);
  ++s.updates;
  std::erase_if(s.rows, [&](const BadRow& row) {
    const std::string key = lower(row.key);
    const auto at = key.rfind('@');
    return names.contains(row.table == "mailbox" && at != std::string::npos ? key.substr(at + 1)
                                                                            : key);
  });
  s.rows.insert(s.rows.end(), built.skipped.begin(), built.skipped.end());
}

void record_failure(std::string_view kind) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  for (std::size_t i = 0; i < kFailureKinds.size(); ++i) {
    if (kFailureKinds[i] == kind) ++s.failures[i];
  }
}

void record_reconnect() {
  State& s = state();
  std::lock_guard lock(s.mutex);
  ++s.reconnects;
}

void append_metrics(std::string& out, const HostedDomains& domains) {
  if (domains.origin == "file") return;
  State& s = state();
  std::lock_guard lock(s.mutex);
  const auto age = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now() - domains.read_at)
                       .count();
  fmt::format_to(std::back_inserter(out),
                 "# HELP mailconfd_source_rows_age_seconds Age of the database rows being "
                 "served (grows while the database cannot be read).\n"
                 "# TYPE mailconfd_source_rows_age_seconds gauge\n"
                 "mailconfd_source_rows_age_seconds {}\n"
                 "# HELP mailconfd_source_logins Per-mailbox login names being served.\n"
                 "# TYPE mailconfd_source_logins gauge\n"
                 "mailconfd_source_logins {}\n"
                 "# HELP mailconfd_source_loads_total Full loads of the database rows (every "
                 "row) that made a domain part.\n"
                 "# TYPE mailconfd_source_loads_total counter\n"
                 "mailconfd_source_loads_total {}\n"
                 "# HELP mailconfd_source_updates_total Updates that read only the domains "
                 "changed since the last load or update (the change log) and merged them.\n"
                 "# TYPE mailconfd_source_updates_total counter\n"
                 "mailconfd_source_updates_total {}\n"
                 "# HELP mailconfd_source_reconnects_total Connections to the database made "
                 "again after one was lost or could not be made (each followed by a full "
                 "reload).\n"
                 "# TYPE mailconfd_source_reconnects_total counter\n"
                 "mailconfd_source_reconnects_total {}\n"
                 "# HELP mailconfd_source_failures_total Database connections, reads and "
                 "snapshot writes that failed, by kind.\n"
                 "# TYPE mailconfd_source_failures_total counter\n",
                 age, domains.logins.size(), s.loads, s.updates, s.reconnects);
  for (std::size_t i = 0; i < kFailureKinds.size(); ++i) {
    fmt::format_to(std::back_inserter(out), "mailconfd_source_failures_total{{kind=\"{}\"}} {}\n",
                   kFailureKinds[i], s.failures[i]);
  }
  fmt::format_to(
      std::back_inserter(out),
      "# HELP mailconfd_source_rows_skipped Rows skipped in what is served now (policy or "
      "form); the log names each.\n"
      "# TYPE mailconfd_source_rows_skipped gauge\n"
      "mailconfd_source_rows_skipped {}\n"
      "# HELP mailconfd_source_row_skipped A row the last load skipped, by table and "
      "key (the first {}).\n"
      "# TYPE mailconfd_source_row_skipped gauge\n",
      s.rows.size(), kMaxListed);
  std::vector<const BadRow*> listed;
  for (const BadRow& row : s.rows) {
    if (listed.size() == kMaxListed) break;
    // One series per table and key (a key listed twice is skipped twice).
    const bool seen = std::any_of(listed.begin(), listed.end(), [&](const BadRow* r) {
      return r->table == row.table && r->key == row.key;
    });
    if (seen) continue;
    listed.push_back(&row);
    fmt::format_to(std::back_inserter(out),
                   "mailconfd_source_row_skipped{{table=\"{}\",key=\"{}\"}} 1\n", row.table,
                   label(row.key));
  }
}

}  // namespace mailconfd::source
