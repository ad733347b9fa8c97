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
  app->documents.resize(providers.size());
  for (std::uint32_t p = 0; p < providers.size(); ++p) {
    for (std::uint32_t h = 0; h < providers[p].overrides.size(); ++h) {
      const ClientSettings settings = resolve(app->config, DomainEntry{p, h});
      app->documents[p].push_back(App::Documents{
          render::autoconfig(settings), render::autodiscover(settings),
          render::autodiscover_url(providers[p]), render::autodiscover_json(providers[p])});
    }
  }
  return app;
}

}  // namespace mailconfd
