// Keeps a certificate on disk for every wanted name, off the request path: one thread walks
// the names in order (a bounded queue), issues what is missing or due for renewal (at two
// thirds of its lifetime) through acme::Client, one order at a time, writes key and
// certificate atomically (0600) to STORAGE/certificates/NAME.{key,pem}, and tells the
// publisher, which swaps in a new certificate set. The CA's 429/Retry-After holds every
// order until then; a name that fails waits longer each time (5 minutes, doubling, at most a
// day). Nothing here blocks a worker: until a name has its certificate, the default serves.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "acme/challenges.h"

namespace mailconfd::acme {

struct IssuerOptions {
  std::string directory;           // the CA's directory URL
  std::string ca_file;             // PEM to verify the CA's HTTPS; empty: the system's trust store
  std::string contact;             // "mailto:…" or empty
  std::string storage;             // account.key and certificates/ live here
  std::vector<std::string> names;  // wanted names, in the order they are issued
  std::size_t max_names = 20'000;  // the queue's bound; names beyond it are logged, not issued
  std::chrono::seconds pass_interval{3600};  // between walks over the names
};

// STORAGE/certificates: where the certificates are; the loader reads it like
// <tls certificate-directory> (it may not exist yet).
std::string certificates_directory(const std::string& storage);

enum class OrderResult : std::size_t { Issued, Failed, RateLimited };
inline constexpr std::size_t kOrderResults = 3;
std::array<std::uint64_t, kOrderResults> orders();  // process-wide, for /metrics

class Issuer {
 public:
  // issued(name, certificate file): called on the issuer thread after a certificate is on
  // disk. Must not block.
  Issuer(IssuerOptions options, std::shared_ptr<Tokens> tokens,
         std::function<void(const std::string& name, const std::string& file)> issued);
  ~Issuer();  // stops the thread; an order in progress is abandoned at its next step
  Issuer(const Issuer&) = delete;
  Issuer& operator=(const Issuer&) = delete;

 private:
  void run(std::stop_token stop);

  IssuerOptions options_;
  std::shared_ptr<Tokens> tokens_;
  std::function<void(const std::string&, const std::string&)> issued_;
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::jthread thread_;  // last
};

}  // namespace mailconfd::acme
