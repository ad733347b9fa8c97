// End-to-end test support for HTTPS: certificates made at run time with the openssl command
// (never committed), and a small blocking OpenSSL client that verifies the server against
// that certificate and speaks raw HTTP over the TLS connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "service.h"

struct ssl_st;
struct ssl_ctx_st;

namespace e2e {

struct Certificate {
  std::string certificate;  // PEM path; self-signed, also the client's trust anchor
  std::string key;          // PEM path
};
// A self-signed P-256 certificate for CN=common_name, SAN 127.0.0.1 and localhost, written as
// DIR/NAME.crt and DIR/NAME.key.
Certificate make_certificate(const std::string& dir, const std::string& name,
                             const std::string& common_name);

// The example configuration with <tls certificate= key= handshake-timeout=> added, written to
// PATH.
void write_tls_config(const std::string& path, const Certificate& certificate,
                      const std::string& handshake_timeout = "10s");

class TlsClient {
 public:
  // Connects to 127.0.0.1:port and completes the handshake, trusting ca (a PEM file), with
  // every socket operation bounded by timeout. ok() tells whether it worked.
  TlsClient(std::uint16_t port, const std::string& ca,
            std::chrono::milliseconds timeout = std::chrono::seconds(5));
  ~TlsClient();
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  bool ok() const { return ok_; }
  // Bounds every later socket operation by timeout instead.
  void set_timeout(std::chrono::milliseconds timeout);
  std::string error() const { return error_; }
  std::string subject_cn() const;  // of the server's certificate
  std::string alpn() const;
  std::string version() const;  // "TLSv1.3"
  bool send(std::string_view bytes);
  Response read_response(bool head_only = false);
  // True when the server ends the TLS session with close_notify (clean), false on a plain
  // EOF, reset or timeout.
  bool read_close_notify();
  // Drops the connection with a TCP reset (SO_LINGER 0), without close_notify.
  void reset();

 private:
  bool fill();
  int fd_ = -1;
  ssl_ctx_st* ctx_ = nullptr;
  ssl_st* ssl_ = nullptr;
  bool ok_ = false;
  std::string error_;
  std::string buffer_;
};

// One GET over a fresh TLS connection.
Response https_get(std::uint16_t port, const std::string& ca, const std::string& target);

}  // namespace e2e
