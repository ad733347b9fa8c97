// A real authoritative DNS server for the `dns check` tests: NSD (Debian package nsd) on
// 127.0.0.1 and a free port, with its config and zones in a temporary directory; and a UDP
// relay in front of it that silently drops queries for one domain (a real, bounded timeout).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace e2e {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  void write(const std::string& name, const std::string& text) const;

 private:
  std::string path_;
};

struct Zone {
  std::string name;  // "good.example"
  std::string text;  // zone file; empty: configured without a file (NSD answers SERVFAIL)
};

class Nsd {
 public:
  // Writes the zones and nsd.conf into dir and starts `nsd -d` in its own process group.
  // ready() tells whether it answers queries (waits up to 10 s).
  Nsd(const std::string& dir, const std::vector<Zone>& zones);
  ~Nsd();  // SIGTERM to its process group, SIGKILL after 5 s, reaped
  Nsd(const Nsd&) = delete;
  Nsd& operator=(const Nsd&) = delete;
  bool ready() const { return ready_; }
  std::uint16_t port() const { return port_; }
  std::string log() const;  // nsd's own log, for failure messages

 private:
  bool start(const std::string& dir, const std::vector<Zone>& zones);
  void stop();
  std::string dir_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  bool ready_ = false;
};

// UDP relay 127.0.0.1:port() → 127.0.0.1:upstream that never forwards queries for names at
// or below drop_domain.
class DroppingRelay {
 public:
  DroppingRelay(std::uint16_t upstream, std::string drop_domain);
  ~DroppingRelay();
  DroppingRelay(const DroppingRelay&) = delete;
  DroppingRelay& operator=(const DroppingRelay&) = delete;
  std::uint16_t port() const { return port_; }
  int dropped() const { return dropped_.load(); }

 private:
  void run();
  int front_ = -1;
  int back_ = -1;
  std::uint16_t port_ = 0;
  std::string drop_;
  std::atomic<bool> stop_{false};
  std::atomic<int> dropped_{0};
  std::thread thread_;
};

// Sends one DNS query for name/type to 127.0.0.1:port over UDP; true if any reply arrives
// within timeout_ms.
bool dns_answers(std::uint16_t port, const std::string& name, int timeout_ms);

}  // namespace e2e
