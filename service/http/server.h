// The HTTP/1.1 and HTTPS server. Pistache's reactor (Aio::Reactor: one epoll worker thread
// per core) is the one event mechanism for both listeners: each worker accepts its own plain
// and TLS connections (one socket of each SO_REUSEPORT group per worker), owns them on its
// thread alone, and drives each through a Session (session.h), the single connection engine
// for framing, limits, output cap, back-pressure, deadlines and in-flight accounting, over a
// plain or TLS Transport (transport.h). Only server.cpp knows Pistache.
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
  // Serves app from a slot of its own (tests, one-listener tools).
  explicit Server(std::shared_ptr<const App> app);
  // Serves whatever slot holds (never null): the process's one snapshot, which the publisher
  // (daemon/publisher.h) replaces and every listener reads, one load per round of events.
  explicit Server(std::shared_ptr<AppSlot> slot);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts the workers. Throws std::runtime_error (with the OS reason) on failure.
  // surface: which URLs this listener serves (the separate metrics listener serves few).
  void start(const ListenAddress& listen, unsigned threads, Surface surface = Surface::All);
  std::uint16_t port() const;

  // Starts the HTTPS listener on the same workers (the snapshot's <tls> settings apply per
  // connection). Call after start(). Throws std::runtime_error (with the OS reason) on failure.
  void start_tls(const ListenAddress& listen);
  std::uint16_t tls_port() const;  // 0 without HTTPS

  // Stores a new snapshot in the slot (every Server sharing it sees it); requests already
  // running finish on the old one.
  void swap(std::shared_ptr<const App> app);
  std::shared_ptr<const App> app() const;

  // Drains, then stops. From the first moment: new plain connections get 503 and are closed,
  // HTTPS stops accepting, idle keep-alive connections are closed, and every answer closes
  // its connection. Requests in flight on either listener (head or body still arriving,
  // answer still queued; a connection that has sent nothing yet gets kDrainFresh) may finish
  // for up to grace: stop() waits on their exact count (InFlight), not on a timer; then every
  // connection is closed and Pistache's reactor shut down. Pistache's own shutdown does not
  // drain (pistache.md #4); main still runs a watchdog in case a worker hangs.
  void stop(std::chrono::milliseconds grace);

  std::size_t open_connections() const;

  struct Shared;

 private:
  std::shared_ptr<Shared> shared_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailconfd::http
