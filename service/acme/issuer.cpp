#include "acme/issuer.h"

#include <sys/stat.h>

#include <ctime>
#include <fstream>
#include <optional>
#include <unordered_map>

#include <curl/curl.h>
#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include "core/utc_time.h"

namespace mailconfd::acme {
namespace {

using SystemClock = std::chrono::system_clock;
using SteadyClock = std::chrono::steady_clock;

std::array<std::atomic<std::uint64_t>, kOrderResults> order_counts{};
std::array<std::atomic<std::uint64_t>, kDemands> demand_counts{};

void count(OrderResult result) {
  order_counts[static_cast<std::size_t>(result)].fetch_add(1, std::memory_order_relaxed);
}

SystemClock::time_point to_time(const ASN1_TIME* time) {
  std::tm tm{};
  if (!time || ASN1_TIME_to_tm(time, &tm) != 1) return {};
  return SystemClock::from_time_t(timegm(&tm));
}

// The file at path (at most 1 MiB), or empty.
std::string read_small_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string text(1024 * 1024, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return text;
}

// When the certificate in pem (PEM text) should be renewed by its lifetime. nullopt: none
// there (or unreadable), so issue now.
std::optional<SystemClock::time_point> due_at(const std::string& pem, const std::string& name) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  X509* x = bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  ERR_clear_error();
  if (!x) return std::nullopt;
  const auto from = to_time(X509_get0_notBefore(x));
  const auto until = to_time(X509_get0_notAfter(x));
  X509_free(x);
  return renewal_time(from, until, name);
}

// FNV-1a: a stable hash (std::hash may differ between builds), for the renewal spread.
std::uint64_t stable_hash(const std::string& text) {
  std::uint64_t h = 14695981039346656037ull;
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

std::string certificates_directory(const std::string& storage) { return storage + "/certificates"; }

SystemClock::time_point renewal_time(SystemClock::time_point not_before,
                                     SystemClock::time_point not_after, const std::string& name) {
  const auto lifetime = std::chrono::duration_cast<std::chrono::seconds>(not_after - not_before);
  // -1000 … +1000 thousandths of a thirtieth of the lifetime.
  const auto spread = static_cast<std::int64_t>(stable_hash(name) % 2001) - 1000;
  return not_before + lifetime * 2 / 3 + lifetime * spread / 30'000;
}

std::array<std::uint64_t, kOrderResults> orders() {
  std::array<std::uint64_t, kOrderResults> out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = order_counts[i].load();
  return out;
}

void count_demand(Demand demand) {
  demand_counts[static_cast<std::size_t>(demand)].fetch_add(1, std::memory_order_relaxed);
}

std::array<std::uint64_t, kDemands> demands() {
  std::array<std::uint64_t, kDemands> out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = demand_counts[i].load();
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
  known_.insert(options_.names.begin(), options_.names.end());
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

Issuer::~Issuer() {
  thread_.request_stop();
  wake_.notify_all();
}

Demand Issuer::request(const std::string& name) {
  Demand result = Demand::Known;
  {
    std::lock_guard lock(mutex_);
    if (!known_.contains(name)) {
      if (requested_.size() >= options_.max_requests) {
        result = Demand::Full;
      } else {
        known_.insert(name);
        requested_.push_back(name);
        result = Demand::Queued;
      }
    }
  }
  count_demand(result);
  if (result == Demand::Queued) wake_.notify_all();
  return result;
}

void Issuer::run(std::stop_token stop) {
  ::mkdir(options_.storage.c_str(), 0700);
  const std::string certs = certificates_directory(options_.storage);
  ::mkdir(certs.c_str(), 0700);
  std::optional<Client> client;
  std::unordered_map<std::string, std::pair<SteadyClock::time_point, std::chrono::seconds>>
      backoff;                       // name → (not before, last delay)
  SteadyClock::time_point hold{};    // the CA's Retry-After, for every name
  std::chrono::seconds ca_delay{0};  // the last hold after the CA failed, doubled each time
  std::vector<std::string> names = options_.names;  // the walk; on-demand names join it
  // ARI per name: the certificate asked about, the CA's answer, when to ask again.
  struct Ari {
    std::string cert_id;
    std::optional<RenewalState> info;
    SteadyClock::time_point poll_at{};
  };
  std::unordered_map<std::string, Ari> ari;
  IssuerMemory& memory = options_.memory;
  // A wall-clock time from the memory on the steady clock (the past: now).
  const auto steady = [](SystemClock::time_point t) {
    const auto left = std::max(SystemClock::duration::zero(), t - SystemClock::now());
    return SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(left);
  };
  const auto remember = [&](const std::string& name, const RenewalState* state) {
    if (memory.renewal_changed) memory.renewal_changed(name, state);
  };
  if (memory.hold) {
    ca_delay = memory.hold->ca_delay;
    if (memory.hold->until > SystemClock::now()) {
      hold = steady(memory.hold->until);
      spdlog::warn("acme: the CA's hold goes on ({}): no orders until {}", memory.hold->reason,
                   rfc3339_utc(memory.hold->until));
    }
  }
  for (const auto& [name, b] : memory.backoff) {
    backoff[name] = {steady(b.not_before), b.delay};  // a wait that is over still doubles
    if (b.not_before > SystemClock::now()) {
      spdlog::info("acme: {} failed before: no order for it before {} (remembered)", name,
                   rfc3339_utc(b.not_before));
    }
  }
  memory.backoff.clear();
  for (auto& [name, state] : memory.renewal) {
    spdlog::info(
        "acme: renewal info for {} remembered: window {} to {}; renewing at {}, asking "
        "again at {}",
        name, rfc3339_utc(state.window.start), rfc3339_utc(state.window.end),
        rfc3339_utc(state.renew_at), rfc3339_utc(state.ask_again));
    ari[name] = Ari{state.cert_id, state, steady(state.ask_again)};
  }
  memory.renewal.clear();
  SteadyClock::time_point next_poll = SteadyClock::time_point::max();  // the earliest poll_at
  std::size_t issued = 0, failed = 0, limited = 0, current = 0;

  // One name: issue it when it has no certificate or is due. False when the CA holds every
  // order (Retry-After) or the thread stops.
  const auto process = [&](const std::string& name) {
    const auto now = SteadyClock::now();
    if (stop.stop_requested() || now < hold) return false;
    if (auto it = backoff.find(name); it != backoff.end() && now < it->second.first) return true;
    const std::string pem = certs + "/" + name + ".pem";
    const std::string pem_text = read_small_file(pem);
    auto due = due_at(pem_text, name);
    std::string replaces;
    // ARI (RFC 9773): where the CA offers it, its suggested window decides, not the lifetime.
    if (due && client->offers_renewal_info()) {
      if (const std::string cert_id = ari_cert_id(pem_text); !cert_id.empty()) {
        auto& a = ari[name];
        if (a.cert_id != cert_id || SteadyClock::now() >= a.poll_at) {
          a.cert_id = cert_id;
          std::string error;
          if (const auto info = client->renewal_info(cert_id, error)) {
            const auto wait =
                std::clamp<std::chrono::seconds>(info->retry_after.value_or(std::chrono::hours(6)),
                                                 std::chrono::minutes(1), std::chrono::hours(24));
            a.info = RenewalState{cert_id, info->window, renewal_point(info->window, name),
                                  SystemClock::now() + wait};
            a.poll_at = SteadyClock::now() + wait;
            spdlog::info(
                "acme: renewal info for {}: window {} to {}; renewing at {}, asking again "
                "in {}s",
                name, rfc3339_utc(info->window.start), rfc3339_utc(info->window.end),
                rfc3339_utc(a.info->renew_at), wait.count());
            remember(name, &*a.info);
          } else {
            if (a.info) remember(name, nullptr);
            a.info.reset();
            a.poll_at = SteadyClock::now() + std::chrono::hours(1);
            spdlog::warn("acme: renewal info for {}: {}; renewing two thirds into its lifetime",
                         name, error);
          }
        }
        if (a.info) {
          due = a.info->renew_at;
          replaces = cert_id;
        }
        next_poll = std::min(next_poll, a.poll_at);
      }
    }
    if (due && SystemClock::now() < *due) {
      ++current;
      return true;
    }
    Issued out;
    auto failure = client->issue(name, options_.challenges, *tokens_, out, stop,
                                 std::chrono::seconds(120), replaces);
    std::string error;
    if (!failure &&
        (!write_file_atomically(certs + "/" + name + ".key", out.key_pem, 0600, error) ||
         !write_file_atomically(pem, out.certificate_pem, 0600, error))) {
      failure = make_failure(error);
    }
    if (!failure) {
      count(OrderResult::Issued);
      ++issued;
      if (ca_delay.count() != 0 && memory.held) memory.held(Hold{SystemClock::now(), {}, {}});
      ca_delay = std::chrono::seconds(0);
      if (backoff.erase(name) != 0 && memory.backoff_changed) {
        memory.backoff_changed(name, nullptr);
      }
      if (auto it = ari.find(name); it != ari.end()) {
        if (it->second.info) remember(name, nullptr);
        ari.erase(it);
      }
      spdlog::info("acme: {} certificate for {}{}", due ? "renewed the" : "issued a", name,
                   replaces.empty() ? "" : " (replaces " + replaces + ")");
      issued_(name, pem);
      return true;
    }
    if (stop.stop_requested()) return false;
    ++(failure->rate_limited ? limited : failed);
    count(failure->rate_limited ? OrderResult::RateLimited : OrderResult::Failed);
    if (failure->retry_after || failure->rate_limited || failure->ca_failed) {
      // Not this name's fault: every order waits; the walk starts again when the wait ends.
      std::chrono::seconds pause;
      std::string why;
      if (failure->retry_after) {
        pause = *failure->retry_after;
        why = "Retry-After";
      } else if (failure->rate_limited) {
        pause = std::chrono::hours(1);
        why = "rate limited, no Retry-After";
      } else {
        ca_delay = ca_delay.count() == 0
                       ? std::chrono::seconds(300)
                       : std::min<std::chrono::seconds>(ca_delay * 2, std::chrono::hours(24));
        pause = ca_delay;
        why = "the CA failed";
      }
      pause =
          std::clamp<std::chrono::seconds>(pause, std::chrono::seconds(1), std::chrono::hours(24));
      hold = SteadyClock::now() + pause;
      spdlog::warn("acme: {}; no orders for {}s ({})", failure->reason, pause.count(), why);
      if (memory.held) memory.held(Hold{SystemClock::now() + pause, ca_delay, why});
      return false;
    }
    auto& [not_before, delay] = backoff[name];
    delay = delay.count() == 0 ? std::chrono::seconds(300)
                               : std::min<std::chrono::seconds>(delay * 2, std::chrono::hours(24));
    not_before = SteadyClock::now() + delay;
    spdlog::warn("acme: {}; {} waits {}s", failure->reason, name, delay.count());
    if (memory.backoff_changed) {
      const NameBackoff b{SystemClock::now() + delay, delay};
      memory.backoff_changed(name, &b);
    }
    return true;
  };
  // The on-demand queue, emptied first (until the CA holds orders).
  const auto serve_requests = [&] {
    while (!stop.stop_requested() && SteadyClock::now() >= hold) {
      std::string name;
      {
        std::lock_guard lock(mutex_);
        if (requested_.empty()) return;
        name = std::move(requested_.front());
        requested_.pop_front();
      }
      spdlog::info("acme: {} asked for at a handshake", name);
      names.push_back(name);  // renewed by the walk from now on
      if (!process(name)) return;
    }
  };

  auto next_pass = SteadyClock::now();
  while (!stop.stop_requested()) {
    if (!client) {
      std::string error;
      auto key = AccountKey::load_or_create(options_.storage + "/account.key", error);
      if (!key) {
        spdlog::error("acme: {}", error);
        std::unique_lock lock(mutex_);
        wake_.wait_for(lock, stop, options_.pass_interval, [] { return false; });
        continue;
      }
      client.emplace(options_.directory, options_.ca_file, options_.contact, std::move(*key));
    }
    serve_requests();
    if (SteadyClock::now() >= next_pass && SteadyClock::now() >= hold) {
      issued = failed = limited = current = 0;
      next_poll = SteadyClock::time_point::max();
      const std::size_t walk = names.size();  // names joining during the walk were just served
      bool complete = true;
      std::size_t walked = 0;
      while (walked < walk && complete) {
        complete = process(names[walked++]);
        if (complete) serve_requests();
      }
      if (stop.stop_requested()) return;
      std::string summary = fmt::format("acme: {} issued, {} failed, {} current of {} names",
                                        issued, failed, current, names.size());
      if (limited != 0) summary += fmt::format(", {} rate-limited", limited);
      if (walked < walk) {
        summary += fmt::format(", {} not tried until the CA's hold ends", walk - walked);
      }
      spdlog::info("{}", summary);
      // Held by the CA: walk again when the hold ends (at most a pass interval later).
      next_pass = complete ? SteadyClock::now() + options_.pass_interval
                           : std::min(hold, SteadyClock::now() + options_.pass_interval);
      // A renewalInfo to ask again before then (its Retry-After): walk again at that time.
      next_pass = std::min(next_pass, next_poll);
    }
    const auto until = std::max(next_pass, hold);
    std::unique_lock lock(mutex_);
    wake_.wait_until(lock, stop, until,
                     [&] { return !requested_.empty() && SteadyClock::now() >= hold; });
  }
}

}  // namespace mailconfd::acme
