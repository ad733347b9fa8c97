#include "cutover/log_line.h"

#include <time.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <array>
#include <bit>
#include <cstdio>
#include <cstring>

#include "cutover/bytes.h"

namespace mailconfd::cutover {
namespace {

constexpr Micros kSecond = 1'000'000;
// "2026-07-02T12:22:07.123456+02:00": RFC 3339 as rsyslog writes it by default.
constexpr std::size_t kRsyslogTimeBytes = 32;
constexpr std::size_t kRsyslogSecondsAt = 16;  // ":07.123456"
constexpr std::size_t kRsyslogOffsetAt = 26;   // "+02:00"

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Reads exactly n digits at text[pos]; -1 when they are not all digits or the text ends.
int digits(std::string_view text, std::size_t pos, std::size_t n) {
  if (pos + n > text.size()) return -1;
  int value = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = text[pos + i];
    if (!is_digit(c)) return -1;
    value = value * 10 + (c - '0');
  }
  return value;
}

bool leap(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int days_in_month(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && leap(year) ? 29 : kDays[month - 1];
}

// "Jan".."Dec" → 1..12; 0 otherwise.
int month_number(std::string_view m) {
  if (m.size() != 3) return 0;
  switch (m[0]) {
    case 'J':
      if (m == "Jan") return 1;
      if (m == "Jun") return 6;
      if (m == "Jul") return 7;
      return 0;
    case 'F':
      return m == "Feb" ? 2 : 0;
    case 'M':
      if (m == "Mar") return 3;
      if (m == "May") return 5;
      return 0;
    case 'A':
      if (m == "Apr") return 4;
      if (m == "Aug") return 8;
      return 0;
    case 'S':
      return m == "Sep" ? 9 : 0;
    case 'O':
      return m == "Oct" ? 10 : 0;
    case 'N':
      return m == "Nov" ? 11 : 0;
    case 'D':
      return m == "Dec" ? 12 : 0;
    default:
      return 0;
  }
}

// The bytes of a syslog program tag: letters, digits, '/', '-', '_' and '.' (one table lookup
// per byte of every line's tag).
constexpr std::array<bool, 256> kTagChars = [] {
  std::array<bool, 256> table{};
  for (int c = 0; c < 256; ++c) {
    table[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '/' || c == '-' || c == '_' || c == '.';
  }
  return table;
}();

bool tag_char(char c) { return kTagChars[static_cast<unsigned char>(c)]; }

// The end of the run of tag bytes at text[pos]. Every line's host and tag are such runs: 16
// bytes are classified at once while 16 remain in the text (the message follows the tag, so
// they almost always do), then one byte at a time.
#if defined(__SSE2__)
// Bit i set when p[i] is a tag byte, for the 16 bytes at p.
inline unsigned tag_bytes16(const char* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  // Signed compares: bytes from 0x80 up are negative and fail every range below.
  // '-', '.', '/' and the digits are 0x2D..0x39; letters, with the case bit set, 0x61..0x7A.
  const __m128i folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
  const __m128i punct_digit =
      _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(0x2C)), _mm_cmplt_epi8(v, _mm_set1_epi8(0x3A)));
  const __m128i letter = _mm_and_si128(_mm_cmpgt_epi8(folded, _mm_set1_epi8(0x60)),
                                       _mm_cmplt_epi8(folded, _mm_set1_epi8(0x7B)));
  const __m128i underscore = _mm_cmpeq_epi8(v, _mm_set1_epi8('_'));
  return static_cast<unsigned>(
      _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(punct_digit, letter), underscore)));
}

// Bit i set when p[i] is a digit, for the 16 bytes at p.
inline unsigned digit_bytes16(const char* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return static_cast<unsigned>(_mm_movemask_epi8(_mm_and_si128(
      _mm_cmpgt_epi8(v, _mm_set1_epi8(0x2F)), _mm_cmplt_epi8(v, _mm_set1_epi8(0x3A)))));
}
#endif

std::size_t tag_end(std::string_view text, std::size_t pos) {
#if defined(__SSE2__)
  while (pos + 16 <= text.size()) {
    const unsigned ok = tag_bytes16(text.data() + pos);
    if (ok != 0xFFFF) return pos + static_cast<std::size_t>(__builtin_ctz(~ok));
    pos += 16;
  }
#endif
  while (pos < text.size() && tag_char(text[pos])) ++pos;
  return pos;
}

// The end of the run of digits at text[pos] (a pid): 16 bytes at a time as tag_end().
std::size_t digits_end(std::string_view text, std::size_t pos) {
#if defined(__SSE2__)
  while (pos + 16 <= text.size()) {
    const unsigned ok = digit_bytes16(text.data() + pos);
    if (ok != 0xFFFF) return pos + static_cast<std::size_t>(__builtin_ctz(~ok));
    pos += 16;
  }
#endif
  while (pos < text.size() && is_digit(text[pos])) ++pos;
  return pos;
}

// At text[pos]: "program[pid]: message" or "program: message". Fills program and message.
bool parse_tag(std::string_view text, std::size_t pos, LogLine& out) {
  const std::size_t start = pos;
  pos = tag_end(text, pos);
  if (pos == start || pos >= text.size()) return false;
  out.program = text.substr(start, pos - start);
  if (text[pos] == '[') {
    const std::size_t digits_start = ++pos;
    pos = digits_end(text, pos);
    if (pos == digits_start || pos >= text.size() || text[pos] != ']') return false;
    ++pos;
  }
  if (pos + 1 >= text.size() || text[pos] != ':' || text[pos + 1] != ' ') return false;
  out.message = text.substr(pos + 2);
  return true;
}

std::size_t next_space(std::string_view text, std::size_t pos) {
  const void* hit =
      pos < text.size() ? std::memchr(text.data() + pos, ' ', text.size() - pos) : nullptr;
  return hit == nullptr ? std::string_view::npos
                        : static_cast<std::size_t>(static_cast<const char*>(hit) - text.data());
}

// "host program[pid]: message", or "program[pid]: message" without a host (some syslog
// daemons, and Dovecot's own log_path: "pop3-login: Info: …").
bool parse_host_and_tag(std::string_view line, std::size_t pos, LogLine& out) {
  // The usual host is made of tag bytes up to a space: then the tag follows it, and neither
  // the host nor the search for its space is read twice.
  const std::size_t end = tag_end(line, pos);
  if (end > pos && end < line.size() && line[end] == ' ') return parse_tag(line, end + 1, out);
  if (parse_tag(line, pos, out)) return true;
  const std::size_t space = next_space(line, pos);
  if (space == std::string_view::npos || space == pos) return false;
  return parse_tag(line, space + 1, out);
}

// parse_host_and_tag(line, pos, out) for the usual line, where 64 bytes follow pos: a host
// and a tag of fewer than 16 and 32 tag bytes and a pid of fewer than 16 digits are each
// classified with one or two 16-byte compares and no loop. Anything else, and shorter lines,
// take the general functions, which give the same answer.
bool fast_host_and_tag(std::string_view line, std::size_t pos, LogLine& out) {
#if defined(__SSE2__)
  constexpr std::size_t kAhead = 64;
  if (line.size() - pos >= kAhead) {
    const char* p = line.data() + pos;
    const auto host = static_cast<std::size_t>(std::countr_one(tag_bytes16(p)));
    if (host == 0 || host == 16 || p[host] != ' ') return parse_host_and_tag(line, pos, out);
    // As parse_host_and_tag: the tag follows the host's space, and parse_tag's answer is final.
    const std::size_t start = pos + host + 1;  // at most pos + 16: 48 bytes follow it
    const char* t = line.data() + start;
    const unsigned tag = tag_bytes16(t) | tag_bytes16(t + 16) << 16;
    const auto length = static_cast<std::size_t>(std::countr_one(tag));
    if (length == 0 || length == 32) return parse_tag(line, start, out);
    out.program = std::string_view(t, length);
    std::size_t at = start + length;  // at most start + 31
    if (line[at] == '[') {
      const auto digits = static_cast<std::size_t>(std::countr_one(digit_bytes16(t + length + 1)));
      if (digits == 16) return parse_tag(line, start, out);
      at += 1 + digits;  // at most start + 47, inside the line
      if (digits == 0 || line[at] != ']') return false;
      ++at;
    }
    if (at + 1 >= line.size() || line[at] != ':' || line[at + 1] != ' ') return false;
    out.message = line.substr(at + 2);
    return true;
  }
#endif
  return parse_host_and_tag(line, pos, out);
}

// RFC 3164 / maillog_file: "Jul  2 12:22:07 " or "Jul 02 12:22:07 ". Returns the position
// after the trailing space, 0 when the text does not start so.
std::size_t parse_yearless(std::string_view line, YearlessClock& clock, Micros& time) {
  if (line.size() < 16) return 0;
  const int month = month_number(line.substr(0, 3));
  if (month == 0 || line[3] != ' ') return 0;
  std::size_t pos = 4;
  if (line[pos] == ' ') ++pos;
  int day = digits(line, pos, 2);
  if (day >= 0) {
    pos += 2;
  } else if ((day = digits(line, pos, 1)) >= 0) {
    pos += 1;
  } else {
    return 0;
  }
  if (pos >= line.size() || line[pos] != ' ') return 0;
  ++pos;
  const int hour = digits(line, pos, 2);
  const int minute = digits(line, pos + 3, 2);
  const int second = digits(line, pos + 6, 2);
  if (hour < 0 || minute < 0 || second < 0 || line[pos + 2] != ':' || line[pos + 5] != ':' ||
      hour > 23 || minute > 59 || second > 60) {
    return 0;
  }
  pos += 8;
  if (pos >= line.size() || line[pos] != ' ') return 0;
  const auto resolved = clock.resolve(month, day, hour, minute, second);
  if (!resolved) return 0;
  time = *resolved;
  return pos + 1;
}

std::optional<LogLine> parse_rfc5424(std::string_view line) {
  // <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]
  std::size_t pos = line.find('>');
  if (pos == std::string_view::npos || pos > 4 || line.substr(pos + 1, 2) != "1 ") {
    return std::nullopt;
  }
  pos += 3;
  std::string_view fields[5];
  for (std::string_view& field : fields) {
    const std::size_t space = next_space(line, pos);
    if (space == std::string_view::npos || space == pos) return std::nullopt;
    field = line.substr(pos, space - pos);
    pos = space + 1;
  }
  LogLine out;
  const auto time = parse_rfc3339(fields[0]);
  if (!time) return std::nullopt;
  out.time = *time;
  out.program = fields[2];
  for (char c : out.program) {
    if (!tag_char(c)) return std::nullopt;
  }
  // STRUCTURED-DATA: "-" or one or more [id param="value" …] with \" \] \\ escapes.
  if (pos >= line.size()) return std::nullopt;
  if (line[pos] == '-') {
    ++pos;
  } else {
    while (pos < line.size() && line[pos] == '[') {
      ++pos;
      while (pos < line.size() && line[pos] != ']') {
        if (line[pos] == '"') {
          for (++pos; pos < line.size() && line[pos] != '"'; ++pos) {
            if (line[pos] == '\\') ++pos;
          }
        }
        ++pos;
      }
      if (pos >= line.size()) return std::nullopt;
      ++pos;
    }
  }
  if (pos < line.size()) {
    if (line[pos] != ' ') return std::nullopt;
    ++pos;
  }
  std::string_view message = line.substr(pos);
  if (message.starts_with("\xEF\xBB\xBF")) message.remove_prefix(3);  // RFC 5424 BOM
  out.message = message;
  return out;
}

}  // namespace

std::int64_t days_from_civil(int year, int month, int day) {
  // Howard Hinnant's days_from_civil.
  const int y = year - (month <= 2 ? 1 : 0);
  const int era = (y >= 0 ? y : y - 399) / 400;
  const int yoe = y - era * 400;
  const int doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return static_cast<std::int64_t>(era) * 146097 + doe - 719468;
}

std::size_t format_rfc3339(Micros time, char* out) {
  std::int64_t seconds = time / kSecond;
  if (time < 0 && time % kSecond != 0) --seconds;
  std::int64_t days = seconds / 86400;
  std::int64_t rest = seconds % 86400;
  if (rest < 0) {
    rest += 86400;
    --days;
  }
  // civil_from_days
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const std::int64_t doe = days - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  if (year < 0 || year > 9999) {
    return static_cast<std::size_t>(
        std::snprintf(out, kRfc3339Max, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lldZ",
                      static_cast<long long>(year), static_cast<long long>(month),
                      static_cast<long long>(day), static_cast<long long>(rest / 3600),
                      static_cast<long long>(rest / 60 % 60), static_cast<long long>(rest % 60)));
  }
  // The common case without snprintf: "YYYY-MM-DDTHH:MM:SSZ".
  auto two = [](char* at, std::int64_t value) {
    at[0] = static_cast<char>('0' + value / 10);
    at[1] = static_cast<char>('0' + value % 10);
  };
  two(out, year / 100);
  two(out + 2, year % 100);
  out[4] = '-';
  two(out + 5, month);
  out[7] = '-';
  two(out + 8, day);
  out[10] = 'T';
  two(out + 11, rest / 3600);
  out[13] = ':';
  two(out + 14, rest / 60 % 60);
  out[16] = ':';
  two(out + 17, rest % 60);
  out[19] = 'Z';
  out[20] = '\0';
  return 20;
}

std::string rfc3339(Micros time) {
  char buffer[kRfc3339Max];
  return std::string(buffer, format_rfc3339(time, buffer));
}

namespace {

// "YYYY-MM-DDTHH:MM" (the first 16 bytes of RFC 3339): the minute's start as if it were UTC.
std::optional<Micros> rfc3339_minute(std::string_view text) {
  const int year = digits(text, 0, 4);
  const int month = digits(text, 5, 2);
  const int day = digits(text, 8, 2);
  const int hour = digits(text, 11, 2);
  const int minute = digits(text, 14, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 ||
      minute > 59 || text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != 't') ||
      text[13] != ':' || day > days_in_month(year, month)) {
    return std::nullopt;
  }
  return (days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60) * kSecond;
}

// Two ASCII digits at p into out; false when either is not a digit.
bool two_digits(const char* p, int& out) {
  const unsigned tens = static_cast<unsigned char>(p[0]) - '0';
  const unsigned ones = static_cast<unsigned char>(p[1]) - '0';
  if (tens > 9 || ones > 9) return false;
  out = static_cast<int>(tens * 10 + ones);
  return true;
}

// rsyslog's ":SS.ffffff" at p: microseconds into the minute, -1 when it is not that. The eight
// digits are one number SSffffff, the microseconds themselves: read as one word (the seconds from p
// + 1, the fraction from p + 2 over the '.'), checked and converted with three multiplications.
[[gnu::always_inline]] inline Micros rsyslog_seconds(const char* p) {
  if (p[0] != ':' || p[3] != '.') return -1;
  if constexpr (std::endian::native == std::endian::little) {
    std::uint64_t seconds = 0, fraction = 0;
    std::memcpy(&seconds, p + 1, 8);   // "SS.fffff"
    std::memcpy(&fraction, p + 2, 8);  // "S.ffffff"
    const std::uint64_t text = (seconds & 0xFFFF) | (fraction & ~std::uint64_t{0xFFFF});
    // Every byte 0x30..0x39: its high nibble is 3, and still 3 after adding 6.
    if (((text & 0xF0F0F0F0F0F0F0F0) | (((text + 0x0606060606060606) & 0xF0F0F0F0F0F0F0F0) >> 4)) !=
        0x3333333333333333) {
      return -1;
    }
    std::uint64_t value = ((text & 0x0F0F0F0F0F0F0F0F) * 2561) >> 8;  // pairs of digits
    value = ((value & 0x00FF00FF00FF00FF) * 6553601) >> 16;           // groups of four
    value = ((value & 0x0000FFFF0000FFFF) * 42949672960001) >> 32;    // all eight
    if (value >= 61 * kSecond) return -1;                             // second > 60
    return static_cast<Micros>(value);
  } else {
    int second = 0, f0 = 0, f1 = 0, f2 = 0;
    if (!two_digits(p + 1, second) || second > 60 || !two_digits(p + 4, f0) ||
        !two_digits(p + 6, f1) || !two_digits(p + 8, f2)) {
      return -1;
    }
    return second * kSecond + (f0 * 10'000 + f1 * 100 + f2);
  }
}

// "±HH:MM" at p: the offset from UTC.
std::optional<Micros> utc_offset(const char* p) {
  int oh = 0, om = 0;
  if ((p[0] != '+' && p[0] != '-') || !two_digits(p + 1, oh) || oh > 23 || p[3] != ':' ||
      !two_digits(p + 4, om) || om > 59) {
    return std::nullopt;
  }
  const Micros offset = (oh * 3600 + om * 60) * kSecond;
  return p[0] == '-' ? -offset : offset;
}

// The rest from byte 16, ":SS[.frac](Z|±HH:MM)": microseconds into the minute minus the
// offset from UTC.
std::optional<Micros> rfc3339_rest(std::string_view text) {
  // rsyslog's format on every line of a Debian 12 mail.log, "…:SS.ffffff±HH:MM", without
  // the loop; anything else (or a bad digit here) takes the general path below.
  if (text.size() == kRsyslogTimeBytes) {
    const Micros seconds = rsyslog_seconds(text.data() + kRsyslogSecondsAt);
    const auto offset = utc_offset(text.data() + kRsyslogOffsetAt);
    if (seconds >= 0 && offset) return seconds - *offset;
  }
  const int second = digits(text, 17, 2);
  if (text.size() < 19 || text[16] != ':' || second < 0 || second > 60) return std::nullopt;
  std::size_t pos = 19;
  Micros fraction = 0;
  if (pos < text.size() && text[pos] == '.') {
    Micros scale = 100'000;
    const std::size_t start = ++pos;
    while (pos < text.size() && is_digit(text[pos])) {
      fraction += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  if (pos >= text.size()) return std::nullopt;
  Micros offset = 0;
  if (text[pos] == 'Z' || text[pos] == 'z') {
    ++pos;
  } else if (text[pos] == '+' || text[pos] == '-') {
    const int oh = digits(text, pos + 1, 2);
    const int om = digits(text, pos + 4, 2);
    if (oh < 0 || om < 0 || text[pos + 3] != ':' || oh > 23 || om > 59) return std::nullopt;
    offset = (oh * 3600 + om * 60) * kSecond;
    if (text[pos] == '-') offset = -offset;
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != text.size()) return std::nullopt;
  return second * kSecond + fraction - offset;
}

}  // namespace

std::optional<Micros> parse_rfc3339(std::string_view text) {
  if (text.size() < 20) return std::nullopt;
  const auto minute = rfc3339_minute(text);
  if (!minute) return std::nullopt;
  const auto rest = rfc3339_rest(text);
  if (!rest) return std::nullopt;
  return *minute + *rest;
}

[[gnu::always_inline]] inline bool YearlessClock::rsyslog_same_minute(const char* text,
                                                                      Micros& time) const {
  if (!offset_cached_ || !minute_cached_ || !same_bytes<sizeof minute_text_>(minute_text_, text) ||
      !same_bytes<sizeof offset_text_>(offset_text_, text + kRsyslogOffsetAt)) {
    return false;
  }
  const Micros seconds = rsyslog_seconds(text + kRsyslogSecondsAt);
  if (seconds < 0) return false;
  time = minute_start_ + seconds - offset_;
  return true;
}

std::optional<Micros> YearlessClock::rfc3339(std::string_view text) {
  if (text.size() < 20) return std::nullopt;
  // rsyslog's form with the last line's minute and offset: only the seconds are new.
  if (text.size() == kRsyslogTimeBytes) {
    if (Micros time = 0; rsyslog_same_minute(text.data(), time)) return time;
  }
  if (!minute_cached_ || !same_bytes<sizeof minute_text_>(minute_text_, text.data())) {
    const auto minute = rfc3339_minute(text);
    if (!minute) return std::nullopt;
    std::memcpy(minute_text_, text.data(), sizeof minute_text_);
    minute_start_ = *minute;
    minute_cached_ = true;
  }
  const auto rest = rfc3339_rest(text);
  if (!rest) return std::nullopt;
  if (text.size() == kRsyslogTimeBytes) {
    if (const auto offset = utc_offset(text.data() + kRsyslogOffsetAt)) {
      std::memcpy(offset_text_, text.data() + kRsyslogOffsetAt, sizeof offset_text_);
      offset_ = *offset;
      offset_cached_ = true;
    }
  }
  return minute_start_ + *rest;
}

YearlessClock::YearlessClock(Micros reference, bool utc) : reference_(reference), utc_(utc) {
  const time_t seconds = static_cast<time_t>(reference / kSecond);
  struct tm fields {};
  if (utc_) {
    gmtime_r(&seconds, &fields);
  } else {
    localtime_r(&seconds, &fields);
  }
  reference_year_ = fields.tm_year + 1900;
}

std::optional<Micros> YearlessClock::hour_start(int year, int month, int day, int hour) {
  if (day > days_in_month(year, month)) return std::nullopt;
  if (utc_) return (days_from_civil(year, month, day) * 86400 + hour * 3600) * kSecond;
  struct tm fields {};
  fields.tm_year = year - 1900;
  fields.tm_mon = month - 1;
  fields.tm_mday = day;
  fields.tm_hour = hour;
  fields.tm_isdst = -1;
  const time_t seconds = mktime(&fields);
  if (seconds == static_cast<time_t>(-1)) return std::nullopt;
  return static_cast<Micros>(seconds) * kSecond;
}

std::optional<Micros> YearlessClock::resolve(int month, int day, int hour, int minute, int second) {
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23) return std::nullopt;
  const int key = (month * 100 + day) * 100 + hour;
  if (key != cached_key_) {
    int year = reference_year_;
    auto start = hour_start(year, month, day, hour);
    if (!start || *start > reference_ + 86400 * kSecond) {
      year = reference_year_ - 1;
      start = hour_start(year, month, day, hour);
      if (!start) {  // 29 February: the last leap year before the reference
        for (year = reference_year_ - 2; year > reference_year_ - 8 && !start; --year) {
          start = hour_start(year, month, day, hour);
        }
        if (!start) return std::nullopt;
      }
    }
    cached_key_ = key;
    cached_year_ = year;
    cached_start_ = *start;
  }
  return cached_start_ + (minute * 60 + second) * kSecond;
}

bool parse_syslog_line(std::string_view line, YearlessClock& clock, LogLine& out) {
  // The usual line first: rsyslog's time with the last line's minute and offset (checked
  // against the text the clock read before, so it starts with a digit), no '\r' at the end.
  if (line.size() > kRsyslogTimeBytes && line[kRsyslogTimeBytes] == ' ' && line.back() != '\r' &&
      clock.rsyslog_same_minute(line.data(), out.time)) {
    return fast_host_and_tag(line, kRsyslogTimeBytes + 1, out);
  }
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() < 16) return false;
  const char first = line[0];
  if (first == '<') {
    if (auto parsed = parse_rfc5424(line)) {
      out = *parsed;
      return true;
    }
    // "<PRI>" in front of a classic line (some forwarders keep it).
    const std::size_t close = line.find('>');
    if (close == std::string_view::npos || close > 4) return false;
    return parse_syslog_line(line.substr(close + 1), clock, out);
  }
  if (is_digit(first)) {
    // rsyslog's time on Debian 12 ("…T12:22:07.123456+01:00") is 32 bytes: tried there
    // before the space is searched for (a valid time has none, so the answer is the same),
    // first with the last line's minute and offset.
    std::optional<Micros> time;
    std::size_t space = kRsyslogTimeBytes;
    if (line.size() > space && line[space] == ' ') {
      if (Micros same = 0; clock.rsyslog_same_minute(line.data(), same)) {
        time = same;
      } else {
        time = clock.rfc3339(line.substr(0, space));
      }
    }
    if (!time) {
      space = next_space(line, 0);
      if (space == std::string_view::npos) return false;
      time = clock.rfc3339(line.substr(0, space));
      if (!time) return false;
    }
    out.time = *time;
    return fast_host_and_tag(line, space + 1, out);
  }
  const std::size_t pos = parse_yearless(line, clock, out.time);
  return pos != 0 && parse_host_and_tag(line, pos, out);
}

std::optional<LogLine> parse_syslog_line(std::string_view line, YearlessClock& clock) {
  LogLine out;
  if (!parse_syslog_line(line, clock, out)) return std::nullopt;
  return out;
}

namespace {

// A small reader for one flat JSON object, as journalctl -o json writes them.
class JsonObject {
 public:
  explicit JsonObject(std::string_view text) : text_(text) {}

  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool consume(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool at_end() {
    skip_space();
    return pos_ == text_.size();
  }
  char peek() {
    skip_space();
    return pos_ < text_.size() ? text_[pos_] : '\0';
  }

  // A JSON string, decoded and appended to out (UTF-8). False when malformed.
  bool string(std::string* out) {
    if (!consume('"')) return false;
    while (pos_ < text_.size()) {
      const char c = text_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        if (out) out->push_back(c);
        continue;
      }
      if (pos_ >= text_.size()) return false;
      const char e = text_[pos_++];
      char plain = 0;
      switch (e) {
        case '"':
          plain = '"';
          break;
        case '\\':
          plain = '\\';
          break;
        case '/':
          plain = '/';
          break;
        case 'b':
          plain = '\b';
          break;
        case 'f':
          plain = '\f';
          break;
        case 'n':
          plain = '\n';
          break;
        case 'r':
          plain = '\r';
          break;
        case 't':
          plain = '\t';
          break;
        case 'u': {
          unsigned code = 0;
          if (!hex4(code)) return false;
          if (code >= 0xD800 && code <= 0xDBFF) {
            unsigned low = 0;
            if (pos_ + 1 >= text_.size() || text_[pos_] != '\\' || text_[pos_ + 1] != 'u')
              return false;
            pos_ += 2;
            if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
          } else if (code >= 0xDC00 && code <= 0xDFFF) {
            return false;
          }
          if (out) append_utf8(*out, code);
          continue;
        }
        default:
          return false;
      }
      if (out) out->push_back(plain);
    }
    return false;
  }

  // An array of byte values (journalctl's form of a non-UTF-8 field), appended to out.
  bool byte_array(std::string* out) {
    if (!consume('[')) return false;
    if (consume(']')) return true;
    do {
      skip_space();
      unsigned value = 0;
      const std::size_t start = pos_;
      while (pos_ < text_.size() && is_digit(text_[pos_]) && pos_ - start < 4) {
        value = value * 10 + static_cast<unsigned>(text_[pos_++] - '0');
      }
      if (pos_ == start || value > 255) return false;
      if (out) out->push_back(static_cast<char>(value));
    } while (consume(','));
    return consume(']');
  }

  // Skips any other value (number, literal, nested array or object).
  bool skip_value() {
    const char c = peek();
    if (c == '"') return string(nullptr);
    if (c == '[' || c == '{') {
      const char close = c == '[' ? ']' : '}';
      ++pos_;
      if (consume(close)) return true;
      do {
        if (close == '}') {
          if (!string(nullptr) || !consume(':')) return false;
        }
        if (!skip_value()) return false;
      } while (consume(','));
      return consume(close);
    }
    const std::size_t start = pos_;
    while (pos_ < text_.size() &&
           (is_digit(text_[pos_]) || text_[pos_] == '-' || text_[pos_] == '+' ||
            text_[pos_] == '.' || text_[pos_] == 'e' || text_[pos_] == 'E' ||
            (text_[pos_] >= 'a' && text_[pos_] <= 'z'))) {
      ++pos_;
    }
    return pos_ > start;
  }

 private:
  bool hex4(unsigned& code) {
    if (pos_ + 4 > text_.size()) return false;
    for (int i = 0; i < 4; ++i) {
      const char h = text_[pos_++];
      code <<= 4;
      if (is_digit(h)) {
        code |= static_cast<unsigned>(h - '0');
      } else if (h >= 'a' && h <= 'f') {
        code |= static_cast<unsigned>(h - 'a' + 10);
      } else if (h >= 'A' && h <= 'F') {
        code |= static_cast<unsigned>(h - 'A' + 10);
      } else {
        return false;
      }
    }
    return true;
  }
  static void append_utf8(std::string& out, unsigned code) {
    if (code < 0x80) {
      out.push_back(static_cast<char>(code));
    } else if (code < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (code >> 6)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else if (code < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (code >> 12)));
      out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (code >> 18)));
      out.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    }
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

}  // namespace

std::optional<LogLine> parse_journal_line(std::string_view json, std::string& storage,
                                          std::string_view* cursor) {
  storage.clear();
  JsonObject object(json);
  if (!object.consume('{')) return std::nullopt;
  // Offsets into storage: [begin, end) of each wanted field; -1 = absent.
  long message[2] = {-1, -1}, program[2] = {-1, -1}, realtime[2] = {-1, -1},
       cursor_at[2] = {-1, -1};
  std::string key;
  if (!object.consume('}')) {
    do {
      key.clear();
      if (!object.string(&key) || !object.consume(':')) return std::nullopt;
      long* slot = key == "MESSAGE"                ? message
                   : key == "SYSLOG_IDENTIFIER"    ? program
                   : key == "__REALTIME_TIMESTAMP" ? realtime
                   : key == "__CURSOR"             ? cursor_at
                                                   : nullptr;
      if (slot == nullptr) {
        if (!object.skip_value()) return std::nullopt;
        continue;
      }
      slot[0] = static_cast<long>(storage.size());
      const bool ok = object.peek() == '[' ? object.byte_array(&storage) : object.string(&storage);
      if (!ok) return std::nullopt;
      slot[1] = static_cast<long>(storage.size());
    } while (object.consume(','));
    if (!object.consume('}')) return std::nullopt;
  }
  if (!object.at_end() || message[0] < 0 || program[0] < 0 || realtime[0] < 0) {
    return std::nullopt;
  }
  auto view = [&](const long* slot) {
    return std::string_view(storage).substr(static_cast<std::size_t>(slot[0]),
                                            static_cast<std::size_t>(slot[1] - slot[0]));
  };
  const std::string_view stamp = view(realtime);
  if (stamp.empty() || stamp.size() > 18) return std::nullopt;
  Micros time = 0;
  for (char c : stamp) {
    if (!is_digit(c)) return std::nullopt;
    time = time * 10 + (c - '0');
  }
  LogLine out;
  out.time = time;
  out.program = view(program);
  std::string_view text = view(message);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  out.message = text;
  if (cursor != nullptr) *cursor = cursor_at[0] >= 0 ? view(cursor_at) : std::string_view();
  return out;
}

}  // namespace mailconfd::cutover
