#include "cockpit/auth.h"

#include <crypt.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace mailconfd::cockpit {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::seconds;

// The failures of one source, or of all together.
struct Lock {
  int failures = 0;          // within the window (per source)
  Clock::time_point last{};  // the latest failure
  Clock::time_point locked_until{};
  seconds delay{0};
};

// Doubles the lock's delay (1 s first, kMaxDelay at most) and locks from now.
void lock_longer(Lock& lock, Clock::time_point now) {
  lock.delay = std::min<seconds>(lock.delay.count() == 0 ? seconds(1) : lock.delay * 2, kMaxDelay);
  lock.locked_until = now + lock.delay;
}

// Failures of all sources per minute, for the last kWindow.
constexpr std::size_t kBuckets = 10;
static_assert(std::chrono::minutes(kBuckets) == kWindow);

struct Throttle {
  std::mutex mutex;
  std::map<std::array<unsigned char, 16>, Lock> sources;
  Lock global;
  std::array<std::int64_t, kBuckets> bucket_minute{};  // which minute each bucket counts
  std::array<int, kBuckets> bucket_failures{};

  std::int64_t minute(Clock::time_point now) const {
    return std::chrono::duration_cast<std::chrono::minutes>(now.time_since_epoch()).count();
  }
  // Counts a failure now; returns the failures within the last kWindow (this one included).
  int count_global(Clock::time_point now) {
    const std::int64_t m = minute(now);
    const std::size_t i = static_cast<std::size_t>(((m % 10) + 10) % 10);
    if (bucket_minute[i] != m) {
      bucket_minute[i] = m;
      bucket_failures[i] = 0;
    }
    ++bucket_failures[i];
    int total = 0;
    for (std::size_t k = 0; k < kBuckets; ++k) {
      if (bucket_minute[k] > m - static_cast<std::int64_t>(kBuckets)) total += bucket_failures[k];
    }
    return total;
  }
  // The entry for a failing source, making room when the table is full.
  Lock& source(const std::array<unsigned char, 16>& key, Clock::time_point now) {
    auto it = sources.find(key);
    if (it != sources.end()) return it->second;
    if (sources.size() >= kMaxSources) {
      std::erase_if(sources, [&](const auto& entry) {
        return now - entry.second.last > kWindow && now >= entry.second.locked_until;
      });
    }
    if (sources.size() >= kMaxSources) {
      sources.erase(std::min_element(
          sources.begin(), sources.end(),
          [](const auto& x, const auto& y) { return x.second.last < y.second.last; }));
    }
    return sources[key];
  }
};

Throttle& throttle() {
  static Throttle t;
  return t;
}

// Base64 (RFC 4648, padded) to bytes; false for anything else.
bool decode_base64(std::string_view in, std::string& out) {
  if (in.empty() || in.size() % 4 != 0 || in.size() > 4096) return false;
  out.resize(in.size() / 4 * 3);
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0) return false;
  std::size_t size = static_cast<std::size_t>(n);
  if (in.back() == '=') --size;
  if (in.size() >= 2 && in[in.size() - 2] == '=') --size;
  out.resize(size);
  return true;
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// True when password matches hash (crypt_r; the comparison in constant time).
bool verify(const std::string& password, const std::string& hash) {
  auto data = std::make_unique<crypt_data>();
  const char* result = crypt_r(password.c_str(), hash.c_str(), data.get());
  if (result == nullptr || result[0] == '*') return false;
  return equal_constant_time(result, hash);
}

bool credentials_ok(const CockpitOptions& options, std::string_view authorization) {
  constexpr std::string_view kScheme = "Basic ";
  if (authorization.size() <= kScheme.size()) return false;
  for (std::size_t i = 0; i < kScheme.size() - 1; ++i) {
    const char c = authorization[i];
    if ((c | 0x20) != (kScheme[i] | 0x20)) return false;
  }
  if (authorization[kScheme.size() - 1] != ' ') return false;
  std::string decoded;
  if (!decode_base64(authorization.substr(kScheme.size()), decoded)) return false;
  const auto colon = decoded.find(':');
  if (colon == std::string::npos || decoded.find('\0') != std::string::npos) return false;
  const std::string user = decoded.substr(0, colon);
  const std::string password = decoded.substr(colon + 1);
  // An unknown user is checked against the first user's hash (and fails), so that the time
  // spent does not tell which names exist.
  const CockpitOptions::User* match = nullptr;
  for (const auto& u : options.users) {
    if (equal_constant_time(u.name, user) && match == nullptr) match = &u;
  }
  const std::string& hash = match ? match->hash : options.users.front().hash;
  return verify(password, hash) && match != nullptr;
}

}  // namespace

Verdict check_access(const CockpitOptions& options, std::string_view authorization,
                     const PeerAddress& peer, Clock::time_point now) {
  if (options.users.empty()) return {Access::Allowed, {}};
  Throttle& t = throttle();
  {
    std::lock_guard lock(t.mutex);
    Clock::time_point until = t.global.locked_until;
    if (const auto it = t.sources.find(peer.bytes); it != t.sources.end()) {
      until = std::max(until, it->second.locked_until);
    }
    if (now < until) {
      const auto left = std::chrono::ceil<seconds>(until - now);
      return {Access::Throttled, std::max(left, seconds(1))};
    }
  }
  if (authorization.empty()) return {Access::Denied, {}};  // the first visit: no attempt yet
  const bool ok = credentials_ok(options, authorization);
  std::lock_guard lock(t.mutex);
  if (ok) {
    t.sources.erase(peer.bytes);
    return {Access::Allowed, {}};
  }
  Lock& source = t.source(peer.bytes, now);
  if (source.failures > 0 && now - source.last > kWindow) source = Lock{};
  source.last = now;
  if (++source.failures > kFreeFailures) lock_longer(source, now);
  if (t.count_global(now) > kGlobalFreeFailures) {
    lock_longer(t.global, now);
  } else {
    t.global.delay = seconds(0);
  }
  return {Access::Denied, {}};
}

void reset_throttle() {
  Throttle& t = throttle();
  std::lock_guard lock(t.mutex);
  t.sources.clear();
  t.global = Lock{};
  t.bucket_minute.fill(0);
  t.bucket_failures.fill(0);
}

}  // namespace mailconfd::cockpit
