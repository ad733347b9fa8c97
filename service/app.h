// Everything a request handler may read: a snapshot made of immutable parts, each built
// completely before it is used and never changed afterwards. A rebuild (SIGHUP; later a
// database change or a renewed certificate) makes a new App from new parts and the parts of
// the current App whose inputs did not change, and daemon::Publisher swaps it in; requests in
// flight keep the App they started with (they hold a shared_ptr).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "acme/challenges.h"
#include "config/config.h"
#include "core/email_address.h"
#include "render/setup.h"
#include "render/splice.h"
#include "sign/signed_cache.h"
#include "tls/certificates.h"

namespace mailconfd {

struct App {
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
  // [provider][host set] (HostedDomains::host_sets); an entry is shared with the previous
  // App's when its provider, host set and the rest of the inputs are equal.
  using DocumentTable = std::vector<std::vector<std::shared_ptr<const Documents>>>;

  // The setup page without settings, presenting config.setup.provider; [lang][date passed].
  struct SetupPages {
    using Pages = std::array<std::array<render::Splice, 2>, render::kLangCount>;
    Pages form;            // 200
    Pages unknown_domain;  // 404
    Pages bad_address;     // 400
    std::string content_security_policy;
    render::Lang default_lang = render::Lang::En;
  };

  // Apple profiles: how they are signed and the profiles already signed.
  struct Profiles {
    // Null when the config has no <signing> (profiles go out unsigned).
    std::shared_ptr<const sign::Signer> signer;
    std::string secret;  // <mobileconfig secret> the profile identifiers are derived from
    // Signed profiles by address and DomainEntry: a repeated download costs a lookup, not a
    // signature. The only mutable thing in an App; it is kept across rebuilds that keep the
    // signer's key material, the secret and the documents (see build_app).
    mutable sign::SignedCache signed_cache;
  };

  // The parts. Never null in an App that build_app made. Two Apps may share any of them.
  // config: the model as loaded (server options, providers, policy).
  std::shared_ptr<const Config> config;
  // Hosted domains → provider and host set, and per-mailbox logins: what every request
  // resolves against. From the file alone its table aliases config->domains; a database
  // change replaces this part alone (with_domains) and renders only new host sets.
  std::shared_ptr<const HostedDomains> domains;
  // Rendered from config->providers and config->setup: shared with the previous App when
  // both are equal.
  std::shared_ptr<const DocumentTable> documents;
  std::shared_ptr<const SetupPages> setup;
  // Shared with the previous App when documents is and the signer's fingerprint and the
  // secret are equal; otherwise new, with an empty cache.
  std::shared_ptr<const Profiles> profiles;
  // The HTTPS listener's certificates, chosen by SNI; null without <tls> (or when the config
  // was loaded without its keys). Built by the config loader from <tls>'s files.
  std::shared_ptr<const tls::CertificateSet> certificates;
  // The built-in ACME client's pending http-01 answers: mutable and thread-safe, the same
  // object in every App of a process (build_app passes it on), never null.
  std::shared_ptr<acme::Tokens> acme_tokens;
  std::chrono::system_clock::time_point loaded_at;  // when config was loaded

  const Documents& documents_for(DomainEntry entry) const {
    return *(*documents)[entry.provider][entry.hosts];
  }
};

// Where a process's current App is published: one per process, written by the publisher,
// read by every listener (one atomic load per round of events).
using AppSlot = std::atomic<std::shared_ptr<const App>>;

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

// Builds an App from config: renders every document for every provider and host override,
// with the setup templates of config.setup.templates (the built-in ones when empty). With
// previous (the App being served), each part whose inputs are equal to previous's is shared
// instead of built again. Cannot fail for a Config that load_config_* accepted.
std::shared_ptr<const App> build_app(Config config, const App* previous = nullptr);

// The domain part for config's own domains (the file's lists, the providers' host sets).
std::shared_ptr<const HostedDomains> file_domains(const std::shared_ptr<const Config>& config);

// Builds an App from config with domains (made by a source for this config's providers:
// host_sets[p] starts with providers[p].overrides). Like build_app otherwise.
std::shared_ptr<const App> build_app(Config config, std::shared_ptr<const HostedDomains> domains,
                                     const App* previous);

// The next App after current with only its domain part replaced: the config, the setup pages
// and the documents of unchanged host sets are shared, only new host sets are rendered; the
// signed-profile cache is kept when no host set changed its meaning. Cannot fail.
std::shared_ptr<const App> with_domains(const App& current,
                                        std::shared_ptr<const HostedDomains> domains);

// What the customer types as user name: the mailbox's own login from the domain part when it
// has one, else as the domain's login form says (login_name()).
std::string login_for(const App& app, DomainEntry entry, const EmailAddress& address);

// Signatures made for Apple profiles since the start (cache misses with <signing>).
std::uint64_t profiles_signed();

}  // namespace mailconfd
