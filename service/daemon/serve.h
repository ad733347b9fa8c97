// `mailconfd serve` once its arguments are checked: listeners → ready → signals → drain.
// The listeners read the publisher's one snapshot; SIGHUP asks the publisher for a new one,
// SIGTERM/SIGINT drain (see kServeHelp in cli/serve.cpp for what an operator sees).
#pragma once

#include <signal.h>

#include <optional>
#include <string>

#include "config/config.h"
#include "config/config_file.h"

namespace mailconfd::daemon {

// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (and so in every thread started
// after it), ignores SIGPIPE, raises the descriptor limit to the hard one (room for
// max-connections). Call first, before any thread exists (the logger's included); returns
// the signals serve() waits for.
sigset_t prepare_process();

struct ServeSetup {
  Config config;                            // loaded and checked, every problem reported
  bool from_file = false;                   // false: the built-in example, which cannot reload
  ListenAddress listen;                     // the plain listener
  std::string listen_text;                  // as given, for messages
  std::optional<ListenAddress> tls_listen;  // the HTTPS listener, with <tls>
  sigset_t signals{};                       // from prepare_process()
};

// Builds the first snapshot, starts the listeners (the metrics listener too, with <server
// metrics-listen>), prints the readiness lines, reports READY=1, then answers signals until
// SIGTERM/SIGINT and drains. Returns the exit status: 0 after a drain, 1 when a listener
// cannot start, 2 when the first snapshot cannot be built.
int serve(ServeSetup setup);

}  // namespace mailconfd::daemon
