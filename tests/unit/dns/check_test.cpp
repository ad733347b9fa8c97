#include "dns/check.h"

#include <doctest/doctest.h>

using namespace mailconfd::dns;

TEST_CASE("--resolver accepts IP, IP:PORT, [IPV6]:PORT and nothing else") {
  auto r = parse_resolver("127.0.0.1");
  REQUIRE(r);
  CHECK(r->ip == "127.0.0.1");
  CHECK(r->port == 53);
  r = parse_resolver("127.0.0.1:5353");
  REQUIRE(r);
  CHECK(r->port == 5353);
  r = parse_resolver("[::1]:5353");
  REQUIRE(r);
  CHECK(r->ip == "::1");
  CHECK(r->port == 5353);
  r = parse_resolver("::1");
  REQUIRE(r);
  CHECK(r->port == 53);
  CHECK(parse_resolver("[::1]")->port == 53);
  for (const char* bad : {"", "localhost", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:70000",
                          "127.0.0.1:53x", "[::1]:", "[::1", "1.2.3", "[127.0.0.1]:53"}) {
    CHECK_MESSAGE(!parse_resolver(bad), bad);
  }
}

TEST_CASE("table and JSON reports") {
  const std::vector<DomainReport> reports = {
      {"good.example", {}},
      {"bad.example",
       {{Finding::Missing, "_submission._tcp.bad.example.", "SRV", "no SRV record (NXDOMAIN)"},
        {Finding::Timeout, "bad.example.", "MX", "no answer from the resolver"}}},
      {"q\"uote.example", {{Finding::Wrong, "x.", "CNAME", "a\\b\n"}}},
  };
  CHECK(format_table(reports) ==
        "DOMAIN          RESULT   RECORD                             DETAIL\n"
        "good.example    ok\n"
        "bad.example     missing  _submission._tcp.bad.example. SRV  no SRV record (NXDOMAIN)\n"
        "bad.example     timeout  bad.example. MX                    no answer from the resolver\n"
        "q\"uote.example  wrong    x. CNAME                           a\\b\n\n"
        "3 domains checked: 1 ok, 2 with problems\n");
  CHECK(
      format_json(reports) ==
      "{\"checked\":3,\"ok\":1,\"with_problems\":2,\"domains\":[\n"
      "{\"domain\":\"good.example\",\"ok\":true,\"problems\":[]},\n"
      "{\"domain\":\"bad.example\",\"ok\":false,\"problems\":["
      "{\"problem\":\"missing\",\"name\":\"_submission._tcp.bad.example.\",\"type\":\"SRV\","
      "\"detail\":\"no SRV record (NXDOMAIN)\"},"
      "{\"problem\":\"timeout\",\"name\":\"bad.example.\",\"type\":\"MX\","
      "\"detail\":\"no answer from the resolver\"}]},\n"
      "{\"domain\":\"q\\\"uote.example\",\"ok\":false,\"problems\":["
      "{\"problem\":\"wrong\",\"name\":\"x.\",\"type\":\"CNAME\",\"detail\":\"a\\\\b\\u000a\"}]}\n"
      "]}\n");
}
