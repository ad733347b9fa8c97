#include "http/routes.h"

#include <doctest/doctest.h>

using namespace mailconfd::http;

TEST_CASE("query_param finds the first value by case-insensitive name, undecoded") {
  CHECK(query_param("emailaddress=a%40b&x=1", "emailaddress") == "a%40b");
  CHECK(query_param("x=1&EmailAddress=c", "emailaddress") == "c");
  CHECK(query_param("emailaddress=first&emailaddress=second", "emailaddress") == "first");
  CHECK(query_param("emailaddress", "emailaddress") == "");
  CHECK_FALSE(query_param("", "emailaddress"));
  CHECK_FALSE(query_param("emailaddressx=1", "emailaddress"));
}

TEST_CASE("client_kind maps User-Agent to a fixed label") {
  CHECK(
      client_kind("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.3.0") ==
      "thunderbird");
  CHECK(client_kind("Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)") ==
        "outlook");
  CHECK(client_kind("curl/7.88.1") == "curl");
  CHECK(client_kind("") == "-");
  CHECK(client_kind("<script>") == "other");
}
