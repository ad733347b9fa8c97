#include "source/rows.h"

#include <algorithm>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "core/email_address.h"

namespace mailconfd::source {
namespace {

constexpr std::size_t kMaxValue = 255;

// A host override must be a host name: "mail.example:25", "plaintext" or markup are refused
// (the port and the security of a server come from the configuration file only).
std::optional<std::string> host_value(const std::string& text, const char* column,
                                      std::string& why) {
  if (text.empty()) return std::string();
  auto host = normalize_domain(text);
  if (!host || host->find('.') == std::string::npos) {
    why = std::string(column) + " '" + printable_key(text) +
          "' is not a host name (ports and security come from the configuration file)";
    return std::nullopt;
  }
  return host;
}

// Letters, digits and . - _ + @ = : what panels give as login names ("web12p3",
// "alice@example.org", "p123-4"), nothing a client or an XML document could misread.
bool valid_login(std::string_view login) {
  if (login.empty() || login.size() > kMaxValue) return false;
  return std::all_of(login.begin(), login.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_' || c == '+' || c == '@' || c == '=';
  });
}

std::string host_set_key(const HostOverride& h) {
  std::string key = h.imap_host + '\n' + h.pop3_host + '\n' + h.smtp_host + '\n';
  key += h.login ? (*h.login == LoginForm::Address ? 'a' : 'l') : '-';
  key += to_string(h.incoming);
  return key;
}

bool has_incoming(const Provider& provider, Incoming incoming) {
  const auto has = [&](Protocol p) {
    return std::any_of(provider.incoming.begin(), provider.incoming.end(),
                       [p](const MailServer& s) { return s.protocol == p; });
  };
  if (incoming == Incoming::ImapOnly) return has(Protocol::Imap);
  if (incoming == Incoming::Pop3Only) return has(Protocol::Pop3);
  return true;
}

// True when previous's host sets start with config's providers' own (the same indices).
bool extends_file(const HostedDomains& previous, const Config& config) {
  if (previous.host_sets.size() != config.providers.size()) return false;
  for (std::size_t p = 0; p < config.providers.size(); ++p) {
    const auto& own = config.providers[p].overrides;
    const auto& sets = previous.host_sets[p];
    if (sets.size() < own.size() || !std::equal(own.begin(), own.end(), sets.begin())) return false;
  }
  return true;
}

class Builder {
 public:
  Builder(const Config& config, const HostedDomains* previous)
      : config_(config), domains_(std::make_shared<HostedDomains>()) {
    if (previous != nullptr && extends_file(*previous, config)) {
      domains_->host_sets = previous->host_sets;
    } else {
      for (const Provider& p : config.providers) domains_->host_sets.push_back(p.overrides);
    }
    for (std::uint32_t p = 0; p < domains_->host_sets.size(); ++p) {
      const auto& sets = domains_->host_sets[p];
      for (std::uint32_t h = 0; h < sets.size(); ++h) known_.try_emplace(key(p, sets[h]), h);
    }
  }

  void add(const DomainRow& row) {
    if (row.domain == "ALL") return;  // PostfixAdmin's placeholder for "every domain"
    std::string why;
    for (const std::string* v : {&row.domain, &row.provider, &row.login, &row.incoming,
                                 &row.imap_host, &row.pop3_host, &row.smtp_host}) {
      if (v->size() > kMaxValue) {
        return skip("domain", row.domain, "a value is longer than 255 bytes");
      }
    }
    auto name = normalize_domain(row.domain);
    if (!name || name->find('.') == std::string::npos) {
      return skip("domain", row.domain, "not a domain name");
    }
    DomainEntry entry{config_.database ? config_.database->provider : 0, 0};
    if (!row.provider.empty()) {
      auto it = std::find_if(config_.providers.begin(), config_.providers.end(),
                             [&](const Provider& p) { return p.id == row.provider; });
      if (it == config_.providers.end()) {
        return skip("domain", *name,
                    "provider '" + printable_key(row.provider) + "' is not a <provider> id");
      }
      entry.provider = static_cast<std::uint32_t>(it - config_.providers.begin());
    }
    HostOverride hosts;
    if (row.login == "address") {
      hosts.login = LoginForm::Address;
    } else if (row.login == "local-part") {
      hosts.login = LoginForm::LocalPart;
    } else if (!row.login.empty()) {
      return skip("domain", *name,
                  "login '" + printable_key(row.login) + "' is not address or local-part");
    }
    if (!row.incoming.empty()) {
      auto incoming = parse_incoming(row.incoming);
      if (!incoming) {
        return skip("domain", *name,
                    "incoming '" + printable_key(row.incoming) +
                        "' is not imap-first, pop3-first, imap-only or pop3-only");
      }
      hosts.incoming = *incoming;
    }
    const Provider& provider = config_.providers[entry.provider];
    if (!has_incoming(provider, hosts.incoming)) {
      return skip("domain", *name,
                  "incoming " + std::string(to_string(hosts.incoming)) + ": provider '" +
                      provider.id + "' has no such server");
    }
    auto imap = host_value(row.imap_host, "imap_host", why);
    auto pop3 = imap ? host_value(row.pop3_host, "pop3_host", why) : std::nullopt;
    auto smtp = pop3 ? host_value(row.smtp_host, "smtp_host", why) : std::nullopt;
    if (!smtp) return skip("domain", *name, why);
    hosts.imap_host = std::move(*imap);
    hosts.pop3_host = std::move(*pop3);
    hosts.smtp_host = std::move(*smtp);
    entry.hosts = host_set(entry.provider, hosts);
    if (config_.domains.find(*name) != nullptr) {
      return skip("domain", *name, "already listed in the configuration file");
    }
    if (!table_->insert(*name, entry)) return skip("domain", *name, "listed twice");
  }

  void add(const LoginRow& row) {
    if (row.address.size() > kMaxValue || row.login.size() > kMaxValue) {
      return skip("mailbox", row.address, "a value is longer than 255 bytes");
    }
    auto address = parse_email(row.address);
    if (!address) return skip("mailbox", row.address, "not an address");
    // A mailbox of a domain that is not served (inactive, or skipped above) has no answer to
    // change: not a problem.
    if (table_->find(address->domain) == nullptr) return;
    if (!valid_login(row.login)) {
      return skip("mailbox", row.address,
                  "login name must be 1 to 255 letters, digits and . - _ + @ =");
    }
    if (!domains_->logins.insert(login_key(address->local, address->domain), row.login)) {
      skip("mailbox", row.address, "listed twice");
    }
  }

  Built finish(std::string origin, std::chrono::system_clock::time_point read_at,
               std::optional<std::uint64_t> change_serial) {
    domains_->table = std::move(table_);
    domains_->change_serial = change_serial;
    domains_->origin = std::move(origin);
    domains_->read_at = read_at;
    return {std::move(domains_), std::move(skipped_)};
  }

  void reserve(std::size_t n) { table_->reserve(n); }

  // Starts from copies of previous's tables (apply_changes) instead of the file's domains.
  void copy_tables(const HostedDomains& previous) {
    table_ = std::make_shared<DomainTable>(*previous.table);
    domains_->logins = previous.logins;
  }
  DomainTable& table() { return *table_; }
  LoginTable& logins() { return domains_->logins; }

 private:
  static std::string key(std::uint32_t provider, const HostOverride& h) {
    return std::to_string(provider) + '\n' + host_set_key(h);
  }

  std::uint32_t host_set(std::uint32_t provider, const HostOverride& hosts) {
    auto [it, added] = known_.try_emplace(
        key(provider, hosts), static_cast<std::uint32_t>(domains_->host_sets[provider].size()));
    if (added) domains_->host_sets[provider].push_back(hosts);
    return it->second;
  }

  void skip(const char* table, std::string_view key, std::string reason) {
    skipped_.push_back({table, printable_key(key), std::move(reason)});
  }

  const Config& config_;
  std::shared_ptr<HostedDomains> domains_;
  std::shared_ptr<DomainTable> table_ = std::make_shared<DomainTable>(config_.domains);
  std::unordered_map<std::string, std::uint32_t> known_;  // host_set_key → index, per provider
  std::vector<BadRow> skipped_;
};

}  // namespace

std::string printable_key(std::string_view key) {
  constexpr std::size_t kShown = 80;
  std::string out;
  for (char c : key.substr(0, kShown)) out.push_back(c >= 0x20 && c < 0x7F ? c : '?');
  if (key.size() > kShown) out.replace(kShown - 3, 3, "...");
  return out;
}

Built build_domains(const Config& config, const Rows& rows, std::string origin,
                    std::chrono::system_clock::time_point read_at, const HostedDomains* previous) {
  Builder builder(config, previous);
  builder.reserve(rows.domains.size());
  for (const DomainRow& row : rows.domains) builder.add(row);
  for (const LoginRow& row : rows.logins) builder.add(row);
  return builder.finish(std::move(origin), read_at, rows.change_serial);
}

Built apply_changes(const Config& config, const HostedDomains& previous,
                    const std::vector<std::string>& changed, const Rows& rows,
                    std::chrono::system_clock::time_point read_at) {
  Builder builder(config, &previous);
  builder.copy_tables(previous);
  std::unordered_set<std::string_view> names;
  for (const std::string& name : changed) {
    names.insert(name);
    if (config.domains.find(name) == nullptr) builder.table().erase(name);
  }
  std::vector<std::string> gone;
  builder.logins().for_each([&](std::string_view key, std::string_view) {
    if (names.contains(key.substr(key.rfind('@') + 1))) gone.emplace_back(key);
  });
  for (const std::string& key : gone) builder.logins().erase(key);
  builder.reserve(rows.domains.size());
  for (const DomainRow& row : rows.domains) builder.add(row);
  for (const LoginRow& row : rows.logins) {
    const auto at = row.address.rfind('@');
    auto domain =
        at == std::string::npos ? std::nullopt : normalize_domain(row.address.substr(at + 1));
    // An address that is not one is skipped by add() as in a full load.
    if (domain && !names.contains(*domain)) continue;
    builder.add(row);
  }
  return builder.finish(previous.origin, read_at, rows.change_serial);
}

}  // namespace mailconfd::source
