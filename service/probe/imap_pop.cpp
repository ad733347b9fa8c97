#include "probe/imap_pop.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/ascii.h"
#include "probe/tls_check.h"

namespace mailconfd::probe {
namespace {

constexpr std::size_t kMaxResponseLines = 1000;

bool contains(const std::vector<std::string>& words, std::string_view word) {
  return std::find(words.begin(), words.end(), word) != words.end();
}

// IMAP quoted string (RFC 3501 §4.3); the account is checked for CR, LF and NUL beforehand.
std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

struct ImapResponse {
  std::vector<std::string> untagged;
  std::string tagged;  // "OK …", "NO …", "BAD …" (tag removed); empty if none arrived
  bool ok() const { return ascii_istarts_with(tagged, "OK"); }
};

std::optional<ImapResponse> imap_read(Session& session, const std::string& tag) {
  ImapResponse response;
  while (response.untagged.size() < kMaxResponseLines) {
    auto line = session.read_line();
    if (!line) return std::nullopt;
    if (line->starts_with(tag + " ")) {
      response.tagged = line->substr(tag.size() + 1);
      return response;
    }
    response.untagged.push_back(std::move(*line));
  }
  return std::nullopt;
}

std::optional<ImapResponse> imap_command(Session& session, const std::string& tag,
                                         std::string_view command) {
  if (!session.write_line(tag + " " + std::string(command))) return std::nullopt;
  return imap_read(session, tag);
}

std::optional<std::vector<std::string>> imap_capabilities(Session& session,
                                                          const std::string& tag) {
  const auto response = imap_command(session, tag, "CAPABILITY");
  if (!response || !response->ok()) return std::nullopt;
  for (const std::string& line : response->untagged) {
    if (ascii_istarts_with(line, "* CAPABILITY ")) return capability_words(line.substr(13));
  }
  return std::nullopt;
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return sanitize(out);
}

std::optional<std::string> pop_command(Session& session, std::string_view command) {
  if (!session.write_line(command)) return std::nullopt;
  return session.read_line();
}

// CAPA (RFC 2449): "+OK" then lines up to "."; an empty list if the server has no CAPA.
std::optional<std::vector<std::string>> pop_capabilities(Session& session) {
  const auto status = pop_command(session, "CAPA");
  if (!status) return std::nullopt;
  std::vector<std::string> words;
  if (!status->starts_with("+OK")) return words;
  for (std::size_t i = 0; i < kMaxResponseLines; ++i) {
    const auto line = session.read_line();
    if (!line) return std::nullopt;
    if (*line == ".") return words;
    const auto parts = capability_words(*line);
    if (parts.empty()) continue;
    // "SASL PLAIN LOGIN" becomes SASL, SASL=PLAIN, SASL=LOGIN so mechanisms can be matched.
    words.push_back(parts.front());
    for (std::size_t j = 1; j < parts.size(); ++j) words.push_back(parts.front() + "=" + parts[j]);
  }
  return std::nullopt;
}

}  // namespace

std::vector<std::string> capability_words(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  for (const char c : text + " ") {
    if (c == ' ') {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else {
      word += ascii_upper(c);
    }
  }
  return words;
}

ServerReport probe_imap(const Target& target, const Options& options) {
  ServerReport report{target.server, target.provider, {}, {}};
  const std::string& host = target.server.host;
  const auto session = open_checked(target, options, report);
  if (!session) return report;
  const bool implicit_tls = target.server.security == Security::Tls;

  const auto greeting = session->read_line();
  if (!greeting || !ascii_istarts_with(*greeting, "* OK")) {
    report.fail("greeting", greeting ? "expected * OK, got " + sanitize(*greeting)
                                     : "no greeting: " + session->error());
    return report;
  }
  report.pass("greeting", sanitize(*greeting));
  auto capabilities = imap_capabilities(*session, "p1");
  if (!capabilities) {
    report.fail("capability", "no CAPABILITY answer: " + session->error());
    return report;
  }
  if (!implicit_tls) {
    const bool plaintext_auth =
        contains(*capabilities, "AUTH=PLAIN") || contains(*capabilities, "AUTH=LOGIN");
    if (contains(*capabilities, "LOGINDISABLED") && !plaintext_auth) {
      report.pass("login-before-tls", "LOGINDISABLED before STARTTLS");
    } else {
      report.fail("login-before-tls",
                  fmt::format("a plaintext login is accepted before STARTTLS ({}); "
                              "Dovecot: disable_plaintext_auth = yes",
                              plaintext_auth ? "AUTH=PLAIN/LOGIN offered" : "no LOGINDISABLED"));
    }
    if (!contains(*capabilities, "STARTTLS")) {
      report.fail("starttls", "STARTTLS is not offered");
      return report;
    }
    const auto go_ahead = imap_command(*session, "p2", "STARTTLS");
    if (!go_ahead || !go_ahead->ok()) {
      report.fail("starttls", go_ahead ? "STARTTLS refused: " + sanitize(go_ahead->tagged)
                                       : "no answer to STARTTLS: " + session->error());
      return report;
    }
    report.pass("starttls", sanitize(go_ahead->tagged));
    if (!check_tls(*session, host, report)) return report;
    capabilities = imap_capabilities(*session, "p3");
    if (!capabilities) {
      report.fail("capability", "no CAPABILITY answer after STARTTLS: " + session->error());
      return report;
    }
  }
  if (contains(*capabilities, "LOGINDISABLED")) {
    report.fail("login-offered", "LOGINDISABLED even over TLS: password-cleartext cannot work");
  } else {
    report.pass("login-offered", join(*capabilities));
  }
  if (options.account) {
    const std::string plain = sasl_plain(*options.account);
    std::optional<ImapResponse> response;
    if (contains(*capabilities, "SASL-IR") && contains(*capabilities, "AUTH=PLAIN")) {
      response = imap_command(*session, "p4", "AUTHENTICATE PLAIN " + plain);
    } else {
      response = imap_command(
          *session, "p4",
          "LOGIN " + quoted(options.account->user) + " " + quoted(options.account->password));
    }
    if (!response) {
      report.fail("login", "no answer to the login: " + session->error());
      return report;
    }
    if (response->ok()) {
      report.pass("login", "logged in as " + sanitize(options.account->user));
    } else {
      report.fail("login", fmt::format("login as {} refused: {}", sanitize(options.account->user),
                                       sanitize(response->tagged)));
    }
  }
  imap_command(*session, "p5", "LOGOUT");
  return report;
}

ServerReport probe_pop3(const Target& target, const Options& options) {
  ServerReport report{target.server, target.provider, {}, {}};
  const std::string& host = target.server.host;
  const auto session = open_checked(target, options, report);
  if (!session) return report;
  const bool implicit_tls = target.server.security == Security::Tls;

  const auto greeting = session->read_line();
  if (!greeting || !greeting->starts_with("+OK")) {
    report.fail("greeting", greeting ? "expected +OK, got " + sanitize(*greeting)
                                     : "no greeting: " + session->error());
    return report;
  }
  report.pass("greeting", sanitize(*greeting));
  auto capabilities = pop_capabilities(*session);
  if (!capabilities) {
    report.fail("capability", "no answer to CAPA: " + session->error());
    return report;
  }
  if (!implicit_tls) {
    const bool plaintext = contains(*capabilities, "USER") ||
                           contains(*capabilities, "SASL=PLAIN") ||
                           contains(*capabilities, "SASL=LOGIN");
    if (plaintext) {
      report.fail("login-before-tls",
                  "USER or SASL PLAIN/LOGIN offered before STLS: passwords may travel in "
                  "plaintext; Dovecot: disable_plaintext_auth = yes");
    } else {
      report.pass("login-before-tls", "no plaintext login offered before STLS");
    }
    if (!contains(*capabilities, "STLS")) {
      report.fail("starttls", "STLS is not offered");
      return report;
    }
    const auto go_ahead = pop_command(*session, "STLS");
    if (!go_ahead || !go_ahead->starts_with("+OK")) {
      report.fail("starttls", go_ahead ? "STLS refused: " + sanitize(*go_ahead)
                                       : "no answer to STLS: " + session->error());
      return report;
    }
    report.pass("starttls", sanitize(*go_ahead));
    if (!check_tls(*session, host, report)) return report;
    capabilities = pop_capabilities(*session);
    if (!capabilities) {
      report.fail("capability", "no answer to CAPA after STLS: " + session->error());
      return report;
    }
  }
  if (!capabilities->empty() && !contains(*capabilities, "USER") &&
      !contains(*capabilities, "SASL=PLAIN")) {
    report.fail("login-offered", "neither USER nor SASL PLAIN offered over TLS");
  } else {
    report.pass("login-offered", capabilities->empty() ? "no CAPA" : join(*capabilities));
  }
  if (options.account) {
    auto reply = pop_command(*session, "USER " + options.account->user);
    if (reply && reply->starts_with("+OK"))
      reply = pop_command(*session, "PASS " + options.account->password);
    if (!reply) {
      report.fail("login", "no answer to the login: " + session->error());
      return report;
    }
    if (reply->starts_with("+OK")) {
      report.pass("login", "logged in as " + sanitize(options.account->user));
    } else {
      report.fail("login", fmt::format("login as {} refused: {}", sanitize(options.account->user),
                                       sanitize(*reply)));
    }
  }
  pop_command(*session, "QUIT");
  return report;
}

bool login_only(const MailServer& server, const Options& options, std::string& detail) {
  const bool pop3 = server.protocol == Protocol::Pop3;
  const std::string where =
      fmt::format("{} {}:{}", pop3 ? "POP3" : "IMAP", server.host, server.port);
  std::string error;
  const auto session = Session::open(server.host, server.port, options, error);
  if (!session) {
    detail = where + ": " + error;
    return false;
  }
  if (server.security == Security::Tls && !session->start_tls(server.host, error)) {
    detail = where + ": " + error;
    return false;
  }
  const auto greeting = session->read_line();
  if (!greeting || !(pop3 ? greeting->starts_with("+OK") : greeting->starts_with("* OK"))) {
    detail = where + ": no greeting";
    return false;
  }
  if (server.security == Security::StartTls) {
    bool go_ahead = false;
    if (pop3) {
      const auto reply = pop_command(*session, "STLS");
      go_ahead = reply && reply->starts_with("+OK");
    } else {
      const auto reply = imap_command(*session, "l1", "STARTTLS");
      go_ahead = reply && reply->ok();
    }
    if (!go_ahead || !session->start_tls(server.host, error)) {
      detail = where + ": STARTTLS failed" + (error.empty() ? "" : ": " + error);
      return false;
    }
  }
  const Account& account = *options.account;
  bool ok = false;
  if (pop3) {
    auto reply = pop_command(*session, "USER " + account.user);
    if (reply && reply->starts_with("+OK"))
      reply = pop_command(*session, "PASS " + account.password);
    ok = reply && reply->starts_with("+OK");
    pop_command(*session, "QUIT");
  } else {
    const auto reply = imap_command(
        *session, "l2", "LOGIN " + quoted(account.user) + " " + quoted(account.password));
    ok = reply && reply->ok();
    imap_command(*session, "l3", "LOGOUT");
  }
  detail = fmt::format("{} as {} at {}", ok ? "logged in" : "login refused", sanitize(account.user),
                       where);
  return ok;
}

}  // namespace mailconfd::probe
