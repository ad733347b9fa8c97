#include "render/setup.h"

#include <doctest/doctest.h>

#include "config/config_file.h"
#include "example_config.h"
#include "render/html.h"
#include "support.h"

using namespace mailconfd;
using render::Lang;

namespace {

// The page as a request would get it, for the built-in example configuration.
// The example's date (2013) has passed; variant changes that and the rest.
std::string page(Lang lang, render::SetupState state, const std::string& address = "",
                 render::PageVariant variant = {true, false, false},
                 const std::string& config = std::string(example_config())) {
  const Loaded loaded = load_config_text(config, "example", ".");
  REQUIRE(loaded.ok());
  const render::SetupPages pages(render::builtin_setup_templates());
  const ClientSettings settings = resolve(loaded.config, DomainEntry{0, 0});
  const std::string query = render::html::url_encode(address);
  render::SlotValues v;
  v[render::Slot::Address] = address;
  v[render::Slot::AddressQuery] = query;
  v[render::Slot::Login] = address;
  v[render::Slot::Domain] = "example.com";
  return pages.render(lang, state, loaded.config.providers[0], &settings, variant).expand(v);
}

}  // namespace

TEST_CASE("negotiate_lang follows q-values, primary subtags and '*'") {
  const struct {
    std::string_view header;
    Lang fallback;
    Lang want;
  } cases[] = {
      {"", Lang::En, Lang::En},
      {"", Lang::De, Lang::De},
      {"de", Lang::En, Lang::De},
      {"de-AT,de;q=0.9,en;q=0.8", Lang::En, Lang::De},
      {"en-US,en;q=0.9,de;q=0.8", Lang::De, Lang::En},
      {"fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", Lang::De, Lang::En},
      {"de;q=0.5, en;q=0.6", Lang::De, Lang::En},
      {"en;q=0.5, de;q=0.5", Lang::De, Lang::En},  // a tie goes to the earlier one
      {"en;q=0, de", Lang::En, Lang::De},
      {"en;q=0", Lang::De, Lang::De},
      {"fr", Lang::De, Lang::De},
      {"*", Lang::De, Lang::De},
      {"DE-de", Lang::En, Lang::De},
      {"en;q=2, de;q=0.1", Lang::En, Lang::De},       // a malformed q drops its entry
      {"en;q=0.1234, de;q=0.1", Lang::En, Lang::De},  // more than three decimals
      {"en;level=1, de;q=0.1", Lang::En, Lang::De},
      {",,;;q=,de", Lang::En, Lang::De},
      {"deutsch, english", Lang::De, Lang::De},
  };
  for (const auto& c : cases) {
    CHECK_MESSAGE(render::negotiate_lang(c.header, c.fallback) == c.want, c.header);
  }
}

TEST_CASE("parse_lang knows de and en in any letter case, nothing else") {
  CHECK(render::parse_lang("de") == Lang::De);
  CHECK(render::parse_lang("EN") == Lang::En);
  CHECK_FALSE(render::parse_lang("fr"));
  CHECK_FALSE(render::parse_lang(""));
  CHECK_FALSE(render::parse_lang("de-AT"));
}

TEST_CASE("dates are checked and written the way each language writes them") {
  CHECK(render::format_date("2013-09-02", Lang::En) == "2 September 2013");
  CHECK(render::format_date("2013-09-02", Lang::De) == "2. September 2013");
  CHECK(render::format_date("2024-03-31", Lang::De) == "31. März 2024");
  CHECK(render::valid_iso_date("2024-02-29"));
  for (auto bad : {"2023-02-29", "2013-13-01", "2013-00-10", "2013-09-31", "13-09-02", "2013/09/02",
                   "2013-9-2", "", "abcd-ef-gh", "1989-01-01"}) {
    CHECK_MESSAGE(!render::valid_iso_date(bad), bad);
    CHECK(render::format_date(bad, Lang::En).empty());
  }
}

TEST_CASE("the built-in templates pass every check") {
  const auto problems = render::check_setup_templates(render::builtin_setup_templates());
  for (const auto& p : problems) FAIL_CHECK(p.file << ": " << p.message);
  CHECK(problems.empty());
  CHECK(render::builtin_setup_templates().size() == render::kSetupTemplateFiles.size());
}

TEST_CASE("templates with unknown names, extra styles or missing files are refused") {
  auto files = render::builtin_setup_templates();
  const std::size_t end = files["setup.en.html"].size();
  files["setup.en.html"] += "{{adress}}<style>x</style><p style=\"color:red\">";
  const auto problems = render::check_setup_templates(files);
  REQUIRE(problems.size() == 4);
  CHECK(problems[0].message == "unknown name 'adress' in a tag");
  CHECK(problems[0].file == "setup.en.html");
  CHECK(problems[0].offset == end);
  CHECK(problems[1].message == "a page may have only <style>{{>setup.css}}</style>");
  CHECK(problems[2].message == "the page must include <style>{{>setup.css}}</style> once");
  CHECK(problems[3].message == "style attributes are blocked by the CSP; use setup.css");
  files.erase("setup.css");
  const auto missing = render::check_setup_templates(files);
  REQUIRE(missing.size() == 1);
  CHECK(missing[0].message == "template 'setup.css' is missing");
}

TEST_CASE("the CSP allows exactly the inline style the page carries") {
  const render::SetupPages pages(render::builtin_setup_templates());
  const std::string& csp = pages.content_security_policy();
  CHECK(csp.starts_with("default-src 'none'; style-src 'sha256-"));
  CHECK(csp.find("form-action 'self'") != std::string::npos);
  CHECK(csp.find("img-src 'self' data:") != std::string::npos);
  CHECK(csp.find("unsafe") == std::string::npos);
  const std::string html = page(Lang::En, render::SetupState::Form);
  const auto open = html.find("<style>") + 7;
  const std::string style = html.substr(open, html.find("</style>") - open);
  CHECK(style == render::builtin_setup_templates().at("setup.css"));
  // Known answer: `printf %s "$(cat templates/setup.css)" | openssl dgst -sha256 -binary | base64`
  // is what a browser computes; here the same hash is recomputed through a second CSP.
  auto other = render::builtin_setup_templates();
  other["setup.css"] += " ";
  CHECK(render::SetupPages(other).content_security_policy() != csp);
}

TEST_CASE("setup pages match the golden files (de and en, with and without an address)") {
  const struct {
    Lang lang;
    render::SetupState state;
    std::string address;
    std::string golden;
  } cases[] = {
      {Lang::En, render::SetupState::Form, "", "setup/form.en.html"},
      {Lang::De, render::SetupState::Form, "", "setup/form.de.html"},
      {Lang::En, render::SetupState::Settings, "alice@example.com", "setup/alice.en.html"},
      {Lang::De, render::SetupState::Settings, "alice@example.com", "setup/alice.de.html"},
      {Lang::En, render::SetupState::UnknownDomain, "bob@elsewhere.example",
       "setup/unknown.en.html"},
      {Lang::De, render::SetupState::BadAddress, "<b>\"x\"</b>", "setup/bad.de.html"},
  };
  for (const auto& c : cases) {
    const std::string actual = page(c.lang, c.state, c.address);
    CHECK_MESSAGE(actual == testing::golden(c.golden, actual), c.golden);
  }
}

TEST_CASE("a hostile address never becomes markup on any page") {
  const std::string hostile = "\"><script>alert(1)</script><x a='";
  for (Lang lang : render::kLangs) {
    for (auto state : {render::SetupState::Settings, render::SetupState::UnknownDomain,
                       render::SetupState::BadAddress}) {
      const std::string html = page(lang, state, hostile);
      CHECK(html.find("<script") == std::string::npos);
      CHECK(html.find("<x ") == std::string::npos);
      CHECK(html.find("&quot;&gt;&lt;script&gt;") != std::string::npos);
    }
  }
}

TEST_CASE("the settings page shows what resolve() says, the profile link and the notice") {
  const std::string en = page(Lang::En, render::SetupState::Settings, "alice+x@example.com");
  CHECK(en.find("<dd class=\"value\">imap.example.net</dd>") != std::string::npos);
  CHECK(en.find("<dd class=\"value\">587</dd>") != std::string::npos);
  CHECK(en.find("href=\"/email.mobileconfig?emailaddress=alice%2Bx%40example.com\"") !=
        std::string::npos);
  CHECK(en.find("SMTP-after-POP was switched off on 2 September 2013.</span> Mail programs must "
                "now log in to the outgoing server with your email address and password.") !=
        std::string::npos);
  const std::string de = page(Lang::De, render::SetupState::Settings, "alice@example.com");
  CHECK(de.find("<html lang=\"de\">") != std::string::npos);
  CHECK(de.find("SMTP-after-POP wurde am 2. September 2013 abgeschaltet.</span> E-Mail-Programme "
                "müssen sich jetzt mit E-Mail-Adresse und Passwort beim Postausgangsserver "
                "anmelden.") != std::string::npos);
  CHECK(de.find("Vor dem Senden bei Posteingangsserver anmelden") != std::string::npos);
}

TEST_CASE(
    "before the date the page speaks of the future, after it of the past, in both languages") {
  const render::PageVariant before{false, false, false};
  const render::PageVariant after{true, false, false};
  for (auto state : {render::SetupState::Form, render::SetupState::Settings}) {
    const std::string en_before = page(Lang::En, state, "alice@example.com", before);
    CHECK(en_before.find("SMTP-after-POP will be switched off on 2 September 2013; please change "
                         "your settings before then.</span> From that day on, mail programs must "
                         "log in to the outgoing server") != std::string::npos);
    CHECK(en_before.find("was switched off") == std::string::npos);
    const std::string de_before = page(Lang::De, state, "alice@example.com", before);
    CHECK(de_before.find("SMTP-after-POP wird am 2. September 2013 abgeschaltet; bitte stellen Sie "
                         "vorher um.</span> Ab diesem Tag müssen sich E-Mail-Programme mit "
                         "E-Mail-Adresse und Passwort") != std::string::npos);
    CHECK(de_before.find("wurde am") == std::string::npos);
    CHECK(
        page(Lang::En, state, "alice@example.com", after).find("was switched off on 2 September") !=
        std::string::npos);
    CHECK(page(Lang::De, state, "alice@example.com", after).find("wurde am 2. September 2013") !=
          std::string::npos);
  }
}

TEST_CASE("the profile is called signed only when it is, and the customer is told what to expect") {
  for (Lang lang : render::kLangs) {
    const std::string unsigned_page = page(lang, render::SetupState::Settings, "alice@example.com");
    const std::string signed_page =
        page(lang, render::SetupState::Settings, "alice@example.com", {true, false, true});
    const std::string_view word = lang == Lang::En ? "signed profile" : "signiertes Profil";
    CHECK(signed_page.find(word) != std::string::npos);
    CHECK(unsigned_page.find(word) == std::string::npos);
    CHECK(unsigned_page.find(lang == Lang::En ? "It is not signed, so the device shows it as "
                                                "<span class=\"ui\">Not Verified</span> (in red)"
                                              : "Es ist nicht signiert, deshalb zeigt das Gerät es "
                                                "als <span class=\"ui\">Nicht überprüft</span> "
                                                "(in Rot) an") != std::string::npos);
  }
}

TEST_CASE("fixed texts follow the login scheme: a local-part login never reads 'email address'") {
  const std::string config = testing::minimal_config(
      "<login>local-part</login>\n"
      "<notice smtp-after-pop-off=\"2013-09-02\"><text lang=\"de\">x</text></notice>\n");
  const std::string en = page(Lang::En, render::SetupState::Settings, "oma", {}, config);
  CHECK(en.find("with your user name and password") != std::string::npos);
  CHECK(en.find("email address and password") == std::string::npos);
  CHECK(en.find("(the part of your email address before the @)") != std::string::npos);
  const std::string de = page(Lang::De, render::SetupState::Form, "", {}, config);
  CHECK(de.find("mit Benutzername und Passwort beim Postausgangsserver") != std::string::npos);
  CHECK(de.find("E-Mail-Adresse und Passwort") == std::string::npos);
  CHECK(de.find("Benutzername: der Teil Ihrer E-Mail-Adresse vor dem @.") != std::string::npos);
}

TEST_CASE("an IDN address with an A-label login says why the user name is spelled differently") {
  const render::PageVariant ace{true, true, false};
  const std::string en =
      page(Lang::En, render::SetupState::Settings, "hans@m\u00fcller-bau.de", ace);
  CHECK(en.find("(your email address hans@m\u00fcller-bau.de with the domain spelled the way mail "
                "servers need it: type it exactly like this)") != std::string::npos);
  CHECK(page(Lang::De, render::SetupState::Settings, "hans@m\u00fcller-bau.de", ace)
            .find("(Ihre E-Mail-Adresse hans@m\u00fcller-bau.de, die Domain so geschrieben, wie "
                  "Mailserver sie brauchen: bitte genau so eingeben)") != std::string::npos);
  CHECK(page(Lang::En, render::SetupState::Settings, "alice@example.com")
            .find("(your full email address)") != std::string::npos);
}

TEST_CASE("the home page has the general settings and the provider's own domain as example") {
  const std::string en = page(Lang::En, render::SetupState::Form);
  CHECK(en.find("<h2 id=\"general-title\">General settings of Example Mail</h2>") !=
        std::string::npos);
  CHECK(en.find("<dd class=\"value\">smtp.example.net</dd>") != std::string::npos);
  CHECK(en.find("User name: your full email address.") != std::string::npos);
  CHECK(en.find("For example alice@example.net.") != std::string::npos);
  CHECK(page(Lang::De, render::SetupState::Form).find("Zum Beispiel erika@example.net.") !=
        std::string::npos);
  // Only before an address is entered.
  CHECK(page(Lang::En, render::SetupState::Settings, "alice@example.com").find("general-title") ==
        std::string::npos);
}

TEST_CASE("older clients of the provider's notice have their steps, Outlook 2010 names TLS") {
  const std::string en = page(Lang::En, render::SetupState::Settings, "alice@example.com");
  for (const char* id : {"outlook-2010", "outlook-2007", "live-mail", "opera", "apple"}) {
    CHECK_MESSAGE(en.find("<h3 id=\"" + std::string(id) + "\">") != std::string::npos, id);
    CHECK_MESSAGE(en.find("<a href=\"#" + std::string(id) + "\">") != std::string::npos, id);
  }
  CHECK(en.find("<span class=\"ui\">Use the following type of encrypted connection</span>: "
                "<span class=\"ui\">TLS</span>") != std::string::npos);
  CHECK(en.find("needs HTTPS with TLS 1.2, which very old Windows") != std::string::npos);
  const std::string de = page(Lang::De, render::SetupState::Settings, "alice@example.com");
  CHECK(de.find("<span class=\"ui\">Verwenden Sie den folgenden verschlüsselten "
                "Verbindungstyp</span>: <span class=\"ui\">TLS</span>") != std::string::npos);
  CHECK(de.find("<h3 id=\"live-mail\">Windows Live Mail 2012</h3>") != std::string::npos);
}

TEST_CASE("the favicon is a 16x16 Windows icon with one 32-bit image") {
  const std::string& ico = render::favicon();
  REQUIRE(ico.size() == 6 + 16 + 40 + 16 * 16 * 4 + 16 * 4);
  CHECK(ico.substr(0, 6) == std::string("\0\0\1\0\1\0", 6));
  CHECK(ico[6] == 16);
  CHECK(ico[7] == 16);
  CHECK(static_cast<unsigned char>(ico[22]) == 40);  // BITMAPINFOHEADER size
}
