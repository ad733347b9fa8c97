#include "acme_store/sealed.h"

#include <memory>
#include <vector>

#include <openssl/evp.h>
#include <openssl/rand.h>

namespace mailconfd::acme_store {
namespace {

struct CipherFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherFree>;

constexpr std::string_view kSealedPrefix = "mailconfd-sealed-";

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes(in),
                                static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// Strict RFC 4648 base64 (padded, no whitespace); false for anything else.
bool unbase64(std::string_view in, std::string& out) {
  if (in.empty() || in.size() % 4 != 0) return false;
  const std::size_t padding = in.ends_with("==") ? 2 : in.ends_with('=') ? 1 : 0;
  for (const char c : in.substr(0, in.size() - padding)) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
          c == '/')) {
      return false;
    }
  }
  out.assign(in.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes(in),
                                static_cast<int>(in.size()));
  if (n < 0) return false;
  out.resize(static_cast<std::size_t>(n) - padding);
  return true;
}

}  // namespace

std::string certificate_associated_data(std::string_view name) {
  return "certificate " + std::string(name);
}

std::string seal(std::string_view key, std::string_view associated, std::string_view plain) {
  if (key.size() != kSealKeySize) return {};
  std::string raw(kSealNonceSize + plain.size() + kSealTagSize, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  CipherPtr ctx(EVP_CIPHER_CTX_new());
  int n = 0;
  int tail = 0;
  if (RAND_bytes(out, static_cast<int>(kSealNonceSize)) != 1 || !ctx ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kSealNonceSize),
                          nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key), out) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &n, bytes(associated),
                        static_cast<int>(associated.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out + kSealNonceSize, &n, bytes(plain),
                        static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out + kSealNonceSize + n, &tail) != 1 ||
      static_cast<std::size_t>(n + tail) != plain.size() ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kSealTagSize),
                          out + kSealNonceSize + plain.size()) != 1) {
    return {};
  }
  return std::string(kSealedHeader) + base64(raw);
}

Opened open_sealed(std::string_view key, std::string_view associated, std::string_view stored,
                   std::string& plain, std::string& error) {
  if (!stored.starts_with(kSealedPrefix)) {
    plain.assign(stored);
    return Opened::Plain;
  }
  if (!stored.starts_with(kSealedHeader)) {
    error = "sealed in a format this version does not know";
    return Opened::Failed;
  }
  if (key.empty()) {
    error = "sealed, and <acme> has no key-file";
    return Opened::Failed;
  }
  std::string raw;
  if (!unbase64(stored.substr(kSealedHeader.size()), raw) ||
      raw.size() < kSealNonceSize + kSealTagSize) {
    error = "sealed, but not well-formed";
    return Opened::Failed;
  }
  const std::size_t size = raw.size() - kSealNonceSize - kSealTagSize;
  auto* in = reinterpret_cast<unsigned char*>(raw.data());
  std::string out(size, '\0');
  CipherPtr ctx(EVP_CIPHER_CTX_new());
  int n = 0;
  int tail = 0;
  const bool ok =
      key.size() == kSealKeySize && ctx &&
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kSealNonceSize),
                          nullptr) == 1 &&
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key), in) == 1 &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &n, bytes(associated),
                        static_cast<int>(associated.size())) == 1 &&
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &n,
                        in + kSealNonceSize, static_cast<int>(size)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kSealTagSize),
                          in + kSealNonceSize + size) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + n, &tail) == 1;
  if (!ok) {
    error = "sealed with another key-file, for another row, or changed";
    return Opened::Failed;
  }
  plain = std::move(out);
  return Opened::Sealed;
}

}  // namespace mailconfd::acme_store
