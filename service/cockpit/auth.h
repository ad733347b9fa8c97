// Who may see the cockpit. With a password file (<cockpit password-file>): HTTP Basic, the
// password checked with crypt(3) (yescrypt or bcrypt, Debian's libcrypt) and the result compared
// in constant time; an unknown user costs the same hash computation as a known one. Failed
// attempts slow every further attempt down: after kFreeFailures failures, each further failure
// locks the check for a delay that doubles (1 s … kMaxDelay), and only kWindow without a
// failure (or a successful login) forgets them; while locked,
// attempts are answered 429 at once, without computing a hash and without making any thread
// wait. The admin listener is loopback-only (the loader refuses anything else), so all attempts
// come from this host and the throttle is one for all of them. Without a password file, access
// needs nothing beyond reaching the loopback listener.
#pragma once

#include <chrono>
#include <string_view>

#include "config/config.h"

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

// authorization: the Authorization header's value (may be empty). now: a steady clock reading.
Verdict check_access(const CockpitOptions& options, std::string_view authorization,
                     std::chrono::steady_clock::time_point now);

// Forgets every failure (tests).
void reset_throttle();

}  // namespace mailconfd::cockpit
