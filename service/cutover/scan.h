// The join at the heart of `mailconfd cutover scan`: Dovecot logins (client IP → mailboxes,
// for the grace period of the POP-before-SMTP map) against Postfix's unauthenticated relays,
// authenticated submissions, relay refusals and SASL failures, per mailbox. Events must arrive
// in time order (input.h merges several logs). Memory is bounded by what the grace window
// holds (recent logins and explicit-evidence lines; accepted messages until they complete, at
// most an hour) plus one record per login name and per mailbox that has evidence, never by
// the log's size.
#pragma once

#include <cstdint>
#include <cstring>
#include <deque>
#include <iosfwd>
#include <memory_resource>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "cutover/event.h"
#include "cutover/flat_map.h"
#include "cutover/huge_pages.h"
#include "cutover/log_line.h"
#include "cutover/net.h"

namespace mailconfd::cutover {

inline constexpr Micros kSecondMicros = 1'000'000;

struct ScanOptions {
  Micros grace = 30 * 60 * kSecondMicros;  // how long the map lets an IP relay after a login
  std::vector<Network> mynetworks;         // relays from here are Postfix's own permit
  // Per-mailbox login names (a <database> source's, cli/hosted.h): the login name in ASCII
  // lower case → the mailbox's address (login_key()). A login found here is that mailbox's,
  // whatever the domain's login form says.
  std::unordered_map<std::string, std::string> login_names;
};

enum class State { AtRisk, Switched, Ambiguous, Broke, LoginFailing };
inline constexpr State kStates[] = {State::AtRisk, State::Ambiguous, State::Broke,
                                    State::LoginFailing, State::Switched};
std::string_view to_string(State state);

// A mailbox's client IPs, first seen first, at most kMax: the first few inside the record
// itself (every event of a mailbox looks its IP up here, and the record is already in the
// cache), any more in one block beside it.
class IpList {
 public:
  static constexpr std::size_t kMax = 16;
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const IpAddress& operator[](std::size_t i) const {
    return i < kInline ? inline_[i] : more_[i - kInline];
  }
  // Appends ip unless it is listed already or the list is full.
  void add(const IpAddress& ip);
  bool operator==(const IpList& other) const;
  // Asks for the block of the IPs beyond the first few (the report reads them all).
  void prefetch() const {
    if (!more_.empty()) __builtin_prefetch(more_.data());
  }

 private:
  static constexpr std::size_t kInline = 4;
  std::uint8_t size_ = 0;
  IpAddress inline_[kInline];
  std::vector<IpAddress> more_;
};

// What the logs say about one mailbox. Times are 0 when never seen.
struct Mailbox {
  // First the fields every event of the mailbox updates, next to each other.
  Micros first_seen = 0, last_seen = 0;
  IpList ips;                 // client IPs of its evidence, first seen first; ≤ 16
  std::string address;        // lower case; for a mailbox that is not hosted, the login as logged
  std::string domain;         // empty when the login has no domain and maps to none
  bool hosted = false;        // the domain is in the configuration
  std::uint64_t relayed = 0;  // relays via the map, this mailbox the only candidate
  std::uint64_t relayed_shared = 0;   // relays from an IP where several mailboxes logged in
  std::uint64_t explicit_relays = 0;  // sole relays with an INFO tag or reject_warning line
  std::uint64_t sender_matches = 0;   // sole relays whose envelope sender has this domain
  std::uint64_t authenticated = 0;    // submissions with SMTP AUTH as this mailbox
  std::uint64_t denied = 0;           // "Relay access denied" after its login (sole)
  std::uint64_t denied_shared = 0;
  std::uint64_t denied_sender_matches = 0;
  std::uint64_t login_failures = 0;  // SASL authentication failed for its login name
  Micros last_relay = 0, last_shared_relay = 0, last_auth = 0, last_denied = 0,
         last_shared_denied = 0, last_failure = 0;
  std::vector<std::string> shared_with;  // other candidates at its IPs; ≤ 16
};

// The state and how sure the attribution is: "explicit" (an INFO/reject_warning line, or
// SMTP AUTH), "high" (the only candidate and the sender's domain is the mailbox's),
// "medium" (the only candidate), "low" (one of several candidates).
State state_of(const Mailbox& mailbox);
std::string_view confidence_of(const Mailbox& mailbox);

struct ScanStats {
  std::uint64_t lines = 0;                  // lines read
  std::uint64_t bytes = 0;                  // bytes read (uncompressed)
  std::uint64_t skipped = 0;                // not a log line: garbage, truncated, binary, too long
  std::uint64_t events = 0;                 // lines the scan used
  std::uint64_t explicit_lines = 0;         // INFO tags and reject_warning lines seen
  std::uint64_t unattributed_denied = 0;    // "Relay access denied" with no login before
  std::uint64_t unknown_sasl_failures = 0;  // SASL failures for names never seen logging in
  std::uint64_t expired_messages = 0;       // accepted messages without a delivery line in time
  Micros first_time = 0, last_time = 0;
};

// Relays via neither a login nor mynetworks: an open relay or a static map entry.
struct Unattributed {
  std::uint64_t messages = 0;
  Micros first_seen = 0, last_seen = 0;
};

// The mailboxes by address. Their records live in huge pages (huge_pages.h): the join
// reaches one of them at random per event.
using MailboxMap = std::pmr::unordered_map<std::string, Mailbox>;

// An event and the time of its line: Scanner::add takes a batch of them.
struct TimedEvent {
  Micros time = 0;
  Event event;
};

class Scanner {
 public:
  // How many events a batch (add(std::span)) holds at most: enough that the cache misses of
  // one batch overlap, few enough that its table slots stay in the first-level cache.
  static constexpr std::size_t kBatch = 32;

  // config must outlive the scanner (hosted domains and login schemes).
  Scanner(const Config& config, ScanOptions options);
  // Not copyable: the resolved logins point at this scanner's own mailboxes.
  Scanner(const Scanner&) = delete;
  Scanner& operator=(const Scanner&) = delete;

  void add(Micros time, const Event& event);
  // The same as add() of each event in turn (at most kBatch), but the table slots all of them
  // will look up first are asked for (prefetched) first, so that their cache misses overlap
  // instead of following one another: the log has no locality, and each event's join is a
  // chain of misses. The events' text must stay valid until this returns.
  void add(std::span<const TimedEvent> events);
  // Adds to the counts of lines read, lines that were not log lines, and bytes read.
  void count(std::uint64_t lines, std::uint64_t skipped, std::uint64_t bytes) {
    stats_.lines += lines;
    stats_.skipped += skipped;
    stats_.bytes += bytes;
  }

  const MailboxMap& mailboxes() const { return mailboxes_; }
  const FlatMap<IpAddress, Unattributed, IpHash>& unattributed() const { return unattributed_; }
  const ScanStats& stats() const { return stats_; }
  const ScanOptions& options() const { return options_; }
  // Live state: logins still inside the grace window and messages awaiting delivery.
  std::size_t live_logins() const { return login_nodes_.size() - free_logins_; }
  std::size_t live_messages() const { return pending_.size(); }
  // Client IPs with an INFO tag or reject_warning line still inside the grace window.
  std::size_t live_evidence() const { return explicit_.size(); }

  // The whole state (including the grace window) as text lines for --state; load() reads it
  // back into a scanner built with the same config. False and error set on a bad file.
  void save(std::ostream& out) const;
  bool load_line(std::string_view line, std::string& error);

 private:
  // One mailbox's stay in the map for one IP: logins that follow each other within the grace
  // period extend it. The logins of one IP are a list (oldest first) threaded through one
  // pool of nodes, so that a new IP costs no allocation.
  static constexpr std::uint32_t kNoLogin = 0xFFFFFFFF;
  struct Login {
    std::uint32_t user = 0;
    std::uint32_t next = kNoLogin;  // the next login of the same IP, or the next free node
    Micros first = 0;
    Micros last = 0;
  };
  // 12 bytes, so that a slot of the IP table stays 32. oldest: a lower bound of the last
  // time of its logins, in whole seconds from login_base_ plus one, 0 when unknown
  // (oldest_code()): the sweep passes over a list whose logins are all too recent to drop
  // without reading them.
  struct LoginList {
    std::uint32_t head = kNoLogin;
    std::uint32_t tail = kNoLogin;
    std::uint8_t size = 0;  // at most kMaxLoginsPerIp (64)
    std::uint8_t oldest[3] = {};
    std::uint32_t oldest_code() const {
      return oldest[0] | std::uint32_t{oldest[1]} << 8 | std::uint32_t{oldest[2]} << 16;
    }
    void set_oldest_code(std::uint32_t code) {
      oldest[0] = static_cast<std::uint8_t>(code);
      oldest[1] = static_cast<std::uint8_t>(code >> 8);
      oldest[2] = static_cast<std::uint8_t>(code >> 16);
    }
  };
  static_assert(sizeof(LoginList) == 12);
  // The oldest code of a login last seen at time: at most the time (0 when it is before
  // login_base_), so the smallest code of a list's logins is a lower bound of their times.
  std::uint32_t oldest_code(Micros time) const;
  // The domain of an envelope sender, all the join needs of it (the mailbox's domain is
  // compared with it, and a bare login is mapped through it), held without allocating. A
  // domain longer than any DNS name is kept empty: it can match no hosted domain either.
  struct SenderDomain {
    std::uint8_t size = 0;
    char text[255];  // only the first size bytes are ever read: not cleared per message
    void assign(std::string_view sender);
    std::string_view view() const { return {text, size}; }
  };
  struct Pending {
    IpAddress ip;
    Micros time = 0;
    std::uint32_t user = 0;  // authenticated: the SASL user
    bool authenticated = false;
    SenderDomain sender;
  };
  // A Postfix queue ID held without allocating (the parser accepts at most 32 characters),
  // zero after its last character: compared and hashed a word at a time.
  struct QueueId {
    std::uint8_t size = 0;
    char text[32] = {};
    bool operator==(const QueueId& other) const {
      std::uint64_t a[4], b[4];
      std::memcpy(a, text, sizeof a);
      std::memcpy(b, other.text, sizeof b);
      return size == other.size &&
             ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])) == 0;
    }
    std::string_view view() const { return {text, size}; }
    // nullopt when longer than 32 characters.
    static std::optional<QueueId> from(std::string_view text);
    // The same into out, and its QueueIdHash{} into hash; false when longer.
    static bool from(std::string_view text, QueueId& out, std::size_t& hash);
  };
  // Keyed with the process's key (config/keyed_hash.h), but a multiply-and-mix rather than
  // SipHash: Postfix makes its queue IDs, no client chooses them.
  struct QueueIdHash {
    std::size_t operator()(const QueueId& id) const;
    // Of an ID of size characters whose text, zero after its end, is the words w0..w3.
    static std::size_t of(std::size_t size, std::uint64_t w0, std::uint64_t w1, std::uint64_t w2,
                          std::uint64_t w3);
  };
  struct Resolved {
    std::string address;
    std::string domain;
    bool hosted = false;
  };

  // What add() computes of an event before it touches the join's tables: its parsed IP, queue
  // ID and login name's hash, and the hashes that find their slots (which prepare() prefetches).
  struct Prepared {
    bool has_ip = false, has_qid = false, has_user = false;
    IpAddress ip;
    std::size_t ip_hash = 0;
    QueueId qid;
    std::size_t qid_hash = 0;
    std::uint64_t user_hash = 0;  // user_hash(event.user)
  };
  void prepare(const Event& event, Prepared& out);
  void apply(Micros time, const Event& event, const Prepared& prepared);

  // keyed_hash() of a login name in ASCII lower case: the name's key in user_slots_.
  std::uint64_t user_hash(std::string_view user);
  // The id of a login name (compared in ASCII lower case), interned when new; hash is
  // user_hash(user).
  std::uint32_t intern(std::string_view user) { return intern(user, user_hash(user)); }
  std::uint32_t intern(std::string_view user, std::uint64_t hash);
  // The interned name (lower case) of an id.
  std::string_view name(std::uint32_t id) const {
    const std::uint32_t begin = id == 0 ? 0 : name_ends_[id - 1];
    return std::string_view(names_).substr(begin, name_ends_[id] - begin);
  }
  std::size_t user_count() const { return name_ends_.size(); }
  std::optional<std::uint32_t> known_user(std::uint64_t hash) const;
  // The slot in user_slots_ where the name with this keyed_hash() of its lower case is or
  // would go (user_slots_ is not empty).
  std::size_t user_slot(std::uint64_t hash) const;
  // Maps a login name to its mailbox; sender_domain (of the envelope sender) decides the
  // domain of a bare login when several hosted domains use local-part logins.
  Resolved resolve_login(std::string_view user, std::string_view sender_domain) const;
  Mailbox& mailbox(const Resolved& who, Micros time, const IpAddress& ip);
  // mailbox(resolve_login(name(user), sender_domain), …), through user_mailbox_ once the
  // mailbox exists when the sender cannot change the answer.
  Mailbox& mailbox_of(std::uint32_t user, std::string_view sender_domain, Micros time,
                      const IpAddress& ip);
  // The users logged in from ip within the grace period around time (valid until next call).
  // ip_hash is IpHash{}(ip): one event looks its IP up in several tables, hashing it once.
  const std::vector<std::uint32_t>& candidates(const IpAddress& ip, std::size_t ip_hash,
                                               Micros time);
  // Appends a login to ip's list; removes the nodes of list for which drop(login) is true.
  void append_login(LoginList& list, const Login& login);
  template <typename Drop>
  void remove_logins(LoginList& list, Drop&& drop);
  bool remote(std::string_view recipient, std::string_view agent);
  bool in_mynetworks(const IpAddress& ip) const;
  void relay(const Pending& message, std::size_t ip_hash);
  void denied(const IpAddress& ip, std::size_t ip_hash, Micros time,
              std::string_view sender_domain);
  void expire(Micros now);
  // The message accepted under qid, unless it is older than the bound (then it is dropped).
  // qid_hash is QueueIdHash{}(qid).
  Pending* live_message(const QueueId& qid, std::size_t qid_hash);

  const Config& config_;
  ScanOptions options_;
  // When no hosted domain uses local-part logins this is empty; with exactly one such
  // domain, a bare login maps to it.
  std::string only_local_part_domain_;
  bool any_local_part_ = false;

  // Interned login names (lower case) back to back in one arena; name_ends_[id] is where
  // name id ends. No allocation per name.
  std::string names_;
  std::vector<std::uint32_t> name_ends_;
  // The mailbox of a name whose resolution the sender cannot change, once it exists (8 bytes
  // per name, so that the step from name to mailbox costs no lookup by address).
  std::vector<Mailbox*, HugePageAllocator<Mailbox*>> user_mailbox_;  // index = id
  // Open addressing over the interned names, at most half full: id + 1 (0 = empty) and the
  // name's 64-bit keyed hash (SipHash under the process's secret key), which stands for the
  // name: a lookup touches one slot and never the arena. Two names share a slot only if
  // their hashes are equal, a chance of about n²/2⁶⁵ (10⁻¹⁰ for 50,000 names) that nobody
  // without the key can raise by choosing names.
  struct UserSlot {
    std::uint32_t id = 0;
    std::uint64_t hash = 0;
  };
  std::vector<UserSlot, HugePageAllocator<UserSlot>> user_slots_;
  std::string scratch_;
  std::vector<std::uint32_t> candidates_;
  std::vector<Mailbox*> shared_;  // relay() and denied(): the mailboxes of several candidates
  Prepared prepared_[kBatch];     // add() of a batch
  FlatMap<IpAddress, LoginList, IpHash> logins_;
  std::vector<Login, HugePageAllocator<Login>>
      login_nodes_;  // the pool; free nodes are chained from free_login_
  std::uint32_t free_login_ = kNoLogin;
  std::size_t free_logins_ = 0;
  std::vector<IpAddress> emptied_;               // expire(): the IPs whose last login it dropped
  FlatMap<IpAddress, Micros, IpHash> explicit_;  // last INFO/reject_warning per IP
  std::deque<std::pair<Micros, IpAddress>> explicit_order_;
  FlatMap<QueueId, Pending, QueueIdHash> pending_;
  HugePageResource huge_pages_;
  std::pmr::monotonic_buffer_resource mailbox_memory_{kHugePage, &huge_pages_};
  MailboxMap mailboxes_{&mailbox_memory_};
  FlatMap<IpAddress, Unattributed, IpHash> unattributed_;  // at most kMaxUnattributedIps
  ScanStats stats_;
  Micros now_ = 0;
  Micros next_expiry_ = 0;
  Micros next_pending_sweep_ = 0;
  Micros next_login_sweep_ = 0;
  bool login_base_set_ = false;
  Micros login_base_ = 0;  // set at the first login: 2^23 seconds before it
};

}  // namespace mailconfd::cutover
