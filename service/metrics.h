// Process-wide counters for GET /metrics (Prometheus text format 0.0.4) and the readiness
// flag behind GET /readyz. Counting a request touches only the calling thread's own counters
// (relaxed atomics, no lock, no allocation after the thread's first request). Every label
// value is a fixed word from this file: nothing from a request ever becomes a label.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "app.h"
#include "endpoint.h"

namespace mailconfd::metrics {

inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

// One answered request: which endpoint answered, its status, and how long it took from the
// first parse of its complete bytes to the serialized answer.
void count_request(Endpoint endpoint, int status, std::chrono::nanoseconds elapsed);

// A client connection opened or closed, plain HTTP or HTTPS (the gauge of open connections).
void connection_opened(bool tls);
void connection_closed(bool tls);

// One SIGHUP reload attempt: true when the new configuration was swapped in.
void count_reload(bool succeeded);

// /readyz: true once every listener is up, false again when shutdown starts.
void set_ready(bool ready);
bool ready();

// The whole exposition: request counters and latency histograms summed over threads,
// the snapshot's hosted domains and load time, reloads, build info.
std::string render(const App& app);

}  // namespace mailconfd::metrics
