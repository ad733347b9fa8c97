#include "http/routes.h"

#include <array>

#include <spdlog/spdlog.h>

#include "core/client_settings.h"
#include "core/email_address.h"

namespace mailconfd::http {
namespace {

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

Reply method_not_allowed(std::string_view allow, Endpoint endpoint) {
  Reply reply = error_reply(405);
  reply.header("Allow", allow);
  reply.endpoint = endpoint;
  return reply;
}

// Thunderbird autoconfig (protocols.md §1, §6.1). The domain comes from emailaddress when it
// is given, else from Host; without an address the document keeps the placeholders.
Reply autoconfig(const App& app, const Request& request) {
  std::optional<EmailAddress> address;
  std::optional<std::string> domain;
  if (auto raw = query_param(request.query, "emailaddress")) {
    auto decoded = percent_decode(*raw);
    if (decoded) address = parse_email(*decoded);
    if (!address) return error_reply(400);
    domain = address->domain;
  } else {
    domain = domain_from_host(request.host);
  }
  const DomainEntry* entry = domain ? app.config.domains.find(*domain) : nullptr;
  if (entry == nullptr) return error_reply(404);  // same body for every address

  const Provider& provider = app.config.providers[entry->provider];
  const std::string login = address ? login_name(provider.login, *address) : std::string();
  render::SlotValues values;
  values[render::Slot::Domain] = *domain;
  values[render::Slot::Login] =
      address ? std::string_view(login) : login_placeholder(provider.login);
  Reply reply;
  reply.status = 200;
  reply.content_type = kXml;
  const render::Splice& doc = app.documents_for(*entry).autoconfig;
  reply.body.reserve(doc.literal_size() + 512);
  doc.expand(values, reply.body);
  return reply;
}

struct Route {
  std::string_view path;  // compared case-insensitively
  Endpoint endpoint;
  std::string_view allow;
  Reply (*get)(const App&, const Request&);   // GET and HEAD
  Reply (*post)(const App&, const Request&);  // POST; nullptr: not allowed
};

constexpr std::array kRoutes{
    Route{"/mail/config-v1.1.xml", Endpoint::Autoconfig, "GET, HEAD", autoconfig, nullptr},
    Route{"/.well-known/autoconfig/mail/config-v1.1.xml", Endpoint::Autoconfig, "GET, HEAD",
          autoconfig, nullptr},
};

Reply dispatch(const App& app, const Request& request) {
  for (const Route& r : kRoutes) {
    if (!iequals(request.path, r.path)) continue;
    Reply reply;
    switch (request.method) {
      case Method::Get:
      case Method::Head:
        reply = r.get(app, request);
        break;
      case Method::Post:
        if (r.post == nullptr) return method_not_allowed(r.allow, r.endpoint);
        reply = r.post(app, request);
        break;
      case Method::Options:
      case Method::Other:
        return method_not_allowed(r.allow, r.endpoint);
    }
    reply.endpoint = r.endpoint;
    return reply;
  }
  if (request.method == Method::Other) return error_reply(501);
  return error_reply(404);
}

}  // namespace

std::optional<std::string_view> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (iequals(pair.substr(0, eq), name)) {
      return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::string_view client_kind(std::string_view ua) {
  if (ua.empty()) return "-";
  if (contains(ua, "Thunderbird")) return "thunderbird";
  if (contains(ua, "Microsoft Office") || contains(ua, "Outlook")) return "outlook";
  if (contains(ua, "Evolution")) return "evolution";
  if (contains(ua, "KMail") || contains(ua, "akonadi")) return "kmail";
  if (contains(ua, "FairEmail")) return "fairemail";
  if (contains(ua, "Delta") || contains(ua, "chatmail")) return "deltachat";
  if (contains(ua, "K-9")) return "k9";
  if (contains(ua, "iPhone") || contains(ua, "iPad") || contains(ua, "Macintosh")) return "apple";
  if (contains(ua, "curl")) return "curl";
  if (contains(ua, "Mozilla")) return "browser";
  return "other";
}

Reply route(const App& app, const Request& request) {
  try {
    return dispatch(app, request);
  } catch (const std::exception& e) {
    // A bug, never a client mistake: log it, answer a plain 500 without the text.
    spdlog::error("handler failed for {}: {}", request.path.substr(0, 200), e.what());
  } catch (...) {
    spdlog::error("handler failed for {}: unknown exception", request.path.substr(0, 200));
  }
  return error_reply(500);
}

}  // namespace mailconfd::http
