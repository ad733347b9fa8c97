// The setup page over HTTP against the real binary with the built-in example config.
#include <signal.h>

#include <chrono>

#include <doctest/doctest.h>

#include "service.h"

using e2e::golden;
using e2e::Service;

namespace {

constexpr const char* kHtml = "text/html; charset=utf-8";

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

void check_page_headers(const e2e::Response& r, const char* lang) {
  CHECK(r.header("Content-Type") == kHtml);
  CHECK(r.header("Cache-Control") == "no-store");
  CHECK(r.header("Referrer-Policy") == "no-referrer");
  CHECK(r.header("Content-Language") == lang);
  CHECK(r.header("Vary") == "Accept-Language");
  CHECK(r.header("X-Content-Type-Options") == "nosniff");
  CHECK(r.header("X-Frame-Options") == "DENY");
  const std::string csp = r.header("Content-Security-Policy");
  CHECK(csp.starts_with("default-src 'none'; style-src 'sha256-"));
  CHECK(contains(csp,
                 "; img-src 'self' data:; form-action 'self'; base-uri 'none'; "
                 "frame-ancestors 'none'"));
  CHECK(r.header("Content-Length") == std::to_string(r.body.size()));
}

}  // namespace

TEST_CASE("setup: / and /setup answer the form page, in the language the browser prefers") {
  Service s;
  REQUIRE(s.ready());
  for (const char* path : {"/", "/setup", "/SETUP"}) {
    auto en = s.get(path);  // no Accept-Language: the configured default, en
    CHECK_MESSAGE(en.status == 200, path);
    check_page_headers(en, "en");
    CHECK(en.body == golden("setup/form.en.html"));
    auto de = s.get(path, {"Accept-Language: de-DE,de;q=0.9,en;q=0.8"});
    CHECK(de.status == 200);
    check_page_headers(de, "de");
    CHECK(de.body == golden("setup/form.de.html"));
  }
  auto q = s.get("/", {"Accept-Language: de;q=0.4, en-GB;q=0.7"});
  CHECK(q.header("Content-Language") == "en");
  auto empty = s.get("/setup?emailaddress=", {"Accept-Language: de"});
  CHECK(empty.status == 200);
  CHECK(empty.body == golden("setup/form.de.html"));
}

TEST_CASE("setup: ?lang= overrides Accept-Language, and an unknown lang is ignored") {
  Service s;
  auto en = s.get("/setup?lang=en", {"Accept-Language: de"});
  CHECK(en.header("Content-Language") == "en");
  CHECK(en.body == golden("setup/form.en.html"));
  auto de = s.get("/setup?lang=DE");
  CHECK(de.header("Content-Language") == "de");
  auto fr = s.get("/setup?lang=fr", {"Accept-Language: de"});
  CHECK(fr.header("Content-Language") == "de");
}

TEST_CASE("setup: an address gets its settings, the same bytes as the golden page") {
  Service s;
  auto en = s.get("/setup?emailaddress=alice%40example.com&lang=en");
  CHECK(en.status == 200);
  check_page_headers(en, "en");
  CHECK(en.body == golden("setup/alice.en.html"));
  auto de = s.get("/setup?emailaddress=alice%40Example.COM", {"Accept-Language: de"});
  CHECK(de.status == 200);
  CHECK(de.body == golden("setup/alice.de.html"));
  CHECK(contains(de.body, "href=\"/email.mobileconfig?emailaddress=alice%40example.com\""));
  CHECK(contains(de.body, "href=\"/setup?lang=en&amp;emailaddress=alice%40example.com\""));
}

TEST_CASE("setup: HEAD gives the headers of GET and no body") {
  Service s;
  auto get = s.get("/setup?emailaddress=alice%40example.com");
  auto head = s.request(
      "HEAD /setup?emailaddress=alice%40example.com HTTP/1.1\r\nHost: localhost\r\n"
      "Connection: close\r\n\r\n");
  CHECK(head.status == 200);
  CHECK(head.header("Content-Length") == std::to_string(get.body.size()));
  CHECK(head.header("Content-Security-Policy") == get.header("Content-Security-Policy"));
  CHECK(head.body.empty());
  auto post = s.request("POST /setup HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n");
  CHECK(post.status == 405);
  CHECK(post.header("Allow") == "GET, HEAD");
}

TEST_CASE("setup: an unknown domain gets the friendly page with status 404") {
  Service s;
  auto r = s.get("/setup?emailaddress=bob%40elsewhere.example&lang=en");
  CHECK(r.status == 404);
  check_page_headers(r, "en");
  CHECK(r.body == golden("setup/unknown.en.html"));
  auto de = s.get("/setup?emailaddress=bob%40elsewhere.example", {"Accept-Language: de"});
  CHECK(de.status == 404);
  CHECK(contains(de.body, "Für „<strong>bob@elsewhere.example</strong>“ betreiben wir kein"));
  CHECK(contains(de.body, "value=\"bob@elsewhere.example\""));
}

TEST_CASE("setup: a malformed address gets the friendly page with status 400, shown as text") {
  Service s;
  auto r = s.get("/setup?emailaddress=%3Cb%3E%22x%22%3C%2Fb%3E", {"Accept-Language: de"});
  CHECK(r.status == 400);
  check_page_headers(r, "de");
  CHECK(r.header("Connection").empty());  // a page, not a protocol error: keep-alive stays
  CHECK(r.body == golden("setup/bad.de.html"));
}

TEST_CASE("setup: hostile input is shown as text, never as markup or headers") {
  Service s;
  const struct {
    std::string query;
    std::string shown;  // how the input appears, escaped, in the page
    int status;
  } cases[] = {
      {"%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E",
       "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;", 400},
      {"x'%20onfocus%3D'alert(1)%40example.com", "x&#39; onfocus=&#39;alert(1)@example.com", 400},
      {"alice%0D%0ASet-Cookie%3A%20x%3Dy%40example.com",
       "alice\xEF\xBF\xBD\xEF\xBF\xBDSet-Cookie: x=y@example.com", 400},
      {"al%C3%28ice%40example.com", "al\xEF\xBF\xBD(ice@example.com", 400},
      {"ali%E2%80%AEce%40example.com",
       "ali\xEF\xBF\xBD"
       "ce@example.com",
       400},
      {"o'hara%26co%40example.com", "o&#39;hara&amp;co@example.com", 200},
      // Shown as the customer wrote it (U-labels), also when the domain is not hosted.
      {"j%C3%BCrgen%40b%C3%BCcher.example", "jürgen@bücher.example", 404},
      {"j%C3%BCrgen%40xn--bcher-kva.example", "jürgen@bücher.example", 404},
      {"%25%7B%7D%40example.com", "%{}@example.com", 200},
  };
  for (const auto& c : cases) {
    auto r = s.get("/setup?lang=en&emailaddress=" + c.query);
    CHECK_MESSAGE(r.status == c.status, c.query);
    CHECK_MESSAGE(contains(r.body, "value=\"" + c.shown + "\""), c.query);
    CHECK_MESSAGE(!contains(r.body, "<script"), c.query);
    CHECK_MESSAGE(!contains(r.body, "onfocus='"), c.query);
    CHECK(r.header("Set-Cookie").empty());
    CHECK(r.count("Set-Cookie") == 0);
  }
  // Very long input is cut before it is shown; the request line limit still applies.
  auto r = s.get("/setup?emailaddress=" + std::string(4000, 'a'));
  CHECK(r.status == 400);
  CHECK(contains(r.body, "value=\"" + std::string(320, 'a') + "\""));
  CHECK(!contains(r.body, std::string(321, 'a')));
}

TEST_CASE("setup: '+' is a space as the form sends it, and a literal '+' from a link still works") {
  Service s;
  auto form = s.get("/setup?emailaddress=+alice%2Btag%40example.com+&lang=en");
  CHECK(form.status == 200);
  CHECK(contains(form.body, "value=\"alice+tag@example.com\""));
  auto link = s.get("/setup?emailaddress=alice+tag@example.com&lang=en");
  CHECK(link.status == 200);
  CHECK(contains(link.body, "value=\"alice+tag@example.com\""));
  CHECK(contains(link.body, "emailaddress=alice%2Btag%40example.com"));
  auto spaced = s.get("/setup?emailaddress=%3Cb%3E+x%40example.com&lang=en");
  CHECK(spaced.status == 400);
  CHECK(contains(spaced.body, "value=\"&lt;b&gt; x@example.com\""));
}

TEST_CASE("setup: the access log never carries the address") {
  Service s;
  auto r = s.get("/setup?emailaddress=secret.person%40example.com");
  CHECK(r.status == 200);
  s.signal(SIGTERM);  // writes every batched access-log line before it exits
  CHECK(s.wait_exit(std::chrono::seconds(10)) == 0);
  const std::string log = s.log();
  CHECK(contains(log, " info GET /setup 200 "));
  CHECK(!contains(log, "secret.person"));
}

// Issue 19: what a provider admin's trial run found on the page.
TEST_CASE("setup: an IDN address is shown as written, the user name as the server wants it") {
  Service s({"--config", e2e::fixture("trial_run.xml")});
  REQUIRE(s.ready());
  // Typed with umlauts or pasted as A-labels: the page shows the U-labels either way.
  for (const char* typed : {"hans%40m%C3%BCller-bau.example", "hans%40xn--mller-bau-q9a.example"}) {
    auto r = s.get(std::string("/setup?lang=de&emailaddress=") + typed);
    CHECK(r.status == 200);
    CHECK(contains(r.body, "<title>hans@müller-bau.example – E-Mail-Einstellungen"));
    CHECK(
        contains(r.body, "Einstellungen für <span class=\"value\">hans@müller-bau.example</span>"));
    CHECK(contains(r.body,
                   "Benutzername überall: <strong class=\"value\">"
                   "hans@xn--mller-bau-q9a.example</strong> (Ihre E-Mail-Adresse "
                   "hans@müller-bau.example, die Domain so geschrieben, wie Mailserver sie "
                   "brauchen: bitte genau so eingeben)"));
    CHECK(contains(r.body,
                   "href=\"/email.mobileconfig?emailaddress=hans%40m%C3%BCller-bau.example\""));
  }
  // A provider whose servers store UTF-8 domains: the user name is the address as written.
  auto utf8 = s.get("/setup?lang=en&emailaddress=eva%40b%C3%BCcher.example");
  CHECK(contains(utf8.body,
                 "User name everywhere: <strong class=\"value\">eva@bücher.example"
                 "</strong> (your full email address)"));
  // The short name was cut at a character, never inside one.
  auto autoconfig = s.get("/mail/config-v1.1.xml?emailaddress=hans%40xn--mller-bau-q9a.example");
  CHECK(contains(autoconfig.body, "<displayShortName>Mailbox Grosshändläg</displayShortName>"));
  CHECK(!contains(autoconfig.body, "\xEF\xBF\xBD"));
}

TEST_CASE("setup: future tense before the cut-off date, past tense after it, both languages") {
  Service s({"--config", e2e::fixture("trial_run.xml")});
  REQUIRE(s.ready());
  auto before_en = s.get("/setup?lang=en&emailaddress=alice%40example.com");
  CHECK(contains(before_en.body,
                 "SMTP-after-POP will be switched off on 1 March 2999; please "
                 "change your settings before then."));
  auto before_de = s.get("/setup?lang=de");  // the form presents the first provider
  CHECK(contains(before_de.body,
                 "SMTP-after-POP wird am 1. März 2999 abgeschaltet; bitte stellen "
                 "Sie vorher um."));
  auto after_en = s.get("/setup?lang=en&emailaddress=oma%40oma.example");
  CHECK(contains(after_en.body, "SMTP-after-POP was switched off on 2 September 2013."));
  auto after_de = s.get("/setup?lang=de&emailaddress=oma%40oma.example");
  CHECK(contains(after_de.body, "SMTP-after-POP wurde am 2. September 2013 abgeschaltet."));
  // A local-part login: the texts speak of the user name, never of the address.
  CHECK(contains(after_de.body, "mit Benutzername und Passwort beim Postausgangsserver"));
  CHECK(!contains(after_de.body, "E-Mail-Adresse und Passwort"));
  CHECK(contains(after_de.body,
                 "Benutzername überall: <strong class=\"value\">oma</strong> "
                 "(der Teil Ihrer E-Mail-Adresse vor dem @)"));
}

TEST_CASE("setup: what customers paste (mailto:, a name with <address>, a line end) is read") {
  Service s;
  REQUIRE(s.ready());
  for (const char* pasted :
       {"mailto:alice@example.com", "MAILTO%3Aalice%40example.com%3Fsubject%3DHi",
        "Alice+M%C3%BCller+%3Calice%40example.com%3E", "%22Alice%22%20%3Calice%40example.com%3E",
        "alice%40example.com%0A", "%20%09alice%40example.com%0D%0A"}) {
    auto r = s.get(std::string("/setup?lang=en&emailaddress=") + pasted);
    CHECK_MESSAGE(r.status == 200, pasted);
    CHECK_MESSAGE(contains(r.body, "Settings for <span class=\"value\">alice@example.com</span>"),
                  pasted);
  }
  // Only the page: protocol endpoints take bare addresses.
  CHECK(s.get("/mail/config-v1.1.xml?emailaddress=mailto%3Aalice%40example.com").status == 400);
  auto bad = s.get("/setup?lang=en&emailaddress=Alice+%3Cnot-an-address%3E");
  CHECK(bad.status == 400);
  CHECK(contains(bad.body,
                 "“<strong>Alice &lt;not-an-address&gt;</strong>” is not an email address"));
}

TEST_CASE("setup: /favicon.ico is a small icon, not a 404") {
  Service s;
  REQUIRE(s.ready());
  auto r = s.get("/favicon.ico");
  CHECK(r.status == 200);
  CHECK(r.header("Content-Type") == "image/x-icon");
  CHECK(r.header("Cache-Control") == "public, max-age=86400");
  CHECK(r.body.size() == 1150);
  CHECK(r.body.substr(0, 4) == std::string("\0\0\1\0", 4));
}
