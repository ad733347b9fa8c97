#include "probe/smtp.h"

#include <algorithm>
#include <cctype>
#include <thread>

#include <fmt/format.h>

#include "core/ascii.h"
#include "probe/imap_pop.h"
#include "probe/tls_check.h"

namespace mailconfd::probe {
namespace {

constexpr std::size_t kMaxReplyLines = 100;

// The enhanced status code (RFC 3463) at the start of the first line, e.g. "5.7.1".
std::string enhanced_status(const SmtpReply& reply) {
  if (reply.lines.empty()) return {};
  const std::string& line = reply.lines.front();
  const auto end = line.find(' ');
  const std::string token = line.substr(0, end);
  if (token.size() >= 5 && std::isdigit(static_cast<unsigned char>(token[0])) && token[1] == '.' &&
      std::count(token.begin(), token.end(), '.') == 2) {
    return token;
  }
  return {};
}

std::optional<SmtpReply> command(Session& session, std::string_view line) {
  if (!session.write_line(line)) return std::nullopt;
  return read_smtp_reply(session);
}

std::string address_literal(const Session& session) {
  return session.local_is_v6() ? "[IPv6:" + session.local() + "]" : "[" + session.local() + "]";
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

// Sends EHLO and records it; nullopt ends the probe.
std::optional<SmtpReply> ehlo(Session& session, ServerReport& report, std::string_view when) {
  auto reply = command(session, "EHLO " + address_literal(session));
  if (!reply) {
    report.fail("ehlo", fmt::format("no answer to EHLO {}: {}", when, session.error()));
    return std::nullopt;
  }
  if (reply->code != 250) {
    report.fail("ehlo", fmt::format("EHLO {} refused: {}", when, reply->text()));
    return std::nullopt;
  }
  return reply;
}

void quit(Session& session) {
  if (session.write_line("QUIT")) read_smtp_reply(session);
}

}  // namespace

std::string SmtpReply::text() const {
  return sanitize(fmt::format("{} {}", code, lines.empty() ? "" : lines.front()));
}

std::optional<SmtpReply> read_smtp_reply(Session& session) {
  SmtpReply reply;
  while (reply.lines.size() < kMaxReplyLines) {
    auto line = session.read_line();
    if (!line) return std::nullopt;
    const bool digits =
        line->size() >= 3 && std::all_of(line->begin(), line->begin() + 3, [](char c) {
          return std::isdigit(static_cast<unsigned char>(c));
        });
    if (!digits || (line->size() > 3 && (*line)[3] != ' ' && (*line)[3] != '-')) {
      return std::nullopt;
    }
    const int code = std::stoi(line->substr(0, 3));
    if (reply.code != 0 && code != reply.code) return std::nullopt;
    reply.code = code;
    reply.lines.push_back(line->size() > 4 ? line->substr(4) : std::string());
    if (line->size() == 3 || (*line)[3] == ' ') return reply;
  }
  return std::nullopt;
}

std::vector<std::string> auth_mechanisms(const SmtpReply& ehlo) {
  std::vector<std::string> out;
  for (std::size_t i = 1; i < ehlo.lines.size(); ++i) {
    const std::string line = ascii_upper(ehlo.lines[i]);
    if (!line.starts_with("AUTH ") && !line.starts_with("AUTH=")) continue;
    std::size_t at = 5;
    while (at < line.size()) {
      const auto end = std::min(line.find(' ', at), line.size());
      if (end > at) {
        std::string mechanism = line.substr(at, end - at);
        if (std::find(out.begin(), out.end(), mechanism) == out.end()) out.push_back(mechanism);
      }
      at = end + 1;
    }
  }
  return out;
}

bool has_extension(const SmtpReply& ehlo, std::string_view keyword) {
  for (std::size_t i = 1; i < ehlo.lines.size(); ++i) {
    const std::string line = ascii_upper(ehlo.lines[i]);
    if (line == keyword || line.starts_with(std::string(keyword) + " ")) return true;
  }
  return false;
}

RelayVerdict judge_relay(const SmtpReply& mail, const std::optional<SmtpReply>& rcpt,
                         std::string_view recipient) {
  const SmtpReply& decisive = (mail.code / 100 != 2 || !rcpt) ? mail : *rcpt;
  const std::string step = &decisive == &mail ? "MAIL FROM" : "RCPT TO";
  if (decisive.code / 100 == 2 || decisive.code / 100 == 3) {
    return {false, fmt::format("accepted RCPT TO:<{}> without authentication: an open relay ({})",
                               recipient, decisive.text())};
  }
  const std::string status = enhanced_status(decisive);
  std::string text = ascii_lower(decisive.lines.empty() ? "" : decisive.lines.front());
  // The reply usually quotes the recipient, whose name must not count as a reason.
  if (const auto at = text.find(ascii_lower(recipient)); at != std::string::npos) {
    text.erase(at, recipient.size());
  }
  const bool policy = status.empty() ? (decisive.code == 530 || decisive.code == 554 ||
                                        text.find("relay") != std::string::npos ||
                                        text.find("auth") != std::string::npos)
                                     : status.compare(1, 3, ".7.") == 0;
  if (policy) return {true, fmt::format("refused at {}: {}", step, decisive.text())};
  return {false, fmt::format("inconclusive: {} refused for another reason ({}); retry with "
                             "--relay-to set to a real outside address",
                             step, decisive.text())};
}

namespace {

// The cut-off-day check: log in over POP3 (else IMAP) as the test account, as a mail client
// does before it sends via SMTP-after-POP, then try to relay without AUTH from the same
// address on a new connection. After the cut-off this must be refused.
void relay_after_login(const Target& target, const Options& options, ServerReport& report) {
  const auto incoming =
      std::find_if(target.incoming.begin(), target.incoming.end(),
                   [](const MailServer& s) { return s.protocol == Protocol::Pop3; });
  const MailServer* server = incoming != target.incoming.end() ? &*incoming
                             : target.incoming.empty()         ? nullptr
                                                               : &target.incoming.front();
  if (server == nullptr) {
    report.fail("relay-after-login", "no POP3 or IMAP server to log in to");
    return;
  }
  std::string detail;
  if (!login_only(*server, options, detail)) {
    report.fail("relay-after-login", "cannot log in first: " + detail);
    return;
  }
  std::this_thread::sleep_for(options.map_delay);  // the map is updated and noticed
  const std::string& host = target.server.host;
  std::string error;
  const auto session = Session::open(host, target.server.port, options, error);
  if (!session) {
    report.fail("relay-after-login", error);
    return;
  }
  const bool implicit_tls = target.server.security == Security::Tls;
  if (implicit_tls && !session->start_tls(host, error)) {
    report.fail("relay-after-login", "TLS: " + error);
    return;
  }
  const auto greeting = read_smtp_reply(*session);
  auto hello = greeting && greeting->code == 220
                   ? command(*session, "EHLO " + address_literal(*session))
                   : std::nullopt;
  if (hello && hello->code == 250 && !implicit_tls && has_extension(*hello, "STARTTLS")) {
    const auto go_ahead = command(*session, "STARTTLS");
    hello = go_ahead && go_ahead->code == 220 && session->start_tls(host, error)
                ? command(*session, "EHLO " + address_literal(*session))
                : std::nullopt;
  }
  if (!hello || hello->code != 250) {
    report.fail("relay-after-login", "no EHLO: " + (error.empty() ? session->error() : error));
    return;
  }
  const std::string sender =
      target.domain.empty() ? "<>" : "<mailconfd-probe@" + target.domain + ">";
  const auto mail = command(*session, "MAIL FROM:" + sender);
  std::optional<SmtpReply> rcpt;
  if (mail && mail->code / 100 == 2) rcpt = command(*session, "RCPT TO:<" + options.relay_to + ">");
  if (!mail || (mail->code / 100 == 2 && !rcpt)) {
    report.fail("relay-after-login", "no answer: " + session->error());
    return;
  }
  const RelayVerdict verdict = judge_relay(*mail, rcpt, options.relay_to);
  const std::string from = "after " + detail + " from " + session->local();
  if (verdict.refused) {
    report.pass("relay-after-login", "refused " + from + ": " + verdict.detail);
  } else if (rcpt && rcpt->code / 100 == 2) {
    report.fail("relay-after-login", "accepted RCPT TO:<" + options.relay_to +
                                         "> without authentication " + from +
                                         ": SMTP-after-POP is still on (" + rcpt->text() + ")");
  } else {
    report.fail("relay-after-login", verdict.detail);
  }
  command(*session, "RSET");
  quit(*session);
}

}  // namespace

ServerReport probe_smtp(const Target& target, const Options& options) {
  ServerReport report{target.server, target.provider, {}, {}};
  const std::string& host = target.server.host;
  const auto session = open_checked(target, options, report);
  if (!session) return report;
  const bool implicit_tls = target.server.security == Security::Tls;

  const auto greeting = read_smtp_reply(*session);
  if (!greeting || greeting->code != 220) {
    report.fail("greeting", greeting ? "expected 220, got " + greeting->text()
                                     : "no greeting: " + session->error());
    return report;
  }
  report.pass("greeting", greeting->text());
  auto hello = ehlo(*session, report, implicit_tls ? "" : "before STARTTLS");
  if (!hello) return report;

  if (!implicit_tls) {
    const auto early = auth_mechanisms(*hello);
    if (early.empty()) {
      report.pass("auth-before-tls", "no AUTH offered before STARTTLS");
    } else {
      report.fail("auth-before-tls",
                  fmt::format("AUTH {} offered before STARTTLS: clients may send passwords in "
                              "plaintext (Postfix: smtpd_tls_auth_only = yes)",
                              sanitize(join(early))));
    }
    if (!has_extension(*hello, "STARTTLS")) {
      report.fail("starttls", "STARTTLS is not offered");
      quit(*session);
      return report;
    }
    const auto go_ahead = command(*session, "STARTTLS");
    if (!go_ahead || go_ahead->code != 220) {
      report.fail("starttls", go_ahead ? "STARTTLS refused: " + go_ahead->text()
                                       : "no answer to STARTTLS: " + session->error());
      return report;
    }
    report.pass("starttls", go_ahead->text());
    if (!check_tls(*session, host, report)) return report;
    hello = ehlo(*session, report, "after STARTTLS");
    if (!hello) return report;
  }

  const auto mechanisms = auth_mechanisms(*hello);
  std::vector<std::string> missing;
  for (const char* wanted : {"PLAIN", "LOGIN"}) {
    if (std::find(mechanisms.begin(), mechanisms.end(), wanted) == mechanisms.end()) {
      missing.emplace_back(wanted);
    }
  }
  if (missing.empty()) {
    report.pass("auth-mechanisms", "AUTH " + sanitize(join(mechanisms)));
  } else {
    // protocols.md §7 pitfall 15: Evolution sends AUTH LOGIN for password-cleartext.
    report.fail("auth-mechanisms",
                fmt::format("AUTH {} not offered{} (offered: {})", join(missing),
                            implicit_tls ? "" : " after STARTTLS",
                            mechanisms.empty() ? "none" : sanitize(join(mechanisms))));
  }

  const std::string sender =
      target.domain.empty() ? "<>" : "<mailconfd-probe@" + target.domain + ">";
  const auto mail = command(*session, "MAIL FROM:" + sender);
  if (!mail) {
    report.fail("relay", "no answer to MAIL FROM: " + session->error());
    return report;
  }
  std::optional<SmtpReply> rcpt;
  if (mail->code / 100 == 2) {
    rcpt = command(*session, "RCPT TO:<" + options.relay_to + ">");
    if (!rcpt) {
      report.fail("relay", "no answer to RCPT TO: " + session->error());
      return report;
    }
  }
  const RelayVerdict verdict = judge_relay(*mail, rcpt, options.relay_to);
  if (verdict.refused) {
    report.pass("relay", verdict.detail);
  } else {
    report.fail("relay", verdict.detail);
  }
  // Never DATA: the transaction is abandoned.
  const auto reset = command(*session, "RSET");
  if (!reset) {
    report.fail("rset", "no answer to RSET: " + session->error());
    return report;
  }

  if (options.account) {
    const auto auth = command(*session, "AUTH PLAIN " + sasl_plain(*options.account));
    if (!auth) {
      report.fail("login", "no answer to AUTH PLAIN: " + session->error());
      return report;
    }
    if (auth->code == 235) {
      report.pass("login", "AUTH PLAIN accepted for " + sanitize(options.account->user));
    } else {
      report.fail("login", fmt::format("AUTH PLAIN for {} refused: {}",
                                       sanitize(options.account->user), auth->text()));
    }
  }
  quit(*session);
  if (options.account) relay_after_login(target, options, report);
  return report;
}

}  // namespace mailconfd::probe
