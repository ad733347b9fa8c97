// The byte pipe under a Session (session.h): a plain TCP socket or a TLS connection over
// one, as nginx's c->recv / c->send. Non-blocking; the Session decides when to call what, so
// limits, back-pressure and deadlines do not depend on which transport carries the bytes.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include <openssl/ssl.h>

#include "core/peer.h"
#include "tls/certificates.h"

namespace mailconfd::http {

// What a call could not finish for.
enum class Io {
  Done,       // finished (handshake) or moved bytes
  WantRead,   // try again once the socket is readable
  WantWrite,  // try again once the socket is writable
  Closed,     // end of stream, reset or a protocol error: the peer is gone
};

class Transport {
 public:
  virtual ~Transport() = default;

  // Advances the transport's own setup (the TLS handshake); Done once it is complete.
  virtual Io handshake() = 0;
  // Reads at most size bytes into data; returns how many (0 with io saying why).
  virtual std::size_t read(char* data, std::size_t size, Io& io) = 0;
  // Writes a prefix of data; returns how many bytes it took (0 with io saying why). last:
  // the connection's final bytes, so the FIN that finish() sends may share their segment.
  virtual std::size_t write(std::string_view data, bool last, Io& io) = 0;
  // After the last answer is written: TLS close_notify, then FIN.
  virtual void finish() = 0;
  virtual bool secure() const = 0;

  // The client's address, from accept (unknown until set). For decisions about the client
  // only (http/request.h Request::peer); never logged.
  const PeerAddress& peer() const { return peer_; }
  void set_peer(const PeerAddress& peer) { peer_ = peer; }

 private:
  PeerAddress peer_;
};

// A plain TCP socket; owns fd (closes it).
std::unique_ptr<Transport> plain_transport(int fd);

// TLS over fd (owns fd and the SSL session), server side: starts with certificates' default
// and switches to the one for the name the client sends (SNI). Returns nullptr when OpenSSL
// cannot create the session (logged).
std::unique_ptr<Transport> tls_transport(int fd,
                                         std::shared_ptr<const tls::CertificateSet> certificates);

}  // namespace mailconfd::http
