// Apple .mobileconfig over HTTP against the real binary: unsigned with the built-in example,
// CMS-signed with a throwaway PKI made at run time (tests/make-test-pki.sh), verified with
// the openssl command line; hostile input; a reload with a broken key.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <thread>

#include <doctest/doctest.h>

#include "service.h"

using e2e::golden;
using e2e::run_command;
using e2e::Service;

namespace {

constexpr const char* kProfileType = "application/x-apple-aspen-config";
const std::string kBadRequest = "400 Bad Request\n";
const std::string kNotFound = "404 Not Found\n";

std::string write_temp(const std::string& name, const std::string& bytes) {
  const std::string path = e2e::temp_dir() + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// xmllint against the committed copy of Apple's plist DTD, without network access.
bool valid_plist(const std::string& xml) {
  const std::string path = write_temp("profile.plist", xml);
  return run_command(
             {"xmllint", "--noout", "--nonet", "--dtdvalid", e2e::fixture("plist-1.0.dtd"), path})
             .exit_code == 0;
}

const std::string& pki() {
  static const std::string dir = [] {
    const std::string d = e2e::temp_dir();
    const auto r =
        run_command({"sh", std::string(MAILCONFD_SOURCE_DIR) + "/tests/make-test-pki.sh", d});
    REQUIRE_MESSAGE(r.exit_code == 0, e2e::read_file(d + "/openssl.log"));
    return d;
  }();
  return dir;
}

std::string config_file(const std::string& key_name, const std::string& cert_name) {
  const std::string dir = e2e::temp_dir();
  const std::string path = dir + "/mailconfd.xml";
  std::ofstream(path) << "<mailconfd>\n"
                      << "  <signing certificate=\"" << pki() << "/" << cert_name << "\" key=\""
                      << pki() << "/" << key_name << "\" chain=\"" << pki() << "/chain.pem\"/>\n"
                      << "  <mobileconfig secret=\"e2e-secret-0123456789\"/>\n"
                      << "  <provider id=\"example.net\">\n"
                      << "    <display-name>Example Mail</display-name>\n"
                      << "    <incoming protocol=\"imap\" host=\"imap.example.net\" port=\"993\" "
                         "security=\"tls\"/>\n"
                      << "    <outgoing host=\"smtp.example.net\" port=\"587\" "
                         "security=\"starttls\"/>\n"
                      << "    <domain>example.com</domain>\n"
                      << "  </provider>\n</mailconfd>\n";
  return path;
}

struct Verified {
  int exit_code = -1;
  std::string content;
  std::string err;
};

Verified openssl_verify(const std::string& der) {
  const std::string in = write_temp("signed.mobileconfig", der);
  const std::string out = e2e::temp_dir() + "/content.plist";
  const auto r = run_command({"openssl", "cms", "-verify", "-inform", "DER", "-in", in, "-CAfile",
                              pki() + "/root.pem", "-binary", "-out", out});
  return {r.exit_code, e2e::read_file(out), r.err};
}

bool wait_for_log(const Service& s, const std::string& text) {
  for (int i = 0; i < 100; ++i) {  // up to 10 s
    if (s.log().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::size_t count(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1))
    ++n;
  return n;
}

}  // namespace

TEST_CASE("mobileconfig: unsigned profile from the built-in example on both paths") {
  Service s;
  REQUIRE(s.ready());
  for (const char* target : {"/email.mobileconfig?emailaddress=alice%40example.com",
                             "/mobileconfig?email=alice@example.com",
                             "/Email.MobileConfig?x=1&EmailAddress=alice%40example.com"}) {
    CAPTURE(target);
    auto r = s.get(target);
    CHECK(r.status == 200);
    CHECK(r.header("Content-Type") == kProfileType);
    CHECK(r.header("Content-Disposition") == "attachment; filename=\"example.com.mobileconfig\"");
    CHECK(r.header("Cache-Control") == "no-store");
    CHECK(r.body == golden("mobileconfig/example-alice.plist"));
    CHECK(r.header("Content-Length") == std::to_string(r.body.size()));
  }
  CHECK(valid_plist(golden("mobileconfig/example-alice.plist")));
  auto head = s.request(
      "HEAD /email.mobileconfig?emailaddress=alice%40example.com HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  // Said once at start-up, not per request.
  CHECK(wait_for_log(s, "Apple profiles are served unsigned"));
  CHECK(count(s.log(), "Apple profiles are served unsigned") == 1);
}

TEST_CASE("mobileconfig: 400 without an address or with a bad one, 404 off-domain, 405 POST") {
  Service s;
  REQUIRE(s.ready());
  for (const char* target :
       {"/email.mobileconfig", "/mobileconfig?emailaddress=", "/mobileconfig?emailaddress=alice",
        "/mobileconfig?email=%zz@x.example", "/mobileconfig?name=alice%40example.com"}) {
    CAPTURE(target);
    auto r = s.get(target);
    CHECK(r.status == 400);
    CHECK(r.body == kBadRequest);
    CHECK(r.header("Content-Disposition").empty());
  }
  auto off = s.get("/email.mobileconfig?emailaddress=alice%40not-hosted.example");
  CHECK(off.status == 404);
  CHECK(off.body == kNotFound);
  auto post =
      s.request("POST /email.mobileconfig HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  CHECK(post.status == 405);
  CHECK(post.header("Allow") == "GET, HEAD");
}

TEST_CASE("mobileconfig: hostile addresses get 400/404 or an escaped, valid profile") {
  Service s;
  REQUIRE(s.ready());
  const std::string ten_kb(10 * 1024, 'a');
  for (const std::string& raw :
       {std::string("%3Cscript%3Ealert(1)%3C%2Fscript%3E%40example.com"),
        std::string("a%22%3E%3Cx%40example.com"), std::string("o'hara%26co%40example.com"),
        std::string("a%0D%0AX-Injected%3A%201%40example.com"),
        std::string("a%0D%0A%0D%0A%3Chtml%3E%40example.com"), std::string("a%00b%40example.com"),
        std::string("j%C3%BCrgen%40example.com"), std::string("%E2%80%AEalice%40example.com"),
        std::string("%FF%FE%40example.com"), std::string("alice%40example.com%0D%0AX-Injected:1"),
        std::string("alice%40example.com%22%3B%20filename%3Devil.exe"),
        std::string("alice%40ex%C3%A4mple.com"), ten_kb + "%40example.com",
        "alice%40" + ten_kb + ".com"}) {
    CAPTURE(raw.substr(0, 80));
    auto r = s.get("/email.mobileconfig?emailaddress=" + raw);
    CHECK((r.status == 200 || r.status == 400 || r.status == 404 || r.status == 414));
    CHECK(r.header("X-Injected").empty());
    CHECK(r.count("Content-Disposition") <= 1);
    if (r.status == 200) {
      CHECK(r.header("Content-Disposition") == "attachment; filename=\"example.com.mobileconfig\"");
      CHECK(valid_plist(r.body));
      CHECK(r.body.find("<script>") == std::string::npos);
    } else {
      CHECK(r.header("Content-Disposition").empty());
    }
  }
  // The accepted ones are escaped, not dropped.
  auto quote = s.get("/email.mobileconfig?emailaddress=o'hara%26co%40example.com");
  REQUIRE(quote.status == 200);
  CHECK(quote.body.find("<string>o&apos;hara&amp;co@example.com</string>") != std::string::npos);
}

TEST_CASE("mobileconfig: signed with RSA and ECDSA, verifies against the test root") {
  for (const std::string name : {"rsa", "ec"}) {
    CAPTURE(name);
    const std::string config = config_file(name + ".key", name + ".pem");
    Service s({"--config", config});
    REQUIRE(s.ready());
    CHECK(wait_for_log(s, std::string("signing Apple profiles with ") +
                              (std::string(name) == "rsa" ? "RSA-2048" : "EC-prime256v1")));
    CHECK(s.log().find("served unsigned") == std::string::npos);
    auto r = s.get("/email.mobileconfig?emailaddress=alice%40example.com");
    CHECK(r.status == 200);
    CHECK(r.header("Content-Type") == kProfileType);
    CHECK(r.header("Content-Disposition") == "attachment; filename=\"example.com.mobileconfig\"");
    REQUIRE(!r.body.empty());
    CHECK(static_cast<unsigned char>(r.body[0]) == 0x30);  // DER
    const Verified v = openssl_verify(r.body);
    CHECK_MESSAGE(v.exit_code == 0, v.err);
    CHECK(valid_plist(v.content));
    CHECK(v.content.find("<string>alice@example.com</string>") != std::string::npos);

    // The content is exactly what `render mobileconfig` signs for the same file.
    auto rendered =
        e2e::run_mailconfd({"render", "mobileconfig", "alice@example.com", "--config", config});
    CHECK(rendered.exit_code == 0);
    CHECK(openssl_verify(rendered.out).content == v.content);

    // Repeated downloads are answered from the cache: the same bytes, signing time included.
    CHECK(s.get("/mobileconfig?email=alice@example.com").body == r.body);
    auto bob = s.get("/mobileconfig?email=bob@example.com");
    CHECK(bob.body != r.body);
    const Verified vb = openssl_verify(bob.body);
    CHECK(vb.exit_code == 0);
    CHECK(vb.content != v.content);
  }
}

TEST_CASE("mobileconfig: a reload with a key that does not match is refused and reported") {
  const std::string config = config_file("ec.key", "ec.pem");
  Service s({"--config", config});
  REQUIRE(s.ready());
  const std::string before = s.get("/mobileconfig?email=alice@example.com").body;
  REQUIRE(openssl_verify(before).exit_code == 0);

  std::string text = e2e::read_file(config);
  text.replace(text.find("/ec.key"), 7, "/other.key");
  std::ofstream(config) << text;
  s.signal(SIGHUP);
  REQUIRE(wait_for_log(s, "reload failed"));
  const std::string log = s.log();
  CHECK(log.find(config + ":2:3: <signing>: the key in '" + pki() +
                 "/other.key' does not belong") != std::string::npos);
  CHECK(log.find("key values mismatch") != std::string::npos);
  // Still serving the previous configuration, signed, from its cache.
  CHECK(s.get("/mobileconfig?email=alice@example.com").body == before);

  // Fixed: the reload loads the keys again; they are the ones being served, so the cache stays.
  text.replace(text.find("/other.key"), 10, "/ec.key");
  std::ofstream(config) << text;
  s.signal(SIGHUP);
  REQUIRE(wait_for_log(s, "reloaded " + config));
  const std::string after = s.get("/mobileconfig?email=alice@example.com").body;
  CHECK(openssl_verify(after).exit_code == 0);
  CHECK(openssl_verify(after).content == openssl_verify(before).content);
}

// The value of the sample line "NAME VALUE" in a Prometheus exposition; -1 if absent.
double sample(const std::string& text, const std::string& name) {
  const auto at = text.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + name.size() + 2));
}

TEST_CASE("mobileconfig: a reload that keeps the key and secret serves the cached signature") {
  const std::string config = config_file("ec.key", "ec.pem");
  Service s({"--config", config});
  REQUIRE(s.ready());
  const std::string url = "/mobileconfig?email=alice@example.com";
  const std::string before = s.get(url).body;
  REQUIRE(openssl_verify(before).exit_code == 0);
  CHECK(sample(s.get("/metrics").body, "mailconfd_profiles_signed_total") == 1);
  CHECK(s.get(url).body == before);  // the signing time differs in a new signature
  CHECK(sample(s.get("/metrics").body, "mailconfd_profiles_signed_total") == 1);

  // An unrelated change: one more hosted domain.
  std::string text = e2e::read_file(config);
  text.replace(text.find("<domain>example.com</domain>"), 28,
               "<domain>example.com</domain><domain>added.example</domain>");
  std::ofstream(config) << text;
  s.signal(SIGHUP);
  REQUIRE(wait_for_log(s, "reloaded " + config));
  CHECK(s.get("/mobileconfig?email=bob@added.example").status == 200);
  CHECK(s.get(url).body == before);
  CHECK(sample(s.get("/metrics").body, "mailconfd_profiles_signed_total") == 2);  // bob's only

  // A changed server changes the profile: signed anew, never the cached bytes.
  text.replace(text.find("imap.example.net"), 16, "mail.example.net");
  std::ofstream(config) << text;
  s.signal(SIGHUP);
  bool reloaded_again = false;
  for (int i = 0; i < 100 && !reloaded_again; ++i) {  // up to 10 s
    reloaded_again = count(s.log(), "reloaded " + config) == 2;
    if (!reloaded_again) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  REQUIRE(reloaded_again);
  const std::string changed = s.get(url).body;
  CHECK(changed != before);
  CHECK(openssl_verify(changed).content.find("mail.example.net") != std::string::npos);
  CHECK(sample(s.get("/metrics").body, "mailconfd_profiles_signed_total") == 3);
}

TEST_CASE("render mobileconfig prints the profile, unsigned equal to what is served") {
  auto r = e2e::run_mailconfd({"render", "mobileconfig", "alice@example.com"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == golden("mobileconfig/example-alice.plist"));
  auto unknown = e2e::run_mailconfd({"render", "mobileconfig", "alice@not-hosted.example"});
  CHECK(unknown.exit_code == 1);
  auto bad = e2e::run_mailconfd({"render", "mobileconfig", "<x>"});
  CHECK(bad.exit_code == 2);
}
