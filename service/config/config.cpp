#include "config/config.h"

#include <algorithm>

namespace mailconfd {

namespace {

// FNV-1a: domains are short; this is cheap and spreads well enough for linear probing.
std::uint32_t hash_name(std::string_view s) {
  std::uint32_t h = 2166136261u;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  return h;
}

}  // namespace

std::size_t DomainTable::slot_for(std::string_view domain, std::uint32_t hash) const {
  const std::size_t mask = index_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const std::uint32_t at = index_[i];
    if (at == 0) return i;
    const Record& r = records_[at - 1];
    if (r.hash == hash && name(r) == domain) return i;
  }
}

void DomainTable::rehash(std::size_t capacity) {
  std::vector<std::uint32_t> index(capacity, 0);
  index_.swap(index);
  const std::size_t mask = capacity - 1;
  for (std::size_t n = 0; n < records_.size(); ++n) {
    std::size_t i = records_[n].hash & mask;
    while (index_[i] != 0) i = (i + 1) & mask;
    index_[i] = static_cast<std::uint32_t>(n + 1);
  }
}

void DomainTable::reserve(std::size_t n) {
  const std::size_t wanted = (records_.size() + n) * 2;  // load factor at most 1/2
  std::size_t capacity = 16;
  while (capacity < wanted) capacity *= 2;
  records_.reserve(records_.size() + n);
  if (capacity > index_.size()) rehash(capacity);
}

bool DomainTable::insert(std::string_view domain, DomainEntry entry) {
  if (domain.size() > 0xFFFF || arena_.size() + domain.size() > 0xFFFFFFFFu) return false;
  if ((records_.size() + 1) * 2 > index_.size())
    rehash(std::max<std::size_t>(16, index_.size() * 2));
  const std::uint32_t hash = hash_name(domain);
  const std::size_t slot = slot_for(domain, hash);
  if (index_[slot] != 0) return false;
  records_.push_back(Record{static_cast<std::uint32_t>(arena_.size()), hash,
                            static_cast<std::uint16_t>(domain.size()), entry});
  arena_.append(domain);
  index_[slot] = static_cast<std::uint32_t>(records_.size());
  return true;
}

const DomainEntry* DomainTable::find(std::string_view domain) const {
  if (index_.empty()) return nullptr;
  const std::size_t slot = slot_for(domain, hash_name(domain));
  return index_[slot] == 0 ? nullptr : &records_[index_[slot] - 1].entry;
}

std::optional<std::size_t> DomainTable::position(std::string_view domain) const {
  if (index_.empty()) return std::nullopt;
  const std::size_t slot = slot_for(domain, hash_name(domain));
  if (index_[slot] == 0) return std::nullopt;
  return index_[slot] - 1;
}

std::vector<std::string_view> DomainTable::sorted() const {
  std::vector<std::string_view> names;
  names.reserve(records_.size());
  for (const Record& r : records_) names.push_back(name(r));
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
