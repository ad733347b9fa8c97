#include "http/routes.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <optional>

#include <spdlog/spdlog.h>

#include "acme/challenges.h"
#include "cockpit/auth.h"
#include "cockpit/board.h"
#include "cockpit/page.h"
#include "core/ascii.h"
#include "core/client_settings.h"
#include "core/email_address.h"
#include "journal/journal.h"
#include "metrics.h"
#include "render/autodiscover.h"
#include "render/html.h"
#include "render/setup.h"

namespace mailconfd::http {
namespace {

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// A hosted address got its settings: counted for /metrics and, when on, journaled (the parts
// of the address parse_email normalised, copied once into the journal's buffer).
void fetched(journal::Door door, const Request& request, const EmailAddress& address) {
  journal::record(door, client_kind(request.header("User-Agent")), address.local, address.domain);
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
  const DomainEntry* entry = domain ? app.domains->find(*domain) : nullptr;
  if (entry == nullptr) return error_reply(404);  // same body for every address

  const Provider& provider = app.config->providers[entry->provider];
  const std::string login = address ? login_for(app, *entry, *address) : std::string();
  render::SlotValues values;
  values[render::Slot::Domain] = *domain;
  values[render::Slot::Login] =
      address ? std::string_view(login)
              : login_placeholder(login_form(provider, app.domains->host_set(*entry)));
  if (address) fetched(journal::Door::Autoconfig, request, *address);
  Reply reply;
  reply.status = 200;
  reply.content_type = kXml;
  const render::Splice& doc = app.documents_for(*entry).autoconfig;
  reply.body.reserve(doc.literal_size() + 512);
  doc.expand(values, reply.body);
  return reply;
}

// Outlook Autodiscover (protocols.md §2). Errors travel in the protocol's own error document;
// 600 and 601 with status 200 as Exchange does, a domain that is not hosted with 404 (every
// client then tries its next candidate) and the same bytes for every address.
Reply pox_error(render::PoxError error) {
  Reply reply;
  reply.status = error == render::PoxError::AddressNotFound ? 404 : 200;
  reply.content_type = kTextXml;
  reply.body = render::autodiscover_error(error, std::chrono::system_clock::now());
  return reply;
}

// Settings for an address, or with placeholders (login_placeholder) when address is null.
Reply pox_settings(const App& app, std::string_view domain, const EmailAddress* address) {
  const DomainEntry* entry = app.domains->find(domain);
  if (entry == nullptr) return pox_error(render::PoxError::AddressNotFound);
  const Provider& provider = app.config->providers[entry->provider];
  const LoginForm form = login_form(provider, app.domains->host_set(*entry));
  render::SlotValues values;
  values[render::Slot::Domain] = domain;
  values[render::Slot::Login] = login_placeholder(form);
  values[render::Slot::Display] = "%EMAILADDRESS%";
  // One string for the usual case (the same as login_name() and display(), without their
  // copies): an ASCII domain reads the same in A- and U-labels.
  std::string full;
  std::string shown;
  std::optional<std::string_view> own;  // the mailbox's own login (a database source)
  if (address && app.domains->logins.size() != 0) {
    own = app.domains->logins.find(login_key(address->local, address->domain));
  }
  if (address) {
    full = address->full();
    values[render::Slot::Display] = full;
    if (address->domain.find("xn--") != std::string::npos) {
      shown = address->display();
      values[render::Slot::Display] = shown;
    }
    values[render::Slot::Login] = own                            ? *own
                                  : form == LoginForm::LocalPart ? address->local
                                  : provider.login_domain == LoginDomain::ULabel
                                      ? values[render::Slot::Display]
                                      : std::string_view(full);
  }
  Reply reply;
  reply.status = 200;
  reply.content_type = kTextXml;
  const render::Splice& doc = app.documents_for(*entry).autodiscover;
  reply.body.reserve(doc.literal_size() + 512);
  doc.expand(values, reply.body);
  return reply;
}

// True when the client reached us over HTTPS: on our own TLS listener, or, when the config
// trusts a TLS-terminating proxy, as its X-Forwarded-Proto says (first hop first).
bool arrived_over_tls(const App& app, const Request& request) {
  if (request.secure) return true;
  if (!app.config->server.trust_forwarded_proto) return false;
  std::string_view proto = request.header("X-Forwarded-Proto");
  proto = proto.substr(0, proto.find(','));
  while (!proto.empty() && (proto.back() == ' ' || proto.back() == '\t')) proto.remove_suffix(1);
  return ascii_iequals(proto, "https");
}

// The Outlook HTTP redirect method (protocols.md §2.1 step 4, MS-OXDISCO): a plain-HTTP GET
// on autodiscover.<hosted domain> answers 302 to the provider's HTTPS Autodiscover URL.
std::optional<Reply> http_redirect(const App& app, const Request& request) {
  if (arrived_over_tls(app, request) || !ascii_istarts_with(request.host, "autodiscover.")) {
    return std::nullopt;
  }
  const auto domain = domain_from_host(request.host);
  const DomainEntry* entry = domain ? app.domains->find(*domain) : nullptr;
  if (entry == nullptr || !app.config->providers[entry->provider].autodiscover_redirect) {
    return std::nullopt;
  }
  Reply reply = error_reply(302);
  // The query goes along: a GET client that follows the redirect with ?emailaddress= must
  // get that address's settings there, not the placeholder document.
  const std::string& url = app.documents_for(*entry).autodiscover_url;
  if (request.query.empty()) {
    reply.header("Location", url);
  } else {
    std::string location;
    location.reserve(url.size() + 1 + request.query.size());
    location.append(url).append("?");
    // Only bytes that are valid in a URI query (RFC 3986) pass into the header; anything
    // else is percent-encoded, so nothing a client sends can break the header line.
    static constexpr char kHex[] = "0123456789ABCDEF";
    for (char c : request.query) {
      const auto b = static_cast<unsigned char>(c);
      const bool plain = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
                         (b >= '0' && b <= '9') ||
                         std::string_view("-._~!$&'()*+,;=:@/?%").find(c) != std::string_view::npos;
      if (plain) {
        location.push_back(c);
      } else {
        location.push_back('%');
        location.push_back(kHex[b >> 4]);
        location.push_back(kHex[b & 0xF]);
      }
    }
    reply.header("Location", location);
  }
  return reply;
}

// GET (Delta Chat, redirects turned into GETs): the address from emailaddress or Email, else
// the domain from Host with the %EMAILADDRESS% placeholders, as for autoconfig.
Reply autodiscover_get(const App& app, const Request& request) {
  auto raw = query_param(request.query, "emailaddress");
  if (!raw) raw = query_param(request.query, "Email");
  if (auto redirect = http_redirect(app, request)) {
    auto decoded = raw ? percent_decode(*raw) : std::nullopt;
    auto address = decoded ? parse_email(*decoded) : std::nullopt;
    if (address && app.domains->find(address->domain) != nullptr) {
      fetched(journal::Door::Redirect, request, *address);
    }
    return *redirect;
  }
  if (raw) {
    auto decoded = percent_decode(*raw);
    auto address = decoded ? parse_email(*decoded) : std::nullopt;
    if (!address) return pox_error(render::PoxError::InvalidRequest);
    Reply reply = pox_settings(app, address->domain, &*address);
    if (reply.status == 200) fetched(journal::Door::Autodiscover, request, *address);
    return reply;
  }
  const auto domain = domain_from_host(request.host);
  if (!domain) return pox_error(render::PoxError::AddressNotFound);
  return pox_settings(app, *domain, nullptr);
}

// POST (Outlook, Thunderbird): the request document decides. Any Content-Type is accepted;
// the body limit is the HTTP layer's (413 before the body is read).
Reply autodiscover_post(const App& app, const Request& request) {
  const render::PoxRequest parsed = render::parse_autodiscover_request(request.body);
  switch (parsed.kind) {
    case render::PoxRequestKind::Malformed:
      return pox_error(render::PoxError::InvalidRequest);
    case render::PoxRequestKind::OtherSchema:
      return pox_error(render::PoxError::SchemaNotServed);
    case render::PoxRequestKind::Outlook:
      break;
  }
  const auto address = parse_email(parsed.email_address);
  if (!address) return pox_error(render::PoxError::InvalidRequest);
  Reply reply = pox_settings(app, address->domain, &*address);
  if (reply.status == 200) fetched(journal::Door::Autodiscover, request, *address);
  return reply;
}

Reply json_reply(int status, std::string body) {
  Reply reply;
  reply.status = status;
  reply.content_type = kJson;
  reply.body = std::move(body);
  return reply;
}

// Autodiscover v2 (protocols.md §2.8): only AutodiscoverV1 is served, pointing to the POX URL.
Reply autodiscover_json(const App& app, const Request& request,
                        std::optional<std::string_view> raw_address) {
  const auto raw_protocol = query_param(request.query, "Protocol");
  const auto protocol = raw_protocol ? percent_decode(*raw_protocol) : std::nullopt;
  // Clients differ in case (Autodiscoverv1, peers.md list item 8).
  if (!protocol || !ascii_iequals(*protocol, "AutodiscoverV1")) {
    return json_reply(400, render::autodiscover_json_error(render::JsonError::InvalidProtocol));
  }
  const auto decoded = raw_address ? percent_decode(*raw_address) : std::nullopt;
  const auto address = decoded ? parse_email(*decoded) : std::nullopt;
  if (!address)
    return json_reply(400, render::autodiscover_json_error(render::JsonError::InvalidEmail));
  const DomainEntry* entry = app.domains->find(address->domain);
  if (entry == nullptr) {
    return json_reply(404, render::autodiscover_json_error(render::JsonError::NotFound));
  }
  fetched(journal::Door::AutodiscoverJson, request, *address);
  return json_reply(200, app.documents_for(*entry).autodiscover_json);
}

constexpr std::string_view kJsonV1Prefix = "/autodiscover/autodiscover.json/v1.0/";
// The v2 path form carries the mailbox address in the path: the log shows the route only.
constexpr std::string_view kJsonV1Logged = "/autodiscover/autodiscover.json/v1.0/{address}";

Reply autodiscover_json_query(const App& app, const Request& request) {
  return autodiscover_json(app, request, query_param(request.query, "Email"));
}

Reply autodiscover_json_path(const App& app, const Request& request) {
  return autodiscover_json(app, request, request.path.substr(kJsonV1Prefix.size()));
}

// An ACME http-01 answer (acme/challenges.h): the built-in client's pending ones, then
// <acme challenge-directory>. The token is
// public (the CA fetches it over plain HTTP), so the access log shows the path as it is.
Reply acme_challenge(const App& app, const Request& request) {
  if (!app.config->acme) return error_reply(404);
  const std::string_view token = request.path.substr(acme::kChallengePrefix.size());
  auto answer = app.acme_tokens->find(token);  // the built-in client's, from memory
  if (!answer) answer = acme::read_challenge(app.config->acme->challenge_directory, token);
  if (!answer) return error_reply(404);
  Reply reply;
  reply.status = 200;
  reply.content_type = "application/octet-stream";
  reply.body = std::move(*answer);
  return reply;
}

// The setup page for people who configure by hand. A page with a form is always the answer;
// the status tells machines what happened: 200 form or settings, 400 not an address,
// 404 domain not hosted (the same page for every unknown domain, so nothing is enumerated).
Reply setup(const App& app, const Request& request) {
  render::Lang lang =
      render::negotiate_lang(request.header("Accept-Language"), app.setup->default_lang);
  if (auto param = query_param(request.query, "lang")) {
    if (auto chosen = render::parse_lang(*param)) lang = *chosen;
  }
  Reply reply;
  reply.content_type = kHtml;
  reply.header("Content-Security-Policy", app.setup->content_security_policy);
  reply.header("Referrer-Policy", "no-referrer");  // the URL carries the address
  reply.header("X-Frame-Options", "DENY");
  reply.header("Content-Language", render::to_string(lang));
  reply.header("Vary", "Accept-Language");

  const auto raw = query_param(request.query, "emailaddress");
  std::string input;
  std::optional<EmailAddress> address;
  if (raw && !raw->empty()) {
    // The page's own form sends application/x-www-form-urlencoded: '+' is a space and a
    // literal '+' arrives as %2B. A hand-written link may still carry alice+tag@…, so the
    // '+'-preserving reading is the fallback when the form reading is not an address.
    std::string spaced(*raw);
    std::replace(spaced.begin(), spaced.end(), '+', ' ');
    const std::optional<std::string> decoded = percent_decode(spaced);
    if (decoded) {
      // What customers paste: white space and line ends around it, mailto:, "Name <…>".
      const auto first = decoded->find_first_not_of(" \t\r\n");
      const auto last = decoded->find_last_not_of(" \t\r\n");
      input = first == std::string::npos ? std::string() : decoded->substr(first, last - first + 1);
      address = parse_pasted_email(input);
    } else {
      input = std::string(*raw);
    }
    if (!address) {
      if (auto literal = percent_decode(*raw)) address = parse_pasted_email(*literal);
    }
    if (input.empty()) input = " ";  // only white space: not an address, shown as typed
  }
  reply.status =
      setup_page(app, lang, input, address, std::chrono::system_clock::now(), reply.body);
  if (reply.status == 200 && address) fetched(journal::Door::Setup, request, *address);
  return reply;
}

// /favicon.ico: browsers ask for it with every visit of the setup page.
Reply favicon(const App&, const Request&) {
  Reply reply;
  reply.status = 200;
  reply.content_type = "image/x-icon";
  reply.cache_control = "public, max-age=86400";
  reply.body = render::favicon();
  return reply;
}

// Apple configuration profile (protocols.md §3.3). The address is required: the profile is
// per mailbox. Accepts emailaddress (as autoconfig) and email (as other implementations).
Reply mobileconfig(const App& app, const Request& request) {
  auto raw = query_param(request.query, "emailaddress");
  if (!raw) raw = query_param(request.query, "email");
  if (!raw) return error_reply(400);
  std::optional<EmailAddress> address;
  if (auto decoded = percent_decode(*raw)) address = parse_email(*decoded);
  if (!address) return error_reply(400);
  const DomainEntry* entry = app.domains->find(address->domain);
  if (entry == nullptr) return error_reply(404);  // same body for every address

  auto body = mobileconfig_for(app, *entry, *address);
  if (!body) return error_reply(500);
  fetched(journal::Door::Mobileconfig, request, *address);
  Reply reply;
  reply.status = 200;
  reply.content_type = kAppleProfile;
  reply.body = std::move(*body);
  // The name comes from the validated domain (a lowercase A-label: letters, digits, '-' and
  // '.'), so it needs neither quoting rules beyond the quotes nor RFC 6266 filename*.
  reply.header("Content-Disposition",
               "attachment; filename=\"" + address->domain + ".mobileconfig\"");
  return reply;
}

// Liveness: the process answers. Plain text so probes and humans read it alike.
Reply healthz(const App&, const Request&) {
  Reply reply;
  reply.status = 200;
  reply.body = "ok\n";
  return reply;
}

// Readiness: a configuration is loaded, every listener is up, and shutdown has not begun.
Reply readyz(const App&, const Request&) {
  Reply reply;
  reply.status = metrics::ready() ? 200 : 503;
  reply.body = metrics::ready() ? "ready\n" : "not ready\n";
  return reply;
}

Reply prometheus(const App& app, const Request&) {
  Reply reply;
  reply.status = 200;
  reply.content_type = metrics::kContentType;
  reply.body = metrics::render(app);
  return reply;
}

// The cockpit (cockpit/): only on the separate admin (metrics) listener, behind HTTP Basic
// when a password file is configured. Answers from the Model the cockpit's thread keeps.
std::optional<Reply> cockpit_gate(const App& app, const Request& request) {
  if (!app.config->cockpit) return error_reply(404);
  const cockpit::Verdict verdict =
      cockpit::check_access(*app.config->cockpit, request.header("Authorization"), request.peer,
                            std::chrono::steady_clock::now());
  if (verdict.access == cockpit::Access::Denied) {
    Reply reply = error_reply(401);
    reply.header("WWW-Authenticate", "Basic realm=\"mailconfd cockpit\", charset=\"UTF-8\"");
    return reply;
  }
  if (verdict.access == cockpit::Access::Throttled) {
    Reply reply = error_reply(429);
    reply.header("Retry-After", std::to_string(verdict.retry_after.count()));
    return reply;
  }
  if (!cockpit::current()) return error_reply(503);
  return std::nullopt;
}

cockpit::View cockpit_view(const App& app, const Request& request) {
  return cockpit::parse_view(
      request.query,
      render::negotiate_lang(request.header("Accept-Language"), app.setup->default_lang));
}

Reply cockpit_page(const App& app, const Request& request) {
  if (auto refused = cockpit_gate(app, request)) return *refused;
  const cockpit::View view = cockpit_view(app, request);
  Reply reply;
  reply.status = 200;
  reply.content_type = kHtml;
  reply.body = cockpit::render_page(*cockpit::current(), view);
  reply.header("Content-Security-Policy", cockpit::content_security_policy());
  reply.header("Referrer-Policy", "no-referrer");
  reply.header("X-Frame-Options", "DENY");
  reply.header("Content-Language", render::to_string(view.lang));
  reply.header("Vary", "Accept-Language, Authorization");
  return reply;
}

Reply cockpit_csv(const App& app, const Request& request) {
  if (auto refused = cockpit_gate(app, request)) return *refused;
  Reply reply;
  reply.status = 200;
  reply.content_type = kCsv;
  reply.body = cockpit::render_csv(*cockpit::current(), cockpit_view(app, request), *app.config);
  reply.header("Content-Disposition", "attachment; filename=\"mailconfd-contacts.csv\"");
  return reply;
}

// Which listeners serve a route (see Surface).
enum class Exposure {
  Public,   // the mail-client surface: not on the metrics listener
  Health,   // everywhere, so probes work whichever port they are pointed at
  Metrics,  // /metrics: on its own listener when there is one, else on the main one
  Admin,    // the cockpit: only on the separate metrics listener, never on the public one
};

bool exposed(Exposure exposure, Surface surface) {
  switch (exposure) {
    case Exposure::Public:
      return surface != Surface::Metrics;
    case Exposure::Health:
      return true;
    case Exposure::Metrics:
      return surface != Surface::Public;
    case Exposure::Admin:
      return surface == Surface::Metrics;
  }
  return false;
}

struct Route {
  std::string_view path;  // compared case-insensitively
  bool prefix;            // true: path is a prefix and the rest belongs to the handler (the
                          // access log then shows path + "{address}", never the rest)
  Endpoint endpoint;
  std::string_view allow;
  Reply (*get)(const App&, const Request&);   // GET and HEAD
  Reply (*post)(const App&, const Request&);  // POST; nullptr: not allowed
  Exposure exposure = Exposure::Public;
  std::string_view log_path = {};  // what the access log shows instead of the path; empty: it
};

constexpr std::array kRoutes{
    Route{"/", false, Endpoint::Setup, "GET, HEAD", setup, nullptr},
    Route{"/setup", false, Endpoint::Setup, "GET, HEAD", setup, nullptr},
    Route{"/mail/config-v1.1.xml", false, Endpoint::Autoconfig, "GET, HEAD", autoconfig, nullptr},
    Route{"/.well-known/autoconfig/mail/config-v1.1.xml", false, Endpoint::Autoconfig, "GET, HEAD",
          autoconfig, nullptr},
    Route{"/autodiscover/autodiscover.xml", false, Endpoint::Autodiscover, "GET, HEAD, POST",
          autodiscover_get, autodiscover_post},
    Route{"/autodiscover/autodiscover.json", false, Endpoint::AutodiscoverJson, "GET, HEAD",
          autodiscover_json_query, nullptr},
    Route{kJsonV1Prefix, true, Endpoint::AutodiscoverJson, "GET, HEAD", autodiscover_json_path,
          nullptr, Exposure::Public, kJsonV1Logged},
    Route{acme::kChallengePrefix, true, Endpoint::Other, "GET, HEAD", acme_challenge, nullptr},
    Route{"/email.mobileconfig", false, Endpoint::Mobileconfig, "GET, HEAD", mobileconfig, nullptr},
    Route{"/mobileconfig", false, Endpoint::Mobileconfig, "GET, HEAD", mobileconfig, nullptr},
    Route{"/healthz", false, Endpoint::Health, "GET, HEAD", healthz, nullptr, Exposure::Health},
    Route{"/readyz", false, Endpoint::Health, "GET, HEAD", readyz, nullptr, Exposure::Health},
    Route{"/metrics", false, Endpoint::Metrics, "GET, HEAD", prometheus, nullptr,
          Exposure::Metrics},
    Route{"/cockpit", false, Endpoint::Cockpit, "GET, HEAD", cockpit_page, nullptr,
          Exposure::Admin},
    Route{"/cockpit/contacts.csv", false, Endpoint::Cockpit, "GET, HEAD", cockpit_csv, nullptr,
          Exposure::Admin},
    Route{"/favicon.ico", false, Endpoint::Setup, "GET, HEAD", favicon, nullptr},
};

Reply dispatch(const App& app, const Request& request) {
  for (const Route& r : kRoutes) {
    if (r.prefix ? !ascii_istarts_with(request.path, r.path)
                 : !ascii_iequals(request.path, r.path)) {
      continue;
    }
    if (!exposed(r.exposure, request.surface)) continue;
    Reply reply;
    switch (request.method) {
      case Method::Get:
      case Method::Head:
        reply = r.get(app, request);
        break;
      case Method::Post:
        reply = r.post == nullptr ? method_not_allowed(r.allow, r.endpoint) : r.post(app, request);
        break;
      case Method::Options:
      case Method::Other:
        reply = method_not_allowed(r.allow, r.endpoint);
        break;
    }
    reply.endpoint = r.endpoint;
    if (!r.log_path.empty()) reply.log_path = r.log_path;
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
    if (ascii_iequals(pair.substr(0, eq), name)) {
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
  // As in the access log: the v2 form carries the address in its path; log the route.
  const auto logged = [&request] {
    return ascii_istarts_with(request.path, kJsonV1Prefix) ? kJsonV1Logged
                                                           : request.path.substr(0, 200);
  };
  try {
    return dispatch(app, request);
  } catch (const std::exception& e) {
    // A bug, never a client mistake: log it, answer a plain 500 without the text.
    spdlog::error("handler failed for {}: {}", logged(), e.what());
  } catch (...) {
    spdlog::error("handler failed for {}: unknown exception", logged());
  }
  return error_reply(500);
}

Reply route_draining(const App& app, const Request& request) {
  if (ascii_iequals(request.path, "/healthz") || ascii_iequals(request.path, "/readyz")) {
    return route(app, request);
  }
  Reply reply = error_reply(503);
  reply.close = true;
  reply.log_path = "-";  // not routed: the path may carry an address
  return reply;
}

}  // namespace mailconfd::http
