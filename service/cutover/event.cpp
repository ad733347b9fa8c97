#include "cutover/event.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <bit>
#include <cstdint>
#include <cstring>

#include "core/ascii.h"
#include "cutover/bytes.h"

namespace mailconfd::cutover {
namespace {

bool is_ip_char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f') || c == ':' ||
         c == '.';
}

// The runs of queue-ID and address bytes are classified 16 bytes at a time (SSE2) while 16
// remain in the message, then one byte at a time.
#if defined(__SSE2__)
// The bytes of v from lo to hi (signed compares: bytes from 0x80 up are in no range here).
__m128i in_range(__m128i v, char lo, char hi) {
  return _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(static_cast<char>(lo - 1))),
                       _mm_cmplt_epi8(v, _mm_set1_epi8(static_cast<char>(hi + 1))));
}
__m128i load16(std::string_view text, std::size_t pos) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(text.data() + pos));
}
#endif

// The end of the run of ASCII letters and digits at text[pos].
std::size_t alnum_end(std::string_view text, std::size_t pos) {
#if defined(__SSE2__)
  while (pos + 16 <= text.size()) {
    const __m128i v = load16(text, pos);
    const __m128i letter = in_range(_mm_or_si128(v, _mm_set1_epi8(0x20)), 'a', 'z');
    const auto ok =
        static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(in_range(v, '0', '9'), letter)));
    if (ok != 0xFFFF) return pos + static_cast<std::size_t>(std::countr_one(ok));
    pos += 16;
  }
#endif
  while (pos < text.size() && ascii_alnum(text[pos])) ++pos;
  return pos;
}

// The end of the run of is_ip_char() bytes at text[pos].
std::size_t ip_end(std::string_view text, std::size_t pos) {
#if defined(__SSE2__)
  while (pos + 16 <= text.size()) {
    const __m128i v = load16(text, pos);
    const __m128i hex_letter = in_range(_mm_or_si128(v, _mm_set1_epi8(0x20)), 'a', 'f');
    const __m128i digit_colon = in_range(v, '0', ':');
    const __m128i dot = _mm_cmpeq_epi8(v, _mm_set1_epi8('.'));
    const auto ok = static_cast<unsigned>(
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(hex_letter, digit_colon), dot)));
    if (ok != 0xFFFF) return pos + static_cast<std::size_t>(std::countr_one(ok));
    pos += 16;
  }
#endif
  while (pos < text.size() && is_ip_char(text[pos])) ++pos;
  return pos;
}

// The first of '[', ']', ' ' and ',' at or after text[pos] (text.size() when none).
std::size_t host_end(std::string_view text, std::size_t pos) {
#if defined(__SSE2__)
  while (pos + 16 <= text.size()) {
    const __m128i v = load16(text, pos);
    const __m128i stop = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('[')), _mm_cmpeq_epi8(v, _mm_set1_epi8(']'))),
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')), _mm_cmpeq_epi8(v, _mm_set1_epi8(','))));
    const auto hit = static_cast<unsigned>(_mm_movemask_epi8(stop));
    if (hit != 0) return pos + static_cast<std::size_t>(std::countr_zero(hit));
    pos += 16;
  }
#endif
  while (pos < text.size() && text[pos] != '[' && text[pos] != ']' && text[pos] != ' ' &&
         text[pos] != ',') {
    ++pos;
  }
  return pos;
}

// A cursor over the message that only ever moves forward through expected structure.
class Reader {
 public:
  explicit Reader(std::string_view text) : text_(text) {}

  // A string literal: compared a word at a time, inline (its length is a constant).
  template <std::size_t N>
  bool literal(const char (&expected)[N]) {
    constexpr std::size_t n = N - 1;
    if (text_.size() - pos_ < n || !same_bytes<n>(text_.data() + pos_, expected)) return false;
    pos_ += n;
    return true;
  }
  bool literal(std::string_view expected) {
    if (text_.size() - pos_ < expected.size()) return false;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      if (text_[pos_ + i] != expected[i]) return false;
    }
    pos_ += expected.size();
    return true;
  }
  // A Postfix queue ID ([0-9A-Za-z]+) followed by ": ".
  bool queue_id(std::string_view& out) {
    const std::size_t start = pos_;
    pos_ = alnum_end(text_, pos_);
    if (pos_ == start || pos_ - start > 32) return false;
    out = text_.substr(start, pos_ - start);
    return literal(": ");
  }
  // "host[ip]" as Postfix writes a client: the host has no '[', ']' or space (Postfix
  // validates reverse DNS names), the address only hex digits, ':' and '.'.
  bool client(std::string_view& ip) {
    pos_ = host_end(text_, pos_);
    if (!literal("[")) return false;
    const std::size_t start = pos_;
    pos_ = ip_end(text_, pos_);
    if (pos_ == start || pos_ - start > 45) return false;
    ip = text_.substr(start, pos_ - start);
    return literal("]");
  }
  // Up to (not including) the first occurrence of stop; false when there is none.
  bool until(std::string_view stop, std::string_view& out) {
    const std::size_t end = text_.find(stop, pos_);
    if (end == std::string_view::npos) return false;
    out = text_.substr(pos_, end - pos_);
    pos_ = end + stop.size();
    return true;
  }
  // "<…>" up to the first '>'.
  bool angle(std::string_view& out) { return literal("<") && until(">", out); }
  std::string_view rest() const { return text_.substr(pos_); }
  bool at_end() const { return pos_ == text_.size(); }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

// "Login: user=<u>, method=M, rip=IP, …" (Dovecot 2.3) or "Logged in: …" (2.4).
Event login_fields(Reader& r) {
  Event e;
  if (!(r.literal("Login: ") || r.literal("Logged in: "))) return e;
  std::string_view user, method, ip;
  if (!r.literal("user=") || !r.angle(user) || user.empty() || !r.literal(", method=") ||
      !r.until(", rip=", method)) {
    return e;
  }
  const std::string_view rest = r.rest();
  const std::size_t end = ip_end(rest, 0);
  if (end == 0 || end > 45 || (end < rest.size() && rest[end] != ',')) return e;
  ip = rest.substr(0, end);
  e.kind = EventKind::Login;
  e.user = user;
  e.ip = ip;
  return e;
}

// "…: 554 5.7.1 <rcpt>: Relay access denied; from=<sender> to=<rcpt> …" after "host[ip]: ".
bool relay_denied(Reader& r, Event& e) {
  std::string_view code;
  if (!r.until(" ", code) || code.size() != 3 || code[0] != '5') return false;
  std::string_view enhanced;
  if (!r.until(" ", enhanced) || enhanced.size() < 5 || enhanced[0] != '5') return false;
  // The recipient is client text: the fixed words follow its last '>' before them.
  std::string_view recipient;
  if (!r.angle(recipient) || !r.literal(": Relay access denied; from=")) return false;
  std::string_view sender;
  if (!r.angle(sender)) return false;
  e.recipient = recipient;
  e.sender = sender;
  return true;
}

Event smtpd(std::string_view message) {
  Event e;
  Reader r(message);
  if (r.literal("warning: ")) {
    // warning: host[ip]: SASL PLAIN authentication failed: REASON, sasl_username=NAME
    std::string_view ip, mechanism, reason;
    if (!r.client(ip) || !r.literal(": SASL ") || !r.until(" ", mechanism) ||
        !r.literal("authentication failed: ")) {
      return e;
    }
    // The reason comes from the SASL server; the name (client text) is last.
    if (!r.until(", sasl_username=", reason)) return e;
    e.kind = EventKind::SaslFailed;
    e.ip = ip;
    e.user = r.rest();
    return e;
  }
  std::string_view qid;
  if (!r.queue_id(qid)) return e;
  if (r.literal("client=")) {
    std::string_view ip, user;
    if (!r.client(ip)) return e;
    bool authenticated = false;
    if (r.literal(", sasl_method=")) {
      std::string_view method;
      if (!r.until(", sasl_username=", method)) return e;
      const std::string_view rest = r.rest();
      // sasl_username ends at the next Postfix field (sasl_sender, orig_queue_id, orig_client).
      std::size_t end = rest.find(", sasl_sender=");
      if (end == std::string_view::npos) end = rest.find(", orig_queue_id=");
      if (end == std::string_view::npos) end = rest.find(", orig_client=");
      user = rest.substr(0, end);
      authenticated = true;
    } else if (!r.at_end() && !r.literal(", orig_queue_id=") && !r.literal(", orig_client=")) {
      return e;
    }
    e.kind = EventKind::Client;
    e.queue_id = qid;
    e.ip = ip;
    e.user = user;
    e.authenticated = authenticated;
    return e;
  }
  const bool warning = r.literal("reject_warning: RCPT from ");
  if (warning || r.literal("reject: RCPT from ")) {
    std::string_view ip;
    if (!r.client(ip) || !r.literal(": ") || !relay_denied(r, e)) return {};
    e.kind = warning ? EventKind::RejectWarning : EventKind::Reject;
    e.ip = ip;
    e.queue_id = qid;
    return e;
  }
  if (r.literal("info: RCPT from ")) {
    std::string_view ip, sender, recipient;
    if (!r.client(ip) || !r.literal(": ") || !r.literal(kInfoText) || !r.literal("; from=") ||
        !r.angle(sender) || !r.literal(" to=") || !r.angle(recipient)) {
      return e;
    }
    e.kind = EventKind::Info;
    e.queue_id = qid;
    e.ip = ip;
    e.sender = sender;
    e.recipient = recipient;
  }
  return e;
}

Event qmgr(std::string_view message) {
  Event e;
  Reader r(message);
  std::string_view qid;
  if (!r.queue_id(qid) || qid == "NOQUEUE") return e;
  if (r.literal("from=<")) {
    // The sender is client text and may contain '>': Postfix's own ">, size=" ends it.
    std::string_view sender;
    if (!r.until(">, size=", sender)) return e;
    e.kind = EventKind::From;
    e.queue_id = qid;
    e.sender = sender;
    return e;
  }
  if (r.literal("removed") && r.at_end()) {
    e.kind = EventKind::Removed;
    e.queue_id = qid;
  }
  return e;
}

Event delivery(std::string_view agent, std::string_view message) {
  Event e;
  Reader r(message);
  std::string_view qid, recipient, orig, relay;
  if (!r.queue_id(qid) || qid == "NOQUEUE" || !r.literal("to=<") || !r.until(">, ", recipient)) {
    return e;
  }
  if (r.literal("orig_to=<") && !r.until(">, ", orig)) return e;
  if (!r.literal("relay=") || !r.until(", ", relay)) return e;
  const std::string_view rest = r.rest();
  if (rest.find("status=") == std::string_view::npos) return e;
  e.kind = EventKind::Delivery;
  e.queue_id = qid;
  e.recipient = recipient;
  e.agent = agent;
  return e;
}

}  // namespace

Event parse_event(std::string_view program, std::string_view message) {
  if (program.starts_with("postfix")) {
    // The daemon is the last component; none of those read here is longer than 7 bytes, so
    // the '/' is looked for only that far back ("postfix" itself has none).
    const std::size_t stop = program.size() > 15 ? program.size() - 8 : 7;
    std::size_t slash = program.size();
    if constexpr (std::endian::native == std::endian::little) {
      // The program's last 8 bytes as one word (it has at least 8 here): its '/' bytes are
      // the zero bytes of word ^ "////////", found exactly (no borrow between bytes).
      if (program.size() < 8) return {};
      std::uint64_t word = 0;
      std::memcpy(&word, program.data() + program.size() - 8, 8);
      const std::uint64_t x = word ^ 0x2F2F2F2F2F2F2F2FULL;
      std::uint64_t slashes =
          ~(((x & 0x7F7F7F7F7F7F7F7FULL) + 0x7F7F7F7F7F7F7F7FULL) | x) & 0x8080808080808080ULL;
      slashes &= ~std::uint64_t{0} << (8 * (stop - (program.size() - 8)));  // from stop on
      if (slashes == 0) return {};  // no '/' after "postfix", or a daemon longer than 7 bytes
      slash = program.size() - 8 + static_cast<std::size_t>(63 - std::countl_zero(slashes)) / 8 + 1;
    } else {
      while (slash > stop && program[slash - 1] != '/') --slash;
      if (slash == stop) return {};  // no '/' after "postfix", or a daemon longer than 7 bytes
    }
    const std::string_view daemon = program.substr(slash);
    switch (daemon.size()) {
      case 4:
        if (daemon == "qmgr") return qmgr(message);
        if (daemon == "smtp" || daemon == "lmtp" || daemon == "pipe") {
          return delivery(daemon, message);
        }
        return {};
      case 5:
        if (daemon == "smtpd") return smtpd(message);
        if (daemon == "local" || daemon == "error" || daemon == "relay") {
          return delivery(daemon, message);
        }
        return {};
      case 7:
        if (daemon == "virtual" || daemon == "discard") return delivery(daemon, message);
        return {};
      default:
        return {};
    }
  }
  if (program == "dovecot") {
    Reader r(message);
    if (!(r.literal("pop3-login: ") || r.literal("imap-login: "))) return {};
    return login_fields(r);
  }
  if (program == "pop3-login" || program == "imap-login") {  // Dovecot's own log_path
    Reader r(message);
    if (!r.literal("Info: ")) return {};
    return login_fields(r);
  }
  if (program == "popb4smtp") {
    // deploy/postfix/popb4smtp-postlogin.sh: "added ip=IP user=USER"
    Reader r(message);
    std::string_view ip;
    if (!r.literal("added ip=") || !r.until(" user=", ip) || ip.empty() || ip.size() > 45) {
      return {};
    }
    for (char c : ip) {
      if (!is_ip_char(c)) return {};
    }
    Event e;
    e.user = r.rest();
    if (e.user.empty()) return {};
    e.kind = EventKind::MapAdd;
    e.ip = ip;
    return e;
  }
  return {};
}

}  // namespace mailconfd::cutover
