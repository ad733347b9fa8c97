// What `mailconfd cutover scan` prints: per mailbox its state and evidence, a roll-up per
// hosted domain and provider, a summary, and advice; as a table for people, as JSON (read by
// scripts and by the cockpit) and as a CSV contact list with each mailbox's setup link.
#pragma once

#include <array>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "cutover/scan.h"

namespace mailconfd::cutover {

inline constexpr std::size_t kStateCount = 5;

struct DomainRollup {
  std::string domain;
  std::string provider;                             // provider id
  std::array<std::uint64_t, kStateCount> counts{};  // indexed by State
  std::uint64_t total = 0;
};

struct Report {
  Micros generated = 0;
  Micros grace = 0;
  ScanStats stats;
  std::vector<const Mailbox*> mailboxes;   // hosted; by address
  std::vector<const Mailbox*> not_hosted;  // by address
  std::vector<DomainRollup> domains;       // hosted domains with evidence; by name
  std::array<std::uint64_t, kStateCount> summary{};
  std::vector<std::pair<IpAddress, Unattributed>> unattributed;  // most messages first
  std::vector<std::string> advice;
};

// The scanner must outlive the report (it points at the scanner's mailboxes).
Report build_report(const Config& config, const Scanner& scanner, Micros generated);

// Whether the report names someone whose sending breaks (or will) at the cut-off: a mailbox
// that is at-risk, ambiguous or broke. `cutover scan` exits 1 then.
bool anyone_at_risk(const Report& report);

// https://<provider's autodiscover host>/setup?emailaddress=<address>, or setup_url (a
// complete URL of the setup page) with ?emailaddress= appended when given.
std::string setup_link(const Config& config, const Mailbox& mailbox, std::string_view setup_url);

std::string render_json(const Config& config, const Report& report, std::string_view setup_url);
// The same, handed to write in pieces of about 256 KiB (a report of many mailboxes is never
// held whole in memory).
void render_json(const Config& config, const Report& report, std::string_view setup_url,
                 const std::function<void(std::string_view)>& write);
std::string render_csv(const Config& config, const Report& report, std::string_view setup_url);
std::string render_table(const Config& config, const Report& report);

}  // namespace mailconfd::cutover
