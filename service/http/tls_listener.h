// The HTTPS listener: mailconfd's own event loops (epoll, non-blocking sockets) drive TLS
// handshakes and records with OpenSSL and feed the decrypted bytes to the same Session as
// the plain listener. Pistache's TLS is not used: it runs SSL_accept blocking in its one
// accept thread, so one silent client stalls every new connection (pistache.md #1-#3, #19).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "config/config_file.h"
#include "http/session.h"

namespace mailconfd::http {

class TlsListener {
 public:
  // state: shared with the plain listener (snapshot, connection count, draining). The TLS
  // settings (context, handshake timeout) are read from the current snapshot per connection,
  // so a reload's new certificate is used by the next handshake.
  explicit TlsListener(std::shared_ptr<ServerState> state);
  ~TlsListener();
  TlsListener(const TlsListener&) = delete;
  TlsListener& operator=(const TlsListener&) = delete;

  // Binds and starts threads event loops (0: one per core). Throws std::runtime_error with
  // the OS reason on failure.
  void start(const ListenAddress& listen, unsigned threads);
  std::uint16_t port() const;

  // Connections with a request not yet answered or an answer not yet written.
  std::size_t in_flight() const;

  // Closes every connection and joins the loops.
  void stop();

 private:
  struct Loop;
  std::shared_ptr<ServerState> state_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::vector<std::unique_ptr<Loop>> loops_;
};

}  // namespace mailconfd::http
