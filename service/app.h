// Everything a request handler may read, built completely before it is used and never
// changed afterwards. A reload builds a new App and swaps it in; requests in flight keep
// the one they started with (they hold a shared_ptr).
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "render/setup.h"
#include "render/splice.h"

namespace mailconfd {

struct App {
  Config config;

  // Documents pre-rendered at load time, one set per provider and host override.
  struct Documents {
    render::Splice autoconfig;
    render::Splice autodiscover;    // outlook 2006a settings; slots Login, Address
    std::string autodiscover_url;   // https://<autodiscover host>/autodiscover/autodiscover.xml
    std::string autodiscover_json;  // the v2 answer pointing to autodiscover_url
    std::array<render::Splice, render::kLangCount> setup;  // [lang] SetupState::Settings
  };
  std::vector<std::vector<Documents>> documents;  // [provider][override]
  std::chrono::system_clock::time_point loaded_at;

  // The setup page without settings, presenting config.setup.provider; [lang].
  struct SetupPages {
    std::array<render::Splice, render::kLangCount> form;            // 200
    std::array<render::Splice, render::kLangCount> unknown_domain;  // 404
    std::array<render::Splice, render::kLangCount> bad_address;     // 400
    std::string content_security_policy;
    render::Lang default_lang = render::Lang::En;
  } setup;

  const Documents& documents_for(DomainEntry entry) const {
    return documents[entry.provider][entry.hosts];
  }
};

// Renders every document for every provider and host override, with the setup templates of
// config.setup.templates (the built-in ones when empty). Cannot fail for a Config that
// load_config_* accepted.
std::shared_ptr<const App> build_app(Config config);

}  // namespace mailconfd
