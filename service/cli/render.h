// `mailconfd render KIND EMAIL`: prints the document mailconfd would serve for an address.
#pragma once

namespace mailconfd::cli {

// argv[1] is the command. Returns the exit status: 0 success, 1 runtime failure, 2 usage
// error or invalid configuration.
int render_command(int argc, char** argv);

}  // namespace mailconfd::cli
