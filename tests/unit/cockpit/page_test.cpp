#include "cockpit/page.h"

#include <time.h>

#include <algorithm>

#include <doctest/doctest.h>

#include "cockpit/model.h"
#include "support.h"

using namespace mailconfd;
using namespace mailconfd::cockpit;

namespace {

// A scan report as `cutover scan --json` writes it, with a hostile address and a CSV formula.
constexpr const char* kReport = R"({
  "generated": "2026-12-02T06:00:00Z",
  "mailboxes": [
    {"address": "Alice@Customer.Example", "domain": "customer.example", "provider": "x",
     "state": "at-risk", "confidence": "high", "first_seen": "2026-11-20T08:00:00Z",
     "last_seen": "2026-12-02T05:00:00Z", "ips": ["192.0.2.10"]},
    {"address": "bob@customer.example", "domain": "customer.example", "provider": null,
     "state": "switched", "confidence": "explicit", "first_seen": "2026-11-20T08:00:00Z",
     "last_seen": "2026-12-01T22:00:00Z", "ips": ["192.0.2.11", "2001:db8::11"]},
    {"address": "carol@customer.example", "state": "ambiguous", "confidence": "low",
     "ips": ["198.51.100.7"], "shared_with": ["dave@other.example"]},
    {"address": "dave@other.example", "domain": "other.example", "state": "at-risk",
     "confidence": "medium", "ips": ["198.51.100.7"]},
    {"address": "<script>x</script>@customer.example", "state": "broke",
     "confidence": "medium", "last_seen": "2026-12-02T01:00:00Z"},
    {"address": "=cmd@customer.example", "state": "login-failing", "confidence": "explicit"},
    {"address": "no-state@customer.example"},
    "not an object"
  ],
  "domains": [], "summary": {}
})";

std::int64_t at(int year, int month, int day, int hour) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  return timegm(&tm);
}

Config config() {
  Loaded loaded = testing::load_text(testing::minimal_config(
      "<notice smtp-after-pop-off=\"2026-12-31\"><text lang=\"en\">Bye</text></notice>\n"
      "<domain>second.example</domain>\n"));
  REQUIRE_MESSAGE(loaded.ok(), loaded.problems.front());
  return std::move(loaded.config);
}

Model model(const Config& c) {
  Report report;
  std::string error;
  REQUIRE(parse_report(kReport, report, error));
  std::vector<journal::Fetch> fetches{
      {"alice@customer.example", "autoconfig", "thunderbird", at(2026, 12, 1, 9),
       at(2026, 12, 1, 9), 2},
      {"alice@customer.example", "setup", "browser", at(2026, 12, 1, 10), at(2026, 12, 1, 10), 1},
      {"erin@second.example", "autodiscover", "outlook", at(2026, 11, 30, 9), at(2026, 12, 1, 18),
       3},
  };
  std::vector<journal::DayCounts> history{
      {"2026-11-20", 5, 0, 0, 1, 0, 0, 0},
      {"2026-11-25", 4, 1, 1, 1, 0, 0, 0},
      {"2026-12-02", 9, 9, 9, 9, 9, 9, 9},  // today's row is replaced by the model's counts
  };
  return build_model(c, &report, fetches, history, at(2026, 12, 2, 12));
}

}  // namespace

TEST_CASE("the scan and the journal are joined into states, domains, providers and clients") {
  const Config c = config();
  const Model m = model(c);
  REQUIRE(m.mailboxes.size() == 7);
  CHECK(m.today == "2026-12-02");
  CHECK(m.cutoff == "2026-12-31");
  CHECK(m.generated == "2026-12-02T06:00:00Z");
  auto count = [&](Status s) { return m.counts[static_cast<std::size_t>(s)]; };
  CHECK(count(Status::AtRisk) == 1);   // dave (other.example, not hosted)
  CHECK(count(Status::Fetched) == 1);  // alice: at risk in the scan, fetched settings
  CHECK(count(Status::Switched) == 1);
  CHECK(count(Status::Ambiguous) == 1);
  CHECK(count(Status::Broke) == 1);
  CHECK(count(Status::LoginFailing) == 1);
  CHECK(count(Status::Unknown) == 1);  // erin: only in the journal
  CHECK(m.mailboxes[0].address == "<script>x</script>@customer.example");  // sorted bytewise
  const Mailbox& alice = m.mailboxes[2];
  CHECK(alice.address == "alice@customer.example");
  CHECK(alice.provider == "provider.example");
  CHECK(alice.doors == std::vector<std::string>{"autoconfig", "setup"});
  CHECK(alice.clients == std::vector<std::string>{"thunderbird", "browser"});
  CHECK(alice.fetch_last == at(2026, 12, 1, 10));
  REQUIRE(m.domains.size() == 3);
  CHECK(m.domains[0].name == "customer.example");
  CHECK(m.domains[0].total == 5);
  CHECK(m.domains[1].name == "other.example");
  CHECK(m.domains[1].provider.empty());
  REQUIRE(m.providers.size() == 2);
  CHECK(m.providers[0].name.empty());  // not hosted
  CHECK(m.providers[1].name == "provider.example");
  CHECK(m.providers[1].total == 6);
  REQUIRE(m.clients.size() == 3);
  REQUIRE(m.history.size() == 3);
  CHECK(m.history[2].day == "2026-12-02");
  CHECK(m.history[2].at_risk == 1);
  CHECK(m.history[2].fetched == 1);
  CHECK(m.history[2].unknown == 1);
}

TEST_CASE("the roll-up names the provider of a domain that only the served domain part hosts") {
  const Config c = config();
  // A database source's part: other.example is not in the file (c.domains) but served.
  HostedDomains served;
  auto table = std::make_shared<DomainTable>(c.domains);
  REQUIRE(table->insert("other.example", DomainEntry{0, 0}));
  served.table = table;
  Report report;
  std::string error;
  REQUIRE(parse_report(kReport, report, error));
  const Model from_file = build_model(c, &report, {}, {}, at(2026, 12, 2, 12));
  const Model from_served = build_model(c, &report, {}, {}, at(2026, 12, 2, 12), &served);
  auto domain = [](const Model& m, const std::string& name) {
    auto it = std::find_if(m.domains.begin(), m.domains.end(),
                           [&](const Row& r) { return r.name == name; });
    REQUIRE(it != m.domains.end());
    return it->provider;
  };
  CHECK(domain(from_file, "other.example").empty());
  CHECK(domain(from_served, "other.example") == "provider.example");
  CHECK(domain(from_served, "customer.example") == "provider.example");
  // dave@other.example moves from the "not hosted" row to the provider's.
  REQUIRE(from_file.providers.size() == 2);
  CHECK(from_file.providers[0].name.empty());
  CHECK(from_file.providers[0].total == 1);
  REQUIRE(from_served.providers.size() == 1);
  CHECK(from_served.providers[0].name == "provider.example");
  CHECK(from_served.providers[0].total == from_file.providers[1].total + 1);
}

TEST_CASE("a report that is not a scan report is refused with the reason") {
  Report report;
  std::string error;
  CHECK_FALSE(parse_report("{", report, error));
  CHECK(error == "not a JSON object");
  CHECK_FALSE(parse_report(R"({"mailboxes": 3})", report, error));
  CHECK(error == "no \"mailboxes\" array");
  CHECK(parse_report(R"({"mailboxes": []})", report, error));
}

TEST_CASE("the page in both languages and the CSV are exactly the golden bytes") {
  const Config c = config();
  const Model m = model(c);
  View en = parse_view("", render::Lang::En);
  View de = parse_view("lang=de&sort=progress&dir=desc", render::Lang::En);
  const std::string page_en = render_page(m, en);
  const std::string page_de = render_page(m, de);
  CHECK(page_en == testing::golden("cockpit/page.en.html", page_en));
  CHECK(page_de == testing::golden("cockpit/page.de.html", page_de));
  const std::string csv = render_csv(m, View{}, c);
  CHECK(csv == testing::golden("cockpit/contacts.csv", csv));
  // Nothing from the report reaches the page unescaped; no script, no external asset.
  CHECK(page_en.find("<script>") == std::string::npos);
  CHECK(page_en.find("&lt;script&gt;x&lt;/script&gt;@customer.example") != std::string::npos);
  CHECK(page_en.find("http://") == std::string::npos);
  CHECK(page_en.find("https://") == std::string::npos);
  CHECK(page_en.find("style=") == std::string::npos);
  CHECK(page_en.find("<span class=\"n\" id=\"days-left\">29</span>") != std::string::npos);
  CHECK(page_de.find("<html lang=\"de\">") != std::string::npos);
  CHECK(page_de.find("29</span> Tage bis SMTP-after-POP abgeschaltet wird") != std::string::npos);
  // The formula is neutralised in the CSV.
  CHECK(csv.find("\"'=cmd@customer.example\"") != std::string::npos);
}

TEST_CASE("filters select the list and the CSV, sorting orders the tables") {
  const Config c = config();
  const Model m = model(c);
  const View state = parse_view("state=at-risk", render::Lang::En);
  CHECK(render_csv(m, state, c) ==
        "address,domain,provider,state,confidence,ips,first_seen,last_seen,fetched_settings,"
        "setup_link\r\n\"dave@other.example\",\"other.example\",\"\",\"at-risk\",\"medium\","
        "\"198.51.100.7\",\"\",\"\",\"\",\"\"\r\n");
  const View search = parse_view("q=ALI&domain=Customer.Example", render::Lang::En);
  const std::string one = render_csv(m, search, c);
  CHECK(one.find("alice@customer.example") != std::string::npos);
  CHECK(std::count(one.begin(), one.end(), '\n') == 2);
  CHECK(one.find("https://autodiscover.provider.example/setup?emailaddress=alice%40customer."
                 "example") != std::string::npos);
  const View bad = parse_view("sort=evil&state=nope&lang=fr&dir=up&q=%ZZ", render::Lang::De);
  CHECK(bad.sort == "domain");
  CHECK_FALSE(bad.has_status);
  CHECK(bad.lang == render::Lang::De);
  CHECK_FALSE(bad.descending);
  CHECK(bad.search.empty());
  const std::string by_total = render_page(m, parse_view("sort=total&dir=desc", render::Lang::En));
  const auto domains = by_total.find("id=\"domains\"");
  CHECK(by_total.find("customer.example", domains) < by_total.find("other.example", domains));
  CHECK(by_total.find("aria-sort=\"descending\"") != std::string::npos);
}

TEST_CASE("the CSP allows exactly the page's one inline style") {
  const std::string& csp = content_security_policy();
  CHECK(csp.rfind("default-src 'none'; style-src 'sha256-", 0) == 0);
  CHECK(csp.find("script-src") == std::string::npos);
  CHECK(csp.find("frame-ancestors 'none'") != std::string::npos);
}
