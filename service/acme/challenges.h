// The answers to ACME http-01 challenges (RFC 8555 §8.3): GET
// /.well-known/acme-challenge/TOKEN on port 80 must return the key authorization. They come
// from a directory an external ACME client writes (certbot --webroot, lego --http.webroot,
// uacme), read per request, since such a client writes the file just before the CA asks.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace mailconfd::acme {

inline constexpr std::string_view kChallengePrefix = "/.well-known/acme-challenge/";

// True for a token as RFC 8555 §8.1 makes them: base64url characters only, 1 to 128 of them.
// Anything else (dots, slashes, percent signs) is not looked up at all.
bool valid_token(std::string_view token);

// The answers of mailconfd's own ACME client (acme/client.h) while a challenge is pending:
// token → key authorization. Written by the issuer thread, read by workers; a lookup is one
// short lock. Mutable state of its own, outside the App snapshot (which only points to it).
// With the storage in the database (acme_store/), the issuing replica's answers also go to the
// database (the hook), and the other replicas' copies of them are the shared answers.
class Tokens {
 public:
  // Called by put (answer set) and erase (answer null) after the local change, on the
  // caller's thread (the issuer's), outside the lock; put returns after it.
  using Hook = std::function<void(const std::string& token, const std::string* answer)>;

  void put(const std::string& token, const std::string& key_authorization);
  void erase(const std::string& token);
  // The own answers first, then the shared ones.
  std::optional<std::string> find(std::string_view token) const;

  void set_hook(Hook hook);
  // Replaces the answers another replica's issuer wrote to the database.
  void set_shared(std::unordered_map<std::string, std::string> shared);

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::string> answers_;
  std::unordered_map<std::string, std::string> shared_;
  Hook hook_;
};

// The content of directory/token when token is valid and names a regular file of at most
// 4 KiB; nullopt otherwise (missing, unreadable, too big, not a regular file).
std::optional<std::string> read_challenge(const std::string& directory, std::string_view token);

}  // namespace mailconfd::acme
