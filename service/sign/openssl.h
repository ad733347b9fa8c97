// OpenSSL handles as std::unique_ptr with their free functions, and the error queue as one
// string.
#pragma once

#include <memory>
#include <string>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

namespace mailconfd::sign {

template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};

using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using CmsPtr = std::unique_ptr<CMS_ContentInfo, Deleter<CMS_ContentInfo_free>>;

inline void free_x509_stack(STACK_OF(X509) * stack) { sk_X509_pop_free(stack, X509_free); }
using X509StackPtr = std::unique_ptr<STACK_OF(X509), Deleter<free_x509_stack>>;

// Drains this thread's OpenSSL error queue into one line ("reason; reason"), so that no stale
// error is left for the next call. Returns if_empty when the queue is empty. Used by every
// part of mailconfd that talks to OpenSSL (sign/, tls/, http/transport, probe/).
inline std::string openssl_error(const char* if_empty = "unknown OpenSSL error") {
  std::string out;
  char buffer[256];
  while (const unsigned long code = ERR_get_error()) {
    ERR_error_string_n(code, buffer, sizeof buffer);
    if (!out.empty()) out.append("; ");
    out.append(buffer);
  }
  return out.empty() ? std::string(if_empty) : out;
}

}  // namespace mailconfd::sign
