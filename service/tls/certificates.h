// The certificates of the HTTPS listener, chosen per connection by the name the client asks
// for (SNI): exact names first, then a wildcard one label deep, else the default certificate
// (also for clients that send no name). A CertificateSet is immutable and is a part of the
// App snapshot; a reload or a renewal builds a new one. Also: the process-wide counters of
// failed handshakes by reason and the session-ticket keys every context shares.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tls/context.h"

struct ssl_st;

namespace mailconfd::tls {

using SystemClock = std::chrono::system_clock;

// Where a certificate comes from: its PEM files.
struct CertificateFiles {
  std::string certificate;  // leaf first, may carry the chain
  std::string key;
  std::string chain;  // optional
};

// One loaded certificate with what the log and /metrics say about it.
struct Certificate {
  CertificateFiles files;
  std::shared_ptr<const Context> context;
  std::vector<std::string> names;  // DNS names of the leaf (SAN; the CN if it has none), lowercase
  SystemClock::time_point not_before, not_after;
};

// Loads files (see Context::load) and reads the leaf's names and validity. On failure returns
// nullopt and sets error to a sentence naming the file and the reason.
std::optional<Certificate> load_certificate(const CertificateFiles& files, std::string& error);

// The certificate/key pairs of a directory, sorted by file name: NAME.pem or NAME.crt with
// NAME.key beside it, and NAME/fullchain.pem with NAME/privkey.pem (certbot's live/ layout).
// A certificate without its key comes with an empty key (load_certificate says so); errors
// gets the directory's own problem (unreadable).
std::vector<CertificateFiles> scan_directory(const std::string& directory,
                                             std::vector<std::string>& errors);

enum class State { Valid, NotYetValid, Expired };
State state_at(const Certificate& certificate, SystemClock::time_point now);

// One line per certificate for check, start and reload:
// "certificate FILE: NAMES; valid until 2026-12-31T23:59:59Z[ (default)]". warnings gets one
// line for each that is expired or not yet valid at now.
std::vector<std::string> describe(const std::vector<Certificate>& certificates,
                                  SystemClock::time_point now, std::vector<std::string>& warnings);

class CertificateSet {
 public:
  // certificates.front() is the default; a name covered by several goes to the first.
  // Not empty.
  explicit CertificateSet(std::vector<Certificate> certificates);

  const std::vector<Certificate>& certificates() const { return certificates_; }
  const Certificate& fallback() const { return certificates_.front(); }
  // The certificate for server_name (case-insensitive, a trailing dot ignored), or null when
  // none covers it (the default then serves).
  const Certificate* find(std::string_view server_name) const;

  // Ties a new connection to this set: ssl's SNI callback reads it. The caller keeps the set
  // alive for as long as ssl lives.
  void attach(ssl_st* ssl) const;

 private:
  std::vector<Certificate> certificates_;
  std::unordered_map<std::string, std::size_t> exact_;     // name → index
  std::unordered_map<std::string, std::size_t> wildcard_;  // "example.com" for *.example.com
};

// Called from the SNI callback with a name (lowercase, no trailing dot) that no certificate
// covers, so the default serves it; on the worker's thread inside the handshake, so it must
// not block (on-demand ACME: a lookup and a queue). Set it before the listeners start and
// clear it (an empty function) after they stopped.
void set_uncovered_name_hook(std::function<void(std::string_view name)> hook);

// Why a handshake failed, for mailconfd_tls_handshake_failures_total.
enum class HandshakeFailure : std::size_t {
  CertificateRejected,  // the client sent an alert about our certificate (unknown CA, bad cert)
  NoSharedProtocol,     // no common TLS version or cipher
  NotTls,               // the bytes were not TLS (plain HTTP on the HTTPS port)
  ClosedEarly,          // the peer closed or reset before the handshake finished
  Timeout,              // the handshake took longer than <tls handshake-timeout>
  Other,
};
inline constexpr std::size_t kHandshakeFailureKinds = 6;
std::string_view to_string(HandshakeFailure failure);
// Reads OpenSSL's error queue (before it is cleared) after a failed handshake.
HandshakeFailure classify_handshake_failure();
void count_handshake_failure(HandshakeFailure failure);
std::array<std::uint64_t, kHandshakeFailureKinds> handshake_failures();
std::uint64_t handshakes_resumed();
void count_handshake(bool resumed);
std::uint64_t handshakes_completed();

}  // namespace mailconfd::tls
