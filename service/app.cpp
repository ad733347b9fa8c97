#include "app.h"

#include <ctime>

#include "core/client_settings.h"
#include "render/autoconfig.h"
#include "render/autodiscover.h"
#include "render/html.h"
#include "render/mobileconfig.h"
#include "sign/signer.h"

namespace mailconfd {

std::shared_ptr<const App> build_app(Config config) {
  auto app = std::make_shared<App>();
  app->config = std::move(config);  // ClientSettings point into app->config from here on
  app->loaded_at = std::chrono::system_clock::now();
  if (app->config.signing) app->signer = app->config.signing->signer;
  const auto& providers = app->config.providers;
  const auto& templates = app->config.setup.templates.empty() ? render::builtin_setup_templates()
                                                              : app->config.setup.templates;
  const render::SetupPages pages(templates);
  const bool signed_profiles = app->signer != nullptr;
  app->documents.resize(providers.size());
  for (std::uint32_t p = 0; p < providers.size(); ++p) {
    for (std::uint32_t h = 0; h < providers[p].overrides.size(); ++h) {
      const ClientSettings settings = resolve(app->config, DomainEntry{p, h});
      App::Documents docs;
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
      app->documents[p].push_back(std::move(docs));
    }
  }
  const Provider& front = providers.at(app->config.setup.provider);
  const ClientSettings general = resolve(app->config, DomainEntry{app->config.setup.provider, 0});
  for (render::Lang lang : render::kLangs) {
    const auto l = static_cast<std::size_t>(lang);
    for (bool passed : {false, true}) {
      const render::PageVariant variant{passed, false, signed_profiles};
      app->setup.form[l][passed] =
          pages.render(lang, render::SetupState::Form, front, &general, variant);
      app->setup.unknown_domain[l][passed] =
          pages.render(lang, render::SetupState::UnknownDomain, front, nullptr, variant);
      app->setup.bad_address[l][passed] =
          pages.render(lang, render::SetupState::BadAddress, front, nullptr, variant);
    }
  }
  app->setup.content_security_policy = pages.content_security_policy();
  app->setup.default_lang = render::parse_lang(app->config.setup.lang).value_or(render::Lang::En);
  return app;
}

bool date_passed(const Provider& provider, std::chrono::system_clock::time_point now) {
  const std::string& date = provider.notice.smtp_after_pop_off;
  if (date.empty()) return false;
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char today[16] = {};
  std::strftime(today, sizeof today, "%Y-%m-%d", &tm);
  return date <= std::string_view(today);  // YYYY-MM-DD compares as text
}

int setup_page(const App& app, render::Lang lang, std::string_view input,
               const std::optional<EmailAddress>& address,
               std::chrono::system_clock::time_point now, std::string& body) {
  const auto l = static_cast<std::size_t>(lang);
  const Provider& front = app.config.providers[app.config.setup.provider];
  const bool front_passed = date_passed(front, now);
  if (input.empty()) {
    app.setup.form[l][front_passed].expand({}, body);
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
    app.setup.bad_address[l][front_passed].expand(values, body);
    return 400;
  }
  const std::string shown = address->display();
  const std::string query = render::html::url_encode(shown);
  values[render::Slot::Address] = shown;
  values[render::Slot::AddressQuery] = query;
  const DomainEntry* entry = app.config.domains.find(address->domain);
  if (entry == nullptr) {
    app.setup.unknown_domain[l][front_passed].expand(values, body);
    return 404;
  }
  const Provider& provider = app.config.providers[entry->provider];
  const std::string login = login_name(provider, *address);
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
  const std::string full = address.full();
  if (app.signer) {
    if (auto cached = app.signed_profiles.find(full)) return *cached;
  }
  const Provider& provider = app.config.providers[entry.provider];
  const render::ProfileIds ids =
      render::profile_ids(provider.id, address, app.config.profile_secret);
  const std::string login = login_name(provider, address);
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
  if (!app.signer) return plist;
  auto signed_profile = app.signer->sign(plist);
  if (!signed_profile) return std::nullopt;
  app.signed_profiles.insert(full, std::make_shared<const std::string>(*signed_profile));
  return signed_profile;
}

}  // namespace mailconfd
