#include "cockpit/auth.h"

#include <crypt.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>

#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace mailconfd::cockpit {
namespace {

using Clock = std::chrono::steady_clock;

struct Throttle {
  std::mutex mutex;
  int failures = 0;          // within the window
  Clock::time_point last{};  // the latest failure
  Clock::time_point locked_until{};
  std::chrono::seconds delay{0};
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
                     Clock::time_point now) {
  if (options.users.empty()) return {Access::Allowed, {}};
  Throttle& t = throttle();
  {
    std::lock_guard lock(t.mutex);
    if (now < t.locked_until) {
      const auto left = std::chrono::ceil<std::chrono::seconds>(t.locked_until - now);
      return {Access::Throttled, std::max(left, std::chrono::seconds(1))};
    }
  }
  if (authorization.empty()) return {Access::Denied, {}};  // the first visit: no attempt yet
  const bool ok = credentials_ok(options, authorization);
  std::lock_guard lock(t.mutex);
  if (ok) {
    t.failures = 0;
    t.delay = std::chrono::seconds(0);
    return {Access::Allowed, {}};
  }
  if (t.failures > 0 && now - t.last > kWindow) {
    t.failures = 0;
    t.delay = std::chrono::seconds(0);
  }
  t.last = now;
  ++t.failures;
  if (t.failures > kFreeFailures) {
    t.delay = std::min<std::chrono::seconds>(
        t.delay.count() == 0 ? std::chrono::seconds(1) : t.delay * 2, kMaxDelay);
    t.locked_until = now + t.delay;
  }
  return {Access::Denied, {}};
}

void reset_throttle() {
  Throttle& t = throttle();
  std::lock_guard lock(t.mutex);
  t.failures = 0;
  t.delay = std::chrono::seconds(0);
  t.locked_until = {};
}

}  // namespace mailconfd::cockpit
