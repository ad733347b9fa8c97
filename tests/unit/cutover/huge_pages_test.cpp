#include "cutover/huge_pages.h"

#include <cstdint>
#include <cstring>
#include <memory_resource>
#include <string>
#include <unordered_map>
#include <vector>

#include <doctest/doctest.h>

using namespace mailconfd::cutover;

TEST_CASE("huge-page memory is zeroed, writable and released") {
  const std::size_t bytes = kHugePage + 12345;
  auto* memory = static_cast<unsigned char*>(allocate_huge(bytes));
  REQUIRE(memory != nullptr);
  std::size_t nonzero = 0;
  for (std::size_t i = 0; i < bytes; ++i) nonzero += memory[i] != 0;
  CHECK(nonzero == 0);
  std::memset(memory, 0xA5, bytes);
  CHECK(memory[bytes - 1] == 0xA5);
  free_huge(memory, bytes);
}

TEST_CASE("a vector with the huge-page allocator keeps its contents as it grows past a huge page") {
  std::vector<std::uint64_t, HugePageAllocator<std::uint64_t>> values;
  const std::size_t count = 3 * kHugePage / sizeof(std::uint64_t);  // small blocks, then huge
  for (std::size_t i = 0; i < count; ++i) values.push_back(i * 7);
  REQUIRE(values.size() == count);
  std::uint64_t wrong = 0;
  for (std::size_t i = 0; i < count; ++i) wrong += values[i] != i * 7;
  CHECK(wrong == 0);
  values.assign(10, 3);  // and back below a huge page
  values.shrink_to_fit();
  CHECK(values == std::vector<std::uint64_t, HugePageAllocator<std::uint64_t>>(10, 3));
}

TEST_CASE("a map in a monotonic resource over huge pages holds every entry") {
  HugePageResource huge;
  std::pmr::monotonic_buffer_resource memory(kHugePage, &huge);
  std::pmr::unordered_map<std::string, std::uint64_t> map(&memory);
  for (std::uint64_t i = 0; i < 100000; ++i) {
    map.emplace("mailbox-number-" + std::to_string(i) + "@customer.test", i);
  }
  REQUIRE(map.size() == 100000);
  CHECK(map.at("mailbox-number-0@customer.test") == 0);
  CHECK(map.at("mailbox-number-99999@customer.test") == 99999);
  CHECK(map.count("mailbox-number-100000@customer.test") == 0);
}
