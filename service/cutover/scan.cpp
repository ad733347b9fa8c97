#include "cutover/scan.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <ostream>

#include "config/keyed_hash.h"
#include "core/ascii.h"
#include "core/client_settings.h"
#include "core/email_address.h"

namespace mailconfd::cutover {
namespace {

// A login in a log with whole seconds and a relay in one with microseconds (or the other way
// round) may appear up to a second out of order: logins count from this much after a relay.
constexpr Micros kSlop = 1 * kSecondMicros;
// An INFO tag or reject_warning belongs to a message from the same IP this close in time.
constexpr Micros kExplicitWindow = 120 * kSecondMicros;
// A message accepted but without a delivery line after this long is forgotten (counted).
constexpr Micros kPendingMaxAge = 3600 * kSecondMicros;
constexpr std::size_t kMaxLoginsPerIp = 64;
constexpr std::size_t kMaxListed = 16;
constexpr std::size_t kMaxUnattributedIps = 4096;

std::string_view domain_part(std::string_view address) {
  const std::size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string_view() : address.substr(at + 1);
}

bool same_domain(std::string_view a, std::string_view b) {
  if (a.size() != b.size() || a.empty()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

void add_limited(std::vector<std::string>& list, const std::string& name) {
  if (list.size() < kMaxListed && std::find(list.begin(), list.end(), name) == list.end()) {
    list.push_back(name);
  }
}

// --state file fields: bytes below '!' , '%' and DEL as %XX.
std::string escape(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (b <= 0x20 || b == '%' || b == 0x7F || b == ',') {
      out += '%';
      out += kHex[b >> 4];
      out += kHex[b & 15];
    } else {
      out += c;
    }
  }
  if (text.empty()) return "-";
  return out == "-" ? "%2D" : out;
}

std::optional<std::string> unescape(std::string_view text) {
  if (text == "-") return std::string();
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
    if (ec != std::errc() || end != text.data() + i + 3) return std::nullopt;
    out += static_cast<char>(value);
    i += 2;
  }
  return out;
}

std::vector<std::string_view> split(std::string_view line, char separator) {
  std::vector<std::string_view> fields;
  std::size_t pos = 0;
  while (true) {
    const std::size_t end = line.find(separator, pos);
    fields.push_back(line.substr(pos, end == std::string_view::npos ? end : end - pos));
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return fields;
}

template <typename T>
bool number(std::string_view text, T& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::optional<Scanner::QueueId> Scanner::QueueId::from(std::string_view text) {
  QueueId id;
  if (text.size() > sizeof id.text) return std::nullopt;
  id.size = static_cast<std::uint8_t>(text.size());
  std::memcpy(id.text, text.data(), text.size());
  return id;
}

bool Scanner::QueueId::from(std::string_view text, QueueId& out, std::size_t& hash) {
  const std::size_t n = text.size();
  if (n > sizeof out.text) return false;
  if (std::endian::native == std::endian::little && n >= 8 && n <= 16) {
    // The usual ID in two loads of the text itself (the second overlapping the first, its
    // bytes before the 9th shifted out), kept in registers: a load of words just stored one
    // by one would stall.
    std::uint64_t w0 = 0, w1 = 0;
    std::memcpy(&w0, text.data(), 8);
    if (n > 8) {
      std::memcpy(&w1, text.data() + n - 8, 8);
      w1 >>= 8 * (16 - n);
    }
    out.size = static_cast<std::uint8_t>(n);
    const std::uint64_t zero = 0;
    std::memcpy(out.text, &w0, 8);
    std::memcpy(out.text + 8, &w1, 8);
    std::memcpy(out.text + 16, &zero, 8);
    std::memcpy(out.text + 24, &zero, 8);
    hash = QueueIdHash::of(n, w0, w1, 0, 0);
    return true;
  }
  out = QueueId{};
  out.size = static_cast<std::uint8_t>(n);
  if (n > 0) std::memcpy(out.text, text.data(), n);
  hash = QueueIdHash{}(out);
  return true;
}

std::size_t Scanner::QueueIdHash::of(std::size_t size, std::uint64_t w0, std::uint64_t w1,
                                     std::uint64_t w2, std::uint64_t w3) {
  const HashKey& key = process_hash_key();
  // Each word times its own odd constant after the key (the four multiplications are
  // independent), folded, then Murmur3's finalizer so that every input bit reaches the
  // low bits that pick the slot.
  std::uint64_t h = (w0 ^ key.k0) * 0x9E3779B97F4A7C15ULL;
  h ^= std::rotl((w1 ^ key.k1) * 0xC2B2AE3D27D4EB4FULL, 31);
  h ^= std::rotl((w2 ^ key.k0 ^ size) * 0x165667B19E3779F9ULL, 17);
  h ^= std::rotl((w3 ^ key.k1) * 0xD6E8FEB86659FD93ULL, 47);
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDULL;
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ULL;
  return static_cast<std::size_t>(h ^ (h >> 33));
}

std::size_t Scanner::QueueIdHash::operator()(const QueueId& id) const {
  std::uint64_t words[4];
  std::memcpy(words, id.text, sizeof words);
  return of(id.size, words[0], words[1], words[2], words[3]);
}

void IpList::add(const IpAddress& ip) {
  const std::size_t inline_size = std::min<std::size_t>(size_, kInline);
  for (std::size_t i = 0; i < inline_size; ++i) {
    if (inline_[i] == ip) return;
  }
  if (size_ < kInline) {
    inline_[size_++] = ip;
    return;
  }
  if (size_ >= kMax || std::find(more_.begin(), more_.end(), ip) != more_.end()) return;
  more_.push_back(ip);
  ++size_;
}

bool IpList::operator==(const IpList& other) const {
  if (size_ != other.size_) return false;
  for (std::size_t i = 0; i < size_; ++i) {
    if (!((*this)[i] == other[i])) return false;
  }
  return true;
}

std::string_view to_string(State state) {
  switch (state) {
    case State::AtRisk:
      return "at-risk";
    case State::Switched:
      return "switched";
    case State::Ambiguous:
      return "ambiguous";
    case State::Broke:
      return "broke";
    case State::LoginFailing:
      return "login-failing";
  }
  return "at-risk";
}

State state_of(const Mailbox& m) {
  const Micros last_map = std::max(m.last_relay, m.last_shared_relay);
  const Micros last_refused = std::max(m.last_denied, m.last_shared_denied);
  if (m.last_auth > 0 && m.last_auth >= last_map && m.last_auth >= last_refused) {
    return m.last_failure > m.last_auth ? State::LoginFailing : State::Switched;
  }
  if (m.last_denied > 0 && m.last_denied >= last_map) {
    return m.last_failure > m.last_denied ? State::LoginFailing : State::Broke;
  }
  if (m.last_relay > m.last_auth) return State::AtRisk;
  if (m.last_shared_relay > m.last_auth || m.last_shared_denied > m.last_auth) {
    return State::Ambiguous;
  }
  return State::LoginFailing;
}

std::string_view confidence_of(const Mailbox& m) {
  switch (state_of(m)) {
    case State::Switched:
    case State::LoginFailing:
      return "explicit";
    case State::Ambiguous:
      return "low";
    case State::AtRisk:
      if (m.explicit_relays > 0) return "explicit";
      return m.sender_matches > 0 ? "high" : "medium";
    case State::Broke:
      return m.denied_sender_matches > 0 ? "high" : "medium";
  }
  return "low";
}

namespace {

// A domain's login form: its host set's (a database source's per-domain choice), else its
// provider's.
LoginForm domain_login(const Config& config, DomainEntry entry) {
  const Provider& provider = config.providers[entry.provider];
  return login_form(provider, provider.overrides[entry.hosts]);
}

}  // namespace

Scanner::Scanner(const Config& config, ScanOptions options)
    : config_(config), options_(std::move(options)) {
  for (const Provider& provider : config_.providers) {
    if (provider.login == LoginForm::LocalPart) any_local_part_ = true;
    for (const HostOverride& hosts : provider.overrides) {
      if (hosts.login == LoginForm::LocalPart) any_local_part_ = true;
    }
  }
  if (any_local_part_) {
    std::size_t count = 0;
    for (std::string_view domain : config_.domains.sorted()) {
      const DomainEntry* entry = config_.domains.find(domain);
      if (domain_login(config_, *entry) != LoginForm::LocalPart) continue;
      if (++count == 1) only_local_part_domain_ = std::string(domain);
    }
    if (count != 1) only_local_part_domain_.clear();
  }
}

namespace {}  // namespace

std::size_t Scanner::user_slot(std::uint64_t hash) const {
  const std::size_t mask = user_slots_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const UserSlot& slot = user_slots_[i];
    if (slot.id == 0) return i;
    if (slot.hash == hash) return i;
  }
}

std::uint64_t Scanner::user_hash(std::string_view user) {
  ascii_lower_into(scratch_, user);
  return keyed_hash(scratch_);
}

std::uint32_t Scanner::intern(std::string_view user, std::uint64_t hash) {
  if ((user_count() + 1) * 2 > user_slots_.size()) {
    // Grow (or start) the table and put every name back in.
    user_slots_.assign(user_slots_.empty() ? 1024 : user_slots_.size() * 2, UserSlot{});
    for (std::uint32_t id = 0; id < user_count(); ++id) {
      const std::uint64_t name_hash = keyed_hash(name(id));
      user_slots_[user_slot(name_hash)] = {id + 1, name_hash};
    }
  }
  const std::size_t slot = user_slot(hash);
  if (user_slots_[slot].id != 0) return user_slots_[slot].id - 1;
  ascii_lower_into(scratch_, user);
  const auto id = static_cast<std::uint32_t>(user_count());
  names_ += scratch_;
  name_ends_.push_back(static_cast<std::uint32_t>(names_.size()));
  user_mailbox_.push_back(nullptr);
  user_slots_[slot] = {id + 1, hash};
  return id;
}

std::optional<std::uint32_t> Scanner::known_user(std::uint64_t hash) const {
  if (user_slots_.empty()) return std::nullopt;
  const std::uint32_t id = user_slots_[user_slot(hash)].id;
  if (id == 0) return std::nullopt;
  return id - 1;
}

void Scanner::SenderDomain::assign(std::string_view sender) {
  const std::string_view domain = domain_part(sender);
  size = domain.size() <= sizeof text ? static_cast<std::uint8_t>(domain.size()) : 0;
  if (size != 0) std::memcpy(text, domain.data(), size);  // a sender without '@' has no data()
}

Scanner::Resolved Scanner::resolve_login(std::string_view user,
                                         std::string_view sender_domain) const {
  Resolved who;
  const std::string name = ascii_lower(user);
  if (!options_.login_names.empty()) {
    if (auto it = options_.login_names.find(name); it != options_.login_names.end()) {
      who.address = it->second;
      who.domain = who.address.substr(who.address.rfind('@') + 1);
      who.hosted = config_.domains.find(who.domain) != nullptr;
      return who;
    }
  }
  if (name.find('@') != std::string::npos) {
    if (auto address = parse_email(name)) {
      who.domain = address->domain;
      who.address = address->local + "@" + address->domain;
      who.hosted = config_.domains.find(who.domain) != nullptr;
    } else {
      who.address = name;
    }
    return who;
  }
  if (any_local_part_) {
    const std::string domain = ascii_lower(sender_domain);
    const DomainEntry* entry = domain.empty() ? nullptr : config_.domains.find(domain);
    if (entry != nullptr && domain_login(config_, *entry) == LoginForm::LocalPart) {
      who.domain = domain;
    } else if (!only_local_part_domain_.empty()) {
      who.domain = only_local_part_domain_;
    }
    if (!who.domain.empty() && parse_email(name + "@" + who.domain)) {
      who.address = name + "@" + who.domain;
      who.hosted = true;
      return who;
    }
    who.domain.clear();
  }
  who.address = name;
  return who;
}

Mailbox& Scanner::mailbox(const Resolved& who, Micros time, const IpAddress& ip) {
  auto [it, fresh] = mailboxes_.try_emplace(who.address);
  Mailbox& m = it->second;
  if (fresh) {
    m.address = who.address;
    m.domain = who.domain;
    m.hosted = who.hosted;
    m.first_seen = time;
  }
  m.first_seen = std::min(m.first_seen, time);
  m.last_seen = std::max(m.last_seen, time);
  m.ips.add(ip);
  return m;
}

Mailbox& Scanner::mailbox_of(std::uint32_t user, std::string_view sender_domain, Micros time,
                             const IpAddress& ip) {
  Mailbox* cached = user_mailbox_[user];
  if (cached == nullptr) {
    // A full address (or a configuration without local-part logins) maps the same way
    // whatever the sender: its mailbox is remembered for the name.
    const std::string_view login = name(user);
    Mailbox& m = mailbox(resolve_login(login, sender_domain), time, ip);
    if (!any_local_part_ || login.find('@') != std::string_view::npos) user_mailbox_[user] = &m;
    return m;
  }
  Mailbox& m = *cached;
  // The record is one cache miss of 50,000; the callers go on to its counters and times
  // further in it: ask for all its lines at once, so that the misses overlap.
  for (std::size_t line = 64; line < sizeof(Mailbox); line += 64) {
    __builtin_prefetch(reinterpret_cast<const char*>(&m) + line);
  }
  m.first_seen = std::min(m.first_seen, time);
  m.last_seen = std::max(m.last_seen, time);
  m.ips.add(ip);
  return m;
}

const std::vector<std::uint32_t>& Scanner::candidates(const IpAddress& ip, std::size_t ip_hash,
                                                      Micros time) {
  std::vector<std::uint32_t>& users = candidates_;
  users.clear();
  const LoginList* list = logins_.find(ip, ip_hash);
  if (list == nullptr) return users;
  for (std::uint32_t i = list->head; i != kNoLogin; i = login_nodes_[i].next) {
    const Login& login = login_nodes_[i];
    if (login.first <= time + kSlop && time <= login.last + options_.grace + kSlop) {
      users.push_back(login.user);
    }
  }
  return users;
}

std::uint32_t Scanner::oldest_code(Micros time) const {
  constexpr std::uint32_t kMaxCode = (1U << 24) - 1;
  if (time < login_base_) return 0;
  const Micros seconds = (time - login_base_) / kSecondMicros;  // rounds down: a lower bound
  return static_cast<std::uint32_t>(std::min<Micros>(seconds, kMaxCode - 1)) + 1;
}

void Scanner::append_login(LoginList& list, const Login& login) {
  if (!login_base_set_) {
    // Codes reach from 97 days before the first login to 97 days after it; a login outside
    // that range makes its list's bound unknown (below) or smaller than it need be (above).
    login_base_ = login.last - (Micros{1} << 23) * kSecondMicros;
    login_base_set_ = true;
  }
  const std::uint32_t code = oldest_code(login.last);
  list.set_oldest_code(list.size == 0 ? code : std::min(list.oldest_code(), code));
  std::uint32_t node = free_login_;
  if (node != kNoLogin) {
    free_login_ = login_nodes_[node].next;
    --free_logins_;
  } else {
    node = static_cast<std::uint32_t>(login_nodes_.size());
    login_nodes_.emplace_back();
  }
  login_nodes_[node] = login;
  login_nodes_[node].next = kNoLogin;
  if (list.tail == kNoLogin) {
    list.head = node;
  } else {
    login_nodes_[list.tail].next = node;
  }
  list.tail = node;
  ++list.size;
}

template <typename Drop>
void Scanner::remove_logins(LoginList& list, Drop&& drop) {
  std::uint32_t previous = kNoLogin;
  for (std::uint32_t i = list.head; i != kNoLogin;) {
    const std::uint32_t next = login_nodes_[i].next;
    if (!drop(login_nodes_[i])) {
      previous = i;
      i = next;
      continue;
    }
    (previous == kNoLogin ? list.head : login_nodes_[previous].next) = next;
    if (list.tail == i) list.tail = previous;
    login_nodes_[i].next = free_login_;
    free_login_ = i;
    ++free_logins_;
    --list.size;
    i = next;
  }
}

bool Scanner::remote(std::string_view recipient, std::string_view agent) {
  if (agent == "local" || agent == "virtual") return false;
  ascii_lower_into(scratch_, domain_part(recipient));
  if (scratch_.empty()) return false;  // a local name without a domain
  return config_.domains.find(scratch_) == nullptr;
}

bool Scanner::in_mynetworks(const IpAddress& ip) const {
  for (const Network& network : options_.mynetworks) {
    if (network.contains(ip)) return true;
  }
  return false;
}

void Scanner::relay(const Pending& message, std::size_t ip_hash) {
  const std::vector<std::uint32_t>& users = candidates(message.ip, ip_hash, message.time);
  if (users.empty()) {
    Unattributed* u = unattributed_.find(message.ip, ip_hash);
    if (u == nullptr && unattributed_.size() < kMaxUnattributedIps) {
      u = unattributed_.try_emplace(message.ip, ip_hash).first;
    }
    if (u != nullptr) {
      if (u->messages++ == 0) u->first_seen = message.time;
      u->last_seen = message.time;
    }
    return;
  }
  const Micros* evidence = explicit_.find(message.ip, ip_hash);
  const bool proven = evidence != nullptr && *evidence + kExplicitWindow >= message.time &&
                      *evidence <= message.time + kExplicitWindow;
  const std::string_view sender_domain = message.sender.view();
  if (users.size() == 1) {
    // The mailbox's domain is its login's (a function of the address).
    Mailbox& m = mailbox_of(users[0], sender_domain, message.time, message.ip);
    ++m.relayed;
    m.last_relay = std::max(m.last_relay, message.time);
    if (proven) ++m.explicit_relays;
    if (same_domain(m.domain, sender_domain)) ++m.sender_matches;
    return;
  }
  std::vector<Mailbox*>& everyone = shared_;
  everyone.clear();
  for (std::uint32_t user : users) {
    everyone.push_back(&mailbox_of(user, sender_domain, message.time, message.ip));
  }
  for (Mailbox* m : everyone) {
    ++m->relayed_shared;
    m->last_shared_relay = std::max(m->last_shared_relay, message.time);
    for (const Mailbox* other : everyone) {
      if (other->address != m->address) add_limited(m->shared_with, other->address);
    }
  }
}

void Scanner::denied(const IpAddress& ip, std::size_t ip_hash, Micros time,
                     std::string_view sender_domain) {
  const std::vector<std::uint32_t>& users = candidates(ip, ip_hash, time);
  if (users.empty()) {
    ++stats_.unattributed_denied;
    return;
  }
  if (users.size() == 1) {
    Mailbox& m = mailbox_of(users[0], sender_domain, time, ip);
    ++m.denied;
    m.last_denied = std::max(m.last_denied, time);
    if (same_domain(m.domain, sender_domain)) ++m.denied_sender_matches;
    return;
  }
  std::vector<Mailbox*>& everyone = shared_;
  everyone.clear();
  for (std::uint32_t user : users) everyone.push_back(&mailbox_of(user, sender_domain, time, ip));
  for (Mailbox* m : everyone) {
    ++m->denied_shared;
    m->last_shared_denied = std::max(m->last_shared_denied, time);
    for (const Mailbox* other : everyone) {
      if (other->address != m->address) add_limited(m->shared_with, other->address);
    }
  }
}

void Scanner::expire(Micros now) {
  const Micros login_horizon = now - options_.grace - kSlop;
  // Logins past the grace period are dropped by a sweep over the table every quarter of the
  // grace period of log time (candidates() never counts them meanwhile): one pass through one
  // array instead of a lookup per login, and a login stays at most 1.25 grace periods.
  if (now >= next_login_sweep_) {
    std::vector<IpAddress>& emptied = emptied_;
    emptied.clear();
    // A list whose logins were all seen at or after the horizon (by its lower bound) loses
    // none: its nodes are not read. Another gets its bound anew from the logins it keeps.
    const std::uint32_t keep_all = login_base_set_ ? oldest_code(login_horizon) : 0;
    logins_.for_each([&](const IpAddress& ip, LoginList& list) {
      const std::uint32_t code = list.oldest_code();
      // code - 1 whole seconds after login_base_ is at or after the horizon when code is
      // above the horizon's own code (which rounds the horizon down).
      if (code != 0 && code > keep_all) return;
      remove_logins(list, [&](const Login& l) { return l.last < login_horizon; });
      if (list.size == 0) {
        emptied.push_back(ip);
        return;
      }
      std::uint32_t oldest = oldest_code(login_nodes_[list.head].last);
      for (std::uint32_t i = login_nodes_[list.head].next; i != kNoLogin;
           i = login_nodes_[i].next) {
        oldest = std::min(oldest, oldest_code(login_nodes_[i].last));
      }
      list.set_oldest_code(oldest);
    });
    for (const IpAddress& ip : emptied) logins_.erase(ip);
    next_login_sweep_ = now + std::max<Micros>(options_.grace / 4, kSecondMicros);
  }
  // Messages are dropped when they complete; one that never does is dropped here once it is
  // older than kPendingMaxAge (a sweep over the few live ones every few minutes of log time;
  // a lookup treats it as gone as soon as it is that old).
  if (now >= next_pending_sweep_) {
    std::vector<QueueId> stale;
    pending_.for_each([&](const QueueId& qid, const Pending& message) {
      if (message.time < now - kPendingMaxAge) stale.push_back(qid);
    });
    for (const QueueId& qid : stale) pending_.erase(qid);
    stats_.expired_messages += stale.size();
    next_pending_sweep_ = now + kPendingMaxAge / 8;
  }
  while (!explicit_order_.empty() && explicit_order_.front().first < login_horizon) {
    const IpAddress ip = explicit_order_.front().second;
    explicit_order_.pop_front();
    const Micros* last = explicit_.find(ip);
    if (last != nullptr && *last < login_horizon) explicit_.erase(ip);
  }
}

Scanner::Pending* Scanner::live_message(const QueueId& qid, std::size_t qid_hash) {
  Pending* message = pending_.find(qid, qid_hash);
  if (message == nullptr || message->time >= now_ - kPendingMaxAge) return message;
  pending_.erase(qid);
  ++stats_.expired_messages;
  return nullptr;
}

void Scanner::prepare(const Event& event, Prepared& out) {
  out.has_ip = out.has_qid = out.has_user = false;
  // hashed: the IP is looked up (in logins_ when logins, else in explicit_).
  auto ip = [&](bool hashed, bool logins) {
    if (parse_ip(event.ip, out.ip)) {
      out.has_ip = true;
      if (!hashed) return;
      out.ip_hash = IpHash{}(out.ip);
      if (logins) logins_.prefetch_hashed(out.ip_hash);
    }
  };
  auto qid = [&] {
    if (QueueId::from(event.queue_id, out.qid, out.qid_hash)) {
      out.has_qid = true;
      pending_.prefetch_hashed(out.qid_hash);
    }
  };
  auto user = [&] {
    out.has_user = true;
    out.user_hash = user_hash(event.user);
    if (!user_slots_.empty()) {
      __builtin_prefetch(&user_slots_[out.user_hash & (user_slots_.size() - 1)]);
    }
  };
  switch (event.kind) {
    case EventKind::Login:
    case EventKind::MapAdd:
      ip(true, true);
      user();
      return;
    case EventKind::Client:
      ip(false, false);
      qid();
      if (event.authenticated && !event.user.empty()) user();
      return;
    case EventKind::From:
    case EventKind::Delivery:
    case EventKind::Removed:
      qid();
      return;
    case EventKind::Reject:
      ip(true, true);
      return;
    case EventKind::RejectWarning:
    case EventKind::Info:
      ip(true, false);
      return;
    case EventKind::SaslFailed:
      ip(false, false);
      user();
      return;
    case EventKind::None:
      return;
  }
}

void Scanner::add(Micros time, const Event& event) {
  Prepared& prepared = prepared_[0];
  prepare(event, prepared);
  apply(time, event, prepared);
}

void Scanner::add(std::span<const TimedEvent> events) {
  for (std::size_t i = 0; i < events.size(); i += kBatch) {
    const std::size_t n = std::min(kBatch, events.size() - i);
    for (std::size_t j = 0; j < n; ++j) prepare(events[i + j].event, prepared_[j]);
    for (std::size_t j = 0; j < n; ++j)
      apply(events[i + j].time, events[i + j].event, prepared_[j]);
  }
}

void Scanner::apply(Micros time, const Event& event, const Prepared& p) {
  if (event.kind == EventKind::None) return;
  ++stats_.events;
  if (stats_.first_time == 0 || time < stats_.first_time) stats_.first_time = time;
  if (time > now_) {
    now_ = time;
    if (now_ >= next_expiry_) {
      expire(now_);
      next_expiry_ = now_ + 10 * kSecondMicros;
    }
  }
  stats_.last_time = now_;
  switch (event.kind) {
    case EventKind::Login:
    case EventKind::MapAdd: {
      if (!p.has_ip) return;
      const std::uint32_t user = intern(event.user, p.user_hash);
      LoginList& list = *logins_.try_emplace(p.ip, p.ip_hash).first;
      Login* same = nullptr;
      Login* oldest = nullptr;  // the first with the smallest last
      for (std::uint32_t i = list.head; i != kNoLogin; i = login_nodes_[i].next) {
        Login& l = login_nodes_[i];
        if (l.user == user) {
          same = &l;
          break;
        }
        if (oldest == nullptr || l.last < oldest->last) oldest = &l;
      }
      if (same != nullptr) {
        if (time > same->last + options_.grace + kSlop) same->first = time;  // a new window
        same->last = std::max(same->last, time);
      } else {
        if (list.size >= kMaxLoginsPerIp) {
          remove_logins(list, [oldest](const Login& l) { return &l == oldest; });
        }
        append_login(list, {user, kNoLogin, time, time});
      }
      return;
    }
    case EventKind::Client: {
      if (!p.has_ip) return;
      if (!event.authenticated && in_mynetworks(p.ip)) return;
      if (event.authenticated && event.user.empty()) return;  // no name to attribute it to
      if (!p.has_qid) return;
      const std::uint32_t user = event.authenticated ? intern(event.user, p.user_hash) : 0;
      // A reused queue ID starts afresh. Every field is set here, so a new entry's is not
      // cleared first (the sender's 255 bytes).
      Pending& message = *pending_.try_emplace<false>(p.qid, p.qid_hash).first;
      message.ip = p.ip;
      message.time = time;
      message.user = user;
      message.authenticated = event.authenticated;
      message.sender.size = 0;
      return;
    }
    case EventKind::From: {
      Pending* message = p.has_qid ? live_message(p.qid, p.qid_hash) : nullptr;
      if (message == nullptr) return;
      if (!message->authenticated) {
        message->sender.assign(event.sender);
        return;
      }
      Mailbox& m = mailbox_of(message->user, domain_part(event.sender), message->time, message->ip);
      ++m.authenticated;
      m.last_auth = std::max(m.last_auth, message->time);
      pending_.erase(p.qid);
      return;
    }
    case EventKind::Delivery: {
      const Pending* message = p.has_qid ? live_message(p.qid, p.qid_hash) : nullptr;
      if (message == nullptr || message->authenticated) return;
      const std::size_t ip_hash = IpHash{}(message->ip);
      logins_.prefetch_hashed(ip_hash);  // relay()'s candidates, while remote() looks up the domain
      if (!remote(event.recipient, event.agent)) return;
      relay(*message, ip_hash);
      pending_.erase(p.qid);
      return;
    }
    case EventKind::Removed: {
      if (p.has_qid) pending_.erase(p.qid);
      return;
    }
    case EventKind::RejectWarning:
    case EventKind::Info: {
      ++stats_.explicit_lines;
      if (p.has_ip) {
        *explicit_.try_emplace(p.ip, p.ip_hash).first = time;
        explicit_order_.emplace_back(time, p.ip);
      }
      return;
    }
    case EventKind::Reject: {
      if (!p.has_ip || in_mynetworks(p.ip)) return;
      denied(p.ip, p.ip_hash, time, domain_part(event.sender));
      return;
    }
    case EventKind::SaslFailed: {
      const auto user = known_user(p.user_hash);
      if (!user || !p.has_ip) {
        ++stats_.unknown_sasl_failures;
        return;
      }
      Mailbox& m = mailbox_of(*user, "", time, p.ip);
      ++m.login_failures;
      m.last_failure = std::max(m.last_failure, time);
      return;
    }
    case EventKind::None:
      return;
  }
}

void Scanner::save(std::ostream& out) const {
  out << "now\t" << now_ << '\n';
  const ScanStats& s = stats_;
  out << "stats\t" << s.lines << '\t' << s.bytes << '\t' << s.skipped << '\t' << s.events << '\t'
      << s.explicit_lines << '\t' << s.unattributed_denied << '\t' << s.unknown_sasl_failures
      << '\t' << s.expired_messages << '\t' << s.first_time << '\t' << s.last_time << '\n';
  for (std::uint32_t id = 0; id < user_count(); ++id) {
    out << "user\t" << escape(name(id)) << '\n';
  }
  logins_.for_each([&](const IpAddress& ip, const LoginList& list) {
    for (std::uint32_t i = list.head; i != kNoLogin; i = login_nodes_[i].next) {
      const Login& l = login_nodes_[i];
      out << "login\t" << to_string(ip) << '\t' << l.user << '\t' << l.first << '\t' << l.last
          << '\n';
    }
  });
  explicit_.for_each([&](const IpAddress& ip, Micros time) {
    out << "explicit\t" << to_string(ip) << '\t' << time << '\n';
  });
  pending_.for_each([&](const QueueId& qid, const Pending& p) {
    out << "pending\t" << escape(qid.view()) << '\t' << to_string(p.ip) << '\t' << p.time << '\t'
        << (p.authenticated ? 1 : 0) << '\t' << p.user << '\t'
        << escape("@" + std::string(p.sender.view())) << '\n';
  });
  for (const auto& [address, m] : mailboxes_) {
    out << "mailbox\t" << escape(m.address) << '\t' << escape(m.domain) << '\t'
        << (m.hosted ? 1 : 0) << '\t' << m.relayed << '\t' << m.relayed_shared << '\t'
        << m.explicit_relays << '\t' << m.sender_matches << '\t' << m.authenticated << '\t'
        << m.denied << '\t' << m.denied_shared << '\t' << m.denied_sender_matches << '\t'
        << m.login_failures << '\t' << m.first_seen << '\t' << m.last_seen << '\t' << m.last_relay
        << '\t' << m.last_shared_relay << '\t' << m.last_auth << '\t' << m.last_denied << '\t'
        << m.last_shared_denied << '\t' << m.last_failure << '\t';
    for (std::size_t i = 0; i < m.ips.size(); ++i) out << (i ? "," : "") << to_string(m.ips[i]);
    if (m.ips.empty()) out << '-';
    out << '\t';
    for (std::size_t i = 0; i < m.shared_with.size(); ++i) {
      out << (i ? "," : "") << escape(m.shared_with[i]);
    }
    if (m.shared_with.empty()) out << '-';
    out << '\n';
  }
  unattributed_.for_each([&out](const IpAddress& ip, const Unattributed& u) {
    out << "unattributed\t" << to_string(ip) << '\t' << u.messages << '\t' << u.first_seen << '\t'
        << u.last_seen << '\n';
  });
}

bool Scanner::load_line(std::string_view line, std::string& error) {
  const std::vector<std::string_view> f = split(line, '\t');
  const std::string_view kind = f[0];
  auto bad = [&](std::string_view what) {
    error = "bad " + std::string(what) + " record";
    return false;
  };
  if (kind == "now") {
    if (f.size() != 2 || !number(f[1], now_)) return bad(kind);
    next_expiry_ = now_;
    return true;
  }
  if (kind == "stats") {
    ScanStats& s = stats_;
    if (f.size() != 11 || !number(f[1], s.lines) || !number(f[2], s.bytes) ||
        !number(f[3], s.skipped) || !number(f[4], s.events) || !number(f[5], s.explicit_lines) ||
        !number(f[6], s.unattributed_denied) || !number(f[7], s.unknown_sasl_failures) ||
        !number(f[8], s.expired_messages) || !number(f[9], s.first_time) ||
        !number(f[10], s.last_time)) {
      return bad(kind);
    }
    return true;
  }
  if (kind == "user") {
    const auto name = f.size() == 2 ? unescape(f[1]) : std::nullopt;
    if (!name) return bad(kind);
    intern(*name);
    return true;
  }
  if (kind == "login") {
    Login l{};
    const auto ip = f.size() == 5 ? parse_ip(f[1]) : std::nullopt;
    if (!ip || !number(f[2], l.user) || l.user >= user_count() || !number(f[3], l.first) ||
        !number(f[4], l.last)) {
      return bad(kind);
    }
    append_login(logins_[*ip], l);
    return true;
  }
  if (kind == "explicit") {
    Micros time = 0;
    const auto ip = f.size() == 3 ? parse_ip(f[1]) : std::nullopt;
    if (!ip || !number(f[2], time)) return bad(kind);
    explicit_[*ip] = time;
    explicit_order_.emplace_back(time, *ip);
    return true;
  }
  if (kind == "pending") {
    Pending p;
    int authenticated = 0;
    const auto qid = f.size() == 7 ? unescape(f[1]) : std::nullopt;
    const auto ip = f.size() == 7 ? parse_ip(f[2]) : std::nullopt;
    const auto sender = f.size() == 7 ? unescape(f[6]) : std::nullopt;
    if (!qid || !ip || !sender || !number(f[3], p.time) || !number(f[4], authenticated) ||
        !number(f[5], p.user) || p.user >= std::max<std::size_t>(user_count(), 1)) {
      return bad(kind);
    }
    p.ip = *ip;
    p.authenticated = authenticated != 0;
    p.sender.assign(*sender);
    if (p.authenticated && p.user >= user_count()) return bad(kind);
    const auto id = QueueId::from(*qid);
    if (!id) return bad(kind);
    pending_[*id] = std::move(p);
    return true;
  }
  if (kind == "mailbox") {
    if (f.size() != 23) return bad(kind);
    Mailbox m;
    const auto address = unescape(f[1]);
    const auto domain = unescape(f[2]);
    int hosted = 0;
    std::uint64_t* counts[] = {&m.relayed,        &m.relayed_shared,        &m.explicit_relays,
                               &m.sender_matches, &m.authenticated,         &m.denied,
                               &m.denied_shared,  &m.denied_sender_matches, &m.login_failures};
    Micros* times[] = {&m.first_seen, &m.last_seen,   &m.last_relay,         &m.last_shared_relay,
                       &m.last_auth,  &m.last_denied, &m.last_shared_denied, &m.last_failure};
    if (!address || address->empty() || !domain || !number(f[3], hosted)) return bad(kind);
    for (std::size_t i = 0; i < 9; ++i) {
      if (!number(f[4 + i], *counts[i])) return bad(kind);
    }
    for (std::size_t i = 0; i < 8; ++i) {
      if (!number(f[13 + i], *times[i])) return bad(kind);
    }
    if (f[21] != "-") {
      for (std::string_view text : split(f[21], ',')) {
        const auto ip = parse_ip(text);
        if (!ip) return bad(kind);
        m.ips.add(*ip);
      }
    }
    if (f[22] != "-") {
      for (std::string_view text : split(f[22], ',')) {
        const auto name = unescape(text);
        if (!name) return bad(kind);
        add_limited(m.shared_with, *name);
      }
    }
    m.address = *address;
    m.domain = *domain;
    m.hosted = hosted != 0;
    mailboxes_.insert_or_assign(m.address, std::move(m));
    return true;
  }
  if (kind == "unattributed") {
    Unattributed u;
    const auto ip = f.size() == 5 ? parse_ip(f[1]) : std::nullopt;
    if (!ip || !number(f[2], u.messages) || !number(f[3], u.first_seen) ||
        !number(f[4], u.last_seen)) {
      return bad(kind);
    }
    unattributed_[*ip] = u;
    return true;
  }
  error = "unknown record '" + std::string(kind.substr(0, 32)) + "'";
  return false;
}

}  // namespace mailconfd::cutover
