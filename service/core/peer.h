// The address a connection came from, as the kernel reported it at accept: 16 bytes, IPv4 as
// an IPv4-mapped IPv6 address (::ffff:a.b.c.d), so one client has one key whichever family
// its socket had. Kept with the request for decisions about the client (the cockpit's
// per-source throttle); never written to the access log.
#pragma once

#include <sys/socket.h>

#include <array>
#include <string>

namespace mailconfd {

struct PeerAddress {
  std::array<unsigned char, 16> bytes{};
  bool known = false;  // false: not a TCP peer (tests, a failed accept address)

  // From accept()'s address (AF_INET or AF_INET6); unknown for anything else.
  static PeerAddress from(const sockaddr* address, socklen_t length);
  // From text ("127.0.0.2", "::1"); unknown when it is not an address.
  static PeerAddress parse(const std::string& text);
  // "127.0.0.2", "::1"; "unknown" when not known.
  std::string text() const;

  bool operator==(const PeerAddress&) const = default;
};

}  // namespace mailconfd
