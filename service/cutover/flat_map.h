// An open-addressing hash map (linear probing, backward-shift deletion, no tombstones) for
// the scan's per-line state: one probe sequence in one array instead of a chain of nodes,
// and no allocation per entry; a table of a huge page or more lives in huge pages
// (huge_pages.h). Pointers to values are valid only until the next insert or erase (either may
// move entries).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "cutover/huge_pages.h"

namespace mailconfd::cutover {

template <typename Key, typename Value, typename Hash>
class FlatMap {
 public:
  struct Slot {
    bool used = false;
    Key key{};
    Value value{};
  };

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Hash{}(key): the functions below take it too, so that a key used in several lookups (or
  // in several maps with the same Hash) is hashed once.
  static std::size_t hash(const Key& key) { return Hash{}(key); }

  // Asks the CPU to bring key's home slot into the cache, so that a lookup of key after some
  // other work finds it there instead of waiting for memory.
  void prefetch(const Key& key) const { prefetch_hashed(hash(key)); }
  void prefetch_hashed(std::size_t key_hash) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[key_hash & mask_]);
  }

  Value* find(const Key& key) { return size_ == 0 ? nullptr : find(key, hash(key)); }
  Value* find(const Key& key, std::size_t key_hash) {
    if (size_ == 0) return nullptr;
    for (std::size_t i = key_hash & mask_;; i = (i + 1) & mask_) {
      Slot& slot = slots_[i];
      if (!slot.used) return nullptr;
      if (slot.key == key) return &slot.value;
    }
  }
  const Value* find(const Key& key) const { return const_cast<FlatMap*>(this)->find(key); }
  const Value* find(const Key& key, std::size_t key_hash) const {
    return const_cast<FlatMap*>(this)->find(key, key_hash);
  }

  // The value for key, default-constructed when new; second: whether it was inserted. With
  // kFresh false a new entry's value is whatever its slot held (default-constructed or an
  // erased entry's), for a caller that sets every field anyway and would rather not clear a
  // large value first.
  std::pair<Value*, bool> try_emplace(const Key& key) { return try_emplace(key, hash(key)); }
  template <bool kFresh = true>
  std::pair<Value*, bool> try_emplace(const Key& key, std::size_t key_hash) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    for (std::size_t i = key_hash & mask_;; i = (i + 1) & mask_) {
      Slot& slot = slots_[i];
      if (!slot.used) {
        slot.used = true;
        slot.key = key;
        if constexpr (kFresh) slot.value = Value{};
        ++size_;
        return {&slot.value, true};
      }
      if (slot.key == key) return {&slot.value, false};
    }
  }
  Value& operator[](const Key& key) { return *try_emplace(key).first; }

  bool erase(const Key& key) {
    if (size_ == 0) return false;
    std::size_t i = home(key);
    while (true) {
      if (!slots_[i].used) return false;
      if (slots_[i].key == key) break;
      i = (i + 1) & mask_;
    }
    // Backward shift: pull each following entry of the cluster into the hole when its home
    // slot does not lie (cyclically) between the hole and its own position.
    std::size_t hole = i;
    for (std::size_t j = (i + 1) & mask_; slots_[j].used; j = (j + 1) & mask_) {
      const std::size_t want = home(slots_[j].key);
      const bool stays = hole <= j ? (hole < want && want <= j) : (hole < want || want <= j);
      if (stays) continue;
      slots_[hole] = std::move(slots_[j]);
      hole = j;
    }
    slots_[hole].used = false;
    // Release what the value holds; a plain value is overwritten when the slot is reused.
    if constexpr (!std::is_trivially_destructible_v<Value>) slots_[hole].value = Value{};
    --size_;
    return true;
  }

  void clear() {
    slots_.clear();
    mask_ = 0;
    size_ = 0;
  }

  // Every entry, in slot order: f(const Key&, Value&).
  template <typename F>
  void for_each(F&& f) {
    for (Slot& slot : slots_) {
      if (slot.used) f(slot.key, slot.value);
    }
  }
  template <typename F>
  void for_each(F&& f) const {
    for (const Slot& slot : slots_) {
      if (slot.used) f(slot.key, slot.value);
    }
  }

 private:
  std::size_t home(const Key& key) const { return Hash{}(key)&mask_; }

  void grow() {
    Slots old = std::move(slots_);
    slots_ = Slots(old.empty() ? 16 : old.size() * 2);
    mask_ = slots_.size() - 1;
    size_ = 0;
    for (Slot& slot : old) {
      if (!slot.used) continue;
      std::size_t i = home(slot.key);
      while (slots_[i].used) i = (i + 1) & mask_;
      slots_[i] = std::move(slot);
      ++size_;
    }
  }

  using Slots = std::vector<Slot, HugePageAllocator<Slot>>;
  Slots slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace mailconfd::cutover
