// `mailconfd probe`: checks that the servers the configuration advertises work as promised.
#pragma once

namespace mailconfd::cli {

// argv[1] is the command. Returns the exit status: 0 success, 1 runtime failure, 2 usage
// error or invalid configuration.
int probe_command(int argc, char** argv);

}  // namespace mailconfd::cli
