#include "cli/probe.h"

#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/hosted.h"
#include "core/email_address.h"
#include "log.h"
#include "probe/probe.h"

namespace mailconfd::cli {
namespace {

constexpr const char* kProbeHelp =
    "usage: mailconfd probe [--config FILE] [DOMAIN|PROVIDER ...] [--json] [--timeout 10s]\n"
    "                       [--ca-file FILE] [--user USER --password-file FILE]\n"
    "                       [--relay-to ADDRESS] [--connect-to HOST:PORT:ADDR:PORT,...]\n"
    "                       [--parallel N] [--source ADDRESS]\n"
    "\n"
    "Connects to every server the configuration advertises (host overrides included; only\n"
    "those of the named providers or domains, if any) and checks what clients rely on:\n"
    "submission answers 220, offers STARTTLS and no AUTH before it, offers AUTH PLAIN and\n"
    "LOGIN after it, and refuses to relay to an outside address without a login (MAIL FROM\n"
    "and RCPT TO, then RSET: no message is ever sent); 465 the same over implicit TLS;\n"
    "IMAP and POP3 greet over TLS and refuse plaintext logins before STARTTLS/STLS. Every\n"
    "certificate must chain to the system store (or --ca-file), be valid for at least 14\n"
    "more days and name the advertised host. With --user, also the cut-off-day check\n"
    "(relay-after-login): after a POP3 (or IMAP) login as that account from this address,\n"
    "relaying without AUTH must be refused. With <database>, the host overrides of the\n"
    "database's domains are probed too (the snapshot, with a warning, when the database is\n"
    "down). Exit 0 only when every check passes, 2 for a usage or configuration error (a\n"
    "<database> that cannot be read and no snapshot included).\n"
    "\n"
    "  --json               one JSON document instead of the table\n"
    "  --timeout T          for each connect, handshake and reply (default 10s)\n"
    "  --ca-file FILE       trust only these CA certificates (PEM)\n"
    "  --user USER          with --password-file: also prove a real login on every server\n"
    "  --password-file FILE the test account's password (first line); never on the command line\n"
    "  --relay-to ADDRESS   outside recipient for the relay test\n"
    "                       (default relay-probe@mailconfd-probe.invalid)\n"
    "  --connect-to LIST    HOST:PORT:ADDR:PORT, comma-separated: connect there instead of\n"
    "                       resolving HOST (certificate still checked against HOST)\n"
    "  --parallel N         servers probed at the same time (default 8, at most 64)\n"
    "  --source ADDRESS     connect from this local address (one a customer could have,\n"
    "                       outside Postfix's mynetworks)\n";

// The probe's options from the command line; nullopt after printing a usage error.
std::optional<probe::Options> probe_options(const Args& args, int& exit_code) {
  probe::Options options;
  auto fail = [&](const std::string& message) {
    exit_code = usage_error(message, kProbeHelp);
    return std::nullopt;
  };
  const auto& o = args.options;
  if (auto it = o.find("timeout"); it != o.end()) {
    const auto timeout = probe::parse_timeout(it->second);
    if (!timeout) return fail("--timeout '" + it->second + "' is not a duration from 100ms to 10m");
    options.timeout = *timeout;
  }
  if (auto it = o.find("ca-file"); it != o.end()) options.ca_file = it->second;
  if (auto it = o.find("source"); it != o.end()) {
    if (it->second.empty() ||
        it->second.find_first_not_of("0123456789abcdefABCDEF:.") != std::string::npos) {
      return fail("--source '" + it->second + "' is not an IP address");
    }
    options.source = it->second;
  }
  if (auto it = o.find("relay-to"); it != o.end()) {
    if (!parse_email(it->second) || it->second.find_first_of("<> \r\n") != std::string::npos) {
      return fail("--relay-to '" + it->second + "' is not an email address");
    }
    options.relay_to = it->second;
  }
  if (auto it = o.find("parallel"); it != o.end()) {
    const auto n = std::atoi(it->second.c_str());
    if (n < 1 || n > 64) return fail("--parallel must be from 1 to 64");
    options.parallel = static_cast<unsigned>(n);
  }
  if (auto it = o.find("connect-to"); it != o.end()) {
    std::string_view list = it->second;
    while (!list.empty()) {
      const auto comma = std::min(list.find(','), list.size());
      const auto rule = probe::parse_connect_to(list.substr(0, comma));
      if (!rule)
        return fail("--connect-to '" + std::string(list.substr(0, comma)) +
                    "' is not HOST:PORT:ADDR:PORT");
      options.connect_to.push_back(*rule);
      list.remove_prefix(std::min(comma + 1, list.size()));
    }
  }
  if (o.count("user") != o.count("password-file")) {
    return fail("--user and --password-file go together");
  }
  if (o.count("user")) {
    std::ifstream file(o.at("password-file"));
    std::string password;
    if (!file || !std::getline(file, password)) {
      exit_code = 1;
      std::cerr << "mailconfd: cannot read a password from " << o.at("password-file") << '\n';
      return std::nullopt;
    }
    if (!password.empty() && password.back() == '\r') password.pop_back();
    const std::string& user = o.at("user");
    auto unsafe = [](const std::string& s) {
      return s.empty() || s.find_first_of(std::string("\r\n\0", 3)) != std::string::npos;
    };
    if (unsafe(user) || unsafe(password)) {
      return fail("the user name and password must be non-empty single lines");
    }
    options.account = probe::Account{user, std::move(password)};
  }
  return options;
}

int probe_servers(const Args& args) {
  if (args.help) return std::cout << kProbeHelp, 0;
  int exit_code = 0;
  auto options = probe_options(args, exit_code);
  if (!options) return exit_code;
  Loaded loaded = load(args);
  if (!report(loaded)) return 2;
  std::string error;
  if (!load_hosted(loaded.config, error)) return std::cerr << "mailconfd: " << error << '\n', 2;
  std::vector<std::string> problems;
  const auto targets = probe::targets(loaded.config, args.positional, problems);
  for (const std::string& problem : problems) std::cerr << "mailconfd: " << problem << '\n';
  if (!problems.empty()) return 2;
  signal(SIGPIPE, SIG_IGN);  // a server that hangs up mid-write is a finding, not a crash
  const auto reports = probe::probe_all(targets, *options);
  std::cout << (args.options.count("json") ? probe::format_json(reports)
                                           : probe::format_table(reports));
  const bool ok = std::all_of(reports.begin(), reports.end(),
                              [](const probe::ServerReport& r) { return r.ok(); });
  return ok ? 0 : 1;
}

}  // namespace

int probe_command(int argc, char** argv) {
  std::string error;
  auto args = parse_args(argc, argv, 2,
                         {"config", "timeout", "ca-file", "user", "password-file", "relay-to",
                          "connect-to", "parallel", "source"},
                         error, {"json"});
  if (!args) return usage_error(error, kProbeHelp);
  init_logging(false);
  return probe_servers(*args);
}

}  // namespace mailconfd::cli
