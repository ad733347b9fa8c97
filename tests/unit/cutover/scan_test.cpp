#include "cutover/scan.h"

#include <cstdio>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "cutover/event.h"
#include "cutover/log_line.h"
#include "support.h"

using namespace mailconfd;
using namespace mailconfd::cutover;

namespace {

const Config& config() {
  static const Loaded loaded = testing::load_text(
      "<mailconfd><provider id=\"provider.test\">"
      "<incoming protocol=\"imap\" host=\"imap.provider.test\" port=\"993\" security=\"tls\"/>"
      "<outgoing host=\"smtp.provider.test\" port=\"587\" security=\"starttls\"/>"
      "<domain>customer.test</domain><domain>second.test</domain></provider>"
      "<provider id=\"local.test\"><login>local-part</login>"
      "<incoming protocol=\"pop3\" host=\"pop.local.test\" port=\"995\" security=\"tls\"/>"
      "<outgoing host=\"smtp.local.test\" port=\"587\" security=\"starttls\"/>"
      "<domain>bare-a.test</domain><domain>bare-b.test</domain></provider></mailconfd>");
  REQUIRE(loaded.ok());
  return loaded.config;
}

// Feeds RFC 3339 log lines "HH:MM:SS program: message" (on 2026-12-02, UTC) to a scanner.
void feed(Scanner& scanner, const std::vector<std::string>& lines) {
  YearlessClock clock(0, true);
  for (const std::string& text : lines) {
    const std::string line = "2026-12-02T" + text.substr(0, 8) + "Z mail " + text.substr(9);
    const auto parsed = parse_syslog_line(line, clock);
    REQUIRE_MESSAGE(parsed, line);
    scanner.add(parsed->time, parse_event(parsed->program, parsed->message));
  }
}

ScanOptions options() {
  ScanOptions o;
  std::vector<std::string> problems;
  o.mynetworks = parse_networks("127.0.0.0/8, [::1]/128", problems);
  return o;
}

std::string login(const char* time, const char* user, const char* ip) {
  return std::string(time) + " dovecot: pop3-login: Login: user=<" + user +
         ">, method=PLAIN, rip=" + ip + ", lip=192.0.2.1, mpid=1, TLS, session=<s>";
}

// An unauthenticated message from ip, from sender, to a recipient; delivered by agent.
std::vector<std::string> relay(const char* time, const char* qid, const char* ip,
                               const char* sender, const char* to = "r@remote.test",
                               const char* agent = "smtp") {
  const std::string t(time);
  return {
      t + " postfix/smtpd[5]: " + qid + ": client=pc[" + ip + "]",
      t + " postfix/qmgr[6]: " + qid + ": from=<" + sender + ">, size=10, nrcpt=1 (queue active)",
      t + " postfix/" + agent + "[7]: " + qid + ": to=<" + to +
          ">, relay=mx[198.51.100.1]:25, delay=1, dsn=2.0.0, status=sent (250 ok)",
      t + " postfix/qmgr[6]: " + qid + ": removed"};
}

std::vector<std::string> submission(const char* time, const char* qid, const char* ip,
                                    const char* user, const char* sender) {
  const std::string t(time);
  return {
      t + " postfix/submission/smtpd[5]: " + qid + ": client=pc[" + ip +
          "], sasl_method=PLAIN, sasl_username=" + user,
      t + " postfix/qmgr[6]: " + qid + ": from=<" + sender + ">, size=10, nrcpt=1 (queue active)",
      t + " postfix/smtp[7]: " + qid +
          ": to=<r@remote.test>, relay=mx[1.1.1.1]:25, "
          "status=sent (ok)"};
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const Mailbox& find(const Scanner& scanner, const std::string& address) {
  const auto it = scanner.mailboxes().find(address);
  REQUIRE_MESSAGE(it != scanner.mailboxes().end(), address);
  return it->second;
}

}  // namespace

TEST_CASE("a POP login then an unauthenticated relay from that IP is at-risk") {
  Scanner scanner(config(), options());
  feed(scanner,
       std::vector<std::string>{login("10:00:00", "Alice@Customer.test", "::ffff:192.0.2.10")} +
           relay("10:05:00", "A1", "192.0.2.10", "alice@customer.test"));
  REQUIRE(scanner.mailboxes().size() == 1);
  const Mailbox& m = find(scanner, "alice@customer.test");
  CHECK(state_of(m) == State::AtRisk);
  CHECK(confidence_of(m) == "high");
  CHECK(m.relayed == 1);
  CHECK(m.hosted);
  CHECK(m.domain == "customer.test");
  CHECK(m.first_seen == *parse_rfc3339("2026-12-02T10:05:00Z"));
  REQUIRE(m.ips.size() == 1);
  CHECK(to_string(m.ips[0]) == "192.0.2.10");
  CHECK(scanner.live_messages() == 0);
}

TEST_CASE("a sender of another domain lowers the confidence to medium") {
  Scanner scanner(config(), options());
  feed(scanner, std::vector<std::string>{login("10:00:00", "alice@customer.test", "192.0.2.10")} +
                    relay("10:05:00", "A1", "192.0.2.10", "alice@gmail.example"));
  CHECK(confidence_of(find(scanner, "alice@customer.test")) == "medium");
}

TEST_CASE("an authenticated submission after the last relay is switched, a relay after it is not") {
  Scanner scanner(config(), options());
  feed(scanner,
       std::vector<std::string>{login("10:00:00", "bob@customer.test", "192.0.2.11")} +
           relay("10:01:00", "B1", "192.0.2.11", "bob@customer.test") +
           submission("10:02:00", "B2", "192.0.2.11", "bob@customer.test", "bob@customer.test"));
  const Mailbox& bob = find(scanner, "bob@customer.test");
  CHECK(state_of(bob) == State::Switched);
  CHECK(confidence_of(bob) == "explicit");
  CHECK(bob.authenticated == 1);
  feed(scanner, relay("10:03:00", "B3", "192.0.2.11", "bob@customer.test"));
  CHECK(state_of(find(scanner, "bob@customer.test")) == State::AtRisk);
}

TEST_CASE("two mailboxes on one IP make a relay ambiguous, and both are named") {
  Scanner scanner(config(), options());
  feed(scanner, std::vector<std::string>{login("10:00:00", "carol@customer.test", "192.0.2.12"),
                                         login("10:00:30", "dave@second.test", "192.0.2.12")} +
                    relay("10:01:00", "C1", "192.0.2.12", "carol@customer.test"));
  const Mailbox& carol = find(scanner, "carol@customer.test");
  const Mailbox& dave = find(scanner, "dave@second.test");
  CHECK(state_of(carol) == State::Ambiguous);
  CHECK(state_of(dave) == State::Ambiguous);
  CHECK(confidence_of(carol) == "low");
  CHECK(carol.shared_with == std::vector<std::string>{"dave@second.test"});
  CHECK(dave.shared_with == std::vector<std::string>{"carol@customer.test"});
  CHECK(carol.relayed_shared == 1);
  CHECK(carol.relayed == 0);
}

TEST_CASE("a reject_warning or INFO line from the relaying IP makes the evidence explicit") {
  Scanner scanner(config(), options());
  feed(scanner,
       std::vector<std::string>{
           login("10:00:00", "erin@customer.test", "2001:db8::5"),
           "10:01:00 postfix/smtpd[5]: NOQUEUE: reject_warning: RCPT from pc[2001:db8::5]: 554 "
           "5.7.1 <r@remote.test>: Relay access denied; from=<erin@customer.test> "
           "to=<r@remote.test> proto=ESMTP helo=<pc>"} +
           relay("10:01:00", "D1", "2001:db8::5", "erin@customer.test"));
  const Mailbox& erin = find(scanner, "erin@customer.test");
  CHECK(state_of(erin) == State::AtRisk);
  CHECK(confidence_of(erin) == "explicit");
  CHECK(erin.explicit_relays == 1);
  CHECK(scanner.stats().explicit_lines == 1);
}

TEST_CASE("Relay access denied after a login is broke, and without a login it is only counted") {
  Scanner scanner(config(), options());
  const std::string denied =
      " postfix/smtpd[5]: NOQUEUE: reject: RCPT from pc[192.0.2.14]: 554 5.7.1 <r@remote.test>: "
      "Relay access denied; from=<frank@customer.test> to=<r@remote.test> proto=ESMTP helo=<pc>";
  feed(scanner, std::vector<std::string>{"09:00:00" + denied,
                                         login("10:00:00", "frank@customer.test", "192.0.2.14")} +
                    relay("10:00:10", "E0", "192.0.2.14", "frank@customer.test") +
                    std::vector<std::string>{"10:01:00" + denied});
  const Mailbox& frank = find(scanner, "frank@customer.test");
  CHECK(state_of(frank) == State::Broke);
  CHECK(confidence_of(frank) == "high");
  CHECK(frank.denied == 1);
  CHECK(scanner.stats().unattributed_denied == 1);
}

TEST_CASE("SASL failures after switching are login-failing, and unknown names are only counted") {
  Scanner scanner(config(), options());
  const std::string fail =
      " postfix/submission/smtpd[5]: warning: pc[192.0.2.15]: SASL PLAIN authentication failed: "
      "UGFzc3dvcmQ6, sasl_username=";
  feed(scanner,
       submission("10:00:00", "F1", "192.0.2.15", "grace@customer.test", "grace@customer.test") +
           std::vector<std::string>{"10:05:00" + fail + "Grace@customer.test",
                                    "10:05:01" + fail + "nobody@customer.test"});
  const Mailbox& grace = find(scanner, "grace@customer.test");
  CHECK(state_of(grace) == State::LoginFailing);
  CHECK(grace.login_failures == 1);
  CHECK(scanner.mailboxes().count("nobody@customer.test") == 0);
  CHECK(scanner.stats().unknown_sasl_failures == 1);
  // Logging in again afterwards: switched.
  feed(scanner,
       submission("10:06:00", "F2", "192.0.2.15", "grace@customer.test", "grace@customer.test"));
  CHECK(state_of(find(scanner, "grace@customer.test")) == State::Switched);
}

TEST_CASE(
    "relays outside the grace window, from mynetworks or to hosted domains are not the map's") {
  Scanner scanner(config(), options());
  feed(scanner,
       std::vector<std::string>{login("10:00:00", "hank@customer.test", "192.0.2.16"),
                                login("10:00:00", "ivy@customer.test", "127.0.0.5")} +
           relay("10:31:00", "G1", "192.0.2.16", "hank@customer.test") +
           relay("10:01:00", "G2", "127.0.0.5", "ivy@customer.test") +
           relay("10:02:00", "G3", "192.0.2.16", "x@elsewhere.test", "hank@second.test", "lmtp") +
           relay("10:02:00", "G4", "192.0.2.16", "x@elsewhere.test", "root@mail.local", "local"));
  CHECK(scanner.mailboxes().empty());
  REQUIRE(scanner.unattributed().size() == 1);
  scanner.unattributed().for_each([](const IpAddress& ip, const Unattributed& u) {
    CHECK(u.messages == 1);
    CHECK(to_string(ip) == "192.0.2.16");
  });
}

TEST_CASE("logins map back through the provider's login scheme") {
  Scanner scanner(config(), options());
  feed(scanner, std::vector<std::string>{login("10:00:00", "jo", "192.0.2.17"),
                                         login("10:00:00", "kim@elsewhere.example", "192.0.2.18"),
                                         login("10:00:00", "lu", "192.0.2.19")} +
                    relay("10:01:00", "H1", "192.0.2.17", "jo@bare-b.test") +
                    relay("10:01:00", "H2", "192.0.2.18", "kim@elsewhere.example") +
                    relay("10:01:00", "H3", "192.0.2.19", "lu@customer.test"));
  const Mailbox& jo = find(scanner, "jo@bare-b.test");
  CHECK(jo.hosted);
  CHECK(jo.domain == "bare-b.test");
  const Mailbox& kim = find(scanner, "kim@elsewhere.example");
  CHECK_FALSE(kim.hosted);
  // A bare login whose sender's domain does not use local-part logins: not mapped.
  const Mailbox& lu = find(scanner, "lu");
  CHECK_FALSE(lu.hosted);
  CHECK(lu.domain.empty());
}

TEST_CASE("the state survives save and load, grace window included") {
  const std::vector<std::string> first = {login("10:00:00", "alice@customer.test", "192.0.2.10"),
                                          login("10:00:00", "bob@customer.test", "192.0.2.11"),
                                          "10:00:01 postfix/smtpd[5]: Q1: client=pc[192.0.2.11]"};
  const std::vector<std::string> second =
      std::vector<std::string>{"10:00:02 postfix/qmgr[6]: Q1: from=<b w@x>, size=1, nrcpt=1",
                               "10:00:03 postfix/smtp[7]: Q1: to=<r@remote.test>, relay=mx, "
                               "status=sent"} +
      relay("10:20:00", "Q2", "192.0.2.10", "alice@customer.test");
  Scanner whole(config(), options());
  feed(whole, first + second);
  Scanner before(config(), options());
  feed(before, first);
  std::ostringstream saved;
  before.save(saved);
  Scanner after(config(), options());
  std::istringstream in(saved.str());
  std::string line, error;
  while (std::getline(in, line)) REQUIRE_MESSAGE(after.load_line(line, error), line, ": ", error);
  feed(after, second);
  REQUIRE(after.mailboxes().size() == whole.mailboxes().size());
  for (const auto& [address, m] : whole.mailboxes()) {
    const Mailbox& other = find(after, address);
    CHECK(state_of(other) == state_of(m));
    CHECK(other.relayed == m.relayed);
    CHECK(other.first_seen == m.first_seen);
    CHECK(other.ips == m.ips);
  }
  CHECK(state_of(find(after, "bob@customer.test")) == State::AtRisk);
  std::string error2;
  Scanner bad(config(), options());
  CHECK_FALSE(bad.load_line("login\tnot-an-ip\t0\t1\t2", error2));
  CHECK(error2 == "bad login record");
  CHECK_FALSE(bad.load_line("mailbox\tx", error2));
  CHECK_FALSE(bad.load_line("nonsense", error2));
  CHECK(error2 == "unknown record 'nonsense'");
}

TEST_CASE("memory is bounded by the grace window, not by the number of lines") {
  Scanner scanner(config(), options());
  YearlessClock clock(0, true);
  // 20,000 logins from different IPs and 20,000 messages over 20,000 minutes: only about the last
  // 30 minutes' logins stay; delivered messages are forgotten at once.
  const Micros start = *parse_rfc3339("2026-12-01T00:00:00Z");
  std::size_t most_logins = 0;
  for (int i = 0; i < 20000; ++i) {
    const Micros t = start + static_cast<Micros>(i) * 60 * kSecondMicros;
    const std::string ip = "10." + std::to_string(i / 65536 % 256) + "." +
                           std::to_string(i / 256 % 256) + "." + std::to_string(i % 256);
    const std::string qid = "Q" + std::to_string(i);
    const std::string user = "u" + std::to_string(i % 50) + "@customer.test";
    const std::string lines[] = {
        "pop3-login: Login: user=<" + user + ">, method=PLAIN, rip=" + ip + ", lip=1.1.1.1",
        qid + ": client=pc[" + ip + "]", qid + ": from=<" + user + ">, size=1, nrcpt=1",
        qid + ": to=<r@remote.test>, relay=mx, status=sent"};
    scanner.add(t, parse_event("dovecot", lines[0]));
    scanner.add(t, parse_event("postfix/smtpd", lines[1]));
    scanner.add(t, parse_event("postfix/qmgr", lines[2]));
    scanner.add(t, parse_event("postfix/smtp", lines[3]));
    most_logins = std::max(most_logins, scanner.live_logins());
  }
  // The last 30 minutes' logins plus at most a quarter of the grace period not yet swept.
  CHECK(most_logins <= 39);
  CHECK(scanner.live_messages() == 0);
  CHECK(scanner.mailboxes().size() == 50);
  CHECK(find(scanner, "u7@customer.test").relayed == 400);
}

TEST_CASE("login names match in any case, in a table grown past thousands of names") {
  Scanner scanner(config(), options());
  const Micros start = *parse_rfc3339("2026-12-02T10:00:00Z");
  const std::string long_name = "Someone.With.A.Rather.Long.Local.Part.Indeed@Customer.test";
  REQUIRE(long_name.size() > 55);
  for (int i = 0; i < 3000; ++i) {
    const std::string user = i == 1234 ? long_name : "User" + std::to_string(i) + "@Customer.test";
    const std::string ip = "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256);
    scanner.add(start, parse_event("dovecot", "pop3-login: Login: user=<" + user +
                                                  ">, method=PLAIN, rip=" + ip + ", lip=1.1.1.1"));
  }
  CHECK(scanner.live_logins() == 3000);
  const char* failures[] = {
      "warning: pc[192.0.2.1]: SASL PLAIN authentication failed: x, "
      "sasl_username=USER2999@customer.TEST",
      "warning: pc[192.0.2.1]: SASL PLAIN authentication failed: x, "
      "sasl_username=user7@customer.test",
      "warning: pc[192.0.2.1]: SASL PLAIN authentication failed: x, "
      "sasl_username=someone.with.a.rather.long.local.part.indeed@customer.test",
      "warning: pc[192.0.2.1]: SASL PLAIN authentication failed: x, "
      "sasl_username=user3000@customer.test",
      "warning: pc[192.0.2.1]: SASL PLAIN authentication failed: x, "
      "sasl_username=user29999@customer.test"};
  for (const char* failure : failures) {
    scanner.add(start + kSecondMicros, parse_event("postfix/smtpd", failure));
  }
  CHECK(find(scanner, "user2999@customer.test").login_failures == 1);
  CHECK(find(scanner, "user7@customer.test").login_failures == 1);
  CHECK(
      find(scanner, "someone.with.a.rather.long.local.part.indeed@customer.test").login_failures ==
      1);
  CHECK(scanner.mailboxes().size() == 3);
  CHECK(scanner.stats().unknown_sasl_failures == 2);
  // An authenticated submission under another spelling of a long name is the same mailbox.
  feed(scanner, {"10:00:02 postfix/submission/smtpd[5]: S1: client=pc[192.0.2.1], "
                 "sasl_method=PLAIN, "
                 "sasl_username=SOMEONE.WITH.A.RATHER.LONG.LOCAL.PART.INDEED@customer.test",
                 "10:00:02 postfix/qmgr[6]: S1: from=<x@customer.test>, size=1, nrcpt=1"});
  CHECK(find(scanner, "someone.with.a.rather.long.local.part.indeed@customer.test").authenticated ==
        1);
}

TEST_CASE("evidence lines and unfinished messages are dropped after their time bound") {
  Scanner scanner(config(), options());
  const Micros start = *parse_rfc3339("2026-12-01T00:00:00Z");
  std::size_t most_evidence = 0, most_messages = 0;
  // One reject_warning and one message that is accepted but never delivered nor removed
  // per minute, for two days: the evidence lives for the grace window (30 min), the message
  // for at most an hour and a quarter.
  for (int i = 0; i < 2880; ++i) {
    const Micros t = start + static_cast<Micros>(i) * 60 * kSecondMicros;
    const std::string ip = "10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256);
    scanner.add(t, parse_event("postfix/smtpd",
                               "NOQUEUE: reject_warning: RCPT from pc[" + ip +
                                   "]: 554 5.7.1 <r@remote.test>: Relay access denied; "
                                   "from=<a@customer.test> to=<r@remote.test> proto=ESMTP"));
    scanner.add(t,
                parse_event("postfix/smtpd", "Q" + std::to_string(i) + ": client=pc[" + ip + "]"));
    most_evidence = std::max(most_evidence, scanner.live_evidence());
    most_messages = std::max(most_messages, scanner.live_messages());
  }
  CHECK(most_evidence <= 33);
  CHECK(most_messages >= 60);
  CHECK(most_messages <= 76);
  CHECK(scanner.stats().expired_messages >= 2880 - 76);
  // A message older than the bound is not joined, even before a sweep drops it.
  Scanner fresh(config(), options());
  feed(fresh, {login("10:00:00", "late@customer.test", "192.0.2.77"),
               "10:00:00 postfix/smtpd[5]: L1: client=pc[192.0.2.77]",
               "10:00:00 postfix/qmgr[6]: L1: from=<late@customer.test>, size=1, nrcpt=1",
               login("10:59:00", "late@customer.test", "192.0.2.77"),
               "11:01:01 postfix/smtp[7]: L1: to=<r@remote.test>, relay=mx, status=sent"});
  CHECK(fresh.mailboxes().empty());
  CHECK(fresh.stats().expired_messages == 1);
}

TEST_CASE("a state file with a queue ID longer than Postfix writes is refused") {
  Scanner scanner(config(), options());
  std::string error;
  CHECK(scanner.load_line("user\talice@customer.test", error));
  CHECK(scanner.load_line("pending\tQ1\t192.0.2.1\t5\t0\t0\tx@y", error));
  CHECK(scanner.live_messages() == 1);
  CHECK_FALSE(
      scanner.load_line("pending\t" + std::string(33, 'A') + "\t192.0.2.1\t5\t0\t0\tx@y", error));
  CHECK(error == "bad pending record");
}

TEST_CASE("a mailbox's IP list keeps the first 16 distinct addresses in order, inline and beyond") {
  IpList list;
  CHECK(list.empty());
  for (int round = 0; round < 2; ++round) {  // the second round adds nothing: all are listed
    for (int i = 0; i < 20; ++i) list.add(*parse_ip("192.0.2." + std::to_string(i)));
  }
  REQUIRE(list.size() == IpList::kMax);
  for (std::size_t i = 0; i < list.size(); ++i) {
    CHECK(to_string(list[i]) == "192.0.2." + std::to_string(i));
  }
  // An address seen again, inline (the second) or beyond (the sixth), is not listed twice.
  IpList few;
  for (const char* ip : {"2001:db8::1", "::ffff:192.0.2.1", "192.0.2.1", "2001:db8::2",
                         "2001:db8::3", "2001:db8::4", "2001:db8::5", "192.0.2.1", "2001:db8::5"}) {
    few.add(*parse_ip(ip));
  }
  REQUIRE(few.size() == 6);
  CHECK(to_string(few[1]) == "192.0.2.1");
  CHECK(to_string(few[5]) == "2001:db8::5");
  IpList same;
  for (std::size_t i = 0; i < few.size(); ++i) same.add(few[i]);
  CHECK(same == few);
  same.add(*parse_ip("2001:db8::6"));
  CHECK_FALSE(same == few);
  CHECK_FALSE(list == few);
}

TEST_CASE("a batch of events leaves the same state as the events one at a time") {
  // Logins, relays, submissions, refusals and SASL failures over a few IPs and names (several
  // users per IP, queue IDs reused), more than one batch's worth, some events in the same
  // batch as the events they depend on.
  std::vector<std::string> lines;
  const char* ips[] = {"192.0.2.10", "192.0.2.11", "2001:db8::5", "::ffff:192.0.2.12"};
  const char* users[] = {"alice@customer.test", "Bob@customer.test", "carol@second.test",
                         "dave@customer.test", "erin"};
  for (int i = 0; i < 150; ++i) {
    char time[9];
    std::snprintf(time, sizeof time, "10:%02d:%02d", i / 60, i % 60);
    const char* ip = ips[i % 4];
    const char* user = users[i % 5];
    const std::string qid = "Q" + std::to_string(i % 40);
    switch (i % 6) {
      case 0:
      case 3:
        lines.push_back(login(time, user, ip));
        break;
      case 1:
        lines = lines + relay(time, qid.c_str(), ip, user);
        break;
      case 2:
        lines = lines + submission(time, qid.c_str(), ip, user, user);
        break;
      case 4:
        lines.push_back(std::string(time) + " postfix/smtpd[5]: NOQUEUE: reject: RCPT from pc[" +
                        ip + "]: 554 5.7.1 <r@remote.test>: Relay access denied; from=<" + user +
                        "> to=<r@remote.test> proto=ESMTP helo=<pc>");
        break;
      case 5:
        lines.push_back(std::string(time) + " postfix/smtpd[5]: warning: pc[" + ip +
                        "]: SASL PLAIN authentication failed: x, sasl_username=" + user);
        break;
    }
  }
  Scanner one(config(), options());
  feed(one, lines);
  Scanner batched(config(), options());
  YearlessClock clock(0, true);
  std::vector<std::string> texts;
  for (const std::string& text : lines) {
    texts.push_back("2026-12-02T" + text.substr(0, 8) + "Z mail " + text.substr(9));
  }
  std::vector<TimedEvent> events;
  for (const std::string& line : texts) {
    const auto parsed = parse_syslog_line(line, clock);
    REQUIRE_MESSAGE(parsed, line);
    events.push_back({parsed->time, parse_event(parsed->program, parsed->message)});
  }
  REQUIRE(events.size() > 3 * Scanner::kBatch);
  // Batches of every size up to kBatch, and one span longer than a batch.
  std::size_t at = 0;
  for (std::size_t size = 1; at < events.size() / 2; size = size % Scanner::kBatch + 1) {
    const std::size_t n = std::min(size, events.size() - at);
    batched.add(std::span<const TimedEvent>(events).subspan(at, n));
    at += n;
  }
  batched.add(std::span<const TimedEvent>(events).subspan(at));
  std::ostringstream a, b;
  one.save(a);
  batched.save(b);
  CHECK(a.str() == b.str());
  CHECK(one.mailboxes().size() > 3);
  CHECK(one.stats().events > 3 * Scanner::kBatch);
}
