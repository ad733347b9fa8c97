// A main() for the fuzz targets in builds without libFuzzer (gcc, the ci preset): runs every
// file of the given corpus directories through LLVMFuzzerTestOneInput, then random byte-level
// mutations of them for the given number of seconds (deterministic seed). Under ASan+UBSan
// this is the regression run of the corpus; real fuzzing is `make fuzz` (preset fuzz).
//   usage: TARGET_replay SECONDS DIR...
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "fuzz.h"

namespace {

const std::string* current = nullptr;

// On a failed invariant or a sanitizer abort, leaves the input in ./replay-crash.
void save_input(int) {
  if (current != nullptr) {
    const int fd = ::open("replay-crash", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      (void)!::write(fd, current->data(), current->size());
      ::close(fd);
    }
  }
  std::signal(SIGABRT, SIG_DFL);
  std::raise(SIGABRT);
}

void run(const std::string& input) {
  current = &input;
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s SECONDS DIR...\n", argv[0]);
    return 2;
  }
  const auto seconds = std::chrono::seconds(std::atoi(argv[1]));
  std::vector<std::string> inputs;
  for (int i = 2; i < argc; ++i) {
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(argv[i])) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      std::ifstream in(file, std::ios::binary);
      inputs.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  if (inputs.empty()) {
    std::fprintf(stderr, "no corpus files\n");
    return 2;
  }
  std::signal(SIGABRT, save_input);
  for (const std::string& input : inputs) run(input);
  std::mt19937 random(20261128);
  const auto until = std::chrono::steady_clock::now() + seconds;
  std::size_t runs = inputs.size();
  std::string input;
  while (std::chrono::steady_clock::now() < until) {
    input = inputs[random() % inputs.size()];
    const int edits = 1 + static_cast<int>(random() % 8);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = input.empty() ? 0 : random() % input.size();
      switch (random() % 4) {
        case 0:  // replace a byte
          if (!input.empty()) input[at] = static_cast<char>(random());
          break;
        case 1:  // insert a byte
          input.insert(input.begin() + static_cast<std::ptrdiff_t>(at),
                       static_cast<char>(random()));
          break;
        case 2:  // erase a range
          if (!input.empty()) input.erase(at, 1 + random() % 16);
          break;
        default:  // splice in part of another input
          const std::string& other = inputs[random() % inputs.size()];
          if (!other.empty()) {
            const std::size_t from = random() % other.size();
            input.insert(at, other, from, 1 + random() % 32);
          }
      }
    }
    run(input);
    ++runs;
  }
  std::printf("%zu inputs, %zu runs, no failure\n", inputs.size(), runs);
  return 0;
}
