// `mailconfd dns check`: looks up every record zone.h says a hosted domain should have, through
// c-ares against a given resolver, and reports per domain what is missing, wrong or unreachable.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace mailconfd::dns {

struct ResolverAddress {
  std::string ip;  // IPv4 or IPv6 literal
  std::uint16_t port = 53;
};

// "IP", "IP:PORT", "[IPV6]" or "[IPV6]:PORT". Returns nullopt for anything else.
std::optional<ResolverAddress> parse_resolver(std::string_view text);

struct CheckOptions {
  std::optional<ResolverAddress> resolver;  // none: the servers in /etc/resolv.conf
  std::chrono::milliseconds timeout{2000};  // first try; c-ares doubles it for the second
  int tries = 2;                            // per query, UDP (TCP after truncation)
  std::size_t max_in_flight = 256;          // queries outstanding at once
};

enum class Finding {
  Missing,      // NXDOMAIN or NODATA where a record is expected
  Wrong,        // records present, but not the expected target/port/priority
  CnameTarget,  // an SRV or MX target is an alias (RFC 2782, RFC 2181 §10.3)
  MxElsewhere,  // the preferred MX is not a provider host: Thunderbird's MX lookup misses
  Timeout,      // no answer within the tries (the record may well exist)
  ServFail,     // the resolver answered SERVFAIL
  LookupError,  // REFUSED, FORMERR, a network error...
};

std::string_view to_string(Finding finding);

struct Problem {
  Finding finding = Finding::Missing;
  std::string name;  // absolute, with the final dot: "_submission._tcp.example.com."
  std::string type;  // "SRV", "MX", "CNAME", "A"
  std::string detail;
};

struct DomainReport {
  std::string domain;
  std::vector<Problem> problems;  // sorted by name, type, finding; empty = OK
  bool ok() const { return problems.empty(); }
};

struct CheckResult {
  std::vector<DomainReport> domains;  // in the order asked
  std::string error;                  // non-empty: the resolver could not be set up at all
};

// Checks each domain (lowercase A-labels hosted in config). Bounded: every query ends after
// its tries, at most max_in_flight at once; identical target lookups are made once.
CheckResult check(const Config& config, const std::vector<std::string>& domains,
                  const CheckOptions& options);

// One line per problem (one "ok" line per good domain), columns aligned, then a summary line.
std::string format_table(const std::vector<DomainReport>& reports);
// {"checked":N,"ok":N,"with_problems":N,"domains":[{"domain":…,"ok":…,"problems":[…]}…]}
std::string format_json(const std::vector<DomainReport>& reports);

}  // namespace mailconfd::dns
