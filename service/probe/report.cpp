#include "probe/report.h"

#include <algorithm>

#include <fmt/format.h>

namespace mailconfd::probe {
namespace {

std::string_view protocol_name(const MailServer& server) {
  switch (server.protocol) {
    case Protocol::Imap:
      return "imap";
    case Protocol::Pop3:
      return "pop3";
    case Protocol::Smtp:
      return "smtp";
  }
  return "smtp";
}

std::string_view security_name(Security security) {
  return security == Security::Tls ? "tls" : "starttls";
}

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte == 0x7f) {
      out += fmt::format("\\u{:04x}", byte);
    } else {
      out += c;
    }
  }
  return out + '"';
}

}  // namespace

bool ServerReport::ok() const {
  return !checks.empty() &&
         std::all_of(checks.begin(), checks.end(), [](const Check& c) { return c.ok; });
}

void ServerReport::pass(std::string name, std::string detail) {
  checks.push_back({std::move(name), true, std::move(detail)});
}

void ServerReport::fail(std::string name, std::string detail) {
  checks.push_back({std::move(name), false, std::move(detail)});
}

std::string describe(const MailServer& server) {
  std::string_view role = protocol_name(server);
  if (server.protocol == Protocol::Smtp) role = "submission";
  return fmt::format("{} {}:{} {}", role, server.host, server.port,
                     server.security == Security::Tls ? "TLS" : "STARTTLS");
}

std::string format_table(const std::vector<ServerReport>& reports) {
  std::string out;
  std::size_t failed = 0;
  for (const ServerReport& report : reports) {
    const bool ok = report.ok();
    failed += ok ? 0 : 1;
    out += fmt::format("{}  {}  [{}{}]\n", ok ? "OK  " : "FAIL", describe(report.server),
                       report.provider,
                       report.address.empty() ? "" : ", connected to " + report.address);
    std::size_t width = 0;
    for (const Check& check : report.checks) width = std::max(width, check.name.size());
    for (const Check& check : report.checks) {
      out += fmt::format("      {:<9}{:<{}}  {}\n", check.ok ? "ok" : "PROBLEM", check.name, width,
                         check.detail);
    }
  }
  out += fmt::format("{} server{} probed, {} with problems\n", reports.size(),
                     reports.size() == 1 ? "" : "s", failed);
  return out;
}

std::string format_json(const std::vector<ServerReport>& reports) {
  const bool all_ok =
      std::all_of(reports.begin(), reports.end(), [](const ServerReport& r) { return r.ok(); });
  std::string out = fmt::format("{{\"ok\":{},\"servers\":[", all_ok ? "true" : "false");
  for (std::size_t i = 0; i < reports.size(); ++i) {
    const ServerReport& report = reports[i];
    out += fmt::format(
        "{}{{\"provider\":{},\"protocol\":\"{}\",\"host\":{},\"port\":{},\"security\":\"{}\","
        "\"address\":{},\"ok\":{},\"checks\":[",
        i == 0 ? "" : ",", json_string(report.provider), protocol_name(report.server),
        json_string(report.server.host), report.server.port, security_name(report.server.security),
        json_string(report.address), report.ok() ? "true" : "false");
    std::string problems;
    for (std::size_t j = 0; j < report.checks.size(); ++j) {
      const Check& check = report.checks[j];
      out += fmt::format("{}{{\"name\":{},\"ok\":{},\"detail\":{}}}", j == 0 ? "" : ",",
                         json_string(check.name), check.ok ? "true" : "false",
                         json_string(check.detail));
      if (!check.ok) {
        problems += fmt::format("{}{}", problems.empty() ? "" : ",",
                                json_string(check.name + ": " + check.detail));
      }
    }
    out += "],\"problems\":[" + problems + "]}";
  }
  return out + "]}\n";
}

std::string sanitize(std::string_view text, std::size_t max_length) {
  std::string out;
  for (const char c : text) {
    if (out.size() >= max_length) {
      out += "…";
      break;
    }
    const auto byte = static_cast<unsigned char>(c);
    out += (byte >= 0x20 && byte < 0x7f) ? c : '?';
  }
  return out;
}

}  // namespace mailconfd::probe
