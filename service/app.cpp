#include "app.h"

#include <algorithm>
#include <cstring>
#include <ctime>

#include "core/client_settings.h"
#include "core/utc_time.h"
#include "render/autoconfig.h"
#include "render/autodiscover.h"
#include "render/html.h"
#include "render/mobileconfig.h"
#include "sign/signer.h"

namespace mailconfd {
namespace {

std::atomic<std::uint64_t> signatures{0};

const std::map<std::string, std::string>& templates_of(const Config& config) {
  return config.setup.templates.empty() ? render::builtin_setup_templates()
                                        : config.setup.templates;
}

// Renders the documents of every provider × host set of domains. previous (may be null): the
// documents of an App with the same providers, setup and signing, whose host sets were
// previous_domains'; equal host sets at the same index share their documents.
// previous itself is returned when every host set is the same.
std::shared_ptr<const App::DocumentTable> build_documents(
    const Config& config, const HostedDomains& domains,
    const std::shared_ptr<const App::DocumentTable>& previous,
    const HostedDomains* previous_domains) {
  if (previous != nullptr && previous_domains->host_sets == domains.host_sets) return previous;
  const auto& providers = config.providers;
  const render::SetupPages pages(templates_of(config));
  const bool signed_profiles = config.signing.has_value();
  auto documents = std::make_shared<App::DocumentTable>(providers.size());
  for (std::uint32_t p = 0; p < providers.size(); ++p) {
    const std::vector<HostOverride>& sets = domains.host_sets.at(p);
    for (std::uint32_t h = 0; h < sets.size(); ++h) {
      if (previous != nullptr && h < previous_domains->host_sets[p].size() &&
          previous_domains->host_sets[p][h] == sets[h]) {
        (*documents)[p].push_back((*previous)[p][h]);
        continue;
      }
      const ClientSettings settings = resolve(providers[p], sets[h]);
      auto made = std::make_shared<App::Documents>();
      App::Documents& docs = *made;
      docs.autoconfig = render::autoconfig(settings);
      docs.autodiscover = render::autodiscover(settings);
      docs.autodiscover_url = render::autodiscover_url(providers[p]);
      docs.autodiscover_json = render::autodiscover_json(providers[p]);
      for (render::Lang lang : render::kLangs) {
        for (bool passed : {false, true}) {
          for (bool ace : {false, true}) {
            docs.setup[static_cast<std::size_t>(lang)][render::variant_index(passed, ace)] =
                pages.render(lang, render::SetupState::Settings, providers[p], &settings,
                             {passed, ace, signed_profiles});
          }
        }
      }
      docs.mobileconfig = render::mobileconfig(settings);
      (*documents)[p].push_back(std::move(made));
    }
  }
  return documents;
}

std::shared_ptr<const App::SetupPages> build_setup(const Config& config) {
  const render::SetupPages pages(templates_of(config));
  const bool signed_profiles = config.signing.has_value();
  auto setup = std::make_shared<App::SetupPages>();
  const Provider& front = config.providers.at(config.setup.provider);
  const ClientSettings general = resolve(config, DomainEntry{config.setup.provider, 0});
  for (render::Lang lang : render::kLangs) {
    const auto l = static_cast<std::size_t>(lang);
    for (bool passed : {false, true}) {
      const render::PageVariant variant{passed, false, signed_profiles};
      setup->form[l][passed] =
          pages.render(lang, render::SetupState::Form, front, &general, variant);
      setup->unknown_domain[l][passed] =
          pages.render(lang, render::SetupState::UnknownDomain, front, nullptr, variant);
      setup->bad_address[l][passed] =
          pages.render(lang, render::SetupState::BadAddress, front, nullptr, variant);
    }
  }
  setup->content_security_policy = pages.content_security_policy();
  setup->default_lang = render::parse_lang(config.setup.lang).value_or(render::Lang::En);
  return setup;
}

const sign::Signer* signer_of(const Config& config) {
  return config.signing ? config.signing->signer.get() : nullptr;
}

// The cache may be kept when a profile for the same address and entry would have the same
// bytes (same documents, same secret) and a signature from either Signer is interchangeable.
bool same_profiles(const App::Profiles& old, const Config& config) {
  const sign::Signer* next = signer_of(config);
  if ((old.signer == nullptr) != (next == nullptr)) return false;
  if (next != nullptr && old.signer->fingerprint() != next->fingerprint()) return false;
  return old.secret == config.profile_secret;
}

// True when every host set index present in both means the same in both (a cached signed
// profile is keyed by the DomainEntry).
bool same_host_sets(const HostedDomains& old, const HostedDomains& next) {
  if (old.host_sets.size() != next.host_sets.size()) return false;
  for (std::size_t p = 0; p < old.host_sets.size(); ++p) {
    const auto& a = old.host_sets[p];
    const auto& b = next.host_sets[p];
    if (!std::equal(a.begin(),
                    a.begin() + static_cast<std::ptrdiff_t>(std::min(a.size(), b.size())),
                    b.begin())) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::shared_ptr<const HostedDomains> file_domains(const std::shared_ptr<const Config>& config) {
  auto domains = std::make_shared<HostedDomains>();
  domains->table = std::shared_ptr<const DomainTable>(config, &config->domains);
  for (const Provider& provider : config->providers)
    domains->host_sets.push_back(provider.overrides);
  return domains;
}

std::shared_ptr<const App> build_app(Config config, const App* previous) {
  return build_app(std::move(config), nullptr, previous);
}

std::shared_ptr<const App> with_domains(const App& current,
                                        std::shared_ptr<const HostedDomains> domains) {
  auto app = std::make_shared<App>(current);  // shares every part
  app->documents =
      build_documents(*current.config, *domains, current.documents, current.domains.get());
  if (!same_host_sets(*current.domains, *domains)) {
    auto profiles = std::make_shared<App::Profiles>();
    profiles->signer = current.profiles->signer;
    profiles->secret = current.profiles->secret;
    app->profiles = std::move(profiles);
  }
  app->domains = std::move(domains);
  return app;
}

std::shared_ptr<const App> build_app(Config config, std::shared_ptr<const HostedDomains> domains,
                                     const App* previous) {
  auto app = std::make_shared<App>();
  app->loaded_at = std::chrono::system_clock::now();
  auto model = std::make_shared<const Config>(std::move(config));
  if (!domains) domains = file_domains(model);
  // The documents are rendered from the providers, the setup options and whether profiles are
  // signed, and hold only bytes (nothing points into the Config). A new input to
  // build_documents or build_setup must join this comparison.
  const bool same_documents = previous != nullptr &&
                              previous->config->providers == model->providers &&
                              previous->config->setup == model->setup &&
                              (previous->profiles->signer != nullptr) == model->signing.has_value();
  if (same_documents) {
    app->documents =
        build_documents(*model, *domains, previous->documents, previous->domains.get());
    app->setup = previous->setup;
  } else {
    app->documents = build_documents(*model, *domains, nullptr, nullptr);
    app->setup = build_setup(*model);
  }
  if (same_documents && same_profiles(*previous->profiles, *model) &&
      same_host_sets(*previous->domains, *domains)) {
    app->profiles = previous->profiles;
  } else {
    auto profiles = std::make_shared<App::Profiles>();
    if (model->signing) profiles->signer = model->signing->signer;
    profiles->secret = model->profile_secret;
    app->profiles = std::move(profiles);
  }
  app->domains = std::move(domains);
  if (model->server.tls) app->certificates = model->server.tls->certificates;
  app->acme_tokens = previous ? previous->acme_tokens : std::make_shared<acme::Tokens>();
  app->config = std::move(model);
  return app;
}

std::string login_for(const App& app, DomainEntry entry, const EmailAddress& address) {
  const HostedDomains& domains = *app.domains;
  if (domains.logins.size() != 0) {
    if (auto own = domains.logins.find(login_key(address.local, address.domain))) {
      return std::string(*own);
    }
  }
  const Provider& provider = app.config->providers[entry.provider];
  return login_name(login_form(provider, domains.host_set(entry)), provider.login_domain, address);
}

bool date_passed(const Provider& provider, std::chrono::system_clock::time_point now) {
  const std::string& date = provider.notice.smtp_after_pop_off;
  if (date.empty()) return false;
  return date <= format_utc(now, "%Y-%m-%d");  // YYYY-MM-DD compares as text
}

int setup_page(const App& app, render::Lang lang, std::string_view input,
               const std::optional<EmailAddress>& address,
               std::chrono::system_clock::time_point now, std::string& body) {
  const auto l = static_cast<std::size_t>(lang);
  const Provider& front = app.config->providers[app.config->setup.provider];
  const bool front_passed = date_passed(front, now);
  if (input.empty()) {
    app.setup->form[l][front_passed].expand({}, body);
    return 200;
  }
  render::SlotValues values;
  if (!address) {
    // Shown back in the form (escaped) so the typo can be fixed; long input is cut.
    constexpr std::size_t kShown = 320;
    std::string_view shown = input.substr(0, kShown);
    // Never cut inside a UTF-8 sequence (a cut one would show as a replacement character).
    while (shown.size() < input.size() && !shown.empty() &&
           (static_cast<unsigned char>(input[shown.size()]) & 0xC0) == 0x80) {
      shown.remove_suffix(1);
    }
    const std::string query = render::html::url_encode(shown);
    values[render::Slot::Address] = shown;
    values[render::Slot::AddressQuery] = query;
    app.setup->bad_address[l][front_passed].expand(values, body);
    return 400;
  }
  const std::string shown = address->display();
  const std::string query = render::html::url_encode(shown);
  values[render::Slot::Address] = shown;
  values[render::Slot::AddressQuery] = query;
  const DomainEntry* entry = app.domains->find(address->domain);
  if (entry == nullptr) {
    app.setup->unknown_domain[l][front_passed].expand(values, body);
    return 404;
  }
  const Provider& provider = app.config->providers[entry->provider];
  const std::string login = login_for(app, *entry, *address);
  values[render::Slot::Login] = login;
  values[render::Slot::Domain] = address->domain;
  const bool ace = address->domain.find("xn--") != std::string::npos;
  const render::Splice& page =
      app.documents_for(*entry).setup[l][render::variant_index(date_passed(provider, now), ace)];
  body.reserve(body.size() + page.literal_size() + 1024);
  page.expand(values, body);
  return 200;
}

std::optional<std::string> mobileconfig_for(const App& app, DomainEntry entry,
                                            const EmailAddress& address) {
  const App::Profiles& profiles = *app.profiles;
  const std::string full = address.full();
  const std::string login = login_for(app, entry, address);
  // The entry and the login are part of the key: a domain that moved to another provider or
  // host set, or a mailbox whose login changed, between two Apps sharing this cache gets a
  // new profile.
  std::string key;
  if (profiles.signer) {
    key.reserve(full.size() + 2 + sizeof entry + login.size());
    key.append(full).push_back('\0');
    char raw[sizeof entry];
    std::memcpy(raw, &entry, sizeof entry);
    key.append(raw, sizeof raw);
    key.append(login).push_back('\0');
    if (auto cached = profiles.signed_cache.find(key)) return *cached;
  }
  const Provider& provider = app.config->providers[entry.provider];
  const render::ProfileIds ids = render::profile_ids(provider.id, address, profiles.secret);
  const std::string shown = address.display();
  render::SlotValues values;
  values[render::Slot::Domain] = address.domain;
  values[render::Slot::Address] = full;
  values[render::Slot::Display] = shown;
  values[render::Slot::Login] = login;
  values[render::Slot::ProfileUuid] = ids.profile_uuid;
  values[render::Slot::AccountUuid] = ids.account_uuid;
  values[render::Slot::ProfileId] = ids.identifier;
  std::string plist = app.documents_for(entry).mobileconfig.expand(values);
  if (!profiles.signer) return plist;
  auto signed_profile = profiles.signer->sign(plist);
  if (!signed_profile) return std::nullopt;
  signatures.fetch_add(1, std::memory_order_relaxed);
  profiles.signed_cache.insert(key, std::make_shared<const std::string>(*signed_profile));
  return signed_profile;
}

std::uint64_t profiles_signed() { return signatures.load(std::memory_order_relaxed); }

}  // namespace mailconfd
