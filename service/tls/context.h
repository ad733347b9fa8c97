// The server side of TLS settings: certificate, key and chain read from files into an
// OpenSSL SSL_CTX (TLS 1.2+, forward-secret AEAD ciphers, ALPN http/1.1). Built by the config
// loader, so a reload that cannot read its certificate is refused and the old one keeps serving.
#pragma once

#include <memory>
#include <string>

struct ssl_ctx_st;

namespace mailconfd::tls {

class Context {
 public:
  // Loads certificate (PEM, leaf first, may carry the chain), key (PEM) and optionally a
  // separate chain file (PEM). On failure returns null and sets error to a sentence naming
  // the file and OpenSSL's reason.
  static std::shared_ptr<const Context> load(const std::string& certificate, const std::string& key,
                                             const std::string& chain, std::string& error);
  // Takes ownership of a context built elsewhere in tls/ (the tls-alpn-01 validation one).
  static std::shared_ptr<const Context> adopt(ssl_ctx_st* ctx, std::string subject);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  ssl_ctx_st* get() const { return ctx_; }
  const std::string& subject() const { return subject_; }  // of the leaf, for the log

 private:
  explicit Context(ssl_ctx_st* ctx) : ctx_(ctx) {}
  ssl_ctx_st* ctx_;
  std::string subject_;
};

}  // namespace mailconfd::tls
