// The cryptography an ACME client needs (RFC 8555 §6.2, RFC 7515/7517/7638), with OpenSSL:
// the account key (EC P-256, ES256), its JWK and thumbprint, flattened JWS, certificate keys
// and CSRs. Nothing here touches the network.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "sign/openssl.h"

namespace mailconfd::acme {

std::string base64url(std::string_view bytes);

class AccountKey {
 public:
  // Reads the PEM key at path, or creates one there (mode 0600, written atomically) when
  // there is none. nullopt with error set when neither works.
  static std::optional<AccountKey> load_or_create(const std::string& path, std::string& error);

  // {"crv":"P-256","kty":"EC","x":"…","y":"…"}: members in lexical order (RFC 7638).
  const std::string& jwk() const { return jwk_; }
  // base64url(SHA-256(jwk)): the second half of every key authorization.
  const std::string& thumbprint() const { return thumbprint_; }
  // A flattened JWS of payload (may be empty: POST-as-GET) with protected header fields
  // url, nonce and either "jwk" (kid empty) or "kid". Empty on an OpenSSL failure.
  std::string sign(std::string_view url, std::string_view nonce, std::string_view kid,
                   std::string_view payload) const;

 private:
  std::shared_ptr<EVP_PKEY> key_;
  std::string jwk_, thumbprint_;
};

// A new EC P-256 private key for a certificate, as PEM; empty on failure.
std::string new_certificate_key();
// A DER CSR for name signed with key_pem; empty on failure.
std::string make_csr(const std::string& name, const std::string& key_pem);

// Writes data to path atomically (a temporary file beside it, fsync, rename) with mode.
bool write_file_atomically(const std::string& path, std::string_view data, unsigned mode,
                           std::string& error);

}  // namespace mailconfd::acme
