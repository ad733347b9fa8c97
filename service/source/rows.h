// Rows from a provider's database turned into the domain part of a snapshot (HostedDomains),
// with the policy applied to every row: a row that is not a domain name, names an unknown
// provider, a login scheme or incoming choice mailconfd does not know, a host override that
// is not a host name (a port, "plaintext", markup), a value longer than 255 bytes, or a login
// name with characters a mail client cannot send, is skipped and reported with its key.
// Ports and security have no column at all: they come only from the configuration file.
// Pure: no I/O, safe from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"

namespace mailconfd::source {

// One row of the domains query, columns in this order; NULL reads as empty.
struct DomainRow {
  std::string domain;
  std::string provider;   // a <provider> id; empty: <database provider>
  std::string login;      // "address", "local-part"; empty: the provider's <login>
  std::string incoming;   // "imap-first", "pop3-first", "imap-only", "pop3-only"; empty: first
  std::string imap_host;  // empty: the provider's
  std::string pop3_host;
  std::string smtp_host;
};

// One row of the logins query: a mailbox's address and the name it logs in with.
struct LoginRow {
  std::string address;
  std::string login;
};

struct Rows {
  std::vector<DomainRow> domains;
  std::vector<LoginRow> logins;
  // mailconfd_change.serial read with them (HostedDomains::change_serial); nullopt: unknown.
  std::optional<std::uint64_t> change_serial;
};

// A skipped row: which table, its key (printable ASCII, at most 80 bytes, cut with "..."),
// and why.
struct BadRow {
  std::string table;  // "domain" or "mailbox"
  std::string key;
  std::string reason;
};

struct Built {
  std::shared_ptr<const HostedDomains> domains;  // never null
  std::vector<BadRow> skipped;
};

// The domain part for config: the file's domains and host sets, then every good row. origin
// names the source ("postgresql"). previous (may be null): the part being served, built for
// the same providers; its host set indices are kept (new host sets are appended), so that the
// documents and signed profiles cached for them stay valid.
Built build_domains(const Config& config, const Rows& rows, std::string origin,
                    std::chrono::system_clock::time_point read_at, const HostedDomains* previous);

// The rows of changed domains merged into previous, the part built for config (the same
// providers): every domain named in changed (as normalize_domain spells it) that is not in the
// file, and each login name at it, is dropped; then rows (the changed domains' rows as the
// domains and logins queries give them) are added with the same policy as build_domains. The
// tables are copied from previous, not built anew, and its host set indices are kept. A login
// row for a domain not in changed is ignored (the part has that domain's logins already).
Built apply_changes(const Config& config, const HostedDomains& previous,
                    const std::vector<std::string>& changed, const Rows& rows,
                    std::chrono::system_clock::time_point read_at);

// A key as it may appear in a log line or a metric label: printable ASCII, others as '?',
// at most 80 bytes.
std::string printable_key(std::string_view key);

}  // namespace mailconfd::source
