#include "cli/hosted.h"

#include <iostream>

#include "source/database.h"

namespace mailconfd::cli {

std::optional<Hosted> load_hosted(Config& config, std::string& error, bool quiet) {
  Hosted hosted;
  if (!config.database) return hosted;
  auto built = source::load_domains(
      config, nullptr, {.snapshot_fallback = true, .log_skipped = false, .write_snapshot = false},
      error);
  if (!built) return std::nullopt;
  const HostedDomains& part = *built->domains;
  // The part was built for these providers: host_sets[p] starts with providers[p].overrides
  // (same indices) and appends the host sets only the database names.
  config.domains = *part.table;
  for (std::size_t p = 0; p < config.providers.size(); ++p) {
    config.providers[p].overrides = part.host_sets[p];
  }
  if (!quiet && !built->skipped.empty()) {
    std::cerr << "mailconfd: " << built->skipped.size() << " rows of " << part.origin
              << " skipped (mailconfd check lists them)\n";
  }
  hosted.domains = std::move(built->domains);
  hosted.skipped = std::move(built->skipped);
  return hosted;
}

}  // namespace mailconfd::cli
