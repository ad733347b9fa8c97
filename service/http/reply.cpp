#include "http/reply.h"

#include <ctime>

#include <fmt/format.h>

namespace mailconfd::http {
namespace {

// The Date header (RFC 9110 6.6.1), formatted at most once per second per thread.
std::string_view http_date() {
  thread_local std::time_t cached_second = 0;
  thread_local char text[64] = {};
  const std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached_second = now;
  }
  return text;
}

}  // namespace

Reply& Reply::header(std::string_view name, std::string_view value) {
  extra_headers.append(name).append(": ").append(value).append("\r\n");
  return *this;
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

Reply error_reply(int status) {
  Reply reply;
  reply.status = status;
  reply.content_type = kText;
  reply.body = fmt::format("{} {}\n", status, reason_phrase(status));
  reply.close = status == 400 || status == 408 || status == 413 || status == 414 || status == 431 ||
                status == 505;
  return reply;
}

void serialize(const Reply& reply, bool keep_alive, bool head_only, std::string& out) {
  fmt::format_to(std::back_inserter(out),
                 "HTTP/1.1 {} {}\r\nDate: {}\r\nServer: mailconfd\r\nContent-Type: {}\r\n"
                 "Content-Length: {}\r\nCache-Control: {}\r\nX-Content-Type-Options: nosniff\r\n",
                 reply.status, reason_phrase(reply.status), http_date(), reply.content_type,
                 reply.body.size(), reply.cache_control);
  out.append(reply.extra_headers);
  if (!keep_alive || reply.close) out.append("Connection: close\r\n");
  out.append("\r\n");
  if (!head_only) out.append(reply.body);
}

}  // namespace mailconfd::http
