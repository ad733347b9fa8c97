// The built-in example configuration: the bytes of deploy/example/mailconfd.xml, compiled in
// so that `mailconfd serve` works without any file.
#pragma once

#include <string_view>

namespace mailconfd {

std::string_view example_config();
inline constexpr const char* kExampleConfigName =
    "(built-in example: deploy/example/mailconfd.xml)";

}  // namespace mailconfd
