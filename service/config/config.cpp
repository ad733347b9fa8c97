#include "config/config.h"

#include <algorithm>

#include "config/keyed_hash.h"
#include "core/ascii.h"
#include "tls/certificates.h"

namespace mailconfd {

namespace {

// Keyed per process: domains and addresses are chosen by customers (keyed_hash.h).
std::uint32_t hash_name(std::string_view s) { return static_cast<std::uint32_t>(keyed_hash(s)); }

// Backward-shift deletion for linear probing: empties slot and moves each later entry of the
// run that may live there into the gap, so no lookup needs a tombstone. home(at) gives the
// home slot of the record an index entry names.
template <class Home>
void unlink_slot(std::vector<std::uint32_t>& index, std::size_t slot, Home&& home) {
  const std::size_t mask = index.size() - 1;
  std::size_t gap = slot;
  for (std::size_t j = (slot + 1) & mask; index[j] != 0; j = (j + 1) & mask) {
    const std::size_t k = home(index[j]) & mask;
    // The entry at j may move to gap unless its home lies cyclically in (gap, j].
    const bool stays = gap <= j ? (gap < k && k <= j) : (gap < k || k <= j);
    if (stays) continue;
    index[gap] = index[j];
    gap = j;
  }
  index[gap] = 0;
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

std::size_t DomainTable::max_probe() const {
  const std::size_t mask = index_.size() - 1;
  std::size_t longest = 0;
  for (std::size_t i = 0; i < index_.size(); ++i) {
    if (index_[i] == 0) continue;
    const std::size_t home = records_[index_[i] - 1].hash & mask;
    longest = std::max(longest, ((i - home) & mask) + 1);
  }
  return longest;
}

bool DomainTable::erase(std::string_view domain) {
  if (index_.empty()) return false;
  const std::size_t slot = slot_for(domain, hash_name(domain));
  if (index_[slot] == 0) return false;
  const std::size_t at = index_[slot] - 1;
  unlink_slot(index_, slot, [this](std::uint32_t n) { return records_[n - 1].hash; });
  const std::size_t last = records_.size() - 1;
  if (at != last) {
    const Record moved = records_[last];
    index_[slot_for(name(moved), moved.hash)] = static_cast<std::uint32_t>(at + 1);
    records_[at] = moved;
  }
  records_.pop_back();
  return true;
}

std::size_t LoginTable::slot_for(std::string_view key, std::uint32_t hash) const {
  const std::size_t mask = index_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const std::uint32_t at = index_[i];
    if (at == 0) return i;
    const Record& r = records_[at - 1];
    if (r.hash == hash && std::string_view(arena_.data() + r.offset, r.key_length) == key) return i;
  }
}

void LoginTable::rehash(std::size_t capacity) {
  std::vector<std::uint32_t> index(capacity, 0);
  index_.swap(index);
  const std::size_t mask = capacity - 1;
  for (std::size_t n = 0; n < records_.size(); ++n) {
    std::size_t i = records_[n].hash & mask;
    while (index_[i] != 0) i = (i + 1) & mask;
    index_[i] = static_cast<std::uint32_t>(n + 1);
  }
}

bool LoginTable::insert(std::string_view key, std::string_view login) {
  if (key.size() > 0xFFFF || login.size() > 0xFFFF ||
      arena_.size() + key.size() + login.size() > 0xFFFFFFFFu) {
    return false;
  }
  if ((records_.size() + 1) * 2 > index_.size())
    rehash(std::max<std::size_t>(16, index_.size() * 2));
  const std::uint32_t hash = hash_name(key);
  const std::size_t slot = slot_for(key, hash);
  if (index_[slot] != 0) return false;
  records_.push_back(Record{static_cast<std::uint32_t>(arena_.size()), hash,
                            static_cast<std::uint16_t>(key.size()),
                            static_cast<std::uint16_t>(login.size())});
  arena_.append(key).append(login);
  index_[slot] = static_cast<std::uint32_t>(records_.size());
  return true;
}

std::optional<std::string_view> LoginTable::find(std::string_view key) const {
  if (index_.empty()) return std::nullopt;
  const std::size_t slot = slot_for(key, hash_name(key));
  if (index_[slot] == 0) return std::nullopt;
  const Record& r = records_[index_[slot] - 1];
  return std::string_view(arena_.data() + r.offset + r.key_length, r.login_length);
}

bool LoginTable::erase(std::string_view key) {
  if (index_.empty()) return false;
  const std::size_t slot = slot_for(key, hash_name(key));
  if (index_[slot] == 0) return false;
  const std::size_t at = index_[slot] - 1;
  unlink_slot(index_, slot, [this](std::uint32_t n) { return records_[n - 1].hash; });
  const std::size_t last = records_.size() - 1;
  if (at != last) {
    const Record moved = records_[last];
    index_[slot_for(std::string_view(arena_.data() + moved.offset, moved.key_length), moved.hash)] =
        static_cast<std::uint32_t>(at + 1);
    records_[at] = moved;
  }
  records_.pop_back();
  return true;
}

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
