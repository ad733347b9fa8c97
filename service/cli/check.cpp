#include "cli/check.h"

#include <chrono>
#include <iostream>
#include <string>

#include "cli/args.h"
#include "cli/as_user.h"
#include "cli/hosted.h"
#include "log.h"
#include "tls/certificates.h"

namespace mailconfd::cli {
namespace {

constexpr const char* kCheckHelp =
    "usage: mailconfd check [--config] FILE [--as-user USER]\n"
    "\n"
    "Loads and validates FILE and every file it names (domain lists, templates, the TLS\n"
    "certificate and key, the signing key, secret-file, password-file). Prints every problem\n"
    "as FILE:LINE:COLUMN: message on stderr and exits 2 if there is any, 0 if the file is\n"
    "valid.\n"
    "\n"
    "With <database>, also reads the database's domains and login names, as serve would:\n"
    "each row the policy or the form refuses is listed on stderr as\n"
    "\"skipped TABLE 'KEY': why\" (serve skips it too; the exit status stays 0). When the\n"
    "database cannot be read, the snapshot is checked instead (said on stderr); without\n"
    "one, serve would not start: exit 2. check never writes the snapshot.\n"
    "\n"
    "  --as-user USER  run as root: become USER first (its groups too, such as ssl-cert), so\n"
    "                  that every file the service user cannot read is named with the\n"
    "                  reason (Permission denied). Exits 2 when not root or USER is unknown.\n";

// Reads the database as serve would (load_hosted) and lists the rows it skips.
int check_database(Config& config) {
  std::string error;
  auto hosted = load_hosted(config, error, true);
  if (!hosted) {
    std::cerr << "mailconfd: " << error << '\n';
    return 2;
  }
  for (const source::BadRow& row : hosted->skipped) {
    std::cerr << "skipped " << row.table << " '" << row.key << "': " << row.reason << '\n';
  }
  std::cout << hosted->domains->origin << ": " << hosted->domains->size() << " domains, "
            << hosted->domains->logins.size() << " login names, " << hosted->skipped.size()
            << " rows skipped\n";
  return 0;
}

int check(Args args) {
  if (args.help) return std::cout << kCheckHelp, 0;
  // `check FILE` and `check --config FILE` are the same.
  if (!args.options.count("config") && args.positional.size() == 1) {
    args.options["config"] = args.positional[0];
    args.positional.clear();
  }
  if (!args.options.count("config")) return usage_error("check needs a FILE", kCheckHelp);
  if (!args.positional.empty())
    return usage_error("unexpected argument " + args.positional[0], kCheckHelp);
  std::string as_user;
  if (auto it = args.options.find("as-user"); it != args.options.end()) {
    if (const std::string refused = become_user(it->second); !refused.empty()) {
      std::cerr << "mailconfd: " << refused << '\n';
      return 2;
    }
    as_user = " as user " + it->second;
  }
  Loaded loaded = load(args);
  if (!report(loaded)) {
    std::cerr << loaded.problems.size() << (loaded.problems.size() == 1 ? " problem" : " problems")
              << " in " << args.options.at("config") << as_user << '\n';
    return 2;
  }
  // Every certificate's names and expiry; an expired or not yet valid one is a warning (the
  // service starts with it: the other names keep working), not a problem.
  if (loaded.config.server.tls && loaded.config.server.tls->certificates) {
    std::vector<std::string> warnings;
    for (const std::string& line :
         tls::describe(loaded.config.server.tls->certificates->certificates(),
                       std::chrono::system_clock::now(), warnings)) {
      std::cout << line << '\n';
    }
    for (const std::string& warning :
         uncovered_https_names(loaded.config, *loaded.config.server.tls->certificates)) {
      warnings.push_back(warning);
    }
    for (const std::string& warning : warnings) std::cerr << "warning: " << warning << '\n';
  }
  std::cout << args.options.at("config") << ": ok (" << loaded.config.providers.size()
            << (loaded.config.providers.size() == 1 ? " provider, " : " providers, ")
            << loaded.config.domains.size() << " domains)" << as_user << '\n';
  if (loaded.config.database) return check_database(loaded.config);
  return 0;
}

}  // namespace

int check_command(int argc, char** argv) {
  std::string error;
  auto args = parse_args(argc, argv, 2, {"config", "as-user"}, error);
  if (!args) return usage_error(error, kCheckHelp);
  init_logging(false);
  return check(std::move(*args));
}

}  // namespace mailconfd::cli
