#include "probe/probe.h"

#include <doctest/doctest.h>

#include "support.h"

using namespace mailconfd;

namespace {

std::vector<std::string> names(const std::vector<probe::Target>& targets) {
  std::vector<std::string> out;
  for (const auto& t : targets) out.push_back(probe::describe(t.server));
  return out;
}

}  // namespace

TEST_CASE("targets lists every advertised server once, host overrides included") {
  const Loaded loaded = testing::load_fixture("two_providers.xml");
  REQUIRE(loaded.ok());
  std::vector<std::string> problems;
  const auto targets = probe::targets(loaded.config, {}, problems);
  CHECK(problems.empty());
  CHECK(names(targets) == std::vector<std::string>{
                              "submission smtp.provider.example:587 STARTTLS",
                              "submission smtp.provider.example:465 TLS",
                              "imap imap.provider.example:993 TLS",
                              "imap imap.provider.example:143 STARTTLS",
                              "pop3 pop.provider.example:995 TLS",
                              "submission smtp.own.example:587 STARTTLS",
                              "submission smtp.own.example:465 TLS",
                              "imap imap.own.example:993 TLS",
                              "imap imap.own.example:143 STARTTLS",
                              "submission smtp.other.example:587 STARTTLS",
                              "imap imap.other.example:993 TLS",
                          });
  CHECK(targets[5].domain == "own.example");
  CHECK(targets[5].provider == "mail.provider.example");
  CHECK(targets[9].domain == "other.example");
  CHECK(targets[9].provider == "other.example");
}

TEST_CASE("targets selects by provider id or hosted domain, any case, U-labels too") {
  const Loaded loaded = testing::load_fixture("two_providers.xml");
  std::vector<std::string> problems;
  CHECK(names(probe::targets(loaded.config, {"Other.Example"}, problems)) ==
        std::vector<std::string>{"submission smtp.other.example:587 STARTTLS",
                                 "imap imap.other.example:993 TLS"});
  const auto own = probe::targets(loaded.config, {"OWN.example"}, problems);
  REQUIRE(own.size() == 5);
  CHECK(own[0].server.host == "smtp.own.example");
  CHECK(own[4].server.host == "pop.provider.example");
  const auto idn = probe::targets(loaded.config, {"bücher.example"}, problems);
  REQUIRE(idn.size() == 5);
  CHECK(idn[0].server.host == "smtp.provider.example");
  CHECK(idn[0].domain == "xn--bcher-kva.example");
  CHECK(problems.empty());
}

TEST_CASE("targets names what is neither a provider nor a hosted domain") {
  const Loaded loaded = testing::load_fixture("two_providers.xml");
  std::vector<std::string> problems;
  CHECK(probe::targets(loaded.config, {"smtp.provider.example", "not a name"}, problems).empty());
  CHECK(problems == std::vector<std::string>{
                        "'smtp.provider.example' is neither a provider id nor a hosted domain",
                        "'not a name' is neither a provider id nor a hosted domain"});
}

TEST_CASE("probe_all reports every target in order, also when none answers") {
  // Port 1 on loopback: nothing listens, the connection is refused at once.
  std::vector<probe::Target> targets;
  for (auto protocol : {Protocol::Smtp, Protocol::Imap, Protocol::Pop3}) {
    targets.push_back({MailServer{protocol, "localhost", 1, Security::Tls, {}}, "p", "d", {}});
  }
  probe::Options options;
  options.connect_to = {{"localhost", 1, "127.0.0.1", 1}};
  options.parallel = 2;
  const auto reports = probe::probe_all(targets, options);
  REQUIRE(reports.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(reports[i].server == targets[i].server);
    CHECK_FALSE(reports[i].ok());
    REQUIRE(reports[i].checks.size() == 1);
    CHECK(reports[i].checks[0].name == "connect");
    CHECK(reports[i].checks[0].detail == "cannot connect to 127.0.0.1:1: Connection refused");
  }
}
