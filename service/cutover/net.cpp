#include "cutover/net.h"

#include <arpa/inet.h>

#include <bit>
#include <cstring>

#include "config/keyed_hash.h"

namespace mailconfd::cutover {
namespace {

constexpr std::array<std::uint8_t, 12> kMappedPrefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};

// The four bytes of a dotted quad, first in the lowest byte of out; kept in a register, so
// that the address is stored whole (a load of it then never waits on several small stores).
bool parse_v4(std::string_view text, std::uint32_t& out) {
  std::uint32_t bytes = 0;
  int part = 0;
  std::size_t pos = 0;
  while (part < 4) {
    if (pos >= text.size() || text[pos] < '0' || text[pos] > '9') return false;
    unsigned value = 0;
    const std::size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9' && pos - start < 3) {
      value = value * 10 + static_cast<unsigned>(text[pos++] - '0');
    }
    if (value > 255 || (pos - start > 1 && text[start] == '0')) return false;
    bytes |= value << (8 * part++);
    if (part < 4) {
      if (pos >= text.size() || text[pos] != '.') return false;
      ++pos;
    }
  }
  out = bytes;
  return pos == text.size();
}

}  // namespace

bool IpAddress::is_v4() const {
  return std::memcmp(bytes.data(), kMappedPrefix.data(), kMappedPrefix.size()) == 0;
}

std::size_t IpHash::operator()(const IpAddress& ip) const {
  // Keyed: a client picks its IPv6 address from a whole /64, so unkeyed, addresses chosen to
  // collide would turn the scan's lookups into walks through the table.
  std::uint64_t words[2];
  std::memcpy(words, ip.bytes.data(), sizeof words);
  return static_cast<std::size_t>(siphash13_16(process_hash_key(), words[0], words[1]));
}

bool parse_ip(std::string_view text, IpAddress& out) {
  if (text.empty() || text.size() > 45) return false;
  if (std::uint32_t v4 = 0; parse_v4(text, v4)) {
    // ::ffff:a.b.c.d as the words of bytes 0-7 and 8-15 (00 00 FF FF a b c d).
    std::uint64_t words[2] = {0, 0};
    if constexpr (std::endian::native == std::endian::little) {
      words[1] = 0xFFFF0000ULL | std::uint64_t{v4} << 32;
    } else {
      words[1] = 0xFFFFULL << 32 | __builtin_bswap32(v4);
    }
    std::memcpy(out.bytes.data(), words, 16);
    return true;
  }
  if (text.find(':') == std::string_view::npos) return false;
  char buffer[46];
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  IpAddress ip;
  if (inet_pton(AF_INET6, buffer, ip.bytes.data()) != 1) return false;
  out = ip;
  return true;
}

std::optional<IpAddress> parse_ip(std::string_view text) {
  IpAddress ip;
  if (!parse_ip(text, ip)) return std::nullopt;
  return ip;
}

std::size_t format_ip(const IpAddress& ip, char* out) {
  static_assert(kIpTextMax >= INET6_ADDRSTRLEN);
  if (!ip.is_v4()) {
    inet_ntop(AF_INET6, ip.bytes.data(), out, kIpTextMax);
    return std::strlen(out);
  }
  // The dotted quad as inet_ntop writes it (decimal, no leading zeros), without its sprintf:
  // the report writes every IP of every mailbox.
  std::size_t length = 0;
  for (std::size_t i = 12; i < 16; ++i) {
    const unsigned value = ip.bytes[i];
    if (value >= 100) out[length++] = static_cast<char>('0' + value / 100);
    if (value >= 10) out[length++] = static_cast<char>('0' + value / 10 % 10);
    out[length++] = static_cast<char>('0' + value % 10);
    out[length++] = i < 15 ? '.' : '\0';
  }
  return length - 1;
}

std::string to_string(const IpAddress& ip) {
  char buffer[kIpTextMax];
  return std::string(buffer, format_ip(ip, buffer));
}

bool Network::contains(const IpAddress& ip) const {
  int bits = prefix;
  for (std::size_t i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    const std::uint8_t mask = bits >= 8 ? 0xFF : static_cast<std::uint8_t>(0xFF << (8 - bits));
    if ((ip.bytes[i] & mask) != base.bytes[i]) return false;
  }
  return true;
}

std::optional<Network> parse_network(std::string_view text) {
  std::string_view address = text;
  std::string_view length;
  if (const std::size_t slash = text.find('/'); slash != std::string_view::npos) {
    address = text.substr(0, slash);
    length = text.substr(slash + 1);
  }
  if (address.size() >= 2 && address.front() == '[' && address.back() == ']') {
    address = address.substr(1, address.size() - 2);
  }
  const auto ip = parse_ip(address);
  if (!ip) return std::nullopt;
  const bool v4 = ip->is_v4() && address.find(':') == std::string_view::npos;
  int bits = v4 ? 32 : 128;
  if (!length.empty()) {
    if (length.size() > 3) return std::nullopt;
    int value = 0;
    for (char c : length) {
      if (c < '0' || c > '9') return std::nullopt;
      value = value * 10 + (c - '0');
    }
    if (value > bits) return std::nullopt;
    bits = value;
  } else if (text.find('/') != std::string_view::npos) {
    return std::nullopt;
  }
  Network network;
  network.prefix = v4 ? 96 + bits : bits;
  network.base = *ip;
  int remaining = network.prefix;
  for (std::size_t i = 0; i < 16; ++i, remaining -= 8) {
    if (remaining >= 8) continue;
    network.base.bytes[i] =
        remaining <= 0
            ? 0
            : static_cast<std::uint8_t>(network.base.bytes[i] & (0xFF << (8 - remaining)));
  }
  return network;
}

std::vector<Network> parse_networks(std::string_view text, std::vector<std::string>& problems) {
  std::vector<Network> networks;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t end = text.find_first_of(", \t\n", pos);
    const std::string_view item =
        text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    if (!item.empty()) {
      if (auto network = parse_network(item)) {
        networks.push_back(*network);
      } else {
        problems.emplace_back(item);
      }
    }
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return networks;
}

}  // namespace mailconfd::cutover
