// IP addresses and networks as the scan compares them: IPv4 is kept as an IPv4-mapped IPv6
// address, so "192.0.2.40" and Dovecot's "::ffff:192.0.2.40" are the same client.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailconfd::cutover {

struct IpAddress {
  std::array<std::uint8_t, 16> bytes{};
  bool operator==(const IpAddress& other) const {
    // Two 8-byte compares (the defaulted == calls memcmp, and this is on every line's path).
    std::uint64_t a[2], b[2];
    std::memcpy(a, bytes.data(), 16);
    std::memcpy(b, other.bytes.data(), 16);
    return ((a[0] ^ b[0]) | (a[1] ^ b[1])) == 0;
  }
  bool is_v4() const;
};

// Keyed (config/keyed_hash.h): clients choose their addresses, IPv6 ones from a whole /64.
struct IpHash {
  std::size_t operator()(const IpAddress& ip) const;
};

// "192.0.2.40", "::ffff:192.0.2.40", "2001:db8::7" (no brackets, no zone); nullopt otherwise.
std::optional<IpAddress> parse_ip(std::string_view text);
// The same into out (left as it was when false).
bool parse_ip(std::string_view text, IpAddress& out);
// Dotted quad for IPv4 (mapped or not), RFC 5952 text for IPv6.
std::string to_string(const IpAddress& ip);
// The same into out (at least kIpTextMax bytes, NUL-terminated); returns its length.
inline constexpr std::size_t kIpTextMax = 46;  // INET6_ADDRSTRLEN
std::size_t format_ip(const IpAddress& ip, char* out);

struct Network {
  IpAddress base;    // masked
  int prefix = 128;  // in the 128-bit space (IPv4 /8 is 104)
  bool contains(const IpAddress& ip) const;
};

// "10.0.0.0/8", "192.0.2.1", "2001:db8::/32", "[::1]/128" (Postfix's mynetworks syntax).
std::optional<Network> parse_network(std::string_view text);

// A comma- or space-separated list; problems receives each element that is not a network.
std::vector<Network> parse_networks(std::string_view text, std::vector<std::string>& problems);

}  // namespace mailconfd::cutover
