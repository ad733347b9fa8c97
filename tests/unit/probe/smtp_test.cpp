#include "probe/smtp.h"

#include <doctest/doctest.h>

using namespace mailconfd::probe;

namespace {

SmtpReply reply(int code, std::vector<std::string> lines) { return {code, std::move(lines)}; }

constexpr const char* kTo = "relay-probe@mailconfd-probe.invalid";

}  // namespace

TEST_CASE("auth_mechanisms reads AUTH and the old AUTH= form, uppercased, without repeats") {
  const auto ehlo = reply(250, {"smtp.example.net", "PIPELINING", "AUTH plain LOGIN",
                                "AUTH=LOGIN CRAM-MD5", "STARTTLS"});
  CHECK(auth_mechanisms(ehlo) == std::vector<std::string>{"PLAIN", "LOGIN", "CRAM-MD5"});
  CHECK(auth_mechanisms(reply(250, {"smtp.example.net", "AUTHX FOO"})).empty());
  // The first line is the greeting host, never an extension.
  CHECK(auth_mechanisms(reply(250, {"AUTH PLAIN"})).empty());
  CHECK(has_extension(ehlo, "STARTTLS"));
  CHECK(has_extension(ehlo, "AUTH"));
  CHECK_FALSE(has_extension(ehlo, "SIZE"));
  CHECK(has_extension(ehlo, "PIPELINING"));
}

TEST_CASE("judge_relay: only a refusal for policy reasons proves that relaying is refused") {
  const auto mail_ok = reply(250, {"2.1.0 Ok"});
  struct Case {
    SmtpReply rcpt;
    bool refused;
  };
  const Case cases[] = {
      {reply(554, {"5.7.1 <relay-probe@mailconfd-probe.invalid>: Relay access denied"}), true},
      {reply(454, {"4.7.1 <x@y>: Relay access denied"}), true},
      {reply(530, {"Authentication required"}), true},
      {reply(550, {"relaying denied"}), true},
      {reply(250, {"2.1.5 Ok"}), false},
      {reply(251, {"User not local; will forward"}), false},
      // The recipient's own name contains "relay": that is no reason.
      {reply(550, {"5.1.1 <relay-probe@mailconfd-probe.invalid>: Recipient address rejected"}),
       false},
      {reply(550, {"<relay-probe@mailconfd-probe.invalid>: Domain not found"}), false},
      {reply(450, {"4.1.2 <x@y>: Recipient address rejected: Domain not found"}), false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.rcpt.text());
    CHECK(judge_relay(mail_ok, c.rcpt, kTo).refused == c.refused);
  }
  CHECK(judge_relay(mail_ok, reply(250, {"2.1.5 Ok"}), kTo).detail ==
        "accepted RCPT TO:<relay-probe@mailconfd-probe.invalid> without authentication: an "
        "open relay (250 2.1.5 Ok)");
  CHECK(judge_relay(mail_ok, reply(450, {"4.1.2 <x@y>: Domain not found"}), kTo)
            .detail.starts_with("inconclusive: RCPT TO refused for another reason"));
}

TEST_CASE("judge_relay decides at MAIL FROM when the sender is already refused") {
  const auto verdict =
      judge_relay(reply(530, {"5.7.0 Must issue a STARTTLS command first"}), std::nullopt, kTo);
  CHECK(verdict.refused);
  CHECK(verdict.detail == "refused at MAIL FROM: 530 5.7.0 Must issue a STARTTLS command first");
  CHECK_FALSE(
      judge_relay(reply(553, {"5.1.8 Sender domain not found"}), std::nullopt, kTo).refused);
}
