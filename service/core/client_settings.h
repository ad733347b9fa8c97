// Resolves which servers a mail client should use for a hosted domain.
// Every renderer reads the ClientSettings this produces, and nothing else.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/email_address.h"

namespace mailconfd {

struct ClientSettings {
  const Provider* provider = nullptr;  // never null; points into the Config it came from
  std::vector<MailServer> incoming;    // IMAP before POP3, TLS before STARTTLS; never empty
  std::vector<MailServer> outgoing;    // 587+STARTTLS first, then the rest as configured
};

// Settings for one provider with one host set applied (its hosts and its incoming choice;
// incoming is never empty for a host set the loader or a source accepted). Pure.
ClientSettings resolve(const Provider& provider, const HostOverride& hosts);
// The same with one of the provider's own host sets (Provider::overrides). Pure.
ClientSettings resolve(const Config& config, DomainEntry entry);

// Returns nullopt when the domain (a lowercase A-label) is not hosted. Pure.
std::optional<ClientSettings> resolve(const Config& config, std::string_view domain);

// What the user types as user name for this address: the full address (its domain as A- or
// U-labels) or its local part.
std::string login_name(LoginForm form, LoginDomain domain, const EmailAddress& address);
inline std::string login_name(const Provider& provider, const EmailAddress& address) {
  return login_name(provider.login, provider.login_domain, address);
}

// The login form a domain's customers use: its host set's, else the provider's.
inline LoginForm login_form(const Provider& provider, const HostOverride& hosts) {
  return hosts.login.value_or(provider.login);
}

// The Thunderbird placeholder that stands for login_name() when no address is known.
std::string_view login_placeholder(LoginForm form);

}  // namespace mailconfd
