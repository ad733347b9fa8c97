// `mailconfd probe`: which servers the configuration advertises, and probing all of them
// with a bounded number at a time. Proves, before SMTP-after-POP is switched off, that what
// clients are told works: submission with STARTTLS and AUTH, no relaying without a login.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "probe/report.h"
#include "probe/session.h"

namespace mailconfd::probe {

// Every distinct server (protocol, host, port, security) the config tells clients to use,
// host overrides included: submission first, then incoming, per provider and host set.
// selection names provider ids or hosted domains (any case, U- or A-labels); empty means all.
// Names that are neither go to problems (and contribute no target).
std::vector<Target> targets(const Config& config, const std::vector<std::string>& selection,
                            std::vector<std::string>& problems);

// Probes one server according to its protocol.
ServerReport probe_server(const Target& target, const Options& options);

// Probes every target, at most options.parallel at a time; reports in the order of targets.
std::vector<ServerReport> probe_all(const std::vector<Target>& targets, const Options& options);

}  // namespace mailconfd::probe
