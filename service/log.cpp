#include "log.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace mailconfd {
namespace {

using namespace log_limits;
using SystemClock = std::chrono::system_clock;

constexpr const char* kPattern = "%Y-%m-%dT%H:%M:%S.%fZ %l %v";

// Lines one thread has produced and the log thread has not written yet.
struct Batch {
  std::mutex mutex;
  std::string text;
  std::size_t dropped = 0;  // lines refused because text was full
};

void write_all(std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(STDERR_FILENO, text.data(), text.size());
    if (n > 0) {
      text.remove_prefix(static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return;  // stderr is gone; nothing sensible is left to do with the lines
    }
  }
}

// "2026-11-28T08:33:12.123456Z <level> ", as spdlog's kPattern writes it. The part up to the
// seconds is computed once per second and thread.
void append_stamp(std::string& out, std::string_view level) {
  thread_local std::time_t cached_second = -1;
  thread_local char cached[24];
  const auto now = SystemClock::now();
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  const std::time_t second = static_cast<std::time_t>(micros / 1000000);
  if (second != cached_second) {
    std::tm tm{};
    gmtime_r(&second, &tm);
    std::strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
    cached_second = second;
  }
  out.append(cached, 19);
  char fraction[8] = {'.', '0', '0', '0', '0', '0', '0', 'Z'};
  auto value = static_cast<unsigned>(micros % 1000000);
  for (int i = 6; i >= 1; --i, value /= 10) fraction[i] = static_cast<char>('0' + value % 10);
  out.append(fraction, sizeof fraction);
  out.push_back(' ');
  out.append(level);
  out.push_back(' ');
}

template <typename Int>
void append_number(std::string& out, Int value) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  out.append(digits, end);
}

class Writer {
 public:
  Writer() : misc_(attach()), thread_([this] { run(); }) {}

  // The calling thread's batch, registered with the log thread.
  std::shared_ptr<Batch> attach() {
    auto batch = std::make_shared<Batch>();
    std::lock_guard lock(batches_mutex_);
    batches_.push_back(batch);
    return batch;
  }

  // Called after a line was added to a batch; size: that batch's size now.
  void added(std::size_t size) {
    if (idle_.load() || size >= kWakeBytes) wake();
  }

  // A message that must not wait for the next interval (startup, reload, errors).
  void message(std::string_view text) {
    {
      std::lock_guard lock(misc_->mutex);
      misc_->text.append(text);
    }
    wake();
  }

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

 private:
  void wake() {
    {
      std::lock_guard lock(mutex_);
      urgent_ = true;
    }
    cv_.notify_one();
  }

  // Moves every batch's lines to out; forgets batches of threads that have ended.
  void collect(std::string& out) {
    std::lock_guard lock(batches_mutex_);
    for (auto it = batches_.begin(); it != batches_.end();) {
      Batch& batch = **it;
      std::size_t dropped = 0;
      {
        std::lock_guard b(batch.mutex);
        out.append(batch.text);
        batch.text.clear();
        std::swap(dropped, batch.dropped);
      }
      if (dropped > 0) {
        append_stamp(out, "warning");
        append_number(out, dropped);
        out.append(" access-log lines dropped: stderr did not keep up\n");
      }
      // A batch only this list still holds belongs to a thread that has ended.
      it = it->use_count() == 1 ? batches_.erase(it) : it + 1;
    }
  }

  bool pending() {
    std::lock_guard lock(batches_mutex_);
    for (auto& batch : batches_) {
      std::lock_guard b(batch->mutex);
      if (!batch->text.empty() || batch->dropped > 0) return true;
    }
    return false;
  }

  void run() {
    std::string out;
    std::unique_lock lock(mutex_);
    while (true) {
      const bool stopping = stopping_;
      urgent_ = false;
      lock.unlock();
      out.clear();
      collect(out);
      write_all(out);
      if (stopping) return;
      bool wrote = !out.empty();
      if (!wrote) {
        // Quiet: sleep until a line arrives. A worker that adds a line after the check
        // below sees idle_ (the batch mutex orders the two) and wakes this thread.
        idle_.store(true);
        wrote = pending();
      }
      lock.lock();
      if (wrote) {
        cv_.wait_for(lock, kInterval, [this] { return urgent_ || stopping_; });
      } else {
        cv_.wait(lock, [this] { return urgent_ || stopping_; });
      }
      idle_.store(false);
    }
  }

  std::mutex batches_mutex_;
  std::vector<std::shared_ptr<Batch>> batches_;
  std::shared_ptr<Batch> misc_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool urgent_ = false;
  bool stopping_ = false;
  std::atomic<bool> idle_{false};
  std::thread thread_;
};

std::atomic<Writer*> writer{nullptr};
Writer* retired = nullptr;  // stopped; see shutdown_logging()

// spdlog's messages in serve mode: formatted with kPattern, written by the log thread.
class WriterSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    if (Writer* w = writer.load()) {
      w->message(std::string_view(formatted.data(), formatted.size()));
    } else {
      write_all(std::string_view(formatted.data(), formatted.size()));
    }
  }
  void flush_() override {}
};

}  // namespace

void init_logging(bool async) {
  std::shared_ptr<spdlog::logger> logger;
  if (async) {
    if (!writer.load()) writer.store(new Writer());
    logger = std::make_shared<spdlog::logger>("mailconfd", std::make_shared<WriterSink>());
  } else {
    logger = spdlog::stderr_logger_mt("mailconfd");
  }
  logger->set_pattern(kPattern, spdlog::pattern_time_type::utc);
  spdlog::set_default_logger(logger);
}

void shutdown_logging() {
  // Not deleted: a thread that has not ended yet may still hold it (its late lines go
  // nowhere). Reachable from here, so leak checkers do not count it.
  if (Writer* w = writer.exchange(nullptr)) {
    w->stop();
    retired = w;
  }
  spdlog::shutdown();
}

void log_access(std::string_view method, std::string_view path, int status, std::size_t bytes,
                long long micros, std::string_view client, std::optional<bool> secure) {
  thread_local std::string line;
  line.clear();
  append_stamp(line, "info");
  line.append(method);
  line.push_back(' ');
  line.append(path);
  line.push_back(' ');
  append_number(line, status);
  line.push_back(' ');
  append_number(line, bytes);
  line.push_back(' ');
  append_number(line, micros);
  line.append("us ");
  line.append(client);
  line.append(!secure ? " -\n" : *secure ? " https\n" : " http\n");

  Writer* w = writer.load();
  if (!w) {  // not serving (tests, CLI): straight to stderr
    write_all(line);
    return;
  }
  thread_local std::shared_ptr<Batch> batch;
  thread_local Writer* attached_to = nullptr;
  if (attached_to != w) {
    batch = w->attach();
    attached_to = w;
  }
  std::size_t size = 0;
  {
    std::lock_guard lock(batch->mutex);
    if (batch->text.size() + line.size() > kMaxBatchBytes) {
      ++batch->dropped;
      return;
    }
    batch->text.append(line);
    size = batch->text.size();
  }
  w->added(size);
}

}  // namespace mailconfd
