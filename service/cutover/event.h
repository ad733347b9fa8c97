// Reads the message of one log line, by program tag and anchored structure only, into the
// few events the cut-off scan joins. Postfix copies client-controlled text (HELO, envelope
// sender, recipients) into its lines, so nothing here ever searches a whole line for a
// keyword: every field is read at the position the daemon's own format puts it, before any
// client-controlled text, or it is not read at all.
#pragma once

#include <string_view>

namespace mailconfd::cutover {

enum class EventKind {
  None,           // not a line the scan uses
  Login,          // Dovecot pop3-login/imap-login success: user, ip
  MapAdd,         // the post-login script (deploy/postfix/popb4smtp-postlogin.sh): user, ip
  Client,         // smtpd "QID: client=host[ip][, sasl_method=M, sasl_username=U]"
  From,           // qmgr "QID: from=<sender>, size=…"
  Delivery,       // a delivery agent "QID: to=<rcpt>, … relay=R, … status=S": agent, recipient
  Removed,        // qmgr "QID: removed"
  RejectWarning,  // smtpd "NOQUEUE: reject_warning: RCPT from host[ip]: … Relay access denied"
  Reject,         // smtpd "NOQUEUE: reject: RCPT from host[ip]: … Relay access denied"
  Info,           // smtpd "QID: info: RCPT from host[ip]: relayed via SMTP-after-POP; …"
  SaslFailed,     // smtpd "warning: host[ip]: SASL M authentication failed: …, sasl_username=U"
};

// Views into the message; only the fields of the event's kind are set.
struct Event {
  EventKind kind = EventKind::None;
  std::string_view queue_id;   // Client, From, Delivery, Removed, Info ("NOQUEUE" possible)
  std::string_view ip;         // as written: may be "::ffff:192.0.2.4" or IPv6
  std::string_view user;       // Login, MapAdd, SaslFailed, Client when authenticated
  std::string_view sender;     // From, Reject, RejectWarning, Info (client-controlled)
  std::string_view recipient;  // Delivery, Reject, RejectWarning, Info (client-controlled)
  std::string_view agent;      // Delivery: the daemon ("smtp", "lmtp", "virtual", "local", …)
  bool authenticated = false;  // Client: sasl_method present
};

// The text Postfix logs for a map hit when the map's action is INFO (deploy/postfix/).
inline constexpr std::string_view kInfoText = "relayed via SMTP-after-POP";

// program: the syslog tag without [pid] ("postfix/submission/smtpd", "dovecot", and for
// Dovecot's own log file "pop3-login"/"imap-login"). Any Postfix instance or syslog_name whose
// first component starts with "postfix" counts ("postfix-out/smtpd").
Event parse_event(std::string_view program, std::string_view message);

}  // namespace mailconfd::cutover
