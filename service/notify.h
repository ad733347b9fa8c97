// systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram per state
// change to the socket named by $NOTIFY_SOCKET. Without that variable every call does nothing.
#pragma once

#include <string_view>

namespace mailconfd {

// Sends state ("READY=1", "RELOADING=1", "STOPPING=1", "STATUS=…"; several lines allowed).
// Returns false when NOTIFY_SOCKET is set but the datagram could not be sent.
bool notify_systemd(std::string_view state);

// "RELOADING=1\nMONOTONIC_USEC=…": systemd 253+ needs the timestamp; older versions ignore it.
bool notify_systemd_reloading();

}  // namespace mailconfd
