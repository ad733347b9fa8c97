#include "app.h"

#include "core/client_settings.h"
#include "render/autoconfig.h"
#include "render/autodiscover.h"
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
        docs.setup[static_cast<std::size_t>(lang)] =
            pages.render(lang, render::SetupState::Settings, providers[p], &settings);
      }
      docs.mobileconfig = render::mobileconfig(settings);
      app->documents[p].push_back(std::move(docs));
    }
  }
  const Provider& front = providers.at(app->config.setup.provider);
  for (render::Lang lang : render::kLangs) {
    const auto l = static_cast<std::size_t>(lang);
    app->setup.form[l] = pages.render(lang, render::SetupState::Form, front, nullptr);
    app->setup.unknown_domain[l] =
        pages.render(lang, render::SetupState::UnknownDomain, front, nullptr);
    app->setup.bad_address[l] = pages.render(lang, render::SetupState::BadAddress, front, nullptr);
  }
  app->setup.content_security_policy = pages.content_security_policy();
  app->setup.default_lang = render::parse_lang(app->config.setup.lang).value_or(render::Lang::En);
  return app;
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
  const std::string login = login_name(provider.login, address);
  render::SlotValues values;
  values[render::Slot::Domain] = address.domain;
  values[render::Slot::Address] = full;
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
