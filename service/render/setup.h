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

// Slots: Address (what the user typed, for the form and the page text), AddressQuery (the
// same, percent-encoded, for links), Login and Domain (Settings only).
class SetupPages {
 public:
  // files must have passed check_setup_templates (asserted).
  explicit SetupPages(const std::map<std::string, std::string>& files);

  // settings is required for Settings and ignored otherwise. Cannot fail.
  Splice render(Lang lang, SetupState state, const Provider& provider,
                const ClientSettings* settings) const;

  // The Content-Security-Policy header value: nothing but same-origin forms and the hashed
  // inline style.
  const std::string& content_security_policy() const { return csp_; }

 private:
  std::array<Template, kLangCount> pages_;
  std::string csp_;
};

// "2 September 2013" / "2. September 2013" for YYYY-MM-DD; empty if it is not such a date.
std::string format_date(std::string_view iso_date, Lang lang);
bool valid_iso_date(std::string_view text);

}  // namespace mailconfd::render
