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
    // [lang][render::variant_index(date passed, A-label login of an IDN)] SetupState::Settings
    std::array<std::array<render::Splice, render::kPageVariants>, render::kLangCount> setup;
    render::Splice mobileconfig;  // unsigned plist; see mobileconfig_for()
  };
  std::vector<std::vector<Documents>> documents;  // [provider][override]
  std::chrono::system_clock::time_point loaded_at;

  // The setup page without settings, presenting config.setup.provider; [lang][date passed].
  struct SetupPages {
    using Pages = std::array<std::array<render::Splice, 2>, render::kLangCount>;
    Pages form;            // 200
    Pages unknown_domain;  // 404
    Pages bad_address;     // 400
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

// True when provider's smtp-after-pop-off date has come at now (UTC): the setup page then
// speaks of it in the past tense.
bool date_passed(const Provider& provider, std::chrono::system_clock::time_point now);

// The setup page (GET / and /setup, `mailconfd render setup`): appends it to body and returns
// the status (200 form or settings, 400 not an address, 404 domain not hosted). input is what
// the customer typed or pasted, decoded, shown back in the form; empty: the form. address is
// input read as an address (pasted_address), nullopt if it is none.
int setup_page(const App& app, render::Lang lang, std::string_view input,
               const std::optional<EmailAddress>& address,
               std::chrono::system_clock::time_point now, std::string& body);

// Renders every document for every provider and host override, with the setup templates of
// config.setup.templates (the built-in ones when empty). Cannot fail for a Config that
// load_config_* accepted.
std::shared_ptr<const App> build_app(Config config);

}  // namespace mailconfd
