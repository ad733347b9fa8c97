// What the cockpit shows, as one immutable value: the newest `cutover scan --json` report
// joined with the settings journal (who fetched new settings) and the day-by-day history.
// Built off the request path (board.h); the page and the CSV are pure functions of it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "journal/store.h"

namespace mailconfd::cockpit {

// A mailbox's state as the cockpit shows it: the scan's state, except that an at-risk mailbox
// that fetched settings from mailconfd is "fetched" (new settings fetched, the map still in
// use), and a mailbox known only from the journal (fetched, no log evidence) is "unknown".
enum class Status { AtRisk, Fetched, Switched, Ambiguous, Broke, LoginFailing, Unknown };
inline constexpr std::size_t kStatusCount = 7;
inline constexpr std::array kStatuses{Status::AtRisk,    Status::Fetched, Status::Switched,
                                      Status::Ambiguous, Status::Broke,   Status::LoginFailing,
                                      Status::Unknown};
std::string_view to_string(Status status);  // at-risk, fetched, …, login-failing, unknown
bool parse_status(std::string_view text, Status& status);
using Counts = std::array<std::int64_t, kStatusCount>;

struct Mailbox {
  std::string address;
  std::string domain;
  std::string provider;  // provider id; empty when the domain is not hosted
  Status status = Status::Unknown;
  std::string confidence;                // from the scan ("explicit", "high", …); may be empty
  std::string first_seen, last_seen;     // from the scan, as written there (RFC 3339)
  std::vector<std::string> ips;          // from the scan
  std::vector<std::string> shared_with;  // from the scan: other candidates at its IPs
  std::int64_t fetch_first = 0, fetch_last = 0;  // journal, Unix seconds; 0: never fetched
  std::vector<std::string> doors, clients;       // journal: distinct doors and client kinds
};

struct Row {
  std::string name;      // domain or provider id
  std::string provider;  // for a domain row: its provider
  Counts counts{};
  std::int64_t total = 0;
};

struct Model {
  std::string report_path;
  bool report_found = false;
  std::string report_error;        // a report that could not be read or parsed
  std::string generated;           // the report's `generated`
  std::vector<Mailbox> mailboxes;  // by address
  Counts counts{};
  std::vector<Row> domains;                                   // by name
  std::vector<Row> providers;                                 // by name
  std::vector<std::pair<std::string, std::int64_t>> clients;  // kind → mailboxes that fetched
  std::vector<journal::DayCounts> history;                    // oldest first, incl. today
  std::string cutoff;  // the earliest smtp-after-pop-off date of the providers; may be empty
  std::string today;   // YYYY-MM-DD (UTC) when the model was built
};

// Parses a scan report (the JSON of `mailconfd cutover scan --json`). False and error set when
// it is not one; unknown fields are ignored.
struct Report {
  std::string generated;
  struct Entry {
    std::string address, domain, provider, state, confidence, first_seen, last_seen;
    std::vector<std::string> ips, shared_with;
  };
  std::vector<Entry> mailboxes;
};
bool parse_report(std::string_view json, Report& report, std::string& error);

// The journal's day for a moment: YYYY-MM-DD in UTC.
std::string utc_day(std::int64_t unix_seconds);

// Joins report (may be empty), fetches and history into a Model; today's row of the history is
// replaced by the model's own counts. Addresses of domains the config does not host are kept
// (listed, provider empty) but never come from the journal (which records hosted ones only).
// served: the domain part being served (App::domains: a database source's domains too);
// null: config's own.
Model build_model(const Config& config, const Report* report,
                  const std::vector<journal::Fetch>& fetches,
                  std::vector<journal::DayCounts> history, std::int64_t now,
                  const HostedDomains* served = nullptr);

// The counts of a model as a history row for day.
journal::DayCounts day_counts(const Model& model, const std::string& day);

}  // namespace mailconfd::cockpit
