// The setup page (GET / and /setup) for people who configure their client by hand: the
// provider's notice, a form for the address, and for a hosted address the exact settings of
// resolve() with short instructions per client. Pages are rendered once per provider, host
// override, language and state when the App is built; a request only fills the slots.
#pragma once

#include <array>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/client_settings.h"
#include "render/page.h"
#include "render/splice.h"

namespace mailconfd::render {

enum class Lang { De, En };
inline constexpr std::array kLangs{Lang::De, Lang::En};
inline constexpr std::size_t kLangCount = kLangs.size();
std::string_view to_string(Lang lang);
// "de" or "en", any letter case; nullopt otherwise.
std::optional<Lang> parse_lang(std::string_view text);
// The supported language the client prefers most by Accept-Language (RFC 9110 §12.5.4):
// highest q wins, the earlier one on a tie; a tag matches by its primary subtag ("de-AT");
// "*" and an absent or useless header give fallback; q=0 excludes.
Lang negotiate_lang(std::string_view accept_language, Lang fallback);

// What the page says besides the notice and the form.
enum class SetupState {
  Form,           // no address yet
  Settings,       // a hosted address: settings and instructions
  UnknownDomain,  // a well-formed address whose domain is not hosted here
  BadAddress,     // not an email address; the input is shown back in the form
};

// The template files: setup.<lang>.html for each language, and setup.css, which each page
// includes exactly as <style>{{>setup.css}}</style> (its hash goes into the CSP header).
inline constexpr std::array<std::string_view, 3> kSetupTemplateFiles{"setup.css", "setup.de.html",
                                                                     "setup.en.html"};
// The templates in templates/ of the source tree, compiled into the binary.
const std::map<std::string, std::string>& builtin_setup_templates();
// Every problem of a template set: missing files, syntax, unknown names, style rules.
std::vector<TemplateError> check_setup_templates(const std::map<std::string, std::string>& files);

// What a page says that does not follow from the state and the provider alone. Each
// combination is a page of its own, rendered when the configuration loads.
struct PageVariant {
  // The provider's smtp-after-pop-off date has come (today in UTC is that day or later):
  // past tense ("was switched off on"); before it, future tense and "change before then".
  bool date_passed = false;
  // Settings for an internationalized domain whose login uses A-labels: the page explains why
  // the user name is spelled differently from the address.
  bool ace_login = false;
  // Apple profiles are signed (<signing>): only then does the page call them signed.
  bool signed_profile = false;
};
// How many PageVariants a (provider, state, language) has that differ: date_passed × ace_login
// (signed_profile is the same for the whole configuration).
inline constexpr std::size_t kPageVariants = 4;
inline std::size_t variant_index(bool date_passed, bool ace_login) {
  return (date_passed ? 2 : 0) + (ace_login ? 1 : 0);
}

// Slots: Address (the address as the customer writes it, U-labels: for the form and the
// page text), AddressQuery (the same, percent-encoded, for links), Login and Domain
// (Settings only).
class SetupPages {
 public:
  // files must have passed check_setup_templates (asserted).
  explicit SetupPages(const std::map<std::string, std::string>& files);

  // settings: the address's settings for Settings; for Form the provider's own settings
  // (shown as the general settings block); ignored otherwise. Cannot fail.
  Splice render(Lang lang, SetupState state, const Provider& provider,
                const ClientSettings* settings, PageVariant variant = {}) const;

  // The Content-Security-Policy header value: nothing but same-origin forms and the hashed
  // inline style.
  const std::string& content_security_policy() const { return csp_; }

 private:
  std::array<Template, kLangCount> pages_;
  std::string csp_;
};

// /favicon.ico: a 16×16 envelope in the page's accent colour (a Windows icon with one 32-bit
// image), so browsers showing the page do not fetch a 404 on every visit.
const std::string& favicon();

// "2 September 2013" / "2. September 2013" for YYYY-MM-DD; empty if it is not such a date.
std::string format_date(std::string_view iso_date, Lang lang);
bool valid_iso_date(std::string_view text);

}  // namespace mailconfd::render
