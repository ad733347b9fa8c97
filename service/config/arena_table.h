#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/keyed_hash.h"

namespace mailconfd {

// The storage both DomainTable and LoginTable are made of: records in a vector, their keys
// (and any bytes a record keeps after its key) back to back in one arena, and an open-addressing
// index of record numbers with linear probing and backward-shift deletion (no tombstones).
// Record has at least `std::uint32_t offset, hash; std::uint16_t key_length;`; the rest is the
// owner's payload. The hash is keyed per process (keyed_hash.h): names are chosen by customers.
template <class Record>
class ArenaTable {
 public:
  std::string_view key(const Record& r) const { return {arena_.data() + r.offset, r.key_length}; }
  // The bytes stored after r's key by insert(…, tail), `length` of them.
  std::string_view tail(const Record& r, std::size_t length) const {
    return {arena_.data() + r.offset + r.key_length, length};
  }
  const std::vector<Record>& records() const { return records_; }
  std::size_t size() const { return records_.size(); }

  // Adds record for key (offset, hash and key_length are set here) with tail's bytes after the
  // key. False, and nothing changed, when key is present or a length does not fit.
  bool insert(std::string_view key, Record record, std::string_view tail = {}) {
    if (key.size() > 0xFFFF || arena_.size() + key.size() + tail.size() > 0xFFFFFFFFu) return false;
    if ((records_.size() + 1) * 2 > index_.size())
      rehash(std::max<std::size_t>(16, index_.size() * 2));
    const std::uint32_t hash = hash_of(key);
    const std::size_t slot = slot_for(key, hash);
    if (index_[slot] != 0) return false;
    record.offset = static_cast<std::uint32_t>(arena_.size());
    record.hash = hash;
    record.key_length = static_cast<std::uint16_t>(key.size());
    records_.push_back(record);
    arena_.append(key).append(tail);
    index_[slot] = static_cast<std::uint32_t>(records_.size());
    return true;
  }

  // The record number of key (0 for the first one inserted while nothing was erased), or -1.
  std::ptrdiff_t find(std::string_view key) const {
    if (index_.empty()) return -1;
    return static_cast<std::ptrdiff_t>(index_[slot_for(key, hash_of(key))]) - 1;
  }
  const Record* find_record(std::string_view key) const {
    const std::ptrdiff_t at = find(key);
    return at < 0 ? nullptr : &records_[static_cast<std::size_t>(at)];
  }

  // Removes key (its bytes stay in the arena until the table is built anew); the last record
  // takes its place. False: not present.
  bool erase(std::string_view key) {
    if (index_.empty()) return false;
    const std::size_t slot = slot_for(key, hash_of(key));
    if (index_[slot] == 0) return false;
    const std::size_t at = index_[slot] - 1;
    unlink_slot(slot);
    const std::size_t last = records_.size() - 1;
    if (at != last) {
      const Record moved = records_[last];
      index_[slot_for(this->key(moved), moved.hash)] = static_cast<std::uint32_t>(at + 1);
      records_[at] = moved;
    }
    records_.pop_back();
    return true;
  }

  // Makes room for n more records without rehashing.
  void reserve(std::size_t n) {
    const std::size_t wanted = (records_.size() + n) * 2;  // load factor at most 1/2
    std::size_t capacity = 16;
    while (capacity < wanted) capacity *= 2;
    records_.reserve(records_.size() + n);
    if (capacity > index_.size()) rehash(capacity);
  }

  // The longest run of index slots a lookup of a present key walks (1: no collision).
  std::size_t max_probe() const {
    const std::size_t mask = index_.size() - 1;
    std::size_t longest = 0;
    for (std::size_t i = 0; i < index_.size(); ++i) {
      if (index_[i] == 0) continue;
      const std::size_t home = records_[index_[i] - 1].hash & mask;
      longest = std::max(longest, ((i - home) & mask) + 1);
    }
    return longest;
  }

 private:
  static std::uint32_t hash_of(std::string_view s) {
    return static_cast<std::uint32_t>(keyed_hash(s));
  }

  // The slot holding key, or the empty slot where it would go.
  std::size_t slot_for(std::string_view key, std::uint32_t hash) const {
    const std::size_t mask = index_.size() - 1;
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
      const std::uint32_t at = index_[i];
      if (at == 0) return i;
      const Record& r = records_[at - 1];
      if (r.hash == hash && this->key(r) == key) return i;
    }
  }

  void rehash(std::size_t capacity) {
    std::vector<std::uint32_t> index(capacity, 0);
    index_.swap(index);
    const std::size_t mask = capacity - 1;
    for (std::size_t n = 0; n < records_.size(); ++n) {
      std::size_t i = records_[n].hash & mask;
      while (index_[i] != 0) i = (i + 1) & mask;
      index_[i] = static_cast<std::uint32_t>(n + 1);
    }
  }

  // Backward-shift deletion: empties slot and moves each later entry of the run that may live
  // there into the gap, so no lookup needs a tombstone.
  void unlink_slot(std::size_t slot) {
    const std::size_t mask = index_.size() - 1;
    std::size_t gap = slot;
    for (std::size_t j = (slot + 1) & mask; index_[j] != 0; j = (j + 1) & mask) {
      const std::size_t k = records_[index_[j] - 1].hash & mask;
      // The entry at j may move to gap unless its home lies cyclically in (gap, j].
      const bool stays = gap <= j ? (gap < k && k <= j) : (gap < k || k <= j);
      if (stays) continue;
      index_[gap] = index_[j];
      gap = j;
    }
    index_[gap] = 0;
  }

  std::string arena_;
  std::vector<Record> records_;
  std::vector<std::uint32_t> index_;  // record number + 1; 0 = empty; size is a power of two
};

}  // namespace mailconfd
