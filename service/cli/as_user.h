// `mailconfd check --as-user USER`: read the configuration with the service user's rights.
#pragma once

#include <string>

namespace mailconfd::cli {

// Becomes USER for good: its supplementary groups (initgroups, e.g. ssl-cert), its primary
// group, then its user id, so that every file read afterwards is read as the service would
// read it. Needs root. Returns "" on success, else what went wrong (not root, no such user,
// the failing call with the operating system's reason).
std::string become_user(const std::string& name);

}  // namespace mailconfd::cli
