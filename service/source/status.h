// What the database source did, for the log and GET /metrics: each load's skipped rows (each
// named by its key, the first kMaxListed also as metric labels), loads and failures by kind,
// and the age of the rows being served. Process-wide; safe from any thread.
#pragma once

#include <string>
#include <string_view>

#include "config/config.h"
#include "source/rows.h"

namespace mailconfd::source {

inline constexpr std::size_t kMaxListed = 50;

// A load that produced a domain part: logs every skipped row ("ORIGIN: skipped domain 'KEY':
// why") when log is set, and replaces the skipped-row gauges.
void record_load(const Built& built, bool log);

// An update that read only the changed domains (apply_changes): logs the rows it skipped as
// record_load does, and in the skipped-row gauges replaces the rows of the domains in changed
// (a domain's own row and the login rows at it) with the ones this update skipped.
void record_update(const Built& built, const std::vector<std::string>& changed, bool log);

// Something that did not work: "connect", "fetch", "snapshot" (a snapshot not written or not
// read). Logged by the caller; counted here.
void record_failure(std::string_view kind);

// The watcher connected again after losing its connection or failing to connect (it reloads
// everything next).
void record_reconnect();

// The database source's lines of the exposition. domains: the part being served (its origin
// and when its rows were read give mailconfd_source_rows_age_seconds).
void append_metrics(std::string& out, const HostedDomains& domains);

}  // namespace mailconfd::source
