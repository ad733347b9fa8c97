#include "tls/context.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
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

// Session tickets (RFC 5077, and TLS 1.3's): one set of keys for the whole process, so every
// worker and every context (each certificate, the contexts of the next reload) accepts the
// tickets the others issued. A new key every 12 hours; tickets under the previous one are
// still accepted (and renewed) for another 12, so a ticket lives at most a day.
class TicketKeys {
 public:
  struct Key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    std::chrono::steady_clock::time_point created;
  };
  static constexpr auto kRotation = std::chrono::hours(12);

  // The key new tickets are sealed with; false when no random bytes could be had.
  bool current(Key& out) {
    std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (keys_.empty() || now - keys_.front().created >= kRotation) {
      Key key{};
      if (RAND_bytes(key.name, sizeof key.name) != 1 || RAND_bytes(key.aes, sizeof key.aes) != 1 ||
          RAND_bytes(key.hmac, sizeof key.hmac) != 1) {
        return false;
      }
      key.created = now;
      keys_.push_front(key);
      while (keys_.size() > 2) keys_.pop_back();
    }
    out = keys_.front();
    return true;
  }

  // The key a ticket names: 1 current, 2 the previous (renew the ticket), 0 unknown.
  int find(const unsigned char* name, Key& out) {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < keys_.size(); ++i) {
      if (std::memcmp(keys_[i].name, name, sizeof keys_[i].name) == 0) {
        out = keys_[i];
        return i == 0 && std::chrono::steady_clock::now() - keys_[i].created < kRotation ? 1 : 2;
      }
    }
    return 0;
  }

 private:
  std::mutex mutex_;
  std::deque<Key> keys_;  // newest first
};

TicketKeys& ticket_keys() {
  static TicketKeys keys;
  return keys;
}

bool set_mac_key(EVP_MAC_CTX* mac, unsigned char* key, std::size_t size) {
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, size),
                         OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  return EVP_MAC_CTX_set_params(mac, params) == 1;
}

int on_ticket_key(SSL*, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                  EVP_MAC_CTX* mac, int encrypt) {
  TicketKeys::Key key;
  if (encrypt) {
    if (!ticket_keys().current(key) || RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) return -1;
    std::memcpy(key_name, key.name, sizeof key.name);
    if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes, iv) != 1 ||
        !set_mac_key(mac, key.hmac, sizeof key.hmac)) {
      return -1;
    }
    return 1;
  }
  const int found = ticket_keys().find(key_name, key);
  if (found == 0) return 0;  // unknown or expired key: a full handshake
  if (!set_mac_key(mac, key.hmac, sizeof key.hmac) ||
      EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes, iv) != 1) {
    return -1;
  }
  return found;
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
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket_key);

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

std::shared_ptr<const Context> Context::adopt(ssl_ctx_st* ctx, std::string subject) {
  std::shared_ptr<Context> context(new Context(ctx));
  context->subject_ = std::move(subject);
  return context;
}

Context::~Context() { SSL_CTX_free(ctx_); }

}  // namespace mailconfd::tls
