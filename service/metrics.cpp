#include "metrics.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

#include <fmt/format.h>

#include "acme/client.h"
#include "acme/issuer.h"
#include "cockpit/board.h"
#include "core/per_thread.h"
#include "journal/journal.h"
#include "source/status.h"

namespace mailconfd::metrics {
namespace {

// Endpoint::Other must stay the last enumerator: it sizes the tables.
constexpr std::size_t kEndpoints = static_cast<std::size_t>(Endpoint::Other) + 1;
constexpr std::size_t kClasses = 5;  // 1xx … 5xx
constexpr std::array<std::string_view, kClasses> kClassNames{"1xx", "2xx", "3xx", "4xx", "5xx"};

// Upper bounds in microseconds and as Prometheus writes them; +Inf is implicit (count).
constexpr std::array<std::int64_t, 12> kBoundsMicros{100,   250,   500,   1000,   2500,   5000,
                                                     10000, 25000, 50000, 100000, 250000, 1000000};
constexpr std::array<std::string_view, 12> kBoundNames{"0.0001", "0.00025", "0.0005", "0.001",
                                                       "0.0025", "0.005",   "0.01",   "0.025",
                                                       "0.05",   "0.1",     "0.25",   "1"};
constexpr std::size_t kBuckets = kBoundsMicros.size() + 1;

using Counter = std::atomic<std::uint64_t>;

// One thread's counters. Only the owning thread writes them, so an increment is a relaxed
// load and store (no locked instruction); the scrape reads them with relaxed loads.
struct Block {
  std::array<std::array<Counter, kClasses>, kEndpoints> requests{};
  std::array<std::array<Counter, kBuckets>, kEndpoints> latency{};  // not cumulative
  std::array<Counter, kEndpoints> latency_micros{};
};

void bump(Counter& c, std::uint64_t by = 1) {
  c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

std::atomic<std::uint64_t> reloads_ok{0};
std::atomic<std::uint64_t> reloads_failed{0};
std::atomic<bool> is_ready{false};
std::atomic<std::int64_t> open_http{0};
std::atomic<std::int64_t> open_https{0};
const std::int64_t started_at = std::chrono::duration_cast<std::chrono::seconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();

}  // namespace

void count_request(Endpoint endpoint, int status, std::chrono::nanoseconds elapsed) {
  Block& b = PerThread<Block>::own();  // lives until exit: ended threads still count
  const auto e = std::min(static_cast<std::size_t>(endpoint), kEndpoints - 1);
  const auto c = static_cast<std::size_t>(std::clamp(status / 100, 1, 5) - 1);
  bump(b.requests[e][c]);
  const std::int64_t micros =
      std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
  std::size_t bucket = 0;
  while (bucket < kBoundsMicros.size() && micros > kBoundsMicros[bucket]) ++bucket;
  bump(b.latency[e][bucket]);
  bump(b.latency_micros[e], static_cast<std::uint64_t>(std::max<std::int64_t>(micros, 0)));
}

void connection_opened(bool tls) { (tls ? open_https : open_http).fetch_add(1); }

void connection_closed(bool tls) { (tls ? open_https : open_http).fetch_sub(1); }

void count_reload(bool succeeded) { (succeeded ? reloads_ok : reloads_failed).fetch_add(1); }

void set_ready(bool ready) { is_ready.store(ready); }

bool ready() { return is_ready.load(); }

namespace {

// Certificates of the snapshot by state and the earliest expiry; handshakes by outcome.
void append_tls(std::string& out, const App& app) {
  std::array<std::uint64_t, 3> states{};
  std::int64_t earliest = 0;
  if (app.certificates) {
    const auto now = std::chrono::system_clock::now();
    for (const tls::Certificate& c : app.certificates->certificates()) {
      ++states[static_cast<std::size_t>(tls::state_at(c, now))];
      const auto expiry =
          std::chrono::duration_cast<std::chrono::seconds>(c.not_after.time_since_epoch()).count();
      if (earliest == 0 || expiry < earliest) earliest = expiry;
    }
  }
  fmt::format_to(std::back_inserter(out),
                 "# HELP mailconfd_tls_certificates Certificates of the HTTPS listener, by state.\n"
                 "# TYPE mailconfd_tls_certificates gauge\n"
                 "mailconfd_tls_certificates{{state=\"valid\"}} {}\n"
                 "mailconfd_tls_certificates{{state=\"not_yet_valid\"}} {}\n"
                 "mailconfd_tls_certificates{{state=\"expired\"}} {}\n"
                 "# HELP mailconfd_tls_certificate_earliest_expiry_timestamp_seconds When the "
                 "first of them expires (0: none loaded).\n"
                 "# TYPE mailconfd_tls_certificate_earliest_expiry_timestamp_seconds gauge\n"
                 "mailconfd_tls_certificate_earliest_expiry_timestamp_seconds {}\n"
                 "# HELP mailconfd_tls_handshakes_total TLS handshakes completed, by whether a "
                 "session was resumed.\n"
                 "# TYPE mailconfd_tls_handshakes_total counter\n"
                 "mailconfd_tls_handshakes_total{{resumed=\"no\"}} {}\n"
                 "mailconfd_tls_handshakes_total{{resumed=\"yes\"}} {}\n"
                 "# HELP mailconfd_tls_handshake_failures_total TLS handshakes that failed, by "
                 "reason.\n"
                 "# TYPE mailconfd_tls_handshake_failures_total counter\n",
                 states[static_cast<std::size_t>(tls::State::Valid)],
                 states[static_cast<std::size_t>(tls::State::NotYetValid)],
                 states[static_cast<std::size_t>(tls::State::Expired)], earliest,
                 tls::handshakes_completed() - tls::handshakes_resumed(),
                 tls::handshakes_resumed());
  const auto orders = acme::orders();
  fmt::format_to(std::back_inserter(out),
                 "# HELP mailconfd_acme_orders_total Certificate orders of the built-in ACME "
                 "client, by result.\n"
                 "# TYPE mailconfd_acme_orders_total counter\n"
                 "mailconfd_acme_orders_total{{result=\"issued\"}} {}\n"
                 "mailconfd_acme_orders_total{{result=\"failed\"}} {}\n"
                 "mailconfd_acme_orders_total{{result=\"rate_limited\"}} {}\n",
                 orders[0], orders[1], orders[2]);
  const auto demands = acme::demands();
  fmt::format_to(std::back_inserter(out),
                 "# HELP mailconfd_acme_on_demand_total Handshakes for a name without a "
                 "certificate while <acme on-demand> is on, by what became of the name.\n"
                 "# TYPE mailconfd_acme_on_demand_total counter\n"
                 "mailconfd_acme_on_demand_total{{result=\"queued\"}} {}\n"
                 "mailconfd_acme_on_demand_total{{result=\"known\"}} {}\n"
                 "mailconfd_acme_on_demand_total{{result=\"full\"}} {}\n"
                 "mailconfd_acme_on_demand_total{{result=\"refused\"}} {}\n"
                 "mailconfd_acme_on_demand_total{{result=\"forwarded\"}} {}\n",
                 demands[0], demands[1], demands[2], demands[3], demands[4]);
  fmt::format_to(std::back_inserter(out),
                 "# HELP mailconfd_acme_bad_nonces_total badNonce answers of the ACME CA, each "
                 "retried with the nonce it carried.\n"
                 "# TYPE mailconfd_acme_bad_nonces_total counter\n"
                 "mailconfd_acme_bad_nonces_total {}\n",
                 acme::bad_nonces());
  const auto failures = tls::handshake_failures();
  for (std::size_t i = 0; i < failures.size(); ++i) {
    fmt::format_to(std::back_inserter(out),
                   "mailconfd_tls_handshake_failures_total{{reason=\"{}\"}} {}\n",
                   tls::to_string(static_cast<tls::HandshakeFailure>(i)), failures[i]);
  }
}

}  // namespace

std::string render(const App& app) {
  std::array<std::array<std::uint64_t, kClasses>, kEndpoints> requests{};
  std::array<std::array<std::uint64_t, kBuckets>, kEndpoints> latency{};
  std::array<std::uint64_t, kEndpoints> micros{};
  PerThread<Block>::for_each([&](const Block& b) {
    for (std::size_t e = 0; e < kEndpoints; ++e) {
      for (std::size_t c = 0; c < kClasses; ++c) {
        requests[e][c] += b.requests[e][c].load(std::memory_order_relaxed);
      }
      for (std::size_t k = 0; k < kBuckets; ++k) {
        latency[e][k] += b.latency[e][k].load(std::memory_order_relaxed);
      }
      micros[e] += b.latency_micros[e].load(std::memory_order_relaxed);
    }
  });
  std::string out;
  out.reserve(16 * 1024);
  out +=
      "# HELP mailconfd_http_requests_total HTTP requests answered, by endpoint and status "
      "class.\n"
      "# TYPE mailconfd_http_requests_total counter\n";
  for (std::size_t e = 0; e < kEndpoints; ++e) {
    const std::string_view name = to_string(static_cast<Endpoint>(e));
    for (std::size_t c = 0; c < kClasses; ++c) {
      fmt::format_to(std::back_inserter(out),
                     "mailconfd_http_requests_total{{endpoint=\"{}\",code=\"{}\"}} {}\n", name,
                     kClassNames[c], requests[e][c]);
    }
  }

  out +=
      "# HELP mailconfd_http_request_duration_seconds Time from a complete request to its "
      "serialized answer.\n"
      "# TYPE mailconfd_http_request_duration_seconds histogram\n";
  for (std::size_t e = 0; e < kEndpoints; ++e) {
    const std::string_view name = to_string(static_cast<Endpoint>(e));
    std::uint64_t cumulative = 0;
    for (std::size_t k = 0; k < kBoundNames.size(); ++k) {
      cumulative += latency[e][k];
      fmt::format_to(std::back_inserter(out),
                     "mailconfd_http_request_duration_seconds_bucket{{endpoint=\"{}\",le=\"{}\"}} "
                     "{}\n",
                     name, kBoundNames[k], cumulative);
    }
    cumulative += latency[e][kBuckets - 1];
    fmt::format_to(std::back_inserter(out),
                   "mailconfd_http_request_duration_seconds_bucket{{endpoint=\"{}\",le=\"+Inf\"}} "
                   "{}\n"
                   "mailconfd_http_request_duration_seconds_sum{{endpoint=\"{}\"}} {}.{:06}\n"
                   "mailconfd_http_request_duration_seconds_count{{endpoint=\"{}\"}} {}\n",
                   name, cumulative, name, micros[e] / 1'000'000, micros[e] % 1'000'000, name,
                   cumulative);
  }

  const auto loaded =
      std::chrono::duration_cast<std::chrono::seconds>(app.loaded_at.time_since_epoch()).count();
  fmt::format_to(
      std::back_inserter(out),
      "# HELP mailconfd_hosted_domains Domains in the configuration being served.\n"
      "# TYPE mailconfd_hosted_domains gauge\n"
      "mailconfd_hosted_domains {}\n"
      "# HELP mailconfd_providers Providers in the configuration being served.\n"
      "# TYPE mailconfd_providers gauge\n"
      "mailconfd_providers {}\n"
      "# HELP mailconfd_config_reloads_total Reloads of the configuration file (SIGHUP), by "
      "result; database changes and issued certificates are not counted.\n"
      "# TYPE mailconfd_config_reloads_total counter\n"
      "mailconfd_config_reloads_total{{result=\"success\"}} {}\n"
      "mailconfd_config_reloads_total{{result=\"failure\"}} {}\n"
      "# HELP mailconfd_config_last_reload_success_timestamp_seconds When the configuration "
      "being served was loaded (start or last successful reload).\n"
      "# TYPE mailconfd_config_last_reload_success_timestamp_seconds gauge\n"
      "mailconfd_config_last_reload_success_timestamp_seconds {}\n"
      "# HELP mailconfd_profiles_signed_total Apple profiles signed (a download answered from "
      "the signed-profile cache costs no signature).\n"
      "# TYPE mailconfd_profiles_signed_total counter\n"
      "mailconfd_profiles_signed_total {}\n"
      "# HELP mailconfd_open_connections Client connections open now, by listener (the "
      "separate metrics listener's are not counted).\n"
      "# TYPE mailconfd_open_connections gauge\n"
      "mailconfd_open_connections{{listener=\"http\"}} {}\n"
      "mailconfd_open_connections{{listener=\"https\"}} {}\n"
      "# HELP mailconfd_ready 1 while every listener is up and the process is not shutting "
      "down.\n"
      "# TYPE mailconfd_ready gauge\n"
      "mailconfd_ready {}\n"
      "# HELP mailconfd_build_info The running version.\n"
      "# TYPE mailconfd_build_info gauge\n"
      "mailconfd_build_info{{version=\"{}\"}} 1\n"
      "# HELP process_start_time_seconds Start time of the process since the Unix epoch.\n"
      "# TYPE process_start_time_seconds gauge\n"
      "process_start_time_seconds {}\n",
      app.domains->size(), app.config->providers.size(), reloads_ok.load(), reloads_failed.load(),
      loaded, profiles_signed(), open_http.load(), open_https.load(), ready() ? 1 : 0,
      MAILCONFD_VERSION, started_at);
  append_tls(out, app);
  journal::append_metrics(out);
  cockpit::append_metrics(out);
  source::append_metrics(out, *app.domains);
  return out;
}

}  // namespace mailconfd::metrics
