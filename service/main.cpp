// argv → subcommand: a table of the commands, each in its own file under cli/; the only place
// that exits. Exit status: 0 success, 1 runtime failure, 2 usage error or invalid
// configuration.
#include <array>
#include <iostream>
#include <string>
#include <string_view>

#include "cli/check.h"
#include "cli/cockpit.h"
#include "cli/cutover.h"
#include "cli/dns.h"
#include "cli/probe.h"
#include "cli/render.h"
#include "cli/serve.h"

namespace mailconfd {
namespace {

constexpr const char* kUsage =
    "usage: mailconfd <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve [--config FILE] [--listen HOST:PORT] [--tls-listen HOST:PORT]\n"
    "                                              answer mail clients' discovery requests\n"
    "  check [--config] FILE [--as-user USER]      validate a configuration file\n"
    "  render autoconfig|autodiscover|mobileconfig|setup EMAIL [--config FILE] [--lang de|en]\n"
    "                                              print the document that would be served\n"
    "  dns zone [--config FILE] [DOMAIN...] [--out DIR]\n"
    "                                              print or write the DNS records of each domain\n"
    "  dns check [--config FILE] [DOMAIN...] [--resolver IP[:PORT]] [--json]\n"
    "                                              compare live DNS with those records\n"
    "  probe [--config FILE] [DOMAIN|PROVIDER ...]  check that the advertised servers work\n"
    "  cutover scan [--config FILE] [--json|--csv] [LOG...]\n"
    "                                              who still sends via SMTP-after-POP\n"
    "  cockpit password NAME < password           print a line for the cockpit's password file\n"
    "\n"
    "Without --config, the built-in example configuration (deploy/example/mailconfd.xml) is used.\n"
    "Run 'mailconfd <command> --help' for details, 'mailconfd --version' for the version.\n";

struct Command {
  std::string_view name;
  int (*run)(int argc, char** argv);  // argv[1] is name; returns the exit status
};

constexpr std::array kCommands{
    Command{"serve", cli::serve_command},     Command{"check", cli::check_command},
    Command{"render", cli::render_command},   Command{"dns", cli::dns_command},
    Command{"probe", cli::probe_command},     Command{"cutover", cli::cutover},
    Command{"cockpit", cli::cockpit_command},
};

int run(int argc, char** argv) {
  if (argc < 2) return std::cerr << "mailconfd: missing command\n\n" << kUsage, 2;
  const std::string_view command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") return std::cout << kUsage, 0;
  if (command == "--version" || command == "version") {
    return std::cout << "mailconfd " << MAILCONFD_VERSION << '\n', 0;
  }
  for (const Command& c : kCommands) {
    if (c.name == command) return c.run(argc, argv);
  }
  std::cerr << "mailconfd: unknown command '" << command << "'\n\n" << kUsage;
  return 2;
}

}  // namespace
}  // namespace mailconfd

int main(int argc, char** argv) { return mailconfd::run(argc, argv); }
