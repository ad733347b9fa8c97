#include "cutover/input.h"

#include <zlib.h>

#include <fstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "support.h"

using namespace mailconfd::cutover;

namespace {

std::string write(const std::string& name, const std::string& bytes) {
  const std::string path = testing::temp_dir() + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::string write_gzip(const std::string& name, const std::vector<std::string>& members) {
  const std::string path = testing::temp_dir() + "/" + name;
  for (std::size_t i = 0; i < members.size(); ++i) {
    gzFile out = gzopen(path.c_str(), i == 0 ? "wb" : "ab");
    REQUIRE(out != nullptr);
    gzwrite(out, members[i].data(), static_cast<unsigned>(members[i].size()));
    gzclose(out);
  }
  return path;
}

std::vector<std::string> read_all(Source& source) {
  std::vector<std::string> lines;
  std::string_view line;
  Source::Read read;
  while ((read = source.next(line)) != Source::Read::End) {
    REQUIRE(read != Source::Read::Error);
    lines.push_back(read == Source::Read::Overlong ? "<overlong>" : std::string(line));
  }
  return lines;
}

std::unique_ptr<Source> open(const std::string& path) {
  std::string error;
  auto source = Source::open_file(path, error);
  REQUIRE_MESSAGE(source, error);
  return source;
}

const std::string kA = "2026-12-02T10:00:00Z h postfix/qmgr[1]: A: removed\n";
const std::string kB = "2026-12-02T10:00:01Z h dovecot: pop3-login: Login: user=<b>\n";
const std::string kC = "2026-12-02T10:00:02Z h postfix/qmgr[1]: C: removed\n";

}  // namespace

TEST_CASE("Source reads plain and gzip files (several members) by their bytes, not names") {
  const std::string text = kA + kB + kC;
  CHECK(read_all(*open(write("plain.log.gz", text))) ==
        std::vector<std::string>{kA.substr(0, kA.size() - 1), kB.substr(0, kB.size() - 1),
                                 kC.substr(0, kC.size() - 1)});
  auto gz = open(write_gzip("mail.log.2", {kA + kB.substr(0, 10), kB.substr(10) + kC}));
  CHECK(read_all(*gz).size() == 3);
  CHECK(gz->offset() == text.size());
  std::string error;
  auto truncated = Source::open_file(write("cut.gz", std::string("\x1f\x8b\x08\x00", 4)), error);
  REQUIRE(truncated);
  std::string_view line;
  CHECK(truncated->next(line) == Source::Read::Error);
  CHECK(truncated->error().find("cut.gz: ") != std::string::npos);
  CHECK_FALSE(Source::open_file(testing::temp_dir() + "/missing.log", error));
  CHECK(error.find("missing.log: No such file or directory") != std::string::npos);
}

TEST_CASE("an over-long line is skipped whole: its tail is never read as a line") {
  const std::string forged = std::string(kMaxLineBytes + 10, 'x') + " " + kB;
  auto source = open(write("long.log", kA + forged + kC));
  CHECK(read_all(*source) == std::vector<std::string>{kA.substr(0, kA.size() - 1), "<overlong>",
                                                      kC.substr(0, kC.size() - 1)});
}

TEST_CASE("with take_partial off, a line still being written is left for the next run") {
  const std::string path = write("live.log", kA + kB.substr(0, 20));
  auto source = open(path);
  source->set_take_partial(false);
  CHECK(read_all(*source).size() == 1);
  CHECK(source->offset() == kA.size());
  auto partial = open(path);
  CHECK(read_all(*partial).back() == kB.substr(0, 20));
}

TEST_CASE("a fingerprint finds a file again after rotation and compression") {
  const std::string path = write("mail.log", kA + kB);
  auto first = open(path);
  const auto fingerprint = first->fingerprint();
  REQUIRE(fingerprint);
  CHECK(fingerprint->length == kA.size() + kB.size());
  read_all(*first);
  const std::uint64_t offset = first->offset();
  // Rotated, grown, compressed: the first bytes still match; skipping resumes after them.
  auto rotated = open(write_gzip("mail.log.1.gz", {kA + kB + kC}));
  CHECK(rotated->matches(*fingerprint));
  REQUIRE(rotated->skip(offset));
  CHECK(read_all(*rotated) == std::vector<std::string>{kC.substr(0, kC.size() - 1)});
  auto other = open(write("new.log", kC));
  CHECK_FALSE(other->matches(*fingerprint));
  auto shorter = open(write("short.log", kA));
  CHECK_FALSE(shorter->skip(offset));
  CHECK_FALSE(open(write("empty.log", ""))->fingerprint());
}

TEST_CASE("Merge interleaves logs by time and counts what is not a log line") {
  std::vector<std::unique_ptr<Source>> sources;
  sources.push_back(open(write("postfix.log", kA + "binary\x01\xff garbage\n" + kC)));
  sources.push_back(open(write("dovecot.log", kB)));
  Merge merge(std::move(sources), 0, true);
  Merged merged;
  std::uint64_t lines = 0, skipped = 0, bytes = 0;
  std::vector<std::string> order;
  while (merge.next(merged, lines, skipped, bytes)) order.emplace_back(merged.line.message);
  CHECK(order ==
        std::vector<std::string>{"A: removed", "pop3-login: Login: user=<b>", "C: removed"});
  CHECK(lines == 4);
  CHECK(skipped == 1);
  CHECK(bytes == kA.size() + kB.size() + kC.size() + 17);
  CHECK(merge.error().empty());
}

TEST_CASE(
    "Merge without refilling keeps every line it returned valid, and says when it must read") {
  // More than the reader's buffer holds at once, so that lines straddle its refills.
  std::string text;
  std::vector<std::string> expected;
  for (int i = 0; i < 60'000; ++i) {
    const std::string message = "Q" + std::to_string(i) + ": removed" + std::string(i % 50, 'x');
    text += "2026-12-02T10:00:00Z h postfix/qmgr[1]: " + message + "\n";
    expected.push_back(message);
  }
  REQUIRE(text.size() > 4 * 1024 * 1024);
  std::vector<std::unique_ptr<Source>> sources;
  sources.push_back(open(write("batched.log", text)));
  Merge merge(std::move(sources), 0, true);
  Merged merged;
  std::uint64_t lines = 0, skipped = 0, bytes = 0;
  std::vector<std::string_view> held;
  std::size_t read = 0, laters = 0;
  auto check_held = [&] {
    for (std::size_t i = 0; i < held.size(); ++i) {
      REQUIRE(held[i] == expected[read - held.size() + i]);
    }
    held.clear();
  };
  while (true) {
    const Merge::Step step = merge.next(merged, lines, skipped, bytes, held.empty());
    if (step == Merge::Step::End) break;
    if (step == Merge::Step::Later) {
      REQUIRE_FALSE(held.empty());
      ++laters;
      check_held();
      continue;
    }
    held.push_back(merged.line.message);
    ++read;
    if (held.size() == 64) check_held();
  }
  check_held();
  CHECK(read == expected.size());
  CHECK(lines == expected.size());
  CHECK(laters >= 2);
  CHECK(bytes == text.size());
}
