// `mailconfd cockpit password NAME`: prints a password-file line for the cockpit.
#pragma once

namespace mailconfd::cli {

// argv[1] is "cockpit". Returns the exit status (0, 1 runtime failure, 2 usage).
int cockpit_command(int argc, char** argv);

}  // namespace mailconfd::cli
