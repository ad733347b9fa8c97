#include "cockpit/auth.h"

#include <crypt.h>

#include <memory>

#include <doctest/doctest.h>
#include <openssl/evp.h>

using namespace mailconfd;
using namespace mailconfd::cockpit;
using Clock = std::chrono::steady_clock;

namespace {

std::string hash_of(const std::string& password, const char* prefix, unsigned long cost) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  REQUIRE(crypt_gensalt_rn(prefix, cost, nullptr, 0, salt, sizeof salt) != nullptr);
  auto data = std::make_unique<crypt_data>();
  return crypt_r(password.c_str(), salt, data.get());
}

std::string basic(const std::string& credentials) {
  std::string out(4 * ((credentials.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(credentials.data()),
                                static_cast<int>(credentials.size()));
  out.resize(static_cast<std::size_t>(n));
  return "Basic " + out;
}

const PeerAddress kHere = PeerAddress::parse("127.0.0.1");

CockpitOptions users() {
  CockpitOptions options;
  options.users.push_back({"admin", hash_of("correct horse", "$y$", 0)});
  options.users.push_back({"support", hash_of("battery staple", "$2b$", 4)});
  return options;
}

}  // namespace

TEST_CASE("the right password of each user is let in, anything else refused") {
  reset_throttle();
  const CockpitOptions options = users();
  const auto now = Clock::now();
  CHECK(check_access(options, basic("admin:correct horse"), kHere, now).access == Access::Allowed);
  CHECK(check_access(options, basic("support:battery staple"), kHere, now).access ==
        Access::Allowed);
  CHECK(
      check_access(options, "basic " + basic("admin:correct horse").substr(6), kHere, now).access ==
      Access::Allowed);  // the scheme is case-insensitive
  reset_throttle();
  CHECK(check_access(options, "", kHere, now).access == Access::Denied);
  CHECK(check_access(options, basic("admin:correct hors"), kHere, now).access == Access::Denied);
  CHECK(check_access(options, basic("admin:battery staple"), kHere, now).access == Access::Denied);
  CHECK(check_access(options, basic("nobody:correct horse"), kHere, now).access == Access::Denied);
  CHECK(check_access(options, "Bearer abc", kHere, now).access == Access::Denied);
  reset_throttle();
  CHECK(check_access(options, "Basic !!!!", kHere, now).access == Access::Denied);
  CHECK(check_access(options, basic("admin"), kHere, now).access == Access::Denied);  // no colon
  CHECK(check_access(options, "Basic ", kHere, now).access == Access::Denied);
  reset_throttle();
}

TEST_CASE("without a password file everyone on the loopback listener is let in") {
  CHECK(check_access(CockpitOptions{}, "", kHere, Clock::now()).access == Access::Allowed);
}

TEST_CASE("a brute force is slowed down: free failures, then doubling lockouts without a hash") {
  reset_throttle();
  const CockpitOptions options = users();
  auto now = Clock::now();
  for (int i = 0; i < kFreeFailures; ++i) {
    CHECK(check_access(options, basic("admin:guess" + std::to_string(i)), kHere, now).access ==
          Access::Denied);
  }
  // The sixth failure locks for 1 s; while locked even the right password gets 429.
  CHECK(check_access(options, basic("admin:guess"), kHere, now).access == Access::Denied);
  Verdict v = check_access(options, basic("admin:correct horse"), kHere, now);
  CHECK(v.access == Access::Throttled);
  CHECK(v.retry_after == std::chrono::seconds(1));
  now += std::chrono::milliseconds(1001);
  CHECK(check_access(options, basic("admin:guess"), kHere, now).access == Access::Denied);  // → 2 s
  v = check_access(options, basic("admin:correct horse"), kHere,
                   now + std::chrono::milliseconds(1500));
  CHECK(v.access == Access::Throttled);
  CHECK(v.retry_after == std::chrono::seconds(1));
  now += std::chrono::seconds(2);
  CHECK(check_access(options, basic("admin:guess"), kHere, now).access == Access::Denied);  // → 4 s
  v = check_access(options, basic("admin:guess"), kHere, now);
  CHECK(v.access == Access::Throttled);
  CHECK(v.retry_after == std::chrono::seconds(4));
  // The delay never grows beyond kMaxDelay.
  for (int i = 0; i < 20; ++i) {
    now += kMaxDelay;
    check_access(options, basic("admin:guess"), kHere, now);
  }
  CHECK(check_access(options, basic("admin:guess"), kHere, now).retry_after == kMaxDelay);
  // After the lockout the right password gets in and the count starts again.
  now += kMaxDelay;
  CHECK(check_access(options, basic("admin:correct horse"), kHere, now).access == Access::Allowed);
  CHECK(check_access(options, basic("admin:guess"), kHere, now).access == Access::Denied);
  CHECK(check_access(options, basic("admin:correct horse"), kHere, now).access == Access::Allowed);
  reset_throttle();
}

TEST_CASE("failures older than the window are forgotten") {
  reset_throttle();
  const CockpitOptions options = users();
  auto now = Clock::now();
  for (int i = 0; i < kFreeFailures; ++i) check_access(options, basic("admin:x"), kHere, now);
  now += kWindow + std::chrono::seconds(1);
  CHECK(check_access(options, basic("admin:x"), kHere, now).access == Access::Denied);
  CHECK(check_access(options, basic("admin:correct horse"), kHere, now).access == Access::Allowed);
  reset_throttle();
}

TEST_CASE("peer addresses: IPv4 as IPv4-mapped IPv6, text both ways, unknown apart") {
  const PeerAddress v4 = PeerAddress::parse("127.0.0.2");
  CHECK(v4.known);
  CHECK(v4.text() == "127.0.0.2");
  CHECK(v4 == PeerAddress::parse("::ffff:127.0.0.2"));
  CHECK(PeerAddress::parse("::1").text() == "::1");
  CHECK(PeerAddress::parse("::1") != v4);
  CHECK_FALSE(PeerAddress::parse("localhost").known);
  CHECK(PeerAddress{}.text() == "unknown");
}

TEST_CASE("the throttle is per source: one locked source does not lock another out") {
  reset_throttle();
  const CockpitOptions options = users();
  const PeerAddress attacker = PeerAddress::parse("127.0.0.66");
  const auto now = Clock::now();
  for (int i = 0; i <= kFreeFailures; ++i) {
    CHECK(check_access(options, basic("admin:guess"), attacker, now).access == Access::Denied);
  }
  const Verdict locked = check_access(options, basic("admin:correct horse"), attacker, now);
  CHECK(locked.access == Access::Throttled);
  CHECK(locked.retry_after == std::chrono::seconds(1));
  // Staff on another address: not locked, and even its own failures count on their own.
  CHECK(check_access(options, basic("admin:correct horse"), kHere, now).access == Access::Allowed);
  CHECK(check_access(options, basic("admin:typo"), kHere, now).access == Access::Denied);
  CHECK(check_access(options, basic("admin:correct horse"), kHere, now).access == Access::Allowed);
  // An unknown peer (no address) is a source of its own.
  CHECK(check_access(options, basic("admin:correct horse"), PeerAddress{}, now).access ==
        Access::Allowed);
  // The staff's login forgot nothing of the attacker's.
  CHECK(check_access(options, basic("admin:guess"), attacker, now).access == Access::Throttled);
  reset_throttle();
}

TEST_CASE("a slow brute force from one source stays slowed and never locks everyone") {
  reset_throttle();
  const CockpitOptions options = users();
  const PeerAddress attacker = PeerAddress::parse("127.0.0.66");
  auto now = Clock::now();
  // One guess whenever the lock allows, for an hour: about 20 failures per 10 minutes.
  int failures = 0;
  const auto end = now + std::chrono::hours(1);
  while (now < end) {
    const Verdict v = check_access(options, basic("admin:guess"), attacker, now);
    if (v.access == Access::Denied) {
      ++failures;
      now += std::chrono::milliseconds(1);
    } else {
      REQUIRE(v.access == Access::Throttled);
      now += v.retry_after;
    }
  }
  // 5 free, one after each lock of 1, 2, 4, 8, 16 and 32 s (63 s), then one a minute (59).
  CHECK(failures == kFreeFailures + 6 + 59);
  now += kMaxDelay;
  CHECK(check_access(options, basic("admin:guess"), attacker, now).access == Access::Denied);
  const Verdict v = check_access(options, basic("admin:correct horse"), attacker, now);
  CHECK(v.access == Access::Throttled);
  CHECK(v.retry_after == kMaxDelay);
  // Everyone else is let in meanwhile.
  CHECK(check_access(options, basic("admin:correct horse"), kHere, now).access == Access::Allowed);
  reset_throttle();
}

TEST_CASE("many sources together lock everyone: the global throttle") {
  reset_throttle();
  const CockpitOptions options = users();
  auto now = Clock::now();
  // kGlobalFreeFailures failures from sources of kFreeFailures each: nobody locked yet.
  int sent = 0;
  for (int source = 0; sent < kGlobalFreeFailures; ++source) {
    const PeerAddress peer = PeerAddress::parse("127.0.1." + std::to_string(source));
    for (int i = 0; i < kFreeFailures && sent < kGlobalFreeFailures; ++i, ++sent) {
      CHECK(check_access(options, basic("admin:guess"), peer, now).access == Access::Denied);
    }
  }
  CHECK(check_access(options, basic("admin:correct horse"), kHere, now).access == Access::Allowed);
  // One more from a fresh source: now everyone waits 1 s, staff too.
  const PeerAddress fresh = PeerAddress::parse("127.0.2.1");
  CHECK(check_access(options, basic("admin:guess"), fresh, now).access == Access::Denied);
  Verdict v = check_access(options, basic("admin:correct horse"), kHere, now);
  CHECK(v.access == Access::Throttled);
  CHECK(v.retry_after == std::chrono::seconds(1));
  now += std::chrono::seconds(1);
  CHECK(check_access(options, basic("admin:guess"), fresh, now).access == Access::Denied);
  v = check_access(options, basic("admin:correct horse"), kHere, now);
  CHECK(v.retry_after == std::chrono::seconds(2));  // doubling
  // Once those failures are older than the window, the lock is gone.
  now += kWindow + std::chrono::minutes(1);
  CHECK(check_access(options, basic("admin:correct horse"), kHere, now).access == Access::Allowed);
  CHECK(check_access(options, basic("admin:guess"), fresh, now).access == Access::Denied);
  CHECK(check_access(options, basic("admin:correct horse"), kHere, now).access == Access::Allowed);
  reset_throttle();
}
