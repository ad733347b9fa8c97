#include "source/rows.h"

#include <doctest/doctest.h>

#include "app.h"
#include "core/client_settings.h"
#include "source/providers_fixture.h"
#include "support.h"

using namespace mailconfd;
using source::DomainRow;
using source::LoginRow;
using source::Rows;

namespace {

Config config() { return testing::two_providers(); }

source::Built build(const Config& c, const Rows& rows, const HostedDomains* previous = nullptr) {
  return source::build_domains(c, rows, "postgresql", std::chrono::system_clock::now(), previous);
}

}  // namespace

TEST_CASE("build_domains serves good rows with their provider, host set and login") {
  const Config c = config();
  Rows rows;
  rows.domains = {{"Customer.Example", "", "", "", "", "", ""},
                  {"pop.example", "", "", "pop3-only", "", "", ""},
                  {"own.example", "two.example", "local-part", "", "imap.own.example", "", ""},
                  {"ALL", "", "", "", "", "", ""}};
  rows.logins = {{"Alice@customer.example", "web12p3"}, {"bob@unserved.example", "x1"}};
  const source::Built built = build(c, rows);
  CHECK(built.skipped.empty());
  const HostedDomains& d = *built.domains;
  CHECK(d.origin == "postgresql");
  CHECK(d.size() == 4);  // file.example from the file, then three rows (ALL is no domain)
  CHECK(d.find("all") == nullptr);
  const DomainEntry* file = d.find("file.example");
  REQUIRE(file != nullptr);
  CHECK(d.host_set(*file).imap_host == "imap.file.example");
  const DomainEntry* customer = d.find("customer.example");
  REQUIRE(customer != nullptr);
  CHECK(customer->provider == 0);
  CHECK(customer->hosts == 0);
  const DomainEntry* pop = d.find("pop.example");
  REQUIRE(pop != nullptr);
  CHECK(d.host_set(*pop).incoming == Incoming::Pop3Only);
  const ClientSettings pop_settings = resolve(c.providers[0], d.host_set(*pop));
  REQUIRE(pop_settings.incoming.size() == 1);
  CHECK(pop_settings.incoming[0].protocol == Protocol::Pop3);
  const DomainEntry* own = d.find("own.example");
  REQUIRE(own != nullptr);
  CHECK(own->provider == 1);
  CHECK(d.host_set(*own).login == LoginForm::LocalPart);
  CHECK(d.host_set(*own).imap_host == "imap.own.example");
  CHECK(d.logins.size() == 1);
  CHECK(d.logins.find("alice@customer.example") == std::optional<std::string_view>("web12p3"));
}

TEST_CASE("build_domains skips every row the policy or the form refuses, naming its key") {
  const Config c = config();
  Rows rows;
  rows.domains = {
      {"port25.example", "", "", "", "", "", "smtp.evil.example:25"},
      {"plain.example", "", "", "plaintext", "", "", ""},
      {"sap.example", "", "smtp-after-pop", "", "", "", ""},
      {"<b>x</b>.example", "", "", "", "", "", ""},
      {"big.example", "", "", "", std::string(10240, 'a'), "", ""},
      {"nowhere.example", "three.example", "", "", "", "", ""},
      {"pop.example", "two.example", "", "pop3-only", "", "", ""},
      {"file.example", "", "", "", "", "", ""},
      {"twice.example", "", "", "", "", "", ""},
      {"twice.example", "", "", "", "", "", ""},
      {"bad\x01key.example", "", "", "", "", "", ""},
  };
  rows.logins = {{"alice@twice.example", "<b>alice</b>"},
                 {"not an address", "x"},
                 {"bob@twice.example", "web1"},
                 {"bob@twice.example", "web2"}};
  const source::Built built = build(c, rows);
  std::vector<std::string> got;
  for (const auto& r : built.skipped) got.push_back(r.table + " " + r.key + ": " + r.reason);
  const std::vector<std::string> want = {
      "domain port25.example: smtp_host 'smtp.evil.example:25' is not a host name (ports and "
      "security come from the configuration file)",
      "domain plain.example: incoming 'plaintext' is not imap-first, pop3-first, imap-only or "
      "pop3-only",
      "domain sap.example: login 'smtp-after-pop' is not address or local-part",
      "domain <b>x</b>.example: not a domain name",
      "domain big.example: a value is longer than 255 bytes",
      "domain nowhere.example: provider 'three.example' is not a <provider> id",
      "domain pop.example: incoming pop3-only: provider 'two.example' has no such server",
      "domain file.example: already listed in the configuration file",
      "domain twice.example: listed twice",
      "domain bad?key.example: not a domain name",
      "mailbox alice@twice.example: login name must be 1 to 255 letters, digits and . - _ + @ =",
      "mailbox not an address: not an address",
      "mailbox bob@twice.example: listed twice",
  };
  CHECK(got == want);
  CHECK(built.domains->size() == 2);  // file.example and twice.example
  CHECK(built.domains->logins.find("bob@twice.example") == std::optional<std::string_view>("web1"));
}

TEST_CASE("build_domains keeps the host set indices of the part it replaces") {
  const Config c = config();
  Rows first;
  first.domains = {{"a.example", "", "", "", "imap.a.example", "", ""},
                   {"b.example", "", "", "", "imap.b.example", "", ""}};
  const source::Built one = build(c, first);
  const std::uint32_t b_hosts = one.domains->find("b.example")->hosts;
  Rows second;  // a.example gone, c.example new
  second.domains = {{"b.example", "", "", "", "imap.b.example", "", ""},
                    {"c.example", "", "", "", "imap.c.example", "", ""}};
  const source::Built two = build(c, second, one.domains.get());
  CHECK(two.domains->find("b.example")->hosts == b_hosts);
  CHECK(two.domains->host_set(*two.domains->find("c.example")).imap_host == "imap.c.example");
  CHECK(two.domains->host_sets[0].size() == one.domains->host_sets[0].size() + 1);
}

TEST_CASE("with_domains replaces the domain part and renders only new host sets") {
  Config c = config();
  Rows first;
  first.domains = {{"a.example", "", "", "", "imap.a.example", "", ""}};
  const source::Built one = build(c, first);
  const Config copy = c;
  auto app = build_app(std::move(c), one.domains, nullptr);
  Rows second;
  second.domains = {{"a.example", "", "", "", "imap.a.example", "", ""},
                    {"n.example", "", "", "", "imap.n.example", "", ""}};
  second.logins = {{"alice@a.example", "web12p3"}};
  const source::Built two = build(copy, second, app->domains.get());
  auto next = with_domains(*app, two.domains);
  CHECK(next->config == app->config);
  CHECK(next->setup == app->setup);
  CHECK(next->profiles == app->profiles);  // no host set changed its meaning
  const std::uint32_t a = next->domains->find("a.example")->hosts;
  const std::uint32_t n = next->domains->find("n.example")->hosts;
  CHECK((*next->documents)[0][a] == (*app->documents)[0][a]);  // shared, not rendered again
  CHECK((*next->documents)[0].size() == (*app->documents)[0].size() + 1);
  CHECK((*next->documents)[0][n] != nullptr);
  auto alice = parse_email("alice@a.example");
  REQUIRE(alice);
  CHECK(login_for(*next, *next->domains->find("a.example"), *alice) == "web12p3");
  CHECK(login_for(*app, *app->domains->find("a.example"), *alice) == "alice@a.example");
}
