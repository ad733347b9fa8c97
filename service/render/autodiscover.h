// Outlook Autodiscover (POX, MS-OXDSCLI) and its v2 JSON pointer: a safe parser for the
// request document, the outlook 2006a settings document, the error document and the JSON
// answers. See ../shared/reference/protocols.md §2 and §1.8 (how Thunderbird reads POX).
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "core/client_settings.h"
#include "render/splice.h"

namespace mailconfd::render {

enum class PoxRequestKind {
  Outlook,      // outlook requestschema/2006 asking for outlook responseschema/2006a
  OtherSchema,  // well-formed, but asks for a schema we do not serve (mobilesync, …) → 601
  Malformed,    // anything else → 600
};

struct PoxRequest {
  PoxRequestKind kind = PoxRequestKind::Malformed;
  // Outlook only: the text of Request/EMailAddress, entities decoded, surrounding XML
  // whitespace removed. Not validated as an address: pass it to parse_email.
  std::string email_address;

  bool operator==(const PoxRequest&) const = default;
};

inline constexpr std::size_t kMaxPoxRequestBytes = 64 * 1024;  // real requests are < 1 KiB
inline constexpr int kMaxPoxDepth = 16;                        // real requests nest 3 deep

// Parses a POX request body. Never throws; every problem is PoxRequestKind::Malformed:
// more than kMaxPoxRequestBytes, invalid UTF-8, C0 control characters, any markup
// declaration (DOCTYPE, ENTITY, …: only comments and CDATA may start with "<!"), entity
// references other than the five predefined ones and character references to XML Chars,
// nesting deeper than kMaxPoxDepth, more than one root element, elements outside the
// request namespace (http://schemas.microsoft.com/exchange/autodiscover/outlook/
// requestschema/2006, or its mobilesync twin; an https:// spelling is tolerated), a missing
// or repeated Request, AcceptableResponseSchema or (for 2006a) EMailAddress. Element names
// are matched by local name; prefixes are resolved through xmlns declarations.
PoxRequest parse_autodiscover_request(std::string_view body);

// The two readings behind parse_autodiscover_request, exposed for tests. The common form is
// what Outlook and Thunderbird send (an optional XML declaration, <Autodiscover xmlns=…>,
// <Request>, its two children in either order, whitespace between them, text without
// references): a scanner reads it without building a tree, and answers nullopt for anything
// else, which then goes to the general reading with pugixml. Both readings of one body are
// the same wherever the scanner answers (tests/unit and the autodiscover fuzz target check
// it). Neither checks the bytes (acceptable_bytes): call parse_autodiscover_request.
std::optional<PoxRequest> parse_autodiscover_common(std::string_view body);
PoxRequest parse_autodiscover_general(std::string_view body);

// The outlook 2006a settings document: one Protocol per incoming server (in the order
// resolve() gives) and one per outgoing server, every element explicit (SPA off, SSL on,
// Encryption SSL for implicit TLS and TLS for STARTTLS, AuthRequired on; SMTP adds
// UsePOPAuth on and SMTPLast off). Slots: Login (every LoginName) and Address
// (User/DisplayName). Cannot fail; the same settings always give the same bytes.
Splice autodiscover(const ClientSettings& settings);

// MS-OXDSCLI error codes we answer with (protocols.md §2.6).
enum class PoxError {
  AddressNotFound = 500,  // the domain is not hosted here
  InvalidRequest = 600,   // malformed request or address
  SchemaNotServed = 601,  // AcceptableResponseSchema is not outlook 2006a (incl. mobilesync)
};

// The error document with Error@Time (UTC time of day of now, 7 fraction digits) and a fixed
// Error@Id. Depends on nothing else, in particular never on request data.
std::string autodiscover_error(PoxError error, std::chrono::system_clock::time_point now);

// https://<provider autodiscover host>/autodiscover/autodiscover.xml
std::string autodiscover_url(const Provider& provider);

// Autodiscover v2 (protocols.md §2.8): {"Protocol":"AutodiscoverV1","Url":"<autodiscover_url>"}.
std::string autodiscover_json(const Provider& provider);

enum class JsonError {
  InvalidProtocol,  // Protocol missing or not AutodiscoverV1 (answered with 400)
  InvalidEmail,     // address missing or malformed (400)
  NotFound,         // the domain is not hosted here (404)
};
// Fixed bodies {"ErrorCode":…,"ErrorMessage":…}; nothing from the request is echoed.
std::string autodiscover_json_error(JsonError error);

// text as a JSON string literal, quotes included (RFC 8259 escaping; invalid UTF-8 and
// control characters never pass through unescaped).
std::string json_quote(std::string_view text);

}  // namespace mailconfd::render
