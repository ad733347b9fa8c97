// Fuzzes the cut-off scan's line parser: every syslog format and the journal's JSON, then
// the anchored message parser, then the join (one scanner across all inputs of a run, so the
// grace-window state is exercised too). Views must stay inside the input; nothing may crash.
#include <sstream>
#include <string>
#include <string_view>

#include "config/config.h"
#include "cutover/event.h"
#include "cutover/log_line.h"
#include "cutover/report.h"
#include "cutover/scan.h"
#include "fuzz.h"

using namespace mailconfd;
using namespace mailconfd::cutover;

namespace {

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void check_event(const Event& e, std::string_view message) {
  for (std::string_view field : {e.queue_id, e.ip, e.user, e.sender, e.recipient, e.agent}) {
    FUZZ_CHECK(inside(field, message) || field == "smtp" || field == "lmtp" || field == "virtual" ||
               field == "local" || field == "pipe" || field == "discard" || field == "error" ||
               field == "relay");
  }
  if (e.kind == EventKind::Login || e.kind == EventKind::MapAdd) FUZZ_CHECK(!e.user.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Config config;
  static Scanner scanner(config, ScanOptions{});
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  YearlessClock clock(1'800'000'000'000'000, true);
  std::string storage;
  std::size_t pos = 0;
  while (pos <= input.size()) {
    const std::size_t end = std::min(input.find('\n', pos), input.size());
    const std::string_view line = input.substr(pos, end - pos);
    if (auto parsed = parse_syslog_line(line, clock)) {
      FUZZ_CHECK(inside(parsed->program, line) && inside(parsed->message, line));
      const Event event = parse_event(parsed->program, parsed->message);
      check_event(event, parsed->message);
      scanner.add(parsed->time, event);
    }
    if (auto parsed = parse_journal_line(line, storage)) {
      const Event event = parse_event(parsed->program, parsed->message);
      check_event(event, parsed->message);
      scanner.add(parsed->time, event);
    }
    pos = end + 1;
  }
  // Within years 1..9999 a time survives being written and read back (to the second).
  if (const auto time = parse_rfc3339(input)) {
    if (*time >= -62135596800LL * 1'000'000 && *time < 253402300800LL * 1'000'000) {
      const auto again = parse_rfc3339(rfc3339(*time));
      FUZZ_CHECK(again &&
                 *again / 1'000'000 ==
                     (*time - (((*time % 1'000'000) + 1'000'000) % 1'000'000)) / 1'000'000);
    }
  }
  // The state round-trips through its text form.
  std::ostringstream saved;
  scanner.save(saved);
  Scanner copy(config, ScanOptions{});
  std::istringstream lines(saved.str());
  std::string text, error;
  while (std::getline(lines, text)) FUZZ_CHECK(copy.load_line(text, error));
  FUZZ_CHECK(copy.mailboxes().size() == scanner.mailboxes().size());
  const Report report = build_report(config, scanner, 0);
  (void)render_json(config, report, "");
  (void)render_csv(config, report, "");
  return 0;
}
