#include "core/peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace mailconfd {
namespace {

constexpr std::array<unsigned char, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

PeerAddress from_v4(const in_addr& v4) {
  PeerAddress peer;
  std::memcpy(peer.bytes.data(), kMappedPrefix.data(), kMappedPrefix.size());
  std::memcpy(peer.bytes.data() + 12, &v4.s_addr, 4);
  peer.known = true;
  return peer;
}

}  // namespace

PeerAddress PeerAddress::from(const sockaddr* address, socklen_t length) {
  if (address == nullptr) return {};
  if (address->sa_family == AF_INET && length >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    return from_v4(reinterpret_cast<const sockaddr_in*>(address)->sin_addr);
  }
  if (address->sa_family == AF_INET6 && length >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    PeerAddress peer;
    std::memcpy(peer.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, 16);
    peer.known = true;
    return peer;
  }
  return {};
}

PeerAddress PeerAddress::parse(const std::string& text) {
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) return from_v4(v4);
  PeerAddress peer;
  if (inet_pton(AF_INET6, text.c_str(), peer.bytes.data()) == 1) peer.known = true;
  return peer;
}

std::string PeerAddress::text() const {
  if (!known) return "unknown";
  char out[INET6_ADDRSTRLEN] = {};
  if (std::memcmp(bytes.data(), kMappedPrefix.data(), kMappedPrefix.size()) == 0) {
    inet_ntop(AF_INET, bytes.data() + 12, out, sizeof out);
  } else {
    inet_ntop(AF_INET6, bytes.data(), out, sizeof out);
  }
  return out;
}

}  // namespace mailconfd
