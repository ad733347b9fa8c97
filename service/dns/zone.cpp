#include "dns/zone.h"

#include <algorithm>
#include <tuple>

#include <fmt/format.h>

#include "core/client_settings.h"

namespace mailconfd::dns {
namespace {

struct Service {
  std::string_view owner;
  Protocol protocol;
  Security security;
  std::uint16_t priority;
};

// Implicit TLS before STARTTLS (RFC 8314 §3, common practice in protocols.md §4.1), and IMAP
// before POP3 (RFC 6186 §3.4 lets the priorities across these records express that). RFC 6186
// defines _imap and _pop3 as the STARTTLS services; plaintext does not exist in the model.
constexpr Service kServices[] = {
    {"_imaps._tcp", Protocol::Imap, Security::Tls, 0},
    {"_imap._tcp", Protocol::Imap, Security::StartTls, 10},
    {"_pop3s._tcp", Protocol::Pop3, Security::Tls, 20},
    {"_pop3._tcp", Protocol::Pop3, Security::StartTls, 30},
    {"_submissions._tcp", Protocol::Smtp, Security::Tls, 0},
    {"_submission._tcp", Protocol::Smtp, Security::StartTls, 10},
};

}  // namespace

std::string_view to_string(RecordType type) {
  switch (type) {
    case RecordType::Mx:
      return "MX";
    case RecordType::Srv:
      return "SRV";
    case RecordType::Cname:
      return "CNAME";
  }
  return "?";
}

std::vector<Record> records(const Config& config, DomainEntry entry) {
  const ClientSettings settings = resolve(config, entry);
  const Provider& provider = *settings.provider;
  std::vector<Record> out;
  for (const Service& service : kServices) {
    std::uint16_t priority = service.priority;
    bool offered = false;
    const auto& servers =
        service.protocol == Protocol::Smtp ? settings.outgoing : settings.incoming;
    for (const MailServer& server : servers) {
      if (server.protocol != service.protocol || server.security != service.security) continue;
      // weight 0: one record per priority, nothing to balance (RFC 2782).
      out.push_back(
          {std::string(service.owner), RecordType::Srv, priority++, 0, server.port, server.host});
      offered = true;
    }
    if (!offered) out.push_back({std::string(service.owner), RecordType::Srv, 0, 0, 0, "."});
  }
  // A single record: Thunderbird picks the lowest weight and ignores priority (§4.2).
  out.push_back({"_autodiscover._tcp", RecordType::Srv, 0, 0, 443, provider.autodiscover_host});
  if (!provider.dns.autoconfig_cname.empty()) {
    out.push_back({"autoconfig", RecordType::Cname, 0, 0, 0, provider.dns.autoconfig_cname});
  }
  if (!provider.dns.autodiscover_cname.empty()) {
    out.push_back({"autodiscover", RecordType::Cname, 0, 0, 0, provider.dns.autodiscover_cname});
  }
  for (const MxHost& mx : provider.dns.mx) {
    out.push_back({"@", RecordType::Mx, mx.preference, 0, 0, mx.host});
  }
  std::sort(out.begin(), out.end(), [](const Record& a, const Record& b) {
    return std::tie(a.owner, a.type, a.priority, a.port, a.target) <
           std::tie(b.owner, b.type, b.priority, b.port, b.target);
  });
  return out;
}

std::vector<Record> for_domain(std::vector<Record> records, std::string_view domain) {
  std::erase_if(records, [&](const Record& r) {
    return r.type == RecordType::Cname && r.target.size() == r.owner.size() + 1 + domain.size() &&
           r.target.starts_with(r.owner) && r.target[r.owner.size()] == '.' &&
           r.target.ends_with(domain);
  });
  return records;
}

std::string render_records(const std::vector<Record>& records, std::uint32_t ttl) {
  std::string out;
  for (const Record& r : records) {
    const std::string target = r.target == "." ? "." : r.target + ".";
    std::string data;
    switch (r.type) {
      case RecordType::Srv:
        data = fmt::format("{} {} {} {}", r.priority, r.weight, r.port, target);
        break;
      case RecordType::Mx:
        data = fmt::format("{} {}", r.priority, target);
        break;
      case RecordType::Cname:
        data = target;
        break;
    }
    out += fmt::format("{:<18} {} IN {:<5} {}\n", r.owner, ttl, to_string(r.type), data);
  }
  return out;
}

Zones::Zones(const Config& config) : config_(config) {
  for (std::uint32_t p = 0; p < config.providers.size(); ++p) {
    const Provider& provider = config.providers[p];
    for (std::uint32_t h = 0; h < provider.overrides.size(); ++h) {
      bodies_[{p, h}] = render_records(records(config, {p, h}), provider.dns.ttl);
    }
  }
}

std::string Zones::zone(std::string_view domain) const {
  const DomainEntry* entry = config_.domains.find(domain);
  const Provider& provider = config_.providers.at(entry->provider);
  const auto header = fmt::format("; {}: mail client discovery records, provider {}\n$ORIGIN {}.\n",
                                  domain, provider.id, domain);
  if (!has_self_cname(provider, domain))
    return header + bodies_.at({entry->provider, entry->hosts});
  {
    const std::vector<Record> own = for_domain(records(config_, *entry), domain);
    return header + "; no autoconfig/autodiscover CNAME: the name is its own target here\n" +
           render_records(own, provider.dns.ttl);
  }
}

const std::string& Zones::shared(std::uint32_t provider) const { return bodies_.at({provider, 0}); }

std::string Zones::include_file(std::uint32_t p) const {
  const Provider& provider = config_.providers.at(p);
  std::string out = "; mail client discovery records of provider " + provider.id +
                    " for $INCLUDE into the zone of each of its domains without host override\n";
  for (const std::string* target :
       {&provider.dns.autoconfig_cname, &provider.dns.autodiscover_cname}) {
    const auto dot = target->find('.');
    if (dot == std::string::npos) continue;
    const std::string domain = target->substr(dot + 1);
    const DomainEntry* entry = config_.domains.find(domain);
    if (entry == nullptr || entry->provider != p || entry->hosts != 0 ||
        !has_self_cname(provider, domain) ||
        out.find("; except " + domain + ":") != std::string::npos) {
      continue;
    }
    out += "; except " + domain + ": its CNAME would point at itself; use " + domain + ".zone\n";
  }
  return out + shared(p);
}

bool has_self_cname(const Provider& provider, std::string_view domain) {
  auto self = [&](std::string_view owner, const std::string& target) {
    return target.size() == owner.size() + domain.size() && target.starts_with(owner) &&
           target.ends_with(domain);
  };
  return self("autoconfig.", provider.dns.autoconfig_cname) ||
         self("autodiscover.", provider.dns.autodiscover_cname);
}

}  // namespace mailconfd::dns
