#include "cutover/net.h"

#include <arpa/inet.h>

#include <string>
#include <vector>

#include <doctest/doctest.h>

using namespace mailconfd::cutover;

TEST_CASE("parse_ip treats IPv4 and IPv4-mapped IPv6 as one client") {
  CHECK(parse_ip("192.0.2.40") == parse_ip("::ffff:192.0.2.40"));
  CHECK(to_string(*parse_ip("::ffff:192.0.2.40")) == "192.0.2.40");
  CHECK(to_string(*parse_ip("2001:DB8:0:0::7")) == "2001:db8::7");
  CHECK(parse_ip("2001:db8::7")->is_v4() == false);
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4 ", "unknown",
                          "2001:db8::7::1", "::ffff:1.2.3.400"}) {
    CHECK_MESSAGE(!parse_ip(bad), bad);
  }
}

TEST_CASE("format_ip writes an IPv4 address as inet_ntop does") {
  // Every value of every byte, with the other bytes at a few values each.
  for (unsigned position = 0; position < 4; ++position) {
    for (unsigned value = 0; value < 256; ++value) {
      for (unsigned other : {0U, 7U, 10U, 99U, 100U, 255U}) {
        IpAddress ip = *parse_ip("::ffff:0.0.0.0");
        std::uint8_t* v4 = ip.bytes.data() + 12;
        for (unsigned i = 0; i < 4; ++i) v4[i] = static_cast<std::uint8_t>(other);
        v4[position] = static_cast<std::uint8_t>(value);
        char expected[INET_ADDRSTRLEN];
        REQUIRE(inet_ntop(AF_INET, v4, expected, sizeof expected) != nullptr);
        char text[kIpTextMax];
        const std::size_t length = format_ip(ip, text);
        REQUIRE(std::string(text, length) == expected);
        REQUIRE(text[length] == '\0');
        REQUIRE(to_string(ip) == expected);
      }
    }
  }
  char text[kIpTextMax];
  CHECK(std::string(text, format_ip(*parse_ip("2001:db8::7"), text)) == "2001:db8::7");
}

TEST_CASE("parse_networks reads Postfix's mynetworks syntax") {
  std::vector<std::string> problems;
  const auto networks = parse_networks(
      "127.0.0.0/8 [::ffff:127.0.0.0]/104, [::1]/128,10.1.2.3 hash:/etc/x", problems);
  REQUIRE(networks.size() == 4);
  CHECK(problems == std::vector<std::string>{"hash:/etc/x"});
  CHECK(networks[0].contains(*parse_ip("127.9.9.9")));
  CHECK(networks[0].contains(*parse_ip("::ffff:127.0.0.1")));
  CHECK_FALSE(networks[0].contains(*parse_ip("128.0.0.1")));
  CHECK(networks[2].contains(*parse_ip("::1")));
  CHECK_FALSE(networks[2].contains(*parse_ip("::2")));
  CHECK(networks[3].contains(*parse_ip("10.1.2.3")));
  CHECK_FALSE(networks[3].contains(*parse_ip("10.1.2.4")));
  CHECK_FALSE(parse_network("10.0.0.0/33"));
  CHECK_FALSE(parse_network("10.0.0.0/"));
  CHECK(parse_network("0.0.0.0/0")->contains(*parse_ip("203.0.113.1")));
  CHECK_FALSE(parse_network("0.0.0.0/0")->contains(*parse_ip("2001:db8::1")));
}
