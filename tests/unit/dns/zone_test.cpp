#include "dns/zone.h"

#include <doctest/doctest.h>

#include "config/config_file.h"
#include "example_config.h"
#include "support.h"

using namespace mailconfd;

namespace {

std::string all_zones(const Config& config) {
  const dns::Zones zones(config);
  std::string out;
  for (std::string_view d : config.domains.sorted()) out += zones.zone(d) + "\n";
  return out;
}

std::string problems(const Loaded& loaded) {
  std::string out;
  for (const auto& p : loaded.problems) out += p + "\n";
  return out;
}

}  // namespace

TEST_CASE("dns/example.zone is what `dns zone` prints for the shipped example") {
  const Loaded loaded = load_config_text(example_config(), "builtin", ".");
  REQUIRE(loaded.ok());
  const dns::Zones zones(loaded.config);
  const std::string actual = zones.zone("example.com") + "\n" + zones.zone("example.org");
  // Regenerate with MAILCONFD_UPDATE_GOLDEN=1 after an intended change, and review the diff.
  CHECK(actual == testing::golden("../../dns/example.zone", actual));
}

TEST_CASE("zones for every kind of server, host overrides and two providers, byte for byte") {
  const Loaded loaded = testing::load_fixture("dns.xml");
  REQUIRE_MESSAGE(loaded.ok(), problems(loaded));
  const std::string actual = all_zones(loaded.config);
  CHECK(actual == testing::golden("dns/fixture.zone", actual));
  const dns::Zones zones(loaded.config);
  const std::string shared = zones.shared(0);
  CHECK(shared == testing::golden("dns/fixture-shared.include", shared));
}

TEST_CASE("SRV priorities: implicit TLS first, IMAP before POP3, not offered as 0 0 0 .") {
  const Loaded loaded = testing::load_fixture("dns.xml");
  REQUIRE(loaded.ok());
  const auto records = dns::records(loaded.config, *loaded.config.domains.find("good.example"));
  auto srv = [&](std::string_view owner) {
    std::vector<dns::Record> out;
    for (const auto& r : records)
      if (r.owner == owner && r.type == dns::RecordType::Srv) out.push_back(r);
    return out;
  };
  REQUIRE(srv("_submissions._tcp").size() == 1);
  REQUIRE(srv("_submission._tcp").size() == 1);
  CHECK(srv("_submissions._tcp")[0].priority < srv("_submission._tcp")[0].priority);
  CHECK(srv("_submission._tcp")[0].port == 587);
  CHECK(srv("_submissions._tcp")[0].port == 465);
  REQUIRE(srv("_imaps._tcp").size() == 2);
  CHECK(srv("_imaps._tcp")[0].priority < srv("_imap._tcp")[0].priority);
  CHECK(srv("_imap._tcp")[0].priority < srv("_pop3s._tcp")[0].priority);
  CHECK(srv("_imap._tcp")[0].port == 143);  // RFC 6186: _imap is the STARTTLS service
  REQUIRE(srv("_pop3._tcp").size() == 1);
  CHECK(srv("_pop3._tcp")[0] == dns::Record{"_pop3._tcp", dns::RecordType::Srv, 0, 0, 0, "."});
  REQUIRE(srv("_autodiscover._tcp").size() == 1);
  CHECK(srv("_autodiscover._tcp")[0].target == "autodiscover.example.net");
  CHECK(srv("_autodiscover._tcp")[0].port == 443);
}

TEST_CASE("a domain's host override replaces the SRV targets of that protocol only") {
  const Loaded loaded = testing::load_fixture("dns.xml");
  REQUIRE(loaded.ok());
  for (const auto& r : dns::records(loaded.config, *loaded.config.domains.find("cname.example"))) {
    if (r.owner == "_submission._tcp" || r.owner == "_submissions._tcp") {
      CHECK(r.target == "smtp.cname.example");
    }
    if (r.owner == "_imaps._tcp" && r.priority == 0) CHECK(r.target == "imap.example.net");
  }
}

TEST_CASE("without <dns>: TTL 3600, no CNAME, no MX") {
  const Loaded loaded = testing::load_text(testing::minimal_config());
  REQUIRE(loaded.ok());
  const std::string zone = dns::Zones(loaded.config).zone("customer.example");
  CHECK(zone.find(" 3600 IN SRV") != std::string::npos);
  CHECK(zone.find("CNAME") == std::string::npos);
  CHECK(zone.find(" MX ") == std::string::npos);
}

TEST_CASE("<dns> problems are reported with FILE:LINE:COLUMN") {
  const Loaded loaded = testing::load_text(
      testing::minimal_config("<dns ttl=\"5\" autoconfig-cname=\"not a host\" colour=\"red\">\n"
                              "<mx host=\"mx.provider.example\"/>\n"
                              "<mx host=\"MX.provider.example\" preference=\"70000\"/>\n"
                              "<mx host=\"mx.provider.example\"/>\n"
                              "<mx/>\n"
                              "<cname/>\n"
                              "</dns>\n"
                              "<dns/>\n"));
  CHECK(problems(loaded) ==
        "test.xml:13:1: <dns> may appear only once in <provider>\n"
        "test.xml:6:1: <dns>: unknown attribute 'colour'\n"
        "test.xml:11:1: <cname>: unknown element inside <dns>\n"
        "test.xml:6:1: ttl must be a number of seconds from 60 to 604800\n"
        "test.xml:6:1: autoconfig-cname 'not a host' is not a host name\n"
        "test.xml:8:1: preference must be a number from 0 to 65535\n"
        "test.xml:9:1: <mx> host 'mx.provider.example' is listed twice\n"
        "test.xml:10:1: <mx> needs a host\n");
}

TEST_CASE("<dns> values are read into the model") {
  const Loaded loaded = testing::load_fixture("dns.xml");
  REQUIRE(loaded.ok());
  const DnsOptions& dns = loaded.config.providers[0].dns;
  CHECK(dns.ttl == 300);
  CHECK(dns.autoconfig_cname == "autoconfig.example.net");
  CHECK(dns.autodiscover_cname.empty());
  REQUIRE(dns.mx.size() == 2);
  CHECK(dns.mx[0] == MxHost{"mx2.example.net", 20});
  CHECK(dns.mx[1] == MxHost{"mx1.example.net", 10});
}
