#include "probe/probe.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <map>
#include <thread>
#include <tuple>

#include "core/ascii.h"
#include "core/client_settings.h"
#include "core/email_address.h"
#include "probe/imap_pop.h"
#include "probe/smtp.h"

namespace mailconfd::probe {

std::vector<Target> targets(const Config& config, const std::vector<std::string>& selection,
                            std::vector<std::string>& problems) {
  // (provider, override) → the first hosted domain that uses it, in name order.
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::string> wanted;
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::string> first_domain;
  for (const std::string_view domain : config.domains.sorted()) {
    const DomainEntry* entry = config.domains.find(domain);
    first_domain.try_emplace({entry->provider, entry->hosts}, domain);
  }
  auto add_provider = [&](std::uint32_t p) {
    for (std::uint32_t o = 0; o < config.providers[p].overrides.size(); ++o) {
      if (auto it = first_domain.find({p, o}); it != first_domain.end() || o == 0) {
        wanted.try_emplace({p, o}, it == first_domain.end() ? "" : it->second);
      }
    }
  };
  if (selection.empty()) {
    for (std::uint32_t p = 0; p < config.providers.size(); ++p) add_provider(p);
  }
  for (const std::string& name : selection) {
    const std::string id = ascii_lower(name);
    const auto provider = std::find_if(config.providers.begin(), config.providers.end(),
                                       [&](const Provider& p) { return p.id == id; });
    if (provider != config.providers.end()) {
      add_provider(static_cast<std::uint32_t>(provider - config.providers.begin()));
      continue;
    }
    const auto domain = normalize_domain(name);
    const DomainEntry* entry = domain ? config.domains.find(*domain) : nullptr;
    if (entry == nullptr) {
      problems.push_back("'" + name + "' is neither a provider id nor a hosted domain");
      continue;
    }
    wanted.try_emplace({entry->provider, entry->hosts}, *domain);
  }

  std::vector<Target> out;
  auto seen = [&](const MailServer& s) {
    return std::any_of(out.begin(), out.end(), [&](const Target& t) {
      return std::tie(t.server.protocol, t.server.host, t.server.port, t.server.security) ==
             std::tie(s.protocol, s.host, s.port, s.security);
    });
  };
  for (const auto& [key, domain] : wanted) {
    const ClientSettings settings = resolve(config, DomainEntry{key.first, key.second});
    for (const auto* list : {&settings.outgoing, &settings.incoming}) {
      for (const MailServer& server : *list) {
        if (seen(server)) continue;
        out.push_back({server, settings.provider->id, domain, {}});
        if (server.protocol == Protocol::Smtp) out.back().incoming = settings.incoming;
      }
    }
  }
  return out;
}

ServerReport probe_server(const Target& target, const Options& options) {
  switch (target.server.protocol) {
    case Protocol::Smtp:
      return probe_smtp(target, options);
    case Protocol::Imap:
      return probe_imap(target, options);
    case Protocol::Pop3:
      return probe_pop3(target, options);
  }
  return probe_smtp(target, options);
}

std::vector<ServerReport> probe_all(const std::vector<Target>& targets, const Options& options) {
  std::vector<ServerReport> reports(targets.size());
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i = next++; i < targets.size(); i = next++) {
      try {
        reports[i] = probe_server(targets[i], options);
      } catch (const std::exception& e) {
        reports[i] = ServerReport{targets[i].server, targets[i].provider, {}, {}};
        reports[i].fail("probe", std::string("internal error: ") + e.what());
      }
    }
  };
  const std::size_t workers = std::min<std::size_t>(std::max(1U, options.parallel), targets.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < workers; ++i) threads.emplace_back(work);
  for (std::thread& thread : threads) thread.join();
  return reports;
}

}  // namespace mailconfd::probe
