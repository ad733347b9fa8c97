#include "core/email_address.h"

#include <doctest/doctest.h>

using namespace mailconfd;

TEST_CASE("percent_decode decodes %XX once and keeps '+'") {
  CHECK(percent_decode("alice%40example.com") == "alice@example.com");
  CHECK(percent_decode("a%2Bb%40x.example") == "a+b@x.example");
  CHECK(percent_decode("a+b@x.example") == "a+b@x.example");
  CHECK(percent_decode("%2540") == "%40");  // decoded once, not twice
  CHECK(percent_decode("%00") == std::string(1, '\0'));
  for (auto bad : {"%", "%4", "%G0", "abc%", "%%41"}) CHECK_MESSAGE(!percent_decode(bad), bad);
}

TEST_CASE("parse_email accepts what mail clients send") {
  struct Case {
    const char* in;
    const char* local;
    const char* domain;
  } cases[] = {
      {"alice@example.com", "alice", "example.com"},
      {"Alice.Smith@Example.COM", "Alice.Smith", "example.com"},
      {"a+tag@example.com", "a+tag", "example.com"},
      {"o'hara&co@example.com", "o'hara&co", "example.com"},
      {"alice@bücher.example", "alice", "xn--bcher-kva.example"},
      {"alice@XN--BCHER-KVA.example", "alice", "xn--bcher-kva.example"},
      {"alice@example.com.", "alice", "example.com"},
      {"jürgen@example.com", "jürgen", "example.com"},
  };
  for (const auto& c : cases) {
    auto a = parse_email(c.in);
    REQUIRE_MESSAGE(a, c.in);
    CHECK(a->local == c.local);
    CHECK(a->domain == c.domain);
  }
  CHECK(parse_email("alice@example.com")->full() == "alice@example.com");
}

TEST_CASE("parse_email rejects what clients might send by mistake, and hostile input") {
  const std::string long_local(65, 'a');
  const std::string long_label(64, 'b');
  const std::string huge(10 * 1024, 'x');
  const std::string cases[] = {
      "",
      "@example.org",
      "alice@",
      "alice",
      "alice@@example.org",
      "a b@example.org",
      "alice@exa mple.org",
      ".alice@example.org",
      "alice.@example.org",
      "al..ice@example.org",
      "\"quoted\"@example.org",
      "<script>@example.org",
      "alice@<b>.org",
      "alice@example.org\r\nX: y",
      std::string("ali\0ce@example.org", 18),
      "al\xC3\x28ice@example.org",
      "alice@exam\xFFple.org",
      "alice\xEF\xBC\xA0"
      "example.org",  // fullwidth @ is not @
      "ali\xE2\x80\xAE"
      "ecila@example.org",  // U+202E RIGHT-TO-LEFT OVERRIDE
      "ali\xE2\x80\x8B"
      "ce@example.org",  // U+200B ZERO WIDTH SPACE
      "{}@example.org%n",
      "%n@example.org%s",
      "alice@-example.org",
      "alice@example-.org",
      long_local + "@example.org",
      "alice@" + long_label + ".org",
      huge + "@example.org",
      "alice@" + huge,
      "alice@example..org",
      "alice@.example.org",
      "alice@exa_mple.org",
  };
  for (const auto& bad : cases) CHECK_MESSAGE(!parse_email(bad), bad);
}

TEST_CASE("parse_email enforces RFC 5321 lengths: local 64, whole address 254") {
  const std::string local64(64, 'a');
  CHECK(parse_email(local64 + "@example.org"));
  std::string domain;
  while (domain.size() < 240) domain += "abcdefghi.";
  domain += "org";  // 243 octets
  CHECK(parse_email("a@" + domain));
  CHECK_FALSE(parse_email(std::string(11, 'a') + "@" + domain));  // 255 > 254
}

TEST_CASE("domain_from_host strips the port and an autoconfig./autodiscover. label") {
  CHECK(domain_from_host("autoconfig.example.com") == "example.com");
  CHECK(domain_from_host("AutoConfig.Example.COM:8080") == "example.com");
  CHECK(domain_from_host("autodiscover.example.com:443") == "example.com");
  CHECK(domain_from_host("example.com") == "example.com");
  CHECK(domain_from_host("autoconfig") == "autoconfig");
  for (auto bad :
       {"", "[::1]:80", "example.com:", "example.com:99999x", "exa mple.com", "a@b.example"}) {
    CHECK_MESSAGE(!domain_from_host(bad), bad);
  }
}

TEST_CASE("valid_utf8 rejects overlongs, surrogates and truncated sequences") {
  CHECK(valid_utf8("plain"));
  CHECK(
      valid_utf8("b\xC3\xBC"
                 "cher"));
  for (auto bad : {"\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE2\x82", "\x80"}) {
    CHECK_MESSAGE(!valid_utf8(bad), bad);
  }
}
