// The reply funnel: every answer is one Reply value, so status, body and headers cannot
// disagree, and one function turns it into bytes. Error bodies are fixed texts per status,
// never internals and never request data.
#pragma once

#include <string>
#include <string_view>

#include "endpoint.h"

namespace mailconfd::http {

inline constexpr std::string_view kXml = "application/xml; charset=utf-8";
inline constexpr std::string_view kTextXml = "text/xml; charset=utf-8";
inline constexpr std::string_view kText = "text/plain; charset=utf-8";
inline constexpr std::string_view kHtml = "text/html; charset=utf-8";
inline constexpr std::string_view kJson = "application/json; charset=utf-8";
inline constexpr std::string_view kAppleProfile = "application/x-apple-aspen-config";
inline constexpr std::string_view kCsv = "text/csv; charset=utf-8; header=present";

using mailconfd::Endpoint;

struct Reply {
  int status = 500;
  std::string_view content_type = kText;
  std::string body;
  std::string_view cache_control = "no-store";
  std::string extra_headers;  // complete "Name: value\r\n" lines; values never from raw input
  Endpoint endpoint = Endpoint::Other;
  // What the access log shows instead of the path, when the path carries more than the
  // route (the mailbox address of the Autodiscover v2 path form); empty: the path.
  std::string_view log_path;
  bool close = false;  // close the connection after this reply

  Reply& header(std::string_view name, std::string_view value);
};

Reply error_reply(int status);
std::string_view reason_phrase(int status);

// Appends status line, headers and (unless head_only) the body to out.
void serialize(const Reply& reply, bool keep_alive, bool head_only, std::string& out);

}  // namespace mailconfd::http
