#include "service.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace e2e {
namespace {

using Clock = std::chrono::steady_clock;

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

}  // namespace

std::string Response::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequal(k, name)) return v;
  }
  return {};
}

std::size_t Response::count(std::string_view name) const {
  std::size_t n = 0;
  for (const auto& [k, v] : headers) n += iequal(k, name) ? 1 : 0;
  return n;
}

Response take_response(std::string& bytes, bool head_only) {
  Response r;
  const auto end = bytes.find("\r\n\r\n");
  if (end == std::string::npos) return r;
  std::istringstream head(bytes.substr(0, end));
  std::string line;
  std::getline(head, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  r.status_line = line;
  if (line.size() >= 12) r.status = std::atoi(line.substr(9, 3).c_str());
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    r.headers.emplace_back(line.substr(0, colon), value);
  }
  std::size_t length = 0;
  if (!head_only && r.status != 100 && r.status != 204 && r.status != 304) {
    length = static_cast<std::size_t>(std::atoll(r.header("Content-Length").c_str()));
  }
  if (bytes.size() < end + 4 + length) return Response{};
  r.body = bytes.substr(end + 4, length);
  r.complete = true;
  bytes.erase(0, end + 4 + length);
  return r;
}

Connection::Connection(std::uint16_t port, const char* host, const char* source) {
  const bool v6 = std::strchr(host, ':') != nullptr;
  fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int rc = -1;
  if (v6) {
    sockaddr_in6 addr{};
    addr.sin6_family = AF_INET6;
    addr.sin6_port = htons(port);
    inet_pton(AF_INET6, host, &addr.sin6_addr);
    rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  } else {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    if (source != nullptr) {
      inet_pton(AF_INET, source, &addr.sin_addr);
      if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) closed_ = true;
    }
    addr.sin_port = htons(port);
    inet_pton(AF_INET, host, &addr.sin_addr);
    if (!closed_) rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  }
  if (rc != 0) closed_ = true;
}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
}

bool Connection::send(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool Connection::fill(std::chrono::milliseconds timeout) {
  if (closed_) return false;
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
  char buffer[65536];
  const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
  if (n <= 0) {
    closed_ = true;
    return false;
  }
  buffer_.append(buffer, static_cast<std::size_t>(n));
  return true;
}

Response Connection::read_response(std::chrono::milliseconds timeout, bool head_only) {
  const auto until = Clock::now() + timeout;
  while (true) {
    std::string copy = buffer_;
    Response r = take_response(copy, head_only);
    if (r.complete) {
      buffer_ = copy;
      return r;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    if (left.count() <= 0 || !fill(left)) return Response{};
  }
}

std::string Connection::read_all(std::chrono::milliseconds timeout) {
  const auto until = Clock::now() + timeout;
  while (!closed_) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    if (left.count() <= 0 || !fill(left)) break;
  }
  std::string out = std::move(buffer_);
  buffer_.clear();
  return out;
}

bool Connection::wait_closed(std::chrono::milliseconds timeout) {
  read_all(timeout);
  return closed_;
}

CommandResult run_command(const std::vector<std::string>& argv) {
  const std::string dir = temp_dir();
  const std::string out_path = dir + "/out", err_path = dir + "/err";
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(in, 0), ::dup2(out, 1), ::dup2(err, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_file(out_path);
  result.err = read_file(err_path);
  return result;
}

CommandResult run_mailconfd(const std::vector<std::string>& args) {
  std::vector<std::string> argv{MAILCONFD_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

Service::Service(std::vector<std::string> extra_args, bool expect_ready, std::string stderr_path) {
  log_path_ = stderr_path.empty() ? temp_dir() + "/stderr.log" : std::move(stderr_path);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  std::vector<std::string> argv{MAILCONFD_BINARY, "serve", "--listen", "127.0.0.1:0"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  pid_ = ::fork();
  if (pid_ == 0) {
    const int err = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(pipe_fds[1], 1);
    ::dup2(err, 2);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  // Readiness: "listening on http://127.0.0.1:PORT" (after an optional "metrics on
  // http://127.0.0.1:PORT/metrics"), and with --tls-listen "listening on https://127.0.0.1:PORT".
  const bool tls =
      std::find(extra_args.begin(), extra_args.end(), "--tls-listen") != extra_args.end();
  const std::string prefix = "listening on http://127.0.0.1:";
  const std::string tls_prefix = "listening on https://127.0.0.1:";
  const std::string metrics_prefix = "metrics on http://127.0.0.1:";
  std::string lines;
  auto complete = [&](const std::string& p) {
    const auto at = lines.find(p);
    return at != std::string::npos && lines.find('\n', at) != std::string::npos;
  };
  auto ready = [&] { return complete(prefix) && (!tls || complete(tls_prefix)); };
  const auto until = Clock::now() + std::chrono::seconds(expect_ready ? 20 : 5);
  while (!ready() && Clock::now() < until) {
    pollfd p{pipe_fds[0], POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char c[256];
    const ssize_t n = ::read(pipe_fds[0], c, sizeof c);
    if (n <= 0) break;
    lines.append(c, static_cast<std::size_t>(n));
  }
  ::close(pipe_fds[0]);
  if (lines.starts_with(metrics_prefix))
    metrics_port_ = static_cast<std::uint16_t>(std::atoi(lines.c_str() + metrics_prefix.size()));
  if (complete(prefix))
    port_ =
        static_cast<std::uint16_t>(std::atoi(lines.c_str() + lines.find(prefix) + prefix.size()));
  if (complete(tls_prefix))
    tls_port_ = static_cast<std::uint16_t>(
        std::atoi(lines.c_str() + lines.find(tls_prefix) + tls_prefix.size()));
}

Service::~Service() {
  if (pid_ > 0 && !exited_) {
    ::kill(pid_, SIGTERM);
    if (wait_exit(std::chrono::seconds(10)) == -1 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
}

Response Service::get(const std::string& target, const std::vector<std::string>& headers) {
  std::string raw = "GET " + target + " HTTP/1.1\r\n";
  bool has_host = false;
  for (const auto& h : headers) has_host = has_host || iequal(h.substr(0, 5), "host:");
  if (!has_host) raw += "Host: localhost\r\n";
  for (const auto& h : headers) raw += h + "\r\n";
  raw += "\r\n";
  return request(raw);
}

Response Service::request(const std::string& raw) {
  Connection c(port_);
  c.send(raw);
  return c.read_response(std::chrono::seconds(5), raw.starts_with("HEAD "));
}

void Service::signal(int sig) { ::kill(pid_, sig); }

int Service::wait_exit(std::chrono::milliseconds timeout) {
  if (exited_) return exit_status_;
  const auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      return exit_status_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

std::string Service::log() const { return read_file(log_path_); }

std::string fixture(const std::string& name) {
  return std::string(MAILCONFD_SOURCE_DIR) + "/tests/fixtures/" + name;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string golden(const std::string& name) {
  return read_file(std::string(MAILCONFD_SOURCE_DIR) + "/tests/golden/" + name);
}

bool wait_for_log(const Service& s, const std::string& text, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (s.log().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::uint16_t free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t length = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string temp_dir() {
  static const std::string root = [] {
    char pattern[] = "/tmp/mailconfd-e2e-XXXXXX";
    return std::string(::mkdtemp(pattern));
  }();
  // Removed when the test binary exits.
  static const struct Cleanup {
    ~Cleanup() { std::filesystem::remove_all(root); }
  } cleanup;
  static int counter = 0;
  const std::string dir = root + "/" + std::to_string(++counter);
  ::mkdir(dir.c_str(), 0700);
  return dir;
}

}  // namespace e2e
