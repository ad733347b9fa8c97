#include "cli/serve.h"

#include <iostream>
#include <string>

#include <spdlog/spdlog.h>

#include "cli/args.h"
#include "daemon/serve.h"
#include "log.h"

namespace mailconfd::cli {
namespace {

constexpr const char* kServeHelp =
    "usage: mailconfd serve [--config FILE] [--listen HOST:PORT] [--tls-listen HOST:PORT]\n"
    "\n"
    "Serves Thunderbird autoconfig (/mail/config-v1.1.xml and\n"
    "/.well-known/autoconfig/mail/config-v1.1.xml), Outlook Autodiscover\n"
    "(/autodiscover/autodiscover.xml, /autodiscover/autodiscover.json) for every hosted domain,\n"
    "Apple profiles (/email.mobileconfig?emailaddress=...) and the setup page for people\n"
    "who configure by hand (/ and /setup?emailaddress=...).\n"
    "Prints 'listening on http://HOST:PORT' on stdout when ready, then\n"
    "'listening on https://HOST:PORT' when <tls> is configured; logs go to stderr.\n"
    "SIGHUP reloads the configuration file (a bad file keeps the old one serving);\n"
    "SIGTERM or SIGINT drain (requests in flight finish within <server shutdown-grace>;\n"
    "on new connections /healthz still answers 200, /readyz and anything else 503) and\n"
    "exit 0. Under systemd it reports readiness (Type=notify).\n"
    "\n"
    "  --config FILE       configuration (default: the built-in example)\n"
    "  --listen HOST:PORT  overrides <server listen>; port 0 picks a free port\n"
    "  --tls-listen HOST:PORT  overrides <tls listen> (needs <tls>); port 0 picks a free port\n";

int serve(const Args& args) {
  if (args.help) return std::cout << kServeHelp, 0;
  if (!args.positional.empty())
    return usage_error("unexpected argument " + args.positional[0], kServeHelp);
  const sigset_t signals = daemon::prepare_process();
  init_logging(true);
  Loaded loaded = load(args);
  if (!report(loaded)) {
    spdlog::critical("{}: configuration has {} problem(s); not starting", loaded.config.path,
                     loaded.problems.size());
    shutdown_logging();
    return 2;
  }
  std::string listen_text = loaded.config.server.listen;
  if (auto it = args.options.find("listen"); it != args.options.end()) listen_text = it->second;
  const auto listen = parse_listen(listen_text);
  if (!listen) {
    shutdown_logging();
    return usage_error("--listen '" + listen_text + "' is not HOST:PORT", kServeHelp);
  }
  std::optional<ListenAddress> tls_listen;
  if (loaded.config.server.tls || args.options.count("tls-listen")) {
    if (!loaded.config.server.tls) {
      shutdown_logging();
      return usage_error("--tls-listen needs a <tls> element in the configuration", kServeHelp);
    }
    std::string text = loaded.config.server.tls->listen;
    if (auto it = args.options.find("tls-listen"); it != args.options.end()) text = it->second;
    tls_listen = parse_listen(text);
    if (!tls_listen) {
      shutdown_logging();
      return usage_error("--tls-listen '" + text + "' is not HOST:PORT", kServeHelp);
    }
  }

  const bool from_file = args.options.count("config") > 0;
  const int status = daemon::serve(daemon::ServeSetup{std::move(loaded.config), from_file, *listen,
                                                      listen_text, tls_listen, signals});
  shutdown_logging();
  return status;
}

}  // namespace

int serve_command(int argc, char** argv) {
  std::string error;
  auto args = parse_args(argc, argv, 2, {"config", "listen", "tls-listen"}, error);
  return args ? serve(*args) : usage_error(error, kServeHelp);
}

}  // namespace mailconfd::cli
