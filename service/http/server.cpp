#include "http/server.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include <pistache/os.h>
#include <pistache/peer.h>
#include <pistache/reactor.h>
#include <pistache/tcp.h>
#include <pistache/transport.h>
#include <spdlog/spdlog.h>

#include "http/listen_socket.h"
#include "http/session.h"
#include "http/tls_listener.h"
#include "metrics.h"

namespace mailconfd::http {

namespace Aio = Pistache::Aio;
namespace Polling = Pistache::Polling;
namespace Tcp = Pistache::Tcp;

namespace {

// Descriptors kept free for everything that is not a client connection (listening socket,
// epoll and event fds of each worker, logs, a reloaded config and its domain lists).
constexpr std::size_t kReservedFds = 64;

// Answers queued for a client that does not read them (its socket buffer is full). A client
// that pipelines requests without reading would otherwise grow the queue without bound:
// each 80-byte request queues a 1.4 KB answer. Past this, the connection is closed.
constexpr std::size_t kMaxQueuedBytes = 256 * 1024;

// Per worker socket; the kernel caps this at net.core.somaxconn.
constexpr int kListenBacklog = 4096;

// Connections one worker accepts per wake-up: one, as nginx does (multi_accept off). The
// listening socket is level-triggered, so the next epoll_wait reports it again while
// connections wait; accepting until EAGAIN cost an extra accept4 per wake-up (14% more
// CPU per Connection: close request in alternating wrk -c64 runs).
constexpr int kMaxAcceptsPerWakeup = 1;

// How long a worker stops accepting when the process is out of descriptors or memory.
constexpr auto kAcceptPause = std::chrono::milliseconds(100);

struct Connection {
  Connection(int fd_, std::weak_ptr<Tcp::Peer> peer_, Session session_)
      : fd(fd_), peer(std::move(peer_)), session(std::move(session_)) {}
  int fd = -1;
  std::weak_ptr<Tcp::Peer> peer;
  Session session;
  // Written by the worker's write-completion callbacks as well as under the registry lock.
  std::atomic<int> pending_writes{0};
  std::atomic<std::size_t> queued_bytes{0};  // bytes of those writes
  std::atomic<bool> shutdown_after_write{false};
  std::atomic<bool> gone{false};
};

// One worker's connections. The worker and the reaper both lock it.
struct Registry {
  std::mutex mutex;
  std::unordered_map<int, std::shared_ptr<Connection>> connections;
};

}  // namespace

struct Server::Shared : ServerState {
  // Connections the descriptor limit allows: mailconfd refuses connections well before
  // accept() can fail with EMFILE (then the worker pauses accepting; see Paused).
  std::size_t fd_budget = SIZE_MAX;
  std::mutex registries_mutex;
  std::vector<std::shared_ptr<Registry>> registries;

  // Listening sockets taken out of their worker's epoll after accept4 failed for want of
  // descriptors or memory (a level-triggered socket would otherwise wake the worker for
  // ever); the reaper puts them back after kAcceptPause.
  struct Paused {
    Polling::Epoll* poller;
    int fd;
    Clock::time_point until;
  };
  std::mutex paused_mutex;
  std::vector<Paused> paused;

  // The workers' listening sockets (one per worker, one SO_REUSEPORT group); each worker's
  // transport takes one as the reactor registers it.
  std::vector<int> listen_fds;
  std::atomic<std::size_t> next_listen_fd{0};

  std::shared_ptr<Registry> new_registry() {
    auto r = std::make_shared<Registry>();
    std::lock_guard lock(registries_mutex);
    registries.push_back(r);
    return r;
  }
};

namespace {

// The part of a connection's work that writes: direct non-blocking send on the worker
// thread (one system call, no queue), falling back to Pistache's write queue only when the
// socket buffer is full. Once something is queued, later writes queue too, to keep order.
// last: the connection's final answer, sent with MSG_MORE so that the FIN that follows at
// once (send_fin) leaves in the same segment as the answer's tail instead of in its own.
void write_bytes(const std::shared_ptr<Connection>& conn, std::string_view data,
                 bool last = false) {
  Connection& c = *conn;
  const int flags = MSG_NOSIGNAL | MSG_DONTWAIT | (last ? MSG_MORE : 0);
  while (!data.empty() && c.pending_writes.load() == 0) {
    const ssize_t n = ::send(c.fd, data.data(), data.size(), flags);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      return;  // peer gone; the reactor will report the disconnection
    }
  }
  if (data.empty()) return;
  auto peer = c.peer.lock();
  if (!peer) return;
  if (c.queued_bytes.load() + data.size() > kMaxQueuedBytes) {
    // Callers hold the registry lock; the worker sees end of stream and removes it.
    c.session.close(Clock::now());
    c.session.deadline = Clock::now() + std::chrono::hours(1);
    ::shutdown(c.fd, SHUT_RDWR);
    return;
  }
  c.pending_writes.fetch_add(1);
  c.queued_bytes.fetch_add(data.size());
  // The callbacks run on this worker thread, after the queue has written the bytes; `gone`
  // (set on the same thread before Pistache closes the fd) keeps them off a reused fd.
  peer->send(Pistache::RawBuffer(std::string(data), data.size()), MSG_NOSIGNAL)
      .then(
          [conn, size = data.size()](ssize_t) {
            if (conn->gone.load()) return;
            conn->queued_bytes.fetch_sub(size);
            if (conn->pending_writes.fetch_sub(1) == 1 && conn->shutdown_after_write.load()) {
              ::shutdown(conn->fd, SHUT_WR);
            }
          },
          [conn, size = data.size()](std::exception_ptr) {
            if (conn->gone.load()) return;
            conn->queued_bytes.fetch_sub(size);
            conn->pending_writes.fetch_sub(1);
          });
}

// Sends FIN after the last answer (the session is already Closing); the connection lingers
// until the client closes or kLinger passes.
void send_fin(Connection& c) {
  if (c.pending_writes.load() == 0) {
    ::shutdown(c.fd, SHUT_WR);
  } else {
    c.shutdown_after_write.store(true);
  }
}

// Closes the peer once the transport has finished the current round of events (server.cpp's
// AcceptingTransport; defined below it).
void close_soon(Tcp::Transport* transport, const std::shared_ptr<Tcp::Peer>& peer);

class Handler final : public Tcp::Handler {
 public:
  PROTOTYPE_OF(Tcp::Handler, Handler)

  explicit Handler(std::shared_ptr<Server::Shared> shared) : shared_(std::move(shared)) {}
  Handler(const Handler& other) : Tcp::Handler(), shared_(other.shared_) {}

  void onConnection(const std::shared_ptr<Tcp::Peer>& peer) override {
    if (!registry_) registry_ = shared_->new_registry();
    const auto app = shared_->app.load();
    const Limits& limits = app->config.server.limits;
    auto c = std::make_shared<Connection>(peer->fd(), peer,
                                          Session(Clock::now(), limits, false, shared_->surface));
    const std::size_t open = shared_->opened(false);
    {
      std::lock_guard lock(registry_->mutex);
      registry_->connections[c->fd] = c;
    }
    if (open > std::min(limits.max_connections, shared_->fd_budget) || shared_->draining.load()) {
      std::lock_guard lock(registry_->mutex);
      write_bytes(c, busy_answer());
      c->session.close(Clock::now());
      if (shared_->draining.load()) {
        send_fin(*c);
      } else {
        // Over capacity: give the descriptor back at once instead of lingering, so that a
        // flood of connections cannot use up the descriptors. The worker sees end of stream.
        c->session.deadline = Clock::now() + std::chrono::hours(1);
        ::shutdown(c->fd, SHUT_RDWR);
      }
    }
  }

  void onDisconnection(const std::shared_ptr<Tcp::Peer>& peer) override {
    if (!registry_) return;
    std::lock_guard lock(registry_->mutex);
    auto it = registry_->connections.find(peer->fd());
    if (it == registry_->connections.end()) return;
    it->second->gone.store(true);
    registry_->connections.erase(it);
    shared_->closed(false);
  }

  void onInput(const char* buffer, size_t len, const std::shared_ptr<Tcp::Peer>& peer) override {
    if (!registry_) return;
    std::lock_guard lock(registry_->mutex);
    auto it = registry_->connections.find(peer->fd());
    if (it == registry_->connections.end()) return;
    const std::shared_ptr<Connection> conn = it->second;
    const auto app = shared_->app.load();
    thread_local std::string out;
    out.clear();
    const bool closing =
        conn->session.on_input(std::string_view(buffer, len), *app, shared_->draining.load(), out);
    if (!out.empty()) write_bytes(conn, out, closing);
    if (!closing) return;
    if (conn->session.clean_close() && conn->pending_writes.load() == 0) {
      // As nginx does: the client asked for the close and sends nothing more, so close()
      // now (its FIN leaves with the answer's tail) rather than shut down, wait for the
      // client's FIN and only then close.
      close_soon(transport(), peer);
    } else {
      send_fin(*conn);
    }
  }

 private:
  std::shared_ptr<Server::Shared> shared_;
  std::shared_ptr<Registry> registry_;  // this worker's; created on its thread
};

// Pistache's Tcp::Transport (peers, reads, write queue, epoll worker) with a listening socket
// of its own. Pistache's Tcp::Listener accepts every connection on one extra thread, makes
// it non-blocking with two fcntl calls and hands it to a worker through an eventfd: about a
// dozen system calls and a thread switch per connection (pistache.md "What limits", 3).
// Here each worker accepts its own connections (SO_REUSEPORT: the kernel spreads them over
// the workers' sockets) with accept4(SOCK_NONBLOCK), and Transport::handleNewPeer, called on
// the worker's own thread, registers the peer at once without a queue.
class AcceptingTransport final : public Tcp::Transport {
 public:
  AcceptingTransport(const std::shared_ptr<Tcp::Handler>& handler,
                     std::shared_ptr<Server::Shared> shared)
      : Tcp::Transport(handler), handler_(handler), shared_(std::move(shared)) {}

  std::shared_ptr<Aio::Handler> clone() const override {
    return std::make_shared<AcceptingTransport>(handler_->clone(), shared_);
  }

  // Handler::onInput runs inside Tcp::Transport's read loop, which reads the socket again
  // after it returns; the close waits until that loop is done.
  void close_soon(const std::shared_ptr<Tcp::Peer>& peer) { closing_.push_back(peer); }

  // Called once per worker, from the thread that sets up the reactor.
  void registerPoller(Polling::Epoll& poller) override {
    Tcp::Transport::registerPoller(poller);
    const std::size_t index = shared_->next_listen_fd.fetch_add(1);
    if (index >= shared_->listen_fds.size()) return;
    listen_fd_ = shared_->listen_fds[index];
    poller_ = &poller;
    poller.addFd(listen_fd_, Pistache::Flags<Polling::NotifyOn>(Polling::NotifyOn::Read),
                 Polling::Tag(static_cast<std::uint64_t>(listen_fd_)), Polling::Mode::Level);
  }

  void onReady(const Aio::FdSet& fds) override {
    const Polling::Tag listen_tag(static_cast<std::uint64_t>(listen_fd_));
    bool accept = false;
    for (const auto& entry : fds) accept = accept || entry.getTag() == listen_tag;
    if (!accept) {
      Tcp::Transport::onReady(fds);
      close_pending();
      return;
    }
    // Tcp::Transport does not know the listening socket: pass it the other events only.
    std::vector<Polling::Event> rest;
    for (const auto& entry : fds) {
      if (entry.getTag() == listen_tag) continue;
      Polling::Event event(entry.getTag());
      if (entry.isReadable()) event.flags.setFlag(Polling::NotifyOn::Read);
      if (entry.isWritable()) event.flags.setFlag(Polling::NotifyOn::Write);
      if (entry.isHangup()) event.flags.setFlag(Polling::NotifyOn::Hangup);
      rest.push_back(std::move(event));
    }
    if (!rest.empty()) Tcp::Transport::onReady(Aio::FdSet(std::move(rest)));
    close_pending();
    accept_some();
  }

 private:
  void close_pending() {
    for (const auto& peer : closing_) {
      // The client may have closed first (the transport has removed the peer then).
      const auto it = peers.find(peer->fd());
      if (it == peers.end() || it->second != peer) continue;
      handler_->onDisconnection(peer);
      removePeer(peer);  // out of epoll, then close()
    }
    closing_.clear();
  }

  void accept_some() {
    for (int i = 0; i < kMaxAcceptsPerWakeup; ++i) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          spdlog::warn("accept: {}; pausing for {}ms", std::strerror(errno), kAcceptPause.count());
          poller_->removeFd(listen_fd_);
          std::lock_guard lock(shared_->paused_mutex);
          shared_->paused.push_back({poller_, listen_fd_, Clock::now() + kAcceptPause});
        }
        return;  // EAGAIN: none left
      }
      handleNewPeer(Tcp::Peer::Create(fd, Pistache::Address()));
    }
  }

  std::shared_ptr<Tcp::Handler> handler_;  // this worker's (Tcp::Transport keeps it private)
  std::shared_ptr<Server::Shared> shared_;
  std::vector<std::shared_ptr<Tcp::Peer>> closing_;
  int listen_fd_ = -1;
  Polling::Epoll* poller_ = nullptr;
};

void close_soon(Tcp::Transport* transport, const std::shared_ptr<Tcp::Peer>& peer) {
  static_cast<AcceptingTransport*>(transport)->close_soon(peer);
}

}  // namespace

struct Server::Impl {
  std::shared_ptr<Aio::Reactor> reactor;
  std::uint16_t port = 0;
  std::unique_ptr<TlsListener> tls;
  std::thread reaper;
  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;
  bool running = false;

  // epoll_ctl on a worker's epoll from this thread is safe; the worker is not touched.
  static void resume_accepting(Server::Shared& shared, Clock::time_point now) {
    std::lock_guard lock(shared.paused_mutex);
    auto& paused = shared.paused;
    for (auto it = paused.begin(); it != paused.end();) {
      if (it->until > now) {
        ++it;
        continue;
      }
      it->poller->addFd(it->fd, Pistache::Flags<Polling::NotifyOn>(Polling::NotifyOn::Read),
                        Polling::Tag(static_cast<std::uint64_t>(it->fd)), Polling::Mode::Level);
      it = paused.erase(it);
    }
  }

  void reap(Server::Shared& shared) {
    std::unique_lock lock(mutex);
    while (!stopping) {
      wake.wait_for(lock, std::chrono::milliseconds(100));
      if (stopping) break;
      const auto now = Clock::now();
      resume_accepting(shared, now);
      std::vector<std::shared_ptr<Registry>> registries;
      {
        std::lock_guard r(shared.registries_mutex);
        registries = shared.registries;
      }
      for (auto& registry : registries) {
        std::lock_guard r(registry->mutex);
        for (auto& [fd, c] : registry->connections) {
          Session& session = c->session;
          if (session.deadline > now || c->gone.load()) continue;
          if (session.in_flight()) {
            const std::string_view answer = timeout_answer();
            if (c->pending_writes.load() == 0) {
              (void)::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            }
          }
          // The worker sees the shutdown as end of stream and removes the connection.
          ::shutdown(fd, SHUT_RDWR);
          session.close(now);
          session.deadline = now + std::chrono::hours(1);
        }
      }
    }
  }
};

Server::Server(std::shared_ptr<const App> app)
    : shared_(std::make_shared<Shared>()), impl_(std::make_unique<Impl>()) {
  shared_->app.store(std::move(app));
}

Server::~Server() { stop(std::chrono::milliseconds(0)); }

void Server::start(const ListenAddress& listen, unsigned threads, Surface surface) {
  shared_->surface = surface;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  try {
    for (unsigned i = 0; i < threads; ++i) {
      const ListenSocket socket =
          i == 0 ? open_listen_socket(listen, listen.port, PortGroup::Open, kListenBacklog)
                 : open_listen_socket(listen, impl_->port, PortGroup::Join, kListenBacklog);
      shared_->listen_fds.push_back(socket.fd);
      impl_->port = socket.port;
    }
  } catch (...) {
    for (int fd : shared_->listen_fds) ::close(fd);
    shared_->listen_fds.clear();
    throw;
  }
  rlimit fds{};
  if (getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur != RLIM_INFINITY) {
    shared_->fd_budget = fds.rlim_cur > kReservedFds ? fds.rlim_cur - kReservedFds : 1;
    const std::size_t wanted = shared_->app.load()->config.server.limits.max_connections;
    if (wanted > shared_->fd_budget) {
      spdlog::warn(
          "max-connections {} is more than the descriptor limit allows; at most {} "
          "connections will be served (raise LimitNOFILE)",
          wanted, shared_->fd_budget);
    }
  }
  impl_->reactor = Aio::Reactor::create();
  impl_->reactor->init(Aio::AsyncContext(threads, "mailconfd"));
  // The reactor clones the transport (and with it the handler) once per worker.
  impl_->reactor->addHandler(
      std::make_shared<AcceptingTransport>(std::make_shared<Handler>(shared_), shared_));
  impl_->reactor->run();
  impl_->running = true;
  impl_->reaper = std::thread([this] { impl_->reap(*shared_); });
}

std::uint16_t Server::port() const { return impl_->port; }

void Server::start_tls(const ListenAddress& listen, unsigned threads) {
  impl_->tls = std::make_unique<TlsListener>(std::shared_ptr<ServerState>(shared_, shared_.get()));
  impl_->tls->start(listen, threads);
}

std::uint16_t Server::tls_port() const { return impl_->tls ? impl_->tls->port() : 0; }

void Server::swap(std::shared_ptr<const App> app) { shared_->app.store(std::move(app)); }

std::shared_ptr<const App> Server::app() const { return shared_->app.load(); }

std::size_t Server::open_connections() const { return shared_->connections.load(); }

void Server::stop(std::chrono::milliseconds grace) {
  if (!impl_->running) return;
  impl_->running = false;
  shared_->draining.store(true);
  // Requests are answered synchronously on the workers, so "in flight" means a request whose
  // bytes are still arriving or an answer still queued. Wait for those, up to grace. Idle
  // keep-alive connections get a FIN at once (a client that sends on one at that moment
  // retries, as after any keep-alive timeout). A connection accepted just before the drain
  // that has not sent anything yet gets a moment to send its request, which is answered.
  const auto drain_started = Clock::now();
  const auto until = drain_started + grace;
  const auto fresh_until =
      drain_started + std::min<Clock::duration>(grace, std::chrono::seconds(1));
  while (true) {
    const auto now = Clock::now();
    bool busy = false;
    std::vector<std::shared_ptr<Registry>> registries;
    {
      std::lock_guard r(shared_->registries_mutex);
      registries = shared_->registries;
    }
    for (auto& registry : registries) {
      std::lock_guard r(registry->mutex);
      for (auto& [fd, c] : registry->connections) {
        if (c->gone.load()) continue;
        if (c->session.state == State::Idle || (c->session.fresh() && now >= fresh_until)) {
          c->session.close(now);
          send_fin(*c);
        } else if (c->session.in_flight() || c->session.fresh() || c->pending_writes.load() > 0) {
          busy = true;
        }
      }
    }
    // The TLS loops publish their count every 100 ms: look at a fresh one.
    if (impl_->tls && Clock::now() - drain_started < std::chrono::milliseconds(150)) busy = true;
    if (impl_->tls && impl_->tls->in_flight() > 0) busy = true;
    if (!busy || now >= until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->reaper.joinable()) impl_->reaper.join();
  impl_->reactor->shutdown();
  impl_->reactor.reset();
  for (int fd : shared_->listen_fds) ::close(fd);
  shared_->listen_fds.clear();
  if (impl_->tls) impl_->tls->stop();
}

}  // namespace mailconfd::http
