#include "http/tls_listener.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include "http/listen_socket.h"
#include "sign/openssl.h"
#include "tls/context.h"

namespace mailconfd::http {
namespace {

constexpr auto kScanInterval = std::chrono::milliseconds(100);
// After accept() fails for lack of descriptors, the listener rests this long instead of
// spinning on a level-triggered socket (pistache.md #13).
constexpr auto kAcceptPause = std::chrono::milliseconds(100);
constexpr int kMaxAcceptsPerWakeup = 64;

// A socket BIO of our own: send() with MSG_NOSIGNAL, so an aborting peer can never raise
// SIGPIPE, whatever the process's signal disposition (OpenSSL's socket BIO uses write()).
int bio_write(BIO* bio, const char* data, int length) {
  const int fd = static_cast<int>(reinterpret_cast<std::intptr_t>(BIO_get_data(bio)));
  BIO_clear_retry_flags(bio);
  while (true) {
    const ssize_t n = ::send(fd, data, static_cast<std::size_t>(length), MSG_NOSIGNAL);
    if (n >= 0) return static_cast<int>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(bio);
    return -1;
  }
}

int bio_read(BIO* bio, char* data, int length) {
  const int fd = static_cast<int>(reinterpret_cast<std::intptr_t>(BIO_get_data(bio)));
  BIO_clear_retry_flags(bio);
  while (true) {
    const ssize_t n = ::recv(fd, data, static_cast<std::size_t>(length), 0);
    if (n >= 0) return static_cast<int>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_read(bio);
    return -1;
  }
}

long bio_ctrl(BIO*, int command, long, void*) { return command == BIO_CTRL_FLUSH ? 1 : 0; }

int bio_puts(BIO* bio, const char* text) {
  return bio_write(bio, text, static_cast<int>(std::strlen(text)));
}

const BIO_METHOD* socket_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mailconfd socket");
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_puts(m, bio_puts);
    BIO_meth_set_ctrl(m, bio_ctrl);
    return m;
  }();
  return method;
}

struct TlsConnection {
  int fd = -1;
  SSL* ssl = nullptr;
  std::uint32_t events = 0;  // current epoll interest
  Clock::time_point handshake_deadline;
  std::optional<Session> session;  // from the end of the handshake
  std::string pending;             // answer bytes SSL_write has not taken yet
  bool fin_after_write = false;    // the session is Closing: close_notify + FIN once written
  bool read_wants_write = false;   // SSL_read asked for writability
  bool finished = false;           // close_notify and FIN sent; input is discarded
  bool dead = false;               // to be closed by the loop
};

}  // namespace

struct TlsListener::Loop {
  ServerState& state;
  int listen_fd;
  int epoll_fd = -1;
  int wake_fd = -1;
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> busy{0};
  std::unordered_map<int, std::unique_ptr<TlsConnection>> connections;
  std::optional<Clock::time_point> paused_until;
  std::thread thread;

  Loop(ServerState& s, int listen) : state(s), listen_fd(listen) {
    epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epoll_fd < 0 || wake_fd < 0) throw std::runtime_error(std::strerror(errno));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wake_fd;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &ev);
    watch_listener();
  }

  ~Loop() {
    for (auto& [fd, c] : connections) release(*c);
    if (wake_fd >= 0) ::close(wake_fd);
    if (epoll_fd >= 0) ::close(epoll_fd);
  }

  // Every loop waits on the one listening socket; EPOLLEXCLUSIVE wakes one of them per
  // connection instead of all.
  void watch_listener() {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.fd = listen_fd;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev);
  }

  void run() {
    epoll_event events[64];
    auto next_scan = Clock::now() + kScanInterval;
    while (!stopping.load()) {
      const int n = ::epoll_wait(epoll_fd, events, 64, static_cast<int>(kScanInterval.count()));
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == wake_fd) {
          std::uint64_t value = 0;
          (void)::read(wake_fd, &value, sizeof value);
        } else if (fd == listen_fd) {
          accept_all();
        } else if (auto it = connections.find(fd); it != connections.end()) {
          TlsConnection& c = *it->second;
          if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
          if (!c.dead && (events[i].events & EPOLLOUT)) on_writable(c);
          if (c.dead) close_connection(it);
        }
      }
      const auto now = Clock::now();
      if (now >= next_scan) {
        scan(now);
        next_scan = now + kScanInterval;
      }
    }
  }

  void accept_all() {
    if (state.draining.load()) {
      // Stop watching, or the level-triggered socket would wake this loop for ever.
      ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, listen_fd, nullptr);
      paused_until.reset();
      return;
    }
    for (int i = 0; i < kMaxAcceptsPerWakeup; ++i) {
      const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          spdlog::warn("https: accept: {}; pausing for {}ms", std::strerror(errno),
                       kAcceptPause.count());
          ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, listen_fd, nullptr);
          paused_until = Clock::now() + kAcceptPause;
        }
        return;
      }
      accept_one(fd);
    }
  }

  void accept_one(int fd) {
    const auto app = state.app.load();
    const Limits& limits = app->config.server.limits;
    const auto& tls = app->config.server.tls;
    const std::size_t open = state.opened(true);
    if (open > limits.max_connections || !tls || !tls->context) {
      // Nothing can be answered before a handshake; refusing costs the least.
      state.closed(true);
      ::close(fd);
      return;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ERR_clear_error();
    SSL* ssl = SSL_new(tls->context->get());
    BIO* bio = ssl ? BIO_new(socket_method()) : nullptr;
    if (!bio) {
      spdlog::error("https: cannot create a TLS session: {}", sign::openssl_error());
      if (ssl) SSL_free(ssl);
      state.closed(true);
      ::close(fd);
      return;
    }
    BIO_set_data(bio, reinterpret_cast<void*>(static_cast<std::intptr_t>(fd)));
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl, bio, bio);
    SSL_set_accept_state(ssl);
    auto owned = std::make_unique<TlsConnection>();
    TlsConnection& c = *owned;
    c.fd = fd;
    c.ssl = ssl;
    c.handshake_deadline = Clock::now() + tls->handshake_timeout;
    c.events = EPOLLIN;
    epoll_event ev{};
    ev.events = c.events;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
    auto it = connections.emplace(fd, std::move(owned)).first;
    handshake(c);  // the ClientHello may be there already
    if (c.dead) close_connection(it);
  }

  void set_interest(TlsConnection& c, std::uint32_t events) {
    if (c.events == events) return;
    c.events = events;
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = c.fd;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c.fd, &ev);
  }

  // Every SSL_* call below starts with an empty error queue and ends with SSL_get_error;
  // a failure's queue entries are dropped so they cannot leak into the next connection's
  // calls on this thread (pistache.md #19).
  void handshake(TlsConnection& c) {
    ERR_clear_error();
    const int r = SSL_do_handshake(c.ssl);
    if (r == 1) {
      const auto app = state.app.load();
      c.session.emplace(Clock::now(), app->config.server.limits, true, state.surface);
      set_interest(c, EPOLLIN);
      read_records(c);  // the request may have come with the client's Finished
      return;
    }
    switch (SSL_get_error(c.ssl, r)) {
      case SSL_ERROR_WANT_READ:
        set_interest(c, EPOLLIN);
        return;
      case SSL_ERROR_WANT_WRITE:
        set_interest(c, EPOLLIN | EPOLLOUT);
        return;
      default:
        spdlog::debug("https: handshake failed: {}", sign::openssl_error());
        ERR_clear_error();
        c.dead = true;
    }
  }

  void on_readable(TlsConnection& c) {
    if (!c.session) return handshake(c);
    if (c.finished) return discard_input(c);
    read_records(c);
  }

  void on_writable(TlsConnection& c) {
    if (!c.session) return handshake(c);
    if (c.finished) return;
    if (!c.pending.empty()) {
      std::string pending = std::move(c.pending);
      c.pending.clear();
      write(c, pending);
      if (!c.pending.empty() || c.dead) return;
      set_interest(c, EPOLLIN);
      if (c.fin_after_write) return finish(c);
    }
    if (c.read_wants_write) {
      c.read_wants_write = false;
      set_interest(c, EPOLLIN);
      read_records(c);
    }
  }

  void read_records(TlsConnection& c) {
    thread_local char buffer[16 * 1024];
    while (!c.dead && !c.finished) {
      ERR_clear_error();
      const int n = SSL_read(c.ssl, buffer, sizeof buffer);
      if (n > 0) {
        feed(c, std::string_view(buffer, static_cast<std::size_t>(n)));
        continue;
      }
      switch (SSL_get_error(c.ssl, n)) {
        case SSL_ERROR_WANT_READ:
          return;
        case SSL_ERROR_WANT_WRITE:
          c.read_wants_write = true;
          set_interest(c, EPOLLIN | EPOLLOUT);
          return;
        default:  // close_notify, EOF, reset or a protocol error: the client is gone
          ERR_clear_error();
          c.dead = true;
          return;
      }
    }
  }

  void feed(TlsConnection& c, std::string_view bytes) {
    const auto app = state.app.load();
    thread_local std::string out;
    out.clear();
    const bool closing = c.session->on_input(bytes, *app, state.draining.load(), out);
    if (!out.empty()) write(c, out);
    if (closing) {
      c.fin_after_write = true;
      if (c.pending.empty() && !c.dead) finish(c);
    }
  }

  // Writes in order; what SSL_write cannot take now waits in pending for EPOLLOUT.
  void write(TlsConnection& c, std::string_view data) {
    if (!c.pending.empty()) {
      c.pending.append(data);
      return;
    }
    while (!data.empty()) {
      ERR_clear_error();
      const int n = SSL_write(c.ssl, data.data(), static_cast<int>(data.size()));
      if (n > 0) {
        data.remove_prefix(static_cast<std::size_t>(n));
        continue;
      }
      switch (SSL_get_error(c.ssl, n)) {
        case SSL_ERROR_WANT_WRITE:
        case SSL_ERROR_WANT_READ:
          c.pending.assign(data);
          set_interest(c, EPOLLIN | EPOLLOUT);
          return;
        default:
          ERR_clear_error();
          c.dead = true;
          return;
      }
    }
  }

  // The last answer is written: close_notify, then FIN; the socket lingers until the client
  // closes or kLinger passes, so the answer is not destroyed by an RST.
  void finish(TlsConnection& c) {
    ERR_clear_error();
    const int r = SSL_shutdown(c.ssl);
    if (r < 0) {
      (void)SSL_get_error(c.ssl, r);  // nothing to retry: FIN follows either way
      ERR_clear_error();
    }
    ::shutdown(c.fd, SHUT_WR);
    c.finished = true;
    c.session->close(Clock::now());
    set_interest(c, EPOLLIN);
  }

  void discard_input(TlsConnection& c) {
    char buffer[4096];
    while (true) {
      const ssize_t n = ::recv(c.fd, buffer, sizeof buffer, 0);
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      c.dead = true;  // EOF or error
      return;
    }
  }

  void scan(Clock::time_point now) {
    if (paused_until && now >= *paused_until && !state.draining.load()) {
      paused_until.reset();
      watch_listener();
    }
    const bool draining = state.draining.load();
    std::size_t in_flight = 0;
    for (auto it = connections.begin(); it != connections.end();) {
      TlsConnection& c = *it->second;
      if (!c.session) {
        if (now >= c.handshake_deadline || draining) c.dead = true;
      } else if (c.session->deadline <= now ||
                 (draining && c.session->state == State::Idle && c.pending.empty())) {
        if (!c.finished && c.session->in_flight() && c.pending.empty()) write(c, timeout_answer());
        if (!c.finished && !c.dead && c.pending.empty()) finish(c);
        c.dead = true;
      }
      if (!c.dead && (c.pending.size() > 0 || (c.session && c.session->in_flight()))) ++in_flight;
      if (c.dead) {
        it = close_connection(it);
      } else {
        ++it;
      }
    }
    busy.store(in_flight);
  }

  using Iterator = std::unordered_map<int, std::unique_ptr<TlsConnection>>::iterator;

  Iterator close_connection(Iterator it) {
    release(*it->second);
    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, it->first, nullptr);
    return connections.erase(it);
  }

  void release(TlsConnection& c) {
    if (c.ssl) SSL_free(c.ssl);
    c.ssl = nullptr;
    if (c.fd >= 0) ::close(c.fd);
    c.fd = -1;
    state.closed(true);
  }
};

TlsListener::TlsListener(std::shared_ptr<ServerState> state) : state_(std::move(state)) {}

TlsListener::~TlsListener() { stop(); }

void TlsListener::start(const ListenAddress& listen, unsigned threads) {
  const ListenSocket socket = open_listen_socket(listen, listen.port, PortGroup::None, SOMAXCONN);
  listen_fd_ = socket.fd;
  port_ = socket.port;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < threads; ++i) {
    loops_.push_back(std::make_unique<Loop>(*state_, listen_fd_));
  }
  for (auto& loop : loops_) loop->thread = std::thread([l = loop.get()] { l->run(); });
}

std::uint16_t TlsListener::port() const { return port_; }

std::size_t TlsListener::in_flight() const {
  std::size_t n = 0;
  for (const auto& loop : loops_) n += loop->busy.load();
  return n;
}

void TlsListener::stop() {
  for (auto& loop : loops_) {
    loop->stopping.store(true);
    const std::uint64_t one = 1;
    (void)::write(loop->wake_fd, &one, sizeof one);
  }
  for (auto& loop : loops_) {
    if (loop->thread.joinable()) loop->thread.join();
  }
  loops_.clear();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

}  // namespace mailconfd::http
