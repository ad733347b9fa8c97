#include "cutover/log_line.h"

#include <time.h>

#include <cctype>
#include <cstdlib>
#include <string>

#include <doctest/doctest.h>

using namespace mailconfd::cutover;

namespace {

Micros at(const char* rfc3339_text) { return *parse_rfc3339(rfc3339_text); }

}  // namespace

TEST_CASE("parse_syslog_line reads every timestamp format a Debian 12 mail server writes") {
  struct Case {
    const char* line;
    const char* time;
    const char* program;
    const char* message;
  };
  const Case cases[] = {
      // rsyslog, Debian 12 default: RFC 3339 with microseconds and offset
      {"2025-11-27T16:26:19.504798+03:00 mail postfix/submission/smtpd[147650]: 7B05841236: "
       "client=unknown[185.21.46.169]",
       "2025-11-27T13:26:19.504798Z", "postfix/submission/smtpd",
       "7B05841236: client=unknown[185.21.46.169]"},
      {"2026-12-02T10:00:00Z host dovecot: pop3-login: Login: user=<a>", "2026-12-02T10:00:00Z",
       "dovecot", "pop3-login: Login: user=<a>"},
      // RFC 3164, day space-padded, no year
      {"Jul  2 12:22:07 integrecomm dovecot: pop3-login: Login: user=<nilator>",
       "2026-07-02T12:22:07Z", "dovecot", "pop3-login: Login: user=<nilator>"},
      // Postfix maillog_file: day zero-padded, host = first label
      {"Jul 02 12:22:07 smtp postfix/smtpd[6445]: NOQUEUE: reject: RCPT from x[1.2.3.4]",
       "2026-07-02T12:22:07Z", "postfix/smtpd", "NOQUEUE: reject: RCPT from x[1.2.3.4]"},
      // Dovecot's own log_path: no host, the service as tag, the level in the message
      {"Jul 02 12:22:07 pop3-login: Info: Login: user=<alice>", "2026-07-02T12:22:07Z",
       "pop3-login", "Info: Login: user=<alice>"},
      // Dovecot 2.4 under systemd with a pid
      {"Oct  8 10:00:02 titan dovecot[1]: imap-login: Logged in: user=<info@shop.gr>",
       "2025-10-08T10:00:02Z", "dovecot", "imap-login: Logged in: user=<info@shop.gr>"},
      // RFC 5424
      {"<22>1 2026-11-28T10:00:00.123456+01:00 mail postfix/smtpd 1234 - - 1CF582025C: "
       "client=x[2.3.4.5]",
       "2026-11-28T09:00:00.123456Z", "postfix/smtpd", "1CF582025C: client=x[2.3.4.5]"},
      {"<22>1 2026-11-28T10:00:00Z mail postfix/qmgr 1 - [meta sequenceId=\"1\" x=\"a\\]b\"] "
       "\xEF\xBB\xBF"
       "ABC: removed",
       "2026-11-28T10:00:00Z", "postfix/qmgr", "ABC: removed"},
      // a forwarder that keeps <PRI> before a classic line
      {"<22>Jul  2 12:22:07 mail postfix/qmgr[9]: ABC: removed", "2026-07-02T12:22:07Z",
       "postfix/qmgr", "ABC: removed"},
      // a shorter time whose line has a space where rsyslog's 32-byte time would end
      {"2026-12-02T10:00:00Z mail.exampl postfix/qmgr[7]: ABC: removed", "2026-12-02T10:00:00Z",
       "postfix/qmgr", "ABC: removed"},
      // a host that is not made of tag bytes
      {"2026-12-02T10:00:00Z [::1] postfix/qmgr[7]: ABC: removed", "2026-12-02T10:00:00Z",
       "postfix/qmgr", "ABC: removed"},
      // Windows line end
      {"2026-12-02T10:00:00Z host postfix/qmgr[1]: ABC: removed\r", "2026-12-02T10:00:00Z",
       "postfix/qmgr", "ABC: removed"},
  };
  for (const Case& c : cases) {
    YearlessClock clock(at("2026-07-10T00:00:00Z"), true);
    if (std::string(c.line).find("Oct  8") != std::string::npos) {
      clock = YearlessClock(at("2025-10-09T00:00:00Z"), true);
    }
    const auto parsed = parse_syslog_line(c.line, clock);
    REQUIRE_MESSAGE(parsed, c.line);
    CHECK_MESSAGE(parsed->time == at(c.time), c.line);
    CHECK(parsed->program == c.program);
    CHECK(parsed->message == c.message);
  }
}

TEST_CASE("year-less timestamps across New Year get the previous year for December") {
  YearlessClock clock(at("2027-01-01T00:30:00Z"), true);
  const auto december =
      parse_syslog_line("Dec 31 23:59:59 mail postfix/qmgr[1]: A: removed", clock);
  const auto january = parse_syslog_line("Jan  1 00:10:00 mail postfix/qmgr[1]: A: removed", clock);
  REQUIRE(december);
  REQUIRE(january);
  CHECK(december->time == at("2026-12-31T23:59:59Z"));
  CHECK(january->time == at("2027-01-01T00:10:00Z"));
  // A day of slack: a file touched just before a line written after midnight.
  CHECK(clock.resolve(1, 1, 23, 0, 0) == at("2027-01-01T23:00:00Z"));
  CHECK(clock.resolve(1, 3, 0, 0, 0) == at("2026-01-03T00:00:00Z"));
  // 29 February belongs to the last leap year.
  YearlessClock later(at("2029-03-01T00:00:00Z"), true);
  CHECK(later.resolve(2, 29, 12, 0, 0) == at("2028-02-29T12:00:00Z"));
  CHECK_FALSE(later.resolve(2, 30, 12, 0, 0));
  CHECK_FALSE(later.resolve(13, 1, 0, 0, 0));
}

TEST_CASE("year-less timestamps are local time unless the clock is UTC") {
  const char* old = std::getenv("TZ");
  const std::string saved = old ? old : "";
  setenv("TZ", "Europe/Berlin", 1);
  tzset();
  YearlessClock clock(at("2026-07-10T00:00:00Z"), false);
  const auto parsed = parse_syslog_line("Jul  2 12:22:07 mail postfix/qmgr[1]: A: removed", clock);
  if (old) {
    setenv("TZ", saved.c_str(), 1);
  } else {
    unsetenv("TZ");
  }
  tzset();
  REQUIRE(parsed);
  CHECK(parsed->time == at("2026-07-02T10:22:07Z"));  // CEST = UTC+2
}

TEST_CASE("lines that are not log lines are refused, never half-read") {
  const std::string binary("\x00\x01\x02\xff\xfe postfix/smtpd[1]: A: client=x[1.2.3.4]", 44);
  const std::string with_nul("2026-12-02T10:00:00Z host postfix\0smtpd[1]: A: removed", 53);
  const char* bad[] = {
      "",
      "garbage",
      "2026-12-02T10:00",                                        // truncated timestamp
      "2026-12-02T10:00:00Z",                                    // nothing after it
      "2026-12-02T10:00:00Z host",                               // no tag
      "2026-12-02T10:00:00Z host postfix/smtpd[12",              // truncated pid
      "2026-12-02T10:00:00Z host postfix/smtpd[x]: A: removed",  // pid not a number
      "2026-13-02T10:00:00Z host postfix/qmgr[1]: A: removed",   // month 13
      "2026-02-30T10:00:00Z host postfix/qmgr[1]: A: removed",   // 30 February
      "2026-12-02T25:00:00Z host postfix/qmgr[1]: A: removed",
      "2026-12-02 10:00:00Z host postfix/qmgr[1]: A: removed",  // space, not T
      "2026-12-02T10:00:00+0100 host postfix/qmgr[1]: A: removed",
      "Jul 32 12:22:07 mail postfix/qmgr[1]: A: removed",
      "Jux  2 12:22:07 mail postfix/qmgr[1]: A: removed",
      "Jul  2 12:22 mail postfix/qmgr[1]: A: removed",
      "Jul  2 12:22:07",
      "<22>1 2026-11-28T10:00:00Z mail postfix/smtpd 1234",  // RFC 5424 cut short
      "<22>1 2026-11-28T10:00:00Z mail postfix/smtpd 1234 - [unterminated",
      "<999999>Jul  2 12:22:07 mail postfix/qmgr[9]: ABC: removed",
  };
  YearlessClock clock(at("2026-07-10T00:00:00Z"), true);
  for (const char* line : bad) CHECK_MESSAGE(!parse_syslog_line(line, clock), line);
  CHECK_FALSE(parse_syslog_line(binary, clock));
  CHECK_FALSE(parse_syslog_line(with_nul, clock));
}

TEST_CASE("parse_journal_line reads journalctl -o json objects") {
  std::string storage;
  std::string_view cursor;
  const auto parsed = parse_journal_line(
      R"({"__CURSOR":"s=abc;i=1","__REALTIME_TIMESTAMP":"1764669600000001","_PID":"12",)"
      R"("SYSLOG_IDENTIFIER":"postfix/smtpd","MESSAGE":"ABC: client=x[2001:db8::7]",)"
      R"("_SYSTEMD_UNIT":"postfix@-.service","EXTRA":[1,{"a":null}]})",
      storage, &cursor);
  REQUIRE(parsed);
  CHECK(parsed->time == 1764669600000001);
  CHECK(parsed->program == "postfix/smtpd");
  CHECK(parsed->message == "ABC: client=x[2001:db8::7]");
  CHECK(cursor == "s=abc;i=1");

  // A non-UTF-8 MESSAGE comes as an array of bytes; escapes are decoded.
  const auto bytes = parse_journal_line(
      R"({"__REALTIME_TIMESTAMP":"1","SYSLOG_IDENTIFIER":"dovecot\u002f","MESSAGE":[65,255,10]})",
      storage);
  REQUIRE(bytes);
  CHECK(bytes->program == "dovecot/");
  CHECK(bytes->message == std::string("A\xff"));

  for (const char* bad :
       {"", "{", "[]", R"({"MESSAGE":"x"})",
        R"({"__REALTIME_TIMESTAMP":"1","SYSLOG_IDENTIFIER":"a"})",
        R"({"__REALTIME_TIMESTAMP":"x1","SYSLOG_IDENTIFIER":"a","MESSAGE":"m"})",
        R"({"__REALTIME_TIMESTAMP":"1","SYSLOG_IDENTIFIER":"a","MESSAGE":"m"} x)",
        R"({"__REALTIME_TIMESTAMP":"1","SYSLOG_IDENTIFIER":"a","MESSAGE":"\ud800"})",
        R"({"__REALTIME_TIMESTAMP":"1","SYSLOG_IDENTIFIER":"a","MESSAGE":[256]})"}) {
    CHECK_MESSAGE(!parse_journal_line(bad, storage), bad);
  }
}

TEST_CASE("rfc3339 writes UTC seconds and parse_rfc3339 reads offsets") {
  CHECK(rfc3339(0) == "1970-01-01T00:00:00Z");
  CHECK(rfc3339(at("2026-12-31T23:59:59.999Z")) == "2026-12-31T23:59:59Z");
  CHECK(at("2026-01-01T00:30:00+01:00") == at("2025-12-31T23:30:00Z"));
  CHECK(at("2026-01-01T00:30:00-02:30") == at("2026-01-01T03:00:00Z"));
  CHECK(days_from_civil(2000, 3, 1) == 11017);
}

TEST_CASE("rsyslog's timestamps (six fraction digits, an offset) parse to the microsecond") {
  const Micros base = at("2026-12-02T10:11:12Z");
  CHECK(*parse_rfc3339("2026-12-02T10:11:12.345678+00:00") == base + 345'678);
  CHECK(*parse_rfc3339("2026-12-02T10:11:12.000001+00:00") == base + 1);
  CHECK(*parse_rfc3339("2026-12-02T12:41:12.999999+02:30") == base + 999'999);
  CHECK(*parse_rfc3339("2026-12-02T05:11:12.100000-05:00") == base + 100'000);
  CHECK(*parse_rfc3339("2026-12-02T10:11:60.000000+00:00") == at("2026-12-02T10:12:00Z"));
  CHECK(*parse_rfc3339("2026-12-02T10:11:12.3456789+00:00") == base + 345'678);
  CHECK(*parse_rfc3339("2026-12-02T10:11:12.34567+00:00") == base + 345'670);
  for (const char* bad : {"2026-12-02T10:11:12.34567x+00:00", "2026-12-02T10:11:12.345678+24:00",
                          "2026-12-02T10:11:12.345678+00:60", "2026-12-02T10:11:61.345678+00:00",
                          "2026-12-02T10:11:12.345678+0a:00", "2026-12-02T10:11:12.345678*00:00",
                          "2026-12-02T10:11:1x.345678+00:00", "2026-12-02T10:11:12.345678+00-00",
                          "2026-12-02T10:11:12 345678+00:00", "2026-12-02T10:11x12.345678+00:00"}) {
    CHECK_MESSAGE(!parse_rfc3339(bad), bad);
    YearlessClock clock(0, true);
    CHECK_MESSAGE(!clock.rfc3339(bad), bad);
  }
}

TEST_CASE("format_rfc3339 writes what rfc3339 always wrote, also outside years 0-9999") {
  char buffer[kRfc3339Max];
  for (const char* text : {"1970-01-01T00:00:00Z", "2026-02-28T23:59:59Z", "2028-02-29T12:00:00Z",
                           "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z"}) {
    CHECK(std::string(buffer, format_rfc3339(at(text), buffer)) == text);
    CHECK(rfc3339(at(text)) == text);
  }
  CHECK(rfc3339(at("9999-12-31T23:59:59Z") + 1'000'000) == "10000-01-01T00:00:00Z");
  CHECK(rfc3339(at("0000-01-01T00:00:00Z") - 1'000'000) == "-001-12-31T23:59:59Z");
  CHECK(rfc3339(-1) == "1969-12-31T23:59:59Z");
}

TEST_CASE("the clock's cached RFC 3339 minute gives the same times as parse_rfc3339") {
  // Consecutive lines share the minute (cached), change it, repeat an old one, and carry
  // offsets and fractions; invalid text after a valid line with the same minute is refused.
  // rsyslog's 32-byte form caches the offset too: the same minute with another offset, and
  // bad seconds, fraction or offset after a cached one.
  const char* lines[] = {"2026-12-02T10:11:12.345678+00:00",
                         "2026-12-02T10:11:13Z",
                         "2026-12-02T10:11:59.9-01:30",
                         "2026-12-02T10:12:00+02:00",
                         "2026-12-02t10:12:00Z",
                         "2026-12-02T10:11:60Z",
                         "2026-12-02T10:11:61Z",
                         "2026-12-02T10:11:1Z",
                         "2026-12-02T10:11:12",
                         "2026-12-02T10:11:12.Z",
                         "2026-12-02T10:11:12+1:00",
                         "2026-12-02T10:11:12Zx",
                         "2026-02-30T10:11:12Z",
                         "2026-02-30T10:11:13Z",
                         "2024-02-29T00:00:00Z",
                         "2026-12-02T10:11",
                         "2026-12-02T10:11:12.000001Z",
                         "2026-12-02T10:11:14.000002+00:00",
                         "2026-12-02T10:11:15.000003+00:00",
                         "2026-12-02T10:11:15.000003-03:00",
                         "2026-12-02T10:11:6x.000002-03:00",
                         "2026-12-02T10:11:61.000002-03:00",
                         "2026-12-02T10:11:16 000002-03:00",
                         "2026-12-02T10:11:16.00000x-03:00",
                         "2026-12-02T10:11:16.000004-03:60",
                         "2026-12-02T10:12:16.000004-03:00",
                         "1999-12-31T23:59:59.5+14:00"};
  YearlessClock clock(0, true);
  for (int round = 0; round < 2; ++round) {
    for (const char* text : lines) {
      const auto expected = parse_rfc3339(text);
      const auto cached = clock.rfc3339(text);
      REQUIRE_MESSAGE(expected.has_value() == cached.has_value(), text);
      if (expected) CHECK_MESSAGE(*expected == *cached, text);
    }
  }
  CHECK_FALSE(clock.rfc3339("2026-12-02T10:11:61Z"));
  CHECK(*clock.rfc3339("2026-12-02T10:11:12Z") == at("2026-12-02T10:11:12Z"));
  CHECK(*clock.rfc3339("2026-12-02T10:11:12.5+01:00") == at("2026-12-02T09:11:12Z") + 500'000);
}

TEST_CASE("a host or tag byte is recognised the same at every position, 16 at a time or not") {
  // Letters, digits, '/', '-', '_' and '.' are tag bytes; any other byte ends the host or tag
  // wherever it stands (before, in and after a 16-byte block).
  auto tag_byte = [](unsigned char c) {
    return std::isalnum(c) != 0 || c == '/' || c == '-' || c == '_' || c == '.';
  };
  YearlessClock clock(0, true);
  for (std::size_t pos : {0U, 5U, 15U, 16U, 17U, 31U, 33U}) {
    for (int b = 1; b < 256; ++b) {
      const auto c = static_cast<unsigned char>(b);
      if (c == '\n' || c == '\r') continue;
      std::string host(40, 'h');
      std::string tag = "postfix/" + std::string(32, 'q');
      host[pos] = static_cast<char>(c);
      tag[pos] = static_cast<char>(c);
      const std::string tail = "[12]: a message of some length";
      const std::string line_with_host = "2026-12-02T10:00:00Z " + host + " " + tag + tail;
      const std::string line_without_host = "2026-12-02T10:00:00Z " + tag + tail;
      const auto with_host = parse_syslog_line(line_with_host, clock);
      const auto without_host = parse_syslog_line(line_without_host, clock);
      INFO("byte ", b, " at ", pos);
      if (tag_byte(c)) {
        REQUIRE(with_host);
        CHECK(with_host->program == tag);
        REQUIRE(without_host);
        CHECK(without_host->program == tag);
      } else {
        CHECK_FALSE((with_host && with_host->program == tag));
        CHECK_FALSE((without_host && without_host->program == tag));
      }
    }
  }
}
