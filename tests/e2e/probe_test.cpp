// `mailconfd probe` on the command line: usage, selection and exit codes. The probe against
// real Postfix and Dovecot is tests/e2e/mail_stack_test.sh.
#include <doctest/doctest.h>

#include "service.h"

using e2e::run_mailconfd;

TEST_CASE("probe --help describes every option and exits 0") {
  auto r = run_mailconfd({"probe", "--help"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.starts_with("usage: mailconfd probe"));
  for (auto option : {"--json", "--timeout", "--ca-file", "--user", "--password-file", "--relay-to",
                      "--connect-to", "--parallel"}) {
    CHECK_MESSAGE(r.out.find(option) != std::string::npos, option);
  }
}

TEST_CASE("probe refuses bad options and unknown names with exit 2") {
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  const Case cases[] = {
      {{"probe", "--user", "alice@example.com"}, "--user and --password-file go together"},
      {{"probe", "--timeout", "1h"}, "--timeout '1h' is not a duration from 100ms to 10m"},
      {{"probe", "--connect-to", "smtp.example.net:587"}, "is not HOST:PORT:ADDR:PORT"},
      {{"probe", "--relay-to", "nobody"}, "--relay-to 'nobody' is not an email address"},
      {{"probe", "--parallel", "0"}, "--parallel must be from 1 to 64"},
      {{"probe", "--frobnicate", "1"}, "unknown option --frobnicate"},
      {{"probe", "not-hosted.example"},
       "'not-hosted.example' is neither a provider id nor a hosted domain"},
  };
  for (const Case& c : cases) {
    auto r = run_mailconfd(c.args);
    CAPTURE(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(r.err.find(c.error) != std::string::npos);
  }
}

TEST_CASE("probe names an unreachable server and exits 1") {
  // The example's hosts, sent to a loopback port where nothing listens.
  auto r = run_mailconfd({"probe", "example.com", "--timeout", "2s", "--connect-to",
                          "smtp.example.net:587:127.0.0.1:1,imap.example.net:993:127.0.0.1:1,"
                          "pop.example.net:995:127.0.0.1:1"});
  CHECK(r.exit_code == 1);
  CHECK(r.out ==
        "FAIL  submission smtp.example.net:587 STARTTLS  [example.net]\n"
        "      PROBLEM  connect  cannot connect to 127.0.0.1:1: Connection refused\n"
        "FAIL  imap imap.example.net:993 TLS  [example.net]\n"
        "      PROBLEM  connect  cannot connect to 127.0.0.1:1: Connection refused\n"
        "FAIL  pop3 pop.example.net:995 TLS  [example.net]\n"
        "      PROBLEM  connect  cannot connect to 127.0.0.1:1: Connection refused\n"
        "3 servers probed, 3 with problems\n");
}

TEST_CASE("probe never reads a password from the command line, only from a file") {
  auto r = run_mailconfd(
      {"probe", "--user", "alice@example.com", "--password-file", "/nonexistent/password"});
  CHECK(r.exit_code == 1);
  CHECK(r.err == "mailconfd: cannot read a password from /nonexistent/password\n");
  CHECK(run_mailconfd({"probe", "--password", "secret"}).exit_code == 2);
}
