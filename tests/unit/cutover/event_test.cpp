#include "cutover/event.h"

#include <string>

#include <doctest/doctest.h>

using namespace mailconfd::cutover;

namespace {

struct Want {
  EventKind kind;
  const char* queue_id = "";
  const char* ip = "";
  const char* user = "";
  const char* sender = "";
  const char* recipient = "";
  bool authenticated = false;
};

void check(const char* program, const char* message, const Want& want) {
  const Event e = parse_event(program, message);
  CHECK_MESSAGE(e.kind == want.kind, program, ": ", message);
  if (e.kind != want.kind) return;
  CHECK_MESSAGE(e.queue_id == want.queue_id, message);
  CHECK_MESSAGE(e.ip == want.ip, message);
  CHECK_MESSAGE(e.user == want.user, message);
  CHECK_MESSAGE(e.sender == want.sender, message);
  CHECK_MESSAGE(e.recipient == want.recipient, message);
  CHECK(e.authenticated == want.authenticated);
}

}  // namespace

TEST_CASE("parse_event reads smtpd client lines of every instance, with and without AUTH") {
  check("postfix/smtpd", "1CF582025C: client=xxx[2.3.4.5]",
        {EventKind::Client, "1CF582025C", "2.3.4.5"});
  check("postfix/submission/smtpd",
        "7B05841236: client=unknown[185.21.46.169], sasl_method=PLAIN, sasl_username=admin@x.ru",
        {EventKind::Client, "7B05841236", "185.21.46.169", "admin@x.ru", "", "", true});
  check("postfix-out/smtpd", "4XyZabcDEF12ghI: client=h.example[2001:db8::7]",
        {EventKind::Client, "4XyZabcDEF12ghI", "2001:db8::7"});
  check("postfix/smtpd",
        "ABC: client=h[::ffff:192.0.2.40], sasl_method=LOGIN, "
        "sasl_username=bob, sasl_sender=x@y",
        {EventKind::Client, "ABC", "::ffff:192.0.2.40", "bob", "", "", true});
  check("postfix/smtpd",
        "ABC: client=localhost[127.0.0.1], orig_queue_id=DEF, orig_client=x[1.2.3.4]",
        {EventKind::Client, "ABC", "127.0.0.1"});
  check("postfix/smtpd", "ABC: client=unknown[unknown]", {EventKind::None});
  check("postfix/smtpd", "connect from x[1.2.3.4]", {EventKind::None});
  check("postfix/smtpd", "ABC: client=x[1.2.3.4] trailing", {EventKind::None});
  check("postfix/smtpd", "ABC: client=x[1.2.3.4], sasl_method=PLAIN", {EventKind::None});
  check("postfix", "ABC: client=x[1.2.3.4]", {EventKind::None});  // no daemon
}

TEST_CASE("parse_event reads queue manager and delivery lines") {
  check("postfix/qmgr", "0CCDE3FC0B: from=<sender@example>, size=1388, nrcpt=1 (queue active)",
        {EventKind::From, "0CCDE3FC0B", "", "", "sender@example"});
  check("postfix/qmgr", "0CCDE3FC0B: from=<>, size=1388, nrcpt=1 (queue active)",
        {EventKind::From, "0CCDE3FC0B"});
  check("postfix/qmgr", "0CCDE3FC0B: removed", {EventKind::Removed, "0CCDE3FC0B"});
  check("postfix/qmgr", "0CCDE3FC0B: removed later", {EventKind::None});
  check("postfix/smtp",
        "5270320179: to=<hebj@telia.com>, relay=mail.telia.com[81.236.60.210]:25, delay=2017, "
        "delays=0.1/2017/0.03/0.05, dsn=2.0.0, status=sent (250 ok)",
        {EventKind::Delivery, "5270320179", "", "", "", "hebj@telia.com"});
  check("postfix/lmtp",
        "ABC: to=<a@b.test>, orig_to=<x@b.test>, relay=dovecot, delay=1, dsn=2.0.0, status=sent",
        {EventKind::Delivery, "ABC", "", "", "", "a@b.test"});
  check("postfix/discard", "ABC: to=<r@remote.test>, relay=none, delay=0, status=sent (x)",
        {EventKind::Delivery, "ABC", "", "", "", "r@remote.test"});
  check("postfix/smtp", "ABC: to=<r@remote.test>, relay=none, delay=0", {EventKind::None});
  check("postfix/cleanup", "ABC: message-id=<x@y>", {EventKind::None});
  CHECK(parse_event("postfix/virtual", "A: to=<a@b>, relay=virtual, status=sent").agent ==
        "virtual");
}

TEST_CASE("parse_event reads relay refusals, dry-run warnings, INFO tags and SASL failures") {
  check("postfix/smtpd",
        "NOQUEUE: reject: RCPT from rv-out.google.com[209.85.198.248]: 554 5.7.1 "
        "<administrator@kec.or.tz>: Relay access denied; from=<chanangae@gmail.com> "
        "to=<administrator@kec.or.tz> proto=ESMTP helo=<rv-out.google.com>",
        {EventKind::Reject, "NOQUEUE", "209.85.198.248", "", "chanangae@gmail.com",
         "administrator@kec.or.tz"});
  check(
      "postfix/smtpd",
      "NOQUEUE: reject_warning: RCPT from unknown[2001:db8::9]: 554 5.7.1 <x@remote.test>: "
      "Relay access denied; from=<a@customer.test> to=<x@remote.test> proto=ESMTP helo=<pc>",
      {EventKind::RejectWarning, "NOQUEUE", "2001:db8::9", "", "a@customer.test", "x@remote.test"});
  check("postfix/smtpd",
        "NOQUEUE: reject: RCPT from x[1.2.3.4]: 450 4.7.1 <x@y>: Relay access denied; from=<a> "
        "to=<x@y>",
        {EventKind::None});  // not a 5xx refusal
  check("postfix/smtpd",
        "NOQUEUE: reject: RCPT from x[1.2.3.4]: 554 5.7.1 <x@y>: Recipient address rejected: "
        "Access denied; from=<a> to=<x@y>",
        {EventKind::None});
  check("postfix/smtpd",
        "4A1B2C: info: RCPT from pc[192.0.2.7]: relayed via SMTP-after-POP; from=<a@c.test> "
        "to=<r@remote.test> proto=ESMTP helo=<pc>",
        {EventKind::Info, "4A1B2C", "192.0.2.7", "", "a@c.test", "r@remote.test"});
  check("postfix/smtpd",
        "4A1B2C: info: RCPT from pc[192.0.2.7]: something else; from=<a@c.test> to=<r@x>",
        {EventKind::None});
  check("postfix/smtpd",
        "warning: unknown[192.0.2.8]: SASL PLAIN authentication failed: UGFzc3dvcmQ6, "
        "sasl_username=carol@customer.test",
        {EventKind::SaslFailed, "", "192.0.2.8", "carol@customer.test"});
  check("postfix/smtpd", "warning: unknown[192.0.2.8]: SASL LOGIN authentication failed: x",
        {EventKind::None});  // Postfix before 3.7.8: no user name
  check("postfix/smtpd", "warning: hostname x does not resolve to address 1.2.3.4",
        {EventKind::None});
}

TEST_CASE("parse_event reads Dovecot logins: syslog, 2.4, log_path, and the post-login script") {
  check("dovecot",
        "pop3-login: Login: user=<username@domain.com>, method=PLAIN, rip=2.2.2.2, lip=5.5.5.5, "
        "mpid=8056, secured, session=<QWvifIcOtQBUFOyV>",
        {EventKind::Login, "", "2.2.2.2", "username@domain.com"});
  check("dovecot",
        "pop3-login: Login: user=<nilator>, method=PLAIN, rip=76.224.209.52, "
        "lip=63.247.203.170, TLS",
        {EventKind::Login, "", "76.224.209.52", "nilator"});
  check("dovecot",
        "imap-login: Logged in: user=<info@shop.gr>, method=PLAIN, rip=3.3.3.3, "
        "lip=9.9.9.9, mpid=3, TLS, session=<c>",
        {EventKind::Login, "", "3.3.3.3", "info@shop.gr"});
  check("dovecot", "pop3-login: Login: user=<a@b>, method=PLAIN, rip=::ffff:192.0.2.40, lip=::1",
        {EventKind::Login, "", "::ffff:192.0.2.40", "a@b"});
  check("pop3-login",
        "Info: Login: user=<alice@customer.test>, method=PLAIN, rip=127.0.0.10, "
        "lip=127.0.0.2, mpid=12, TLS, session=<x>",
        {EventKind::Login, "", "127.0.0.10", "alice@customer.test"});
  check("popb4smtp", "added ip=127.0.0.10 user=alice@customer.test",
        {EventKind::MapAdd, "", "127.0.0.10", "alice@customer.test"});
  check("dovecot",
        "pop3-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<a>, "
        "method=PLAIN, rip=1.2.3.4, lip=5.6.7.8",
        {EventKind::None});
  check("dovecot", "pop3(alice): Disconnected: Logged out top=0/0, retr=1/2", {EventKind::None});
  check("dovecot", "pop3-login: Login: user=<>, method=PLAIN, rip=1.2.3.4, lip=5.6.7.8",
        {EventKind::None});
  check("dovecot", "pop3-login: Login: user=<a>, method=PLAIN, rip=1.2.3.4x, lip=5.6.7.8",
        {EventKind::None});
  check("popb4smtp", "added ip=1.2.3.4", {EventKind::None});
  check("popb4smtp", "added ip=not-an-ip user=a", {EventKind::None});
}

TEST_CASE("client-controlled text cannot forge a login, an AUTH or another client's IP") {
  // A HELO holding a whole Dovecot login line: still a Postfix reject, from the real IP.
  check("postfix/smtpd",
        "NOQUEUE: reject: RCPT from unknown[127.0.0.16]: 554 5.7.1 <v@remote.test>: Relay "
        "access denied; from=<m@customer.test> to=<v@remote.test> proto=ESMTP helo=<x dovecot: "
        "pop3-login: Login: user=<alice@customer.test>, method=PLAIN, rip=127.0.0.16, lip=x>",
        {EventKind::Reject, "NOQUEUE", "127.0.0.16", "", "m@customer.test", "v@remote.test"});
  // An envelope sender that reads like an AUTH: the client line carries none.
  check(
      "postfix/qmgr",
      "ABC: from=<x, sasl_method=PLAIN, sasl_username=alice@customer.test>, "
      "size=1, nrcpt=1 (queue active)",
      {EventKind::From, "ABC", "", "", "x, sasl_method=PLAIN, sasl_username=alice@customer.test"});
  // A sender holding '>' and the words of the size field ends at the first ">, size=": the
  // forgery only shortens its own message's sender.
  check("postfix/qmgr", "ABC: from=<\"a>, size=1\"@x>, size=9, nrcpt=1 (queue active)",
        {EventKind::From, "ABC", "", "", "\"a"});
  // Pre-greeting junk or a sender in an unrelated smtpd line is never a login or client.
  check("postfix/smtpd",
        "warning: non-SMTP command from x[1.2.3.4]: dovecot: pop3-login: Login: user=<a>, "
        "method=PLAIN, rip=9.9.9.9, lip=1.1.1.1",
        {EventKind::None});
  check("postfix/smtpd", "lost connection after RCPT from x[1.2.3.4] sasl_username=alice",
        {EventKind::None});
  check("sshd", "pop3-login: Login: user=<a>, method=PLAIN, rip=1.2.3.4, lip=5.6.7.8",
        {EventKind::None});
  check("postfix/smtpd", "pop3-login: Login: user=<a>, method=PLAIN, rip=1.2.3.4, lip=5.6.7.8",
        {EventKind::None});
}
