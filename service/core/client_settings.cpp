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

int incoming_rank(const MailServer& server) {
  // Thunderbird pre-selects the first valid entry: IMAP first moves customers off POP3,
  // and implicit TLS (RFC 8314) before STARTTLS.
  return (server.protocol == Protocol::Imap ? 0 : 2) + (server.security == Security::Tls ? 0 : 1);
}

bool is_submission(const MailServer& server) {
  return server.port == 587 && server.security == Security::StartTls;
}

}  // namespace

ClientSettings resolve(const Config& config, DomainEntry entry) {
  const Provider& provider = config.providers.at(entry.provider);
  const HostOverride& hosts = provider.overrides.at(entry.hosts);
  ClientSettings settings;
  settings.provider = &provider;
  settings.incoming = provider.incoming;
  settings.outgoing = provider.outgoing;
  for (auto* list : {&settings.incoming, &settings.outgoing}) {
    for (MailServer& server : *list) {
      if (const std::string& host = override_host(hosts, server.protocol); !host.empty()) {
        server.host = host;
      }
    }
  }
  std::stable_sort(
      settings.incoming.begin(), settings.incoming.end(),
      [](const MailServer& a, const MailServer& b) { return incoming_rank(a) < incoming_rank(b); });
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
