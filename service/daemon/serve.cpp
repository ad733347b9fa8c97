#include "daemon/serve.h"

#include <signal.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "acme/issuer.h"
#include "acme_store/replica.h"
#include "app.h"
#include "cockpit/board.h"
#include "core/utc_time.h"
#include "daemon/publisher.h"
#include "http/server.h"
#include "journal/journal.h"
#include "metrics.h"
#include "notify.h"
#include "sign/signer.h"
#include "source/database.h"
#include "source/snapshot_writer.h"
#include "source/watcher.h"
#include "tls/certificates.h"

namespace mailconfd::daemon {
namespace {

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
  const std::string date = format_utc(signer->not_after(), "%Y-%m-%d");
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
// With a <database>, its rows are read first (or, when it cannot be read, the snapshot's);
// without either the process does not start.
std::shared_ptr<const App> build_or_log(Config config, std::string_view what) {
  try {
    if (config.database) {
      std::string error;
      auto built = source::load_domains(config, nullptr, {.snapshot_fallback = true}, error);
      if (!built) {
        spdlog::critical("{}: {}", what, error);
        return nullptr;
      }
      return build_app(std::move(config), built->domains, nullptr);
    }
    return build_app(std::move(config));
  } catch (const std::exception& e) {
    spdlog::error("{}: {}", what, e.what());
  }
  return nullptr;
}

// Every certificate's names and expiry, and a warning for each that is expired or not yet
// valid: at start and after each reload.
void log_certificates(const App& app, std::string_view prefix) {
  if (!app.certificates) return;
  std::vector<std::string> warnings;
  for (const std::string& line : tls::describe(app.certificates->certificates(),
                                               std::chrono::system_clock::now(), warnings)) {
    spdlog::info("{}{}", prefix, line);
  }
  for (const std::string& warning : warnings) spdlog::warn("{}{}", prefix, warning);
  for (const std::string& warning : uncovered_https_names(*app.config, *app.certificates)) {
    spdlog::warn("{}{}", prefix, warning);
  }
}

// What a SIGHUP rebuilds from: the file, and what only a restart can change.
struct ReloadSource {
  std::string path;
  bool from_file = false;
  ServerOptions started_with;
  bool tls_listening = false;
  std::optional<JournalOptions> journal_started;
};

// The domain part for a reloaded config: the database's rows (the snapshot's when it cannot
// be read), keeping current's host set indices when the providers are the same.
std::optional<source::Built> reload_domains(const Config& next, const App& current,
                                            std::string& error) {
  const HostedDomains* previous =
      current.config->providers == next.providers ? current.domains.get() : nullptr;
  return source::load_domains(next, previous, {.snapshot_fallback = true}, error);
}

// The publisher's builder for a database change or reconnect: the same App with a new domain
// part; nothing else is rebuilt (with_domains). Changes and the watcher's first connection: the
// changed domains' rows merged into the current part (source::update_domains; its snapshot
// written by writer); a reconnect: every row, as the watcher may have missed changes.
daemon::Build refresh_domains(const std::shared_ptr<const App>& current,
                              const std::vector<std::string>& reasons,
                              source::SnapshotWriter& writer) {
  if (!current->config->database) return {current, {}};  // <database> removed by a reload
  std::string error;
  std::optional<source::Built> built;
  if (std::all_of(reasons.begin(), reasons.end(), [](const std::string& r) {
        return r == source::kChanged || r == source::kConnected;
      })) {
    bool full = false;
    built = source::update_domains(*current->config, *current->domains, full, error);
    if (!built && error.empty()) return {current, {}};  // nothing changed after all
    if (built && !full) writer.submit(current->config, built->domains);
  } else {
    built = source::load_domains(*current->config, current->domains.get(), {}, error);
  }
  if (!built) return {nullptr, {error}};
  return {with_domains(*current, std::move(built->domains)), {}};
}

// The publisher's builder for SIGHUP: reads the file again and builds the next App on the
// builder thread, sharing the parts of the current one whose inputs are unchanged. Only an App
// without any problem is published; requests in flight finish on the one they started with.
daemon::Build rebuild(const ReloadSource& source, const App& current) {
  if (!source.from_file)
    return {nullptr, {"the built-in example configuration cannot be reloaded"}, true};
  Loaded next = load_config_file(source.path, TlsKeys::Load, current.certificates.get());
  if (!next.ok()) return {nullptr, std::move(next.problems), true};
  for (const std::string& warning : next.warnings) spdlog::warn("reload: {}", warning);
  if (next.config.server.tls && next.config.server.tls->certificates) {
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
  std::shared_ptr<const HostedDomains> domains;
  if (next.config.database) {
    std::string error;
    auto built = reload_domains(next.config, current, error);
    if (!built) return {nullptr, {error}, true};
    domains = std::move(built->domains);
  }
  if (next.config.database.has_value() != current.config->database.has_value()) {
    spdlog::warn(
        "reload: <database> added or removed: watching for changes starts or stops "
        "at the next start");
  }
  auto app = build_app(std::move(next.config), std::move(domains), &current);
  log_certificates(*app, "reload: ");
  return {std::move(app), {}, true};
}

// The publisher's trigger for a certificate the ACME issuer wrote: "acme: FILE".
constexpr std::string_view kIssued = "acme: ";

bool only_issued(const std::vector<std::string>& reasons) {
  return !reasons.empty() && std::all_of(reasons.begin(), reasons.end(),
                                         [](const auto& r) { return r.starts_with(kIssued); });
}

// The next App after the issuer wrote certificates: the current one with those files loaded
// into its certificate set (replacing the ones from the same files), every other part shared.
// A file that does not load is a problem; the current set keeps serving.
daemon::Build add_issued(const App& current, const std::vector<std::string>& reasons) {
  std::vector<tls::Certificate> list;
  if (current.certificates) list = current.certificates->certificates();
  for (const std::string& reason : reasons) {
    const std::string file = reason.substr(kIssued.size());
    std::string error;
    auto loaded =
        tls::load_certificate({file, file.substr(0, file.size() - 4) + ".key", ""}, error);
    if (!loaded) return {nullptr, {"acme: " + error}};
    spdlog::info("acme: serving {}", file);
    auto same = std::find_if(list.begin(), list.end(), [&](const tls::Certificate& c) {
      return c.files.certificate == file;
    });
    if (same != list.end()) {
      *same = std::move(*loaded);
    } else {
      list.push_back(std::move(*loaded));
    }
  }
  if (list.empty()) return {nullptr, {"acme: no default certificate"}};
  auto next = std::make_shared<App>(current);
  next->certificates = std::make_shared<const tls::CertificateSet>(std::move(list));
  return {std::move(next), {}};
}

// True for a name the built-in ACME client may order: one of <acme names> (the provider's own
// hosts), or autoconfig./autodiscover. of a hosted domain whose provider opted in
// (<provider acme-hosted-names>, else <acme hosted-names>). The guard of on-demand issuance:
// a handshake for any other name orders nothing (the CA account's rate limits).
bool wanted_name(const App& app, std::string_view name) {
  if (!app.config->acme) return false;
  const AcmeOptions& acme = *app.config->acme;
  if (std::find(acme.names.begin(), acme.names.end(), name) != acme.names.end()) return true;
  for (const std::string_view prefix :
       {std::string_view("autoconfig."), std::string_view("autodiscover.")}) {
    if (!name.starts_with(prefix)) continue;
    const DomainEntry* entry = app.domains->find(name.substr(prefix.size()));
    if (!entry) return false;
    const AcmeHostedNames& hosted = acme.hosted_for(app.config->providers[entry->provider]);
    return prefix == "autoconfig." ? hosted.autoconfig : hosted.autodiscover;
  }
  return false;
}

// What the built-in ACME client issues ahead of time: <acme names> (the provider's own
// hosts), then for every hosted domain (in lexicographic order) the autoconfig. and
// autodiscover. names its provider opted in to; never anything else. With on-demand, the
// hosted names wait for their first handshake instead; those issued so (their certificates
// are on disk) are on the list, so that they are renewed.
std::vector<std::string> acme_names(const App& app) {
  const AcmeOptions& acme = *app.config->acme;
  std::vector<std::string> names = acme.names;
  for (std::string_view domain : app.domains->table->sorted()) {
    if (acme.on_demand) break;
    const DomainEntry* entry = app.domains->find(domain);
    if (!entry) continue;
    const AcmeHostedNames& hosted = acme.hosted_for(app.config->providers[entry->provider]);
    if (hosted.autoconfig) names.push_back("autoconfig." + std::string(domain));
    if (hosted.autodiscover) names.push_back("autodiscover." + std::string(domain));
  }
  if (acme.on_demand) {
    std::vector<std::string> errors;
    std::vector<std::string> on_disk;
    for (const tls::CertificateFiles& files :
         tls::scan_directory(acme::certificates_directory(acme.storage), errors)) {
      const std::string file = files.certificate.substr(files.certificate.rfind('/') + 1);
      const std::string name = file.substr(0, file.size() - 4);
      if (wanted_name(app, name) && std::find(names.begin(), names.end(), name) == names.end()) {
        on_disk.push_back(name);
      }
    }
    names.insert(names.end(), on_disk.begin(), on_disk.end());
  }
  return names;
}

// Clears the TLS listener's hook for uncovered names when the listeners are gone.
struct UncoveredNameHook {
  ~UncoveredNameHook() { tls::set_uncovered_name_hook({}); }
};

// What a reload can change of <journal> and <cockpit>, said in the log: the cockpit's report
// and password file take effect at once, and so does removing <cockpit> (404) or <journal>
// (the journal writes what it buffered and stops recording); adding either, or another
// journal file or retention, needs a restart. Called once the new snapshot is published (on
// the publisher's thread; never after Publisher::stop()).
void reload_journal_and_cockpit(const Config& next, std::unique_ptr<journal::Journal>& journal,
                                const std::optional<JournalOptions>& journal_started,
                                const cockpit::Board* board) {
  const auto& wanted = next.journal;
  if (journal && !wanted) {
    journal.reset();
    spdlog::warn(
        "reload: <journal> removed: recording stopped now (what was buffered is written to {}; "
        "the file is kept)",
        journal_started->file.empty() ? "the database" : journal_started->file);
  } else if (!journal && wanted) {
    spdlog::warn(
        "reload: <journal> added: it starts at the next start; nothing is recorded "
        "until then");
  } else if (journal && (wanted->file != journal_started->file ||
                         wanted->dsn_file != journal_started->dsn_file ||
                         wanted->dsn != journal_started->dsn ||
                         wanted->retention != journal_started->retention)) {
    spdlog::warn(
        "reload: <journal> file or retention changed: the journal keeps writing {} "
        "(retention {} days) until the next start",
        journal_started->file.empty() ? "the database" : journal_started->file,
        journal_started->retention.count() / 86400);
  }
  if (board != nullptr && !next.cockpit) {
    spdlog::warn("reload: <cockpit> removed: /cockpit answers 404 from now on");
  } else if (board == nullptr && next.cockpit) {
    spdlog::warn(
        "reload: <cockpit> added: it starts at the next start; until then /cockpit "
        "answers 503");
  } else if (board != nullptr) {
    if (next.cockpit->password_file.empty()) {
      spdlog::info("reload: <cockpit> report {} in effect now (no password file: loopback only)",
                   next.cockpit->report);
    } else {
      spdlog::info("reload: <cockpit> report {} and password file ({} user(s)) in effect now",
                   next.cockpit->report, next.cockpit->users.size());
    }
  }
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

}  // namespace

sigset_t prepare_process() {
  // Signals are handled by sigwait in serve(), never in a handler. The mask is set before any
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
  return signals;
}

int serve(ServeSetup setup) {
  const std::string config_path = setup.config.path;
  const ServerOptions started_with = setup.config.server;
  std::optional<ListenAddress> metrics_listen;
  if (!started_with.metrics_listen.empty()) {
    metrics_listen = parse_listen(started_with.metrics_listen);  // checked by the loader
  }
  auto app = build_or_log(std::move(setup.config), "not starting");
  if (!app) return 2;
  // The settings journal and the cockpit run beside the servers; their threads never block a
  // request (journal/journal.h, cockpit/board.h).
  const std::optional<JournalOptions> journal_started = app->config->journal;
  std::unique_ptr<journal::Journal> journal;
  if (journal_started) {
    journal = std::make_unique<journal::Journal>(
        journal::Options{journal::location_of(*app->config), journal_started->retention});
    spdlog::info("settings journal on: {} (fetches kept {} days)",
                 journal::location_of(*app->config).name(),
                 journal_started->retention.count() / 86400);
  }
  std::unique_ptr<cockpit::Board> board;
  if (app->config->cockpit) board = std::make_unique<cockpit::Board>(app);
  // One snapshot for every listener; SIGHUP only asks the publisher's thread for a new one.
  const ReloadSource source{config_path, setup.from_file, started_with,
                            setup.tls_listen.has_value(), journal_started};
  // Snapshots of the parts merged after changes: written off the builder thread, at most one
  // every 10 s (the newest).
  source::SnapshotWriter snapshot_writer(std::chrono::seconds(10));
  daemon::PublisherOptions publisher_options;
  publisher_options.published = [&board, &journal, &source](
                                    const std::shared_ptr<const App>& next,
                                    const std::vector<std::string>& reasons) {
    if (only_issued(reasons)) return;  // only the certificate set changed
    reload_journal_and_cockpit(*next->config, journal, source.journal_started, board.get());
    if (board != nullptr && next->config->cockpit && next->config->journal) board->swap(next);
    spdlog::info("reloaded {}: {} domains, {} login names ({})", source.path, next->domains->size(),
                 next->domains->logins.size(), next->domains->origin);
    log_signing(*next);
  };
  daemon::Publisher publisher(
      app,
      [&source, &snapshot_writer](const std::shared_ptr<const App>& current,
                                  const std::vector<std::string>& reasons, std::stop_token) {
        // Certificates the issuer wrote: the certificate part alone. Only database
        // changes: the domain part alone. Anything else (SIGHUP) reads everything again, the
        // database and the issuer's directory included.
        if (only_issued(reasons)) return add_issued(*current, reasons);
        if (std::all_of(reasons.begin(), reasons.end(),
                        [](const std::string& r) { return r.starts_with("database "); })) {
          return refresh_domains(current, reasons, snapshot_writer);
        }
        return rebuild(source, *current);
      },
      std::move(publisher_options));
  // Database changes and reconnects reach the publisher as triggers, like SIGHUP.
  std::unique_ptr<source::Watcher> watcher;
  if (app->config->database) {
    watcher = std::make_unique<source::Watcher>(
        *app->config->database,
        [&publisher](std::string reason) { publisher.trigger(std::move(reason)); });
  }
  // The built-in ACME client (acme/issuer.h), started once; a reload does not change it. With
  // <acme dsn-file> the replica (acme_store/replica.h) starts it once this process holds the
  // database's lock, and loads what the issuing replica stored until then.
  std::unique_ptr<acme::Issuer> issuer;
  std::unique_ptr<acme_store::Replica> replica;
  if (app->config->acme && !app->config->acme->ca.empty() && setup.tls_listen) {
    const AcmeOptions acme = *app->config->acme;
    const auto options_for = [acme](const App& current) {
      acme::IssuerOptions options{acme.ca, acme.ca_certificate, acme.contact, acme.storage,
                                  acme_names(current)};
      // With <acme dsn-file> every replica answers both (from the database).
      if (acme.prefer_tls_alpn) {
        options.challenges = {acme::Challenge::TlsAlpn01, acme::Challenge::Http01};
      }
      spdlog::info("acme: {} names from {} ({} first{})", options.names.size(), acme.ca,
                   acme::to_string(options.challenges.front()),
                   acme.on_demand ? "; on demand at the first handshake" : "");
      return options;
    };
    const auto changed = [&publisher](const std::string& file) {
      publisher.trigger(std::string(kIssued) + file);
    };
    if (acme.dsn.empty()) {
      issuer = std::make_unique<acme::Issuer>(
          options_for(*app), app->acme_tokens,
          [changed](const std::string&, const std::string& file) { changed(file); });
    } else {
      acme_store::ReplicaOptions options;
      options.mariadb = app->config->database &&
                        app->config->database->driver == DatabaseOptions::Driver::Mariadb;
      options.dsn = acme.dsn;
      options.storage = acme.storage;
      options.key = acme.database_key;
      options.wanted = [&publisher](const std::string& name) {
        return wanted_name(*publisher.current(), name);
      };
      spdlog::info("acme: account and certificates shared through the {} database",
                   options.mariadb ? "MariaDB" : "PostgreSQL");
      replica = std::make_unique<acme_store::Replica>(
          std::move(options), app->acme_tokens,
          [&publisher, options_for](acme_store::Replica::IssuedCallback issued,
                                    acme::IssuerMemory memory) {
            const auto current = publisher.current();
            acme::IssuerOptions issuer_options = options_for(*current);
            issuer_options.memory = std::move(memory);
            return std::make_unique<acme::Issuer>(std::move(issuer_options), current->acme_tokens,
                                                  std::move(issued));
          },
          changed);
    }
    // On demand: a handshake for a name no certificate covers asks the issuer, if the name is
    // wanted in the snapshot being served (a reload changes the hosted domains and opt-ins).
    // A replica that does not issue hands a hosted name to the issuing one through the
    // database (acme_store/replica.h), off the request path.
    if (acme.on_demand) {
      tls::set_uncovered_name_hook(
          [&publisher, issuer = issuer.get(), replica = replica.get()](std::string_view name) {
            if (!wanted_name(*publisher.current(), name)) {
              acme::count_demand(acme::Demand::Refused);
              return;
            }
            const std::vector<std::string>& own = publisher.current()->config->acme->names;
            if (replica && std::find(own.begin(), own.end(), name) != own.end()) {
              // <acme names> are on every issuer's walk: nothing to hand over.
              acme::count_demand(acme::Demand::Known);
            } else if (replica) {
              replica->request(std::string(name));
            } else {
              issuer->request(std::string(name));
            }
          });
    }
  }
  const UncoveredNameHook uncovered_name_hook;
  http::Server server(publisher.slot());
  std::unique_ptr<http::Server> metrics_server;
  std::string where = setup.listen_text;
  try {
    server.start(setup.listen, started_with.threads,
                 metrics_listen ? http::Surface::Public : http::Surface::All);
    if (metrics_listen) {
      where = started_with.metrics_listen;
      metrics_server = std::make_unique<http::Server>(publisher.slot());
      metrics_server->start(*metrics_listen, 1, http::Surface::Metrics);
    }
  } catch (const std::exception& e) {
    spdlog::critical("cannot listen on {}: {}", where, e.what());
    return 1;
  }
  if (setup.tls_listen) {
    try {
      server.start_tls(*setup.tls_listen);
    } catch (const std::exception& e) {
      spdlog::critical("cannot listen on {}:{} (https): {}", setup.tls_listen->host,
                       setup.tls_listen->port, e.what());
      server.stop(std::chrono::milliseconds(0));
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
  ready +=
      "listening on http://" + url_host(setup.listen) + ":" + std::to_string(server.port()) + "\n";
  if (setup.tls_listen) {
    ready += "listening on https://" + url_host(*setup.tls_listen) + ":" +
             std::to_string(server.tls_port()) + "\n";
    log_certificates(*app, "");
  }
  // Ready before the readiness line: whoever waits for it may ask /readyz at once.
  metrics::set_ready(true);
  std::cout << ready << std::flush;
  spdlog::info("serving {} domains ({}) from {} on http://{}:{}{}", app->domains->size(),
               app->domains->origin, config_path, url_host(setup.listen), server.port(),
               setup.tls_listen ? " and https://" + url_host(*setup.tls_listen) + ":" +
                                      std::to_string(server.tls_port())
                                : std::string());
  log_signing(*app);
  app.reset();  // the publisher holds the snapshot; a reload must be able to free it
  notify_systemd("READY=1\nSTATUS=serving");

  while (true) {
    int sig = 0;
    if (sigwait(&setup.signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      publisher.trigger("SIGHUP");
      continue;
    }
    spdlog::info("signal {}: stopping", sig);
    break;
  }
  watcher.reset();   // no trigger after this
  publisher.stop();  // a rebuild in progress is discarded; nothing waits for it
  metrics::set_ready(false);
  notify_systemd("STOPPING=1\nSTATUS=draining");
  // The grace period of the snapshot being served: a reload may have changed it.
  const std::chrono::milliseconds grace = publisher.current()->config->server.shutdown_grace;
  start_watchdog(setup.signals, grace + std::chrono::seconds(5));
  server.stop(grace);
  if (metrics_server) metrics_server->stop(std::chrono::seconds(1));
  board.reset();
  journal.reset();  // writes what is still buffered
  spdlog::info("stopped");
  return 0;
}

}  // namespace mailconfd::daemon
