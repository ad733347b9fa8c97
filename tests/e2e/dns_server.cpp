#include "dns_server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace e2e {
namespace {

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

int udp_socket(std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = loopback(port);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

std::uint16_t local_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// A port that is free for both UDP and TCP right now.
std::uint16_t free_port() {
  for (int attempt = 0; attempt < 20; ++attempt) {
    const int u = udp_socket(0);
    if (u < 0) continue;
    const std::uint16_t port = local_port(u);
    const int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = loopback(port);
    const bool ok = t >= 0 && bind(t, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    if (t >= 0) close(t);
    close(u);
    if (ok) return port;
  }
  return 0;
}

// The question name of a DNS message, lowercase, with the final dot; "" if malformed.
std::string question_name(const unsigned char* p, std::size_t length) {
  std::string name;
  std::size_t at = 12;
  while (at < length) {
    const std::size_t label = p[at++];
    if (label == 0) return name.empty() ? "." : name;
    if (label > 63 || at + label > length) return {};
    for (std::size_t i = 0; i < label; ++i) {
      char c = static_cast<char>(p[at + i]);
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      name += c;
    }
    name += '.';
    at += label;
  }
  return {};
}

std::string query_packet(const std::string& name, int type) {
  std::string q = {'\x12', '\x34', '\x00', '\x00', '\x00', '\x01',
                   '\x00', '\x00', '\x00', '\x00', '\x00', '\x00'};
  std::size_t start = 0;
  while (start < name.size()) {
    std::size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    q += static_cast<char>(dot - start);
    q += name.substr(start, dot - start);
    start = dot + 1;
  }
  q += '\0';
  q += static_cast<char>(type >> 8);
  q += static_cast<char>(type & 0xff);
  q += '\x00';
  q += '\x01';
  return q;
}

}  // namespace

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/mailconfd-dns-XXXXXX";
  if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

void TempDir::write(const std::string& name, const std::string& text) const {
  std::ofstream(path_ + "/" + name, std::ios::binary) << text;
}

bool dns_answers(std::uint16_t port, const std::string& name, int timeout_ms) {
  const int fd = udp_socket(0);
  if (fd < 0) return false;
  const std::string q = query_packet(name, 6);  // SOA
  sockaddr_in to = loopback(port);
  sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  pollfd p{fd, POLLIN, 0};
  const bool answered = poll(&p, 1, timeout_ms) == 1;
  close(fd);
  return answered;
}

Nsd::Nsd(const std::string& dir, const std::vector<Zone>& zones) : dir_(dir) {
  // The port is free when chosen but could be taken before NSD binds it: try again then.
  for (int attempt = 0; attempt < 3 && !ready_; ++attempt) ready_ = start(dir, zones);
}

Nsd::~Nsd() { stop(); }

bool Nsd::start(const std::string& dir, const std::vector<Zone>& zones) {
  stop();
  port_ = free_port();
  if (port_ == 0) return false;
  std::ostringstream conf;
  conf << "server:\n"
       << "  ip-address: 127.0.0.1@" << port_ << "\n"
       << "  port: " << port_ << "\n"
       << "  do-ip6: no\n"
       << "  username: \"\"\n"
       << "  chroot: \"\"\n"
       << "  zonesdir: \"" << dir << "\"\n"
       << "  database: \"\"\n"
       << "  zonelistfile: \"" << dir << "/zone.list\"\n"
       << "  xfrdfile: \"" << dir << "/xfrd.state\"\n"
       << "  xfrdir: \"" << dir << "\"\n"
       << "  pidfile: \"" << dir << "/nsd.pid\"\n"
       << "  logfile: \"" << dir << "/nsd.log\"\n"
       << "  server-count: 1\n"
       << "  verbosity: 1\n"
       << "remote-control:\n"
       << "  control-enable: no\n";
  for (const Zone& z : zones) {
    conf << "zone:\n  name: " << z.name << "\n  zonefile: \"" << dir << "/" << z.name << ".db\"\n";
    if (!z.text.empty()) std::ofstream(dir + "/" + z.name + ".db", std::ios::binary) << z.text;
  }
  std::ofstream(dir + "/nsd.conf", std::ios::binary) << conf.str();

  const std::string config = dir + "/nsd.conf";
  const std::string out = dir + "/nsd.out";
  const char* binary = access("/usr/sbin/nsd", X_OK) == 0 ? "/usr/sbin/nsd" : "nsd";
  pid_ = fork();
  if (pid_ == 0) {
    setpgid(0, 0);  // its own group, so that stop() reaches NSD's worker processes too
    const int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execlp(binary, binary, "-d", "-c", config.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  if (pid_ < 0) return false;
  setpgid(pid_, pid_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    if (dns_answers(port_, zones.empty() ? "." : zones.front().name, 200)) return true;
  }
  return false;
}

void Nsd::stop() {
  if (pid_ <= 0) return;
  kill(-pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    usleep(20'000);
  }
  kill(-pid_, SIGKILL);  // workers that outlived their parent, if any
  pid_ = -1;
}

std::string Nsd::log() const {
  std::ostringstream s;
  for (const char* name : {"/nsd.out", "/nsd.log"}) {
    std::ifstream in(dir_ + name);
    s << in.rdbuf();
  }
  return s.str();
}

DroppingRelay::DroppingRelay(std::uint16_t upstream, std::string drop_domain)
    : drop_(std::move(drop_domain)) {
  front_ = udp_socket(0);
  back_ = udp_socket(0);
  port_ = front_ >= 0 ? local_port(front_) : 0;
  sockaddr_in to = loopback(upstream);
  if (back_ >= 0) connect(back_, reinterpret_cast<sockaddr*>(&to), sizeof to);
  thread_ = std::thread([this] { run(); });
}

DroppingRelay::~DroppingRelay() {
  stop_ = true;
  thread_.join();
  if (front_ >= 0) close(front_);
  if (back_ >= 0) close(back_);
}

void DroppingRelay::run() {
  std::map<std::uint16_t, sockaddr_in> clients;  // by DNS message id
  unsigned char buffer[65536];
  while (!stop_) {
    pollfd fds[2] = {{front_, POLLIN, 0}, {back_, POLLIN, 0}};
    if (poll(fds, 2, 50) <= 0) continue;
    if (fds[0].revents & POLLIN) {
      sockaddr_in from{};
      socklen_t len = sizeof from;
      const ssize_t n =
          recvfrom(front_, buffer, sizeof buffer, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n >= 12) {
        const std::string name = question_name(buffer, static_cast<std::size_t>(n));
        const std::string suffix = "." + drop_ + ".";
        if (name == drop_ + "." || (name.size() > suffix.size() && name.ends_with(suffix))) {
          ++dropped_;
        } else {
          clients[static_cast<std::uint16_t>(buffer[0] << 8 | buffer[1])] = from;
          send(back_, buffer, static_cast<std::size_t>(n), 0);
        }
      }
    }
    if (fds[1].revents & POLLIN) {
      const ssize_t n = recv(back_, buffer, sizeof buffer, 0);
      if (n >= 12) {
        auto it = clients.find(static_cast<std::uint16_t>(buffer[0] << 8 | buffer[1]));
        if (it != clients.end()) {
          sendto(front_, buffer, static_cast<std::size_t>(n), 0,
                 reinterpret_cast<sockaddr*>(&it->second), sizeof it->second);
        }
      }
    }
  }
}

}  // namespace e2e
