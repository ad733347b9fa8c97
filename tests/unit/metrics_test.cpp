#include "metrics.h"

#include <thread>

#include <doctest/doctest.h>

#include "app.h"
#include "support.h"

using namespace mailconfd;
using mailconfd::Endpoint;

namespace {

// The value of the sample line "NAME VALUE"; -1 if absent.
double sample(const std::string& text, const std::string& name) {
  const auto at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + name.size() + 2));
}

}  // namespace

TEST_CASE("requests from several threads are summed by endpoint, class and latency bucket") {
  const auto app = build_app(testing::load_text(testing::minimal_config()).config);
  const std::string before = metrics::render(*app);
  const std::string two = "mailconfd_http_requests_total{endpoint=\"mobileconfig\",code=\"2xx\"}";
  const std::string five = "mailconfd_http_requests_total{endpoint=\"mobileconfig\",code=\"5xx\"}";
  const std::string bucket =
      "mailconfd_http_request_duration_seconds_bucket{endpoint=\"mobileconfig\",le=\"0.001\"}";
  const std::string count =
      "mailconfd_http_request_duration_seconds_count{endpoint=\"mobileconfig\"}";
  const std::string sum = "mailconfd_http_request_duration_seconds_sum{endpoint=\"mobileconfig\"}";
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < 1000; ++i) {
        metrics::count_request(Endpoint::Mobileconfig, 200, std::chrono::microseconds(500));
      }
      metrics::count_request(Endpoint::Mobileconfig, 503, std::chrono::milliseconds(2000));
    });
  }
  for (auto& t : threads) t.join();
  const std::string after = metrics::render(*app);
  CHECK(sample(after, two) - sample(before, two) == 4000);
  CHECK(sample(after, five) - sample(before, five) == 4);
  CHECK(sample(after, bucket) - sample(before, bucket) == 4000);  // 2 s only in +Inf
  CHECK(sample(after, count) - sample(before, count) == 4004);
  CHECK(sample(after, sum) - sample(before, sum) == doctest::Approx(4 * 0.5 + 4 * 2.0));
  CHECK(sample(after, "mailconfd_hosted_domains") == 1);
  CHECK(sample(after, "mailconfd_providers") == 1);
}

TEST_CASE("odd statuses and endpoints stay within the fixed label set") {
  const auto app = build_app(testing::load_text(testing::minimal_config()).config);
  metrics::count_request(static_cast<Endpoint>(200), 999, std::chrono::nanoseconds(-5));
  metrics::count_request(Endpoint::Other, 42, {});
  const std::string text = metrics::render(*app);
  CHECK(sample(text, "mailconfd_http_requests_total{endpoint=\"other\",code=\"5xx\"}") >= 1);
  CHECK(sample(text, "mailconfd_http_requests_total{endpoint=\"other\",code=\"1xx\"}") >= 1);
  CHECK(text.find("code=\"9xx\"") == std::string::npos);
}

TEST_CASE("readiness and reload counters") {
  const auto app = build_app(testing::load_text(testing::minimal_config()).config);
  metrics::set_ready(true);
  CHECK(metrics::ready());
  metrics::count_reload(true);
  metrics::count_reload(false);
  metrics::count_reload(false);
  std::string text = metrics::render(*app);
  CHECK(sample(text, "mailconfd_ready") == 1);
  CHECK(sample(text, "mailconfd_config_reloads_total{result=\"success\"}") >= 1);
  CHECK(sample(text, "mailconfd_config_reloads_total{result=\"failure\"}") >= 2);
  metrics::set_ready(false);
  CHECK(sample(metrics::render(*app), "mailconfd_ready") == 0);
}
