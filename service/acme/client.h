// An ACME client (RFC 8555) for one certificate per name with http-01: account, order,
// authorization, challenge, finalize, download. HTTPS to the CA goes through libcurl; every
// call blocks, so it runs on the issuer's own thread (acme/issuer.h), never on a worker.
#pragma once

#include <chrono>
#include <optional>
#include <stop_token>
#include <string>

#include "acme/challenges.h"
#include "acme/jws.h"

namespace mailconfd::acme {

struct Issued {
  std::string certificate_pem;  // leaf first, then the chain
  std::string key_pem;
};

// Why an issuance did not give a certificate.
struct Failure {
  std::string reason;  // a sentence: the step, the status and the CA's problem document
  // From a 429 or 503 with Retry-After (or a rateLimited problem): when to ask again.
  std::optional<std::chrono::seconds> retry_after;
  bool rate_limited = false;
};

class Client {
 public:
  // directory: the CA's directory URL; ca_file: PEM bundle to verify the CA's HTTPS with
  // (empty: the system's); contact: "mailto:…" or empty.
  Client(std::string directory, std::string ca_file, std::string contact, AccountKey key);

  // Gets a certificate for name, answering its http-01 challenge through tokens. Gives up at
  // stop or after timeout. Failure is nullopt when it worked.
  std::optional<Failure> issue(const std::string& name, Tokens& tokens, Issued& out,
                               std::stop_token stop, std::chrono::seconds timeout);

 private:
  struct Response {
    long status = 0;
    std::string body, location, nonce, retry_after;
    std::string error;  // transport failure (curl's words); status 0 then
  };
  Response request(const std::string& url, const std::string* jws, bool head = false);
  // POST of a JWS with a fresh nonce; retries once on badNonce.
  Response post(const std::string& url, const std::string& payload);
  std::optional<Failure> ensure_account();
  Failure failure(const std::string& step, const Response& r) const;

  std::string directory_url_, ca_file_, contact_;
  AccountKey key_;
  std::string new_nonce_, new_account_, new_order_;  // from the directory
  std::string kid_;                                  // account URL, once registered
  std::string nonce_;
};

}  // namespace mailconfd::acme
