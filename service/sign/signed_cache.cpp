#include "sign/signed_cache.h"

namespace mailconfd::sign {

std::shared_ptr<const std::string> SignedCache::find(std::string_view key) const {
  Shard& shard = shard_for(key);
  const std::lock_guard lock(shard.mutex);
  auto it = shard.entries.find(key);
  return it == shard.entries.end() ? nullptr : it->second;
}

void SignedCache::insert(std::string_view key, std::shared_ptr<const std::string> value) {
  const std::size_t cost = key.size() + value->size();
  const std::size_t budget = max_bytes_ / kShards;
  if (cost > budget) return;
  Shard& shard = shard_for(key);
  const std::lock_guard lock(shard.mutex);
  if (shard.entries.find(key) != shard.entries.end()) return;
  while (shard.bytes + cost > budget && !shard.order.empty()) {
    auto oldest = shard.entries.find(shard.order.front());
    shard.bytes -= oldest->first.size() + oldest->second->size();
    shard.entries.erase(oldest);
    shard.order.pop_front();
  }
  shard.entries.emplace(std::string(key), std::move(value));
  shard.order.emplace_back(key);
  shard.bytes += cost;
}

std::size_t SignedCache::bytes() const {
  std::size_t total = 0;
  for (const Shard& shard : shards_) {
    const std::lock_guard lock(shard.mutex);
    total += shard.bytes;
  }
  return total;
}

std::size_t SignedCache::size() const {
  std::size_t total = 0;
  for (const Shard& shard : shards_) {
    const std::lock_guard lock(shard.mutex);
    total += shard.entries.size();
  }
  return total;
}

}  // namespace mailconfd::sign
