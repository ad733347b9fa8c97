// Keeps a certificate on disk for every wanted name, off the request path: one thread walks
// the names in order (a bounded queue), issues what is missing or due for renewal (two
// thirds into its lifetime, spread per name) through acme::Client, one order at a time,
// writes key and certificate atomically (0600) to STORAGE/certificates/NAME.{key,pem}, and
// tells the publisher, which swaps in a new certificate set. Names asked for at a handshake
// (request(): on-demand issuance) go into a second bounded, deduplicated queue that is served
// before the walk goes on. The CA's 429/Retry-After, or the CA failing, holds every order; a
// name that fails waits longer each time (5 minutes, doubling, at most a day). Nothing here
// blocks a worker: until a name has its certificate, the default serves. What it learnt from
// the CA that must outlive it (the hold, the renewalInfo answers) goes out through
// IssuerOptions::memory and comes back in it when a new issuer starts (acme_store/: another
// replica after a failover).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "acme/challenges.h"
#include "acme/client.h"
#include "acme/renewal_info.h"

namespace mailconfd::acme {

// The CA's hold on every order after a 429 or a failure.
struct Hold {
  std::chrono::system_clock::time_point until;  // no order before
  std::chrono::seconds ca_delay{0};  // the last hold after the CA failed (doubled next time)
  std::string reason;                // "Retry-After", "rate limited, no Retry-After", …
};

// A renewalInfo answer (RFC 9773) for a name's certificate.
struct RenewalState {
  std::string cert_id;  // the certificate it is about (ari_cert_id)
  RenewalWindow window;
  std::chrono::system_clock::time_point renew_at;   // the point chosen in the window
  std::chrono::system_clock::time_point ask_again;  // its Retry-After
};

// A name whose last order failed for a reason of its own (not the CA's hold): no order for it
// before not_before; the next failure waits twice delay (at most a day).
struct NameBackoff {
  std::chrono::system_clock::time_point not_before;
  std::chrono::seconds delay{0};
};

// What an issuer goes on from, and where it reports what it learns. The callbacks run on the
// issuer thread (they may write to the database) and may be empty.
struct IssuerMemory {
  std::optional<Hold> hold;
  std::unordered_map<std::string, RenewalState> renewal;  // name → its certificate's answer
  std::function<void(const Hold& hold)> held;             // a hold set or a CA delay reset
  // state null: forgotten (a new certificate, or the CA did not answer).
  std::function<void(const std::string& name, const RenewalState* state)> renewal_changed;
  std::unordered_map<std::string, NameBackoff> backoff;  // name → its wait after a failure
  // backoff null: the name's wait is over (it was issued).
  std::function<void(const std::string& name, const NameBackoff* backoff)> backoff_changed;
};

struct IssuerOptions {
  std::string directory;           // the CA's directory URL
  std::string ca_file;             // PEM to verify the CA's HTTPS; empty: the system's trust store
  std::string contact;             // "mailto:…" or empty
  std::string storage;             // account.key and certificates/ live here
  std::vector<std::string> names;  // wanted names, in the order they are issued
  std::size_t max_names = 20'000;  // the queue's bound; names beyond it are logged, not issued
  std::chrono::seconds pass_interval{3600};  // between walks over the names
  // The challenges to answer, the preferred first.
  std::vector<Challenge> challenges{Challenge::Http01, Challenge::TlsAlpn01};
  std::size_t max_requests = 1'000;  // the on-demand queue's bound
  IssuerMemory memory{};
};

// STORAGE/certificates: where the certificates are; the loader reads it like
// <tls certificate-directory> (it may not exist yet).
std::string certificates_directory(const std::string& storage);

// When a certificate valid from not_before to not_after for name is renewed: two thirds into
// its lifetime, moved by up to a thirtieth of the lifetime either way (the same for the same
// name, different between names), so that certificates issued in one burst are not renewed
// in one burst.
std::chrono::system_clock::time_point renewal_time(std::chrono::system_clock::time_point not_before,
                                                   std::chrono::system_clock::time_point not_after,
                                                   const std::string& name);

enum class OrderResult : std::size_t { Issued, Failed, RateLimited };
inline constexpr std::size_t kOrderResults = 3;
std::array<std::uint64_t, kOrderResults> orders();  // process-wide, for /metrics

// What became of a name asked for at a handshake (for /metrics).
enum class Demand : std::size_t {
  Queued,   // put in the on-demand queue
  Known,    // already wanted, queued or issued: nothing to do
  Full,     // the queue was full: dropped (asked again at a later handshake)
  Refused,  // not a name of a hosted domain or of the provider (never ordered)
  // <acme dsn-file>, at a replica that does not issue: handed to the issuing replica through
  // the database (acme_store/replica.h)
  Forwarded,
};
inline constexpr std::size_t kDemands = 5;
std::array<std::uint64_t, kDemands> demands();  // process-wide, for /metrics
void count_demand(Demand demand);

class Issuer {
 public:
  // issued(name, certificate file): called on the issuer thread after a certificate is on
  // disk. Must not block.
  Issuer(IssuerOptions options, std::shared_ptr<Tokens> tokens,
         std::function<void(const std::string& name, const std::string& file)> issued);
  ~Issuer();  // stops the thread; an order in progress is abandoned at its next step
  Issuer(const Issuer&) = delete;
  Issuer& operator=(const Issuer&) = delete;

  // On-demand: asks for a certificate for name (lowercase; the caller checked that it is
  // wanted). Never blocks beyond one short lock; safe from any thread.
  Demand request(const std::string& name);

 private:
  void run(std::stop_token stop);

  IssuerOptions options_;
  std::shared_ptr<Tokens> tokens_;
  std::function<void(const std::string&, const std::string&)> issued_;
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::unordered_set<std::string> known_;  // the wanted names and every name ever queued
  std::deque<std::string> requested_;      // the on-demand queue
  std::jthread thread_;                    // last
};

}  // namespace mailconfd::acme
