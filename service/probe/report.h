// What `mailconfd probe` found: one ServerReport per advertised server, each a list of named
// checks. Rendered as a table for people or as JSON for monitoring. Server replies are
// sanitized before they get here (printable ASCII only), so both renderings are safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace mailconfd::probe {

// One advertised server to probe.
struct Target {
  MailServer server;     // as advertised; host is what the certificate must name
  std::string provider;  // provider id that advertises it
  std::string domain;    // a hosted domain told to use it; the relay test's sender domain
  std::vector<MailServer> incoming;  // SMTP targets: the same clients' IMAP/POP3 servers
};

struct Check {
  std::string name;    // stable, e.g. "auth-before-tls"; listed in README
  bool ok = false;     // false: a problem the admin must fix before the cut-off date
  std::string detail;  // what was seen (the server's reply, the certificate's dates …)
};

struct ServerReport {
  MailServer server;          // as advertised (host, port, protocol, security)
  std::string provider;       // provider id that advertises it
  std::string address;        // where the probe connected, "IP:PORT"; empty if it never did
  std::vector<Check> checks;  // in the order they ran; a fatal problem ends the list

  bool ok() const;
  void pass(std::string name, std::string detail = {});
  void fail(std::string name, std::string detail);
};

// "smtp.example.net:587 submission STARTTLS" and the like.
std::string describe(const MailServer& server);

// Human-readable report: one block per server, one line per check, a summary line.
std::string format_table(const std::vector<ServerReport>& reports);

// {"ok":…,"servers":[{"provider":…,"protocol":…,"host":…,"port":…,"security":…,
//   "address":…,"ok":…,"checks":[{"name":…,"ok":…,"detail":…}],"problems":[…]}]}
std::string format_json(const std::vector<ServerReport>& reports);

// Server text made safe for a terminal and a report: bytes outside printable ASCII become
// '?', and the result is cut at max_length characters (with "…" appended when cut).
std::string sanitize(std::string_view text, std::size_t max_length = 200);

}  // namespace mailconfd::probe
