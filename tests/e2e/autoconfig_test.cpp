// Thunderbird autoconfig over HTTP against the real binary with the built-in example config.
#include <signal.h>

#include <cstdio>

#include <doctest/doctest.h>

#include "service.h"

using e2e::golden;
using e2e::Service;

namespace {

constexpr const char* kXml = "application/xml; charset=utf-8";
const std::string kNotFound = "404 Not Found\n";
const std::string kBadRequest = "400 Bad Request\n";

bool well_formed(const std::string& xml) {
  const std::string path = e2e::temp_dir() + "/doc.xml";
  FILE* f = std::fopen(path.c_str(), "wb");
  std::fwrite(xml.data(), 1, xml.size(), f);
  std::fclose(f);
  return e2e::run_command({"xmllint", "--noout", "--nonet", path}).exit_code == 0;
}

}  // namespace

TEST_CASE("autoconfig: both paths answer the golden document for an address") {
  Service s;
  REQUIRE(s.ready());
  for (const char* path :
       {"/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml"}) {
    auto r = s.get(std::string(path) + "?emailaddress=alice%40example.com");
    CHECK(r.status == 200);
    CHECK(r.header("Content-Type") == kXml);
    CHECK(r.header("Cache-Control") == "no-store");
    CHECK(r.body == golden("autoconfig/example-alice.xml"));
    CHECK(r.header("Content-Length") == std::to_string(r.body.size()));
  }
}

TEST_CASE("autoconfig: without emailaddress the domain comes from Host and placeholders stay") {
  Service s;
  auto r = s.get("/mail/config-v1.1.xml", {"Host: autoconfig.example.org"});
  CHECK(r.status == 200);
  CHECK(r.header("Content-Type") == kXml);
  CHECK(r.body == golden("autoconfig/example-placeholder.xml"));
  // The .well-known path is fetched on the customer's own name; a port is dropped.
  auto w = s.get("/.well-known/autoconfig/mail/config-v1.1.xml", {"Host: EXAMPLE.ORG:8080"});
  CHECK(w.status == 200);
  CHECK(w.body == golden("autoconfig/example-placeholder.xml"));
}

TEST_CASE("autoconfig: the path is matched case-insensitively, unknown parameters ignored") {
  Service s;
  for (const char* path : {"/Mail/Config-v1.1.xml", "/MAIL/CONFIG-V1.1.XML",
                           "/.Well-Known/AutoConfig/mail/config-v1.1.xml"}) {
    auto r = s.get(std::string(path) + "?emailmd5=abc&emailaddress=alice%40example.com&x");
    CHECK_MESSAGE(r.status == 200, path);
    CHECK(r.body == golden("autoconfig/example-alice.xml"));
  }
}

TEST_CASE(
    "autoconfig: a domain that is not hosted gets 404 with a body independent of the address") {
  Service s;
  const std::string targets[] = {
      "/mail/config-v1.1.xml?emailaddress=alice%40not-hosted.example",
      "/mail/config-v1.1.xml?emailaddress=someone.else%40other.example",
  };
  for (const auto& t : targets) {
    auto r = s.get(t);
    CHECK(r.status == 404);
    CHECK(r.header("Content-Type") == "text/plain; charset=utf-8");
    CHECK(r.body == kNotFound);
  }
  auto host = s.get("/mail/config-v1.1.xml", {"Host: autoconfig.not-hosted.example"});
  CHECK(host.status == 404);
  CHECK(host.body == kNotFound);
}

TEST_CASE("autoconfig: malformed and hostile addresses get 400 with a fixed body") {
  Service s;
  const std::string bad[] = {
      "alice",           // no @
      "%40example.com",  // empty local part
      "%3Cscript%3Ealert(1)%3C%2Fscript%3E%40example.com",
      "alice%0D%0ASet-Cookie%3A%20x%40example.com",  // CRLF
      "ali%00ce%40example.com",                      // NUL
      "al%C3%28ice%40example.com",                   // invalid UTF-8
      "alice%EF%BC%A0example.com",                   // fullwidth @
      "ali%E2%80%AEce%40example.com",                // bidi override
      "%7B%7D%25n%40example.com%25s",                // format strings
      std::string(10 * 1024, 'a') + "%40example.com",
      "alice%40example.com%",  // broken escape
  };
  for (const auto& address : bad) {
    auto r = s.get("/mail/config-v1.1.xml?emailaddress=" + address);
    CHECK_MESSAGE(r.status == 400, address.substr(0, 80));
    CHECK(r.header("Content-Type") == "text/plain; charset=utf-8");
    CHECK(r.body == kBadRequest);
  }
  // Past the request-line limit (16 KiB) the framing layer answers before any parsing.
  auto huge =
      s.get("/mail/config-v1.1.xml?emailaddress=" + std::string(20 * 1024, 'a') + "%40example.com");
  CHECK(huge.status == 414);
  CHECK(huge.body == "414 URI Too Long\n");
}

TEST_CASE("autoconfig: legal but markup-like addresses are escaped, never echoed raw") {
  Service s;
  auto r = s.get("/mail/config-v1.1.xml?emailaddress=o'hara%26co%2Btag%40Example.COM");
  REQUIRE(r.status == 200);
  CHECK(r.body.find("<username>o&apos;hara&amp;co+tag@example.com</username>") !=
        std::string::npos);
  CHECK(r.body.find("<domain>example.com</domain>") != std::string::npos);
  CHECK(well_formed(r.body));
}

TEST_CASE("autoconfig: HEAD gives the headers of GET and no body") {
  Service s;
  e2e::Connection c(s.port());
  c.send("HEAD /mail/config-v1.1.xml?emailaddress=alice%40example.com HTTP/1.1\r\nHost: x\r\n\r\n");
  auto r = c.read_response(std::chrono::seconds(5), true);
  CHECK(r.status == 200);
  CHECK(r.header("Content-Length") ==
        std::to_string(golden("autoconfig/example-alice.xml").size()));
  CHECK(r.body.empty());
  // The connection is still in sync: the next answer is a complete GET.
  c.send(e2e::kAliceGet);
  CHECK(c.read_response().body == golden("autoconfig/example-alice.xml"));
}

TEST_CASE("autoconfig: other methods get 405 with Allow") {
  Service s;
  auto r = s.request("POST /mail/config-v1.1.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  CHECK(r.status == 405);
  CHECK(r.header("Allow") == "GET, HEAD");
  CHECK(r.body == "405 Method Not Allowed\n");
}

TEST_CASE("autoconfig: internationalised domains are answered as A-labels") {
  Service s({"--config", e2e::fixture("two_providers.xml")});
  REQUIRE(s.ready());
  auto r = s.get("/mail/config-v1.1.xml?emailaddress=j%C3%BCrgen%40B%C3%BCcher.example");
  CHECK(r.status == 200);
  CHECK(r.body.find("<domain>xn--bcher-kva.example</domain>") != std::string::npos);
  CHECK(r.body.find("<username>jürgen@xn--bcher-kva.example</username>") != std::string::npos);
  auto local = s.get("/mail/config-v1.1.xml?emailaddress=Bob%40other.example");
  CHECK(local.body.find("<username>Bob</username>") != std::string::npos);
}

TEST_CASE("the access log has one line per request and never the query or Authorization") {
  Service s;
  s.get("/mail/config-v1.1.xml?emailaddress=secret.person%40example.com",
        {"Authorization: Basic c2VjcmV0LnBlcnNvbjpodW50ZXIy", "User-Agent: Thunderbird/128.0"});
  s.signal(SIGTERM);
  CHECK(s.wait_exit(std::chrono::seconds(10)) == 0);
  const std::string log = s.log();
  CHECK(log.find("GET /mail/config-v1.1.xml 200 ") != std::string::npos);
  CHECK(log.find("thunderbird") != std::string::npos);
  CHECK(log.find("secret.person") == std::string::npos);
  CHECK(log.find("c2VjcmV0") == std::string::npos);
  CHECK(log.find("Authorization") == std::string::npos);
}
