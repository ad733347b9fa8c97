// The answers to ACME tls-alpn-01 challenges (RFC 8737): while mailconfd's own ACME client
// (acme/issuer.h) has a challenge pending for a name, a handshake that offers ALPN
// "acme-tls/1" with that name as SNI gets a self-signed validation certificate carrying the
// critical acmeIdentifier extension (SHA-256 of the key authorization) and ALPN acme-tls/1.
// Every other handshake is untouched. Mutable state of its own, outside the App snapshot:
// written by the issuer thread, read in the ClientHello callback of every worker; a lookup
// is one short lock, and none at all while no challenge is pending. With the ACME storage in
// the database (acme_store/), the issuing replica's challenges also go to the database (the
// hook: name and digest), and every other replica answers them from there (set_shared), so
// the CA may ask any replica.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/string_map.h"
#include "tls/context.h"

struct ssl_ctx_st;
struct ssl_st;

namespace mailconfd::tls {

inline constexpr std::string_view kAcmeTlsAlpn = "acme-tls/1";

// SHA-256 of a key authorization in lowercase hexadecimal (64 digits): what the acmeIdentifier
// extension carries, and all a replica needs to make the validation certificate.
std::string key_authorization_digest(std::string_view key_authorization);

class AlpnChallenges {
 public:
  // Called by put (digest set) and erase (digest null) after the local change, on the
  // caller's thread (the issuer's), outside the lock; put returns after it.
  using Hook = std::function<void(const std::string& name, const std::string* digest)>;

  // Makes the validation certificate for name (lowercase) and key_authorization and answers
  // with it from now on. False with error set on an OpenSSL failure.
  bool put(const std::string& name, std::string_view key_authorization, std::string& error);
  void erase(const std::string& name);
  // The validation context for name (the own challenges first, then the shared), or null.
  std::shared_ptr<const Context> find(std::string_view name) const;
  bool empty() const { return count_.load(std::memory_order_acquire) == 0; }

  void set_hook(Hook hook);
  // Replaces the challenges another replica's issuer wrote to the database: name → digest
  // (key_authorization_digest). A certificate is made only for a name that is new or whose
  // digest changed; added gets those names. False with error for the first row that could
  // not be used (not a digest, or OpenSSL failed); the others are taken all the same.
  bool set_shared(const std::unordered_map<std::string, std::string>& shared,
                  std::vector<std::string>& added, std::string& error);
  void clear_shared();

 private:
  struct Answer {
    std::string digest;
    std::shared_ptr<const Context> context;
  };
  void recount();  // mutex_ held

  mutable std::mutex mutex_;
  core::StringMap<std::shared_ptr<const Context>> answers_;
  core::StringMap<Answer> shared_;
  Hook hook_;
  std::atomic<std::size_t> count_{0};
};

// The process's challenges (every context's ClientHello callback reads them).
AlpnChallenges& alpn_challenges();

// The validation certificate alone, as PEM (for tests and the log): self-signed, EC P-256,
// subjectAltName dNSName name, critical id-pe-acmeIdentifier = SHA-256(key_authorization).
std::string validation_certificate_pem(const std::string& name, std::string_view key_authorization);

// Installs the ClientHello callback that answers acme-tls/1 on ctx (a certificate's context).
void answer_alpn_challenges(ssl_ctx_st* ctx);
// True when ssl was switched to a validation context (the SNI callback leaves it alone).
bool answering_alpn_challenge(const ssl_st* ssl);

}  // namespace mailconfd::tls
