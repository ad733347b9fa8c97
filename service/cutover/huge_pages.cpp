#include "cutover/huge_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#if defined(__SANITIZE_ADDRESS__)  // GCC
#define MAILCONFD_ASAN 1
#elif defined(__has_feature)  // clang
#if __has_feature(address_sanitizer)
#define MAILCONFD_ASAN 1
#endif
#endif

namespace mailconfd::cutover {

// Under AddressSanitizer the memory comes from operator new, so that its checks and its leak
// scan (which follows pointers only through the heap it knows) see what lives there.
#if defined(MAILCONFD_ASAN)
void* allocate_huge(std::size_t bytes) { return std::memset(::operator new(bytes), 0, bytes); }
void free_huge(void* memory, std::size_t) noexcept { ::operator delete(memory); }
void prefer_huge_heap() {}
#else
namespace {

std::size_t round_up(std::size_t bytes) { return (bytes + kHugePage - 1) & ~(kHugePage - 1); }

}  // namespace

void* allocate_huge(std::size_t bytes) {
  const std::size_t size = round_up(bytes);
  if (size < bytes) throw std::bad_alloc();
  // Map one huge page more than needed and unmap what lies before the first aligned address
  // and after the end: mmap alone only aligns to 4 KiB.
  const std::size_t span = size + kHugePage;
  void* mapped = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<std::uintptr_t>(mapped);
  const std::uintptr_t aligned = (start + kHugePage - 1) & ~(std::uintptr_t{kHugePage} - 1);
  if (aligned > start) munmap(mapped, aligned - start);
  const std::uintptr_t tail = start + span - (aligned + size);
  if (tail > 0) munmap(reinterpret_cast<void*>(aligned + size), tail);
  void* memory = reinterpret_cast<void*>(aligned);
  // Advice only: without transparent huge pages (or with them off) it fails or does nothing,
  // and the memory works as ordinary pages.
  madvise(memory, size, MADV_HUGEPAGE);
  return memory;
}

void free_huge(void* memory, std::size_t bytes) noexcept {
  if (memory != nullptr) munmap(memory, round_up(bytes));
}

void prefer_huge_heap() {
#if defined(__GLIBC__)
  constexpr std::size_t kStep = std::size_t{64} << 20;
  // Blocks below 32 MiB from the heap, freed memory kept, and the heap grown 64 MiB at a time.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  mallopt(M_TOP_PAD, static_cast<int>(kStep));
  // A block larger than what the heap has free makes it grow now, by the block and the step;
  // freed, it leaves all of that free at the top. That range is then marked for huge pages
  // before anything touches it (the kernel only maps a huge page where a whole aligned 2 MiB
  // lies inside a marked range). Later growth, if any, gets ordinary pages.
  auto* before = static_cast<char*>(sbrk(0));
  void* probe = std::malloc(std::size_t{8} << 20);
  asm volatile("" : : "r"(probe) : "memory");  // a block nobody uses is not optimized away
  auto* after = static_cast<char*>(sbrk(0));
  std::free(probe);
  if (before == reinterpret_cast<char*>(-1) || after == reinterpret_cast<char*>(-1) ||
      after <= before) {
    return;  // the heap did not grow with brk (it may be mapped elsewhere): leave it so
  }
  const auto start =
      (reinterpret_cast<std::uintptr_t>(before) + kHugePage - 1) & ~(std::uintptr_t{kHugePage} - 1);
  const auto end = reinterpret_cast<std::uintptr_t>(after) & ~(std::uintptr_t{kHugePage} - 1);
  if (end > start) madvise(reinterpret_cast<void*>(start), end - start, MADV_HUGEPAGE);
#endif
}
#endif

void* HugePageResource::do_allocate(std::size_t bytes, std::size_t alignment) {
  if (bytes >= kHugePage && alignment <= kHugePage) return allocate_huge(bytes);
  return ::operator new (bytes, std::align_val_t{alignment});
}

void HugePageResource::do_deallocate(void* memory, std::size_t bytes, std::size_t alignment) {
  if (bytes >= kHugePage && alignment <= kHugePage) {
    free_huge(memory, bytes);
  } else {
    ::operator delete (memory, std::align_val_t{alignment});
  }
}

}  // namespace mailconfd::cutover
