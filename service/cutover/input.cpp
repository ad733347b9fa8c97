#include "cutover/input.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <chrono>
#include <cstring>

extern char** environ;

namespace mailconfd::cutover {

// A stream of bytes: a file descriptor, a child's output, or gzip inflated on the fly.
class ByteReader {
 public:
  virtual ~ByteReader() = default;
  // Up to n bytes; 0 at the end; -1 on an error (error() says which).
  virtual long read(char* out, std::size_t n) = 0;
  const std::string& error() const { return error_; }

 protected:
  std::string error_;
};

namespace {

constexpr std::size_t kChunk = 1 << 20;

class FdReader : public ByteReader {
 public:
  FdReader(int fd, bool owned, std::string pushback = {})
      : fd_(fd), owned_(owned), pushback_(std::move(pushback)) {}
  ~FdReader() override {
    if (owned_) ::close(fd_);
  }
  FdReader(const FdReader&) = delete;
  FdReader& operator=(const FdReader&) = delete;
  long read(char* out, std::size_t n) override {
    if (!pushback_.empty()) {
      const std::size_t take = std::min(n, pushback_.size());
      std::memcpy(out, pushback_.data(), take);
      pushback_.erase(0, take);
      return static_cast<long>(take);
    }
    while (true) {
      const ssize_t got = ::read(fd_, out, n);
      if (got >= 0) return static_cast<long>(got);
      if (errno == EINTR) continue;
      error_ = std::strerror(errno);
      return -1;
    }
  }

 protected:
  int fd_;
  bool owned_;
  std::string pushback_;
};

class ChildReader : public FdReader {
 public:
  ChildReader(int fd, pid_t pid, std::string program)
      : FdReader(fd, true), pid_(pid), program_(std::move(program)) {}
  ~ChildReader() override {
    if (pid_ > 0) {
      ::close(fd_);
      owned_ = false;
      int status = 0;
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
  ChildReader(const ChildReader&) = delete;
  ChildReader& operator=(const ChildReader&) = delete;
  long read(char* out, std::size_t n) override {
    const long got = FdReader::read(out, n);
    if (got != 0 || pid_ <= 0) return got;
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      error_ = program_ + (WIFEXITED(status)
                               ? " exited with status " + std::to_string(WEXITSTATUS(status))
                               : std::string(" was killed by a signal"));
      return -1;
    }
    return 0;
  }

 private:
  pid_t pid_;
  std::string program_;
};

class GzipReader : public ByteReader {
 public:
  explicit GzipReader(std::unique_ptr<ByteReader> input) : input_(std::move(input)), in_(kChunk) {
    stream_.zalloc = Z_NULL;
    stream_.zfree = Z_NULL;
    stream_.opaque = Z_NULL;
    ok_ = inflateInit2(&stream_, 16 + MAX_WBITS) == Z_OK;
  }
  ~GzipReader() override {
    if (ok_) inflateEnd(&stream_);
  }
  GzipReader(const GzipReader&) = delete;
  GzipReader& operator=(const GzipReader&) = delete;

  long read(char* out, std::size_t n) override {
    if (!ok_) {
      error_ = "cannot initialise zlib";
      return -1;
    }
    stream_.next_out = reinterpret_cast<Bytef*>(out);
    stream_.avail_out = static_cast<uInt>(n);
    while (stream_.avail_out == n) {
      if (stream_.avail_in == 0) {
        if (input_done_) {
          if (in_member_) {
            error_ = "truncated gzip data";
            return -1;
          }
          return 0;
        }
        const long got = input_->read(in_.data(), in_.size());
        if (got < 0) {
          error_ = input_->error();
          return -1;
        }
        if (got == 0) {
          input_done_ = true;
          continue;
        }
        stream_.next_in = reinterpret_cast<Bytef*>(in_.data());
        stream_.avail_in = static_cast<uInt>(got);
      }
      in_member_ = true;
      const int rc = inflate(&stream_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        in_member_ = false;
        inflateReset(&stream_);  // several gzip members one after the other (cat a.gz b.gz)
        continue;
      }
      if (rc != Z_OK && rc != Z_BUF_ERROR) {
        error_ = std::string("bad gzip data: ") + (stream_.msg ? stream_.msg : "inflate failed");
        return -1;
      }
    }
    return static_cast<long>(n - stream_.avail_out);
  }

 private:
  std::unique_ptr<ByteReader> input_;
  std::vector<char> in_;
  z_stream stream_{};
  bool ok_ = false;
  bool input_done_ = false;
  bool in_member_ = false;
};

Micros now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::uint64_t fnv1a(std::string_view bytes) {
  std::uint64_t hash = 0xCBF29CE484222325ULL;
  for (char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001B3ULL;
  }
  return hash;
}

Source::Source(std::string name, Kind kind, std::unique_ptr<ByteReader> reader)
    : name_(std::move(name)), kind_(kind), reader_(std::move(reader)), buffer_(2 * kChunk) {}

Source::~Source() = default;

std::unique_ptr<Source> Source::open_file(const std::string& path, std::string& error) {
  const bool standard_input = path == "-";
  const int fd = standard_input ? 0 : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = path + ": " + std::strerror(errno);
    return nullptr;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    error = path + ": " + (S_ISDIR(st.st_mode) ? "is a directory" : std::strerror(errno));
    if (!standard_input) ::close(fd);
    return nullptr;
  }
  // The gzip magic decides, not the name (logrotate's delaycompress, renamed files).
  std::string head(2, '\0');
  std::size_t have = 0;
  while (have < 2) {
    const ssize_t got = ::read(fd, head.data() + have, 2 - have);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    have += static_cast<std::size_t>(got);
  }
  head.resize(have);
  const bool gzip = have == 2 && head[0] == '\x1f' && head[1] == '\x8b';
  std::unique_ptr<ByteReader> reader = std::make_unique<FdReader>(fd, !standard_input, head);
  if (gzip) reader = std::make_unique<GzipReader>(std::move(reader));
  std::unique_ptr<Source> source(
      new Source(standard_input ? "(standard input)" : path, Kind::Syslog, std::move(reader)));
  source->seekable_ = !standard_input && S_ISREG(st.st_mode);
  source->mtime_ = S_ISREG(st.st_mode) ? static_cast<Micros>(st.st_mtim.tv_sec) * 1'000'000 +
                                             st.st_mtim.tv_nsec / 1000
                                       : now_micros();
  return source;
}

std::unique_ptr<Source> Source::open_journal(const std::string& cursor, std::string& error) {
  std::vector<std::string> args{"journalctl", "-o", "json", "--no-pager", "-q"};
  if (!cursor.empty()) args.push_back("--after-cursor=" + cursor);
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    error = std::string("journalctl: ") + std::strerror(errno);
    return nullptr;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, "journalctl", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  if (rc != 0) {
    ::close(pipe_fds[0]);
    error = std::string("journalctl: ") + std::strerror(rc);
    return nullptr;
  }
  std::unique_ptr<Source> source(new Source(
      "(journal)", Kind::Journal, std::make_unique<ChildReader>(pipe_fds[0], pid, "journalctl")));
  source->mtime_ = now_micros();
  return source;
}

bool Source::fill(std::size_t want) {
  while (!eof_ && end_ - begin_ < want) {
    if (begin_ > 0 && (buffer_.size() - end_ < kChunk)) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (buffer_.size() - end_ < kChunk) buffer_.resize(end_ + kChunk);
    const long got = reader_->read(buffer_.data() + end_, buffer_.size() - end_);
    if (got < 0) {
      error_ = name_ + ": " + reader_->error();
      eof_ = true;
      return false;
    }
    if (got == 0) {
      eof_ = true;
      break;
    }
    end_ += static_cast<std::size_t>(got);
  }
  return true;
}

std::optional<Fingerprint> Source::fingerprint() {
  fill(kFingerprintBytes);
  const std::size_t length = std::min(kFingerprintBytes, end_ - begin_);
  if (length == 0 || offset_ != 0) return std::nullopt;
  return Fingerprint{fnv1a(std::string_view(buffer_.data() + begin_, length)), length};
}

bool Source::matches(const Fingerprint& fp) {
  fill(fp.length);
  if (offset_ != 0 || end_ - begin_ < fp.length || fp.length == 0) return false;
  return fnv1a(std::string_view(buffer_.data() + begin_, fp.length)) == fp.hash;
}

bool Source::skip(std::uint64_t bytes) {
  while (bytes > 0) {
    if (begin_ == end_) {
      if (eof_) return false;
      begin_ = end_ = 0;
      fill(1);
      if (begin_ == end_) return false;
    }
    const std::size_t take =
        static_cast<std::size_t>(std::min<std::uint64_t>(bytes, end_ - begin_));
    begin_ += take;
    offset_ += take;
    bytes -= take;
  }
  return true;
}

Source::Read Source::next_slow(std::string_view& line, bool may_refill) {
  bool overlong = false;
  while (true) {
    const char* start = buffer_.data() + begin_;
    const void* newline = std::memchr(start, '\n', end_ - begin_);
    if (newline != nullptr) {
      const auto length = static_cast<std::size_t>(static_cast<const char*>(newline) - start);
      begin_ += length + 1;
      offset_ += length + 1;
      if (overlong || length > kMaxLineBytes) return Read::Overlong;
      line = std::string_view(start, length);
      return Read::Line;
    }
    if (!may_refill) return Read::Later;  // the buffer stays as it is
    if (end_ - begin_ > kMaxLineBytes) {
      // Drop what is buffered of this line and keep dropping up to its newline: the rest of
      // an over-long line must never be read as a line of its own.
      overlong = true;
      offset_ += end_ - begin_;
      begin_ = end_ = 0;
    }
    if (eof_) {
      if (!error_.empty()) return Read::Error;
      if (begin_ == end_ || !take_partial_) {
        if (overlong) return Read::Overlong;
        return Read::End;
      }
      line = std::string_view(buffer_.data() + begin_, end_ - begin_);
      offset_ += end_ - begin_;
      begin_ = end_;
      return overlong ? Read::Overlong : Read::Line;
    }
    if (!fill(end_ - begin_ + 1)) return Read::Error;
  }
}

Merge::Merge(std::vector<std::unique_ptr<Source>> sources, Micros now, bool utc)
    : sources_(std::move(sources)), heads_(sources_.size()) {
  for (const auto& source : sources_) {
    clocks_.emplace_back(source->mtime() ? source->mtime() : now, utc);
  }
  single_syslog_ = sources_.size() == 1 && sources_[0]->kind() == Source::Kind::Syslog;
}

Merge::Step Merge::advance(std::size_t i, std::uint64_t& lines, std::uint64_t& skipped,
                           std::uint64_t& bytes, bool may_refill) {
  Source& source = *sources_[i];
  Head& head = heads_[i];
  // A journal line's fields are decoded into head.storage, over the last one's.
  if (!may_refill && source.kind() == Source::Kind::Journal) return Step::Later;
  while (true) {
    std::string_view raw;
    const Source::Read read = source.next(raw, may_refill);
    if (read == Source::Read::Later) return Step::Later;
    if (read == Source::Read::End || read == Source::Read::Error) {
      head.done = true;
      return Step::End;
    }
    ++lines;
    if (read == Source::Read::Overlong) {
      ++skipped;
      continue;
    }
    bytes += raw.size() + 1;
    std::optional<LogLine> parsed;
    if (source.kind() == Source::Kind::Journal) {
      std::string_view cursor;
      parsed = parse_journal_line(raw, head.storage, &cursor);
      if (parsed) head.cursor.assign(cursor);
    } else {
      parsed = parse_syslog_line(raw, clocks_[i]);
    }
    if (!parsed) {
      ++skipped;
      continue;
    }
    head.line = *parsed;
    head.ready = true;
    return Step::Line;
  }
}

Merge::Step Merge::next(Merged& out, std::uint64_t& lines, std::uint64_t& skipped,
                        std::uint64_t& bytes, bool may_refill) {
  if (single_syslog_ && !heads_[0].ready) {
    // One syslog file: nothing to merge, so each line is parsed straight into out.
    if (heads_[0].done) return Step::End;
    Source& source = *sources_[0];
    while (true) {
      std::string_view raw;
      const Source::Read read = source.next(raw, may_refill);
      if (read == Source::Read::Line) {
        ++lines;
        bytes += raw.size() + 1;
        if (parse_syslog_line(raw, clocks_[0], out.line)) {
          out.source = 0;
          return Step::Line;
        }
        ++skipped;
        continue;
      }
      if (read == Source::Read::Later) return Step::Later;
      if (read == Source::Read::End || read == Source::Read::Error) {
        heads_[0].done = true;
        return Step::End;
      }
      ++lines;  // Overlong
      ++skipped;
    }
  }
  std::size_t best = heads_.size();
  for (std::size_t i = 0; i < heads_.size(); ++i) {
    Head& head = heads_[i];
    if (!head.ready && !head.done && advance(i, lines, skipped, bytes, may_refill) == Step::Later) {
      return Step::Later;  // heads read so far stay ready for the next call
    }
    if (head.ready && (best == heads_.size() || head.line.time < heads_[best].line.time)) {
      best = i;
    }
  }
  if (best == heads_.size()) return Step::End;
  heads_[best].ready = false;
  out.line = heads_[best].line;
  out.source = best;
  if (sources_[best]->kind() == Source::Kind::Journal) cursor_ = heads_[best].cursor;
  return Step::Line;
}

std::string Merge::error() const {
  for (const auto& source : sources_) {
    if (!source->error().empty()) return source->error();
  }
  return {};
}

}  // namespace mailconfd::cutover
