#include "acme_store/memory.h"

#include <chrono>

namespace mailconfd::acme_store {
namespace {

using SystemClock = std::chrono::system_clock;

std::int64_t seconds_of(SystemClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::int64_t seconds_up(SystemClock::time_point t) {
  return std::chrono::ceil<std::chrono::seconds>(t.time_since_epoch()).count();
}

SystemClock::time_point time_of(std::int64_t seconds) {
  return SystemClock::time_point(std::chrono::seconds(seconds));
}

}  // namespace

StoredHold to_row(const acme::Hold& hold) {
  return {seconds_up(hold.until), hold.ca_delay.count(), hold.reason};
}

std::optional<acme::Hold> from_row(const StoredHold& row) {
  if (row.ca_delay < 0 || row.ca_delay > 86'400) return std::nullopt;
  return acme::Hold{time_of(row.until), std::chrono::seconds(row.ca_delay), row.reason};
}

StoredRenewal to_row(const std::string& name, const acme::RenewalState& state) {
  return {name,
          state.cert_id,
          seconds_of(state.window.start),
          seconds_of(state.window.end),
          seconds_of(state.renew_at),
          seconds_up(state.ask_again)};
}

std::optional<acme::RenewalState> from_row(const StoredRenewal& row) {
  if (row.cert_id.empty() || row.window_end <= row.window_start ||
      row.renew_at < row.window_start || row.renew_at > row.window_end) {
    return std::nullopt;
  }
  return acme::RenewalState{row.cert_id,
                            {time_of(row.window_start), time_of(row.window_end)},
                            time_of(row.renew_at),
                            time_of(row.ask_again)};
}

StoredBackoff to_row(const std::string& name, const acme::NameBackoff& backoff) {
  return {name, seconds_up(backoff.not_before), backoff.delay.count()};
}

std::optional<acme::NameBackoff> from_row(const StoredBackoff& row) {
  if (row.delay <= 0 || row.delay > 86'400) return std::nullopt;
  return acme::NameBackoff{time_of(row.not_before), std::chrono::seconds(row.delay)};
}

}  // namespace mailconfd::acme_store
