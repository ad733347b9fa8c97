// The hosted domains a subcommand other than serve works on, one rule for all of them
// (check, dns zone, dns check, probe, render, cutover scan): the file's, and with <database>
// the database's too, read as serve reads them when it starts.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "source/rows.h"

namespace mailconfd::cli {

struct Hosted {
  // The domain part with the database's domains and per-mailbox login names; null without
  // <database> (the file's own domains are config's).
  std::shared_ptr<const HostedDomains> domains;
  std::vector<source::BadRow> skipped;  // rows the policy refused (serve skips them too)
};

// Without <database>: config as it is. With it: reads the database's rows
// (source::load_domains; when the database cannot be read, the snapshot's rows, with a
// warning on stderr naming the error and when the rows were read; the snapshot is never
// written here) and gives config the loaded part's domain table and host sets, so that all
// that reads the Config (dns zones and checks, probe targets, resolve, the cutover scan and
// its report) sees the database's domains and per-domain choices. Unless quiet, a line on
// stderr counts the skipped rows ("mailconfd check" lists them). nullopt: the database cannot
// be read and there is no snapshot; error says why (the subcommand exits 2, as serve would
// refuse to start).
std::optional<Hosted> load_hosted(Config& config, std::string& error, bool quiet = false);

}  // namespace mailconfd::cli
