#include "http/server.h"

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

#include "http/reply.h"
#include "http/request.h"
#include "http/routes.h"

namespace mailconfd::http {

using Clock = std::chrono::steady_clock;
namespace Tcp = Pistache::Tcp;

namespace {

// How long a closing connection may linger after our FIN, so the client reads the last
// answer before the socket goes away (instead of an RST eating it).
constexpr auto kLinger = std::chrono::milliseconds(2000);

enum class State {
  Header,   // waiting for (the rest of) a request head; header_timeout
  Body,     // head complete, body incomplete; body_timeout
  Idle,     // between keep-alive requests; keepalive_timeout
  Closing,  // last answer sent (or being sent), FIN sent or pending; kLinger
};

struct Connection {
  int fd = -1;
  std::weak_ptr<Tcp::Peer> peer;
  std::string in;  // received, not yet consumed
  Request request;
  std::string chunked_body;
  State state = State::Header;
  Clock::time_point deadline;
  std::size_t needed = 0;  // Body with Content-Length: bytes the request needs in total
  bool continue_sent = false;
  bool saw_bytes = false;  // any byte of the current request arrived
  // Written by the worker's write-completion callbacks as well as under the registry lock.
  std::atomic<int> pending_writes{0};
  std::atomic<bool> shutdown_after_write{false};
  std::atomic<bool> gone{false};
};

// One worker's connections. The worker and the reaper both lock it.
struct Registry {
  std::mutex mutex;
  std::unordered_map<int, std::shared_ptr<Connection>> connections;
};

}  // namespace

struct Server::Shared {
  std::atomic<std::shared_ptr<const App>> app;
  std::atomic<std::size_t> connections{0};
  std::atomic<bool> draining{false};
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
void write_bytes(const std::shared_ptr<Connection>& conn, std::string_view data) {
  Connection& c = *conn;
  while (!data.empty() && c.pending_writes.load() == 0) {
    const ssize_t n = ::send(c.fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
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
  c.pending_writes.fetch_add(1);
  // The callbacks run on this worker thread, after the queue has written the bytes; `gone`
  // (set on the same thread before Pistache closes the fd) keeps them off a reused fd.
  peer->send(Pistache::RawBuffer(std::string(data), data.size()), MSG_NOSIGNAL)
      .then(
          [conn](ssize_t) {
            if (conn->gone.load()) return;
            if (conn->pending_writes.fetch_sub(1) == 1 && conn->shutdown_after_write.load()) {
              ::shutdown(conn->fd, SHUT_WR);
            }
          },
          [conn](std::exception_ptr) {
            if (!conn->gone.load()) conn->pending_writes.fetch_sub(1);
          });
}

// Sends FIN after the last answer; the connection lingers in Closing until the client
// closes or kLinger passes.
void start_closing(Connection& c) {
  c.state = State::Closing;
  c.deadline = Clock::now() + kLinger;
  c.in.clear();
  if (c.pending_writes.load() == 0) {
    ::shutdown(c.fd, SHUT_WR);
  } else {
    c.shutdown_after_write.store(true);
  }
}

void log_request(const Request& request, const Reply& reply, std::size_t bytes,
                 Clock::time_point started) {
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count();
  // The path only: queries carry addresses, and headers carry passwords (Authorization).
  spdlog::info("{} {} {} {} {}us {}", request.method_text.substr(0, 16),
               request.path.substr(0, 200), reply.status, bytes, micros,
               client_kind(request.header("User-Agent")));
}

// True when bytes can change what parse_request says about an incomplete head: a line end,
// or a byte that is never valid in a head (so it is refused at once, not at the timeout).
bool worth_parsing(std::string_view fresh) {
  for (char c : fresh) {
    const auto b = static_cast<unsigned char>(c);
    if (c == '\n' || (b < 0x20 && c != '\r' && c != '\t') || b >= 0x7F) return true;
  }
  return false;
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
    auto c = std::make_shared<Connection>();
    c->fd = peer->fd();
    c->peer = peer;
    c->deadline = Clock::now() + limits.header_timeout;
    const std::size_t open = shared_->connections.fetch_add(1) + 1;
    {
      std::lock_guard lock(registry_->mutex);
      registry_->connections[c->fd] = c;
    }
    if (open > limits.max_connections || shared_->draining.load()) {
      std::string out;
      Reply busy = error_reply(503);
      busy.close = true;
      serialize(busy, false, false, out);
      std::lock_guard lock(registry_->mutex);
      write_bytes(c, out);
      start_closing(*c);
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
    Connection& c = *conn;
    if (c.state == State::Closing) return;  // discard what arrives after the last answer
    const auto app = shared_->app.load();
    const Limits& limits = app->config.server.limits;
    const std::string_view fresh(buffer, len);
    c.in.append(fresh);
    if (c.state == State::Idle) {
      c.state = State::Header;
      c.deadline = Clock::now() + limits.header_timeout;  // from the first byte of the request
    }
    c.saw_bytes = true;
    if (c.state == State::Header && !worth_parsing(fresh) &&
        c.in.size() <= std::min(limits.max_request_line, limits.max_header_bytes)) {
      return;
    }
    if (c.state == State::Body && c.needed > c.in.size()) return;
    process(conn, *app, limits);
  }

 private:
  void process(const std::shared_ptr<Connection>& conn, const App& app, const Limits& limits) {
    Connection& c = *conn;
    thread_local std::string out;
    out.clear();
    bool closing = false;
    while (!c.in.empty() && !closing) {
      const Clock::time_point started = Clock::now();
      const ParseResult r = parse_request(c.in, limits, c.request, c.chunked_body);
      if (r.outcome == Parse::Incomplete) {
        if (r.headers_done && c.state != State::Body) {
          c.state = State::Body;
          c.deadline = started + limits.body_timeout;
          c.needed = r.needed;
          if (c.request.expect_continue && !c.continue_sent) {
            out.append("HTTP/1.1 100 Continue\r\n\r\n");
            c.continue_sent = true;
          }
        }
        break;
      }
      Reply reply;
      bool keep_alive = false;
      if (r.outcome == Parse::Error) {
        reply = error_reply(r.status);
        reply.close = true;
        spdlog::info("- - {} 0 0us framing", r.status);
      } else {
        reply = route(app, c.request);
        keep_alive = c.request.keep_alive && !reply.close && !shared_->draining.load();
      }
      const std::size_t before = out.size();
      serialize(reply, keep_alive, c.request.method == Method::Head, out);
      if (r.outcome == Parse::Complete) {
        log_request(c.request, reply, out.size() - before, started);
        c.in.erase(0, r.consumed);
      }
      c.needed = 0;
      c.continue_sent = false;
      closing = !keep_alive;
      c.state = c.in.empty() ? State::Idle : State::Header;
      c.deadline = Clock::now() + (c.in.empty() ? limits.keepalive_timeout : limits.header_timeout);
      c.saw_bytes = !c.in.empty();
    }
    if (!out.empty()) write_bytes(conn, out);
    if (closing) start_closing(c);
  }

  std::shared_ptr<Server::Shared> shared_;
  std::shared_ptr<Registry> registry_;  // this worker's; created on its thread
};

}  // namespace

struct Server::Impl {
  std::unique_ptr<Tcp::Listener> listener;
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
          if (c->deadline > now || c->gone.load()) continue;
          if ((c->state == State::Header && c->saw_bytes) || c->state == State::Body) {
            if (c->pending_writes.load() == 0) {
              std::string out;
              serialize(error_reply(408), false, false, out);
              (void)::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            }
            spdlog::info("- - 408 0 0us timeout");
          }
          // The worker sees the shutdown as end of stream and removes the connection.
          ::shutdown(fd, SHUT_RDWR);
          c->state = State::Closing;
          c->deadline = now + std::chrono::hours(1);
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

void Server::start(const ListenAddress& listen, unsigned threads) {
  const std::string host =
      listen.host.find(':') != std::string::npos ? "[" + listen.host + "]" : listen.host;
  Pistache::Address address(host + ":" + std::to_string(listen.port));
  impl_->listener = std::make_unique<Tcp::Listener>(address);
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  impl_->listener->init(
      threads, Pistache::Flags<Tcp::Options>(Tcp::Options::NoDelay) | Tcp::Options::ReuseAddr,
      "mailconfd");
  impl_->listener->setHandler(std::make_shared<Handler>(shared_));
  impl_->listener->bind();
  impl_->listener->runThreaded();
  impl_->running = true;
  impl_->reaper = std::thread([this] { impl_->reap(*shared_); });
}

std::uint16_t Server::port() const {
  return impl_->listener ? static_cast<std::uint16_t>(impl_->listener->getPort()) : 0;
}

void Server::swap(std::shared_ptr<const App> app) { shared_->app.store(std::move(app)); }

std::shared_ptr<const App> Server::app() const { return shared_->app.load(); }

std::size_t Server::open_connections() const { return shared_->connections.load(); }

void Server::stop(std::chrono::milliseconds grace) {
  if (!impl_->running) return;
  impl_->running = false;
  shared_->draining.store(true);
  // Requests are answered synchronously on the workers, so "in flight" means a request whose
  // bytes are still arriving or an answer still queued. Wait for those, up to grace.
  const auto until = Clock::now() + grace;
  while (Clock::now() < until) {
    bool busy = false;
    std::vector<std::shared_ptr<Registry>> registries;
    {
      std::lock_guard r(shared_->registries_mutex);
      registries = shared_->registries;
    }
    for (auto& registry : registries) {
      std::lock_guard r(registry->mutex);
      for (auto& [fd, c] : registry->connections) {
        if (c->state == State::Body || (c->state == State::Header && c->saw_bytes) ||
            c->pending_writes.load() > 0) {
          busy = true;
        }
      }
    }
    if (!busy) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->reaper.joinable()) impl_->reaper.join();
  impl_->listener->shutdown();
}

}  // namespace mailconfd::http
