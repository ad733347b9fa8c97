// `mailconfd check [--config] FILE`: validates a configuration file and what it names.
#pragma once

namespace mailconfd::cli {

// argv[1] is the command. Returns the exit status: 0 success, 1 runtime failure, 2 usage
// error or invalid configuration.
int check_command(int argc, char** argv);

}  // namespace mailconfd::cli
