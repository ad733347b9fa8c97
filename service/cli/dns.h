// `mailconfd dns zone` and `mailconfd dns check`: the DNS records of every hosted domain.
#pragma once

namespace mailconfd::cli {

// argv[1] is the command. Returns the exit status: 0 success, 1 runtime failure, 2 usage
// error or invalid configuration.
int dns_command(int argc, char** argv);

}  // namespace mailconfd::cli
