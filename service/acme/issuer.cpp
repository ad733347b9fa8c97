#include "acme/issuer.h"

#include <sys/stat.h>

#include <ctime>
#include <unordered_map>

#include <curl/curl.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include "acme/client.h"

namespace mailconfd::acme {
namespace {

using SystemClock = std::chrono::system_clock;

std::array<std::atomic<std::uint64_t>, kOrderResults> order_counts{};

void count(OrderResult result) {
  order_counts[static_cast<std::size_t>(result)].fetch_add(1, std::memory_order_relaxed);
}

SystemClock::time_point to_time(const ASN1_TIME* time) {
  std::tm tm{};
  if (!time || ASN1_TIME_to_tm(time, &tm) != 1) return {};
  return SystemClock::from_time_t(timegm(&tm));
}

// When the certificate at path should be renewed: two thirds into its lifetime. nullopt:
// none there (or unreadable), so issue now.
std::optional<SystemClock::time_point> renewal_time(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return std::nullopt;
  X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  ERR_clear_error();
  if (!x) return std::nullopt;
  const auto from = to_time(X509_get0_notBefore(x));
  const auto until = to_time(X509_get0_notAfter(x));
  X509_free(x);
  return from + (until - from) * 2 / 3;
}

}  // namespace

std::string certificates_directory(const std::string& storage) { return storage + "/certificates"; }

std::array<std::uint64_t, kOrderResults> orders() {
  std::array<std::uint64_t, kOrderResults> out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = order_counts[i].load();
  return out;
}

Issuer::Issuer(IssuerOptions options, std::shared_ptr<Tokens> tokens,
               std::function<void(const std::string&, const std::string&)> issued)
    : options_(std::move(options)), tokens_(std::move(tokens)), issued_(std::move(issued)) {
  curl_global_init(CURL_GLOBAL_DEFAULT);  // before the thread that uses curl exists
  if (options_.names.size() > options_.max_names) {
    spdlog::warn("acme: {} names wanted; only the first {} are issued", options_.names.size(),
                 options_.max_names);
    options_.names.resize(options_.max_names);
  }
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

Issuer::~Issuer() {
  thread_.request_stop();
  wake_.notify_all();
}

void Issuer::run(std::stop_token stop) {
  const auto wait = [&](std::chrono::steady_clock::duration d) {
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, stop, d, [] { return false; });
  };
  ::mkdir(options_.storage.c_str(), 0700);
  const std::string certs = certificates_directory(options_.storage);
  ::mkdir(certs.c_str(), 0700);
  std::optional<Client> client;
  std::unordered_map<std::string, std::pair<std::chrono::steady_clock::time_point,
                                            std::chrono::seconds>>
      backoff;                                   // name → (not before, last delay)
  std::chrono::steady_clock::time_point hold{};  // the CA's Retry-After, for every name
  while (!stop.stop_requested()) {
    if (!client) {
      std::string error;
      auto key = AccountKey::load_or_create(options_.storage + "/account.key", error);
      if (!key) {
        spdlog::error("acme: {}", error);
        wait(options_.pass_interval);
        continue;
      }
      client.emplace(options_.directory, options_.ca_file, options_.contact, std::move(*key));
    }
    std::size_t issued = 0, failed = 0, current = 0;
    for (const std::string& name : options_.names) {
      if (stop.stop_requested()) return;
      const auto now = std::chrono::steady_clock::now();
      if (now < hold) break;
      if (auto it = backoff.find(name); it != backoff.end() && now < it->second.first) continue;
      const std::string pem = certs + "/" + name + ".pem";
      const auto due = renewal_time(pem);
      if (due && SystemClock::now() < *due) {
        ++current;
        continue;
      }
      Issued out;
      auto failure = client->issue(name, *tokens_, out, stop, std::chrono::seconds(120));
      std::string error;
      if (!failure &&
          (!write_file_atomically(certs + "/" + name + ".key", out.key_pem, 0600, error) ||
           !write_file_atomically(pem, out.certificate_pem, 0600, error))) {
        failure = Failure{error, {}, false};
      }
      if (!failure) {
        count(OrderResult::Issued);
        ++issued;
        backoff.erase(name);
        spdlog::info("acme: {} certificate for {}", due ? "renewed the" : "issued a", name);
        issued_(name, pem);
        continue;
      }
      if (stop.stop_requested()) return;
      ++failed;
      count(failure->rate_limited ? OrderResult::RateLimited : OrderResult::Failed);
      auto& [not_before, delay] = backoff[name];
      delay = delay.count() == 0
                  ? std::chrono::seconds(300)
                  : std::min<std::chrono::seconds>(delay * 2, std::chrono::hours(24));
      not_before = std::chrono::steady_clock::now() + delay;
      if (failure->retry_after || failure->rate_limited) {
        const auto pause =
            std::clamp<std::chrono::seconds>(failure->retry_after.value_or(std::chrono::hours(1)),
                                             std::chrono::seconds(1), std::chrono::hours(24));
        hold = std::chrono::steady_clock::now() + pause;
        spdlog::warn("acme: {}; no orders for {}s (Retry-After)", failure->reason, pause.count());
      } else {
        spdlog::warn("acme: {}; {} waits {}s", failure->reason, name, delay.count());
      }
    }
    spdlog::info("acme: {} issued, {} failed, {} current of {} names", issued, failed, current,
                 options_.names.size());
    const auto pause = hold > std::chrono::steady_clock::now()
                           ? std::min<std::chrono::steady_clock::duration>(
                                 hold - std::chrono::steady_clock::now(), options_.pass_interval)
                           : std::chrono::steady_clock::duration(options_.pass_interval);
    wait(pause);
  }
}

}  // namespace mailconfd::acme
