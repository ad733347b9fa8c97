#include "cutover/report.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <unordered_map>

#include "core/email_address.h"

namespace mailconfd::cutover {
namespace {

std::size_t index(State state) { return static_cast<std::size_t>(state); }

const Provider* provider_of(const Config& config, std::string_view domain) {
  const DomainEntry* entry = config.domains.find(domain);
  return entry == nullptr ? nullptr : &config.providers[entry->provider];
}

std::string time_or_null(Micros time) { return time == 0 ? "null" : '"' + rfc3339(time) + '"'; }

void append_time_or_null(std::string& out, Micros time) {
  if (time == 0) {
    out += "null";
    return;
  }
  char buffer[kRfc3339Max + 2];
  buffer[0] = '"';
  const std::size_t length = format_rfc3339(time, buffer + 1);
  buffer[length + 1] = '"';
  out.append(buffer, length + 2);
}

void append_number(std::string& out, std::uint64_t value) {
  char buffer[24];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, static_cast<std::size_t>(result.ptr - buffer));
}

// JSON string with quotes appended to out; bytes that are not UTF-8 become U+FFFD.
void append_json(std::string& out, std::string_view text) {
  bool plain = true;  // printable ASCII without '"' and '\\': copied as it is
  for (char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b >= 0x7F || c == '"' || c == '\\') {
      plain = false;
      break;
    }
  }
  out += '"';
  if (plain) {
    out += text;
    out += '"';
    return;
  }
  const bool utf8 = valid_utf8(text);
  for (char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (b < 0x20 || b == 0x7F) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\u%04x", b);
      out += buffer;
    } else if (b >= 0x80 && !utf8) {
      out += "\\ufffd";
    } else {
      out += c;
    }
  }
  out += '"';
}

// For the table: control characters and non-UTF-8 bytes shown as '?'.
std::string printable(std::string_view text) {
  std::string out(text);
  const bool utf8 = valid_utf8(text);
  for (char& c : out) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7F || (b >= 0x80 && !utf8)) c = '?';
  }
  return out;
}

// RFC 4180 field; a leading = + - @ is prefixed with ' so that spreadsheets never run it.
std::string csv(std::string_view text) {
  std::string value(text);
  if (!value.empty() && (value[0] == '=' || value[0] == '+' || value[0] == '-' || value[0] == '@' ||
                         value[0] == '\t' || value[0] == '\r')) {
    value.insert(0, "'");
  }
  if (value.find_first_of(",\"\r\n") == std::string::npos) return value;
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}

std::string ip_list(const Mailbox& m, std::string_view separator) {
  std::string out;
  for (std::size_t i = 0; i < m.ips.size(); ++i) {
    if (i) out += separator;
    out += to_string(m.ips[i]);
  }
  return out;
}

std::string plural(std::uint64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

// One sentence for the CSV's evidence column.
std::string evidence(const Mailbox& m) {
  const std::string ips = ip_list(m, " ");
  switch (state_of(m)) {
    case State::AtRisk:
      return plural(m.relayed, "message", "messages") +
             " relayed via SMTP-after-POP without a login, from " + ips + " (confidence " +
             std::string(confidence_of(m)) + ")";
    case State::Ambiguous: {
      std::string others;
      for (const std::string& other : m.shared_with) others += (others.empty() ? "" : " ") + other;
      return plural(m.relayed_shared + m.denied_shared, "relay", "relays") + " from " + ips +
             " where other mailboxes also logged in: " + printable(others);
    }
    case State::Broke:
      return plural(m.denied, "relay", "relays") +
             " refused (Relay access denied) after its POP/IMAP login, from " + ips;
    case State::LoginFailing:
      return plural(m.login_failures, "failed SMTP login", "failed SMTP logins") + " from " + ips;
    case State::Switched:
      return plural(m.authenticated, "authenticated submission", "authenticated submissions");
  }
  return {};
}

// https://<autodiscover host>/setup?emailaddress=<address> (or setup_url?…) appended to out.
void append_setup_link(std::string& out, const Provider* provider, const Mailbox& mailbox,
                       std::string_view setup_url) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  const std::size_t start = out.size();
  if (setup_url.empty()) {
    out += "https://";
    out += provider ? std::string_view(provider->autodiscover_host) : mailbox.domain;
    out += "/setup";
  } else {
    out += setup_url;
  }
  out += std::string_view(out).substr(start).find('?') == std::string_view::npos ? '?' : '&';
  out += "emailaddress=";
  for (char c : mailbox.address) {
    const auto b = static_cast<unsigned char>(c);
    if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[b >> 4];
      out += kHex[b & 15];
    }
  }
}

void append_ip(std::string& out, const IpAddress& ip) {
  char buffer[kIpTextMax];
  out.append(buffer, format_ip(ip, buffer));
}

// The first 16 bytes of text as two big-endian words, zero beyond its end: comparing them
// as numbers orders the texts as their first 16 bytes do (a shorter text first).
std::pair<std::uint64_t, std::uint64_t> sort_key(std::string_view text) {
  unsigned char bytes[16] = {};
  std::memcpy(bytes, text.data(), std::min<std::size_t>(text.size(), sizeof bytes));
  std::uint64_t words[2] = {};
  for (std::size_t i = 0; i < 16; ++i) words[i / 8] = words[i / 8] << 8 | bytes[i];
  return {words[0], words[1]};
}

// A mailbox and the first 16 bytes of its address as sort_key() words. Sorting these orders
// the mailboxes by address while comparing keys held in one array, and the addresses
// themselves only when the keys are equal: a compare of two records' strings is two cache
// misses in a report of 50,000.
struct ByAddress {
  std::pair<std::uint64_t, std::uint64_t> key;
  const Mailbox* mailbox;
  bool operator<(const ByAddress& other) const {
    if (key != other.key) return key < other.key;
    return mailbox->address < other.mailbox->address;
  }
};

// One mailbox's JSON object, appended field by field (no temporaries: the report of 50,000
// mailboxes is written in a few tens of milliseconds).
void mailbox_json(std::string& out, const Config& config, const Mailbox& m,
                  std::string_view setup_url) {
  const Provider* provider = m.hosted ? provider_of(config, m.domain) : nullptr;
  out += "{\"address\":";
  append_json(out, m.address);
  out += ",\"domain\":";
  if (m.domain.empty()) {
    out += "null";
  } else {
    append_json(out, m.domain);
  }
  out += ",\"provider\":";
  if (provider) {
    append_json(out, provider->id);
  } else {
    out += "null";
  }
  out += ",\"state\":\"";
  out += to_string(state_of(m));
  out += "\",\"confidence\":\"";
  out += confidence_of(m);
  out += "\",\"first_seen\":";
  append_time_or_null(out, m.first_seen);
  out += ",\"last_seen\":";
  append_time_or_null(out, m.last_seen);
  out += ",\"relayed_via_map\":";
  append_number(out, m.relayed + m.relayed_shared);
  out += ",\"relayed_alone\":";
  append_number(out, m.relayed);
  out += ",\"explicit_evidence\":";
  append_number(out, m.explicit_relays);
  out += ",\"sender_domain_matches\":";
  append_number(out, m.sender_matches);
  out += ",\"authenticated\":";
  append_number(out, m.authenticated);
  out += ",\"relay_denied\":";
  append_number(out, m.denied + m.denied_shared);
  out += ",\"login_failures\":";
  append_number(out, m.login_failures);
  out += ",\"last_relay\":";
  append_time_or_null(out, std::max(m.last_relay, m.last_shared_relay));
  out += ",\"last_authenticated\":";
  append_time_or_null(out, m.last_auth);
  out += ",\"last_denied\":";
  append_time_or_null(out, std::max(m.last_denied, m.last_shared_denied));
  out += ",\"last_login_failure\":";
  append_time_or_null(out, m.last_failure);
  out += ",\"ips\":[";
  for (std::size_t i = 0; i < m.ips.size(); ++i) {
    out += i ? ",\"" : "\"";
    append_ip(out, m.ips[i]);
    out += '"';
  }
  out += "],\"candidates_with\":[";
  for (std::size_t i = 0; i < m.shared_with.size(); ++i) {
    if (i) out += ',';
    append_json(out, m.shared_with[i]);
  }
  out += "]";
  if (provider) {
    // The link is made of URL-safe bytes (percent-encoded address) unless setup_url is not.
    std::string link;
    append_setup_link(link, provider, m, setup_url);
    out += ",\"setup_url\":";
    append_json(out, link);
  }
  out += "}";
}

std::string counts_json(const std::array<std::uint64_t, kStateCount>& counts) {
  std::string out;
  std::uint64_t total = 0;
  for (State state : kStates) {
    out += '"' + std::string(to_string(state)) + "\":" + std::to_string(counts[index(state)]) + ',';
    total += counts[index(state)];
  }
  return out + "\"total\":" + std::to_string(total);
}

std::string pad(std::string text, std::size_t width) {
  if (text.size() < width) text.append(width - text.size(), ' ');
  return text;
}

}  // namespace

Report build_report(const Config& config, const Scanner& scanner, Micros generated) {
  Report report;
  report.generated = generated;
  report.grace = scanner.options().grace;
  report.stats = scanner.stats();
  // One pass over the records, in the order they lie in memory: each mailbox's sort key, and
  // for the hosted ones the summary and a tally per domain (hosted domains, from the
  // configuration); then the mailboxes sorted by address and the domains by name.
  struct Tally {
    std::array<std::uint64_t, kStateCount> counts{};
    std::uint64_t total = 0;
  };
  std::unordered_map<std::string_view, Tally> tallies;
  std::vector<ByAddress> hosted, not_hosted;
  hosted.reserve(scanner.mailboxes().size());
  std::uint64_t relays = 0;
  for (const auto& [address, m] : scanner.mailboxes()) {
    relays += m.relayed + m.relayed_shared;
    if (!m.hosted) {
      not_hosted.push_back({sort_key(m.address), &m});
      continue;
    }
    hosted.push_back({sort_key(m.address), &m});
    const State state = state_of(m);
    ++report.summary[index(state)];
    Tally& tally = tallies[m.domain];
    ++tally.counts[index(state)];
    ++tally.total;
  }
  for (auto [sorted, list] :
       {std::pair(&hosted, &report.mailboxes), std::pair(&not_hosted, &report.not_hosted)}) {
    std::sort(sorted->begin(), sorted->end());
    list->reserve(sorted->size());
    for (const ByAddress& entry : *sorted) list->push_back(entry.mailbox);
  }
  std::vector<std::string_view> domains;
  domains.reserve(tallies.size());
  for (const auto& [domain, tally] : tallies) domains.push_back(domain);
  std::sort(domains.begin(), domains.end());
  report.domains.reserve(domains.size());
  for (std::string_view domain : domains) {
    DomainRollup& rollup = report.domains.emplace_back();
    rollup.domain = domain;
    const Provider* provider = provider_of(config, rollup.domain);
    rollup.provider = provider ? provider->id : "";
    rollup.counts = tallies[domain].counts;
    rollup.total = tallies[domain].total;
  }
  // Most messages first, then by the address as text (each formatted once, not per compare).
  std::vector<std::pair<std::string, std::pair<IpAddress, Unattributed>>> ranked;
  scanner.unattributed().for_each([&ranked](const IpAddress& ip, const Unattributed& u) {
    ranked.emplace_back(to_string(ip), std::pair(ip, u));
  });
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.second.second.messages != b.second.second.messages
               ? a.second.second.messages > b.second.second.messages
               : a.first < b.first;
  });
  for (const auto& [text, entry] : ranked) report.unattributed.push_back(entry);

  const ScanStats& stats = report.stats;
  if (stats.lines == 0) report.advice.push_back("No log lines were read.");
  if (stats.explicit_lines == 0 && stats.lines > 0) {
    report.advice.push_back(
        "No INFO tag or reject_warning line in these logs: who relays via SMTP-after-POP is "
        "inferred from logins and client IPs only. Add the dry-run rule and the INFO-tag map "
        "(deploy/postfix/) to be sure.");
  }
  const std::uint64_t at_risk = report.summary[index(State::AtRisk)];
  const std::uint64_t ambiguous = report.summary[index(State::Ambiguous)];
  if (at_risk + ambiguous > 0) {
    report.advice.push_back(std::to_string(at_risk + ambiguous) +
                            " hosted mailbox(es) still send via SMTP-after-POP (at-risk or "
                            "ambiguous): send them their setup link (--csv) before the cut-off.");
  }
  if (!report.unattributed.empty()) {
    report.advice.push_back(
        std::to_string(report.unattributed.size()) +
        " client IP(s) relayed without a login in the grace window and outside mynetworks: an "
        "open relay, a static entry in the map, or mynetworks (--mynetworks) is incomplete.");
  }
  if (relays == 0 && report.mailboxes.empty() && stats.lines > 0) {
    report.advice.push_back("No mailbox relayed via SMTP-after-POP in these logs.");
  }
  return report;
}

bool anyone_at_risk(const Report& report) {
  return report.summary[index(State::AtRisk)] + report.summary[index(State::Ambiguous)] +
             report.summary[index(State::Broke)] >
         0;
}

std::string setup_link(const Config& config, const Mailbox& mailbox, std::string_view setup_url) {
  std::string out;
  append_setup_link(out, provider_of(config, mailbox.domain), mailbox, setup_url);
  return out;
}

void render_json(const Config& config, const Report& report, std::string_view setup_url,
                 const std::function<void(std::string_view)>& write) {
  // Written in chunks: the whole report is never held in memory twice.
  constexpr std::size_t kChunk = 256 * 1024;
  std::string out;
  out.reserve(kChunk + 64 * 1024);
  auto flush_if_full = [&] {
    if (out.size() >= kChunk) {
      write(out);
      out.clear();
    }
  };
  const ScanStats& s = report.stats;
  out += "{\"generated\":\"" + rfc3339(report.generated) + '"';
  out += ",\"grace_seconds\":" + std::to_string(report.grace / kSecondMicros);
  out += ",\"logs\":{\"lines\":" + std::to_string(s.lines) +
         ",\"bytes\":" + std::to_string(s.bytes) + ",\"skipped\":" + std::to_string(s.skipped) +
         ",\"used\":" + std::to_string(s.events) +
         ",\"explicit_evidence\":" + std::to_string(s.explicit_lines) +
         ",\"unattributed_denied\":" + std::to_string(s.unattributed_denied) +
         ",\"unknown_login_failures\":" + std::to_string(s.unknown_sasl_failures) +
         ",\"from\":" + time_or_null(s.first_time) + ",\"to\":" + time_or_null(s.last_time) + "}";
  out += ",\"summary\":{" + counts_json(report.summary) +
         ",\"not_hosted\":" + std::to_string(report.not_hosted.size()) + "}";
  out += ",\"domains\":[";
  for (std::size_t i = 0; i < report.domains.size(); ++i) {
    const DomainRollup& d = report.domains[i];
    out += i ? ",{\"domain\":" : "{\"domain\":";
    append_json(out, d.domain);
    out += ",\"provider\":";
    append_json(out, d.provider);
    out += ',' + counts_json(d.counts) + '}';
    flush_if_full();
  }
  // The records, in the order of their addresses, are scattered in memory: each is asked
  // for (prefetched) 8 mailboxes ahead, and its strings 4 ahead, once the record is there.
  auto mailboxes_json = [&](const std::vector<const Mailbox*>& mailboxes) {
    for (std::size_t i = 0; i < mailboxes.size(); ++i) {
      if (i + 8 < mailboxes.size()) {
        const auto* record = reinterpret_cast<const char*>(mailboxes[i + 8]);
        for (std::size_t line = 0; line < sizeof(Mailbox); line += 64) {
          __builtin_prefetch(record + line);
        }
      }
      if (i + 4 < mailboxes.size()) {
        __builtin_prefetch(mailboxes[i + 4]->address.data());
        __builtin_prefetch(mailboxes[i + 4]->domain.data());
        mailboxes[i + 4]->ips.prefetch();
      }
      if (i) out += ',';
      mailbox_json(out, config, *mailboxes[i], setup_url);
      flush_if_full();
    }
  };
  out += "],\"mailboxes\":[";
  mailboxes_json(report.mailboxes);
  out += "],\"not_hosted\":[";
  mailboxes_json(report.not_hosted);
  out += "],\"unattributed\":[";
  for (std::size_t i = 0; i < report.unattributed.size(); ++i) {
    const auto& [ip, u] = report.unattributed[i];
    out += i ? ",{\"ip\":\"" : "{\"ip\":\"";
    append_ip(out, ip);
    out += "\",\"messages\":";
    append_number(out, u.messages);
    out += ",\"first_seen\":";
    append_time_or_null(out, u.first_seen);
    out += ",\"last_seen\":";
    append_time_or_null(out, u.last_seen);
    out += '}';
    flush_if_full();
  }
  out += "],\"advice\":[";
  for (std::size_t i = 0; i < report.advice.size(); ++i) {
    if (i) out += ',';
    append_json(out, report.advice[i]);
  }
  out += "]}\n";
  write(out);
}

std::string render_json(const Config& config, const Report& report, std::string_view setup_url) {
  std::string out;
  render_json(config, report, setup_url, [&](std::string_view chunk) { out += chunk; });
  return out;
}

std::string render_csv(const Config& config, const Report& report, std::string_view setup_url) {
  std::string out = "mailbox,domain,state,evidence,last_seen,setup_link\r\n";
  for (const Mailbox* m : report.mailboxes) {
    if (state_of(*m) == State::Switched) continue;
    out += csv(m->address) + ',' + csv(m->domain) + ',' + std::string(to_string(state_of(*m))) +
           ',' + csv(evidence(*m)) + ',' + rfc3339(m->last_seen) + ',' +
           csv(setup_link(config, *m, setup_url)) + "\r\n";
  }
  return out;
}

std::string render_table(const Config& config, const Report& report) {
  (void)config;
  std::string out;
  auto row = [&](const Mailbox& m) {
    out += pad(std::string(to_string(state_of(m))), 14) + pad(printable(m.address), 32) + ' ' +
           pad(std::string(confidence_of(m)), 9) +
           pad(std::to_string(m.relayed + m.relayed_shared), 8) +
           pad(std::to_string(m.authenticated), 6) +
           pad(std::to_string(m.denied + m.denied_shared), 7) +
           pad(std::to_string(m.login_failures), 7) + rfc3339(m.last_seen) + "  " +
           ip_list(m, ",") + '\n';
  };
  const std::string header = pad("STATE", 14) + pad("MAILBOX", 32) + ' ' + pad("CONF", 9) +
                             pad("RELAYED", 8) + pad("AUTH", 6) + pad("DENIED", 7) +
                             pad("FAILED", 7) + pad("LAST SEEN", 22) + "IPS\n";
  if (report.mailboxes.empty()) {
    out += "No hosted mailbox has evidence in these logs.\n";
  } else {
    out += header;
    for (const Mailbox* m : report.mailboxes) row(*m);
  }
  if (!report.domains.empty()) {
    out += '\n' + pad("DOMAIN", 32) + pad("PROVIDER", 24) +
           "AT-RISK AMBIGUOUS BROKE LOGIN-FAILING SWITCHED\n";
    for (const DomainRollup& d : report.domains) {
      out += pad(printable(d.domain), 32) + pad(printable(d.provider), 24) +
             pad(std::to_string(d.counts[index(State::AtRisk)]), 8) +
             pad(std::to_string(d.counts[index(State::Ambiguous)]), 10) +
             pad(std::to_string(d.counts[index(State::Broke)]), 6) +
             pad(std::to_string(d.counts[index(State::LoginFailing)]), 14) +
             std::to_string(d.counts[index(State::Switched)]) + '\n';
    }
  }
  if (!report.not_hosted.empty()) {
    out += "\nNot hosted in this configuration:\n" + header;
    for (const Mailbox* m : report.not_hosted) row(*m);
  }
  if (!report.unattributed.empty()) {
    out += "\nRelayed without a login (client IP, messages):\n";
    for (const auto& [ip, u] : report.unattributed) {
      out += "  " + pad(to_string(ip), 40) + std::to_string(u.messages) + '\n';
    }
  }
  const ScanStats& s = report.stats;
  out += '\n' + std::to_string(s.lines) + " lines read (" + std::to_string(s.skipped) +
         " skipped as not log lines), " + std::to_string(s.events) + " used";
  if (s.first_time) out += ", " + rfc3339(s.first_time) + " to " + rfc3339(s.last_time);
  out += "; grace " + std::to_string(report.grace / kSecondMicros) + "s\n";
  for (const std::string& advice : report.advice) out += "note: " + advice + '\n';
  return out;
}

}  // namespace mailconfd::cutover
