// An ACME client (RFC 8555) for one certificate per name with http-01 or tls-alpn-01 (RFC
// 8737): account, order, authorization, challenge, finalize, download. HTTPS to the CA goes through
// libcurl; every call blocks, so it runs on the issuer's own thread (acme/issuer.h), never on a
// worker.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "acme/challenges.h"
#include "acme/jws.h"
#include "acme/renewal_info.h"

namespace mailconfd::acme {

// How the CA may check that we control a name: http-01 answers on port 80 (acme::Tokens),
// tls-alpn-01 answers ALPN acme-tls/1 handshakes on the TLS listener (tls::AlpnChallenges).
enum class Challenge { Http01, TlsAlpn01 };
std::string_view to_string(Challenge challenge);

// A badNonce answer is retried with the nonce it carries (RFC 8555 §6.5), this often at most.
inline constexpr int kNonceAttempts = 20;

// badNonce answers so far, each retried (process-wide, for /metrics).
std::uint64_t bad_nonces();

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
  // The CA itself failed (not reachable, 5xx, serverInternal): not the name's fault, so
  // every order waits, not only this name's.
  bool ca_failed = false;
};
inline Failure make_failure(std::string reason) {
  Failure f;
  f.reason = std::move(reason);
  return f;
}

// A Retry-After value (RFC 9110 §10.2.3), delay-seconds or an HTTP-date, as the time to wait
// from now, rounded up to whole seconds (0 for a date already past); nullopt when it is
// neither.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now);

class Client {
 public:
  // directory: the CA's directory URL; ca_file: PEM bundle to verify the CA's HTTPS with
  // (empty: the system's); contact: "mailto:…" or empty.
  Client(std::string directory, std::string ca_file, std::string contact, AccountKey key);

  // Gets a certificate for name, answering the first challenge of preference the CA offers
  // (http-01 through tokens, tls-alpn-01 through tls::alpn_challenges()). Gives up at stop or
  // after timeout. Failure is nullopt when it worked. replaces: the ARI certID of the
  // certificate this one renews (RFC 9773 §5), or empty.
  std::optional<Failure> issue(const std::string& name, const std::vector<Challenge>& preference,
                               Tokens& tokens, Issued& out, std::stop_token stop,
                               std::chrono::seconds timeout, const std::string& replaces = "");

  // Whether the CA's directory offers ARI (renewalInfo); false too when the directory cannot
  // be read.
  bool offers_renewal_info();
  // ARI's suggested window for the certificate cert_id (ari_cert_id()), and the CA's
  // Retry-After (when to ask again). nullopt with error set when there is none.
  struct RenewalInfo {
    RenewalWindow window;
    std::optional<std::chrono::seconds> retry_after;
  };
  std::optional<RenewalInfo> renewal_info(const std::string& cert_id, std::string& error);

 private:
  struct Response {
    long status = 0;
    std::string body, location, nonce, retry_after;
    std::string error;       // transport failure (curl's words); status 0 then
    bool for_nonce = false;  // the answer to the newNonce request a POST needed first
  };
  Response request(const std::string& url, const std::string* jws, bool head = false);
  // POST of a JWS with a fresh nonce; a badNonce is retried with the new nonce (kNonceAttempts).
  Response post(const std::string& url, const std::string& payload);
  std::optional<Failure> load_directory();
  std::optional<Failure> ensure_account();
  Failure failure(const std::string& step, const Response& r) const;

  std::string directory_url_, ca_file_, contact_;
  AccountKey key_;
  std::string new_nonce_, new_account_, new_order_;          // from the directory
  std::string renewal_info_;                                 // from the directory; empty: no ARI
  std::chrono::steady_clock::time_point directory_retry_{};  // for offers_renewal_info()
  std::string kid_;                                          // account URL, once registered
  std::string nonce_;
};

}  // namespace mailconfd::acme
