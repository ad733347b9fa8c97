#include "tls/validation.h"

#include <algorithm>
#include <array>
#include <optional>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/ascii.h"
#include "sign/openssl.h"

namespace mailconfd::tls {
namespace {

constexpr unsigned char kAlpnAcme[] = {10, 'a', 'c', 'm', 'e', '-', 't', 'l', 's', '/', '1'};

struct Made {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{nullptr, EVP_PKEY_free};
  std::unique_ptr<X509, decltype(&X509_free)> certificate{nullptr, X509_free};
};

using Digest = std::array<unsigned char, 32>;

std::optional<Digest> sha256(std::string_view key_authorization) {
  Digest digest{};
  unsigned int length = 0;
  if (EVP_Digest(key_authorization.data(), key_authorization.size(), digest.data(), &length,
                 EVP_sha256(), nullptr) != 1 ||
      length != digest.size()) {
    return std::nullopt;
  }
  return digest;
}

// 64 lowercase hexadecimal digits, as the database stores it.
std::string to_hex(const Digest& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (const unsigned char b : digest) {
    hex.push_back(kHex[b >> 4]);
    hex.push_back(kHex[b & 15]);
  }
  return hex;
}

// 64 lowercase hexadecimal digits; nullopt for anything else.
std::optional<Digest> from_hex(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  Digest digest{};
  for (std::size_t i = 0; i < digest.size(); ++i) {
    const int high = nibble(hex[2 * i]), low = nibble(hex[2 * i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    digest[i] = static_cast<unsigned char>(high << 4 | low);
  }
  return digest;
}

// RFC 8737 §3: self-signed, one dNSName, and the critical id-pe-acmeIdentifier extension
// whose value is the DER OCTET STRING of SHA-256(key authorization), given as that digest.
bool make(const std::string& name, const Digest& sha256_digest, Made& out) {
  out.key.reset(EVP_EC_gen("P-256"));
  out.certificate.reset(X509_new());
  if (!out.key || !out.certificate) return false;
  X509* x = out.certificate.get();
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return false;
  serial[0] &= 0x7f;
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(BN_bin2bn(serial, sizeof serial, nullptr),
                                                 BN_free);
  if (!bn || X509_set_version(x, X509_VERSION_3) != 1 ||
      !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(x)) ||
      !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
      !X509_gmtime_adj(X509_getm_notAfter(x), 7 * 86400) ||
      X509_set_pubkey(x, out.key.get()) != 1) {
    return false;
  }
  X509_NAME* subject = X509_get_subject_name(x);
  if (X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1,
                                 0) != 1 ||
      X509_set_issuer_name(x, subject) != 1) {
    return false;
  }
  const std::string san = "DNS:" + name;
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x, x, nullptr, nullptr, 0);
  X509_EXTENSION* alt = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, san.c_str());
  if (!alt) return false;
  const int added = X509_add_ext(x, alt, -1);
  X509_EXTENSION_free(alt);
  if (added != 1) return false;

  unsigned char digest[34] = {0x04, 0x20};  // OCTET STRING, 32 bytes
  std::copy(sha256_digest.begin(), sha256_digest.end(), digest + 2);
  std::unique_ptr<ASN1_OBJECT, decltype(&ASN1_OBJECT_free)> oid(
      OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1), ASN1_OBJECT_free);
  std::unique_ptr<ASN1_OCTET_STRING, decltype(&ASN1_OCTET_STRING_free)> value(
      ASN1_OCTET_STRING_new(), ASN1_OCTET_STRING_free);
  if (!oid || !value || ASN1_OCTET_STRING_set(value.get(), digest, sizeof digest) != 1) {
    return false;
  }
  X509_EXTENSION* identifier = X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), 1, value.get());
  if (!identifier) return false;
  const int added_identifier = X509_add_ext(x, identifier, -1);
  X509_EXTENSION_free(identifier);
  return added_identifier == 1 && X509_sign(x, out.key.get(), EVP_sha256()) > 0;
}

int select_acme_alpn(SSL*, const unsigned char** out, unsigned char* outlen,
                     const unsigned char* in, unsigned int inlen, void*) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kAlpnAcme, sizeof kAlpnAcme, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

// The validation context for name and digest; null with error set on an OpenSSL failure.
std::shared_ptr<const Context> validation_context(const std::string& name, const Digest& digest,
                                                  std::string& error) {
  ERR_clear_error();
  Made made;
  SSL_CTX* ctx = nullptr;
  if (!make(name, digest, made) || !(ctx = SSL_CTX_new(TLS_server_method()))) {
    error = "tls-alpn-01 certificate for " + name + ": " + sign::openssl_error();
    return nullptr;
  }
  auto context = Context::adopt(ctx, "CN=" + name + " (tls-alpn-01)");
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_alpn_select_cb(ctx, select_acme_alpn, nullptr);
  if (SSL_CTX_use_certificate(ctx, made.certificate.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, made.key.get()) != 1) {
    error = "tls-alpn-01 certificate for " + name + ": " + sign::openssl_error();
    return nullptr;
  }
  return context;
}

int ex_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// True when the ALPN extension (RFC 7301 wire format) lists acme-tls/1.
bool offers_acme_alpn(const unsigned char* p, std::size_t size) {
  if (size < 2) return false;
  std::size_t list = (std::size_t{p[0]} << 8) | p[1];
  if (list + 2 != size) return false;
  p += 2;
  while (list > 0) {
    const std::size_t n = p[0];
    if (n + 1 > list) return false;
    if (std::string_view(reinterpret_cast<const char*>(p + 1), n) == kAcmeTlsAlpn) return true;
    p += n + 1;
    list -= n + 1;
  }
  return false;
}

// The host_name of the server_name extension (RFC 6066 §3), lowercase; empty if none.
std::string sni_of(const unsigned char* p, std::size_t size) {
  if (size < 5) return {};
  const std::size_t list = (std::size_t{p[0]} << 8) | p[1];
  if (list + 2 != size || p[2] != 0) return {};
  const std::size_t n = (std::size_t{p[3]} << 8) | p[4];
  if (n + 5 > size || n == 0 || n > 253) return {};
  std::string name = ascii_lower(std::string_view(reinterpret_cast<const char*>(p + 5), n));
  if (name.back() == '.') name.pop_back();
  return name;
}

// Runs first in every handshake. Costs one atomic load unless a challenge is pending.
int on_client_hello(SSL* ssl, int*, void*) {
  if (alpn_challenges().empty()) return SSL_CLIENT_HELLO_SUCCESS;
  const unsigned char* alpn = nullptr;
  std::size_t alpn_size = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &alpn,
                                &alpn_size) != 1 ||
      !offers_acme_alpn(alpn, alpn_size)) {
    return SSL_CLIENT_HELLO_SUCCESS;
  }
  const unsigned char* sni = nullptr;
  std::size_t sni_size = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &sni, &sni_size) != 1) {
    return SSL_CLIENT_HELLO_SUCCESS;
  }
  auto context = alpn_challenges().find(sni_of(sni, sni_size));
  if (!context) return SSL_CLIENT_HELLO_SUCCESS;
  // SSL_set_SSL_CTX takes a reference: the challenge may end while this handshake runs.
  SSL_set_SSL_CTX(ssl, context->get());
  SSL_set_ex_data(ssl, ex_index(), ssl);
  return SSL_CLIENT_HELLO_SUCCESS;
}

}  // namespace

std::string validation_certificate_pem(const std::string& name,
                                       std::string_view key_authorization) {
  Made made;
  std::string pem;
  const auto digest = sha256(key_authorization);
  if (!digest || !make(name, *digest, made)) {
    ERR_clear_error();
    return pem;
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (bio && PEM_write_bio_X509(bio.get(), made.certificate.get()) == 1) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    pem.assign(data, static_cast<std::size_t>(n));
  }
  return pem;
}

std::string key_authorization_digest(std::string_view key_authorization) {
  const auto digest = sha256(key_authorization);
  return digest ? to_hex(*digest) : std::string();
}

bool AlpnChallenges::put(const std::string& name, std::string_view key_authorization,
                         std::string& error) {
  const auto digest = sha256(key_authorization);
  if (!digest) return error = "tls-alpn-01 digest for " + name + ": OpenSSL failed", false;
  auto context = validation_context(name, *digest, error);
  if (!context) return false;
  const std::string hex = to_hex(*digest);
  Hook hook;
  {
    std::lock_guard lock(mutex_);
    answers_[name] = std::move(context);
    recount();
    hook = hook_;
  }
  if (hook) hook(name, &hex);
  return true;
}

void AlpnChallenges::erase(const std::string& name) {
  Hook hook;
  {
    std::lock_guard lock(mutex_);
    answers_.erase(name);
    recount();
    hook = hook_;
  }
  if (hook) hook(name, nullptr);
}

std::shared_ptr<const Context> AlpnChallenges::find(std::string_view name) const {
  if (name.empty()) return nullptr;
  std::lock_guard lock(mutex_);
  if (auto it = answers_.find(name); it != answers_.end()) return it->second;
  if (auto it = shared_.find(name); it != shared_.end()) return it->second.context;
  return nullptr;
}

void AlpnChallenges::set_hook(Hook hook) {
  std::lock_guard lock(mutex_);
  hook_ = std::move(hook);
}

bool AlpnChallenges::set_shared(const std::unordered_map<std::string, std::string>& shared,
                                std::vector<std::string>& added, std::string& error) {
  core::StringMap<Answer> next;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, digest] : shared) {
      auto it = shared_.find(name);
      if (it != shared_.end() && it->second.digest == digest) next.emplace(name, it->second);
    }
  }
  bool ok = true;
  // The new ones are made outside the lock (a key generation each): handshakes go on.
  for (const auto& [name, hex] : shared) {
    if (next.contains(name)) continue;
    std::string why;
    const auto digest = from_hex(hex);
    auto context = digest ? validation_context(name, *digest, why) : nullptr;
    if (!digest) why = "tls-alpn-01 challenge for " + name + ": not a SHA-256 digest";
    if (!context) {
      if (ok) error = why;
      ok = false;
      continue;
    }
    next.emplace(name, Answer{hex, std::move(context)});
    added.push_back(name);
  }
  std::lock_guard lock(mutex_);
  shared_ = std::move(next);
  recount();
  return ok;
}

void AlpnChallenges::clear_shared() {
  std::lock_guard lock(mutex_);
  shared_.clear();
  recount();
}

void AlpnChallenges::recount() {
  count_.store(answers_.size() + shared_.size(), std::memory_order_release);
}

AlpnChallenges& alpn_challenges() {
  static AlpnChallenges challenges;
  return challenges;
}

void answer_alpn_challenges(ssl_ctx_st* ctx) {
  SSL_CTX_set_client_hello_cb(ctx, on_client_hello, nullptr);
}

bool answering_alpn_challenge(const ssl_st* ssl) {
  return SSL_get_ex_data(ssl, ex_index()) != nullptr;
}

}  // namespace mailconfd::tls
