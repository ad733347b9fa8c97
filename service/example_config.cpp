#include "example_config.h"

namespace mailconfd {

std::string_view example_config() {
  static constexpr std::string_view kText =
#include "example_config.inc"
      ;
  return kText;
}

}  // namespace mailconfd
