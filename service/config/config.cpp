#include "config/config.h"

#include <algorithm>

#include "core/ascii.h"
#include "tls/certificates.h"

namespace mailconfd {

std::string login_key(std::string_view local, std::string_view domain) {
  std::string key;
  key.reserve(local.size() + 1 + domain.size());
  for (char c : local) key.push_back(ascii_lower(c));
  key.push_back('@');
  key.append(domain);
  return key;
}

std::vector<std::string_view> DomainTable::sorted() const {
  std::vector<std::string_view> names;
  names.reserve(table_.size());
  for (const Record& r : table_.records()) names.push_back(table_.key(r));
  std::sort(names.begin(), names.end());
  return names;
}

std::string_view to_string(Protocol protocol) {
  switch (protocol) {
    case Protocol::Imap:
      return "IMAP";
    case Protocol::Pop3:
      return "POP3";
    case Protocol::Smtp:
      return "SMTP";
  }
  return "?";
}

std::string_view to_string(Security security) {
  switch (security) {
    case Security::Tls:
      return "TLS";
    case Security::StartTls:
      return "STARTTLS";
  }
  return "?";
}

std::string_view to_string(Incoming incoming) {
  switch (incoming) {
    case Incoming::ImapFirst:
      return "imap-first";
    case Incoming::Pop3First:
      return "pop3-first";
    case Incoming::ImapOnly:
      return "imap-only";
    case Incoming::Pop3Only:
      return "pop3-only";
  }
  return "?";
}

std::optional<Incoming> parse_incoming(std::string_view text) {
  for (Incoming i :
       {Incoming::ImapFirst, Incoming::Pop3First, Incoming::ImapOnly, Incoming::Pop3Only}) {
    if (to_string(i) == text) return i;
  }
  return std::nullopt;
}

std::vector<std::string> uncovered_https_names(const Config& config,
                                               const tls::CertificateSet& set) {
  std::vector<std::string> warnings;
  for (const Provider& provider : config.providers) {
    const std::string& host = provider.autodiscover_host;
    if (host.empty() || set.find(host) != nullptr) continue;
    if (config.acme && std::find(config.acme->names.begin(), config.acme->names.end(), host) !=
                           config.acme->names.end()) {
      continue;
    }
    warnings.push_back("no certificate covers " + host + ", the Autodiscover host of provider " +
                       provider.id +
                       " (Outlook's HTTPS requests to it fail; the default "
                       "certificate answers)");
  }
  return warnings;
}

}  // namespace mailconfd
