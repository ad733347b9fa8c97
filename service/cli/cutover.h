// `mailconfd cutover scan`: who still sends via SMTP-after-POP, read from the mail servers'
// own logs (service/cutover/). The body of the subcommand; main.cpp only dispatches here.
#pragma once

namespace mailconfd::cli {

// argv[1] is "cutover". Returns the exit status (see kCutoverHelp in cutover.cpp).
int cutover(int argc, char** argv);

}  // namespace mailconfd::cli
