#include "probe/report.h"

#include <doctest/doctest.h>

using namespace mailconfd;
using namespace mailconfd::probe;

TEST_CASE("sanitize keeps printable ASCII and cuts long server text") {
  CHECK(sanitize("220 ok\x1b[31m\r\n\xc3\xa9") == "220 ok?[31m????");
  CHECK(sanitize(std::string(300, 'a'), 10) == "aaaaaaaaaa…");
}

TEST_CASE("a server is ok only when every check passed") {
  ServerReport report;
  CHECK_FALSE(report.ok());  // no checks ran: nothing was proven
  report.pass("connect", "127.0.0.1:587");
  CHECK(report.ok());
  report.fail("relay", "open relay");
  CHECK_FALSE(report.ok());
}

TEST_CASE("format_json escapes and lists the problems of each server") {
  ServerReport report;
  report.server = MailServer{Protocol::Smtp, "smtp.example.net", 587, Security::StartTls, {}};
  report.provider = "example.net";
  report.address = "192.0.2.1:587";
  report.pass("greeting", "220 \"quoted\" back\\slash");
  report.fail("auth-before-tls", "AUTH PLAIN offered before STARTTLS");
  CHECK(format_json({report}) ==
        "{\"ok\":false,\"servers\":[{\"provider\":\"example.net\",\"protocol\":\"smtp\","
        "\"host\":\"smtp.example.net\",\"port\":587,\"security\":\"starttls\","
        "\"address\":\"192.0.2.1:587\",\"ok\":false,\"checks\":["
        "{\"name\":\"greeting\",\"ok\":true,\"detail\":\"220 \\\"quoted\\\" back\\\\slash\"},"
        "{\"name\":\"auth-before-tls\",\"ok\":false,\"detail\":\"AUTH PLAIN offered before "
        "STARTTLS\"}],\"problems\":[\"auth-before-tls: AUTH PLAIN offered before STARTTLS\"]}]}\n");
  CHECK(format_json({}) == "{\"ok\":true,\"servers\":[]}\n");
}

TEST_CASE("format_table shows one block per server and a summary") {
  ServerReport report;
  report.server = MailServer{Protocol::Imap, "imap.example.net", 993, Security::Tls, {}};
  report.provider = "example.net";
  report.fail("connect", "cannot resolve imap.example.net");
  CHECK(format_table({report}) ==
        "FAIL  imap imap.example.net:993 TLS  [example.net]\n"
        "      PROBLEM  connect  cannot resolve imap.example.net\n"
        "1 server probed, 1 with problems\n");
}
