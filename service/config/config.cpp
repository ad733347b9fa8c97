#include "config/config.h"

#include <algorithm>

namespace mailconfd {

bool DomainTable::insert(std::string domain, DomainEntry entry) {
  return map_.emplace(std::move(domain), entry).second;
}

const DomainEntry* DomainTable::find(std::string_view domain) const {
  auto it = map_.find(domain);
  return it == map_.end() ? nullptr : &it->second;
}

std::vector<std::string_view> DomainTable::sorted() const {
  std::vector<std::string_view> names;
  names.reserve(map_.size());
  for (const auto& [name, entry] : map_) names.emplace_back(name);
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

}  // namespace mailconfd
