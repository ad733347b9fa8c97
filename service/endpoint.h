// Which part of the URL surface answered a request: a fixed set of words, used as a metrics
// label (metrics.h) and carried by every reply (http/reply.h). Its own header so that
// metrics, below the HTTP layer, does not include http/.
#pragma once

#include <string_view>

namespace mailconfd {

// Which part of the URL surface answered; a fixed set, used as a metrics label.
enum class Endpoint {
  Autoconfig,
  Autodiscover,
  AutodiscoverJson,
  Mobileconfig,
  Setup,
  Health,
  Metrics,
  Cockpit,
  Other
};
std::string_view to_string(Endpoint endpoint);

}  // namespace mailconfd
