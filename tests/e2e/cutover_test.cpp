// `mailconfd cutover scan` as a command: rotated, compressed and piped logs in any order,
// --state across runs and rotation, the journal, exit statuses and usage errors. The join
// itself is tested against real Postfix and Dovecot in mail_stack_test.sh.
#include <fstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "service.h"

using e2e::run_command;

namespace {

const char* kConfig =
    "<mailconfd><provider id=\"provider.test\">"
    "<incoming protocol=\"pop3\" host=\"pop.provider.test\" port=\"995\" security=\"tls\"/>"
    "<outgoing host=\"smtp.provider.test\" port=\"587\" security=\"starttls\"/>"
    "<domain>customer.test</domain></provider></mailconfd>\n";

void write(const std::string& path, const std::string& text, bool append = false) {
  std::ofstream(path, append ? std::ios::app | std::ios::binary : std::ios::binary) << text;
}

std::string quote(const std::string& text) { return "'" + text + "'"; }

// Runs `mailconfd cutover scan ARGS` through sh (for pipes and the environment), TZ=UTC.
e2e::CommandResult scan(const std::string& dir, const std::string& args,
                        const std::string& prefix = "") {
  return run_command({"/bin/sh", "-c",
                      "cd " + quote(dir) + " && " + prefix + " TZ=UTC " + quote(MAILCONFD_BINARY) +
                          " cutover scan --config mailconfd.xml --mynetworks 127.0.0.0/8 " + args});
}

std::string login(const std::string& time, const std::string& user, const std::string& ip) {
  return time + " mail dovecot: pop3-login: Login: user=<" + user + ">, method=PLAIN, rip=" + ip +
         ", lip=192.0.2.1, mpid=1, TLS, session=<s>\n";
}

std::string relay(const std::string& time, const std::string& qid, const std::string& ip,
                  const std::string& sender) {
  return time + " mail postfix/smtpd[5]: " + qid + ": client=pc[" + ip + "]\n" + time +
         " mail postfix/qmgr[6]: " + qid + ": from=<" + sender + ">, size=1, nrcpt=1\n" + time +
         " mail postfix/smtp[7]: " + qid +
         ": to=<r@remote.test>, relay=mx[1.1.1.1]:25, "
         "status=sent (ok)\n";
}

std::string auth(const std::string& time, const std::string& qid, const std::string& ip,
                 const std::string& user) {
  return time + " mail postfix/submission/smtpd[5]: " + qid + ": client=pc[" + ip +
         "], sasl_method=PLAIN, sasl_username=" + user + "\n" + time +
         " mail postfix/qmgr[6]: " + qid + ": from=<" + user + ">, size=1, nrcpt=1\n";
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("cutover scan joins rotated, compressed and piped logs named in any order") {
  const std::string dir = e2e::temp_dir();
  write(dir + "/mailconfd.xml", kConfig);
  // Dovecot logs to its own file; Postfix's log was rotated twice, the older copy compressed.
  write(dir + "/dovecot.log",
        login("2026-12-02T10:00:00Z", "alice@customer.test", "192.0.2.10") +
            login("2026-12-02T11:00:00Z", "bob@customer.test", "2001:db8::b"));
  write(dir + "/mail.log.2",
        relay("2026-12-02T10:01:00Z", "A1", "192.0.2.10", "alice@customer.test"));
  write(dir + "/mail.log.1",
        relay("2026-12-02T11:01:00Z", "B1", "2001:db8::b", "bob@customer.test"));
  write(dir + "/mail.log", auth("2026-12-02T11:02:00Z", "B2", "2001:db8::b", "bob@customer.test") +
                               "\x01\x02 not a log line\n");
  REQUIRE(run_command({"gzip", dir + "/mail.log.2"}).exit_code == 0);
  auto r = scan(dir, "--json mail.log mail.log.2.gz - mail.log.1 < dovecot.log");
  CHECK(r.exit_code == 1);
  CHECK(r.err.empty());
  CHECK(has(r.out,
            "\"summary\":{\"at-risk\":1,\"ambiguous\":0,\"broke\":0,\"login-failing\":0,"
            "\"switched\":1,\"total\":2,\"not_hosted\":0}"));
  CHECK(has(r.out,
            "{\"address\":\"alice@customer.test\",\"domain\":\"customer.test\","
            "\"provider\":\"provider.test\",\"state\":\"at-risk\",\"confidence\":\"high\","
            "\"first_seen\":\"2026-12-02T10:01:00Z\""));
  CHECK(has(r.out,
            "{\"address\":\"bob@customer.test\",\"domain\":\"customer.test\","
            "\"provider\":\"provider.test\",\"state\":\"switched\""));
  CHECK(has(r.out, "\"ips\":[\"2001:db8::b\"]"));
  CHECK(has(r.out, "\"logs\":{\"lines\":11,"));
  CHECK(has(r.out, "\"skipped\":1,"));

  auto csv = scan(dir, "--csv mail.log mail.log.2.gz mail.log.1 dovecot.log");
  CHECK(csv.exit_code == 1);
  CHECK(csv.out ==
        "mailbox,domain,state,evidence,last_seen,setup_link\r\n"
        "alice@customer.test,customer.test,at-risk,\"1 message relayed via SMTP-after-POP "
        "without a login, from 192.0.2.10 (confidence high)\",2026-12-02T10:01:00Z,"
        "https://autodiscover.provider.test/setup?emailaddress=alice%40customer.test\r\n");
  auto table = scan(dir, "mail.log dovecot.log");
  CHECK(table.exit_code == 0);  // only bob's lines: switched
  CHECK(has(table.out, "switched      bob@customer.test "));
}

TEST_CASE("cutover scan --state reads only what is new, across rotation and compression") {
  const std::string dir = e2e::temp_dir();
  write(dir + "/mailconfd.xml", kConfig);
  const std::string first =
      login("2026-12-02T10:00:00Z", "alice@customer.test", "192.0.2.10") +
      relay("2026-12-02T10:01:00Z", "A1", "192.0.2.10", "alice@customer.test");
  // The last line is still being written: it waits for the next run.
  write(dir + "/mail.log", first + "2026-12-02T10:20:00Z mail postfix/smtpd[5]: A2: cli");
  auto r1 = scan(dir, "--json --state state mail.log");
  CHECK(r1.exit_code == 1);
  CHECK(has(r1.out, "\"lines\":4,"));
  CHECK(has(r1.out, "\"state\":\"at-risk\""));
  // The line completes; alice then switches (the login is 30 s old: the grace window was saved).
  write(dir + "/mail.log",
        "ent=pc[192.0.2.10]\n" +
            auth("2026-12-02T10:30:00Z", "A3", "192.0.2.10", "alice@customer.test"),
        true);
  auto r2 = scan(dir, "--json --state state mail.log");
  CHECK(r2.exit_code == 0);
  CHECK(has(r2.out, "\"lines\":7,"));
  CHECK(has(r2.out, "\"state\":\"switched\""));
  // logrotate: mail.log → mail.log.1 → compressed; a new mail.log. Each byte is read once.
  REQUIRE(run_command({"/bin/sh", "-c",
                       "cd " + quote(dir) +
                           " && mv mail.log mail.log.1 && "
                           "gzip mail.log.1"})
              .exit_code == 0);
  write(dir + "/mail.log",
        login("2026-12-02T11:00:00Z", "carol@customer.test", "192.0.2.12") +
            relay("2026-12-02T11:05:00Z", "C1", "192.0.2.12", "carol@customer.test"));
  auto r3 = scan(dir, "--json --state state mail.log mail.log.1.gz");
  CHECK(r3.exit_code == 1);
  CHECK(has(r3.out, "\"lines\":11,"));
  CHECK(has(r3.out,
            "\"summary\":{\"at-risk\":1,\"ambiguous\":0,\"broke\":0,\"login-failing\":0,"
            "\"switched\":1,\"total\":2,"));
  auto r4 = scan(dir, "--json --state state mail.log mail.log.1.gz");
  CHECK(has(r4.out, "\"lines\":11,"));

  write(dir + "/bad-state", "mailconfd-cutover-state\t1\nlogin\tx\n");
  auto bad = scan(dir, "--state bad-state mail.log");
  CHECK(bad.exit_code == 3);
  CHECK(bad.err == "mailconfd: bad-state:2: bad login record\n");
  write(dir + "/not-state", "hello\n");
  CHECK(scan(dir, "--state not-state mail.log").err ==
        "mailconfd: not-state:1: not a mailconfd cutover state file\n");
}

TEST_CASE("cutover scan --journal reads journalctl -o json and resumes after its cursor") {
  const std::string dir = e2e::temp_dir();
  write(dir + "/mailconfd.xml", kConfig);
  // A journalctl on PATH that records its arguments and prints two entries.
  write(dir + "/journalctl",
        "#!/bin/sh\necho \"$@\" >>\"$(dirname \"$0\")/journalctl.args\"\n"
        "cat <<'EOF'\n"
        "{\"__CURSOR\":\"s=1;i=1\",\"__REALTIME_TIMESTAMP\":\"1764669600000000\","
        "\"SYSLOG_IDENTIFIER\":\"dovecot\",\"MESSAGE\":\"pop3-login: Login: "
        "user=<dan@customer.test>, method=PLAIN, rip=192.0.2.13, lip=192.0.2.1\"}\n"
        "{\"__CURSOR\":\"s=1;i=2\",\"__REALTIME_TIMESTAMP\":\"1764669660000000\","
        "\"SYSLOG_IDENTIFIER\":\"postfix/smtpd\",\"MESSAGE\":\"NOQUEUE: reject: RCPT from "
        "pc[192.0.2.13]: 554 5.7.1 <r@remote.test>: Relay access denied; "
        "from=<dan@customer.test> to=<r@remote.test> proto=ESMTP helo=<pc>\"}\n"
        "EOF\n");
  REQUIRE(run_command({"chmod", "755", dir + "/journalctl"}).exit_code == 0);
  const std::string path = "PATH=" + quote(dir) + ":$PATH";
  auto r = scan(dir, "--json --journal --state state", path);
  CHECK(r.exit_code == 1);
  CHECK(has(r.out,
            "{\"address\":\"dan@customer.test\",\"domain\":\"customer.test\","
            "\"provider\":\"provider.test\",\"state\":\"broke\",\"confidence\":\"high\""));
  scan(dir, "--json --journal --state state", path);
  std::ifstream args(dir + "/journalctl.args");
  std::string first, second;
  std::getline(args, first);
  std::getline(args, second);
  CHECK(first == "-o json --no-pager -q");
  CHECK(second == "-o json --no-pager -q --after-cursor=s=1;i=2");
  auto failing = scan(dir, "--journal", "PATH=/nonexistent");
  CHECK(failing.exit_code == 3);
  CHECK(failing.err == "mailconfd: journalctl: No such file or directory\n");
}

TEST_CASE("cutover scan exits 2 on usage errors and 3 when a log cannot be read") {
  const std::string dir = e2e::temp_dir();
  write(dir + "/mailconfd.xml", kConfig);
  write(dir + "/empty.log", "");
  auto help = scan(dir, "--help");
  CHECK(help.exit_code == 0);
  CHECK(help.out.starts_with("usage: mailconfd cutover scan"));
  CHECK(has(help.out, "Exit status: 0 nobody at risk; 1 a hosted mailbox is at-risk"));
  struct Case {
    const char* args;
    const char* error;
  };
  for (const Case& c :
       {Case{"--json --csv empty.log", "--json and --csv exclude each other"},
        Case{"", "name at least one LOG ('-' for standard input) or --journal"},
        Case{"--grace 0 empty.log", "--grace '0' is not a duration from 1s to 7d"},
        Case{"--grace 30x empty.log", "--grace '30x' is not a duration from 1s to 7d"},
        Case{"--mynetworks 10.0.0.0/33 empty.log",
             "--mynetworks: '10.0.0.0/33' is not an address or CIDR network"},
        Case{"--frob 1 empty.log", "unknown option --frob"},
        Case{"--state", "option --state needs a value"}}) {
    auto r = scan(dir, c.args);
    CHECK_MESSAGE(r.exit_code == 2, c.args);
    CHECK_MESSAGE(r.err.starts_with(std::string("mailconfd: ") + c.error + "\n"), r.err);
  }
  auto missing = scan(dir, "missing.log");
  CHECK(missing.exit_code == 3);
  CHECK(missing.err == "mailconfd: missing.log: No such file or directory\n");
  auto empty = scan(dir, "--grace 45m empty.log");
  CHECK(empty.exit_code == 0);
  CHECK(has(empty.out, "grace 2700s"));
  auto bad_config = run_command(
      {"/bin/sh", "-c", quote(MAILCONFD_BINARY) + " cutover scan --config /nonexistent.xml -"});
  CHECK(bad_config.exit_code == 2);
  CHECK(run_command({MAILCONFD_BINARY, "cutover", "frob"}).exit_code == 2);
}
