#include "config/config_file.h"

#include <algorithm>
#include <fstream>

#include <doctest/doctest.h>

#include "example_config.h"
#include "render/setup.h"
#include "support.h"

using namespace mailconfd;

namespace {

bool has_problem(const Loaded& loaded, const std::string& text) {
  return std::any_of(loaded.problems.begin(), loaded.problems.end(),
                     [&](const std::string& p) { return p == text; });
}

std::string all(const Loaded& loaded) {
  std::string out;
  for (const auto& p : loaded.problems) out += p + "\n";
  return out;
}

}  // namespace

TEST_CASE("the built-in example is the shipped deploy/example/mailconfd.xml and is valid") {
  const Loaded shipped = load_config_file(testing::source_path("deploy/example/mailconfd.xml"));
  CHECK_MESSAGE(shipped.ok(), all(shipped));
  const Loaded builtin = load_config_text(example_config(), "builtin", ".");
  CHECK(builtin.ok());
  CHECK(builtin.config.providers.size() == 1);
  CHECK(builtin.config.providers[0].id == "example.net");
  CHECK(builtin.config.domains.size() == 2);
  CHECK(builtin.config.domains.find("example.com") != nullptr);
  CHECK(builtin.config.domains.find("example.org") != nullptr);
  CHECK(builtin.config.server.listen == "127.0.0.1:8080");
}

TEST_CASE("a valid config is read into the model") {
  const Loaded loaded = testing::load_fixture("two_providers.xml");
  REQUIRE_MESSAGE(loaded.ok(), all(loaded));
  const Config& config = loaded.config;
  REQUIRE(config.providers.size() == 2);
  const Provider& p = config.providers[0];
  CHECK(p.id == "mail.provider.example");
  CHECK(p.display_name == "Provider Mail");
  CHECK(p.short_name == "ProvMail");
  CHECK(p.login == LoginForm::Address);
  CHECK(p.incoming.size() == 3);
  CHECK(p.outgoing.size() == 2);
  CHECK(p.autodiscover_host == "autodiscover.mail.provider.example");
  CHECK(config.providers[1].login == LoginForm::LocalPart);
  CHECK(config.providers[1].incoming[0].auth == Auth::PasswordEncrypted);
}

TEST_CASE("domains are case-folded, internationalised ones stored as A-labels") {
  const Loaded loaded = testing::load_fixture("two_providers.xml");
  REQUIRE(loaded.ok());
  const DomainTable& d = loaded.config.domains;
  CHECK(d.find("customer.example") != nullptr);
  CHECK(d.find("Customer.Example") == nullptr);  // lookups take normalized names
  CHECK(d.find("xn--bcher-kva.example") != nullptr);
  CHECK(d.find("other.example")->provider == 1);
  CHECK(d.size() == 7);
}

TEST_CASE("domain-list files: one per line, # comments, blank lines, case-folded") {
  const Loaded loaded = testing::load_fixture("two_providers.xml");
  REQUIRE(loaded.ok());
  const DomainTable& d = loaded.config.domains;
  for (const char* name : {"list-one.example", "list-two.example", "list-three.example"}) {
    CHECK_MESSAGE(d.find(name) != nullptr, name);
    CHECK(d.find(name)->provider == 0);
  }
}

TEST_CASE("per-domain host overrides get their own host set") {
  const Loaded loaded = testing::load_fixture("two_providers.xml");
  REQUIRE(loaded.ok());
  const DomainEntry* own = loaded.config.domains.find("own.example");
  REQUIRE(own != nullptr);
  CHECK(own->hosts == 1);
  const HostOverride& hosts = loaded.config.providers[0].overrides[own->hosts];
  CHECK(hosts.imap_host == "imap.own.example");
  CHECK(hosts.smtp_host == "smtp.own.example");
  CHECK(hosts.pop3_host.empty());
  CHECK(loaded.config.domains.find("customer.example")->hosts == 0);
}

TEST_CASE("every policy refusal is reported at once with file, line and column") {
  const std::string file = testing::source_path("tests/fixtures/refused.xml");
  const Loaded loaded = load_config_file(file);
  CHECK_FALSE(loaded.ok());
  const std::string expected[] = {
      file +
          ":4:5: <incoming> security must be tls or starttls: passwords are never sent without TLS",
      file +
          ":5:5: <outgoing> port 25 is for server-to-server relay, never for clients; use 587 with "
          "starttls",
      file +
          ":6:5: <outgoing> auth 'smtp-after-pop' is refused: every client must log in with its "
          "password (SMTP-Auth)",
      file +
          ":7:5: <outgoing> security must be tls or starttls: passwords are never sent without TLS",
      file +
          ":8:5: <outgoing> auth 'client-IP-address' is refused: every client must log in with its "
          "password (SMTP-Auth)",
      file +
          ":9:5: <outgoing> auth 'none' is refused: every client must log in with its password "
          "(SMTP-Auth)",
      file + ":10:5: <outgoing> must be submission on 587 with starttls (or 465 with tls)",
      file + ":3:3: <provider> needs an <outgoing> on port 587 with starttls",
      file + ":16:5: domain 'customer.example' is already served by provider 'provider.example' (" +
          file + ":11); a domain can have only one provider",
  };
  for (const auto& e : expected) CHECK_MESSAGE(has_problem(loaded, e), e, "\ngot:\n", all(loaded));
  CHECK(loaded.problems.size() == std::size(expected));
}

TEST_CASE("each refused outgoing setting is refused on its own") {
  struct Case {
    const char* outgoing;
    const char* message;
  } cases[] = {
      {R"(<outgoing host="smtp.provider.example" port="25" security="starttls"/>)",
       "port 25 is for server-to-server relay"},
      {R"(<outgoing host="smtp.provider.example" port="587" security="plain"/>)",
       "security must be tls or starttls"},
      {R"(<outgoing host="smtp.provider.example" port="587" security="starttls" auth="none"/>)",
       "auth 'none' is refused"},
      {R"(<outgoing host="smtp.provider.example" port="587" security="starttls" auth="smtp-after-pop"/>)",
       "auth 'smtp-after-pop' is refused"},
      {R"(<outgoing host="smtp.provider.example" port="587" security="starttls" auth="client-IP-address"/>)",
       "auth 'client-IP-address' is refused"},
      {R"(<outgoing host="smtp.provider.example" port="2525" security="starttls"/>)",
       "must be submission on 587 with starttls (or 465 with tls)"},
      {R"(<outgoing host="smtp.provider.example" port="465" security="starttls"/>)",
       "must be submission on 587 with starttls (or 465 with tls)"},
      {R"(<outgoing protocol="imap" host="smtp.provider.example" port="587" security="starttls"/>)",
       "protocol must be smtp"},
  };
  for (const auto& c : cases) {
    const Loaded loaded = testing::load_text(testing::minimal_config(c.outgoing));
    CHECK_MESSAGE(all(loaded).find(c.message) != std::string::npos, c.outgoing, "\n", all(loaded));
  }
}

TEST_CASE("a provider without 587+STARTTLS submission is refused") {
  const std::string text =
      "<mailconfd><provider id=\"p.example\">"
      "<incoming protocol=\"imap\" host=\"imap.p.example\" port=\"993\" security=\"tls\"/>"
      "<outgoing host=\"smtp.p.example\" port=\"465\" security=\"tls\"/>"
      "<domain>c.example</domain></provider></mailconfd>";
  const Loaded loaded = testing::load_text(text);
  CHECK(has_problem(loaded,
                    "test.xml:1:12: <provider> needs an <outgoing> on port 587 with starttls"));
}

TEST_CASE("plaintext incoming servers are refused") {
  const Loaded loaded = testing::load_text(testing::minimal_config(
      R"(<incoming protocol="imap" host="imap.provider.example" port="143" security="plain"/>)"));
  CHECK(all(loaded).find("<incoming> security must be tls or starttls") != std::string::npos);
}

TEST_CASE("structural mistakes are named") {
  struct Case {
    std::string text;
    std::string problem;
  } cases[] = {
      {"<mailconfd><provider id=\"p.example\"",
       "test.xml:1:35: not well-formed XML: Error parsing start element tag"},
      {"<config/>", "test.xml:1:1: the root element must be <mailconfd>"},
      {"<mailconfd/>", "test.xml:1:1: no <provider> is configured"},
      {testing::minimal_config("<domian>x.example</domian>"),
       "test.xml:6:1: <domian>: unknown element inside <provider>"},
      {testing::minimal_config("<domain>not a domain</domain>"),
       "test.xml:6:1: <domain> 'not a domain' is not a domain name"},
      {testing::minimal_config("<domain>customer.example</domain>"),
       "test.xml:6:1: domain 'customer.example' is listed twice (first at test.xml:5)"},
      {testing::minimal_config("<domains file=\"missing.txt\"/>"),
       "test.xml:6:1: cannot read domain list '" + testing::source_path("tests/fixtures") +
           "/missing.txt': No such file or directory"},
      {testing::minimal_config("<domains file=\"../fixtures\"/>"),
       "test.xml:6:1: cannot read domain list '" + testing::source_path("tests/fixtures") +
           "/../fixtures': Is a directory"},
      {testing::minimal_config("", "<server listen=\"nowhere\"/>"),
       "test.xml:2:1: listen 'nowhere' is not HOST:PORT"},
      {testing::minimal_config("", "<server threads=\"many\"/>"),
       "test.xml:2:1: threads must be a number from 0 (one per core) to 256"},
      {testing::minimal_config("", "<server><limits header-timeout=\"soon\"/></server>"),
       "test.xml:2:9: header-timeout must be a duration of at least 100ms, like 10s or 500ms"},
      {"<!DOCTYPE mailconfd [<!ENTITY x \"y\">]>\n" + testing::minimal_config(),
       "test.xml:1:1: a DOCTYPE is not allowed"},
      {"<mailconfd><provider id=\"nodot\"><incoming protocol=\"imap\" host=\"imap.p.example\" "
       "port=\"993\" security=\"tls\"/>"
       "<outgoing host=\"smtp.p.example\" port=\"587\" "
       "security=\"starttls\"/></provider></mailconfd>",
       "test.xml:1:12: <provider> id 'nodot' must be a host name such as provider.example "
       "(Thunderbird requires it)"},
  };
  for (const auto& c : cases) {
    const Loaded loaded = testing::load_text(c.text);
    CHECK_MESSAGE(has_problem(loaded, c.problem), c.text, "\n--- got:\n", all(loaded));
  }
}

TEST_CASE("bad lines in a domain list are reported with their own file and line") {
  const Loaded loaded =
      testing::load_text(testing::minimal_config("<domains file=\"bad_domains.txt\"/>"));
  const std::string list = testing::source_path("tests/fixtures") + "/bad_domains.txt";
  CHECK_MESSAGE(has_problem(loaded, list + ":2:3: 'bad domain!' is not a domain name"),
                all(loaded));
  CHECK_MESSAGE(has_problem(loaded, list + ":3:1: domain 'customer.example' is listed twice "
                                           "(first at test.xml:5)"),
                all(loaded));
  CHECK(loaded.problems.size() == 2);
}

TEST_CASE("a domain listed twice names both places, across lists and providers") {
  const std::string dir = testing::source_path("tests/fixtures");
  // Within one provider: "listed twice", first place in the same list.
  Loaded loaded =
      testing::load_text(testing::minimal_config("<domains file=\"twice_domains.txt\"/>"));
  CHECK_MESSAGE(all(loaded) == dir +
                                   "/twice_domains.txt:4:1: domain 'twice.example' is listed "
                                   "twice (first at " +
                                   dir + "/twice_domains.txt:2)\n",
                all(loaded));
  // Across providers: both lists named, each with its line.
  loaded = testing::load_text(
      "<mailconfd>\n"
      "<provider id=\"one.example\">\n"
      "<incoming protocol=\"imap\" host=\"imap.one.example\" port=\"993\" security=\"tls\"/>\n"
      "<outgoing host=\"smtp.one.example\" port=\"587\" security=\"starttls\"/>\n"
      "<domains file=\"domains.txt\"/>\n"
      "</provider>\n"
      "<provider id=\"two.example\">\n"
      "<incoming protocol=\"imap\" host=\"imap.two.example\" port=\"993\" security=\"tls\"/>\n"
      "<outgoing host=\"smtp.two.example\" port=\"587\" security=\"starttls\"/>\n"
      "<domain>bom.example</domain>\n"
      "<domains file=\"bom_domains.txt\"/>\n"
      "</provider>\n"
      "</mailconfd>\n");
  CHECK(loaded.ok() == false);
  CHECK_MESSAGE(has_problem(loaded, dir + "/bom_domains.txt:1:4: domain 'bom.example' is listed "
                                          "twice (first at test.xml:10)"),
                all(loaded));
}

TEST_CASE("a domain list with a byte-order mark is read, a Latin-1 one is named as such") {
  Loaded loaded =
      testing::load_text(testing::minimal_config("<domains file=\"bom_domains.txt\"/>"));
  REQUIRE_MESSAGE(loaded.ok(), all(loaded));
  CHECK(loaded.config.domains.find("bom.example") != nullptr);
  CHECK(loaded.config.domains.find("plain.example") != nullptr);
  loaded = testing::load_text(testing::minimal_config("<domains file=\"latin1_domains.txt\"/>"));
  CHECK_MESSAGE(all(loaded) == testing::source_path("tests/fixtures") +
                                   "/latin1_domains.txt:3:2: not valid UTF-8 (save the file as "
                                   "UTF-8)\n",
                all(loaded));
}

TEST_CASE("every element that may appear once is refused the second time") {
  struct Case {
    std::string text;
    std::string problem;
  } cases[] = {
      {testing::minimal_config("<login>address</login>\n<login>local-part</login>"),
       "test.xml:7:1: <login> may appear only once in <provider>"},
      {testing::minimal_config("<display-name>A</display-name>\n<display-name>B</display-name>"),
       "test.xml:7:1: <display-name> may appear only once in <provider>"},
      {testing::minimal_config("<short-name>A</short-name>\n<short-name>B</short-name>"),
       "test.xml:7:1: <short-name> may appear only once in <provider>"},
      {testing::minimal_config("<notice><text lang=\"en\">a</text></notice>\n"
                               "<notice><text lang=\"en\">b</text></notice>"),
       "test.xml:7:1: <notice> may appear only once in <provider>"},
      {testing::minimal_config("<autodiscover host=\"ad.provider.example\"/>\n"
                               "<autodiscover http-redirect=\"off\"/>"),
       "test.xml:7:1: <autodiscover> may appear only once in <provider>"},
      {testing::minimal_config("<documentation url=\"https://provider.example/\"/>\n"
                               "<documentation url=\"https://provider.example/help\"/>"),
       "test.xml:7:1: <documentation> may appear only once in <provider>"},
      {testing::minimal_config("<documentation url=\"https://provider.example/\">\n"
                               "<text lang=\"de\">Hilfe</text>\n<text lang=\"de\">Mehr</text>"
                               "</documentation>"),
       "test.xml:8:1: <text lang=\"de\"> may appear only once in <documentation>"},
      {testing::minimal_config("<dns ttl=\"60\"/>\n<dns ttl=\"120\"/>"),
       "test.xml:7:1: <dns> may appear only once in <provider>"},
      {testing::minimal_config("",
                               "<server><limits max-headers=\"10\"/>\n"
                               "<limits max-headers=\"20\"/></server>\n"),
       "test.xml:3:1: <limits> may appear only once in <server>"},
      {testing::minimal_config("",
                               "<server><metrics listen=\"127.0.0.1:9187\"/>\n"
                               "<metrics listen=\"127.0.0.1:9188\"/></server>\n"),
       "test.xml:3:1: <metrics> may appear only once in <server>"},
      {testing::minimal_config("",
                               "<server><tls certificate=\"a.pem\" key=\"a.key\"/>\n"
                               "<tls certificate=\"b.pem\" key=\"b.key\"/></server>\n"),
       "test.xml:3:1: <tls> may appear only once in <server>"},
      {testing::minimal_config("", "<server/>\n<server/>\n"),
       "test.xml:3:1: <server> may appear only once in <mailconfd>"},
  };
  for (const auto& c : cases) {
    const Loaded loaded = testing::load_text(c.text);
    CHECK_MESSAGE(has_problem(loaded, c.problem), c.problem << "\n got:\n" << all(loaded));
  }
}

TEST_CASE("every problem of one element is reported, not only the first") {
  const Loaded loaded = testing::load_text(testing::minimal_config(
      R"(<outgoing host="smtp.provider.example" port="2525" security="starttls" auth="none"/>)"));
  CHECK_MESSAGE(has_problem(loaded,
                            "test.xml:6:1: <outgoing> auth 'none' is refused: every "
                            "client must log in with its password (SMTP-Auth)"),
                all(loaded));
  CHECK_MESSAGE(has_problem(loaded,
                            "test.xml:6:1: <outgoing> must be submission on 587 with "
                            "starttls (or 465 with tls)"),
                all(loaded));
}

TEST_CASE("short-name defaults to display-name cut at a character, never inside one") {
  Loaded loaded = testing::load_text(
      testing::minimal_config("<display-name>Mailbox Grossh\u00e4ndl\u00e4ger</display-name>"));
  REQUIRE_MESSAGE(loaded.ok(), all(loaded));
  CHECK(loaded.config.providers[0].short_name == "Mailbox Grossh\u00e4ndl\u00e4g");
  // Lengths count characters: 60 umlauts (120 bytes) are a valid display name.
  std::string sixty;
  for (int i = 0; i < 60; ++i) sixty += "\u00e4";
  loaded =
      testing::load_text(testing::minimal_config("<display-name>" + sixty + "</display-name>"));
  CHECK_MESSAGE(loaded.ok(), all(loaded));
  CHECK(loaded.config.providers[0].short_name.size() == 40);
  loaded =
      testing::load_text(testing::minimal_config("<display-name>" + sixty + "x</display-name>"));
  CHECK(has_problem(loaded, "test.xml:6:1: <display-name> is longer than 60 characters"));
}

TEST_CASE("limits and listen address are read") {
  const Loaded loaded = testing::load_text(
      testing::minimal_config("",
                              "<server listen=\"[::1]:0\" threads=\"3\"><limits "
                              "max-body-bytes=\"4096\" header-timeout=\"500ms\" "
                              "keepalive-timeout=\"2m\" max-connections=\"7\"/></server>"));
  REQUIRE(loaded.ok());
  const ServerOptions& s = loaded.config.server;
  CHECK(s.listen == "[::1]:0");
  CHECK(s.threads == 3);
  CHECK(s.limits.max_body_bytes == 4096);
  CHECK(s.limits.header_timeout == std::chrono::milliseconds(500));
  CHECK(s.limits.keepalive_timeout == std::chrono::minutes(2));
  CHECK(s.limits.max_connections == 7);
}

TEST_CASE("shutdown-grace and the metrics listener are read, and defaults without them") {
  const Loaded loaded = testing::load_text(testing::minimal_config(
      "", "<server shutdown-grace=\"2500ms\"><metrics listen=\"127.0.0.1:9187\"/></server>"));
  REQUIRE(loaded.ok());
  CHECK(loaded.config.server.shutdown_grace == std::chrono::milliseconds(2500));
  CHECK(loaded.config.server.metrics_listen == "127.0.0.1:9187");
  const Loaded plain = testing::load_text(testing::minimal_config());
  REQUIRE(plain.ok());
  CHECK(plain.config.server.shutdown_grace == std::chrono::seconds(10));
  CHECK(plain.config.server.metrics_listen.empty());
  CHECK(testing::load_text(testing::minimal_config("", "<server shutdown-grace=\"0s\"/>")).ok());
}

TEST_CASE("bad shutdown-grace and metrics listeners are named") {
  struct Case {
    const char* head;
    const char* problem;
  } cases[] = {
      {"<server shutdown-grace=\"ten\"/>",
       "test.xml:2:1: shutdown-grace must be a duration from 0s to 10m, like 10s"},
      {"<server shutdown-grace=\"11m\"/>",
       "test.xml:2:1: shutdown-grace must be a duration from 0s to 10m, like 10s"},
      {"<server><metrics listen=\"9187\"/></server>",
       "test.xml:2:9: <metrics> listen '9187' is not HOST:PORT"},
      {"<server><metrics/></server>", "test.xml:2:9: <metrics> listen '' is not HOST:PORT"},
      {"<server><metrics listen=\"127.0.0.1:1\" path=\"/m\"/></server>",
       "test.xml:2:9: <metrics>: unknown attribute 'path'"},
  };
  for (const auto& c : cases) {
    const Loaded loaded = testing::load_text(testing::minimal_config("", c.head));
    REQUIRE_MESSAGE(loaded.problems.size() == 1, c.head);
    CHECK(loaded.problems[0] == c.problem);
  }
}

TEST_CASE("parse_listen accepts IPv4, IPv6 and localhost with a port") {
  CHECK(parse_listen("127.0.0.1:8080")->port == 8080);
  CHECK(parse_listen("[::1]:0")->host == "::1");
  CHECK(parse_listen("localhost:80")->host == "127.0.0.1");
  for (auto bad :
       {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "example.com:80", "[::1]80", "[zz]:80"}) {
    CHECK_MESSAGE(!parse_listen(bad), bad);
  }
}

TEST_CASE("the Autodiscover redirect and forwarded-proto settings are read, defaults on/ignore") {
  const Loaded defaults = testing::load_text(testing::minimal_config());
  REQUIRE(defaults.ok());
  CHECK(defaults.config.providers[0].autodiscover_redirect);
  CHECK(defaults.config.providers[0].autodiscover_host == "autodiscover.provider.example");
  CHECK_FALSE(defaults.config.server.trust_forwarded_proto);

  const Loaded set = testing::load_text(testing::minimal_config(
      "<autodiscover host=\"AD.Provider.Example\" http-redirect=\"off\"/>\n",
      "<server forwarded-proto=\"trust\"/>\n"));
  REQUIRE_MESSAGE(set.ok(), all(set));
  CHECK_FALSE(set.config.providers[0].autodiscover_redirect);
  CHECK(set.config.providers[0].autodiscover_host == "ad.provider.example");
  CHECK(set.config.server.trust_forwarded_proto);
}

TEST_CASE("bad Autodiscover redirect settings are reported with file, line and column") {
  const Loaded loaded = testing::load_text(
      testing::minimal_config("<autodiscover http-redirect=\"yes\" redirect=\"on\"/>\n",
                              "<server forwarded-proto=\"always\"/>\n"));
  CHECK_MESSAGE(
      has_problem(loaded, "test.xml:2:1: forwarded-proto must be ignore or trust, not 'always'"),
      all(loaded));
  CHECK_MESSAGE(has_problem(loaded, "test.xml:7:1: <autodiscover>: unknown attribute 'redirect'"),
                all(loaded));
  CHECK_MESSAGE(
      has_problem(loaded,
                  "test.xml:7:1: <autodiscover> http-redirect must be on or off, not 'yes'"),
      all(loaded));
  CHECK(loaded.problems.size() == 3);
}

TEST_CASE("the setup page and the notice are read from <setup> and <notice>") {
  const Loaded loaded = testing::load_text(
      testing::minimal_config("<notice smtp-after-pop-off=\"2013-09-02\">\n"
                              "  <text lang=\"de\">Erster Absatz.\n\n  Zweiter.</text>\n"
                              "  <text lang=\"en\">First.</text>\n"
                              "</notice>\n",
                              "<setup lang=\"de\" provider=\"PROVIDER.example\"/>\n"));
  REQUIRE_MESSAGE(loaded.ok(), all(loaded));
  const Config& config = loaded.config;
  CHECK(config.setup.lang == "de");
  CHECK(config.setup.provider == 0);
  CHECK(config.setup.templates_dir.empty());
  CHECK(config.setup.templates.empty());
  const Notice& notice = config.providers[0].notice;
  CHECK(notice.smtp_after_pop_off == "2013-09-02");
  REQUIRE(notice.text.size() == 2);
  CHECK(notice.text[0].lang == "de");
  CHECK(notice.text[0].text == "Erster Absatz.\n\n  Zweiter.");
  // Without <setup>: English, the first provider, the built-in templates.
  const Loaded plain = testing::load_text(testing::minimal_config());
  CHECK(plain.config.setup.lang == "en");
  CHECK(plain.config.providers[0].notice.text.empty());
}

TEST_CASE("mistakes in <setup> and <notice> are named with their position") {
  struct Case {
    std::string text;
    std::string problem;
  } cases[] = {
      {testing::minimal_config("", "<setup lang=\"fr\"/>"),
       "test.xml:2:1: <setup> lang 'fr' must be de or en"},
      {testing::minimal_config("", "<setup provider=\"other.example\"/>"),
       "test.xml:2:1: <setup> provider 'other.example' is not configured"},
      {testing::minimal_config("", "<setup template=\"x\"/>"),
       "test.xml:2:1: <setup>: unknown attribute 'template'"},
      {testing::minimal_config("", "<setup/><setup/>"),
       "test.xml:2:9: <setup> may appear only once in <mailconfd>"},
      {testing::minimal_config("", "<setup templates=\"no-such-dir\"/>"),
       "test.xml:2:1: cannot read template '" + testing::source_path("tests/fixtures") +
           "/no-such-dir/setup.css': No such file or directory"},
      {testing::minimal_config(
           "<notice smtp-after-pop-off=\"02.09.2013\"><text lang=\"de\">x</text>"
           "</notice>"),
       "test.xml:6:1: <notice> smtp-after-pop-off '02.09.2013' must be a date like 2013-09-02"},
      {testing::minimal_config("<notice><text lang=\"fr\">x</text></notice>"),
       "test.xml:6:9: <text> lang 'fr' must be de or en"},
      {testing::minimal_config("<notice/>"),
       "test.xml:6:1: <notice> needs at least one <text lang=\"…\">"},
      {testing::minimal_config(
           "<notice><text lang=\"en\">a</text><text lang=\"en\">b</text></notice>"),
       "test.xml:6:33: <text lang=\"en\"> may appear only once in <notice>"},
      {testing::minimal_config("<notice><txt/><text lang=\"en\">a</text></notice>"),
       "test.xml:6:9: <txt>: unknown element inside <notice>"},
  };
  for (const auto& c : cases) {
    const Loaded loaded = testing::load_text(c.text);
    CHECK_MESSAGE(has_problem(loaded, c.problem), c.problem << "\n got:\n" << all(loaded));
  }
}

TEST_CASE("a customized template directory is read, and its problems are FILE:LINE:COLUMN") {
  const std::string dir = testing::temp_dir();
  for (const auto& [name, text] : render::builtin_setup_templates()) {
    std::ofstream(dir + "/" + name, std::ios::binary) << text;
  }
  const std::string config = testing::minimal_config("", "<setup templates=\"" + dir + "\"/>\n");
  const Loaded good = testing::load_text(config);
  REQUIRE_MESSAGE(good.ok(), all(good));
  CHECK(good.config.setup.templates_dir == dir);
  CHECK(good.config.setup.templates == render::builtin_setup_templates());

  std::ofstream(dir + "/setup.en.html", std::ios::binary)
      << "<!DOCTYPE html>\n<style>{{>setup.css}}</style>\n<p>\n  {{#settings}}{{adress}}\n";
  const Loaded bad = testing::load_text(config);
  CHECK(has_problem(bad, dir + "/setup.en.html:4:3: section 'settings' is not closed"));
  std::ofstream(dir + "/setup.en.html", std::ios::binary)
      << "<style>{{>setup.css}}</style>{{adress}}";
  CHECK(has_problem(testing::load_text(config),
                    dir + "/setup.en.html:1:30: unknown name 'adress' in a tag"));
}

TEST_CASE("acme: challenge, on-demand and per-provider hosted names are read, bad values named") {
  const std::string acme =
      "<acme ca=\"https://ca.example/dir\" storage=\"acme\" challenge=\"tls-alpn-01\" "
      "on-demand=\"yes\" hosted-names=\"autodiscover\"/>\n";
  Loaded loaded = testing::load_text(
      "<mailconfd>\n" + acme +
      "<provider id=\"provider.example\" acme-hosted-names=\"autoconfig\">\n"
      "<incoming protocol=\"imap\" host=\"imap.provider.example\" port=\"993\" "
      "security=\"tls\"/>\n"
      "<outgoing host=\"smtp.provider.example\" port=\"587\" security=\"starttls\"/>\n"
      "<domain>customer.example</domain>\n</provider>\n"
      "<provider id=\"other.example\">\n"
      "<incoming protocol=\"imap\" host=\"imap.other.example\" port=\"993\" "
      "security=\"tls\"/>\n"
      "<outgoing host=\"smtp.other.example\" port=\"587\" security=\"starttls\"/>\n"
      "<domain>other-customer.example</domain>\n</provider>\n</mailconfd>\n");
  // Only the missing <tls> is a problem.
  REQUIRE(loaded.config.acme);
  CHECK(all(loaded).find("<acme> with ca needs <tls>") != std::string::npos);
  CHECK(loaded.problems.size() == 1);
  const mailconfd::AcmeOptions& options = *loaded.config.acme;
  CHECK(options.prefer_tls_alpn);
  CHECK(options.on_demand);
  CHECK(options.hosted_names == mailconfd::AcmeHostedNames{false, true});
  REQUIRE(loaded.config.providers.size() == 2);
  CHECK(options.hosted_for(loaded.config.providers[0]) == mailconfd::AcmeHostedNames{true, false});
  CHECK(options.hosted_for(loaded.config.providers[1]) == mailconfd::AcmeHostedNames{false, true});

  loaded = testing::load_text(testing::minimal_config(
      "",
      "<acme ca=\"https://ca.example/dir\" storage=\"acme\" challenge=\"dns-01\" "
      "on-demand=\"maybe\" hosted-names=\"autoconfig autoconfig\"/>\n"));
  CHECK_MESSAGE(all(loaded).find("test.xml:2:1: <acme>: challenge must be http-01 or "
                                 "tls-alpn-01, not 'dns-01'") != std::string::npos,
                all(loaded));
  CHECK(all(loaded).find("<acme>: on-demand must be yes or no, not 'maybe'") != std::string::npos);
  CHECK(all(loaded).find("<acme>: hosted-names must be autoconfig, autodiscover, both "
                         "(separated by a space) or none, not 'autoconfig autoconfig'") !=
        std::string::npos);
  loaded = testing::load_text(
      "<mailconfd>\n<provider id=\"provider.example\" acme-hosted-names=\"www\">\n"
      "<incoming protocol=\"imap\" host=\"imap.provider.example\" port=\"993\" "
      "security=\"tls\"/>\n"
      "<outgoing host=\"smtp.provider.example\" port=\"587\" security=\"starttls\"/>\n"
      "<domain>customer.example</domain>\n</provider>\n</mailconfd>\n");
  CHECK_MESSAGE(all(loaded).find("test.xml:2:1: <provider>: acme-hosted-names must be "
                                 "autoconfig, autodiscover, both (separated by a space) or "
                                 "none, not 'www'") != std::string::npos,
                all(loaded));
}

TEST_CASE("<database poll>: a duration for driver mariadb only") {
  const std::string dir = testing::temp_dir();
  std::ofstream(dir + "/dsn") << "socket=/run/mysqld/mysqld.sock user=mailconfd\n";
  const auto load = [&](const std::string& database) {
    std::ofstream(dir + "/test.xml") << testing::minimal_config("", database);
    return load_config_file(dir + "/test.xml");
  };
  Loaded loaded = load("<database driver=\"mariadb\" dsn-file=\"dsn\" poll=\"250ms\"/>");
  REQUIRE_MESSAGE(loaded.problems.empty(), all(loaded));
  CHECK(loaded.config.database->driver == DatabaseOptions::Driver::Mariadb);
  CHECK(loaded.config.database->poll == std::chrono::milliseconds(250));
  CHECK(loaded.config.database->dsn == "socket=/run/mysqld/mysqld.sock user=mailconfd");
  loaded = load("<database driver=\"mysql\" dsn-file=\"dsn\"/>");
  REQUIRE_MESSAGE(loaded.problems.empty(), all(loaded));
  CHECK(loaded.config.database->poll == std::chrono::seconds(2));
  for (const char* bad : {"50ms", "61m", "2h", "soon"}) {
    loaded =
        load(std::string("<database driver=\"mariadb\" dsn-file=\"dsn\" poll=\"") + bad + "\"/>");
    CHECK(all(loaded) ==
          dir + "/test.xml:2:1: <database> poll must be a duration from 100ms to 60m\n");
  }
  loaded = load("<database driver=\"postgresql\" dsn-file=\"dsn\" poll=\"1s\"/>");
  CHECK(all(loaded) ==
        dir + "/test.xml:2:1: <database> poll is for driver mariadb (PostgreSQL notifies)\n");
  loaded = load("<database driver=\"oracle\" dsn-file=\"dsn\"/>");
  CHECK(all(loaded) ==
        dir + "/test.xml:2:1: <database> driver 'oracle' is unknown (postgresql or mariadb)\n");
}
