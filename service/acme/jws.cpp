#include "acme/jws.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include <nlohmann/json.hpp>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

namespace mailconfd::acme {
namespace {

using sign::BioPtr;
using sign::EvpPkeyPtr;

EVP_PKEY* generate_p256() { return EVP_EC_gen("P-256"); }

std::string pem_of(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return {};
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

EVP_PKEY* key_of(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
}

std::string coordinate(EVP_PKEY* key, const char* name) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) return {};
  std::string out(32, '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), 32);
  BN_free(bn);
  return base64url(out);
}

}  // namespace

std::string base64url(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (i + 2 == bytes.size()) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

std::optional<AccountKey> AccountKey::load_or_create(const std::string& path, std::string& error) {
  std::string pem;
  if (FILE* f = std::fopen(path.c_str(), "r")) {
    char buffer[4096];
    std::size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) pem.append(buffer, n);
    std::fclose(f);
  } else if (errno != ENOENT) {
    error = "cannot read account key '" + path + "': " + std::strerror(errno);
    return std::nullopt;
  }
  EVP_PKEY* raw = nullptr;
  if (pem.empty()) {
    raw = generate_p256();
    if (!raw) {
      error = "cannot generate an account key: " + sign::openssl_error();
      return std::nullopt;
    }
    if (!write_file_atomically(path, pem_of(raw), 0600, error)) {
      EVP_PKEY_free(raw);
      return std::nullopt;
    }
  } else {
    raw = key_of(pem);
    if (!raw || EVP_PKEY_get_base_id(raw) != EVP_PKEY_EC) {
      if (raw) EVP_PKEY_free(raw);
      error = "account key '" + path + "' is not an EC P-256 key: " + sign::openssl_error();
      return std::nullopt;
    }
  }
  AccountKey account;
  account.key_.reset(raw, EVP_PKEY_free);
  const std::string x = coordinate(raw, OSSL_PKEY_PARAM_EC_PUB_X);
  const std::string y = coordinate(raw, OSSL_PKEY_PARAM_EC_PUB_Y);
  if (x.empty() || y.empty()) {
    error = "account key '" + path + "': cannot read its public point";
    return std::nullopt;
  }
  account.jwk_ = R"({"crv":"P-256","kty":"EC","x":")" + x + R"(","y":")" + y + R"("})";
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(account.jwk_.data()), account.jwk_.size(), digest);
  account.thumbprint_ = base64url(std::string_view(reinterpret_cast<char*>(digest), sizeof digest));
  return account;
}

std::string AccountKey::sign(std::string_view url, std::string_view nonce, std::string_view kid,
                             std::string_view payload) const {
  nlohmann::json header = {{"alg", "ES256"}, {"nonce", nonce}, {"url", url}};
  if (kid.empty()) {
    header["jwk"] = nlohmann::json::parse(jwk_);
  } else {
    header["kid"] = kid;
  }
  const std::string protected64 = base64url(header.dump());
  const std::string payload64 = base64url(payload);
  const std::string input = protected64 + "." + payload64;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::size_t size = 0;
  if (!md || EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
      EVP_DigestSign(md.get(), nullptr, &size, reinterpret_cast<const unsigned char*>(input.data()),
                     input.size()) != 1) {
    return {};
  }
  std::vector<unsigned char> der(size);
  if (EVP_DigestSign(md.get(), der.data(), &size,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    return {};
  }
  // JWS wants r || s, 32 bytes each, not DER (RFC 7518 §3.4).
  const unsigned char* p = der.data();
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(size));
  if (!sig) return {};
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(sig);
  return nlohmann::json{
      {"protected", protected64}, {"payload", payload64}, {"signature", base64url(raw)}}
      .dump();
}

std::string new_certificate_key() {
  EvpPkeyPtr key(generate_p256());
  return key ? pem_of(key.get()) : std::string();
}

std::string make_csr(const std::string& name, const std::string& key_pem) {
  EvpPkeyPtr key(key_of(key_pem));
  if (!key) return {};
  std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> req(X509_REQ_new(), X509_REQ_free);
  if (!req) return {};
  X509_NAME* subject = X509_REQ_get_subject_name(req.get());
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  STACK_OF(X509_EXTENSION)* extensions = sk_X509_EXTENSION_new_null();
  const std::string san = "DNS:" + name;
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
  if (!extensions || !ext) {
    if (ext) X509_EXTENSION_free(ext);
    sk_X509_EXTENSION_free(extensions);
    return {};
  }
  sk_X509_EXTENSION_push(extensions, ext);
  const bool ok = X509_REQ_add_extensions(req.get(), extensions) == 1 &&
                  X509_REQ_set_pubkey(req.get(), key.get()) == 1 &&
                  X509_REQ_sign(req.get(), key.get(), EVP_sha256()) > 0;
  sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
  if (!ok) return {};
  unsigned char* der = nullptr;
  const int n = i2d_X509_REQ(req.get(), &der);
  if (n <= 0) return {};
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
  OPENSSL_free(der);
  return out;
}

bool write_file_atomically(const std::string& path, std::string_view data, unsigned mode,
                           std::string& error) {
  const std::string temporary = path + ".tmp";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    error = "cannot write '" + temporary + "': " + std::strerror(errno);
    return false;
  }
  ::fchmod(fd, mode);  // O_CREAT's mode passes the umask, and an old file keeps its own
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n <= 0) {
      error = "cannot write '" + temporary + "': " + std::strerror(errno);
      ::close(fd);
      ::unlink(temporary.c_str());
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0 || ::rename(temporary.c_str(), path.c_str()) != 0) {
    error = "cannot write '" + path + "': " + std::strerror(errno);
    ::unlink(temporary.c_str());
    return false;
  }
  return true;
}

}  // namespace mailconfd::acme
