#include "core/client_settings.h"

#include <algorithm>

namespace mailconfd {
namespace {

const std::string& override_host(const HostOverride& hosts, Protocol protocol) {
  switch (protocol) {
    case Protocol::Imap:
      return hosts.imap_host;
    case Protocol::Pop3:
      return hosts.pop3_host;
    case Protocol::Smtp:
      return hosts.smtp_host;
  }
  return hosts.imap_host;
}

int incoming_rank(const MailServer& server, Incoming incoming) {
  // Thunderbird pre-selects the first valid entry: IMAP first moves customers off POP3 (unless
  // the domain prefers POP3), and implicit TLS (RFC 8314) before STARTTLS.
  const bool first = (server.protocol == Protocol::Imap) == (incoming != Incoming::Pop3First);
  return (first ? 0 : 2) + (server.security == Security::Tls ? 0 : 1);
}

bool offered(const MailServer& server, Incoming incoming) {
  switch (incoming) {
    case Incoming::ImapOnly:
      return server.protocol == Protocol::Imap;
    case Incoming::Pop3Only:
      return server.protocol == Protocol::Pop3;
    case Incoming::ImapFirst:
    case Incoming::Pop3First:
      break;
  }
  return true;
}

bool is_submission(const MailServer& server) {
  return server.port == 587 && server.security == Security::StartTls;
}

}  // namespace

ClientSettings resolve(const Config& config, DomainEntry entry) {
  const Provider& provider = config.providers.at(entry.provider);
  return resolve(provider, provider.overrides.at(entry.hosts));
}

ClientSettings resolve(const Provider& provider, const HostOverride& hosts) {
  ClientSettings settings;
  settings.provider = &provider;
  for (const MailServer& server : provider.incoming) {
    if (offered(server, hosts.incoming)) settings.incoming.push_back(server);
  }
  settings.outgoing = provider.outgoing;
  for (auto* list : {&settings.incoming, &settings.outgoing}) {
    for (MailServer& server : *list) {
      if (const std::string& host = override_host(hosts, server.protocol); !host.empty()) {
        server.host = host;
      }
    }
  }
  std::stable_sort(settings.incoming.begin(), settings.incoming.end(),
                   [&hosts](const MailServer& a, const MailServer& b) {
                     return incoming_rank(a, hosts.incoming) < incoming_rank(b, hosts.incoming);
                   });
  // The mission: 587 + STARTTLS + password is what every client is told first.
  std::stable_partition(settings.outgoing.begin(), settings.outgoing.end(), is_submission);
  return settings;
}

std::optional<ClientSettings> resolve(const Config& config, std::string_view domain) {
  const DomainEntry* entry = config.domains.find(domain);
  if (entry == nullptr) return std::nullopt;
  return resolve(config, *entry);
}

std::string login_name(LoginForm form, LoginDomain domain, const EmailAddress& address) {
  if (form == LoginForm::LocalPart) return address.local;
  return domain == LoginDomain::ULabel ? address.display() : address.full();
}

std::string_view login_placeholder(LoginForm form) {
  return form == LoginForm::LocalPart ? "%EMAILLOCALPART%" : "%EMAILADDRESS%";
}

}  // namespace mailconfd
