// `mailconfd dns zone` and `dns check` against a real NSD loaded with the generated zones
// and deliberately broken ones.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <doctest/doctest.h>

#include "dns_server.h"
#include "service.h"

using e2e::run_mailconfd;

namespace {

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string zone_head(const std::string& name) {
  return "$ORIGIN " + name + ".\n$TTL 300\n" +
         "@ IN SOA ns.example.net. hostmaster.example.net. 1 3600 600 86400 300\n" +
         "@ IN NS ns.example.net.\n";
}

// Removes every line that contains text.
std::string without_lines(const std::string& zone, const std::string& text) {
  std::istringstream in(zone);
  std::string out;
  for (std::string line; std::getline(in, line);) {
    if (line.find(text) == std::string::npos) out += line + "\n";
  }
  return out;
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

const char* const kDomains[] = {"good.example",      "shared.example", "nosrv.example",
                                "wrongport.example", "cname.example",  "wrongmx.example",
                                "servfail.example",  "timeout.example"};

}  // namespace

TEST_CASE("dns zone prints the shipped dns/example.zone, unknown domains are usage errors") {
  auto r = run_mailconfd({"dns", "zone"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == read(std::string(MAILCONFD_SOURCE_DIR) + "/dns/example.zone"));
  auto one = run_mailconfd({"dns", "zone", "EXAMPLE.org"});
  CHECK(one.exit_code == 0);
  CHECK(
      one.out.starts_with("; example.org: mail client discovery records, provider "
                          "example.net\n$ORIGIN example.org.\n"));
  auto unknown = run_mailconfd({"dns", "zone", "not-hosted.example"});
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.err.starts_with(
      "mailconfd: domain 'not-hosted.example' is not hosted in this configuration\n"));
  auto bad = run_mailconfd({"dns", "check", "--resolver", "localhost"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.starts_with("mailconfd: --resolver 'localhost' is not IP[:PORT]\n"));
  CHECK(run_mailconfd({"dns"}).exit_code == 2);
  CHECK(run_mailconfd({"dns", "frob"}).exit_code == 2);
  CHECK(run_mailconfd({"dns", "check", "--help"}).exit_code == 0);
}

TEST_CASE(
    "dns check against NSD: ok, missing, wrong port, CNAME target, wrong MX, SERVFAIL, "
    "timeout") {
  e2e::TempDir tmp;
  REQUIRE(!tmp.path().empty());
  const std::string config = e2e::fixture("dns.xml");
  const std::string out = tmp.path() + "/out";
  auto zone = run_mailconfd({"dns", "zone", "--config", config, "--out", out});
  REQUIRE(zone.exit_code == 0);
  CHECK(zone.out.empty());
  auto generated = [&](const std::string& domain) { return read(out + "/" + domain + ".zone"); };
  CHECK(read(out + "/example.net.include")
            .find("_submission._tcp   300 IN SRV   10 0 587 "
                  "smtp.example.net.\n") != std::string::npos);

  const std::vector<e2e::Zone> zones = {
      {"example.net",
       zone_head("example.net") +
           "ns A 192.0.2.53\nsmtp A 192.0.2.25\nimap A 192.0.2.143\nimap2 A 192.0.2.144\n"
           "pop A 192.0.2.110\nmx1 A 192.0.2.26\nmx2 A 192.0.2.27\n"
           "autodiscover A 192.0.2.80\nautoconfig A 192.0.2.80\n"},
      // The two ways dns/README.md documents: the domain's own file, or the provider's
      // shared file with relative names. NSD's $INCLUDE takes an unquoted path.
      {"good.example", zone_head("good.example") + "$INCLUDE " + out + "/good.example.zone\n"},
      {"shared.example",
       zone_head("shared.example") + "$INCLUDE " + out + "/example.net.include\n"},
      {"nosrv.example",
       zone_head("nosrv.example") + without_lines(generated("nosrv.example"), "_submission._tcp")},
      {"wrongport.example",
       zone_head("wrongport.example") +
           replaced(generated("wrongport.example"), " 587 smtp", " 2525 smtp")},
      // The per-domain host smtp.cname.example is an alias of the provider's host: what mox
      // avoided by not using the client-settings host name as SRV target (peers.md).
      {"cname.example", zone_head("cname.example") + generated("cname.example") +
                            "smtp.cname.example. IN CNAME smtp.example.net.\n"},
      {"wrongmx.example", zone_head("wrongmx.example") +
                              without_lines(generated("wrongmx.example"), " MX ") +
                              "@ IN MX 10 mx.elsewhere.example.\n@ IN MX 20 mx1.example.net.\n"},
      {"elsewhere.example", zone_head("elsewhere.example") + "mx A 192.0.2.99\n"},
      {"servfail.example", ""},  // configured, no zone file: NSD answers SERVFAIL
      {"timeout.example", zone_head("timeout.example") + generated("timeout.example")},
  };
  e2e::Nsd nsd(tmp.path(), zones);
  REQUIRE_MESSAGE(nsd.ready(), nsd.log());
  e2e::DroppingRelay relay(nsd.port(), "timeout.example");
  REQUIRE(relay.port() != 0);
  const std::string resolver = "127.0.0.1:" + std::to_string(relay.port());

  std::vector<std::string> args = {"dns",        "check",  "--config",  config,
                                   "--resolver", resolver, "--timeout", "300"};
  for (const char* d : kDomains) args.push_back(d);
  const auto started = std::chrono::steady_clock::now();
  auto table = run_mailconfd(args);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  CHECK(table.exit_code == 1);
  CHECK(table.err.empty());
  CHECK(table.out ==
        "DOMAIN             RESULT        RECORD                                    DETAIL\n"
        "good.example       ok\n"
        "shared.example     ok\n"
        "nosrv.example      missing       _submission._tcp.nosrv.example. SRV       no SRV record "
        "(NXDOMAIN)\n"
        "wrongport.example  wrong         _submission._tcp.wrongport.example. SRV   expected 10 0 "
        "587 smtp.example.net.; found 10 0 2525 smtp.example.net.\n"
        "cname.example      cname-target  _submission._tcp.cname.example. SRV       target "
        "smtp.cname.example. is a CNAME (to smtp.example.net.); RFC 2782 forbids aliases as SRV "
        "targets\n"
        "cname.example      cname-target  _submissions._tcp.cname.example. SRV      target "
        "smtp.cname.example. is a CNAME (to smtp.example.net.); RFC 2782 forbids aliases as SRV "
        "targets\n"
        "wrongmx.example    mx-elsewhere  wrongmx.example. MX                       preferred MX "
        "mx.elsewhere.example. is not a provider MX host (mx1.example.net., mx2.example.net.); "
        "Thunderbird's MX-based lookup misses the provider\n"
        "servfail.example   servfail      _autodiscover._tcp.servfail.example. SRV  the resolver "
        "answered SERVFAIL\n"
        "servfail.example   servfail      _imap._tcp.servfail.example. SRV          the resolver "
        "answered SERVFAIL\n"
        "servfail.example   servfail      _imaps._tcp.servfail.example. SRV         the resolver "
        "answered SERVFAIL\n"
        "servfail.example   servfail      _pop3._tcp.servfail.example. SRV          the resolver "
        "answered SERVFAIL\n"
        "servfail.example   servfail      _pop3s._tcp.servfail.example. SRV         the resolver "
        "answered SERVFAIL\n"
        "servfail.example   servfail      _submission._tcp.servfail.example. SRV    the resolver "
        "answered SERVFAIL\n"
        "servfail.example   servfail      _submissions._tcp.servfail.example. SRV   the resolver "
        "answered SERVFAIL\n"
        "servfail.example   servfail      autoconfig.servfail.example. CNAME        the resolver "
        "answered SERVFAIL\n"
        "servfail.example   servfail      servfail.example. MX                      the resolver "
        "answered SERVFAIL\n"
        "timeout.example    timeout       _autodiscover._tcp.timeout.example. SRV   no answer from "
        "the resolver\n"
        "timeout.example    timeout       _imap._tcp.timeout.example. SRV           no answer from "
        "the resolver\n"
        "timeout.example    timeout       _imaps._tcp.timeout.example. SRV          no answer from "
        "the resolver\n"
        "timeout.example    timeout       _pop3._tcp.timeout.example. SRV           no answer from "
        "the resolver\n"
        "timeout.example    timeout       _pop3s._tcp.timeout.example. SRV          no answer from "
        "the resolver\n"
        "timeout.example    timeout       _submission._tcp.timeout.example. SRV     no answer from "
        "the resolver\n"
        "timeout.example    timeout       _submissions._tcp.timeout.example. SRV    no answer from "
        "the resolver\n"
        "timeout.example    timeout       autoconfig.timeout.example. CNAME         no answer from "
        "the resolver\n"
        "timeout.example    timeout       timeout.example. MX                       no answer from "
        "the resolver\n"
        "8 domains checked: 2 ok, 6 with problems\n");
  CHECK(elapsed < std::chrono::seconds(30));  // sanity only; the bound is checked below
  CHECK(relay.dropped() > 0);

  args.push_back("--json");
  auto json = run_mailconfd(args);
  CHECK(json.exit_code == 1);
  CHECK(json.out ==
        "{\"checked\":8,\"ok\":2,\"with_problems\":6,\"domains\":[\n"
        "{\"domain\":\"good.example\",\"ok\":true,\"problems\":[]},\n"
        "{\"domain\":\"shared.example\",\"ok\":true,\"problems\":[]},\n"
        "{\"domain\":\"nosrv.example\",\"ok\":false,\"problems\":[{\"problem\":\"missing\","
        "\"name\":\"_submission._tcp.nosrv.example.\",\"type\":\"SRV\",\"detail\":\"no SRV record "
        "(NXDOMAIN)\"}]},\n"
        "{\"domain\":\"wrongport.example\",\"ok\":false,\"problems\":[{\"problem\":\"wrong\","
        "\"name\":\"_submission._tcp.wrongport.example.\",\"type\":\"SRV\",\"detail\":\"expected "
        "10 0 587 smtp.example.net.; found 10 0 2525 smtp.example.net.\"}]},\n"
        "{\"domain\":\"cname.example\",\"ok\":false,\"problems\":[{\"problem\":\"cname-target\","
        "\"name\":\"_submission._tcp.cname.example.\",\"type\":\"SRV\",\"detail\":\"target "
        "smtp.cname.example. is a CNAME (to smtp.example.net.); RFC 2782 forbids aliases as SRV "
        "targets\"},"
        "{\"problem\":\"cname-target\",\"name\":\"_submissions._tcp.cname.example.\",\"type\":"
        "\"SRV\",\"detail\":\"target smtp.cname.example. is a CNAME (to smtp.example.net.); RFC "
        "2782 forbids aliases as SRV targets\"}]},\n"
        "{\"domain\":\"wrongmx.example\",\"ok\":false,\"problems\":[{\"problem\":\"mx-elsewhere\","
        "\"name\":\"wrongmx.example.\",\"type\":\"MX\",\"detail\":\"preferred MX "
        "mx.elsewhere.example. is not a provider MX host (mx1.example.net., mx2.example.net.); "
        "Thunderbird's MX-based lookup misses the provider\"}]},\n"
        "{\"domain\":\"servfail.example\",\"ok\":false,\"problems\":[{\"problem\":\"servfail\","
        "\"name\":\"_autodiscover._tcp.servfail.example.\",\"type\":\"SRV\",\"detail\":\"the "
        "resolver answered SERVFAIL\"},"
        "{\"problem\":\"servfail\",\"name\":\"_imap._tcp.servfail.example.\",\"type\":\"SRV\","
        "\"detail\":\"the resolver answered SERVFAIL\"},"
        "{\"problem\":\"servfail\",\"name\":\"_imaps._tcp.servfail.example.\",\"type\":\"SRV\","
        "\"detail\":\"the resolver answered SERVFAIL\"},"
        "{\"problem\":\"servfail\",\"name\":\"_pop3._tcp.servfail.example.\",\"type\":\"SRV\","
        "\"detail\":\"the resolver answered SERVFAIL\"},"
        "{\"problem\":\"servfail\",\"name\":\"_pop3s._tcp.servfail.example.\",\"type\":\"SRV\","
        "\"detail\":\"the resolver answered SERVFAIL\"},"
        "{\"problem\":\"servfail\",\"name\":\"_submission._tcp.servfail.example.\",\"type\":"
        "\"SRV\",\"detail\":\"the resolver answered SERVFAIL\"},"
        "{\"problem\":\"servfail\",\"name\":\"_submissions._tcp.servfail.example.\",\"type\":"
        "\"SRV\",\"detail\":\"the resolver answered SERVFAIL\"},"
        "{\"problem\":\"servfail\",\"name\":\"autoconfig.servfail.example.\",\"type\":\"CNAME\","
        "\"detail\":\"the resolver answered SERVFAIL\"},"
        "{\"problem\":\"servfail\",\"name\":\"servfail.example.\",\"type\":\"MX\",\"detail\":\"the "
        "resolver answered SERVFAIL\"}]},\n"
        "{\"domain\":\"timeout.example\",\"ok\":false,\"problems\":[{\"problem\":\"timeout\","
        "\"name\":\"_autodiscover._tcp.timeout.example.\",\"type\":\"SRV\",\"detail\":\"no answer "
        "from the resolver\"},"
        "{\"problem\":\"timeout\",\"name\":\"_imap._tcp.timeout.example.\",\"type\":\"SRV\","
        "\"detail\":\"no answer from the resolver\"},"
        "{\"problem\":\"timeout\",\"name\":\"_imaps._tcp.timeout.example.\",\"type\":\"SRV\","
        "\"detail\":\"no answer from the resolver\"},"
        "{\"problem\":\"timeout\",\"name\":\"_pop3._tcp.timeout.example.\",\"type\":\"SRV\","
        "\"detail\":\"no answer from the resolver\"},"
        "{\"problem\":\"timeout\",\"name\":\"_pop3s._tcp.timeout.example.\",\"type\":\"SRV\","
        "\"detail\":\"no answer from the resolver\"},"
        "{\"problem\":\"timeout\",\"name\":\"_submission._tcp.timeout.example.\",\"type\":\"SRV\","
        "\"detail\":\"no answer from the resolver\"},"
        "{\"problem\":\"timeout\",\"name\":\"_submissions._tcp.timeout.example.\",\"type\":\"SRV\","
        "\"detail\":\"no answer from the resolver\"},"
        "{\"problem\":\"timeout\",\"name\":\"autoconfig.timeout.example.\",\"type\":\"CNAME\","
        "\"detail\":\"no answer from the resolver\"},"
        "{\"problem\":\"timeout\",\"name\":\"timeout.example.\",\"type\":\"MX\",\"detail\":\"no "
        "answer from the resolver\"}]}\n"
        "]}\n");

  // The timeout is real and bounded: 300 ms, then 600 ms for the second try (the default
  // would take 6 s), and a silent domain does not hold up the others.
  const auto silent_start = std::chrono::steady_clock::now();
  auto silent = run_mailconfd({"dns", "check", "--config", config, "--resolver", resolver,
                               "--timeout", "300", "timeout.example"});
  const auto silent_elapsed = std::chrono::steady_clock::now() - silent_start;
  CHECK(silent.exit_code == 1);
  CHECK(silent.out.find("timeout.example  timeout  timeout.example. MX ") != std::string::npos);
  CHECK(silent_elapsed >= std::chrono::milliseconds(850));
  CHECK(silent_elapsed < std::chrono::seconds(5));

  auto good = run_mailconfd({"dns", "check", "--config", config, "--resolver", resolver,
                             "good.example", "shared.example"});
  CHECK(good.exit_code == 0);
  CHECK(good.out ==
        "DOMAIN          RESULT  RECORD  DETAIL\n"
        "good.example    ok\n"
        "shared.example  ok\n"
        "2 domains checked: 2 ok, 0 with problems\n");
}

// named-checkzone (BIND) on every zone file `dns zone` writes, each completed with SOA and NS
// (and, for the provider's own domain, the real address records of its autoconfig and
// autodiscover hosts), and on the PROVIDER.include file $INCLUDEd into a customer's zone.
TEST_CASE("every zone dns zone writes passes named-checkzone, the provider's own domain too") {
  e2e::TempDir tmp;
  REQUIRE(!tmp.path().empty());
  struct Source {
    std::string config;  // empty: the built-in example
    std::string name;
  } sources[] = {
      {"", "builtin"}, {e2e::fixture("dns.xml"), "dns"}, {e2e::fixture("own_domain.xml"), "own"}};
  int checked = 0;
  for (const Source& source : sources) {
    const std::string out = tmp.path() + "/" + source.name;
    std::vector<std::string> argv{"dns", "zone", "--out", out};
    if (!source.config.empty()) argv.insert(argv.end(), {"--config", source.config});
    REQUIRE(run_mailconfd(argv).exit_code == 0);
    for (const auto& entry : std::filesystem::directory_iterator(out)) {
      const std::string file = entry.path().filename().string();
      const bool include = file.ends_with(".include");
      const std::string domain = include ? "customer-of-" + file.substr(0, file.size() - 8)
                                         : file.substr(0, file.size() - 5);
      std::string zone = zone_head(domain);
      if (domain == "example.net") {
        for (const char* host : {"autoconfig", "autodiscover", "ns", "mx", "mx1", "mx2", "imap",
                                 "imap2", "pop", "smtp"}) {
          zone += std::string(host) + " 300 IN A 192.0.2.80\n";
        }
      }
      zone += include ? "$INCLUDE " + entry.path().string() + "\n" : read(entry.path().string());
      const std::string full = tmp.path() + "/" + source.name + "-" + domain + ".db";
      std::ofstream(full) << zone;
      const auto r = e2e::run_command({"named-checkzone", "-k", "fail", "-n", "fail", "-m", "fail",
                                       "-M", "fail", "-S", "fail", "-r", "fail", domain, full});
      CHECK_MESSAGE(r.exit_code == 0, source.name, " ", file, "\n", zone, "\n", r.out, r.err);
      ++checked;
    }
  }
  CHECK(checked >= 15);
  // The provider's own zone has no CNAME at all: its names keep their address records.
  const std::string own = read(tmp.path() + "/own/example.net.zone");
  CHECK(own.find(" CNAME ") == std::string::npos);
  CHECK(own.find("; no autoconfig/autodiscover CNAME: the name is its own target here\n") !=
        std::string::npos);
  CHECK(read(tmp.path() + "/own/customer.example.zone")
            .find("autoconfig         3600 IN CNAME autoconfig.example.net.\n") !=
        std::string::npos);
  CHECK(
      read(tmp.path() + "/own/example.net.include")
          .find("; except example.net: its CNAME would point at itself; use example.net.zone\n") !=
      std::string::npos);
}
