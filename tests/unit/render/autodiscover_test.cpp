#include "render/autodiscover.h"

#include <doctest/doctest.h>

#include "example_config.h"
#include "support.h"

using namespace mailconfd;
using render::PoxRequestKind;

namespace {

constexpr const char* kOutlookNs =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006";
constexpr const char* k2006a =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";

// A request as Outlook and Thunderbird send it (protocols.md §2.2).
std::string request_body(const std::string& address, const std::string& schema = k2006a,
                         const std::string& ns = kOutlookNs) {
  return "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"" + ns +
         "\">\n  <Request>\n    <EMailAddress>" + address +
         "</EMailAddress>\n    <AcceptableResponseSchema>" + schema +
         "</AcceptableResponseSchema>\n  </Request>\n</Autodiscover>\n";
}

std::string render_for(const Config& config, std::string_view domain, std::string_view login,
                       std::string_view address) {
  auto settings = resolve(config, domain);
  REQUIRE(settings);
  render::SlotValues v;
  v[render::Slot::Domain] = domain;
  v[render::Slot::Login] = login;
  v[render::Slot::Address] = address;
  v[render::Slot::Display] = address;
  return render::autodiscover(*settings).expand(v);
}

// 2026-11-28T06:21:18.7224942Z
std::chrono::system_clock::time_point fixed_time() {
  using namespace std::chrono;
  return sys_days{year{2026} / 11 / 28} + hours(6) + minutes(21) + seconds(18) +
         duration_cast<system_clock::duration>(nanoseconds(722'494'200));
}

}  // namespace

TEST_CASE("autodiscover settings for an address match the golden file") {
  const Loaded loaded = load_config_text(example_config(), "example", ".");
  const std::string actual =
      render_for(loaded.config, "example.com", "alice@example.com", "alice@example.com");
  CHECK(actual == testing::golden("autodiscover/example-alice.xml", actual));
}

TEST_CASE("autodiscover settings without an address carry the placeholders") {
  const Loaded loaded = load_config_text(example_config(), "example", ".");
  const std::string actual =
      render_for(loaded.config, "example.org", "%EMAILADDRESS%", "%EMAILADDRESS%");
  CHECK(actual == testing::golden("autodiscover/example-placeholder.xml", actual));
}

TEST_CASE("autodiscover with overrides, STARTTLS IMAP, 465 and local-part logins") {
  const Loaded loaded = testing::load_fixture("two_providers.xml");
  REQUIRE(loaded.ok());
  const std::string own =
      render_for(loaded.config, "own.example", "bob@own.example", "bob@own.example");
  CHECK(own == testing::golden("autodiscover/two-providers-own.xml", own));
  const std::string other = render_for(loaded.config, "other.example", "Bob", "Bob@other.example");
  CHECK(other == testing::golden("autodiscover/two-providers-other.xml", other));
}

TEST_CASE("Encryption is SSL on implicit-TLS ports and TLS on STARTTLS ports, SSL always on") {
  const Loaded loaded = testing::load_fixture("two_providers.xml");
  REQUIRE(loaded.ok());
  const std::string doc = render_for(loaded.config, "own.example", "b", "b@own.example");
  std::size_t blocks = 0;
  for (auto at = doc.find("<Protocol>"); at != std::string::npos;
       at = doc.find("<Protocol>", at + 1)) {
    const std::string block = doc.substr(at, doc.find("</Protocol>", at) - at);
    const bool implicit_tls = block.find("<Port>993</Port>") != std::string::npos ||
                              block.find("<Port>995</Port>") != std::string::npos ||
                              block.find("<Port>465</Port>") != std::string::npos;
    CHECK_MESSAGE(block.find(implicit_tls ? "<Encryption>SSL</Encryption>"
                                          : "<Encryption>TLS</Encryption>") != std::string::npos,
                  block);
    CHECK(block.find("<SSL>on</SSL>") != std::string::npos);
    CHECK(block.find("<SPA>off</SPA>") != std::string::npos);
    CHECK(block.find("<AuthRequired>on</AuthRequired>") != std::string::npos);
    CHECK(block.find("<DomainRequired>off</DomainRequired>") != std::string::npos);
    ++blocks;
  }
  CHECK(blocks == 5);  // pop3 995, imap 143, imap 993, smtp 587, smtp 465
  // 587 + STARTTLS is the first SMTP block.
  CHECK(doc.find("<Port>587</Port>") < doc.find("<Port>465</Port>"));
  CHECK(doc.find("<SMTPLast>off</SMTPLast>") != std::string::npos);
  CHECK(doc.find("<SMTPLast>on</SMTPLast>") == std::string::npos);
}

TEST_CASE("slot values in the settings document are escaped") {
  const Loaded loaded = load_config_text(example_config(), "example", ".");
  const std::string doc = render_for(loaded.config, "example.com", "o'hara&co<x>@example.com",
                                     "o'hara&co<x>@example.com");
  CHECK(doc.find("<LoginName>o&apos;hara&amp;co&lt;x&gt;@example.com</LoginName>") !=
        std::string::npos);
  CHECK(doc.find("<DisplayName>o&apos;hara&amp;co&lt;x&gt;@example.com</DisplayName>") !=
        std::string::npos);
}

TEST_CASE("DisplayName shows the address as people write it, LoginName as the server wants it") {
  const Loaded loaded = load_config_text(example_config(), "example", ".");
  auto settings = resolve(loaded.config, "example.com");
  REQUIRE(settings);
  render::SlotValues v;
  v[render::Slot::Domain] = "example.com";
  v[render::Slot::Login] = "hans@xn--mller-bau-q9a.de";
  v[render::Slot::Address] = "hans@xn--mller-bau-q9a.de";
  v[render::Slot::Display] = "hans@m\u00fcller-bau.de";
  const std::string doc = render::autodiscover(*settings).expand(v);
  CHECK(doc.find("<DisplayName>hans@m\u00fcller-bau.de</DisplayName>") != std::string::npos);
  CHECK(doc.find("<LoginName>hans@xn--mller-bau-q9a.de</LoginName>") != std::string::npos);
}

TEST_CASE("error documents match the golden files") {
  const auto now = fixed_time();
  const std::string e500 = render::autodiscover_error(render::PoxError::AddressNotFound, now);
  CHECK(e500 == testing::golden("autodiscover/error-500.xml", e500));
  const std::string e600 = render::autodiscover_error(render::PoxError::InvalidRequest, now);
  CHECK(e600 == testing::golden("autodiscover/error-600.xml", e600));
  const std::string e601 = render::autodiscover_error(render::PoxError::SchemaNotServed, now);
  CHECK(e601 == testing::golden("autodiscover/error-601.xml", e601));
  CHECK(e600.find("Time=\"06:21:18.7224942\"") != std::string::npos);
  // Midnight and the last tick of a day keep the fixed width.
  using namespace std::chrono;
  const auto midnight = sys_days{year{2026} / 1 / 1};
  CHECK(render::autodiscover_error(render::PoxError::InvalidRequest, midnight)
            .find("Time=\"00:00:00.0000000\"") != std::string::npos);
  CHECK(render::autodiscover_error(render::PoxError::InvalidRequest, midnight - microseconds(1))
            .find("Time=\"23:59:59.9999990\"") != std::string::npos);
}

TEST_CASE("the v2 JSON answers match the golden files") {
  const Loaded loaded = load_config_text(example_config(), "example", ".");
  const std::string ok = render::autodiscover_json(loaded.config.providers[0]) + "\n";
  CHECK(ok == testing::golden("autodiscover/v2-example.json", ok));
  const std::string invalid =
      render::autodiscover_json_error(render::JsonError::InvalidProtocol) + "\n";
  CHECK(invalid == testing::golden("autodiscover/v2-invalid-protocol.json", invalid));
  const std::string email = render::autodiscover_json_error(render::JsonError::InvalidEmail) + "\n";
  CHECK(email == testing::golden("autodiscover/v2-invalid-email.json", email));
  const std::string missing = render::autodiscover_json_error(render::JsonError::NotFound) + "\n";
  CHECK(missing == testing::golden("autodiscover/v2-not-found.json", missing));
}

TEST_CASE("json_quote escapes quotes, backslashes, controls, markup and invalid UTF-8") {
  using render::json_quote;
  CHECK(json_quote("plain") == "\"plain\"");
  CHECK(json_quote("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(json_quote("a\r\n\tb") == "\"a\\u000d\\u000a\\u0009b\"");
  CHECK(json_quote(std::string("a\0b", 3)) == "\"a\\u0000b\"");
  CHECK(json_quote("</script>&") == "\"\\u003c/script\\u003e\\u0026\"");
  CHECK(json_quote("b\xC3\xBC") == "\"b\xC3\xBC\"");
  CHECK(json_quote("bad\xFF") == "\"bad\\ufffd\"");
}

TEST_CASE("parse_autodiscover_request accepts what Outlook and Thunderbird send") {
  struct Case {
    std::string body;
    std::string address;
  } cases[] = {
      {request_body("alice@example.com"), "alice@example.com"},
      // Outlook on Windows sends CRLF line ends; pretty-printed values are trimmed.
      {"<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<Autodiscover xmlns=\"" +
           std::string(kOutlookNs) +
           "\">\r\n<Request>\r\n<EMailAddress>\r\n  alice@example.com\r\n</EMailAddress>\r\n"
           "<AcceptableResponseSchema>" +
           k2006a + "</AcceptableResponseSchema>\r\n</Request>\r\n</Autodiscover>\r\n",
       "alice@example.com"},
      // Microsoft Learn's https:// spelling (protocols.md §2.2) is tolerated.
      {request_body("alice@example.com",
                    "https://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/"
                    "2006a",
                    "https://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/"
                    "2006"),
       "alice@example.com"},
      // Prefixed names are resolved through their declarations.
      {"<a:Autodiscover xmlns:a=\"" + std::string(kOutlookNs) +
           "\"><a:Request><a:AcceptableResponseSchema>" + k2006a +
           "</a:AcceptableResponseSchema><a:EMailAddress>bob@example.org</a:EMailAddress>"
           "</a:Request></a:Autodiscover>",
       "bob@example.org"},
      // Without an XML declaration, with a UTF-8 BOM, comments, LegacyDN and unknown children.
      {"\xEF\xBB\xBF<!-- hi --><Autodiscover xmlns=\"" + std::string(kOutlookNs) +
           "\"><Request><LegacyDN>/o=x</LegacyDN><EMailAddress>carol@example.com</EMailAddress>"
           "<AcceptableResponseSchema>" +
           k2006a + "</AcceptableResponseSchema><Other/></Request></Autodiscover>",
       "carol@example.com"},
      // Predefined entities, character references and CDATA are decoded.
      {request_body("o&apos;hara&amp;co&#64;example.com"), "o'hara&co@example.com"},
      {request_body("<![CDATA[dave@example.com]]>"), "dave@example.com"},
      {request_body("j&#xFC;rgen@example.com"), "j\xC3\xBCrgen@example.com"},
      // The address is not validated here; that is parse_email's job.
      {request_body("not an address"), "not an address"},
  };
  for (const auto& c : cases) {
    const render::PoxRequest r = render::parse_autodiscover_request(c.body);
    CHECK_MESSAGE(r.kind == PoxRequestKind::Outlook, c.body);
    CHECK_MESSAGE(r.email_address == c.address, c.body);
  }
}

TEST_CASE("parse_autodiscover_request: mobilesync and other schemas are OtherSchema") {
  const std::string mobilesync_ns =
      "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006";
  const std::string mobilesync_schema =
      "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006";
  const std::string cases[] = {
      request_body("alice@example.com", mobilesync_schema, mobilesync_ns),
      request_body("alice@example.com", mobilesync_schema),
      // Never a 2006a document for a mobilesync request, whatever it asks for.
      request_body("alice@example.com", k2006a, mobilesync_ns),
      request_body(
          "alice@example.com",
          "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006"),
      request_body("alice@example.com", "urn:something-else"),
      request_body("", mobilesync_schema, mobilesync_ns),  // no address needed to refuse
  };
  for (const auto& body : cases) {
    const render::PoxRequest r = render::parse_autodiscover_request(body);
    CHECK_MESSAGE(r.kind == PoxRequestKind::OtherSchema, body);
    CHECK(r.email_address.empty());
  }
}

TEST_CASE("parse_autodiscover_request: hostile and broken bodies are Malformed, never thrown") {
  const std::string ns = kOutlookNs;
  const std::string deep = [] {
    std::string s = "<Autodiscover xmlns=\"" + std::string(kOutlookNs) + "\"><Request>";
    for (int i = 0; i < 20'000; ++i) s += "<a>";
    return s;
  }();
  const std::string closed_deep = [] {
    std::string s = "<Autodiscover xmlns=\"" + std::string(kOutlookNs) + "\"><Request>";
    for (int i = 0; i < 20; ++i) s += "<a>";
    for (int i = 0; i < 20; ++i) s += "</a>";
    return s + "<EMailAddress>a@example.com</EMailAddress><AcceptableResponseSchema>" + k2006a +
           "</AcceptableResponseSchema></Request></Autodiscover>";
  }();
  const std::string big = request_body("alice@example.com" + std::string(70'000, ' '));
  const std::string bad[] = {
      "",
      "   ",
      "not xml at all",
      "<Autodiscover",
      "{\"EMailAddress\":\"alice@example.com\"}",
      // DOCTYPE, entity bombs, external entities: refused before any expansion.
      "<!DOCTYPE Autodiscover>" + request_body("alice@example.com"),
      "<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]>" +
          request_body("&lol2;"),
      "<!DOCTYPE x [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>" + request_body("&xxe;"),
      "<!doctype x>" + request_body("alice@example.com"),
      request_body("&xxe;"),                  // undeclared entity
      request_body("alice&example.com"),      // lone ampersand
      request_body("alice&#0;@example.com"),  // reference to a non-Char
      request_body("alice&#x1F;@example.com"),
      request_body("alice&#xD800;@example.com"),    // surrogate
      request_body("alice&#1114112;@example.com"),  // past U+10FFFF
      // Control characters and invalid UTF-8 in the raw bytes.
      request_body(std::string("ali\0ce@example.com", 18)),
      request_body("ali\x01"
                   "ce@example.com"),
      request_body("al\xC3\x28ice@example.com"),
      request_body("alice@example.com\xFF"),
      "\xFF\xFE<\0A\0",  // UTF-16 is not accepted
      // Structure: wrong or missing namespace, wrong root, missing or repeated elements.
      request_body("alice@example.com", k2006a, "urn:wrong"),
      request_body("alice@example.com", k2006a,
                   "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2007"),
      "<Autodiscover><Request><EMailAddress>alice@example.com</EMailAddress>"
      "<AcceptableResponseSchema>" +
          std::string(k2006a) + "</AcceptableResponseSchema></Request></Autodiscover>",
      "<x:Autodiscover xmlns=\"" + ns + "\"><Request/></x:Autodiscover>",  // undeclared prefix
      "<Discover xmlns=\"" + ns + "\"><Request/></Discover>",
      "<Autodiscover xmlns=\"" + ns + "\"/>",
      "<Autodiscover xmlns=\"" + ns + "\"><Request><EMailAddress>a@example.com</EMailAddress>" +
          "</Request></Autodiscover>",
      "<Autodiscover xmlns=\"" + ns + "\"><Request><AcceptableResponseSchema>" + k2006a +
          "</AcceptableResponseSchema></Request></Autodiscover>",
      request_body(""),
      request_body("   "),
      request_body("<b>alice@example.com</b>"),  // markup inside the address
      "<Autodiscover xmlns=\"" + ns + "\"><Request><EMailAddress>a@example.com</EMailAddress>" +
          "<EMailAddress>b@example.com</EMailAddress><AcceptableResponseSchema>" + k2006a +
          "</AcceptableResponseSchema></Request></Autodiscover>",
      // The Request element in another namespace does not count.
      "<Autodiscover xmlns=\"" + ns + "\"><Request xmlns=\"urn:x\"><EMailAddress>a@example.com" +
          "</EMailAddress><AcceptableResponseSchema>" + k2006a +
          "</AcceptableResponseSchema></Request></Autodiscover>",
      request_body("alice@example.com") + "<Autodiscover/>",  // two roots
      request_body("alice@example.com") + "trailing text",
      "trailing text" + request_body("alice@example.com"),
      [] {  // unclosed root
        std::string b = request_body("alice@example.com");
        return b.substr(0, b.find("</Autodiscover>"));
      }(),
      deep,
      closed_deep,
      big,
  };
  for (const auto& body : bad) {
    const render::PoxRequest r = render::parse_autodiscover_request(body);
    CHECK_MESSAGE(r.kind == PoxRequestKind::Malformed, body.substr(0, 300));
  }
}

TEST_CASE("the common request form is read without a tree, exactly as the general reading") {
  const std::string ns =
      "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006";
  const std::string schema =
      "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";
  const std::string https_ns = "https" + ns.substr(4);
  const std::string common[] = {
      request_body("alice@example.com"),
      "<Autodiscover xmlns=\"" + ns + "\"><Request><AcceptableResponseSchema>" + schema +
          "</AcceptableResponseSchema><EMailAddress> alice@example.com\n</EMailAddress>"
          "</Request></Autodiscover>",
      "<?xml version=\"1.0\"?>\n<Autodiscover xmlns=\"" + https_ns +
          "\">\t<Request>"
          "<EMailAddress>bob@example.org</EMailAddress><AcceptableResponseSchema>" +
          schema + "</AcceptableResponseSchema></Request></Autodiscover>\n\n",
      // Another schema: 601, read by the scanner as well.
      request_body("alice@example.com",
                   "http://schemas.microsoft.com/exchange/autodiscover/"
                   "mobilesync/responseschema/2006"),
      // An empty address: malformed either way.
      request_body(""),
  };
  for (const std::string& body : common) {
    const auto fast = render::parse_autodiscover_common(body);
    REQUIRE_MESSAGE(fast.has_value(), body);
    CHECK_MESSAGE(*fast == render::parse_autodiscover_general(body), body);
    CHECK(*fast == render::parse_autodiscover_request(body));
  }
  CHECK(render::parse_autodiscover_common(common[0])->email_address == "alice@example.com");
  CHECK(render::parse_autodiscover_common(common[1])->email_address == "alice@example.com");
  CHECK(render::parse_autodiscover_common(common[3])->kind == render::PoxRequestKind::OtherSchema);
  // Everything else goes to the general reading (and is answered as before).
  const std::string general[] = {
      request_body("alice&#64;example.com"),
      request_body("<![CDATA[alice@example.com]]>"),
      request_body("alice@example.com<!-- note -->"),
      request_body("alice@example.com\r"),
      request_body(
          "alice@example.com", k2006a,
          "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"),
      "<a:Autodiscover xmlns:a=\"" + ns +
          "\"><a:Request><a:EMailAddress>alice@example.com"
          "</a:EMailAddress><a:AcceptableResponseSchema>" +
          schema + "</a:AcceptableResponseSchema></a:Request></a:Autodiscover>",
      "<Autodiscover xmlns=\"" + ns +
          "\" x=\"y\"><Request><EMailAddress>a@b.example"
          "</EMailAddress><AcceptableResponseSchema>" +
          schema + "</AcceptableResponseSchema></Request></Autodiscover>",
      "<Autodiscover xmlns=\"" + ns +
          "\"><Request><EMailAddress>a@b.example</EMailAddress>"
          "<EMailAddress>c@d.example</EMailAddress></Request></Autodiscover>",
      request_body("alice@example.com") + "junk",
  };
  for (const std::string& body : general) {
    CHECK_MESSAGE(!render::parse_autodiscover_common(body).has_value(), body);
  }
  CHECK(render::parse_autodiscover_request(general[0]).email_address == "alice@example.com");
  CHECK(render::parse_autodiscover_request(general[5]).email_address == "alice@example.com");
  CHECK(render::parse_autodiscover_request(general[7]).kind == render::PoxRequestKind::Malformed);
  CHECK(render::parse_autodiscover_request(general[8]).kind == render::PoxRequestKind::Malformed);
}

TEST_CASE("control characters are refused wherever they stand, '!' only matters after '<'") {
  const std::string body = request_body("alice@example.com");
  for (std::size_t at = 0; at < body.size(); ++at) {
    for (char control : {'\x01', '\x1f', '\0'}) {
      std::string bad = body;
      bad.insert(at, 1, control);
      CHECK_MESSAGE(
          render::parse_autodiscover_request(bad).kind == render::PoxRequestKind::Malformed, at);
    }
  }
  CHECK(render::parse_autodiscover_request(request_body("a!b@example.com")).email_address ==
        "a!b@example.com");
  CHECK(render::parse_autodiscover_request("<!DOCTYPE x>" + body).kind ==
        render::PoxRequestKind::Malformed);
  CHECK(render::parse_autodiscover_request(request_body("alice@example.com<!ENTITY x 'y'>")).kind ==
        render::PoxRequestKind::Malformed);
  CHECK(render::parse_autodiscover_request(request_body("alice@example.com<!-- ok! -->"))
            .email_address == "alice@example.com");
}
