#include "http/routes.h"

#include <algorithm>
#include <array>

#include <spdlog/spdlog.h>

#include "core/client_settings.h"
#include "core/email_address.h"
#include "render/html.h"
#include "render/setup.h"

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

// The setup page for people who configure by hand. A page with a form is always the answer;
// the status tells machines what happened: 200 form or settings, 400 not an address,
// 404 domain not hosted (the same page for every unknown domain, so nothing is enumerated).
Reply setup(const App& app, const Request& request) {
  render::Lang lang =
      render::negotiate_lang(request.header("Accept-Language"), app.setup.default_lang);
  if (auto param = query_param(request.query, "lang")) {
    if (auto chosen = render::parse_lang(*param)) lang = *chosen;
  }
  const auto l = static_cast<std::size_t>(lang);
  Reply reply;
  reply.status = 200;
  reply.content_type = kHtml;
  reply.header("Content-Security-Policy", app.setup.content_security_policy);
  reply.header("Referrer-Policy", "no-referrer");  // the URL carries the address
  reply.header("X-Frame-Options", "DENY");
  reply.header("Content-Language", render::to_string(lang));
  reply.header("Vary", "Accept-Language");

  const auto raw = query_param(request.query, "emailaddress");
  if (!raw || raw->empty()) {
    app.setup.form[l].expand({}, reply.body);
    return reply;
  }
  // The page's own form sends application/x-www-form-urlencoded: '+' is a space and a
  // literal '+' arrives as %2B. A hand-written link may still carry alice+tag@…, so the
  // '+'-preserving reading is the fallback when the form reading is not an address.
  std::string spaced(*raw);
  std::replace(spaced.begin(), spaced.end(), '+', ' ');
  std::optional<std::string> decoded = percent_decode(spaced);
  if (decoded) {
    const auto first = decoded->find_first_not_of(' ');
    const auto last = decoded->find_last_not_of(' ');
    *decoded =
        first == std::string::npos ? std::string() : decoded->substr(first, last - first + 1);
  }
  std::optional<EmailAddress> address = decoded ? parse_email(*decoded) : std::nullopt;
  if (!address) {
    if (auto literal = percent_decode(*raw)) address = parse_email(*literal);
  }
  render::SlotValues values;
  if (!address) {
    // Shown back in the form (escaped) so the typo can be fixed; long input is cut.
    constexpr std::size_t kShown = 320;
    const std::string_view typed = decoded ? std::string_view(*decoded) : *raw;
    const std::string_view shown = typed.substr(0, kShown);
    const std::string query = render::html::url_encode(shown);
    values[render::Slot::Address] = shown;
    values[render::Slot::AddressQuery] = query;
    reply.status = 400;
    app.setup.bad_address[l].expand(values, reply.body);
    return reply;
  }
  const std::string full = address->full();
  const std::string query = render::html::url_encode(full);
  values[render::Slot::Address] = full;
  values[render::Slot::AddressQuery] = query;
  const DomainEntry* entry = app.config.domains.find(address->domain);
  if (entry == nullptr) {
    reply.status = 404;
    app.setup.unknown_domain[l].expand(values, reply.body);
    return reply;
  }
  const std::string login = login_name(app.config.providers[entry->provider].login, *address);
  values[render::Slot::Login] = login;
  values[render::Slot::Domain] = address->domain;
  const render::Splice& page = app.documents_for(*entry).setup[l];
  reply.body.reserve(page.literal_size() + 1024);
  page.expand(values, reply.body);
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
    Route{"/", Endpoint::Setup, "GET, HEAD", setup, nullptr},
    Route{"/setup", Endpoint::Setup, "GET, HEAD", setup, nullptr},
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
