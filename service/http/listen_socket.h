// Listening sockets for the HTTP and HTTPS listeners.
#pragma once

#include <cstdint>

#include "config/config_file.h"

namespace mailconfd::http {

struct ListenSocket {
  int fd = -1;
  std::uint16_t port = 0;  // the bound port (the kernel's choice when asked for port 0)
};

// SO_REUSEPORT: several sockets of one process listen on one port and the kernel spreads
// new connections over them.
enum class PortGroup {
  None,  // a socket of its own
  Open,  // the group's first socket: binds like None (so a port that anyone else holds,
         // even another SO_REUSEPORT group, is refused), then lets the group join
  Join,  // another socket of the group opened by Open
};

// A non-blocking, close-on-exec TCP socket listening on listen.host at port (not
// listen.port: a Join socket takes the port its Open socket got). Throws
// std::runtime_error with the OS reason.
ListenSocket open_listen_socket(const ListenAddress& listen, std::uint16_t port, PortGroup group,
                                int backlog);

}  // namespace mailconfd::http
