// Memory for the scan's large, randomly accessed tables (the name table, the IP and queue-ID
// tables, the login pool, the mailbox records) in 2 MiB transparent huge pages where the
// kernel offers them (Debian 12's default is `madvise`: only regions that ask get them).
// Every event of the join touches a few records picked at random among tens of megabytes;
// with 4 KiB pages each of those is also a TLB miss and a page walk, and every fresh page
// costs a page fault. Small requests go to the ordinary allocator.
#pragma once

#include <cstddef>
#include <memory_resource>
#include <new>

namespace mailconfd::cutover {

inline constexpr std::size_t kHugePage = std::size_t{2} << 20;

// At least `bytes` (rounded up to whole huge pages) of zeroed memory aligned to a huge page,
// marked MADV_HUGEPAGE; throws std::bad_alloc when the kernel refuses.
void* allocate_huge(std::size_t bytes);
// Releases what allocate_huge(bytes) returned.
void free_huge(void* memory, std::size_t bytes) noexcept;

// For a process that is about to build tens of megabytes of small records with malloc (the
// scan's mailbox strings and IP lists): the heap grows in large steps and keeps what is
// freed (no mmap per mid-sized block, no memory returned and faulted in again), and the
// step it grows by now is marked MADV_HUGEPAGE, as glibc's glibc.malloc.hugetlb=1 tunable
// would: fewer page faults, and no TLB miss per record. Process-wide, so only for a command
// that runs once and exits (`cutover scan`); does nothing without glibc or under
// AddressSanitizer.
void prefer_huge_heap();

// A std::allocator stand-in for vectors that grow large: blocks of at least one huge page come
// from allocate_huge, smaller ones from operator new.
template <typename T>
struct HugePageAllocator {
  static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
  using value_type = T;
  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {}  // NOLINT: rebinding, as std::allocator

  T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
    const std::size_t bytes = n * sizeof(T);
    if (bytes >= kHugePage) return static_cast<T*>(allocate_huge(bytes));
    return static_cast<T*>(::operator new(bytes));
  }
  void deallocate(T* memory, std::size_t n) noexcept {
    const std::size_t bytes = n * sizeof(T);
    if (bytes >= kHugePage) {
      free_huge(memory, bytes);
    } else {
      ::operator delete(memory);
    }
  }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const {
    return true;
  }
};

// A memory_resource over allocate_huge for std::pmr::monotonic_buffer_resource: with an
// initial buffer of kHugePage, every buffer the monotonic resource asks for is huge-page
// backed, and destroying it releases them in a few munmap calls.
class HugePageResource : public std::pmr::memory_resource {
 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* memory, std::size_t bytes, std::size_t alignment) override;
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }
};

}  // namespace mailconfd::cutover
