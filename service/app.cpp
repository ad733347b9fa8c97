#include "app.h"

#include "core/client_settings.h"
#include "render/autoconfig.h"
#include "render/autodiscover.h"

namespace mailconfd {

std::shared_ptr<const App> build_app(Config config) {
  auto app = std::make_shared<App>();
  app->config = std::move(config);  // ClientSettings point into app->config from here on
  app->loaded_at = std::chrono::system_clock::now();
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

}  // namespace mailconfd
