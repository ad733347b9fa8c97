#include "render/autoconfig.h"

#include <string>

#include "render/xml.h"

namespace mailconfd::render {
namespace {

// Thunderbird compares these case-sensitively and does not trim them (protocols.md §1.2, §1.4).
std::string_view socket_type(Security security) {
  switch (security) {
    case Security::Tls:
      return "SSL";
    case Security::StartTls:
      return "STARTTLS";
  }
  return "SSL";
}

std::string_view authentication(Auth auth) {
  switch (auth) {
    case Auth::PasswordCleartext:
      return "password-cleartext";
    case Auth::PasswordEncrypted:
      return "password-encrypted";
  }
  return "password-cleartext";
}

void server(xml::Writer& w, std::string_view element, std::string_view type, const MailServer& s) {
  w.open(element, {{"type", type}});
  w.leaf("hostname", s.host);
  w.leaf("port", std::to_string(s.port));
  w.leaf("socketType", socket_type(s.security));
  w.leaf("username", Slot::Login);  // always present: a missing one becomes "undefined" in TB
  w.leaf("authentication", authentication(s.auth));
  w.close(element);
}

}  // namespace

Splice autoconfig(const ClientSettings& settings) {
  const Provider& provider = *settings.provider;
  Splice doc;
  xml::Writer w(doc);
  w.declaration();
  w.open("clientConfig", {{"version", "1.1"}});
  w.open("emailProvider", {{"id", provider.id}});
  w.leaf("domain", Slot::Domain);
  w.leaf("displayName", provider.display_name);
  w.leaf("displayShortName", provider.short_name);
  for (const MailServer& s : settings.incoming) {
    server(w, "incomingServer", s.protocol == Protocol::Imap ? "imap" : "pop3", s);
  }
  for (const MailServer& s : settings.outgoing) server(w, "outgoingServer", "smtp", s);
  if (!provider.documentation_url.empty()) {
    w.open("documentation", {{"url", provider.documentation_url}});
    for (const LocalizedText& text : provider.documentation) {
      w.leaf("descr", text.text, {{"lang", text.lang}});
    }
    w.close("documentation");
  }
  w.close("emailProvider");
  w.close("clientConfig");
  return doc;
}

}  // namespace mailconfd::render
