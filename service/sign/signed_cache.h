// Signed profiles already produced, by address, so that repeated downloads do not cost a
// signature each. Bounded in bytes; the oldest entries of a shard go first. An App's profiles
// part owns one; a reload keeps it only when nothing a cached profile depends on changed
// (build_app in app.h), otherwise it starts empty.
#pragma once

#include <array>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "core/string_map.h"

namespace mailconfd::sign {

class SignedCache {
 public:
  explicit SignedCache(std::size_t max_bytes = kDefaultMaxBytes) : max_bytes_(max_bytes) {}
  SignedCache(const SignedCache&) = delete;
  SignedCache& operator=(const SignedCache&) = delete;

  // nullptr when key is not cached. Safe from any thread.
  std::shared_ptr<const std::string> find(std::string_view key) const;
  // Stores value under key (keeps the existing value if key is already present). Values
  // larger than a shard's share of max_bytes are not stored. Safe from any thread.
  void insert(std::string_view key, std::shared_ptr<const std::string> value);

  std::size_t bytes() const;
  std::size_t size() const;

  static constexpr std::size_t kDefaultMaxBytes = 32u << 20;  // ~6000 RSA-signed profiles
  static constexpr std::size_t kShards = 16;

 private:
  struct Shard {
    mutable std::mutex mutex;
    core::StringMap<std::shared_ptr<const std::string>> entries;
    std::deque<std::string> order;  // insertion order, oldest first
    std::size_t bytes = 0;          // keys plus values
  };
  Shard& shard_for(std::string_view key) const {
    return shards_[core::StringHash{}(key) % kShards];
  }
  std::size_t max_bytes_;
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace mailconfd::sign
