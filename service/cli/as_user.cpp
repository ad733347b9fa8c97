#include "cli/as_user.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

namespace mailconfd::cli {

std::string become_user(const std::string& name) {
  if (geteuid() != 0) {
    return fmt::format(
        "--as-user needs root (it switches to user '{}' to read every file as "
        "that user; run it with sudo)",
        name);
  }
  passwd entry{};
  passwd* found = nullptr;
  std::vector<char> buffer(16384);
  const int error = getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
  if (found == nullptr) {
    return error == 0
               ? fmt::format("--as-user: no such user '{}'", name)
               : fmt::format("--as-user: cannot look up user '{}': {}", name, std::strerror(error));
  }
  const uid_t uid = found->pw_uid;
  const gid_t gid = found->pw_gid;
  if (initgroups(name.c_str(), gid) != 0) {
    return fmt::format("--as-user: initgroups for '{}': {}", name, std::strerror(errno));
  }
  if (setgid(gid) != 0) {
    return fmt::format("--as-user: setgid({}): {}", gid, std::strerror(errno));
  }
  if (setuid(uid) != 0) {
    return fmt::format("--as-user: setuid({}): {}", uid, std::strerror(errno));
  }
  // setuid as root also sets the saved user id: there is no way back.
  if (uid != 0 && (geteuid() != uid || setuid(0) == 0)) {
    return fmt::format("--as-user: could not give up root for user '{}'", name);
  }
  return "";
}

}  // namespace mailconfd::cli
