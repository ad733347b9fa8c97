#include "render/mobileconfig.h"

#include <fstream>
#include <map>
#include <regex>
#include <set>

#include <doctest/doctest.h>
#include <pugixml.hpp>

#include "app.h"
#include "example_config.h"
#include "support.h"

using namespace mailconfd;

namespace {

// Flattens a plist into "path" → "type:value" ("PayloadContent.0.EmailAddress" →
// "string:alice@example.com") and checks Apple's structure on the way: <plist version="1.0">
// holding one object, every dict a sequence of <key> + value with the keys sorted and
// unique, only plist value types. Structural problems are returned as "!error" entries.
using Flat = std::map<std::string, std::string>;

void flatten(const pugi::xml_node& value, const std::string& path, Flat& out) {
  const std::string type = value.name();
  if (type == "dict") {
    std::string previous;
    for (pugi::xml_node key = value.first_child(); key; key = key.next_sibling()) {
      if (std::string_view(key.name()) != "key") {
        out["!error " + path] = "dict child is not <key>";
        return;
      }
      const std::string name = key.text().get();
      if (name <= previous) out["!error " + path + "." + name] = "keys not sorted or duplicated";
      previous = name;
      key = key.next_sibling();
      if (!key) {
        out["!error " + path + "." + name] = "key without a value";
        return;
      }
      flatten(key, path.empty() ? name : path + "." + name, out);
    }
  } else if (type == "array") {
    int i = 0;
    for (const pugi::xml_node& item : value.children()) {
      flatten(item, path + "." + std::to_string(i++), out);
    }
  } else if (type == "string" || type == "integer") {
    if (value.first_child() && value.first_child().next_sibling()) {
      out["!error " + path] = "mixed content";
    }
    out[path] = type + ":" + value.text().get();
  } else if (type == "true" || type == "false") {
    if (value.first_child()) out["!error " + path] = "boolean with content";
    out[path] = type;
  } else {
    out["!error " + path] = "unexpected element <" + type + ">";
  }
}

Flat parse_plist(const std::string& text) {
  pugi::xml_document doc;
  Flat out;
  const auto result = doc.load_buffer(text.data(), text.size());
  if (!result) {
    out["!error parse"] = result.description();
    return out;
  }
  const pugi::xml_node plist = doc.document_element();
  if (std::string_view(plist.name()) != "plist" ||
      std::string_view(plist.attribute("version").value()) != "1.0") {
    out["!error root"] = "not <plist version=\"1.0\">";
  }
  if (!plist.first_child() || plist.first_child().next_sibling()) {
    out["!error root"] = "plist must hold exactly one object";
  }
  flatten(plist.first_child(), "", out);
  return out;
}

bool has_errors(const Flat& flat) {
  for (const auto& [k, v] : flat) {
    if (k.starts_with("!error")) return true;
  }
  return false;
}

std::string render_for(const App& app, const std::string& address_text) {
  auto address = parse_email(address_text);
  REQUIRE(address);
  const DomainEntry* entry = app.domains->find(address->domain);
  REQUIRE(entry != nullptr);
  auto body = mobileconfig_for(app, *entry, *address);
  REQUIRE(body);
  return *body;
}

std::shared_ptr<const App> example_app() {
  Loaded loaded = load_config_text(example_config(), "example", ".");
  REQUIRE(loaded.ok());
  return build_app(std::move(loaded.config));
}

EmailAddress address(const std::string& text) {
  auto parsed = parse_email(text);
  REQUIRE(parsed);
  return *parsed;
}

}  // namespace

TEST_CASE("mobileconfig for an address matches the golden file") {
  const auto app = example_app();
  const std::string actual = render_for(*app, "alice@example.com");
  CHECK(actual == testing::golden("mobileconfig/example-alice.plist", actual));
}

TEST_CASE("mobileconfig payload keys and values are exactly right") {
  const auto app = example_app();
  const Flat flat = parse_plist(render_for(*app, "alice@example.com"));
  CHECK_FALSE(has_errors(flat));
  const auto ids = render::profile_ids("example.net", address("alice@example.com"), "");
  const Flat expected{
      {"PayloadContent.0.EmailAccountDescription", "string:Example Mail"},
      {"PayloadContent.0.EmailAccountType", "string:EmailTypeIMAP"},
      {"PayloadContent.0.EmailAddress", "string:alice@example.com"},
      {"PayloadContent.0.IncomingMailServerAuthentication", "string:EmailAuthPassword"},
      {"PayloadContent.0.IncomingMailServerHostName", "string:imap.example.net"},
      {"PayloadContent.0.IncomingMailServerPortNumber", "integer:993"},
      {"PayloadContent.0.IncomingMailServerUseSSL", "true"},
      {"PayloadContent.0.IncomingMailServerUsername", "string:alice@example.com"},
      {"PayloadContent.0.OutgoingMailServerAuthentication", "string:EmailAuthPassword"},
      {"PayloadContent.0.OutgoingMailServerHostName", "string:smtp.example.net"},
      {"PayloadContent.0.OutgoingMailServerPortNumber", "integer:587"},
      {"PayloadContent.0.OutgoingMailServerUseSSL", "true"},
      {"PayloadContent.0.OutgoingMailServerUsername", "string:alice@example.com"},
      {"PayloadContent.0.OutgoingPasswordSameAsIncomingPassword", "true"},
      {"PayloadContent.0.PayloadDisplayName", "string:Example Mail"},
      {"PayloadContent.0.PayloadIdentifier", "string:" + ids.identifier + ".account"},
      {"PayloadContent.0.PayloadType", "string:com.apple.mail.managed"},
      {"PayloadContent.0.PayloadUUID", "string:" + ids.account_uuid},
      {"PayloadContent.0.PayloadVersion", "integer:1"},
      {"PayloadDescription", "string:Mail settings for alice@example.com"},
      {"PayloadDisplayName", "string:Example Mail"},
      {"PayloadIdentifier", "string:" + ids.identifier},
      {"PayloadOrganization", "string:Example Mail"},
      {"PayloadType", "string:Configuration"},
      {"PayloadUUID", "string:" + ids.profile_uuid},
      {"PayloadVersion", "integer:1"},
  };
  CHECK(flat == expected);
}

TEST_CASE("mobileconfig: POP3 only without IMAP, STARTTLS IMAP, overrides, local-part logins") {
  Loaded loaded = testing::load_fixture("two_providers.xml");
  REQUIRE(loaded.ok());
  const auto app = build_app(std::move(loaded.config));
  // mail.provider.example offers POP3 and IMAP: IMAP (implicit TLS first) is chosen.
  const std::string own = render_for(*app, "bob@own.example");
  CHECK(own == testing::golden("mobileconfig/two-providers-own.plist", own));
  Flat flat = parse_plist(own);
  CHECK_FALSE(has_errors(flat));
  CHECK(flat["PayloadContent.0.EmailAccountType"] == "string:EmailTypeIMAP");
  CHECK(flat["PayloadContent.0.IncomingMailServerHostName"] == "string:imap.own.example");
  CHECK(flat["PayloadContent.0.IncomingMailServerPortNumber"] == "integer:993");
  CHECK(flat["PayloadContent.0.OutgoingMailServerHostName"] == "string:smtp.own.example");
  CHECK(flat["PayloadContent.0.OutgoingMailServerPortNumber"] == "integer:587");
  // other.example: local-part logins, CRAM-MD5 for password-encrypted.
  flat = parse_plist(render_for(*app, "carol@other.example"));
  CHECK(flat["PayloadContent.0.IncomingMailServerUsername"] == "string:carol");
  CHECK(flat["PayloadContent.0.OutgoingMailServerUsername"] == "string:carol");
  CHECK(flat["PayloadContent.0.EmailAddress"] == "string:carol@other.example");
  CHECK(flat["PayloadContent.0.IncomingMailServerAuthentication"] == "string:EmailAuthCRAMMD5");

  Loaded pop = testing::load_text(
      "<mailconfd><provider id=\"provider.example\">\n"
      "<incoming protocol=\"pop3\" host=\"pop3.provider.example\" port=\"995\" "
      "security=\"tls\"/>\n"
      "<outgoing host=\"smtp.provider.example\" port=\"587\" security=\"starttls\"/>\n"
      "<domain>customer.example</domain></provider></mailconfd>\n");
  REQUIRE(pop.ok());
  const auto pop_app = build_app(std::move(pop.config));
  flat = parse_plist(render_for(*pop_app, "dave@customer.example"));
  CHECK_FALSE(has_errors(flat));
  CHECK(flat["PayloadContent.0.EmailAccountType"] == "string:EmailTypePOP");
  CHECK(flat["PayloadContent.0.IncomingMailServerHostName"] == "string:pop3.provider.example");
}

TEST_CASE("mobileconfig never contains a password") {
  const auto app = example_app();
  const std::string plist = render_for(*app, "alice@example.com");
  int password_keys = 0;
  for (const auto& [key, value] : parse_plist(plist)) {
    if (key.find("Password") == std::string::npos) continue;
    ++password_keys;
    CHECK(key == "PayloadContent.0.OutgoingPasswordSameAsIncomingPassword");
    CHECK(value == "true");
  }
  CHECK(password_keys == 1);
  CHECK(plist.find("<key>IncomingPassword</key>") == std::string::npos);
  CHECK(plist.find("<key>OutgoingPassword</key>") == std::string::npos);
}

TEST_CASE("profile ids are stable, well-formed and differ by address, provider and secret") {
  const auto alice = render::profile_ids("example.net", address("alice@example.com"), "s3cret");
  const auto again = render::profile_ids("example.net", address("alice@example.com"), "s3cret");
  CHECK(alice.profile_uuid == again.profile_uuid);
  CHECK(alice.account_uuid == again.account_uuid);
  CHECK(alice.identifier == again.identifier);
  // The local part's letter case and the domain's spelling do not make a second profile.
  const auto upper = render::profile_ids("example.net", address("ALICE@EXAMPLE.COM"), "s3cret");
  CHECK(upper.profile_uuid == alice.profile_uuid);
  CHECK(upper.identifier == alice.identifier);

  const std::regex uuid("[0-9A-F]{8}-[0-9A-F]{4}-8[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}");
  CHECK(std::regex_match(alice.profile_uuid, uuid));
  CHECK(std::regex_match(alice.account_uuid, uuid));
  CHECK(alice.profile_uuid != alice.account_uuid);
  CHECK(std::regex_match(alice.identifier, std::regex("net\\.example\\.mail\\.[0-9a-f]{20}")));

  std::set<std::string> uuids, identifiers;
  for (const auto& [provider, addr, secret] :
       std::initializer_list<std::tuple<const char*, const char*, const char*>>{
           {"example.net", "alice@example.com", "s3cret"},
           {"example.net", "bob@example.com", "s3cret"},
           {"example.net", "alice@example.org", "s3cret"},
           {"other.example", "alice@example.com", "s3cret"},
           {"example.net", "alice@example.com", "other secret"},
           {"example.net", "alice@example.com", ""}}) {
    const auto ids = render::profile_ids(provider, address(addr), secret);
    uuids.insert(ids.profile_uuid);
    uuids.insert(ids.account_uuid);
    identifiers.insert(ids.identifier);
  }
  CHECK(uuids.size() == 12);
  CHECK(identifiers.size() == 6);
}

TEST_CASE("mobileconfig served through App uses the configured secret") {
  Loaded loaded = testing::load_text(
      testing::minimal_config("", "<mobileconfig secret=\"0123456789abcdef-test\"/>\n"));
  REQUIRE(loaded.ok());
  CHECK(loaded.config.profile_secret == "0123456789abcdef-test");
  const auto app = build_app(std::move(loaded.config));
  const auto ids = render::profile_ids("provider.example", address("eve@customer.example"),
                                       "0123456789abcdef-test");
  const Flat flat = parse_plist(render_for(*app, "eve@customer.example"));
  CHECK(flat.at("PayloadUUID") == "string:" + ids.profile_uuid);
  CHECK(flat.at("PayloadContent.0.PayloadUUID") == "string:" + ids.account_uuid);
  CHECK(flat.at("PayloadIdentifier") == "string:" + ids.identifier);
}

TEST_CASE("<mobileconfig secret-file> reads the secret from a file, without its newline") {
  const std::string dir = testing::temp_dir();
  const std::string path = dir + "/profile-secret";
  {
    std::ofstream out(path, std::ios::binary);
    out << "0123456789abcdef-from-file\n";
  }
  Loaded loaded = testing::load_text(
      testing::minimal_config("", "<mobileconfig secret-file=\"" + path + "\"/>\n"));
  REQUIRE(loaded.ok());
  CHECK(loaded.config.profile_secret == "0123456789abcdef-from-file");

  // Both, or a file that is missing or holds a bad secret: one problem naming the file.
  const std::string both =
      "<mobileconfig secret=\"0123456789abcdef\" secret-file=\"" + path + "\"/>\n";
  Loaded twice = testing::load_text(testing::minimal_config("", both));
  REQUIRE(twice.problems.size() == 1);
  CHECK(twice.problems[0] ==
        "test.xml:2:1: <mobileconfig> needs exactly one of secret and secret-file");
  Loaded missing = testing::load_text(
      testing::minimal_config("", "<mobileconfig secret-file=\"" + dir + "/none\"/>\n"));
  REQUIRE(missing.problems.size() == 1);
  CHECK(missing.problems[0] ==
        "test.xml:2:1: cannot read secret-file '" + dir + "/none': No such file or directory");
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << "short\n";
  }
  Loaded short_secret = testing::load_text(
      testing::minimal_config("", "<mobileconfig secret-file=\"" + path + "\"/>\n"));
  REQUIRE(short_secret.problems.size() == 1);
  CHECK(short_secret.problems[0].starts_with("test.xml:2:1: <mobileconfig> secret must be"));
}

TEST_CASE("<mobileconfig> secret problems are reported with the location") {
  for (const char* bad : {"<mobileconfig secret=\"short\"/>", "<mobileconfig/>",
                          "<mobileconfig secret=\"0123456789abcdef\" salt=\"x\"/>"}) {
    const Loaded loaded = testing::load_text(testing::minimal_config("", std::string(bad) + "\n"));
    REQUIRE_FALSE(loaded.ok());
    CHECK_MESSAGE(loaded.problems[0].starts_with("test.xml:2:1: <mobileconfig>"),
                  loaded.problems[0]);
  }
}

TEST_CASE("hostile addresses that parse_email accepts never break the plist") {
  const auto app = example_app();
  for (const char* text : {"o'hara&co@example.com", "a{b}|c~d@example.com",
                           "j\xC3\xBCrgen@example.com", "x#y$z%w*@example.com",
                           "\xE7\x94\xA8\xE6\x88\xB7@example.com", "a+tag=1/2?3@example.com"}) {
    auto addr = parse_email(text);
    REQUIRE_MESSAGE(addr, text);
    const Flat flat = parse_plist(render_for(*app, text));
    CHECK_MESSAGE(!has_errors(flat), text);
    CHECK(flat.at("PayloadContent.0.EmailAddress") == "string:" + addr->full());
    CHECK(flat.at("PayloadDescription") == "string:Mail settings for " + addr->full());
  }
  // What it refuses never reaches the renderer (the route answers 400).
  for (std::string text :
       {std::string("<script>@example.com"), std::string("a\"b@example.com"),
        std::string("a\r\nb@example.com"), std::string("a b@example.com"),
        std::string("a\xE2\x80\xAE@example.com"), std::string(10 * 1024, 'a') + "@example.com"}) {
    CHECK_FALSE(parse_email(text));
  }
}
