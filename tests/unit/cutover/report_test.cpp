#include "cutover/report.h"

#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

#include "cutover/event.h"
#include "support.h"

using namespace mailconfd;
using namespace mailconfd::cutover;

namespace {

const Config& config() {
  static const Loaded loaded = testing::load_text(
      "<mailconfd><provider id=\"provider.test\">"
      "<incoming protocol=\"imap\" host=\"imap.provider.test\" port=\"993\" security=\"tls\"/>"
      "<outgoing host=\"smtp.provider.test\" port=\"587\" security=\"starttls\"/>"
      "<domain>customer.test</domain></provider></mailconfd>");
  REQUIRE(loaded.ok());
  return loaded.config;
}

Micros at(const char* text) { return *parse_rfc3339(text); }

void add(Scanner& scanner, const char* time, const char* program, const std::string& message) {
  const Event event = parse_event(program, message);
  REQUIRE_MESSAGE(event.kind != EventKind::None, message);
  scanner.add(at(time), event);
}

// alice relays (at-risk), =bob switched, x@other.example relays (not hosted), and one IP
// relays with nobody logged in.
void scenario(Scanner& s) {
  add(s, "2026-12-02T10:00:00Z", "dovecot",
      "pop3-login: Login: user=<alice@customer.test>, method=PLAIN, rip=192.0.2.10, lip=1.1.1.1");
  add(s, "2026-12-02T10:00:00Z", "dovecot",
      "pop3-login: Login: user=<x@other.example>, method=PLAIN, rip=192.0.2.20, lip=1.1.1.1");
  int n = 0;
  for (const char* ip : {"192.0.2.10", "192.0.2.20", "198.51.100.9"}) {
    const std::string qid = "Q" + std::to_string(++n);
    add(s, "2026-12-02T10:01:00Z", "postfix/smtpd", qid + ": client=pc[" + ip + "]");
    add(s, "2026-12-02T10:01:00Z", "postfix/qmgr", qid + ": from=<alice@customer.test>, size=1");
    add(s, "2026-12-02T10:01:00Z", "postfix/smtp",
        qid + ": to=<r@remote.test>, relay=mx, status=sent");
  }
  add(s, "2026-12-02T10:02:00Z", "postfix/submission/smtpd",
      "S1: client=pc[192.0.2.11], sasl_method=PLAIN, sasl_username==bob@customer.test");
  add(s, "2026-12-02T10:02:00Z", "postfix/qmgr", "S1: from=<=bob@customer.test>, size=1");
}

}  // namespace

TEST_CASE("render_json writes the stable fields the cockpit reads") {
  Scanner scanner(config(), ScanOptions{});
  scenario(scanner);
  scanner.count(9, 1, 900);
  const Report report = build_report(config(), scanner, at("2026-12-02T12:00:00Z"));
  CHECK(anyone_at_risk(report));
  const std::string json = render_json(config(), report, "");
  CHECK(json ==
        "{\"generated\":\"2026-12-02T12:00:00Z\",\"grace_seconds\":1800,"
        "\"logs\":{\"lines\":9,\"bytes\":900,\"skipped\":1,\"used\":13,\"explicit_evidence\":0,"
        "\"unattributed_denied\":0,\"unknown_login_failures\":0,"
        "\"from\":\"2026-12-02T10:00:00Z\",\"to\":\"2026-12-02T10:02:00Z\"},"
        "\"summary\":{\"at-risk\":1,\"ambiguous\":0,\"broke\":0,\"login-failing\":0,"
        "\"switched\":1,\"total\":2,\"not_hosted\":1},"
        "\"domains\":[{\"domain\":\"customer.test\",\"provider\":\"provider.test\","
        "\"at-risk\":1,\"ambiguous\":0,\"broke\":0,\"login-failing\":0,\"switched\":1,"
        "\"total\":2}],"
        "\"mailboxes\":["
        "{\"address\":\"=bob@customer.test\",\"domain\":\"customer.test\","
        "\"provider\":\"provider.test\",\"state\":\"switched\",\"confidence\":\"explicit\","
        "\"first_seen\":\"2026-12-02T10:02:00Z\",\"last_seen\":\"2026-12-02T10:02:00Z\","
        "\"relayed_via_map\":0,\"relayed_alone\":0,\"explicit_evidence\":0,"
        "\"sender_domain_matches\":0,\"authenticated\":1,\"relay_denied\":0,"
        "\"login_failures\":0,\"last_relay\":null,"
        "\"last_authenticated\":\"2026-12-02T10:02:00Z\",\"last_denied\":null,"
        "\"last_login_failure\":null,\"ips\":[\"192.0.2.11\"],\"candidates_with\":[],"
        "\"setup_url\":\"https://autodiscover.provider.test/"
        "setup?emailaddress=%3Dbob%40customer.test\"},"
        "{\"address\":\"alice@customer.test\",\"domain\":\"customer.test\","
        "\"provider\":\"provider.test\",\"state\":\"at-risk\",\"confidence\":\"high\","
        "\"first_seen\":\"2026-12-02T10:01:00Z\",\"last_seen\":\"2026-12-02T10:01:00Z\","
        "\"relayed_via_map\":1,\"relayed_alone\":1,\"explicit_evidence\":0,"
        "\"sender_domain_matches\":1,\"authenticated\":0,\"relay_denied\":0,"
        "\"login_failures\":0,\"last_relay\":\"2026-12-02T10:01:00Z\","
        "\"last_authenticated\":null,\"last_denied\":null,\"last_login_failure\":null,"
        "\"ips\":[\"192.0.2.10\"],\"candidates_with\":[],"
        "\"setup_url\":\"https://autodiscover.provider.test/"
        "setup?emailaddress=alice%40customer.test\"}],"
        "\"not_hosted\":[{\"address\":\"x@other.example\",\"domain\":\"other.example\","
        "\"provider\":null,\"state\":\"at-risk\",\"confidence\":\"medium\","
        "\"first_seen\":\"2026-12-02T10:01:00Z\",\"last_seen\":\"2026-12-02T10:01:00Z\","
        "\"relayed_via_map\":1,\"relayed_alone\":1,\"explicit_evidence\":0,"
        "\"sender_domain_matches\":0,\"authenticated\":0,\"relay_denied\":0,"
        "\"login_failures\":0,\"last_relay\":\"2026-12-02T10:01:00Z\","
        "\"last_authenticated\":null,\"last_denied\":null,\"last_login_failure\":null,"
        "\"ips\":[\"192.0.2.20\"],\"candidates_with\":[]}],"
        "\"unattributed\":[{\"ip\":\"198.51.100.9\",\"messages\":1,"
        "\"first_seen\":\"2026-12-02T10:01:00Z\",\"last_seen\":\"2026-12-02T10:01:00Z\"}],"
        "\"advice\":[\"No INFO tag or reject_warning line in these logs: who relays via "
        "SMTP-after-POP is inferred from logins and client IPs only. Add the dry-run rule and "
        "the INFO-tag map (deploy/postfix/) to be sure.\",\"1 hosted mailbox(es) still send via "
        "SMTP-after-POP (at-risk or ambiguous): send them their setup link (--csv) before the "
        "cut-off.\",\"1 client IP(s) relayed without a login in the grace window and outside "
        "mynetworks: an open relay, a static entry in the map, or mynetworks (--mynetworks) is "
        "incomplete.\"]}\n");
}

TEST_CASE("render_csv lists whom to contact, quoted, with formula-safe fields") {
  Scanner scanner(config(), ScanOptions{});
  scenario(scanner);
  add(scanner, "2026-12-02T10:03:00Z", "dovecot",
      "pop3-login: Login: user=<=bob@customer.test>, method=PLAIN, rip=192.0.2.11, lip=1.1.1.1");
  add(scanner, "2026-12-02T10:04:00Z", "postfix/smtpd", "Q9: client=pc[192.0.2.11]");
  add(scanner, "2026-12-02T10:04:00Z", "postfix/qmgr", "Q9: from=<=bob@customer.test>, size=1");
  add(scanner, "2026-12-02T10:04:00Z", "postfix/smtp",
      "Q9: to=<r@remote.test>, relay=mx, status=sent");
  const Report report = build_report(config(), scanner, 0);
  CHECK(render_csv(config(), report, "https://mail.provider.test/setup?lang=de") ==
        "mailbox,domain,state,evidence,last_seen,setup_link\r\n"
        "'=bob@customer.test,customer.test,at-risk,\"1 message relayed via SMTP-after-POP "
        "without a login, from 192.0.2.11 (confidence high)\",2026-12-02T10:04:00Z,"
        "https://mail.provider.test/setup?lang=de&emailaddress=%3Dbob%40customer.test\r\n"
        "alice@customer.test,customer.test,at-risk,\"1 message relayed via SMTP-after-POP "
        "without a login, from 192.0.2.10 (confidence high)\",2026-12-02T10:01:00Z,"
        "https://mail.provider.test/setup?lang=de&emailaddress=alice%40customer.test\r\n");
}

TEST_CASE("the table names states, domains and advice, and nobody is at risk without relays") {
  Scanner scanner(config(), ScanOptions{});
  const Report empty = build_report(config(), scanner, 0);
  CHECK_FALSE(anyone_at_risk(empty));
  CHECK(render_table(config(), empty) ==
        "No hosted mailbox has evidence in these logs.\n\n"
        "0 lines read (0 skipped as not log lines), 0 used; grace 1800s\n"
        "note: No log lines were read.\n");
  scenario(scanner);
  const std::string table = render_table(config(), build_report(config(), scanner, 0));
  CHECK(table.find("at-risk       alice@customer.test              high     1       0     0      "
                   "0      2026-12-02T10:01:00Z  192.0.2.10\n") != std::string::npos);
  CHECK(table.find("customer.test                   provider.test           1       0         0 "
                   "    0             1\n") != std::string::npos);
  CHECK(table.find("Not hosted in this configuration:") != std::string::npos);
  CHECK(table.find("  198.51.100.9                            1\n") != std::string::npos);
}

TEST_CASE("render_json hands a large report over in pieces that make up the same bytes") {
  Scanner scanner(config(), ScanOptions{});
  // 3,000 mailboxes that switched: about 1.5 MB of JSON.
  for (int i = 0; i < 3000; ++i) {
    const std::string qid = "S" + std::to_string(i);
    add(scanner, "2026-12-02T10:02:00Z", "postfix/submission/smtpd",
        qid + ": client=pc[192.0.2.11], sasl_method=PLAIN, sasl_username=user" + std::to_string(i) +
            "@customer.test");
    add(scanner, "2026-12-02T10:02:00Z", "postfix/qmgr", qid + ": from=<x@customer.test>, size=1");
  }
  const Report report = build_report(config(), scanner, at("2026-12-02T12:00:00Z"));
  const std::string whole = render_json(config(), report, "https://setup.example/s?x=1");
  std::vector<std::size_t> sizes;
  std::string joined;
  render_json(config(), report, "https://setup.example/s?x=1", [&](std::string_view piece) {
    sizes.push_back(piece.size());
    joined += piece;
  });
  CHECK(joined == whole);
  CHECK(whole.size() > 1'000'000);
  CHECK(sizes.size() >= 4);
  for (std::size_t size : sizes) CHECK(size <= 256 * 1024 + 4096);
  CHECK(whole.find(
            "\"setup_url\":\"https://setup.example/s?x=1&emailaddress=user0%40customer.test\"") !=
        std::string::npos);
}

TEST_CASE("build_report lists mailboxes in the order of their addresses") {
  Scanner scanner(config(), ScanOptions{});
  // Addresses that share their first 8 or 16 bytes, are prefixes of one another, or have
  // bytes from 0x80 up (not hosted): the sort's keys tie, and the addresses decide.
  std::vector<std::string> names;
  for (const char* local :
       {"a", "ab", "a0", "aaaaaaaa", "aaaaaaaab", "aaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaab",
        "aaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaa0", "b", "zzzzzzzzzzzzzzzzzzzzzz1",
        "zzzzzzzzzzzzzzzzzzzzzz10", "user16762", "user16763", "user1676"}) {
    names.push_back(std::string(local) + "@customer.test");
    names.push_back(std::string(local) + "@other.example");
  }
  for (const char* raw : {"\xC3\xA9t\xC3\xA9", "\xFF", "\xC3\xA9",
                          "\x7F"
                          "a",
                          "a\xFF"})
    names.push_back(raw);
  int n = 0;
  for (const std::string& name : names) {
    const std::string qid = "S" + std::to_string(++n);
    add(scanner, "2026-12-02T10:02:00Z", "postfix/submission/smtpd",
        qid + ": client=pc[192.0.2.11], sasl_method=PLAIN, sasl_username=" + name);
    add(scanner, "2026-12-02T10:02:00Z", "postfix/qmgr", qid + ": from=<x@customer.test>, size=1");
  }
  const Report report = build_report(config(), scanner, at("2026-12-02T12:00:00Z"));
  CHECK(report.mailboxes.size() == 15);
  CHECK(report.not_hosted.size() == names.size() - 15);
  for (const auto* list : {&report.mailboxes, &report.not_hosted}) {
    for (std::size_t i = 1; i < list->size(); ++i) {
      CHECK((*list)[i - 1]->address < (*list)[i]->address);
    }
  }
}
