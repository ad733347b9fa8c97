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
  CHECK(check_access(options, basic("admin:correct horse"), now).access == Access::Allowed);
  CHECK(check_access(options, basic("support:battery staple"), now).access == Access::Allowed);
  CHECK(check_access(options, "basic " + basic("admin:correct horse").substr(6), now).access ==
        Access::Allowed);  // the scheme is case-insensitive
  reset_throttle();
  CHECK(check_access(options, "", now).access == Access::Denied);
  CHECK(check_access(options, basic("admin:correct hors"), now).access == Access::Denied);
  CHECK(check_access(options, basic("admin:battery staple"), now).access == Access::Denied);
  CHECK(check_access(options, basic("nobody:correct horse"), now).access == Access::Denied);
  CHECK(check_access(options, "Bearer abc", now).access == Access::Denied);
  reset_throttle();
  CHECK(check_access(options, "Basic !!!!", now).access == Access::Denied);
  CHECK(check_access(options, basic("admin"), now).access == Access::Denied);  // no colon
  CHECK(check_access(options, "Basic ", now).access == Access::Denied);
  reset_throttle();
}

TEST_CASE("without a password file everyone on the loopback listener is let in") {
  CHECK(check_access(CockpitOptions{}, "", Clock::now()).access == Access::Allowed);
}

TEST_CASE("a brute force is slowed down: free failures, then doubling lockouts without a hash") {
  reset_throttle();
  const CockpitOptions options = users();
  auto now = Clock::now();
  for (int i = 0; i < kFreeFailures; ++i) {
    CHECK(check_access(options, basic("admin:guess" + std::to_string(i)), now).access ==
          Access::Denied);
  }
  // The sixth failure locks for 1 s; while locked even the right password gets 429.
  CHECK(check_access(options, basic("admin:guess"), now).access == Access::Denied);
  Verdict v = check_access(options, basic("admin:correct horse"), now);
  CHECK(v.access == Access::Throttled);
  CHECK(v.retry_after == std::chrono::seconds(1));
  now += std::chrono::milliseconds(1001);
  CHECK(check_access(options, basic("admin:guess"), now).access == Access::Denied);  // → 2 s
  v = check_access(options, basic("admin:correct horse"), now + std::chrono::milliseconds(1500));
  CHECK(v.access == Access::Throttled);
  CHECK(v.retry_after == std::chrono::seconds(1));
  now += std::chrono::seconds(2);
  CHECK(check_access(options, basic("admin:guess"), now).access == Access::Denied);  // → 4 s
  v = check_access(options, basic("admin:guess"), now);
  CHECK(v.access == Access::Throttled);
  CHECK(v.retry_after == std::chrono::seconds(4));
  // The delay never grows beyond kMaxDelay.
  for (int i = 0; i < 20; ++i) {
    now += kMaxDelay;
    check_access(options, basic("admin:guess"), now);
  }
  CHECK(check_access(options, basic("admin:guess"), now).retry_after == kMaxDelay);
  // After the lockout the right password gets in and the count starts again.
  now += kMaxDelay;
  CHECK(check_access(options, basic("admin:correct horse"), now).access == Access::Allowed);
  CHECK(check_access(options, basic("admin:guess"), now).access == Access::Denied);
  CHECK(check_access(options, basic("admin:correct horse"), now).access == Access::Allowed);
  reset_throttle();
}

TEST_CASE("failures older than the window are forgotten") {
  reset_throttle();
  const CockpitOptions options = users();
  auto now = Clock::now();
  for (int i = 0; i < kFreeFailures; ++i) check_access(options, basic("admin:x"), now);
  now += kWindow + std::chrono::seconds(1);
  CHECK(check_access(options, basic("admin:x"), now).access == Access::Denied);
  CHECK(check_access(options, basic("admin:correct horse"), now).access == Access::Allowed);
  reset_throttle();
}
