// Private keys stored in the provider's database under <acme key-file>: AES-256-GCM (OpenSSL
// EVP) with a random 96-bit nonce and the row's identity as associated data, kept as text in
// the same column as the previous release's plain PEM:
//   "mailconfd-sealed-v1:" base64(nonce (12 bytes) || ciphertext || tag (16 bytes))
// (RFC 4648 base64 with padding, no line breaks). The associated data is "certificate NAME"
// for a certificate's key and "account" for the account key, so a sealed key copied into
// another row does not open. A value that does not start with "mailconfd-sealed-" is the
// previous release's plain PEM; "mailconfd-sealed-" with another version is refused.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mailconfd::acme_store {

inline constexpr std::string_view kSealedHeader = "mailconfd-sealed-v1:";
inline constexpr std::size_t kSealKeySize = 32;  // AES-256
inline constexpr std::size_t kSealNonceSize = 12;
inline constexpr std::size_t kSealTagSize = 16;

// The associated data of a certificate's key and of the account key.
std::string certificate_associated_data(std::string_view name);
inline constexpr std::string_view kAccountAssociatedData = "account";

// plain sealed with key (kSealKeySize bytes). Empty when key has another size or OpenSSL
// fails.
std::string seal(std::string_view key, std::string_view associated, std::string_view plain);

enum class Opened {
  Plain,   // stored is not sealed: plain is stored as it is (the previous release's PEM)
  Sealed,  // stored was sealed and opened into plain
  Failed,  // sealed but not opened: error says why
};
// Opens stored. key empty (no key-file): a sealed value fails. The wrong key, another row's
// value and any change to the bytes all fail the same way (GCM's tag cannot tell them apart).
Opened open_sealed(std::string_view key, std::string_view associated, std::string_view stored,
                   std::string& plain, std::string& error);

}  // namespace mailconfd::acme_store
