#include "render/autoconfig.h"

#include <doctest/doctest.h>

#include "example_config.h"
#include "render/xml.h"
#include "support.h"

using namespace mailconfd;

namespace {

std::string render_for(const Config& config, std::string_view domain, std::string_view login) {
  auto settings = resolve(config, domain);
  REQUIRE(settings);
  render::SlotValues v;
  v[render::Slot::Domain] = domain;
  v[render::Slot::Login] = login;
  return render::autoconfig(*settings).expand(v);
}

}  // namespace

TEST_CASE("autoconfig for an address matches the golden file") {
  const Loaded loaded = load_config_text(example_config(), "example", ".");
  const std::string actual = render_for(loaded.config, "example.com", "alice@example.com");
  CHECK(actual == testing::golden("autoconfig/example-alice.xml", actual));
}

TEST_CASE("autoconfig without an address keeps the %EMAILADDRESS% placeholder") {
  const Loaded loaded = load_config_text(example_config(), "example", ".");
  const std::string actual = render_for(loaded.config, "example.org", "%EMAILADDRESS%");
  CHECK(actual == testing::golden("autoconfig/example-placeholder.xml", actual));
}

TEST_CASE("autoconfig with overrides, 465, STARTTLS IMAP and local-part logins") {
  const Loaded loaded = testing::load_fixture("two_providers.xml");
  REQUIRE(loaded.ok());
  const std::string own = render_for(loaded.config, "own.example", "bob@own.example");
  CHECK(own == testing::golden("autoconfig/two-providers-own.xml", own));
  const std::string other = render_for(loaded.config, "other.example", "%EMAILLOCALPART%");
  CHECK(other == testing::golden("autoconfig/two-providers-other.xml", other));
}

TEST_CASE("slot values are escaped by construction") {
  const Loaded loaded = load_config_text(example_config(), "example", ".");
  const std::string actual = render_for(loaded.config, "example.com", "o'hara&co<x>\"@example.com");
  CHECK(actual.find("<username>o&apos;hara&amp;co&lt;x&gt;&quot;@example.com</username>") !=
        std::string::npos);
}

TEST_CASE("xml::escape replaces what XML 1.0 cannot carry") {
  using render::xml::escape;
  CHECK(escape("a&b<c>d\"e'f") == "a&amp;b&lt;c&gt;d&quot;e&apos;f");
  CHECK(escape(std::string("a\0b", 3)) ==
        "a\xEF\xBF\xBD"
        "b");
  CHECK(escape("a\r\nb") ==
        "a\xEF\xBF\xBD\xEF\xBF\xBD"
        "b");
  CHECK(escape("b\xC3\xBC"
               "cher") ==
        "b\xC3\xBC"
        "cher");
  CHECK(escape("bad\xFF") == "bad\xEF\xBF\xBD");
}
