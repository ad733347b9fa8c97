// Outlook Autodiscover over HTTP against the real binary: POX POST and GET, errors,
// mobilesync, hostile requests, the HTTP redirect method and the v2 JSON endpoint. Every
// XML answer is checked for well-formedness and, for settings and errors, against
// tests/schema/ with xmllint.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <regex>
#include <thread>

#include <doctest/doctest.h>

#include "service.h"

using e2e::golden;
using e2e::Service;

namespace {

constexpr const char* kTextXml = "text/xml; charset=utf-8";
constexpr const char* kJson = "application/json; charset=utf-8";
constexpr const char* kOutlookNs =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006";
constexpr const char* k2006a =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";
constexpr const char* kMobileSyncNs =
    "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006";
constexpr const char* kMobileSyncSchema =
    "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006";

std::string request_body(const std::string& address, const std::string& schema = k2006a,
                         const std::string& ns = kOutlookNs) {
  return "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<Autodiscover xmlns=\"" + ns +
         "\">\r\n  <Request>\r\n    <EMailAddress>" + address +
         "</EMailAddress>\r\n    <AcceptableResponseSchema>" + schema +
         "</AcceptableResponseSchema>\r\n  </Request>\r\n</Autodiscover>\r\n";
}

e2e::Response post(Service& s, const std::string& path, const std::string& body,
                   const std::vector<std::string>& headers = {}) {
  std::string raw = "POST " + path +
                    " HTTP/1.1\r\nHost: autodiscover.example.com\r\nContent-Type: text/xml; "
                    "charset=utf-8\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n";
  for (const auto& h : headers) raw += h + "\r\n";
  return s.request(raw + "\r\n" + body);
}

std::string write_temp(const std::string& text) {
  const std::string path = e2e::temp_dir() + "/answer.xml";
  FILE* f = std::fopen(path.c_str(), "wb");
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  return path;
}

bool well_formed(const std::string& xml) {
  return e2e::run_command({"xmllint", "--noout", "--nonet", write_temp(xml)}).exit_code == 0;
}

// Valid against the XSD written from Microsoft's element reference (tests/schema/).
bool schema_valid(const std::string& xml) {
  const std::string schema =
      std::string(MAILCONFD_SOURCE_DIR) + "/tests/schema/autodiscover-responseschema-2006.xsd";
  auto r = e2e::run_command({"xmllint", "--noout", "--nonet", "--schema", schema, write_temp(xml)});
  if (r.exit_code != 0) MESSAGE(r.err);
  return r.exit_code == 0;
}

// Error@Time is the server's clock; the golden files were rendered at 06:21:18.7224942.
std::string fixed_time(const std::string& xml) {
  static const std::regex time(R"(Time="[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{7}")");
  return std::regex_replace(xml, time, "Time=\"06:21:18.7224942\"");
}

// A flat JSON object of string members, as the v2 endpoint answers (RFC 8259 strings).
bool json_object_of_strings(const std::string& text) {
  std::size_t i = 0;
  auto string = [&] {
    if (i >= text.size() || text[i++] != '"') return false;
    while (i < text.size() && text[i] != '"') {
      const auto c = static_cast<unsigned char>(text[i]);
      if (c < 0x20) return false;
      if (text[i] == '\\') {
        ++i;
        if (i >= text.size() || std::string_view("\"\\/bfnrtu").find(text[i]) == std::string::npos)
          return false;
      }
      ++i;
    }
    return i++ < text.size();
  };
  if (text.empty() || text[i++] != '{') return false;
  do {
    if (!string() || i >= text.size() || text[i++] != ':' || !string()) return false;
  } while (i < text.size() && text[i] == ',' && ++i);
  return i + 1 == text.size() && text[i] == '}';
}

void check_error(const e2e::Response& r, int status, const std::string& golden_name) {
  CHECK(r.status == status);
  CHECK(r.header("Content-Type") == kTextXml);
  CHECK(fixed_time(r.body) == golden(golden_name));
  CHECK(well_formed(r.body));
  CHECK(schema_valid(r.body));
}

}  // namespace

TEST_CASE("autodiscover: POST answers the golden 2006a document on every path spelling") {
  Service s;
  REQUIRE(s.ready());
  for (const char* path : {"/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml",
                           "/AutoDiscover/AutoDiscover.xml", "/Autodiscover/AutoDiscover.xml",
                           "/AUTODISCOVER/AUTODISCOVER.XML"}) {
    auto r = post(s, path, request_body("alice@example.com"));
    CHECK_MESSAGE(r.status == 200, path);
    CHECK(r.header("Content-Type") == kTextXml);
    CHECK(r.header("Cache-Control") == "no-store");
    CHECK(r.body == golden("autodiscover/example-alice.xml"));
    CHECK(schema_valid(r.body));
  }
}

TEST_CASE("autodiscover: Authorization Basic is accepted, ignored and never logged") {
  Service s;
  auto r = post(s, "/autodiscover/autodiscover.xml", request_body("secret.person@example.com"),
                {"Authorization: Basic c2VjcmV0LnBlcnNvbjpodW50ZXIy",
                 "User-Agent: Microsoft Office/16.0 (Microsoft Outlook 16.0.17928)"});
  CHECK(r.status == 200);
  CHECK(r.body.find("<LoginName>secret.person@example.com</LoginName>") != std::string::npos);
  CHECK(schema_valid(r.body));
  s.signal(SIGTERM);
  CHECK(s.wait_exit(std::chrono::seconds(10)) == 0);
  const std::string log = s.log();
  CHECK(log.find("POST /autodiscover/autodiscover.xml 200 ") != std::string::npos);
  CHECK(log.find("outlook") != std::string::npos);
  CHECK(log.find("secret.person") == std::string::npos);
  CHECK(log.find("c2VjcmV0") == std::string::npos);
  CHECK(log.find("Authorization") == std::string::npos);
  CHECK(log.find("EMailAddress") == std::string::npos);
}

TEST_CASE("autodiscover: a chunked POST body is read like a Content-Length one") {
  Service s;
  const std::string body = request_body("alice@example.com");
  char size[16];
  std::snprintf(size, sizeof size, "%zx", body.size());
  auto r = s.request(
      "POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
      "chunked\r\n\r\n" +
      std::string(size) + "\r\n" + body + "\r\n0\r\n\r\n");
  CHECK(r.status == 200);
  CHECK(r.body == golden("autodiscover/example-alice.xml"));
}

TEST_CASE("autodiscover: GET takes the address from emailaddress or Email (Delta Chat)") {
  Service s;
  for (const char* query : {"?emailaddress=alice%40example.com", "?Email=alice%40example.com",
                            "?email=alice@example.com&x=1"}) {
    auto r = s.get(std::string("/autodiscover/autodiscover.xml") + query, {"Host: example.com"});
    CHECK_MESSAGE(r.status == 200, query);
    CHECK(r.header("Content-Type") == kTextXml);
    CHECK(r.body == golden("autodiscover/example-alice.xml"));
    CHECK(schema_valid(r.body));
  }
}

TEST_CASE("autodiscover: GET without an address answers for the Host with placeholders") {
  Service s;
  // Delta Chat's first candidate, https://<domain>/autodiscover/autodiscover.xml.
  auto r = s.get("/Autodiscover/Autodiscover.xml", {"Host: EXAMPLE.org:443"});
  CHECK(r.status == 200);
  CHECK(r.header("Content-Type") == kTextXml);
  CHECK(r.body == golden("autodiscover/example-placeholder.xml"));
  CHECK(schema_valid(r.body));
  // HEAD: the same headers, no body.
  e2e::Connection c(s.port());
  c.send("HEAD /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: example.org\r\n\r\n");
  auto head = c.read_response(std::chrono::seconds(5), true);
  CHECK(head.status == 200);
  CHECK(head.header("Content-Length") == std::to_string(r.body.size()));
  CHECK(head.body.empty());
}

TEST_CASE("autodiscover: a domain that is not hosted gets the same 404 error 500 for everyone") {
  Service s;
  const e2e::Response answers[] = {
      post(s, "/autodiscover/autodiscover.xml", request_body("alice@not-hosted.example")),
      post(s, "/autodiscover/autodiscover.xml", request_body("someone.else@other.example")),
      s.get("/autodiscover/autodiscover.xml?Email=bob%40elsewhere.example"),
      s.get("/autodiscover/autodiscover.xml", {"Host: not-hosted.example"}),
      s.get("/autodiscover/autodiscover.xml", {"Host: autodiscover.not-hosted.example"}),
      s.get("/autodiscover/autodiscover.xml", {"Host: 127.0.0.1:8080"}),
  };
  for (const auto& r : answers) check_error(r, 404, "autodiscover/error-500.xml");
}

TEST_CASE("autodiscover: malformed requests get error 600 in a 200") {
  Service s;
  const std::string deep = [] {
    std::string b = "<Autodiscover xmlns=\"" + std::string(kOutlookNs) + "\"><Request>";
    for (int i = 0; i < 3000; ++i) b += "<a>";
    for (int i = 0; i < 3000; ++i) b += "</a>";
    return b + "</Request></Autodiscover>";
  }();
  const std::string bodies[] = {
      "",
      "garbage",
      "{\"email\":\"alice@example.com\"}",
      request_body("alice@example.com", k2006a, "urn:wrong-namespace"),
      "<Autodiscover xmlns=\"" + std::string(kOutlookNs) +
          "\"><Request><AcceptableResponseSchema>" + k2006a +
          "</AcceptableResponseSchema></Request></Autodiscover>",
      // Hostile addresses: markup, CRLF, control characters, invalid UTF-8, bidi overrides.
      request_body("<script>alert(1)</script>@example.com"),
      request_body("&lt;script&gt;@example.com"),
      request_body("alice\r\nSet-Cookie: x@example.com"),
      request_body("alice&#13;&#10;x@example.com"),
      request_body(std::string("ali\0ce@example.com", 18)),
      request_body("ali\x07"
                   "ce@example.com"),
      request_body("al\xC3\x28ice@example.com"),
      request_body("ali\xE2\x80\xAE"
                   "ce@example.com"),
      request_body(std::string(300, 'a') + "@example.com"),
      // DTDs and entities, deep nesting.
      "<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;\">]>" +
          request_body("&lol2;@example.com"),
      "<!DOCTYPE x [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>" + request_body("&xxe;"),
      request_body("&xxe;@example.com"),
      deep,
  };
  for (const auto& body : bodies) {
    auto r = post(s, "/autodiscover/autodiscover.xml", body);
    CHECK_MESSAGE(r.status == 200, body.substr(0, 120));
    check_error(r, 200, "autodiscover/error-600.xml");
  }
  // Hostile addresses on GET, percent-decoded once.
  for (const char* query : {"?Email=", "?Email=alice", "?emailaddress=%3Cb%3E%40example.com",
                            "?emailaddress=alice%0D%0ASet-Cookie%3A%20x%40example.com",
                            "?Email=ali%00ce%40example.com", "?Email=al%C3%28ice%40example.com",
                            "?Email=alice%40example.com%", "?Email=alice%2540example.com"}) {
    auto r = s.get(std::string("/autodiscover/autodiscover.xml") + query);
    INFO(query);
    check_error(r, 200, "autodiscover/error-600.xml");
  }
}

TEST_CASE("autodiscover: mobilesync and other schemas get error 601, never a 2006a document") {
  Service s;
  const std::string bodies[] = {
      request_body("alice@example.com", kMobileSyncSchema, kMobileSyncNs),
      request_body("alice@example.com", kMobileSyncSchema),
      request_body("alice@example.com", k2006a, kMobileSyncNs),
      request_body(
          "alice@example.com",
          "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006"),
  };
  for (const auto& body : bodies) {
    auto r =
        post(s, "/autodiscover/autodiscover.xml", body, {"User-Agent: Outlook-iOS-Android/1.0"});
    check_error(r, 200, "autodiscover/error-601.xml");
    CHECK(r.body.find("responseschema/2006a") == std::string::npos);
  }
}

TEST_CASE("autodiscover: a 1 MB body is refused with 413 by the framing layer") {
  Service s;
  {
    e2e::Connection c(s.port());
    c.send(
        "POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nContent-Type: "
        "text/xml\r\nContent-Length: 1048576\r\n\r\n" +
        std::string(16 * 1024, '<'));
    auto r = c.read_response();
    CHECK(r.status == 413);
    CHECK(r.header("Content-Type") == "text/plain; charset=utf-8");
    CHECK(r.body == "413 Content Too Large\n");
    CHECK(r.header("Connection") == "close");
  }
  {
    e2e::Connection c(s.port());
    c.send(
        "POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
        "chunked\r\n\r\n100000\r\n" +
        std::string(16 * 1024, 'a'));
    auto r = c.read_response();
    CHECK(r.status == 413);
    CHECK(r.body == "413 Content Too Large\n");
  }
  // The service is unharmed.
  CHECK(post(s, "/autodiscover/autodiscover.xml", request_body("alice@example.com")).status == 200);
}

TEST_CASE("autodiscover: other methods get 405 with Allow") {
  Service s;
  for (const char* method : {"PUT", "DELETE", "OPTIONS"}) {
    auto r = s.request(std::string(method) +
                       " /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nContent-Length: "
                       "0\r\n\r\n");
    CHECK_MESSAGE(r.status == 405, method);
    CHECK(r.header("Allow") == "GET, HEAD, POST");
  }
}

TEST_CASE("autodiscover: plain-HTTP GET on autodiscover.<hosted domain> redirects with 302") {
  Service s;
  const std::string location = "https://autodiscover.example.net/autodiscover/autodiscover.xml";
  for (const char* host : {"Host: autodiscover.example.com", "Host: Autodiscover.Example.ORG:80"}) {
    auto r = s.get("/Autodiscover/Autodiscover.xml", {host});
    CHECK_MESSAGE(r.status == 302, host);
    CHECK(r.header("Location") == location);
    CHECK(r.body == "302 Found\n");
  }
  // The query goes along: a GET client following the redirect gets its address's settings.
  auto with_query = s.get("/autodiscover/autodiscover.xml?Email=alice%40example.com",
                          {"Host: autodiscover.example.com"});
  CHECK(with_query.status == 302);
  CHECK(with_query.header("Location") == location + "?Email=alice%40example.com");
  // Bytes that a URI query may not carry are percent-encoded in the header.
  auto odd = s.get("/autodiscover/autodiscover.xml?emailaddress=a\"b<c>@example.com&x={y}",
                   {"Host: autodiscover.example.com"});
  CHECK(odd.status == 302);
  CHECK(odd.header("Location") == location + "?emailaddress=a%22b%3Cc%3E@example.com&x=%7By%7D");
  // POST is answered where it arrives; X-Forwarded-Proto is not trusted by default.
  CHECK(post(s, "/autodiscover/autodiscover.xml", request_body("alice@example.com")).status == 200);
  auto spoofed = s.get("/autodiscover/autodiscover.xml",
                       {"Host: autodiscover.example.com", "X-Forwarded-Proto: https"});
  CHECK(spoofed.status == 302);
}

TEST_CASE(
    "autodiscover: behind a trusted proxy X-Forwarded-Proto decides, and redirect can be off") {
  Service s({"--config", e2e::fixture("behind_proxy.xml")});
  REQUIRE(s.ready());
  auto plain = s.get("/autodiscover/autodiscover.xml",
                     {"Host: autodiscover.customer.example", "X-Forwarded-Proto: http"});
  CHECK(plain.status == 302);
  CHECK(plain.header("Location") ==
        "https://autodiscover.provider.example/autodiscover/autodiscover.xml");
  auto no_header = s.get("/autodiscover/autodiscover.xml", {"Host: autodiscover.customer.example"});
  CHECK(no_header.status == 302);
  for (const char* proto : {"X-Forwarded-Proto: https", "X-Forwarded-Proto: HTTPS, http"}) {
    auto tls =
        s.get("/autodiscover/autodiscover.xml", {"Host: autodiscover.customer.example", proto});
    CHECK_MESSAGE(tls.status == 200, proto);
    CHECK(tls.header("Content-Type") == kTextXml);
    CHECK(tls.body.find("<LoginName>%EMAILADDRESS%</LoginName>") != std::string::npos);
    CHECK(schema_valid(tls.body));
  }
  auto quiet = s.get("/autodiscover/autodiscover.xml",
                     {"Host: autodiscover.quiet.example", "X-Forwarded-Proto: http"});
  CHECK(quiet.status == 200);
  CHECK(quiet.body.find("<Server>imap.quiet.example</Server>") != std::string::npos);
  CHECK(schema_valid(quiet.body));
}

TEST_CASE("autodiscover v2: both request forms point to the POX URL") {
  Service s;
  for (const char* target :
       {"/autodiscover/autodiscover.json?Email=alice%40example.com&Protocol=AutodiscoverV1",
        "/Autodiscover/Autodiscover.json?Protocol=autodiscoverv1&Email=alice@example.com"
        "&RedirectCount=1",
        "/autodiscover/autodiscover.json/v1.0/alice%40example.com?Protocol=AutodiscoverV1",
        "/AutoDiscover/AutoDiscover.json/V1.0/alice@example.com?Protocol=AutodiscoverV1"}) {
    auto r = s.get(target, {"Accept: application/json"});
    CHECK_MESSAGE(r.status == 200, target);
    CHECK(r.header("Content-Type") == kJson);
    CHECK(r.body + "\n" == golden("autodiscover/v2-example.json"));
    CHECK(json_object_of_strings(r.body));
  }
}

TEST_CASE("autodiscover v2: other protocols get 400 InvalidProtocol, bad input a JSON error") {
  Service s;
  struct Case {
    std::string target;
    int status;
    std::string golden;
  } cases[] = {
      {"/autodiscover/autodiscover.json?Email=alice%40example.com&Protocol=ActiveSync", 400,
       "autodiscover/v2-invalid-protocol.json"},
      {"/autodiscover/autodiscover.json/v1.0/alice%40example.com?Protocol=Ews", 400,
       "autodiscover/v2-invalid-protocol.json"},
      {"/autodiscover/autodiscover.json?Email=alice%40example.com", 400,
       "autodiscover/v2-invalid-protocol.json"},
      {"/autodiscover/autodiscover.json?Email=alice%40example.com&Protocol=%3Cscript%3E", 400,
       "autodiscover/v2-invalid-protocol.json"},
      {"/autodiscover/autodiscover.json?Protocol=AutodiscoverV1", 400,
       "autodiscover/v2-invalid-email.json"},
      {"/autodiscover/autodiscover.json?Email=%22%3E%3C%2F%40x&Protocol=AutodiscoverV1", 400,
       "autodiscover/v2-invalid-email.json"},
      {"/autodiscover/autodiscover.json/v1.0/?Protocol=AutodiscoverV1", 400,
       "autodiscover/v2-invalid-email.json"},
      {"/autodiscover/autodiscover.json/v1.0/a%0D%0Ab%40example.com?Protocol=AutodiscoverV1", 400,
       "autodiscover/v2-invalid-email.json"},
      {"/autodiscover/autodiscover.json?Email=alice%40not-hosted.example&Protocol=AutodiscoverV1",
       404, "autodiscover/v2-not-found.json"},
      {"/autodiscover/autodiscover.json/v1.0/bob%40other.example?Protocol=AutodiscoverV1", 404,
       "autodiscover/v2-not-found.json"},
  };
  for (const auto& c : cases) {
    auto r = s.get(c.target);
    CHECK_MESSAGE(r.status == c.status, c.target);
    CHECK(r.header("Content-Type") == kJson);
    CHECK(r.body + "\n" == golden(c.golden));
    CHECK(json_object_of_strings(r.body));
  }
  auto post_json = s.request(
      "POST /autodiscover/autodiscover.json HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  CHECK(post_json.status == 405);
  CHECK(post_json.header("Allow") == "GET, HEAD");
}

TEST_CASE("render autodiscover prints the POX answer that is served") {
  auto r = e2e::run_mailconfd({"render", "autodiscover", "alice@example.com"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == golden("autodiscover/example-alice.xml"));
  auto other = e2e::run_mailconfd({"render", "autodiscover", "Bob@other.example", "--config",
                                   e2e::fixture("two_providers.xml")});
  CHECK(other.exit_code == 0);
  CHECK(other.out == golden("autodiscover/two-providers-other.xml"));
  auto unknown = e2e::run_mailconfd({"render", "autodiscover", "alice@not-hosted.example"});
  CHECK(unknown.exit_code == 1);
  auto kind = e2e::run_mailconfd({"render", "activesync", "alice@example.com"});
  CHECK(kind.exit_code == 2);
  CHECK(kind.err.find("usage: mailconfd render autoconfig|autodiscover|mobileconfig|setup EMAIL") !=
        std::string::npos);
}

TEST_CASE("autodiscover: an IDN address's DisplayName is as written, LoginName per provider") {
  Service s({"--config", e2e::fixture("trial_run.xml")});
  REQUIRE(s.ready());
  auto a =
      post(s, "/autodiscover/autodiscover.xml", request_body("hans@m\xC3\xBCller-bau.example"));
  CHECK(a.status == 200);
  CHECK(a.body.find("<DisplayName>hans@m\xC3\xBCller-bau.example</DisplayName>") !=
        std::string::npos);
  CHECK(a.body.find("<LoginName>hans@xn--mller-bau-q9a.example</LoginName>") != std::string::npos);
  CHECK(schema_valid(a.body));
  auto u = post(s, "/autodiscover/autodiscover.xml", request_body("eva@xn--bcher-kva.example"));
  CHECK(u.body.find("<LoginName>eva@b\u00fccher.example</LoginName>") != std::string::npos);
  CHECK(u.body.find("<DisplayName>eva@b\u00fccher.example</DisplayName>") != std::string::npos);
  auto tb = s.get("/mail/config-v1.1.xml?emailaddress=eva%40b%C3%BCcher.example");
  CHECK(tb.body.find("<username>eva@b\u00fccher.example</username>") != std::string::npos);
}

TEST_CASE("autodiscover v2: the access log shows the route, never the address in the path") {
  Service s;
  REQUIRE(s.ready());
  CHECK(s.get("/autodiscover/autodiscover.json/v1.0/secret.person%40example.com"
              "?Protocol=AutodiscoverV1")
            .status == 200);
  CHECK(s.get("/autodiscover/autodiscover.json/v1.0/secret.person@example.com?Protocol=Other")
            .status == 400);
  std::string log;
  for (int i = 0; i < 100 && log.find("Protocol=Other") == std::string::npos &&
                  std::count(log.begin(), log.end(), '\n') < 2;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    log = s.log();
  }
  for (int i = 0; i < 100 && log.find(" 400 ") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    log = s.log();
  }
  CHECK(log.find(" info GET /autodiscover/autodiscover.json/v1.0/{address} 200 ") !=
        std::string::npos);
  CHECK(log.find(" info GET /autodiscover/autodiscover.json/v1.0/{address} 400 ") !=
        std::string::npos);
  CHECK(log.find("secret.person") == std::string::npos);
}
