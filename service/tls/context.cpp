#include "tls/context.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "sign/openssl.h"

namespace mailconfd::tls {
namespace {

// Wire format: length-prefixed protocol names.
constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// RFC 7301: the server picks http/1.1 when offered; a client offering only other protocols
// (h2) still gets HTTP/1.1 without ALPN rather than a failed handshake.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kAlpnHttp11, sizeof kAlpnHttp11, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

std::shared_ptr<const Context> Context::load(const std::string& certificate, const std::string& key,
                                             const std::string& chain, std::string& error) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    error = "cannot create a TLS context: " + sign::openssl_error();
    return nullptr;
  }
  std::shared_ptr<Context> context(new Context(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // TLS 1.2: ECDHE with AEAD only (Mozilla "intermediate"); TLS 1.3 suites are OpenSSL's.
  SSL_CTX_set_cipher_list(ctx,
                          "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                          "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                          "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_session_id_context(ctx, reinterpret_cast<const unsigned char*>("mailconfd"), 9);

  if (SSL_CTX_use_certificate_chain_file(ctx, certificate.c_str()) != 1) {
    error = "cannot load certificate '" + certificate + "': " + sign::openssl_error();
    return nullptr;
  }
  if (!chain.empty()) {
    FILE* f = std::fopen(chain.c_str(), "r");
    if (!f) {
      error = "cannot open chain '" + chain + "': " + std::strerror(errno);
      return nullptr;
    }
    int added = 0;
    while (X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr)) {
      if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
        X509_free(x);
        std::fclose(f);
        error = "cannot add chain certificate from '" + chain + "': " + sign::openssl_error();
        return nullptr;
      }
      ++added;
    }
    std::fclose(f);
    ERR_clear_error();  // the end-of-file "no start line" after the last certificate
    if (added == 0) {
      error = "chain '" + chain + "' contains no PEM certificate";
      return nullptr;
    }
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    error = "cannot load key '" + key + "': " + sign::openssl_error();
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    error = "key '" + key + "' does not match certificate '" + certificate +
            "': " + sign::openssl_error();
    return nullptr;
  }
  if (X509* leaf = SSL_CTX_get0_certificate(ctx)) {
    char buffer[256];
    X509_NAME_oneline(X509_get_subject_name(leaf), buffer, sizeof buffer);
    context->subject_ = buffer;
  }
  ERR_clear_error();
  return context;
}

Context::~Context() { SSL_CTX_free(ctx_); }

}  // namespace mailconfd::tls
