// Probes a submission server (587 STARTTLS or 465 implicit TLS) the way a careful client
// would, without ever sending a message: greeting, EHLO, STARTTLS, certificate, which AUTH
// mechanisms are offered before and after TLS, and whether it relays without a login.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "probe/report.h"
#include "probe/session.h"

namespace mailconfd::probe {

// One SMTP reply, possibly multi-line (RFC 5321 §4.2).
struct SmtpReply {
  int code = 0;
  std::vector<std::string> lines;  // text after "NNN-" / "NNN "
  std::string text() const;        // "NNN first line", sanitized
};

// Reads one reply; nullopt (and session.error()) on timeout, close or a malformed line.
std::optional<SmtpReply> read_smtp_reply(Session& session);

// SASL mechanisms named by an EHLO reply's AUTH keyword (also the old "AUTH=" form),
// uppercased, in order.
std::vector<std::string> auth_mechanisms(const SmtpReply& ehlo);
bool has_extension(const SmtpReply& ehlo, std::string_view keyword);

// Whether the answers to MAIL FROM and RCPT TO (an outside recipient, no login) show that the
// server refuses to relay. Only a refusal for policy reasons proves it: an x.7.x enhanced
// status, or without one 530, 554, or "relay"/"auth" in the text (the quoted recipient
// aside). A refusal for another reason (x.1.x: unknown domain) says nothing, so it is
// reported as inconclusive, a problem.
struct RelayVerdict {
  bool refused = false;
  std::string detail;
};
RelayVerdict judge_relay(const SmtpReply& mail, const std::optional<SmtpReply>& rcpt,
                         std::string_view recipient);

// Every check for one submission server. Never sends DATA.
ServerReport probe_smtp(const Target& target, const Options& options);

}  // namespace mailconfd::probe
