// Probes the incoming servers a client is told about: IMAP (993 TLS, 143 STARTTLS) and POP3
// (995 TLS, 110 STLS). Each must greet over TLS with a certificate valid for the advertised
// name; the STARTTLS variants must not accept a plaintext login before the upgrade.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "probe/report.h"
#include "probe/session.h"

namespace mailconfd::probe {

// Capability words of an IMAP "* CAPABILITY …" line or a POP3 CAPA reply, uppercased.
std::vector<std::string> capability_words(const std::string& text);

ServerReport probe_imap(const Target& target, const Options& options);
// Logs in with options.account on a POP3 or IMAP server (TLS or STARTTLS/STLS as
// advertised) and logs out: what a mail client does before it sends via SMTP-after-POP.
// True on success; detail says what happened.
bool login_only(const MailServer& server, const Options& options, std::string& detail);
ServerReport probe_pop3(const Target& target, const Options& options);

}  // namespace mailconfd::probe
