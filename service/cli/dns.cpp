#include "cli/dns.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/hosted.h"
#include "core/email_address.h"
#include "dns/check.h"
#include "dns/zone.h"
#include "log.h"

namespace mailconfd::cli {
namespace {

constexpr const char* kDnsZoneHelp =
    "usage: mailconfd dns zone [--config FILE] [DOMAIN...] [--out DIR]\n"
    "\n"
    "Prints, in RFC 1035 zone-file syntax, the records that point mail clients of each hosted\n"
    "domain (all of them when none is named) at the provider: SRV for submission, IMAP, POP3\n"
    "and Autodiscover, the autoconfig/autodiscover CNAMEs and MX that <dns> asks for.\n"
    "With --out DIR, writes DIR/DOMAIN.zone for each domain and DIR/PROVIDER.include (the\n"
    "records with relative names, for $INCLUDE into every zone of that provider's domains\n"
    "without host override) instead. See dns/README.md.\n"
    "With <database>, the database's domains and per-domain host names are included, read as\n"
    "serve reads them (the snapshot, with a warning, when the database is down; neither: exit "
    "2).\n";

constexpr const char* kDnsCheckHelp =
    "usage: mailconfd dns check [--config FILE] [DOMAIN...] [--resolver IP[:PORT]] [--json]\n"
    "                           [--timeout MS] [--concurrency N]\n"
    "\n"
    "Looks up the records 'dns zone' prints for each domain (all hosted domains when none is\n"
    "named) and reports, per domain: ok, missing, wrong, cname-target (an SRV or MX target\n"
    "that is an alias), mx-elsewhere (the preferred MX is not a provider MX host), timeout,\n"
    "servfail, lookup-error. A table by default, JSON with --json.\n"
    "\n"
    "  --resolver IP[:PORT]  ask this server (default: /etc/resolv.conf); [IPV6]:PORT for IPv6\n"
    "  --timeout MS          first try per query, doubled for the second (default 2000)\n"
    "  --concurrency N       queries in flight at once (default 256)\n"
    "\n"
    "With <database>, the database's domains are checked too (as for dns zone).\n"
    "\n"
    "Exit status: 0 every domain ok, 1 a domain has a problem, 2 usage or configuration error\n"
    "(a <database> that cannot be read and no snapshot included).\n";

// The named domains as hosted A-labels, or all hosted domains (sorted) when none is named.
std::optional<std::vector<std::string>> pick_domains(const Args& args, const Config& config,
                                                     std::string& error) {
  std::vector<std::string> domains;
  if (args.positional.empty()) {
    for (std::string_view d : config.domains.sorted()) domains.emplace_back(d);
    return domains;
  }
  for (const std::string& raw : args.positional) {
    auto name = normalize_domain(raw);
    if (!name || config.domains.find(*name) == nullptr) {
      error = "domain '" + raw + "' is not hosted in this configuration";
      return std::nullopt;
    }
    if (std::find(domains.begin(), domains.end(), *name) == domains.end()) domains.push_back(*name);
  }
  return domains;
}

int dns_zone(const Args& args) {
  if (args.help) return std::cout << kDnsZoneHelp, 0;
  Loaded loaded = load(args, TlsKeys::Skip);
  if (!report(loaded)) return 2;
  std::string error;
  if (!load_hosted(loaded.config, error)) return std::cerr << "mailconfd: " << error << '\n', 2;
  auto domains = pick_domains(args, loaded.config, error);
  if (!domains) return usage_error(error, kDnsZoneHelp);
  const dns::Zones zones(loaded.config);
  auto it = args.options.find("out");
  if (it == args.options.end()) {
    for (std::size_t i = 0; i < domains->size(); ++i) {
      std::cout << (i == 0 ? "" : "\n") << zones.zone((*domains)[i]);
    }
    return 0;
  }
  const std::filesystem::path dir = it->second;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  auto write = [&](const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) std::cerr << "mailconfd: cannot write " << path.string() << '\n';
    return static_cast<bool>(out);
  };
  bool ok = true;
  for (const std::string& domain : *domains)
    ok = write(dir / (domain + ".zone"), zones.zone(domain)) && ok;
  for (std::uint32_t p = 0; p < loaded.config.providers.size(); ++p) {
    const std::string& id = loaded.config.providers[p].id;
    ok = write(dir / (id + ".include"), zones.include_file(p)) && ok;
  }
  return ok ? 0 : 1;
}

int dns_check(const Args& args) {
  if (args.help) return std::cout << kDnsCheckHelp, 0;
  dns::CheckOptions options;
  if (auto it = args.options.find("resolver"); it != args.options.end()) {
    options.resolver = dns::parse_resolver(it->second);
    if (!options.resolver)
      return usage_error("--resolver '" + it->second + "' is not IP[:PORT]", kDnsCheckHelp);
  }
  auto number = [&](const char* name, long min, long max, long& value) {
    auto it = args.options.find(name);
    if (it == args.options.end()) return true;
    char* end = nullptr;
    value = std::strtol(it->second.c_str(), &end, 10);
    return !it->second.empty() && *end == '\0' && value >= min && value <= max;
  };
  long timeout = 2000;
  long concurrency = 256;
  if (!number("timeout", 50, 60'000, timeout))
    return usage_error("--timeout must be milliseconds from 50 to 60000", kDnsCheckHelp);
  if (!number("concurrency", 1, 10'000, concurrency))
    return usage_error("--concurrency must be a number from 1 to 10000", kDnsCheckHelp);
  options.timeout = std::chrono::milliseconds(timeout);
  options.max_in_flight = static_cast<std::size_t>(concurrency);
  Loaded loaded = load(args, TlsKeys::Skip);
  if (!report(loaded)) return 2;
  std::string error;
  if (!load_hosted(loaded.config, error)) return std::cerr << "mailconfd: " << error << '\n', 2;
  auto domains = pick_domains(args, loaded.config, error);
  if (!domains) return usage_error(error, kDnsCheckHelp);
  const dns::CheckResult result = dns::check(loaded.config, *domains, options);
  if (!result.error.empty()) {
    std::cerr << "mailconfd: " << result.error << '\n';
    return 1;
  }
  std::cout << (args.options.count("json") ? dns::format_json(result.domains)
                                           : dns::format_table(result.domains));
  const bool all_ok = std::all_of(result.domains.begin(), result.domains.end(),
                                  [](const dns::DomainReport& r) { return r.ok(); });
  return all_ok ? 0 : 1;
}

}  // namespace

int dns_command(int argc, char** argv) {
  constexpr const char* kDnsHelp =
      "usage: mailconfd dns zone|check [options]\n"
      "Run 'mailconfd dns zone --help' or 'mailconfd dns check --help' for details.\n";
  if (argc < 3) return usage_error("dns needs a subcommand: zone or check", kDnsHelp);
  const std::string sub = argv[2];
  if (sub == "--help" || sub == "-h") return std::cout << kDnsHelp, 0;
  std::string error;
  if (sub == "zone") {
    auto args = parse_args(argc, argv, 3, {"config", "out"}, error);
    if (!args) return usage_error(error, kDnsZoneHelp);
    init_logging(false);
    return dns_zone(*args);
  }
  if (sub == "check") {
    auto args = parse_args(argc, argv, 3, {"config", "resolver", "timeout", "concurrency"}, error,
                           {"json"});
    if (!args) return usage_error(error, kDnsCheckHelp);
    init_logging(false);
    return dns_check(*args);
  }
  return usage_error("unknown dns subcommand '" + sub + "'", kDnsHelp);
}

}  // namespace mailconfd::cli
