#include "http/transport.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <spdlog/spdlog.h>

#include "sign/openssl.h"
#include "tls/certificates.h"

namespace mailconfd::http {
namespace {

class PlainTransport final : public Transport {
 public:
  explicit PlainTransport(int fd) : fd_(fd) {}
  ~PlainTransport() override { ::close(fd_); }
  PlainTransport(const PlainTransport&) = delete;
  PlainTransport& operator=(const PlainTransport&) = delete;

  Io handshake() override { return Io::Done; }

  std::size_t read(char* data, std::size_t size, Io& io) override {
    while (true) {
      const ssize_t n = ::recv(fd_, data, size, 0);
      if (n > 0) {
        io = Io::Done;
        return static_cast<std::size_t>(n);
      }
      if (n < 0 && errno == EINTR) continue;
      io = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? Io::WantRead : Io::Closed;
      return 0;
    }
  }

  std::size_t write(std::string_view data, bool last, Io& io) override {
    // MSG_MORE on the last bytes: the FIN that follows at once leaves in the same segment
    // as their tail instead of in its own.
    const int flags = MSG_NOSIGNAL | MSG_DONTWAIT | (last ? MSG_MORE : 0);
    while (true) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), flags);
      if (n >= 0) {
        io = Io::Done;
        return static_cast<std::size_t>(n);
      }
      if (errno == EINTR) continue;
      io = errno == EAGAIN || errno == EWOULDBLOCK ? Io::WantWrite : Io::Closed;
      return 0;
    }
  }

  void finish() override { ::shutdown(fd_, SHUT_WR); }
  bool secure() const override { return false; }

 private:
  int fd_;
};

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

// Every SSL_* call starts with an empty error queue and ends with SSL_get_error; a failure's
// queue entries are dropped so they cannot leak into the next connection's calls on this
// thread (pistache.md #19).
class TlsTransport final : public Transport {
 public:
  TlsTransport(int fd, SSL* ssl, std::shared_ptr<const tls::CertificateSet> certificates)
      : fd_(fd), ssl_(ssl), certificates_(std::move(certificates)) {}
  ~TlsTransport() override {
    SSL_free(ssl_);
    ::close(fd_);
  }
  TlsTransport(const TlsTransport&) = delete;
  TlsTransport& operator=(const TlsTransport&) = delete;

  Io handshake() override {
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl_);
    if (r == 1) {
      tls::count_handshake(SSL_session_reused(ssl_) == 1);
      return Io::Done;
    }
    const Io io = why(r);
    if (io == Io::Closed) {
      tls::count_handshake_failure(tls::classify_handshake_failure());
      spdlog::debug("https: handshake failed: {}", sign::openssl_error());
    }
    ERR_clear_error();
    return io;
  }

  std::size_t read(char* data, std::size_t size, Io& io) override {
    ERR_clear_error();
    const int n = SSL_read(ssl_, data, static_cast<int>(size));
    if (n > 0) {
      io = Io::Done;
      return static_cast<std::size_t>(n);
    }
    io = why(n);  // close_notify, EOF, reset or a protocol error: Closed
    ERR_clear_error();
    return 0;
  }

  std::size_t write(std::string_view data, bool, Io& io) override {
    // The context sets SSL_MODE_ENABLE_PARTIAL_WRITE and ACCEPT_MOVING_WRITE_BUFFER: the
    // Session's queue may move between a WANT_WRITE and the retry.
    ERR_clear_error();
    const int n = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
    if (n > 0) {
      io = Io::Done;
      return static_cast<std::size_t>(n);
    }
    io = why(n);
    ERR_clear_error();
    return 0;
  }

  void finish() override {
    ERR_clear_error();
    const int r = SSL_shutdown(ssl_);
    if (r < 0) (void)SSL_get_error(ssl_, r);  // nothing to retry: FIN follows either way
    ERR_clear_error();
    ::shutdown(fd_, SHUT_WR);
  }

  bool secure() const override { return true; }

 private:
  Io why(int result) const {
    switch (SSL_get_error(ssl_, result)) {
      case SSL_ERROR_WANT_READ:
        return Io::WantRead;
      case SSL_ERROR_WANT_WRITE:
        return Io::WantWrite;
      default:
        return Io::Closed;
    }
  }

  int fd_;
  SSL* ssl_;
  // The set ssl_'s SNI callback reads (CertificateSet::attach): kept alive with the session.
  std::shared_ptr<const tls::CertificateSet> certificates_;
};

}  // namespace

std::unique_ptr<Transport> plain_transport(int fd) { return std::make_unique<PlainTransport>(fd); }

std::unique_ptr<Transport> tls_transport(int fd,
                                         std::shared_ptr<const tls::CertificateSet> certificates) {
  ERR_clear_error();
  SSL* ssl = SSL_new(certificates->fallback().context->get());
  BIO* bio = ssl ? BIO_new(socket_method()) : nullptr;
  if (!bio) {
    spdlog::error("https: cannot create a TLS session: {}", sign::openssl_error());
    if (ssl) SSL_free(ssl);
    ::close(fd);
    return nullptr;
  }
  BIO_set_data(bio, reinterpret_cast<void*>(static_cast<std::intptr_t>(fd)));
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl, bio, bio);
  SSL_set_accept_state(ssl);
  certificates->attach(ssl);
  return std::make_unique<TlsTransport>(fd, ssl, std::move(certificates));
}

}  // namespace mailconfd::http
