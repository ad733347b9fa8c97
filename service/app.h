// Everything a request handler may read, built completely before it is used and never
// changed afterwards. A reload builds a new App and swaps it in; requests in flight keep
// the one they started with (they hold a shared_ptr).
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/email_address.h"
#include "render/setup.h"
#include "render/splice.h"
#include "sign/signed_cache.h"

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
    render::Splice mobileconfig;                           // unsigned plist; see mobileconfig_for()
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
  // Signs Apple profiles; null when the config has no <signing> (profiles go out unsigned).
  std::shared_ptr<const sign::Signer> signer;
  // Signed profiles by address: a repeated download costs a lookup, not a signature. The
  // only mutable part of an App; a reload builds a new App and so starts with an empty cache.
  mutable sign::SignedCache signed_profiles;

  const Documents& documents_for(DomainEntry entry) const {
    return documents[entry.provider][entry.hosts];
  }
};

// The .mobileconfig bytes for address, whose domain is hosted at entry: the plist, signed
// when the config has <signing>. nullopt only when signing fails (OpenSSL's reason is logged).
// Safe from any thread.
std::optional<std::string> mobileconfig_for(const App& app, DomainEntry entry,
                                            const EmailAddress& address);

// Renders every document for every provider and host override, with the setup templates of
// config.setup.templates (the built-in ones when empty). Cannot fail for a Config that
// load_config_* accepted.
std::shared_ptr<const App> build_app(Config config);

}  // namespace mailconfd
