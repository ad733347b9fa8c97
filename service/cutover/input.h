// Where log lines come from: files (plain or gzip, detected by their magic bytes), standard
// input, or `journalctl -o json`. A Source yields complete lines; Merge interleaves several
// sources by time, so Dovecot's and Postfix's logs (or a log and its rotated predecessors)
// can be named in any order. Fingerprints let --state resume a file after rotation.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cutover/log_line.h"

namespace mailconfd::cutover {

// The longest line read; anything longer is skipped whole (up to its newline) and counted.
inline constexpr std::size_t kMaxLineBytes = 64 * 1024;
// How many leading bytes identify a file across renames and compression.
inline constexpr std::size_t kFingerprintBytes = 256;

struct Fingerprint {
  std::uint64_t hash = 0;  // FNV-1a of the first `length` bytes (uncompressed)
  std::size_t length = 0;
};

class ByteReader;

class Source {
 public:
  enum class Kind { Syslog, Journal };
  ~Source();
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  // "-" is standard input. error receives "FILE: reason" on failure.
  static std::unique_ptr<Source> open_file(const std::string& path, std::string& error);
  // Runs journalctl -o json (after `cursor` when not empty); PATH decides which journalctl.
  static std::unique_ptr<Source> open_journal(const std::string& cursor, std::string& error);

  enum class Read { Line, Overlong, End, Error, Later };
  // The next complete line without its newline (valid until the next call). Overlong: a line
  // longer than kMaxLineBytes was skipped. At the end, a last line without newline is returned
  // only when take_partial is set (a file still being written is resumed from its start).
  // With may_refill false the buffer is left as it is, so that the lines returned before stay
  // valid too: Later (nothing consumed) when the next line is not whole in it.
  Read next(std::string_view& line, bool may_refill = true) {
    // The usual case inline: a whole line of a sane length in the buffer.
    const char* start = buffer_.data() + begin_;
    const void* newline = std::memchr(start, '\n', end_ - begin_);
    if (newline != nullptr) {
      const auto length = static_cast<std::size_t>(static_cast<const char*>(newline) - start);
      if (length <= kMaxLineBytes) {
        begin_ += length + 1;
        offset_ += length + 1;
        line = std::string_view(start, length);
        return Read::Line;
      }
    }
    return next_slow(line, may_refill);
  }

  const std::string& name() const { return name_; }
  const std::string& error() const { return error_; }
  Kind kind() const { return kind_; }
  bool seekable() const { return seekable_; }
  // Bytes (uncompressed) of every line returned so far, newlines included.
  std::uint64_t offset() const { return offset_; }
  Micros mtime() const { return mtime_; }
  void set_take_partial(bool take) { take_partial_ = take; }
  // Computed from the first bytes (reads ahead; nothing is consumed). nullopt: empty.
  std::optional<Fingerprint> fingerprint();
  // True when the first fp.length bytes have this fingerprint.
  bool matches(const Fingerprint& fp);
  // Discards `bytes` of lines (only whole lines are ever counted). False when the file is
  // shorter (then it was truncated or replaced: read it from the start again).
  bool skip(std::uint64_t bytes);

 private:
  Source(std::string name, Kind kind, std::unique_ptr<ByteReader> reader);
  bool fill(std::size_t want);  // until `want` bytes are buffered or the input ends
  Read next_slow(std::string_view& line, bool may_refill);

  std::string name_;
  Kind kind_;
  std::unique_ptr<ByteReader> reader_;
  std::vector<char> buffer_;
  std::size_t begin_ = 0, end_ = 0;
  bool eof_ = false;
  bool take_partial_ = true;
  bool seekable_ = false;
  std::uint64_t offset_ = 0;
  Micros mtime_ = 0;
  std::string error_;
};

std::uint64_t fnv1a(std::string_view bytes);

// A parsed line from one of several sources, earliest first.
struct Merged {
  LogLine line;
  std::size_t source = 0;
};

class Merge {
 public:
  // utc: year-less timestamps are UTC (tests); otherwise the local time zone.
  Merge(std::vector<std::unique_ptr<Source>> sources, Micros now, bool utc);
  // The next line in time order; false when every source is exhausted. skipped counts lines
  // that were not log lines, bytes every byte read.
  bool next(Merged& out, std::uint64_t& lines, std::uint64_t& skipped, std::uint64_t& bytes) {
    return next(out, lines, skipped, bytes, true) == Step::Line;
  }
  // The same, and with may_refill false the lines returned before stay valid (a batch of them
  // is used at once): Later, and nothing returned, when that needs a read (a source's next line
  // is not whole in its buffer, or a journal's fields would be overwritten). Then the caller
  // is done with the lines it holds and asks again with may_refill true.
  enum class Step { Line, Later, End };
  Step next(Merged& out, std::uint64_t& lines, std::uint64_t& skipped, std::uint64_t& bytes,
            bool may_refill);
  const std::vector<std::unique_ptr<Source>>& sources() const { return sources_; }
  // The journal cursor of the last journal entry returned (empty if none).
  const std::string& journal_cursor() const { return cursor_; }
  // A read error of any source (the first one), empty when none.
  std::string error() const;

 private:
  struct Head {
    bool ready = false;
    bool done = false;
    LogLine line;
    std::string storage;  // journal: the decoded fields
    std::string cursor;
  };
  // Reads source i's next log line into its head: Line, End (the source is done) or Later
  // (may_refill false and that needs a read).
  Step advance(std::size_t i, std::uint64_t& lines, std::uint64_t& skipped, std::uint64_t& bytes,
               bool may_refill);

  std::vector<std::unique_ptr<Source>> sources_;
  std::vector<YearlessClock> clocks_;
  std::vector<Head> heads_;
  std::string cursor_;
  bool single_syslog_ = false;  // one source, a syslog file: next() parses into out directly
};

}  // namespace mailconfd::cutover
