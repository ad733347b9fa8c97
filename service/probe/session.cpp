#include "probe/session.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <ctime>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "core/ascii.h"
#include "probe/report.h"
#include "sign/openssl.h"

namespace mailconfd::probe {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxLine = 8 * 1024;

std::optional<std::uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value == 0 || value > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(value);
}

std::string address_text(const sockaddr* address, bool with_port) {
  char host[INET6_ADDRSTRLEN] = {};
  std::uint16_t port = 0;
  bool v6 = false;
  if (address->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
    v6 = true;
  } else {
    const auto* in4 = reinterpret_cast<const sockaddr_in*>(address);
    ::inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
    port = ntohs(in4->sin_port);
  }
  if (!with_port) return host;
  return v6 ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

std::string time_text(const ASN1_TIME* time) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(time, &tm) != 1) return "(unreadable date)";
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buffer;
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_timeout(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  unsigned long number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + digits, number);
  if (digits == 0 || ec != std::errc{} || number > 600'000) return std::nullopt;
  const std::string_view unit = text.substr(digits);
  std::chrono::milliseconds value{0};
  if (unit == "ms") {
    value = std::chrono::milliseconds(number);
  } else if (unit == "s" || unit.empty()) {
    value = std::chrono::seconds(number);
  } else if (unit == "m") {
    value = std::chrono::minutes(number);
  } else {
    return std::nullopt;
  }
  if (value < std::chrono::milliseconds(100) || value > std::chrono::minutes(10)) {
    return std::nullopt;
  }
  return value;
}

std::optional<ConnectTo> parse_connect_to(std::string_view text) {
  ConnectTo out;
  const auto first = text.find(':');
  if (first == std::string_view::npos || first == 0) return std::nullopt;
  out.host = ascii_lower(text.substr(0, first));
  text.remove_prefix(first + 1);
  const auto second = text.find(':');
  if (second == std::string_view::npos) return std::nullopt;
  const auto port = parse_port(text.substr(0, second));
  text.remove_prefix(second + 1);
  const auto last = text.rfind(':');
  if (!port || last == std::string_view::npos || last == 0) return std::nullopt;
  const auto to_port = parse_port(text.substr(last + 1));
  std::string_view to_host = text.substr(0, last);
  if (to_host.size() > 2 && to_host.front() == '[' && to_host.back() == ']') {
    to_host = to_host.substr(1, to_host.size() - 2);
  }
  if (!to_port || to_host.empty()) return std::nullopt;
  out.port = *port;
  out.to_host = std::string(to_host);
  out.to_port = *to_port;
  return out;
}

Session::Session(int fd, std::chrono::milliseconds timeout, std::string ca_file)
    : fd_(fd),
      timeout_(timeout),
      end_(Clock::now() + kSessionTimeouts * timeout),
      ca_file_(std::move(ca_file)) {}

Session::~Session() {
  if (ssl_ != nullptr) {
    if (!tls_failed_)
      SSL_shutdown(ssl_);  // one non-blocking attempt at close_notify; the reply is not awaited
    SSL_free(ssl_);
  }
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  if (fd_ >= 0) ::close(fd_);
}

std::unique_ptr<Session> Session::open(const std::string& host, std::uint16_t port,
                                       const Options& options, std::string& error) {
  std::string connect_host = host;
  std::uint16_t connect_port = port;
  for (const ConnectTo& rule : options.connect_to) {
    if (rule.host == host && rule.port == port) {
      connect_host = rule.to_host;
      connect_port = rule.to_port;
      break;  // the first matching rule wins, as with curl
    }
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(connect_port);
  if (const int rc = ::getaddrinfo(connect_host.c_str(), service.c_str(), &hints, &found);
      rc != 0) {
    error = fmt::format("cannot resolve {}: {}", connect_host, ::gai_strerror(rc));
    return nullptr;
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, &::freeaddrinfo);
  error = fmt::format("no address for {}", connect_host);
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) continue;
    std::unique_ptr<Session> session(new Session(fd, options.timeout, options.ca_file));
    const std::string target = address_text(a->ai_addr, true);
    if (!options.source.empty()) {
      addrinfo source_hints{};
      source_hints.ai_family = a->ai_family;
      source_hints.ai_socktype = SOCK_STREAM;
      source_hints.ai_flags = AI_NUMERICHOST;
      addrinfo* source = nullptr;
      if (::getaddrinfo(options.source.c_str(), nullptr, &source_hints, &source) != 0) {
        error = fmt::format("--source {} is not an address of {}'s family", options.source, target);
        continue;
      }
      const int bound = ::bind(fd, source->ai_addr, source->ai_addrlen);
      const int bind_errno = errno;
      ::freeaddrinfo(source);
      if (bound != 0) {
        error =
            fmt::format("cannot connect from {}: {}", options.source, std::strerror(bind_errno));
        continue;
      }
    }
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        error = fmt::format("cannot connect to {}: {}", target, std::strerror(errno));
        continue;
      }
      if (!session->wait(true, Clock::now() + options.timeout)) {
        error = fmt::format("no connection to {} within {} ms", target, options.timeout.count());
        continue;
      }
      int so_error = 0;
      socklen_t length = sizeof so_error;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &length);
      if (so_error != 0) {
        error = fmt::format("cannot connect to {}: {}", target, std::strerror(so_error));
        continue;
      }
    }
    sockaddr_storage local{};
    socklen_t local_length = sizeof local;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_length);
    session->peer_ = target;
    session->local_ = address_text(reinterpret_cast<sockaddr*>(&local), false);
    session->local_v6_ = local.ss_family == AF_INET6;
    error.clear();
    return session;
  }
  return nullptr;
}

Clock::time_point Session::step_deadline() const { return std::min(Clock::now() + timeout_, end_); }

bool Session::wait(bool for_write, Clock::time_point deadline) {
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
    const int rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return false;
  }
}

// Reads into read_into or writes write_from (exactly one is non-null); returns bytes moved,
// 0 for an orderly close, -1 for an error or timeout (error_ says which).
long Session::transfer(char* read_into, const char* write_from, std::size_t size,
                       Clock::time_point deadline) {
  while (true) {
    bool want_write = write_from != nullptr;
    if (ssl_ != nullptr) {
      ERR_clear_error();
      const int n = read_into != nullptr ? SSL_read(ssl_, read_into, static_cast<int>(size))
                                         : SSL_write(ssl_, write_from, static_cast<int>(size));
      if (n > 0) return n;
      const int reason = SSL_get_error(ssl_, n);
      if (reason == SSL_ERROR_ZERO_RETURN) return 0;
      if (reason != SSL_ERROR_WANT_READ && reason != SSL_ERROR_WANT_WRITE) {
        tls_failed_ = true;
        error_ = reason == SSL_ERROR_SYSCALL && ERR_peek_error() == 0
                     ? "connection closed without TLS close_notify"
                     : "TLS error: " + sign::openssl_error("handshake failed");
        return -1;
      }
      want_write = reason == SSL_ERROR_WANT_WRITE;
    } else {
      const ssize_t n = read_into != nullptr ? ::recv(fd_, read_into, size, 0)
                                             : ::send(fd_, write_from, size, MSG_NOSIGNAL);
      if (n >= 0) return n;
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        error_ = std::strerror(errno);
        return -1;
      }
    }
    if (!wait(want_write, deadline)) {
      error_ = Clock::now() >= end_ ? fmt::format("gave up: this server's probe took over {} ms",
                                                  (kSessionTimeouts * timeout_).count())
                                    : fmt::format("no answer within {} ms", timeout_.count());
      return -1;
    }
  }
}

bool Session::write_line(std::string_view line) {
  const std::string bytes = std::string(line) + "\r\n";
  std::size_t sent = 0;
  const auto deadline = step_deadline();
  while (sent < bytes.size()) {
    const long n = transfer(nullptr, bytes.data() + sent, bytes.size() - sent, deadline);
    if (n <= 0) {
      if (n == 0) error_ = "connection closed";
      return false;
    }
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

std::optional<std::string> Session::read_line() {
  const auto deadline = step_deadline();  // for the whole line, however it is split
  while (true) {
    if (const auto end = buffer_.find('\n'); end != std::string::npos) {
      std::string line = buffer_.substr(0, end);
      buffer_.erase(0, end + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return line;
    }
    if (buffer_.size() > kMaxLine) {
      error_ = "line longer than 8 KiB";
      return std::nullopt;
    }
    char chunk[4096];
    const long n = transfer(chunk, nullptr, sizeof chunk, deadline);
    if (n <= 0) {
      if (n == 0) error_ = "connection closed by the server";
      return std::nullopt;
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
}

std::optional<Certificate> Session::start_tls(const std::string& host, std::string& error) {
  if (!buffer_.empty()) {
    // RFC 3207 §4.2 / CVE-2011-0411: anything sent before the handshake could be replayed as
    // if it had come over TLS.
    error = "the server sent plaintext after its go-ahead, before the TLS handshake";
    return std::nullopt;
  }
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (ctx_ == nullptr) {
    error = "TLS setup failed: " + sign::openssl_error("handshake failed");
    return std::nullopt;
  }
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  // The handshake must finish even for a bad certificate so that each fault can be named;
  // the verdict comes from SSL_get_verify_result below, never from a completed handshake.
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
  const bool trust_loaded =
      ca_file_.empty() ? SSL_CTX_set_default_verify_paths(ctx_) == 1
                       : SSL_CTX_load_verify_locations(ctx_, ca_file_.c_str(), nullptr) == 1;
  if (!trust_loaded) {
    error = fmt::format("cannot load trusted certificates{}: {}",
                        ca_file_.empty() ? "" : " from " + ca_file_,
                        sign::openssl_error("handshake failed"));
    return std::nullopt;
  }
  ssl_ = SSL_new(ctx_);
  if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_) != 1 ||
      SSL_set_tlsext_host_name(ssl_, host.c_str()) != 1) {
    error = "TLS setup failed: " + sign::openssl_error("handshake failed");
    return std::nullopt;
  }
  const auto deadline = step_deadline();
  while (true) {
    ERR_clear_error();
    const int rc = SSL_connect(ssl_);
    if (rc == 1) break;
    const int reason = SSL_get_error(ssl_, rc);
    if (reason != SSL_ERROR_WANT_READ && reason != SSL_ERROR_WANT_WRITE) {
      tls_failed_ = true;
      error = "TLS handshake failed: " + sanitize(sign::openssl_error("handshake failed"));
      return std::nullopt;
    }
    if (!wait(reason == SSL_ERROR_WANT_WRITE, deadline)) {
      tls_failed_ = true;
      error = fmt::format("TLS handshake did not finish within {} ms", timeout_.count());
      return std::nullopt;
    }
  }
  Certificate out;
  out.protocol = SSL_get_version(ssl_);
  std::unique_ptr<X509, decltype(&X509_free)> leaf(SSL_get1_peer_certificate(ssl_), &X509_free);
  if (!leaf) {
    error = "the server sent no certificate";
    return std::nullopt;
  }
  char subject[256] = {};
  X509_NAME_oneline(X509_get_subject_name(leaf.get()), subject, sizeof subject);
  out.subject = sanitize(subject);
  const long verify = SSL_get_verify_result(ssl_);
  out.chain_ok = verify == X509_V_OK;
  if (!out.chain_ok) out.chain_error = X509_verify_cert_error_string(verify);

  int days = 0, seconds = 0;
  const ASN1_TIME* not_after = X509_get0_notAfter(leaf.get());
  const bool started = X509_cmp_current_time(X509_get0_notBefore(leaf.get())) < 0;
  const bool diff_ok = ASN1_TIME_diff(&days, &seconds, nullptr, not_after) == 1;
  const bool expired = !diff_ok || days < 0 || (days == 0 && seconds <= 0);
  if (!started) {
    out.dates = "not valid before " + time_text(X509_get0_notBefore(leaf.get()));
  } else if (expired) {
    out.dates = "expired " + time_text(not_after);
  } else {
    out.dates = fmt::format("valid until {} ({} days)", time_text(not_after), days);
  }
  out.dates_ok = started && !expired && days >= kExpiryWarningDays;
  if (started && !expired && !out.dates_ok) {
    out.dates += fmt::format("; renew it: fewer than {} days left", kExpiryWarningDays);
  }
  out.name_ok = X509_check_host(leaf.get(), host.data(), host.size(), 0, nullptr) == 1;
  return out;
}

}  // namespace mailconfd::probe
