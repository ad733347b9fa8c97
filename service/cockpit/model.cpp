#include "cockpit/model.h"

#include <time.h>

#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "core/ascii.h"
#include "core/utc_time.h"

namespace mailconfd::cockpit {
namespace {

constexpr std::array<std::string_view, kStatusCount> kStatusNames{
    "at-risk", "fetched", "switched", "ambiguous", "broke", "login-failing", "unknown"};

std::string string_field(const nlohmann::json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number()) return it->dump();
  return {};
}

std::vector<std::string> string_list(const nlohmann::json& object, const char* name) {
  std::vector<std::string> out;
  auto it = object.find(name);
  if (it == object.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

std::string provider_of(const Config& config, const HostedDomains* domains,
                        const std::string& domain) {
  const DomainEntry* entry = domains ? domains->find(domain) : config.domains.find(domain);
  return entry ? config.providers[entry->provider].id : std::string();
}

}  // namespace

std::string_view to_string(Status status) {
  const auto i = static_cast<std::size_t>(status);
  return i < kStatusCount ? kStatusNames[i] : "unknown";
}

bool parse_status(std::string_view text, Status& status) {
  for (std::size_t i = 0; i < kStatusCount; ++i) {
    if (kStatusNames[i] == text) {
      status = static_cast<Status>(i);
      return true;
    }
  }
  return false;
}

bool parse_report(std::string_view json, Report& report, std::string& error) {
  const nlohmann::json doc = nlohmann::json::parse(json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    error = "not a JSON object";
    return false;
  }
  auto list = doc.find("mailboxes");
  if (list == doc.end() || !list->is_array()) {
    error = "no \"mailboxes\" array";
    return false;
  }
  report.generated = string_field(doc, "generated");
  for (const auto& m : *list) {
    if (!m.is_object()) continue;
    Report::Entry e;
    e.address = ascii_lower(string_field(m, "address"));
    e.state = string_field(m, "state");
    if (e.address.empty() || e.state.empty()) continue;
    e.domain = ascii_lower(string_field(m, "domain"));
    if (e.domain.empty() && e.address.find('@') != std::string::npos) {
      e.domain = e.address.substr(e.address.rfind('@') + 1);
    }
    e.provider = string_field(m, "provider");
    e.confidence = string_field(m, "confidence");
    e.first_seen = string_field(m, "first_seen");
    e.last_seen = string_field(m, "last_seen");
    e.ips = string_list(m, "ips");
    e.shared_with = string_list(m, "shared_with");
    report.mailboxes.push_back(std::move(e));
  }
  return true;
}

std::string utc_day(std::int64_t unix_seconds) { return format_utc(unix_seconds, "%Y-%m-%d"); }

Model build_model(const Config& config, const Report* report,
                  const std::vector<journal::Fetch>& fetches,
                  std::vector<journal::DayCounts> history, std::int64_t now,
                  const HostedDomains* served) {
  Model model;
  model.today = utc_day(now);
  for (const Provider& p : config.providers) {
    const std::string& date = p.notice.smtp_after_pop_off;
    if (!date.empty() && (model.cutoff.empty() || date < model.cutoff)) model.cutoff = date;
  }
  std::map<std::string, Mailbox> boxes;
  if (report != nullptr) {
    model.generated = report->generated;
    for (const Report::Entry& e : report->mailboxes) {
      Mailbox m;
      m.address = e.address;
      m.domain = e.domain;
      // From the configuration, not the report: provider ids label /metrics (bounded).
      m.provider = provider_of(config, served, e.domain);
      if (e.state == "at-risk") {
        m.status = Status::AtRisk;
      } else if (e.state == "switched") {
        m.status = Status::Switched;
      } else if (e.state == "ambiguous") {
        m.status = Status::Ambiguous;
      } else if (e.state == "broke") {
        m.status = Status::Broke;
      } else if (e.state == "login-failing") {
        m.status = Status::LoginFailing;
      } else {
        m.status = Status::Unknown;
      }
      m.confidence = e.confidence;
      m.first_seen = e.first_seen;
      m.last_seen = e.last_seen;
      m.ips = e.ips;
      m.shared_with = e.shared_with;
      boxes[m.address] = std::move(m);
    }
  }
  std::map<std::string, std::int64_t> clients;
  for (const journal::Fetch& f : fetches) {
    auto it = boxes.find(f.address);
    if (it == boxes.end()) {
      Mailbox m;
      m.address = f.address;
      m.domain = f.address.substr(f.address.rfind('@') + 1);
      m.provider = provider_of(config, served, m.domain);
      m.status = Status::Unknown;
      it = boxes.emplace(f.address, std::move(m)).first;
    }
    Mailbox& m = it->second;
    m.fetch_first = m.fetch_first == 0 ? f.first_seen : std::min(m.fetch_first, f.first_seen);
    m.fetch_last = std::max(m.fetch_last, f.last_seen);
    if (std::find(m.doors.begin(), m.doors.end(), f.door) == m.doors.end()) {
      m.doors.push_back(f.door);
    }
    // Each client kind counts a mailbox once: when it first joins the mailbox's list.
    if (std::find(m.clients.begin(), m.clients.end(), f.client) == m.clients.end()) {
      m.clients.push_back(f.client);
      ++clients[f.client];
    }
    if (m.status == Status::AtRisk) m.status = Status::Fetched;
  }
  std::map<std::string, Row> domains, providers;
  for (auto& [address, m] : boxes) {
    const auto s = static_cast<std::size_t>(m.status);
    ++model.counts[s];
    Row& d = domains[m.domain];
    d.name = m.domain;
    d.provider = m.provider;
    ++d.counts[s];
    ++d.total;
    Row& p = providers[m.provider];
    p.name = m.provider;
    ++p.counts[s];
    ++p.total;
    model.mailboxes.push_back(std::move(m));
  }
  for (auto& [name, row] : domains) model.domains.push_back(std::move(row));
  for (auto& [name, row] : providers) model.providers.push_back(std::move(row));
  for (auto& [kind, n] : clients) model.clients.emplace_back(kind, n);
  std::sort(model.clients.begin(), model.clients.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  history.erase(std::remove_if(history.begin(), history.end(),
                               [&](const journal::DayCounts& d) { return d.day >= model.today; }),
                history.end());
  model.history = std::move(history);
  model.history.push_back(day_counts(model, model.today));
  return model;
}

journal::DayCounts day_counts(const Model& model, const std::string& day) {
  journal::DayCounts d;
  d.day = day;
  auto n = [&](Status s) { return model.counts[static_cast<std::size_t>(s)]; };
  d.at_risk = n(Status::AtRisk);
  d.fetched = n(Status::Fetched);
  d.switched = n(Status::Switched);
  d.ambiguous = n(Status::Ambiguous);
  d.broke = n(Status::Broke);
  d.login_failing = n(Status::LoginFailing);
  d.unknown = n(Status::Unknown);
  return d;
}

}  // namespace mailconfd::cockpit
