#include "render/html.h"

#include <doctest/doctest.h>

using namespace mailconfd::render;

TEST_CASE("html::escape makes markup, quotes and ampersands inert") {
  const struct {
    std::string_view in;
    std::string_view out;
  } cases[] = {
      {"", ""},
      {"alice@example.com", "alice@example.com"},
      {"<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"},
      {"a\"b'c", "a&quot;b&#39;c"},
      {"&amp;", "&amp;amp;"},
      {"x\" onmouseover=\"y", "x&quot; onmouseover=&quot;y"},
      {"bücher.example ✉", "bücher.example ✉"},
  };
  for (const auto& c : cases) CHECK_MESSAGE(html::escape(c.in) == c.out, c.in);
}

TEST_CASE("html::escape replaces controls, broken UTF-8 and bidi overrides with U+FFFD") {
  const std::string fffd = "\xEF\xBF\xBD";
  CHECK(html::escape("a\r\nb") == "a" + fffd + fffd + "b");
  CHECK(html::escape(std::string_view("a\0b", 3)) == "a" + fffd + "b");
  CHECK(html::escape("\x7F") == fffd);
  CHECK(html::escape("\xC2\x85") == fffd);                    // NEL, a C1 control
  CHECK(html::escape("\xC3") == fffd);                        // truncated sequence
  CHECK(html::escape("\xC0\xBC") == fffd + fffd);             // overlong '<'
  CHECK(html::escape("\xED\xA0\x80") == fffd + fffd + fffd);  // surrogate
  CHECK(html::escape("a\xE2\x80\xAE"
                     "b") == "a" + fffd + "b");  // U+202E RLO
  CHECK(html::escape("\xE2\x81\xA6") == fffd);   // U+2066 LRI
}

TEST_CASE("html::url_encode keeps only unreserved characters") {
  CHECK(html::url_encode("alice+tag@example.com") == "alice%2Btag%40example.com");
  CHECK(html::url_encode("a b&c=d\"<>") == "a%20b%26c%3Dd%22%3C%3E");
  CHECK(html::url_encode("A-Z_a.z~09") == "A-Z_a.z~09");
  CHECK(html::url_encode("ü") == "%C3%BC");
}
