// The TLS part every probe shares: handshake, then chain, dates and host name, each its
// own check in the report, so that an admin sees exactly which one is wrong.
#pragma once

#include <memory>
#include <string>

#include "probe/report.h"
#include "probe/session.h"

namespace mailconfd::probe {

// Runs the handshake on session and records "tls", "certificate-chain",
// "certificate-dates" and "certificate-name". Returns false when there is no TLS
// connection to continue on (the handshake failed); certificate problems do not stop the
// probe, they are reported and the remaining checks still run.
bool check_tls(Session& session, const std::string& host, ServerReport& report);

// How every probe begins: connects to target's server and records "connect"; on an implicit
// TLS port (465, 993, 995) runs check_tls as well. Returns nullptr when there is nothing to
// continue on (no connection, or no TLS where TLS is the only way in).
std::unique_ptr<Session> open_checked(const Target& target, const Options& options,
                                      ServerReport& report);

// base64 of the SASL PLAIN message "\0user\0password" (RFC 4616), no line breaks.
std::string sasl_plain(const Account& account);

}  // namespace mailconfd::probe
