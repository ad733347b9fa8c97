#include "tls_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace e2e {

Certificate make_certificate(const std::string& dir, const std::string& name,
                             const std::string& common_name) {
  Certificate c{dir + "/" + name + ".crt", dir + "/" + name + ".key"};
  const CommandResult r = run_command(
      {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-keyout", c.key, "-out", c.certificate, "-days", "2", "-subj", "/CN=" + common_name,
       "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"});
  if (r.exit_code != 0) throw std::runtime_error("openssl req failed: " + r.err);
  return c;
}

void write_tls_config(const std::string& path, const Certificate& certificate,
                      const std::string& handshake_timeout) {
  std::string text = read_file(std::string(MAILCONFD_SOURCE_DIR) + "/deploy/example/mailconfd.xml");
  const std::string anchor = "  </server>";
  const auto at = text.find(anchor);
  if (at == std::string::npos) throw std::runtime_error("example config has no </server>");
  text.insert(at, "    <tls listen=\"127.0.0.1:443\" certificate=\"" + certificate.certificate +
                      "\" key=\"" + certificate.key + "\" handshake-timeout=\"" +
                      handshake_timeout + "\"/>\n");
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

void TlsClient::set_timeout(std::chrono::milliseconds timeout) {
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

TlsClient::TlsClient(std::uint16_t port, const std::string& ca, std::chrono::milliseconds timeout) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    error_ = "connect failed";
    return;
  }
  ctx_ = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_load_verify_locations(ctx_, ca.c_str(), nullptr) != 1) {
    error_ = "cannot load " + ca;
    return;
  }
  static const unsigned char alpn[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_CTX_set_alpn_protos(ctx_, alpn, sizeof alpn);
  ssl_ = SSL_new(ctx_);
  SSL_set_fd(ssl_, fd_);
  SSL_set1_host(ssl_, "127.0.0.1");
  ERR_clear_error();
  if (SSL_connect(ssl_) != 1) {
    char text[256] = "handshake failed";
    if (const unsigned long e = ERR_get_error()) ERR_error_string_n(e, text, sizeof text);
    error_ = text;
    ERR_clear_error();
    return;
  }
  ok_ = true;
}

TlsClient::~TlsClient() {
  if (ssl_) SSL_free(ssl_);
  if (ctx_) SSL_CTX_free(ctx_);
  if (fd_ >= 0) ::close(fd_);
}

std::string TlsClient::subject_cn() const {
  X509* cert = ssl_ ? SSL_get1_peer_certificate(ssl_) : nullptr;
  if (!cert) return {};
  char cn[256] = "";
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  X509_free(cert);
  return cn;
}

std::string TlsClient::alpn() const {
  const unsigned char* data = nullptr;
  unsigned int length = 0;
  if (ssl_) SSL_get0_alpn_selected(ssl_, &data, &length);
  return data ? std::string(reinterpret_cast<const char*>(data), length) : std::string();
}

std::string TlsClient::version() const { return ssl_ ? SSL_get_version(ssl_) : ""; }

bool TlsClient::send(std::string_view bytes) {
  if (!ok_) return false;
  while (!bytes.empty()) {
    const int n = SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()));
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool TlsClient::fill() {
  char buffer[16384];
  const int n = SSL_read(ssl_, buffer, sizeof buffer);
  if (n <= 0) return false;
  buffer_.append(buffer, static_cast<std::size_t>(n));
  return true;
}

Response TlsClient::read_response(bool head_only) {
  if (!ok_) return {};
  while (true) {
    std::string copy = buffer_;
    Response r = take_response(copy, head_only);
    if (r.complete) {
      buffer_ = copy;
      return r;
    }
    if (!fill()) return {};
  }
}

bool TlsClient::read_close_notify() {
  if (!ok_) return false;
  char buffer[4096];
  while (true) {
    const int n = SSL_read(ssl_, buffer, sizeof buffer);
    if (n > 0) continue;
    const bool clean = SSL_get_error(ssl_, n) == SSL_ERROR_ZERO_RETURN;
    ERR_clear_error();
    return clean;
  }
}

void TlsClient::reset() {
  if (fd_ < 0) return;
  linger l{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd_);
  fd_ = -1;
}

Response https_get(std::uint16_t port, const std::string& ca, const std::string& target) {
  TlsClient client(port, ca);
  client.send("GET " + target + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  return client.read_response();
}

}  // namespace e2e
