// argv → subcommand (serve, check, render); the only place that exits.
// Exit status: 0 success, 1 runtime failure, 2 usage error or invalid configuration.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "app.h"
#include "config/config_file.h"
#include "core/client_settings.h"
#include "core/email_address.h"
#include "example_config.h"
#include "http/server.h"
#include "log.h"
#include "render/autoconfig.h"

namespace mailconfd {
namespace {

constexpr const char* kUsage =
    "usage: mailconfd <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve [--config FILE] [--listen HOST:PORT]   answer mail clients' discovery requests\n"
    "  check --config FILE                         validate a configuration file\n"
    "  render autoconfig EMAIL [--config FILE]     print the document that would be served\n"
    "\n"
    "Without --config, the built-in example configuration (deploy/example/mailconfd.xml) is used.\n"
    "Run 'mailconfd <command> --help' for details.\n";

constexpr const char* kServeHelp =
    "usage: mailconfd serve [--config FILE] [--listen HOST:PORT]\n"
    "\n"
    "Serves Thunderbird autoconfig (/mail/config-v1.1.xml and\n"
    "/.well-known/autoconfig/mail/config-v1.1.xml) for every hosted domain.\n"
    "Prints 'listening on http://HOST:PORT' on stdout when ready; logs go to stderr.\n"
    "SIGHUP reloads the configuration file (a bad file keeps the old one serving);\n"
    "SIGTERM or SIGINT stop accepting, finish requests in flight and exit 0.\n"
    "\n"
    "  --config FILE       configuration (default: the built-in example)\n"
    "  --listen HOST:PORT  overrides <server listen>; port 0 picks a free port\n";

constexpr const char* kCheckHelp =
    "usage: mailconfd check --config FILE\n"
    "\n"
    "Loads and validates FILE (and the domain lists it names). Prints every problem as\n"
    "FILE:LINE:COLUMN: message on stderr and exits 2 if there is any, 0 if the file is valid.\n";

constexpr const char* kRenderHelp =
    "usage: mailconfd render autoconfig EMAIL [--config FILE]\n"
    "\n"
    "Prints the document mailconfd would serve for EMAIL.\n";

int usage_error(const std::string& message, const char* help) {
  std::cerr << "mailconfd: " << message << "\n\n" << help;
  return 2;
}

// Options of the form --name VALUE (or --name=VALUE); positional arguments in order.
struct Args {
  std::map<std::string, std::string> options;
  std::vector<std::string> positional;
  bool help = false;
};

std::optional<Args> parse_args(int argc, char** argv, int first,
                               std::initializer_list<std::string_view> known, std::string& error) {
  Args args;
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      args.help = true;
      continue;
    }
    if (arg.starts_with("--")) {
      std::string name = arg.substr(2);
      std::string value;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        error = "option --" + name + " needs a value";
        return std::nullopt;
      }
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        error = "unknown option --" + name;
        return std::nullopt;
      }
      args.options[name] = value;
      continue;
    }
    if (arg.starts_with("-") && arg.size() > 1) {
      error = "unknown option " + arg;
      return std::nullopt;
    }
    args.positional.push_back(arg);
  }
  return args;
}

Loaded load(const Args& args) {
  if (auto it = args.options.find("config"); it != args.options.end()) {
    return load_config_file(it->second);
  }
  return load_config_text(example_config(), kExampleConfigName, ".");
}

bool report(const Loaded& loaded) {
  for (const std::string& problem : loaded.problems) std::cerr << problem << '\n';
  return loaded.ok();
}

int check(const Args& args) {
  if (args.help) return std::cout << kCheckHelp, 0;
  if (!args.options.count("config")) return usage_error("check needs --config FILE", kCheckHelp);
  if (!args.positional.empty())
    return usage_error("unexpected argument " + args.positional[0], kCheckHelp);
  const Loaded loaded = load(args);
  if (!report(loaded)) {
    std::cerr << loaded.problems.size() << (loaded.problems.size() == 1 ? " problem" : " problems")
              << " in " << args.options.at("config") << '\n';
    return 2;
  }
  std::cout << args.options.at("config") << ": ok (" << loaded.config.providers.size()
            << (loaded.config.providers.size() == 1 ? " provider, " : " providers, ")
            << loaded.config.domains.size() << " domains)\n";
  return 0;
}

int render_command(const Args& args) {
  if (args.help) return std::cout << kRenderHelp, 0;
  if (args.positional.size() != 2)
    return usage_error("render needs a document kind and an address", kRenderHelp);
  const std::string& kind = args.positional[0];
  if (kind != "autoconfig") return usage_error("unknown document kind '" + kind + "'", kRenderHelp);
  const Loaded loaded = load(args);
  if (!report(loaded)) return 2;
  auto address = parse_email(args.positional[1]);
  if (!address) {
    std::cerr << "mailconfd: '" << args.positional[1] << "' is not a valid email address\n";
    return 2;
  }
  auto settings = resolve(loaded.config, address->domain);
  if (!settings) {
    std::cerr << "mailconfd: domain " << address->domain
              << " is not hosted in this configuration\n";
    return 1;
  }
  const std::string login = login_name(settings->provider->login, *address);
  render::SlotValues values;
  values[render::Slot::Domain] = address->domain;
  values[render::Slot::Login] = login;
  std::cout << render::autoconfig(*settings).expand(values);
  return 0;
}

// Raises the soft descriptor limit to the hard one: Pistache's accept thread spins when
// accept() fails with EMFILE (pistache.md #13), so there should be room for max-connections.
void raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

int serve(const Args& args) {
  if (args.help) return std::cout << kServeHelp, 0;
  if (!args.positional.empty())
    return usage_error("unexpected argument " + args.positional[0], kServeHelp);
  // Signals are handled by sigwait below, never in a handler. The mask is set before any
  // thread exists (the async logger's included): a thread with SIGHUP unblocked would take
  // the default action, which ends the process.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a vanished peer must never kill the process
  raise_fd_limit();
  init_logging(true);
  Loaded loaded = load(args);
  if (!report(loaded)) {
    spdlog::critical("{}: configuration has {} problem(s); not starting", loaded.config.path,
                     loaded.problems.size());
    spdlog::shutdown();
    return 2;
  }
  std::string listen_text = loaded.config.server.listen;
  if (auto it = args.options.find("listen"); it != args.options.end()) listen_text = it->second;
  const auto listen = parse_listen(listen_text);
  if (!listen) {
    spdlog::shutdown();
    return usage_error("--listen '" + listen_text + "' is not HOST:PORT", kServeHelp);
  }
  const unsigned threads = loaded.config.server.threads;

  const std::string config_path = loaded.config.path;
  const bool from_file = args.options.count("config") > 0;
  http::Server server(build_app(std::move(loaded.config)));
  try {
    server.start(*listen, threads);
  } catch (const std::exception& e) {
    spdlog::critical("cannot listen on {}: {}", listen_text, e.what());
    spdlog::shutdown();
    return 1;
  }
  const std::string host =
      listen->host.find(':') != std::string::npos ? "[" + listen->host + "]" : listen->host;
  std::cout << "listening on http://" << host << ":" << server.port() << std::endl;
  spdlog::info("serving {} domains from {} on {}:{}", server.app()->config.domains.size(),
               config_path, host, server.port());

  while (true) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      if (!from_file) {
        spdlog::warn("SIGHUP: the built-in example configuration cannot be reloaded");
        continue;
      }
      Loaded next = load_config_file(config_path);
      if (!next.ok()) {
        for (const auto& problem : next.problems) spdlog::error("reload: {}", problem);
        spdlog::error("reload failed: {} problem(s); still serving the previous configuration",
                      next.problems.size());
        continue;
      }
      server.swap(build_app(std::move(next.config)));
      spdlog::info("reloaded {}: {} domains", config_path, server.app()->config.domains.size());
      continue;
    }
    spdlog::info("signal {}: stopping", sig);
    break;
  }
  // A watchdog makes sure the process ends even if a Pistache thread is stuck.
  std::thread([] {
    std::this_thread::sleep_for(std::chrono::seconds(15));
    std::fputs("mailconfd: shutdown took too long, exiting\n", stderr);
    std::_Exit(1);
  }).detach();
  server.stop(std::chrono::seconds(10));
  spdlog::info("stopped");
  spdlog::shutdown();
  return 0;
}

int run(int argc, char** argv) {
  if (argc < 2) return usage_error("missing command", kUsage);
  const std::string command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") return std::cout << kUsage, 0;
  if (command == "--version" || command == "version") {
    return std::cout << "mailconfd " << MAILCONFD_VERSION << '\n', 0;
  }
  std::string error;
  if (command == "serve") {
    auto args = parse_args(argc, argv, 2, {"config", "listen"}, error);
    return args ? serve(*args) : usage_error(error, kServeHelp);
  }
  if (command == "check") {
    auto args = parse_args(argc, argv, 2, {"config"}, error);
    if (args) init_logging(false);
    return args ? check(*args) : usage_error(error, kCheckHelp);
  }
  if (command == "render") {
    auto args = parse_args(argc, argv, 2, {"config"}, error);
    if (args) init_logging(false);
    return args ? render_command(*args) : usage_error(error, kRenderHelp);
  }
  return usage_error("unknown command '" + command + "'", kUsage);
}

}  // namespace
}  // namespace mailconfd

int main(int argc, char** argv) { return mailconfd::run(argc, argv); }
