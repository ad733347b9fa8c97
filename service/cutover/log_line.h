// Splits one mail-log line into time, program tag and message, for every transport a Debian 12
// mail server writes: rsyslog RFC 3339, classic RFC 3164 (year-less, local time), Postfix's
// maillog_file, Dovecot's own log_path, RFC 5424, and `journalctl -o json`. Nothing here looks
// at the message: the program tag alone decides who wrote a line (event.h reads the message).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mailconfd::cutover {

using Micros = std::int64_t;  // microseconds since the Unix epoch, UTC

// Turns year-less local timestamps (RFC 3164 "Jul  2 12:22:07", maillog_file "Jul 02 …")
// into UTC. The year is the one that puts the time at most one day after `reference` (the
// file's modification time, or now for a stream): a log written across New Year gets
// December of the previous year and January of the reference's year.
class YearlessClock {
 public:
  // utc: the timestamps are UTC rather than the process's local time zone (TZ).
  explicit YearlessClock(Micros reference, bool utc = false);
  // month 1..12, day 1..31; nullopt when the date does not exist.
  std::optional<Micros> resolve(int month, int day, int hour, int minute, int second);
  Micros reference() const { return reference_; }
  // parse_rfc3339 with the last minute's date and time ("YYYY-MM-DDTHH:MM") and offset
  // remembered: consecutive lines of an rsyslog file share them, so most lines parse only
  // the seconds.
  std::optional<Micros> rfc3339(std::string_view text);
  // rfc3339() of rsyslog's 32 bytes at text ("2026-07-02T12:22:07.123456+02:00") into time
  // when they have the last minute and offset it read; false otherwise (then ask rfc3339()).
  bool rsyslog_same_minute(const char* text, Micros& time) const;

 private:
  std::optional<Micros> hour_start(int year, int month, int day, int hour);

  Micros reference_;
  bool utc_;
  int reference_year_;
  // The last hour resolved: consecutive lines almost always share it.
  int cached_key_ = -1;
  int cached_year_ = 0;
  Micros cached_start_ = 0;
  // The last RFC 3339 minute: its text and its start (UTC, before the offset).
  char minute_text_[16] = {};
  bool minute_cached_ = false;
  Micros minute_start_ = 0;
  // The last offset of rsyslog's 32-byte form ("+02:00"): its text and its value.
  char offset_text_[6] = {};
  bool offset_cached_ = false;
  Micros offset_ = 0;
};

struct LogLine {
  Micros time = 0;
  std::string_view program;  // "postfix/submission/smtpd", "dovecot", "pop3-login" (log_path)
  std::string_view message;  // after "program[pid]: "
};

// Parses a syslog-style line (no trailing newline). nullopt: not a log line (garbage,
// truncated, binary). The views point into `line`.
std::optional<LogLine> parse_syslog_line(std::string_view line, YearlessClock& clock);
// The same into out (left partly written when false).
bool parse_syslog_line(std::string_view line, YearlessClock& clock, LogLine& out);

// Parses one `journalctl -o json` object. MESSAGE, SYSLOG_IDENTIFIER and __CURSOR are
// JSON-decoded into `storage` (the views point there); nullopt when a field is missing or the
// object is malformed. cursor receives __CURSOR when present.
std::optional<LogLine> parse_journal_line(std::string_view json, std::string& storage,
                                          std::string_view* cursor = nullptr);

// Civil date (proleptic Gregorian) to days since 1970-01-01.
std::int64_t days_from_civil(int year, int month, int day);
// "2026-12-02T20:06:05Z" (seconds; UTC).
std::string rfc3339(Micros time);
// The same into out (at least kRfc3339Max bytes, NUL-terminated); returns its length.
inline constexpr std::size_t kRfc3339Max = 96;
std::size_t format_rfc3339(Micros time, char* out);
// Parses RFC 3339 "YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)"; nullopt otherwise.
std::optional<Micros> parse_rfc3339(std::string_view text);

}  // namespace mailconfd::cutover
