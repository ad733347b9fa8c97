// End-to-end test support: starts the real mailconfd binary on 127.0.0.1 port 0, reads its
// readiness line, and talks HTTP to it over plain sockets (no client library that might
// paper over framing). ~Service stops it with SIGTERM.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace e2e {

// GET of alice@example.com's autoconfig file over keep-alive HTTP/1.1.
inline const std::string kAliceGet =
    "GET /mail/config-v1.1.xml?emailaddress=alice%40example.com HTTP/1.1\r\nHost: x\r\n\r\n";

struct Response {
  int status = 0;
  std::string status_line;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool complete = false;  // a full response (head + Content-Length bytes) was read
  std::string header(std::string_view name) const;  // case-insensitive; "" if absent
  std::size_t count(std::string_view name) const;
};

// Parses one response from the front of bytes; removes it from bytes when complete.
Response take_response(std::string& bytes, bool head_only = false);

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Runs mailconfd with args (no shell), feeding nothing on stdin.
CommandResult run_mailconfd(const std::vector<std::string>& args);
CommandResult run_command(const std::vector<std::string>& argv);

// A connected client socket with timeouts.
class Connection {
 public:
  // source: the local address to connect from (IPv4; nullptr: the kernel's choice).
  Connection(std::uint16_t port, const char* host = "127.0.0.1", const char* source = nullptr);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  bool send(std::string_view bytes);
  // Reads until a full response is buffered, the peer closes, or timeout.
  Response read_response(std::chrono::milliseconds timeout = std::chrono::seconds(5),
                         bool head_only = false);
  // Reads everything until the peer closes or timeout; closed() tells which.
  std::string read_all(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  bool closed() const { return closed_; }
  // True if the peer closes (EOF or reset) within timeout.
  bool wait_closed(std::chrono::milliseconds timeout);
  int fd() const { return fd_; }

 private:
  bool fill(std::chrono::milliseconds timeout);
  int fd_ = -1;
  bool closed_ = false;
  std::string buffer_;
};

class Service {
 public:
  // stderr_path: where its stderr goes (a FIFO, say); a fresh file by default.
  explicit Service(std::vector<std::string> extra_args = {}, bool expect_ready = true,
                   std::string stderr_path = "");
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  std::uint16_t port() const { return port_; }
  // From the second readiness line, "listening on https://127.0.0.1:PORT" (only read when
  // extra_args contain --tls-listen); 0 without it.
  std::uint16_t tls_port() const { return tls_port_; }
  std::uint16_t metrics_port() const { return metrics_port_; }  // 0: no metrics listener
  bool ready() const { return port_ != 0; }
  // One request on a fresh connection; Host defaults to "localhost".
  Response get(const std::string& target, const std::vector<std::string>& headers = {});
  Response request(const std::string& raw);
  void signal(int sig);
  // Waits for the process to exit; returns its exit status or -1 on timeout / signal.
  int wait_exit(std::chrono::milliseconds timeout);
  std::string log() const;  // what it wrote to stderr so far
  int pid() const { return pid_; }

 private:
  int pid_ = -1;
  std::uint16_t port_ = 0;
  std::uint16_t tls_port_ = 0;
  std::uint16_t metrics_port_ = 0;
  std::string log_path_;
  bool exited_ = false;
  int exit_status_ = -1;
};

std::string fixture(const std::string& name);  // path of tests/fixtures/NAME
std::string read_file(const std::string& path);
std::string golden(const std::string& name);  // contents of tests/golden/NAME
std::string temp_dir();                       // fresh directory, removed at exit
// True once the service's log holds text, polling every 50 ms for at most timeout.
bool wait_for_log(const Service& s, const std::string& text, std::chrono::milliseconds timeout);
// A TCP port on 127.0.0.1 that was free a moment ago (for servers a test starts itself).
std::uint16_t free_tcp_port();

}  // namespace e2e
