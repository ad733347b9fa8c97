#include "http/listen_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace mailconfd::http {

ListenSocket open_listen_socket(const ListenAddress& listen, std::uint16_t port, PortGroup group,
                                int backlog) {
  const bool v6 = listen.host.find(':') != std::string::npos;
  sockaddr_storage storage{};
  socklen_t length = 0;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&storage);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    if (::inet_pton(AF_INET6, listen.host.c_str(), &a->sin6_addr) != 1) {
      throw std::runtime_error("not an IPv6 address: " + listen.host);
    }
    length = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&storage);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    if (::inet_pton(AF_INET, listen.host.c_str(), &a->sin_addr) != 1) {
      throw std::runtime_error("not an IPv4 address: " + listen.host);
    }
    length = sizeof *a;
  }
  const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::strerror(errno));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (group == PortGroup::Join) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  // Accepted sockets inherit it: answers leave at once, not after the peer's delayed ACK.
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const bool did_bind = ::bind(fd, reinterpret_cast<sockaddr*>(&storage), length) == 0;
  // Set after bind, the flag lets later sockets of this process join without letting this
  // bind share a port that another process already listens on.
  if (did_bind && group == PortGroup::Open) {
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  if (!did_bind || ::listen(fd, backlog) != 0) {
    const std::string reason = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error(reason);
  }
  sockaddr_storage bound{};
  socklen_t bound_length = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_length);
  const std::uint16_t bound_port = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return ListenSocket{fd, bound_port};
}

}  // namespace mailconfd::http
