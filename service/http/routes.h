// The whole URL surface in one table. Each handler is parse → resolve → render, returns a
// Reply and never throws past route(); route() turns anything unexpected into a plain 500.
#pragma once

#include <optional>
#include <string_view>

#include "app.h"
#include "http/reply.h"
#include "http/request.h"

namespace mailconfd::http {

Reply route(const App& app, const Request& request);

// A request on a connection accepted during the SIGTERM drain: /healthz and /readyz answer as
// always (a liveness probe opens a new connection each time, and the process is alive until
// it exits), everything else gets 503 and the connection closes.
Reply route_draining(const App& app, const Request& request);

// First value of a query parameter, name compared case-insensitively; not decoded.
std::optional<std::string_view> query_param(std::string_view query, std::string_view name);

// A short, fixed label for the client software from User-Agent ("-" if unknown). Never
// echoes the header itself into logs.
std::string_view client_kind(std::string_view user_agent);

}  // namespace mailconfd::http
