// The DNS records that point mail clients at a provider, for each hosted domain
// (protocols.md §4): RFC 6186/8314 SRV, _autodiscover._tcp, autoconfig/autodiscover CNAMEs, MX.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"

namespace mailconfd::dns {

enum class RecordType { Mx, Srv, Cname };

std::string_view to_string(RecordType type);

// One record of a customer domain. The owner is relative to that domain ("@" is the domain
// itself), so the same records serve every domain with the same provider and host override.
struct Record {
  std::string owner;  // "@", "_imaps._tcp", "autoconfig"
  RecordType type = RecordType::Srv;
  std::uint16_t priority = 0;  // SRV priority; MX preference
  std::uint16_t weight = 0;    // SRV only
  std::uint16_t port = 0;      // SRV only
  std::string target;          // host name without the final dot; "." = service not offered

  bool operator==(const Record&) const = default;
};

// The records every domain of this provider/host override gets, sorted by owner, type,
// priority, port, target. Every one of the six RFC 6186/8314 services gets a record: the
// configured server(s), or "0 0 0 ." (decidedly not offered). Pure.
std::vector<Record> records(const Config& config, DomainEntry entry);

// records without the CNAMEs that would point at themselves in this domain: the provider's own
// domain (autoconfig.example.net with autoconfig-cname="autoconfig.example.net") keeps its
// real address records there, and "CNAME and other data" would break its zone. Pure.
std::vector<Record> for_domain(std::vector<Record> records, std::string_view domain);
// True when one of the provider's CNAMEs would point at itself in domain (see for_domain).
bool has_self_cname(const Provider& provider, std::string_view domain);

// Zone-file lines (RFC 1035) for records: relative owner names, explicit TTL on every line,
// absolute targets. No $ORIGIN and no $TTL, so the text can be $INCLUDEd into any zone.
std::string render_records(const std::vector<Record>& records, std::uint32_t ttl);

// Renders each (provider, host override) once at construction; zone() only adds the
// per-domain header. The Config must outlive the Zones.
class Zones {
 public:
  explicit Zones(const Config& config);

  // "; comment\n$ORIGIN domain.\n" followed by the records. domain must be hosted.
  std::string zone(std::string_view domain) const;
  // The records of a provider's domains without host override, ready for $INCLUDE into
  // any of their zones (the origin is the including zone's), except a domain whose
  // autoconfig/autodiscover name is the CNAME target itself (for_domain; zone() knows).
  const std::string& shared(std::uint32_t provider) const;
  // The whole PROVIDER.include file: a comment (naming a domain it must not go into) and
  // shared().
  std::string include_file(std::uint32_t provider) const;

 private:
  const Config& config_;
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::string> bodies_;
};

}  // namespace mailconfd::dns
