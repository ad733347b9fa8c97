// argv → subcommand (serve, check, render, dns, probe, cutover); the only place that exits.
// Exit status: 0 success, 1 runtime failure, 2 usage error or invalid configuration.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "app.h"
#include "cli/as_user.h"
#include "cli/cockpit.h"
#include "cli/cutover.h"
#include "cockpit/board.h"
#include "config/config_file.h"
#include "core/client_settings.h"
#include "core/email_address.h"
#include "daemon/publisher.h"
#include "dns/check.h"
#include "dns/zone.h"
#include "example_config.h"
#include "http/server.h"
#include "journal/journal.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "probe/probe.h"
#include "render/autoconfig.h"
#include "render/autodiscover.h"
#include "sign/signer.h"
#include "tls/context.h"

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

constexpr const char* kCheckHelp =
    "usage: mailconfd check [--config] FILE [--as-user USER]\n"
    "\n"
    "Loads and validates FILE and every file it names (domain lists, templates, the TLS\n"
    "certificate and key, the signing key, secret-file, password-file). Prints every problem\n"
    "as FILE:LINE:COLUMN: message on stderr and exits 2 if there is any, 0 if the file is\n"
    "valid.\n"
    "\n"
    "  --as-user USER  run as root: become USER first (its groups too, such as ssl-cert), so\n"
    "                  that every file the service user cannot read is named with the\n"
    "                  reason (Permission denied). Exits 2 when not root or USER is unknown.\n";

constexpr const char* kRenderHelp =
    "usage: mailconfd render autoconfig|autodiscover|mobileconfig|setup EMAIL [--config FILE]\n"
    "                        [--lang de|en]\n"
    "\n"
    "Prints the document mailconfd would serve for EMAIL: the Thunderbird autoconfig file,\n"
    "the Outlook Autodiscover (POX, outlook 2006a) answer, the Apple profile's bytes\n"
    "(CMS-signed DER when the configuration has <signing>, else the plain plist), or the\n"
    "setup page (HTML; --lang picks the language, default <setup lang>).\n"
    "Without --config it says on stderr that it used the built-in example configuration.\n"
    "The <tls> private key is not read (it is not needed to render).\n";

constexpr const char* kDnsZoneHelp =
    "usage: mailconfd dns zone [--config FILE] [DOMAIN...] [--out DIR]\n"
    "\n"
    "Prints, in RFC 1035 zone-file syntax, the records that point mail clients of each hosted\n"
    "domain (all of them when none is named) at the provider: SRV for submission, IMAP, POP3\n"
    "and Autodiscover, the autoconfig/autodiscover CNAMEs and MX that <dns> asks for.\n"
    "With --out DIR, writes DIR/DOMAIN.zone for each domain and DIR/PROVIDER.include (the\n"
    "records with relative names, for $INCLUDE into every zone of that provider's domains\n"
    "without host override) instead. See dns/README.md.\n";

constexpr const char* kDnsCheckHelp =
    "usage: mailconfd dns check [--config FILE] [DOMAIN...] [--resolver IP[:PORT]] [--json]\n"
    "                           [--timeout MS] [--concurrency N]\n"
    "\n"
    "Looks up the records 'dns zone' prints for each domain (all hosted domains when none is\n"
    "named) and reports, per domain: ok, missing, wrong, cname-target (an SRV or MX target\n"
    "that is an alias), mx-elsewhere (the preferred MX is not a provider MX host), timeout,\n"
    "servfail, lookup-error. A table by default, JSON with --json.\n"
    "\n"
    "  --resolver IP[:PORT]  ask this server (default: /etc/resolv.conf); [IPV6]:PORT for IPv6\n"
    "  --timeout MS          first try per query, doubled for the second (default 2000)\n"
    "  --concurrency N       queries in flight at once (default 256)\n"
    "\n"
    "Exit status: 0 every domain ok, 1 a domain has a problem, 2 usage or configuration error.\n";

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
    "relaying without AUTH must be refused. Exit 0 only when every check passes.\n"
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

// flags are options without a value (--json).
std::optional<Args> parse_args(int argc, char** argv, int first,
                               std::initializer_list<std::string_view> known, std::string& error,
                               std::initializer_list<std::string_view> flags = {}) {
  Args args;
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      args.help = true;
      continue;
    }
    if (arg.starts_with("--") &&
        std::find(flags.begin(), flags.end(), std::string_view(arg).substr(2)) != flags.end()) {
      args.options[arg.substr(2)] = "";
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

Loaded load(const Args& args, TlsKeys tls_keys = TlsKeys::Load) {
  if (auto it = args.options.find("config"); it != args.options.end()) {
    return load_config_file(it->second, tls_keys);
  }
  return load_config_text(example_config(), kExampleConfigName, ".", tls_keys);
}

bool report(const Loaded& loaded) {
  for (const std::string& problem : loaded.problems) std::cerr << problem << '\n';
  return loaded.ok();
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
    if (const std::string refused = cli::become_user(it->second); !refused.empty()) {
      std::cerr << "mailconfd: " << refused << '\n';
      return 2;
    }
    as_user = " as user " + it->second;
  }
  const Loaded loaded = load(args);
  if (!report(loaded)) {
    std::cerr << loaded.problems.size() << (loaded.problems.size() == 1 ? " problem" : " problems")
              << " in " << args.options.at("config") << as_user << '\n';
    return 2;
  }
  std::cout << args.options.at("config") << ": ok (" << loaded.config.providers.size()
            << (loaded.config.providers.size() == 1 ? " provider, " : " providers, ")
            << loaded.config.domains.size() << " domains)" << as_user << '\n';
  return 0;
}

int render_command(const Args& args) {
  if (args.help) return std::cout << kRenderHelp, 0;
  if (args.positional.size() != 2)
    return usage_error("render needs a document kind and an address", kRenderHelp);
  const std::string& kind = args.positional[0];
  if (kind != "autoconfig" && kind != "autodiscover" && kind != "mobileconfig" && kind != "setup") {
    return usage_error("unknown document kind '" + kind + "'", kRenderHelp);
  }
  std::optional<render::Lang> lang;
  if (auto it = args.options.find("lang"); it != args.options.end()) {
    if (kind != "setup") return usage_error("--lang goes with render setup", kRenderHelp);
    lang = render::parse_lang(it->second);
    if (!lang) return usage_error("--lang must be de or en", kRenderHelp);
  }
  if (!args.options.count("config")) {
    std::cerr << "mailconfd: no --config given: rendering from the built-in example "
                 "configuration (deploy/example/mailconfd.xml)\n";
  }
  Loaded loaded = load(args, TlsKeys::Skip);
  if (!report(loaded)) return 2;
  if (kind == "setup") {
    // The page as a browser gets it, what the customer typed included: any input gives a
    // page (exit 0 for settings, 1 for an unknown domain or not an address, as the status).
    auto app = build_app(std::move(loaded.config));
    std::string body;
    const int status =
        setup_page(*app, lang.value_or(app->setup->default_lang), args.positional[1],
                   parse_pasted_email(args.positional[1]), std::chrono::system_clock::now(), body);
    std::cout << body;
    if (status != 200) {
      std::cerr << "mailconfd: "
                << (status == 404 ? "the domain is not hosted in this configuration"
                                  : "not an email address")
                << " (the page says so; HTTP status " << status << ")\n";
    }
    return status == 200 ? 0 : 1;
  }
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
  if (kind == "mobileconfig") {
    auto app = build_app(std::move(loaded.config));
    const DomainEntry* entry = app->domains->find(address->domain);
    auto profile = mobileconfig_for(*app, *entry, *address);
    if (!profile) return 1;  // the OpenSSL reason is logged
    std::cout.write(profile->data(), static_cast<std::streamsize>(profile->size()));
    std::cout.flush();
    return std::cout ? 0 : 1;
  }
  const std::string login = login_name(*settings->provider, *address);
  const std::string full = address->full();
  const std::string shown = address->display();
  render::SlotValues values;
  values[render::Slot::Domain] = address->domain;
  values[render::Slot::Login] = login;
  values[render::Slot::Address] = full;
  values[render::Slot::Display] = shown;
  const render::Splice doc =
      kind == "autoconfig" ? render::autoconfig(*settings) : render::autodiscover(*settings);
  std::cout << doc.expand(values);
  return 0;
}

// The named domains as hosted A-labels, or all hosted domains (sorted) when none is named.
std::optional<std::vector<std::string>> pick_domains(const Args& args, const Config& config,
                                                     std::string& error) {
  std::vector<std::string> domains;
  if (args.positional.empty()) {
    for (std::string_view d : config.domains.sorted()) domains.emplace_back(d);
    return domains;
  }
  for (const std::string& raw : args.positional) {
    auto name = normalize_domain(raw);
    if (!name || config.domains.find(*name) == nullptr) {
      error = "domain '" + raw + "' is not hosted in this configuration";
      return std::nullopt;
    }
    if (std::find(domains.begin(), domains.end(), *name) == domains.end()) domains.push_back(*name);
  }
  return domains;
}

int dns_zone(const Args& args) {
  if (args.help) return std::cout << kDnsZoneHelp, 0;
  const Loaded loaded = load(args, TlsKeys::Skip);
  if (!report(loaded)) return 2;
  std::string error;
  auto domains = pick_domains(args, loaded.config, error);
  if (!domains) return usage_error(error, kDnsZoneHelp);
  const dns::Zones zones(loaded.config);
  auto it = args.options.find("out");
  if (it == args.options.end()) {
    for (std::size_t i = 0; i < domains->size(); ++i) {
      std::cout << (i == 0 ? "" : "\n") << zones.zone((*domains)[i]);
    }
    return 0;
  }
  const std::filesystem::path dir = it->second;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  auto write = [&](const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) std::cerr << "mailconfd: cannot write " << path.string() << '\n';
    return static_cast<bool>(out);
  };
  bool ok = true;
  for (const std::string& domain : *domains)
    ok = write(dir / (domain + ".zone"), zones.zone(domain)) && ok;
  for (std::uint32_t p = 0; p < loaded.config.providers.size(); ++p) {
    const std::string& id = loaded.config.providers[p].id;
    ok = write(dir / (id + ".include"), zones.include_file(p)) && ok;
  }
  return ok ? 0 : 1;
}

int dns_check(const Args& args) {
  if (args.help) return std::cout << kDnsCheckHelp, 0;
  dns::CheckOptions options;
  if (auto it = args.options.find("resolver"); it != args.options.end()) {
    options.resolver = dns::parse_resolver(it->second);
    if (!options.resolver)
      return usage_error("--resolver '" + it->second + "' is not IP[:PORT]", kDnsCheckHelp);
  }
  auto number = [&](const char* name, long min, long max, long& value) {
    auto it = args.options.find(name);
    if (it == args.options.end()) return true;
    char* end = nullptr;
    value = std::strtol(it->second.c_str(), &end, 10);
    return !it->second.empty() && *end == '\0' && value >= min && value <= max;
  };
  long timeout = 2000;
  long concurrency = 256;
  if (!number("timeout", 50, 60'000, timeout))
    return usage_error("--timeout must be milliseconds from 50 to 60000", kDnsCheckHelp);
  if (!number("concurrency", 1, 10'000, concurrency))
    return usage_error("--concurrency must be a number from 1 to 10000", kDnsCheckHelp);
  options.timeout = std::chrono::milliseconds(timeout);
  options.max_in_flight = static_cast<std::size_t>(concurrency);
  const Loaded loaded = load(args, TlsKeys::Skip);
  if (!report(loaded)) return 2;
  std::string error;
  auto domains = pick_domains(args, loaded.config, error);
  if (!domains) return usage_error(error, kDnsCheckHelp);
  const dns::CheckResult result = dns::check(loaded.config, *domains, options);
  if (!result.error.empty()) {
    std::cerr << "mailconfd: " << result.error << '\n';
    return 1;
  }
  std::cout << (args.options.count("json") ? dns::format_json(result.domains)
                                           : dns::format_table(result.domains));
  const bool all_ok = std::all_of(result.domains.begin(), result.domains.end(),
                                  [](const dns::DomainReport& r) { return r.ok(); });
  return all_ok ? 0 : 1;
}

int dns_command(int argc, char** argv) {
  constexpr const char* kDnsHelp =
      "usage: mailconfd dns zone|check [options]\n"
      "Run 'mailconfd dns zone --help' or 'mailconfd dns check --help' for details.\n";
  if (argc < 3) return usage_error("dns needs a subcommand: zone or check", kDnsHelp);
  const std::string sub = argv[2];
  if (sub == "--help" || sub == "-h") return std::cout << kDnsHelp, 0;
  std::string error;
  if (sub == "zone") {
    auto args = parse_args(argc, argv, 3, {"config", "out"}, error);
    if (args) init_logging(false);
    return args ? dns_zone(*args) : usage_error(error, kDnsZoneHelp);
  }
  if (sub == "check") {
    auto args = parse_args(argc, argv, 3, {"config", "resolver", "timeout", "concurrency"}, error,
                           {"json"});
    if (args) init_logging(false);
    return args ? dns_check(*args) : usage_error(error, kDnsCheckHelp);
  }
  return usage_error("unknown dns subcommand '" + sub + "'", kDnsHelp);
}

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

int probe_command(const Args& args) {
  if (args.help) return std::cout << kProbeHelp, 0;
  int exit_code = 0;
  auto options = probe_options(args, exit_code);
  if (!options) return exit_code;
  const Loaded loaded = load(args);
  if (!report(loaded)) return 2;
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

// One line on how Apple profiles go out, so that an operator sees a missing <signing> once.
void log_signing(const App& app) {
  const std::shared_ptr<const sign::Signer>& signer = app.profiles->signer;
  if (!signer) {
    spdlog::warn("no <signing> configured: Apple profiles are served unsigned");
    return;
  }
  const auto now = std::chrono::system_clock::now();
  const auto days =
      std::chrono::duration_cast<std::chrono::hours>(signer->not_after() - now).count() / 24;
  const std::time_t until = std::chrono::system_clock::to_time_t(signer->not_after());
  std::tm tm{};
  gmtime_r(&until, &tm);
  char date[32] = {};
  std::strftime(date, sizeof date, "%Y-%m-%d", &tm);
  if (signer->not_after() <= now) {
    spdlog::error("signing certificate {} expired on {}: Apple shows its profiles as unsigned",
                  signer->subject(), date);
  } else {
    spdlog::info(
        "signing Apple profiles with {} key, certificate {} ({} in chain), valid until "
        "{} ({} days)",
        signer->key_description(), signer->subject(), signer->chain_length(), date, days);
  }
}

// Raises the soft descriptor limit to the hard one, so that there is room for
// max-connections (a worker that runs out of descriptors pauses accepting).
void raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

std::string url_host(const ListenAddress& listen) {
  return listen.host.find(':') != std::string::npos ? "[" + listen.host + "]" : listen.host;
}

// build_app is the one place that turns a checked Config into what requests read, including
// every file the configuration names besides the domain lists, so a reload re-reads them all.
// A failure there is a configuration problem like any other: logged, and nothing is swapped.
std::shared_ptr<const App> build_or_log(Config config, std::string_view what) {
  try {
    return build_app(std::move(config));
  } catch (const std::exception& e) {
    spdlog::error("{}: {}", what, e.what());
  }
  return nullptr;
}

// What a SIGHUP rebuilds from: the file, and what only a restart can change.
struct ReloadSource {
  std::string path;
  bool from_file = false;
  ServerOptions started_with;
  bool tls_listening = false;
  bool cockpit_running = false;
  std::optional<JournalOptions> journal_started;
};

// The publisher's builder for SIGHUP: reads the file again and builds the next App on the
// builder thread, sharing the parts of the current one whose inputs are unchanged. Only an App
// without any problem is published; requests in flight finish on the one they started with.
daemon::Build rebuild(const ReloadSource& source, const App& current) {
  if (!source.from_file)
    return {nullptr, {"the built-in example configuration cannot be reloaded"}};
  Loaded next = load_config_file(source.path);
  if (!next.ok()) return {nullptr, std::move(next.problems)};
  if (next.config.server.tls && next.config.server.tls->context) {
    spdlog::info("reload: https certificate {}", next.config.server.tls->context->subject());
    if (!source.tls_listening) spdlog::warn("reload: <tls> takes effect at the next start");
  } else if (source.tls_listening) {
    spdlog::warn("reload: <tls> was removed; new HTTPS connections are refused");
  }
  const ServerOptions& options = next.config.server;
  const ServerOptions& started_with = source.started_with;
  if (options.listen != started_with.listen || options.threads != started_with.threads ||
      options.metrics_listen != started_with.metrics_listen) {
    spdlog::warn("reload: listen addresses and threads change only at restart");
  }
  const auto& journal = next.config.journal;
  const auto& journal_started = source.journal_started;
  if (journal.has_value() != journal_started.has_value() ||
      (journal && (journal->file != journal_started->file ||
                   journal->retention != journal_started->retention))) {
    spdlog::warn("reload: <journal> changes take effect at the next start");
  }
  if (next.config.cockpit.has_value() != source.cockpit_running) {
    spdlog::warn("reload: adding or removing <cockpit> takes effect at the next start");
  }
  return {build_app(std::move(next.config), &current), {}};
}

// Ends the process if the drain has not finished by deadline (a Pistache thread can hang,
// pistache.md #4), or at once on a second SIGTERM/SIGINT. Signals stay blocked everywhere;
// this thread takes them with sigtimedwait.
void start_watchdog(sigset_t signals, std::chrono::milliseconds deadline) {
  std::thread([signals, deadline] {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (true) {
      const auto left = until - std::chrono::steady_clock::now();
      if (left <= std::chrono::steady_clock::duration::zero()) break;
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      const timespec timeout{static_cast<time_t>(ns / 1'000'000'000),
                             static_cast<long>(ns % 1'000'000'000)};
      const int sig = sigtimedwait(&signals, nullptr, &timeout);
      if (sig == SIGINT || sig == SIGTERM) {
        std::fputs("mailconfd: second stop signal, exiting now\n", stderr);
        std::_Exit(1);
      }
    }
    std::fputs("mailconfd: shutdown took too long, exiting\n", stderr);
    std::_Exit(1);
  }).detach();
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
  const ServerOptions started_with = loaded.config.server;
  std::optional<ListenAddress> metrics_listen;
  if (!started_with.metrics_listen.empty()) {
    metrics_listen = parse_listen(started_with.metrics_listen);  // checked by the loader
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

  const std::string config_path = loaded.config.path;
  const bool from_file = args.options.count("config") > 0;
  auto app = build_or_log(std::move(loaded.config), "not starting");
  if (!app) {
    shutdown_logging();
    return 2;
  }
  // The settings journal and the cockpit run beside the servers; their threads never block a
  // request (journal/journal.h, cockpit/board.h).
  const std::optional<JournalOptions> journal_started = app->config->journal;
  std::unique_ptr<journal::Journal> journal;
  if (journal_started) {
    journal = std::make_unique<journal::Journal>(
        journal::Options{journal_started->file, journal_started->retention});
    spdlog::info("settings journal on: {} (fetches kept {} days)", journal_started->file,
                 journal_started->retention.count() / 86400);
  }
  std::unique_ptr<cockpit::Board> board;
  if (app->config->cockpit) board = std::make_unique<cockpit::Board>(app);
  // One snapshot for every listener; SIGHUP only asks the publisher's thread for a new one.
  const ReloadSource source{config_path,      from_file,      started_with, tls_listen.has_value(),
                            board != nullptr, journal_started};
  daemon::PublisherOptions publisher_options;
  publisher_options.published = [&board, &source](const std::shared_ptr<const App>& next,
                                                  const std::vector<std::string>&) {
    if (board != nullptr && next->config->cockpit && next->config->journal) board->swap(next);
    spdlog::info("reloaded {}: {} domains", source.path, next->domains->size());
    log_signing(*next);
  };
  daemon::Publisher publisher(
      app,
      [&source](const std::shared_ptr<const App>& current, const std::vector<std::string>&,
                std::stop_token) { return rebuild(source, *current); },
      std::move(publisher_options));
  http::Server server(publisher.slot());
  std::unique_ptr<http::Server> metrics_server;
  std::string where = listen_text;
  try {
    server.start(*listen, started_with.threads,
                 metrics_listen ? http::Surface::Public : http::Surface::All);
    if (metrics_listen) {
      where = started_with.metrics_listen;
      metrics_server = std::make_unique<http::Server>(publisher.slot());
      metrics_server->start(*metrics_listen, 1, http::Surface::Metrics);
    }
  } catch (const std::exception& e) {
    spdlog::critical("cannot listen on {}: {}", where, e.what());
    shutdown_logging();
    return 1;
  }
  if (tls_listen) {
    try {
      server.start_tls(*tls_listen);
    } catch (const std::exception& e) {
      spdlog::critical("cannot listen on {}:{} (https): {}", tls_listen->host, tls_listen->port,
                       e.what());
      server.stop(std::chrono::milliseconds(0));
      shutdown_logging();
      return 1;
    }
  }
  // The readiness lines, in one write; "listening on http://" comes after the metrics line,
  // so whoever waits for it may use every listener.
  std::string ready;
  if (metrics_server) {
    ready += "metrics on http://" + url_host(*metrics_listen) + ":" +
             std::to_string(metrics_server->port()) + "/metrics\n";
  }
  ready += "listening on http://" + url_host(*listen) + ":" + std::to_string(server.port()) + "\n";
  if (tls_listen) {
    ready += "listening on https://" + url_host(*tls_listen) + ":" +
             std::to_string(server.tls_port()) + "\n";
    spdlog::info("https certificate {}", app->config->server.tls->context->subject());
  }
  // Ready before the readiness line: whoever waits for it may ask /readyz at once.
  metrics::set_ready(true);
  std::cout << ready << std::flush;
  spdlog::info(
      "serving {} domains from {} on http://{}:{}{}", app->domains->size(), config_path,
      url_host(*listen), server.port(),
      tls_listen ? " and https://" + url_host(*tls_listen) + ":" + std::to_string(server.tls_port())
                 : std::string());
  log_signing(*app);
  app.reset();  // the publisher holds the snapshot; a reload must be able to free it
  notify_systemd("READY=1\nSTATUS=serving");

  while (true) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      publisher.trigger("SIGHUP");
      continue;
    }
    spdlog::info("signal {}: stopping", sig);
    break;
  }
  publisher.stop();  // a rebuild in progress is discarded; nothing waits for it
  metrics::set_ready(false);
  notify_systemd("STOPPING=1\nSTATUS=draining");
  // The grace period of the snapshot being served: a reload may have changed it.
  const std::chrono::milliseconds grace = publisher.current()->config->server.shutdown_grace;
  start_watchdog(signals, grace + std::chrono::seconds(5));
  server.stop(grace);
  if (metrics_server) metrics_server->stop(std::chrono::seconds(1));
  board.reset();
  journal.reset();  // writes what is still buffered
  spdlog::info("stopped");
  shutdown_logging();
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
    auto args = parse_args(argc, argv, 2, {"config", "listen", "tls-listen"}, error);
    return args ? serve(*args) : usage_error(error, kServeHelp);
  }
  if (command == "check") {
    auto args = parse_args(argc, argv, 2, {"config", "as-user"}, error);
    if (args) init_logging(false);
    return args ? check(*args) : usage_error(error, kCheckHelp);
  }
  if (command == "render") {
    auto args = parse_args(argc, argv, 2, {"config", "lang"}, error);
    if (args) init_logging(false);
    return args ? render_command(*args) : usage_error(error, kRenderHelp);
  }
  if (command == "dns") return dns_command(argc, argv);
  if (command == "cutover") return cli::cutover(argc, argv);
  if (command == "cockpit") return cli::cockpit_command(argc, argv);
  if (command == "probe") {
    auto args = parse_args(argc, argv, 2,
                           {"config", "timeout", "ca-file", "user", "password-file", "relay-to",
                            "connect-to", "parallel", "source"},
                           error, {"json"});
    if (args) init_logging(false);
    return args ? probe_command(*args) : usage_error(error, kProbeHelp);
  }
  return usage_error("unknown command '" + command + "'", kUsage);
}

}  // namespace
}  // namespace mailconfd

int main(int argc, char** argv) { return mailconfd::run(argc, argv); }
