// The HTTP/1.1 server. Pistache's reactor and Tcp::Transport own the epoll worker threads,
// the peers and their reads; each worker also accepts its own connections from a socket of
// one SO_REUSEPORT group (server.cpp: AcceptingTransport, in place of Pistache's single
// accept thread). mailconfd owns everything above the bytes: the session (session.h:
// framing, keep-alive, pipelining), timeouts (a reaper thread), connection limits and
// writing. HTTPS runs on mailconfd's own loops (tls_listener.h), with the same sessions,
// limits and snapshot. Only server.cpp knows Pistache.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "app.h"
#include "config/config_file.h"
#include "http/request.h"

namespace mailconfd::http {

class Server {
 public:
  explicit Server(std::shared_ptr<const App> app);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts the workers. Throws std::runtime_error (with the OS reason) on failure.
  // surface: which URLs this listener serves (the separate metrics listener serves few).
  void start(const ListenAddress& listen, unsigned threads, Surface surface = Surface::All);
  std::uint16_t port() const;

  // Starts the HTTPS listener (the snapshot's <tls> settings apply per connection). Call after
  // start(). Throws std::runtime_error (with the OS reason) on failure.
  void start_tls(const ListenAddress& listen, unsigned threads);
  std::uint16_t tls_port() const;  // 0 without HTTPS

  // Swaps in a new snapshot; requests already running finish on the old one.
  void swap(std::shared_ptr<const App> app);
  std::shared_ptr<const App> app() const;

  // Drains, then stops. From the first moment: new connections get 503 and are closed, idle
  // keep-alive connections are closed, and every answer closes its connection. Requests in
  // flight (head or body still arriving, answer still queued) may finish for up to grace;
  // then every connection is closed and Pistache's reactor shut down. Pistache's own shutdown
  // does not drain (pistache.md #4); main still runs a watchdog in case a worker hangs.
  void stop(std::chrono::milliseconds grace);

  std::size_t open_connections() const;

  struct Shared;

 private:
  std::shared_ptr<Shared> shared_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailconfd::http
