// Who may see the cockpit. With a password file (<cockpit password-file>): HTTP Basic, the
// password checked with crypt(3) (yescrypt or bcrypt, Debian's libcrypt) and the result compared
// in constant time; an unknown user costs the same hash computation as a known one.
//
// Failed attempts slow further attempts down, per client address and for all together:
// * per source (the connection's peer address): after kFreeFailures failures, each further
//   failure locks that source for a delay that doubles (1 s … kMaxDelay); kWindow without a
//   failure, or a successful login from it, forgets them. One source can therefore fail at
//   most about 20 times in kWindow, and it cannot lock anyone else out;
// * globally: when more than kGlobalFreeFailures failures (from any sources) fall within
//   the last kWindow, each further failure locks the check for everyone, doubling the same
//   way; this needs several sources (a local user binding many loopback addresses).
// While locked, attempts are answered 429 at once, without computing a hash and without
// making any thread wait. Without a password file, access needs nothing beyond reaching the
// loopback listener.
#pragma once

#include <chrono>
#include <cstddef>
#include <string_view>

#include "config/config.h"
#include "core/peer.h"

namespace mailconfd::cockpit {

enum class Access {
  Allowed,
  Denied,     // 401 with a Basic challenge: no or wrong credentials
  Throttled,  // 429: too many failures; retry_after says when to try again
};

struct Verdict {
  Access access = Access::Denied;
  std::chrono::seconds retry_after{0};
};

inline constexpr int kFreeFailures = 5;
inline constexpr auto kWindow = std::chrono::minutes(10);
inline constexpr auto kMaxDelay = std::chrono::seconds(60);
inline constexpr int kGlobalFreeFailures = 50;
// Sources remembered at once; past it, the one whose last failure is oldest is forgotten.
inline constexpr std::size_t kMaxSources = 4096;

// authorization: the Authorization header's value (may be empty). peer: where the request came
// from (an unknown peer is one source of its own). now: a steady clock reading.
Verdict check_access(const CockpitOptions& options, std::string_view authorization,
                     const PeerAddress& peer, std::chrono::steady_clock::time_point now);

// Forgets every failure (tests).
void reset_throttle();

}  // namespace mailconfd::cockpit
