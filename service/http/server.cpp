#include "http/server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include <pistache/os.h>
#include <pistache/reactor.h>
#include <spdlog/spdlog.h>

#include "http/listen_socket.h"
#include "http/session.h"
#include "http/transport.h"
#include "metrics.h"
#include "tls/context.h"

namespace mailconfd::http {

namespace Aio = Pistache::Aio;
namespace Polling = Pistache::Polling;

namespace {

// Descriptors kept free for everything that is not a client connection (listening sockets,
// epoll, timer and event fds of each worker, logs, a reloaded config and its domain lists).
constexpr std::size_t kReservedFds = 64;

// Per worker socket; the kernel caps this at net.core.somaxconn.
constexpr int kListenBacklog = 4096;

// How long a worker stops accepting when the process is out of descriptors or memory
// (a level-triggered listening socket would otherwise wake it for ever, pistache.md #13).
constexpr auto kAcceptPause = std::chrono::milliseconds(100);

// How often a worker checks its connections' deadlines.
constexpr auto kTick = std::chrono::milliseconds(100);

// What an epoll tag names: the descriptor in the high bits, its kind in the low three.
enum class Kind : std::uint64_t { Connection = 0, Listen = 1, TlsListen = 2, Tick = 3, Wake = 4 };

Polling::Tag tag_of(int fd, Kind kind) {
  return Polling::Tag((static_cast<std::uint64_t>(fd) << 3) | static_cast<std::uint64_t>(kind));
}

Pistache::Flags<Polling::NotifyOn> interest(bool read, bool write) {
  Pistache::Flags<Polling::NotifyOn> flags;
  if (read) flags.setFlag(Polling::NotifyOn::Read);
  if (write) flags.setFlag(Polling::NotifyOn::Write);
  return flags;
}

class Worker;

}  // namespace

struct Server::Shared {
  std::shared_ptr<AppSlot> app;  // never null; may be shared with other Servers
  std::atomic<std::size_t> connections{0};
  std::atomic<bool> draining{false};
  Surface surface = Surface::All;  // which URLs these listeners serve; set before they start
  // Connections the descriptor limit allows: mailconfd refuses connections well before
  // accept() can fail with EMFILE (then the worker pauses accepting).
  std::size_t fd_budget = SIZE_MAX;
  InFlight in_flight;

  // The workers' listening sockets (one per worker for each listener, one SO_REUSEPORT
  // group per listener); each worker takes its own as the reactor registers it.
  std::vector<int> listen_fds;
  std::vector<int> tls_listen_fds;
  std::mutex workers_mutex;
  std::vector<Worker*> workers;  // valid while the reactor lives

  // Counts a connection for the limits and for /metrics (not on the metrics listener);
  // returns how many are open with it.
  std::size_t opened(bool tls) {
    if (surface != Surface::Metrics) metrics::connection_opened(tls);
    return connections.fetch_add(1) + 1;
  }
  void closed(bool tls) {
    if (surface != Surface::Metrics) metrics::connection_closed(tls);
    connections.fetch_sub(1);
  }
};

namespace {

// One reactor worker: its listening sockets, its connections (owned by its thread alone),
// a timer for deadlines and an eventfd through which stop() and start_tls() reach it.
class Worker final : public Aio::Handler {
 public:
  PROTOTYPE_OF(Aio::Handler, Worker)

  explicit Worker(std::shared_ptr<Server::Shared> shared) : shared_(std::move(shared)) {}
  Worker(const Worker& other) : Aio::Handler(), shared_(other.shared_) {}
  Worker& operator=(const Worker&) = delete;

  // After the reactor's threads have stopped (the reactor destroys its handlers).
  ~Worker() override {
    for (auto& c : connections_) {
      if (c.session) close(c);
    }
    if (timer_fd_ >= 0) ::close(timer_fd_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  // Called once per worker, from the thread that sets up the reactor, before it runs.
  void registerPoller(Polling::Epoll& poller) override {
    poller_ = &poller;
    std::lock_guard lock(shared_->workers_mutex);
    const std::size_t index = shared_->workers.size();
    shared_->workers.push_back(this);
    if (index < shared_->listen_fds.size()) {
      listen_fd_ = shared_->listen_fds[index];
      watch(listen_fd_, Kind::Listen);
    }
    timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (timer_fd_ < 0 || wake_fd_ < 0) throw std::runtime_error(std::strerror(errno));
    itimerspec every{};
    every.it_interval.tv_nsec = std::chrono::nanoseconds(kTick).count();
    every.it_value = every.it_interval;
    ::timerfd_settime(timer_fd_, 0, &every, nullptr);
    watch(timer_fd_, Kind::Tick);
    watch(wake_fd_, Kind::Wake);
  }

  // From another thread (start_tls): this worker's HTTPS socket. epoll_ctl is thread-safe.
  void add_tls_listener(int fd) {
    tls_listen_fd_.store(fd);
    watch(fd, Kind::TlsListen);
  }

  // From another thread (stop): look at the drain flag now.
  void wake() const {
    const std::uint64_t one = 1;
    (void)::write(wake_fd_, &one, sizeof one);
  }

  void onReady(const Aio::FdSet& fds) override {
    app_ = shared_->app->load();  // one snapshot per round of events
    const bool draining = shared_->draining.load();
    if (draining && !drained_) start_drain();
    for (const auto& entry : fds) {
      const std::uint64_t tag = entry.getTag().value();
      const int fd = static_cast<int>(tag >> 3);
      switch (static_cast<Kind>(tag & 7)) {
        case Kind::Connection:
          if (static_cast<std::size_t>(fd) < connections_.size() && connections_[fd].session) {
            connections_[fd].session->on_ready(entry.isReadable() || entry.isHangup(),
                                               entry.isWritable(), *app_, draining);
            settle(fd);
          }
          break;
        case Kind::Listen:
          accept_one(fd, false, draining);
          break;
        case Kind::TlsListen:
          accept_one(fd, true, draining);
          break;
        case Kind::Tick: {
          std::uint64_t expirations = 0;
          (void)::read(timer_fd_, &expirations, sizeof expirations);
          tick();
          break;
        }
        case Kind::Wake: {
          std::uint64_t value = 0;
          (void)::read(wake_fd_, &value, sizeof value);
          rerun(draining);
          break;
        }
      }
    }
    if (!again_.empty()) wake();  // sessions with input left to read: another round soon
    app_.reset();
  }

 private:
  struct Conn {
    std::unique_ptr<Session> session;
    bool tls = false;
    bool read = false;  // current epoll interest
    bool write = false;
    bool again = false;  // in again_
  };

  void watch(int fd, Kind kind) {
    poller_->addFd(fd, Pistache::Flags<Polling::NotifyOn>(Polling::NotifyOn::Read),
                   tag_of(fd, kind), Polling::Mode::Level);
  }

  void accept_one(int listen_fd, bool tls, bool draining) {
    if (tls && draining) return;  // stop_drain() has taken it out of epoll
    sockaddr_storage peer{};
    socklen_t peer_length = sizeof peer;
    const int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&peer), &peer_length,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        spdlog::warn("{}accept: {}; pausing for {}ms", tls ? "https: " : "", std::strerror(errno),
                     kAcceptPause.count());
        poller_->removeFd(listen_fd);
        paused_.push_back({listen_fd, tls, Clock::now() + kAcceptPause});
      }
      return;  // EAGAIN (another worker took it), EINTR, ECONNABORTED: next wake-up
    }
    const Limits& limits = app_->config->server.limits;
    const std::size_t open = shared_->opened(tls);
    const bool over = open > std::min(limits.max_connections, shared_->fd_budget);
    std::unique_ptr<Transport> transport;
    std::chrono::milliseconds handshake_timeout{0};
    if (tls) {
      const auto& options = app_->config->server.tls;
      if (over || !options || !app_->certificates) {
        // Nothing can be answered before a handshake; refusing costs the least.
        shared_->closed(true);
        ::close(fd);
        return;
      }
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      transport = tls_transport(fd, app_->certificates);
      if (!transport) {
        shared_->closed(true);
        return;
      }
      handshake_timeout = options->handshake_timeout;
    } else {
      transport = plain_transport(fd);
    }
    transport->set_peer(PeerAddress::from(reinterpret_cast<const sockaddr*>(&peer), peer_length));
    if (static_cast<std::size_t>(fd) >= connections_.size()) connections_.resize(fd + 1024);
    Conn& c = connections_[fd];
    c.session = std::make_unique<Session>(
        std::move(transport), limits, handshake_timeout,
        SessionOptions{shared_->surface, &shared_->in_flight, &Clock::now});
    c.tls = tls;
    c.read = true;
    c.write = false;
    poller_->addFd(fd, interest(true, false), tag_of(fd, Kind::Connection), Polling::Mode::Level);
    if (over) {
      c.session->refuse(draining);
    } else {
      // During the drain only the health endpoints answer on a new connection (probes).
      if (draining) c.session->admit_draining();
      c.session->on_ready(true, false, *app_, draining);  // the request may be there already
    }
    settle(fd);
  }

  // After a Session handled something: close it, or wait for what it wants next.
  void settle(int fd) {
    Conn& c = connections_[fd];
    Session& s = *c.session;
    if (s.done()) return close(c, fd);
    const bool read = s.wants_read();
    const bool write = s.wants_write();
    if (read != c.read || write != c.write) {
      c.read = read;
      c.write = write;
      poller_->rearmFd(fd, interest(read, write), tag_of(fd, Kind::Connection),
                       Polling::Mode::Level);
    }
    // Stopped after kReadsPerEvent reads, or a TLS record holds more than the socket shows:
    // read again next round, after the other connections had theirs.
    if (read && s.may_have_input() && !c.again) {
      c.again = true;
      again_.push_back(fd);
    }
  }

  void close(Conn& c, int fd = -1) {
    if (fd >= 0) poller_->removeFd(fd);
    c.session.reset();  // closes the socket
    shared_->closed(c.tls);
  }

  void rerun(bool draining) {
    std::vector<int> fds;
    fds.swap(again_);
    for (int fd : fds) {
      Conn& c = connections_[fd];
      c.again = false;
      if (!c.session) continue;
      c.session->on_ready(false, false, *app_, draining);
      settle(fd);
    }
  }

  void tick() {
    const auto now = Clock::now();
    for (auto it = paused_.begin(); it != paused_.end();) {
      if (it->until > now) {
        ++it;
        continue;
      }
      if (!(it->tls && drained_)) watch(it->fd, it->tls ? Kind::TlsListen : Kind::Listen);
      it = paused_.erase(it);
    }
    for (std::size_t fd = 0; fd < connections_.size(); ++fd) {
      Conn& c = connections_[fd];
      if (!c.session) continue;
      c.session->on_tick();
      settle(static_cast<int>(fd));
    }
  }

  // The first round of events after stop() set the drain flag.
  void start_drain() {
    drained_ = true;
    const int tls_fd = tls_listen_fd_.load();
    if (tls_fd >= 0) {
      bool paused = false;
      for (const auto& p : paused_) paused = paused || p.fd == tls_fd;
      if (!paused) poller_->removeFd(tls_fd);
    }
    for (std::size_t fd = 0; fd < connections_.size(); ++fd) {
      Conn& c = connections_[fd];
      if (!c.session) continue;
      c.session->start_drain();
      settle(static_cast<int>(fd));
    }
    shared_->in_flight.remove();  // stop() counted this worker until it has seen the drain
  }

  struct Paused {
    int fd;
    bool tls;
    Clock::time_point until;
  };

  std::shared_ptr<Server::Shared> shared_;
  Polling::Epoll* poller_ = nullptr;
  int listen_fd_ = -1;
  std::atomic<int> tls_listen_fd_{-1};
  int timer_fd_ = -1;
  int wake_fd_ = -1;
  std::vector<Conn> connections_;  // by descriptor
  std::vector<int> again_;
  std::vector<Paused> paused_;
  std::shared_ptr<const App> app_;
  bool drained_ = false;
};

}  // namespace

struct Server::Impl {
  std::shared_ptr<Aio::Reactor> reactor;
  std::uint16_t port = 0;
  std::uint16_t tls_port = 0;
  bool running = false;
};

Server::Server(std::shared_ptr<const App> app)
    : Server(std::make_shared<AppSlot>(std::move(app))) {}

Server::Server(std::shared_ptr<AppSlot> slot)
    : shared_(std::make_shared<Shared>()), impl_(std::make_unique<Impl>()) {
  shared_->app = std::move(slot);
}

Server::~Server() { stop(std::chrono::milliseconds(0)); }

namespace {

// threads sockets of one SO_REUSEPORT group on listen; returns the bound port.
std::uint16_t open_group(const ListenAddress& listen, unsigned threads, std::vector<int>& fds) {
  std::uint16_t port = 0;
  try {
    for (unsigned i = 0; i < threads; ++i) {
      const ListenSocket socket =
          i == 0 ? open_listen_socket(listen, listen.port, PortGroup::Open, kListenBacklog)
                 : open_listen_socket(listen, port, PortGroup::Join, kListenBacklog);
      fds.push_back(socket.fd);
      port = socket.port;
    }
  } catch (...) {
    for (int fd : fds) ::close(fd);
    fds.clear();
    throw;
  }
  return port;
}

}  // namespace

void Server::start(const ListenAddress& listen, unsigned threads, Surface surface) {
  shared_->surface = surface;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  impl_->port = open_group(listen, threads, shared_->listen_fds);
  rlimit fds{};
  if (getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur != RLIM_INFINITY) {
    shared_->fd_budget = fds.rlim_cur > kReservedFds ? fds.rlim_cur - kReservedFds : 1;
    const std::size_t wanted = shared_->app->load()->config->server.limits.max_connections;
    if (wanted > shared_->fd_budget) {
      spdlog::warn(
          "max-connections {} is more than the descriptor limit allows; at most {} "
          "connections will be served (raise LimitNOFILE)",
          wanted, shared_->fd_budget);
    }
  }
  impl_->reactor = Aio::Reactor::create();
  impl_->reactor->init(Aio::AsyncContext(threads, "mailconfd"));
  // The reactor clones the handler once per worker and registers each clone's poller.
  impl_->reactor->addHandler(std::make_shared<Worker>(shared_));
  impl_->reactor->run();
  impl_->running = true;
}

std::uint16_t Server::port() const { return impl_->port; }

void Server::start_tls(const ListenAddress& listen) {
  std::lock_guard lock(shared_->workers_mutex);
  impl_->tls_port =
      open_group(listen, static_cast<unsigned>(shared_->workers.size()), shared_->tls_listen_fds);
  for (std::size_t i = 0; i < shared_->workers.size(); ++i) {
    shared_->workers[i]->add_tls_listener(shared_->tls_listen_fds[i]);
  }
}

std::uint16_t Server::tls_port() const { return impl_->tls_port; }

void Server::swap(std::shared_ptr<const App> app) { shared_->app->store(std::move(app)); }

std::shared_ptr<const App> Server::app() const { return shared_->app->load(); }

std::size_t Server::open_connections() const { return shared_->connections.load(); }

void Server::stop(std::chrono::milliseconds grace) {
  if (!impl_->running) return;
  impl_->running = false;
  const auto until = Clock::now() + grace;
  {
    // Every worker counts as in flight until it has seen the drain (closed its idle
    // connections, stopped accepting HTTPS); every Session counts while it is busy.
    std::lock_guard lock(shared_->workers_mutex);
    for (std::size_t i = 0; i < shared_->workers.size(); ++i) shared_->in_flight.add();
    shared_->draining.store(true);
    for (Worker* worker : shared_->workers) worker->wake();
  }
  if (!shared_->in_flight.wait_idle(until)) {
    spdlog::warn("shutdown grace over with {} connections still busy; closing them",
                 shared_->in_flight.count());
  }
  impl_->reactor->shutdown();
  impl_->reactor.reset();  // the workers close every connection
  for (int fd : shared_->listen_fds) ::close(fd);
  for (int fd : shared_->tls_listen_fds) ::close(fd);
  shared_->listen_fds.clear();
  shared_->tls_listen_fds.clear();
}

}  // namespace mailconfd::http
