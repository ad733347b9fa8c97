// `mailconfd serve`: its help and arguments; the daemon itself is daemon/serve.h.
#pragma once

namespace mailconfd::cli {

// argv[1] is "serve". Returns the exit status: 0 after a drain, 1 when a listener cannot
// start, 2 usage error or invalid configuration.
int serve_command(int argc, char** argv);

}  // namespace mailconfd::cli
