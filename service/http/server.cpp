#include "http/server.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include <pistache/listener.h>
#include <pistache/peer.h>
#include <pistache/tcp.h>
#include <spdlog/spdlog.h>

#include "http/session.h"
#include "http/tls_listener.h"
#include "metrics.h"

namespace mailconfd::http {

namespace Tcp = Pistache::Tcp;

namespace {

// Descriptors kept free for everything that is not a client connection (listening socket,
// epoll and event fds of each worker, logs, a reloaded config and its domain lists).
constexpr std::size_t kReservedFds = 64;

// Answers queued for a client that does not read them (its socket buffer is full). A client
// that pipelines requests without reading would otherwise grow the queue without bound:
// each 80-byte request queues a 1.4 KB answer. Past this, the connection is closed.
constexpr std::size_t kMaxQueuedBytes = 256 * 1024;

// Pistache passes a fixed 128 unless told otherwise (pistache.md #14); the kernel caps this
// at net.core.somaxconn.
constexpr int kListenBacklog = 4096;

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
  // Connections the descriptor limit allows: Pistache's accept thread spins on EMFILE
  // (pistache.md #13), so mailconfd refuses connections well before accept() can fail.
  std::size_t fd_budget = SIZE_MAX;
  std::mutex registries_mutex;
  std::vector<std::shared_ptr<Registry>> registries;

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
    const std::size_t open = shared_->connections.fetch_add(1) + 1;
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
    shared_->connections.fetch_sub(1);
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
    if (closing) send_fin(*conn);
  }

 private:
  std::shared_ptr<Server::Shared> shared_;
  std::shared_ptr<Registry> registry_;  // this worker's; created on its thread
};

}  // namespace

struct Server::Impl {
  std::unique_ptr<Tcp::Listener> listener;
  std::unique_ptr<TlsListener> tls;
  std::thread reaper;
  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;
  bool running = false;

  void reap(Server::Shared& shared) {
    std::unique_lock lock(mutex);
    while (!stopping) {
      wake.wait_for(lock, std::chrono::milliseconds(100));
      if (stopping) break;
      const auto now = Clock::now();
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
  const std::string host =
      listen.host.find(':') != std::string::npos ? "[" + listen.host + "]" : listen.host;
  Pistache::Address address(host + ":" + std::to_string(listen.port));
  impl_->listener = std::make_unique<Tcp::Listener>(address);
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  impl_->listener->init(
      threads, Pistache::Flags<Tcp::Options>(Tcp::Options::NoDelay) | Tcp::Options::ReuseAddr,
      "mailconfd", kListenBacklog);
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
  impl_->listener->setHandler(std::make_shared<Handler>(shared_));
  impl_->listener->bind();
  impl_->listener->runThreaded();
  impl_->running = true;
  impl_->reaper = std::thread([this] { impl_->reap(*shared_); });
}

std::uint16_t Server::port() const {
  return impl_->listener ? static_cast<std::uint16_t>(impl_->listener->getPort()) : 0;
}

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
  impl_->listener->shutdown();
  if (impl_->tls) impl_->tls->stop();
}

}  // namespace mailconfd::http
