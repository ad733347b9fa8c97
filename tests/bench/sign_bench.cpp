// Measures what an Apple profile costs per request: rendering the plist, signing it with an
// RSA-2048 or an ECDSA P-256 key, and answering from the signed-profile cache.
// Not a test (numbers depend on the machine): build target sign_bench, then
//   build/release/tests/sign_bench [ITERATIONS]
// It makes a throwaway PKI with tests/make-test-pki.sh in a temporary directory.
#include <stdlib.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "app.h"
#include "config/config_file.h"
#include "render/mobileconfig.h"
#include "sign/signer.h"

using namespace mailconfd;
using Clock = std::chrono::steady_clock;

namespace {

// CPU time of this thread: the machine may be busy with other work, wall time would count it.
double cpu_micros() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

std::string config_text(const std::string& pki, const std::string& name) {
  std::string signing;
  if (!name.empty()) {
    signing = "<signing certificate=\"" + pki + "/" + name + ".pem\" key=\"" + pki + "/" + name +
              ".key\" chain=\"" + pki + "/chain.pem\"/>";
  }
  return "<mailconfd>" + signing +
         "<mobileconfig secret=\"bench-secret-0123456789\"/>"
         "<provider id=\"example.net\"><display-name>Example Mail</display-name>"
         "<incoming protocol=\"imap\" host=\"imap.example.net\" port=\"993\" security=\"tls\"/>"
         "<outgoing host=\"smtp.example.net\" port=\"587\" security=\"starttls\"/>"
         "<domain>example.com</domain></provider></mailconfd>";
}

// Per-request CPU cost in microseconds of mobileconfig_for(), each call with a new address
// (cache misses) or always the same one (hits after the first).
double measure(const App& app, int iterations, bool same_address, std::size_t& bytes) {
  const DomainEntry entry = *app.domains->find("example.com");
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  const double start = cpu_micros();
  int done = 0;
  for (; done < iterations && Clock::now() < deadline; ++done) {
    const std::string local = same_address ? "alice" : "user" + std::to_string(done);
    auto body = mobileconfig_for(app, entry, EmailAddress{local, "example.com"});
    if (!body) std::exit(1);
    bytes = body->size();
  }
  return (cpu_micros() - start) / done;
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 2000;
  char pattern[] = "/tmp/mailconfd-bench-XXXXXX";
  const std::string pki = ::mkdtemp(pattern);
  const std::string script = std::string(MAILCONFD_SOURCE_DIR) + "/tests/make-test-pki.sh";
  if (std::system(("sh '" + script + "' " + pki).c_str()) != 0) return 1;

  std::printf("%-28s %12s %8s %10s\n", "case", "cpu us/req", "bytes", "x unsigned");
  {
    const double start = cpu_micros();
    for (int i = 0; i < iterations; ++i) {
      const auto ids = render::profile_ids("example.net", EmailAddress{"alice", "example.com"},
                                           "bench-secret-0123456789");
      if (ids.identifier.empty()) return 1;
    }
    std::printf("%-28s %12.2f\n", "profile ids only", (cpu_micros() - start) / iterations);
  }
  double unsigned_cost = 0;
  for (const std::string name : {"", "rsa", "ec"}) {
    Loaded loaded = load_config_text(config_text(pki, name), "bench.xml", pki);
    if (!loaded.ok()) {
      for (const auto& p : loaded.problems) std::fprintf(stderr, "%s\n", p.c_str());
      return 1;
    }
    const auto app = build_app(std::move(loaded.config));
    std::size_t bytes = 0;
    const double miss = measure(*app, iterations, false, bytes);
    if (name.empty()) unsigned_cost = miss;
    const std::string label =
        name.empty() ? "unsigned plist" : app->profiles->signer->key_description();
    std::printf("%-28s %12.2f %8zu %10.1f\n",
                (label + (name.empty() ? "" : " sign (miss)")).c_str(), miss, bytes,
                miss / unsigned_cost);
    if (!name.empty()) {
      const double hit = measure(*app, iterations, true, bytes);
      std::printf("%-28s %12.2f %8zu %10.1f\n", (label + " cached (hit)").c_str(), hit, bytes,
                  hit / unsigned_cost);
    }
  }
  std::filesystem::remove_all(pki);
  return 0;
}
