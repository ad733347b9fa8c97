#include "endpoint.h"

namespace mailconfd {

std::string_view to_string(Endpoint endpoint) {
  switch (endpoint) {
    case Endpoint::Autoconfig:
      return "autoconfig";
    case Endpoint::Autodiscover:
      return "autodiscover";
    case Endpoint::AutodiscoverJson:
      return "autodiscover_json";
    case Endpoint::Mobileconfig:
      return "mobileconfig";
    case Endpoint::Setup:
      return "setup";
    case Endpoint::Health:
      return "health";
    case Endpoint::Metrics:
      return "metrics";
    case Endpoint::Cockpit:
      return "cockpit";
    case Endpoint::Other:
      return "other";
  }
  return "other";
}

}  // namespace mailconfd
