#include "source/status.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <iterator>
#include <mutex>
#include <vector>

#include <spdlog/spdlog.h>

namespace mailconfd::source {
namespace {

constexpr std::array<std::string_view, 3> kFailureKinds = {"connect", "fetch", "snapshot"};

struct State {
  std::mutex mutex;
  std::vector<BadRow> listed;  // the last load's first kMaxListed skipped rows
  std::size_t skipped = 0;     // the last load's skipped rows
  std::uint64_t loads = 0;
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

}  // namespace

void record_load(const Built& built, bool log) {
  for (const BadRow& row : built.skipped) {
    if (log) {
      spdlog::warn("{}: skipped {} '{}': {}", built.domains->origin, row.table, row.key,
                   row.reason);
    }
  }
  State& s = state();
  std::lock_guard lock(s.mutex);
  ++s.loads;
  s.skipped = built.skipped.size();
  s.listed.clear();
  for (const BadRow& row : built.skipped) {
    if (s.listed.size() == kMaxListed) break;
    // One series per table and key (a key listed twice is skipped twice).
    const bool seen = std::any_of(s.listed.begin(), s.listed.end(), [&](const BadRow& r) {
      return r.table == row.table && r.key == row.key;
    });
    if (!seen) s.listed.push_back(row);
  }
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
                 "# HELP mailconfd_source_loads_total Loads of the database rows that made a "
                 "domain part.\n"
                 "# TYPE mailconfd_source_loads_total counter\n"
                 "mailconfd_source_loads_total {}\n"
                 "# HELP mailconfd_source_reconnects_total Connections to the database made "
                 "again after one was lost or could not be made (each followed by a full "
                 "reload).\n"
                 "# TYPE mailconfd_source_reconnects_total counter\n"
                 "mailconfd_source_reconnects_total {}\n"
                 "# HELP mailconfd_source_failures_total Database connections, reads and "
                 "snapshot writes that failed, by kind.\n"
                 "# TYPE mailconfd_source_failures_total counter\n",
                 age, domains.logins.size(), s.loads, s.reconnects);
  for (std::size_t i = 0; i < kFailureKinds.size(); ++i) {
    fmt::format_to(std::back_inserter(out), "mailconfd_source_failures_total{{kind=\"{}\"}} {}\n",
                   kFailureKinds[i], s.failures[i]);
  }
  fmt::format_to(std::back_inserter(out),
                 "# HELP mailconfd_source_rows_skipped Rows the last load skipped (policy or "
                 "form); the log names each.\n"
                 "# TYPE mailconfd_source_rows_skipped gauge\n"
                 "mailconfd_source_rows_skipped {}\n"
                 "# HELP mailconfd_source_row_skipped A row the last load skipped, by table and "
                 "key (the first {}).\n"
                 "# TYPE mailconfd_source_row_skipped gauge\n",
                 s.skipped, kMaxListed);
  for (const BadRow& row : s.listed) {
    fmt::format_to(std::back_inserter(out),
                   "mailconfd_source_row_skipped{{table=\"{}\",key=\"{}\"}} 1\n", row.table,
                   label(row.key));
  }
}

}  // namespace mailconfd::source
