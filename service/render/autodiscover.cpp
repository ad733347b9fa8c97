#include "render/autodiscover.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <optional>

#include <fmt/format.h>
#include <pugixml.hpp>

#include "core/email_address.h"
#include "render/xml.h"

namespace mailconfd::render {
namespace {

// Microsoft's own servers answer with http:// namespaces; Microsoft Learn prints https://
// after a bulk rewrite (protocols.md §2.2, pitfall 7). We write http:// and accept both.
constexpr std::string_view kResponseNs =
    "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";
constexpr std::string_view kOutlookResponseNs =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";
constexpr std::string_view kOutlookRequestNs =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006";
constexpr std::string_view kMobileSyncRequestNs =
    "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006";

// Equal to the http:// URI, or to its https:// spelling.
bool same_uri(std::string_view value, std::string_view http_uri) {
  if (value == http_uri) return true;
  constexpr std::string_view kHttp = "http://";
  return value.starts_with("https://") && value.substr(8) == http_uri.substr(kHttp.size());
}

bool xml_char(std::uint32_t cp) {
  return cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) ||
         (cp >= 0xE000 && cp <= 0xFFFD) || (cp >= 0x10000 && cp <= 0x10FFFF);
}

void append_utf8(std::uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// pugixml runs without parse_escapes, so references are decoded here, where only the five
// predefined entities and character references to XML Chars exist. Anything else (an entity
// a DTD would have declared, &#0;, a lone '&') makes the request malformed.
std::optional<std::string> decode_references(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  std::size_t i = 0;
  while (i < raw.size()) {
    if (raw[i] != '&') {
      const std::size_t amp = std::min(raw.find('&', i), raw.size());
      out.append(raw.substr(i, amp - i));
      i = amp;
      continue;
    }
    const std::size_t semi = raw.find(';', i);
    if (semi == std::string_view::npos || semi - i > 10) return std::nullopt;
    const std::string_view name = raw.substr(i + 1, semi - i - 1);
    i = semi + 1;
    if (name == "lt") {
      out.push_back('<');
    } else if (name == "gt") {
      out.push_back('>');
    } else if (name == "amp") {
      out.push_back('&');
    } else if (name == "quot") {
      out.push_back('"');
    } else if (name == "apos") {
      out.push_back('\'');
    } else if (name.size() >= 2 && name[0] == '#') {
      const bool hex = name[1] == 'x';
      const std::string_view digits = name.substr(hex ? 2 : 1);
      std::uint32_t cp = 0;
      auto [end, ec] =
          std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
      if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() ||
          !xml_char(cp)) {
        return std::nullopt;
      }
      append_utf8(cp, out);
    } else {
      return std::nullopt;
    }
  }
  return out;
}

std::string_view local_name(std::string_view name) {
  const auto colon = name.find(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

// The namespace URI of an element, from the nearest xmlns / xmlns:prefix declaration.
// nullopt: no namespace, an undeclared prefix, or an undecodable declaration.
std::optional<std::string> namespace_of(pugi::xml_node node) {
  const std::string_view name = node.name();
  const auto colon = name.find(':');
  const std::string attribute =
      colon == std::string_view::npos ? "xmlns" : "xmlns:" + std::string(name.substr(0, colon));
  for (; node && node.type() == pugi::node_element; node = node.parent()) {
    if (const pugi::xml_attribute a = node.attribute(attribute.c_str())) {
      auto uri = decode_references(a.value());
      if (!uri || uri->empty()) return std::nullopt;
      return uri;
    }
  }
  return std::nullopt;
}

bool deeper_than(const pugi::xml_document& doc, int limit) {
  // Iterative, so that the walk itself cannot exhaust the stack.
  pugi::xml_node node = doc.first_child();
  int depth = 1;
  while (node) {
    if (depth > limit) return true;
    if (pugi::xml_node child = node.first_child()) {
      node = child;
      ++depth;
      continue;
    }
    while (!node.next_sibling()) {
      node = node.parent();
      --depth;
      if (node == doc) return false;
    }
    node = node.next_sibling();
  }
  return false;
}

// Lexical checks before pugixml sees the bytes: pugixml neither validates UTF-8 nor
// rejects control characters, and a DTD is refused outright rather than skipped.
bool acceptable_bytes(std::string_view body) {
  if (body.empty() || body.size() > kMaxPoxRequestBytes || !valid_utf8(body)) return false;
  // Eight bytes at a time: a word of printable ASCII (0x20-0x7F) needs no closer look. The
  // lowest byte below 0x20 always sets its high bit in word - 0x20…; a non-ASCII byte sets
  // its own. Such a word (often one with a line end) is looked at byte by byte.
  constexpr std::uint64_t kSpaces = 0x2020202020202020ULL;
  constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
  std::size_t i = 0;
  for (; i + 8 <= body.size(); i += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, body.data() + i, sizeof word);
    if ((((word - kSpaces) | word) & kHigh) == 0) continue;
    for (std::size_t k = i; k < i + 8; ++k) {
      const char c = body[k];
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') {
        return false;
      }
    }
  }
  for (; i < body.size(); ++i) {
    const char c = body[i];
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') return false;
  }
  // Markup declarations: every "<!" must open a comment or CDATA. '!' is rare in requests,
  // so look for it rather than for every '<'.
  for (auto pos = body.find('!'); pos != std::string_view::npos; pos = body.find('!', pos + 1)) {
    if (pos == 0 || body[pos - 1] != '<') continue;
    const std::string_view rest = body.substr(pos + 1);
    if (!rest.starts_with("--") && !rest.starts_with("[CDATA[")) return false;
  }
  return true;
}

// The single child element with this local name in namespace ns. Returns an empty node
// when there is none; repeated sets *repeated.
pugi::xml_node only_child(const pugi::xml_node& parent, std::string_view name,
                          const std::string& ns, bool* repeated) {
  pugi::xml_node found;
  for (const pugi::xml_node& child : parent.children()) {
    if (child.type() != pugi::node_element || local_name(child.name()) != name) continue;
    if (namespace_of(child) != ns) continue;
    if (found) *repeated = true;
    found = child;
  }
  return found;
}

// The text of an element that holds only character data, references decoded, XML
// whitespace trimmed. nullopt when it holds elements or undecodable references.
std::optional<std::string> element_text(const pugi::xml_node& node) {
  std::string text;
  for (const pugi::xml_node& child : node.children()) {
    if (child.type() == pugi::node_pcdata) {
      auto decoded = decode_references(child.value());
      if (!decoded) return std::nullopt;
      text += *decoded;
    } else if (child.type() == pugi::node_cdata) {
      text += child.value();
    } else {
      return std::nullopt;
    }
  }
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return std::string();
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

// Outlook 2010+ reads Encryption before SSL: SSL = implicit TLS, TLS = STARTTLS. Encryption
// TLS on 993/465 makes Outlook try STARTTLS there (stalwartlabs/stalwart#3248).
std::string_view encryption(Security security) {
  switch (security) {
    case Security::Tls:
      return "SSL";
    case Security::StartTls:
      return "TLS";
  }
  return "SSL";
}

void protocol(xml::Writer& w, const MailServer& s) {
  w.open("Protocol");
  w.leaf("Type", to_string(s.protocol));  // IMAP, POP3, SMTP
  w.leaf("Server", s.host);
  w.leaf("Port", std::to_string(s.port));
  w.leaf("DomainRequired", "off");
  // Absent, Outlook would use the local part (protocols.md §2.3, pitfall 4).
  w.leaf("LoginName", Slot::Login);
  // Absent means on: NTLM. Password logins inside TLS are never SPA.
  w.leaf("SPA", "off");
  // Thunderbird reads SSL off as plaintext whatever Encryption says (§1.8, pitfall 3).
  w.leaf("SSL", "on");
  w.leaf("Encryption", encryption(s.security));
  w.leaf("AuthRequired", "on");
  if (s.protocol == Protocol::Smtp) {
    w.leaf("UsePOPAuth", "on");  // SMTP-Auth with the incoming server's credentials
    w.leaf("SMTPLast", "off");   // on would be SMTP-after-POP
  }
  w.close("Protocol");
}

std::string_view message(PoxError error) {
  switch (error) {
    case PoxError::AddressNotFound:
      return "The email address cannot be found.";
    case PoxError::InvalidRequest:
      return "Invalid Request";
    case PoxError::SchemaNotServed:
      return "The requested schema version is not supported.";
  }
  return "Invalid Request";
}

}  // namespace

PoxRequest parse_autodiscover_request(std::string_view body) {
  if (!acceptable_bytes(body)) return PoxRequest{};
  if (auto common = parse_autodiscover_common(body)) return std::move(*common);
  return parse_autodiscover_general(body);
}

std::optional<PoxRequest> parse_autodiscover_common(std::string_view s) {
  // Plain loops: string_view's find_first_of and find_first_not_of call memchr per byte.
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  auto skip_space = [&] {
    while (!s.empty() && space(s.front())) s.remove_prefix(1);
  };
  auto take = [&](std::string_view token) {
    if (!s.starts_with(token)) return false;
    s.remove_prefix(token.size());
    return true;
  };
  // Text up to the next '<', surrounding whitespace trimmed. nullopt for what the general
  // reading would treat differently: references, CDATA ends, '\r' (end-of-line handling).
  auto text = [&]() -> std::optional<std::string_view> {
    const auto end = s.find('<');
    if (end == std::string_view::npos) return std::nullopt;
    std::string_view t = s.substr(0, end);
    s.remove_prefix(end);
    for (char c : t) {
      if (c == '&' || c == ']' || c == '>' || c == '\r') return std::nullopt;
    }
    while (!t.empty() && space(t.front())) t.remove_prefix(1);
    while (!t.empty() && space(t.back())) t.remove_suffix(1);
    return t;
  };
  if (!take("<?xml version=\"1.0\" encoding=\"utf-8\"?>") &&
      !take("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")) {
    take("<?xml version=\"1.0\"?>");
  }
  skip_space();
  if (!take("<Autodiscover xmlns=\"")) return std::nullopt;
  const auto quote = s.find('"');
  if (quote == std::string_view::npos || !same_uri(s.substr(0, quote), kOutlookRequestNs)) {
    return std::nullopt;
  }
  s.remove_prefix(quote);
  if (!take("\">")) return std::nullopt;
  skip_space();
  if (!take("<Request>")) return std::nullopt;
  std::optional<std::string_view> address;
  std::optional<std::string_view> schema;
  for (int i = 0; i < 2; ++i) {
    skip_space();
    if (!address && take("<EMailAddress>")) {
      address = text();
      if (!address || !take("</EMailAddress>")) return std::nullopt;
    } else if (!schema && take("<AcceptableResponseSchema>")) {
      schema = text();
      if (!schema || !take("</AcceptableResponseSchema>")) return std::nullopt;
    } else {
      return std::nullopt;
    }
  }
  skip_space();
  if (!take("</Request>")) return std::nullopt;
  skip_space();
  if (!take("</Autodiscover>")) return std::nullopt;
  skip_space();
  if (!s.empty()) return std::nullopt;
  if (!same_uri(*schema, kOutlookResponseNs)) return PoxRequest{PoxRequestKind::OtherSchema, {}};
  if (address->empty()) return PoxRequest{};
  return PoxRequest{PoxRequestKind::Outlook, std::string(*address)};
}

PoxRequest parse_autodiscover_general(std::string_view body) {
  const PoxRequest malformed;
  if (body.size() > kMaxPoxRequestBytes) return malformed;
  pugi::xml_document doc;
  // parse_fragment keeps text outside the root as nodes (otherwise pugixml drops it silently),
  // so that "<root/>junk" and two roots can be refused below.
  constexpr unsigned kFlags =
      (pugi::parse_default & ~pugi::parse_escapes) | pugi::parse_doctype | pugi::parse_fragment;
  if (!doc.load_buffer(body.data(), body.size(), kFlags, pugi::encoding_utf8)) return malformed;
  if (deeper_than(doc, kMaxPoxDepth)) return malformed;

  pugi::xml_node root;
  for (const pugi::xml_node& n : doc.children()) {
    if (n.type() != pugi::node_element || root) return malformed;
    root = n;
  }
  if (!root || local_name(root.name()) != "Autodiscover") return malformed;
  const std::optional<std::string> ns = namespace_of(root);
  if (!ns) return malformed;
  const bool outlook = same_uri(*ns, kOutlookRequestNs);
  if (!outlook && !same_uri(*ns, kMobileSyncRequestNs)) return malformed;

  bool repeated = false;
  const pugi::xml_node request = only_child(root, "Request", *ns, &repeated);
  if (!request || repeated) return malformed;
  const pugi::xml_node schema_node =
      only_child(request, "AcceptableResponseSchema", *ns, &repeated);
  const pugi::xml_node address_node = only_child(request, "EMailAddress", *ns, &repeated);
  if (!schema_node || repeated) return malformed;
  const std::optional<std::string> schema = element_text(schema_node);
  if (!schema) return malformed;
  // A mobilesync request is never answered with a 2006a document (protocols.md §2.7).
  if (!outlook || !same_uri(*schema, kOutlookResponseNs)) {
    return PoxRequest{PoxRequestKind::OtherSchema, {}};
  }
  if (!address_node) return malformed;
  std::optional<std::string> address = element_text(address_node);
  if (!address || address->empty()) return malformed;
  return PoxRequest{PoxRequestKind::Outlook, std::move(*address)};
}

Splice autodiscover(const ClientSettings& settings) {
  Splice doc;
  xml::Writer w(doc);
  w.declaration();
  w.open("Autodiscover", {{"xmlns", kResponseNs}});
  w.open("Response", {{"xmlns", kOutlookResponseNs}});
  // MS-OXDSCLI §3.2.5: a settings answer carries a User element.
  w.open("User");
  w.leaf("DisplayName", Slot::Display);
  w.close("User");
  w.open("Account");
  w.leaf("AccountType", "email");
  w.leaf("Action", "settings");
  for (const MailServer& s : settings.incoming) protocol(w, s);
  for (const MailServer& s : settings.outgoing) protocol(w, s);
  w.close("Account");
  w.close("Response");
  w.close("Autodiscover");
  return doc;
}

std::string autodiscover_error(PoxError error, std::chrono::system_clock::time_point now) {
  using namespace std::chrono;
  const auto since_midnight = now.time_since_epoch() % days(1);
  const auto ticks =
      duration_cast<duration<std::int64_t, std::ratio<1, 10'000'000>>>(since_midnight % seconds(1));
  const auto hms = hh_mm_ss<seconds>(duration_cast<seconds>(since_midnight));
  const std::string time = fmt::format("{:02}:{:02}:{:02}.{:07}", hms.hours().count(),
                                       hms.minutes().count(), hms.seconds().count(), ticks.count());
  Splice doc;
  xml::Writer w(doc);
  w.declaration();
  w.open("Autodiscover", {{"xmlns", kResponseNs}});
  w.open("Response");
  // Id is "a hash of the server name" in Exchange; a fixed number reveals nothing.
  w.open("Error", {{"Time", time}, {"Id", "2477272013"}});
  w.leaf("ErrorCode", std::to_string(static_cast<int>(error)));
  w.leaf("Message", message(error));
  w.empty("DebugData");
  w.close("Error");
  w.close("Response");
  w.close("Autodiscover");
  return doc.expand(SlotValues{});
}

std::string autodiscover_url(const Provider& provider) {
  return "https://" + provider.autodiscover_host + "/autodiscover/autodiscover.xml";
}

std::string autodiscover_json(const Provider& provider) {
  return "{\"Protocol\":\"AutodiscoverV1\",\"Url\":" + json_quote(autodiscover_url(provider)) + "}";
}

std::string autodiscover_json_error(JsonError error) {
  switch (error) {
    case JsonError::InvalidProtocol:
      // mailcow's wording, mirroring Exchange (protocols.md §2.8), without echoing the value.
      return R"({"ErrorCode":"InvalidProtocol","ErrorMessage":"The given protocol value is invalid. Supported values are 'AutodiscoverV1'"})";
    case JsonError::InvalidEmail:
      return R"({"ErrorCode":"InvalidEmail","ErrorMessage":"The given email address is invalid."})";
    case JsonError::NotFound:
      return R"({"ErrorCode":"NotFound","ErrorMessage":"The email address cannot be found."})";
  }
  return R"({"ErrorCode":"InvalidProtocol"})";
}

std::string json_quote(std::string_view text) {
  const bool utf8 = valid_utf8(text);
  std::string out = "\"";
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      default:
        if (byte < 0x20 || byte == 0x7F || c == '<' || c == '>' || c == '&') {
          out.append(fmt::format("\\u{:04x}", byte));
        } else if (byte >= 0x80 && !utf8) {
          out.append("\\ufffd");
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace mailconfd::render
