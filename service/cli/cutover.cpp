#include "cli/cutover.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <new>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "cli/hosted.h"
#include "config/config_file.h"
#include "core/ascii.h"
#include "cutover/event.h"
#include "cutover/huge_pages.h"
#include "cutover/input.h"
#include "cutover/report.h"
#include "cutover/scan.h"
#include "example_config.h"
#include "log.h"

extern char** environ;

namespace mailconfd::cli {
namespace {

using namespace cutover;

constexpr const char* kCutoverHelp =
    "usage: mailconfd cutover scan [--config FILE] [--json | --csv] [--grace DURATION]\n"
    "                              [--mynetworks CIDR,...] [--postfix-config DIR]\n"
    "                              [--state FILE] [--journal] [--setup-url URL] [LOG...]\n"
    "\n"
    "Reads Postfix and Dovecot logs (files, plain or gzip, in any order; '-' for standard\n"
    "input; --journal for journalctl -o json) and joins POP3/IMAP logins with unauthenticated\n"
    "relaying by client IP within the grace period of the POP-before-SMTP map. Per hosted\n"
    "mailbox: at-risk (relays via the map, no authenticated submission since), switched\n"
    "(SMTP AUTH seen and no relay via the map after it), ambiguous (several mailboxes logged\n"
    "in from the relaying IP; all named), broke (Relay access denied after its login: after\n"
    "the cut-off), login-failing (SASL authentication failures). Mailboxes of domains this\n"
    "configuration does not host are listed apart. A table by default. With <database>,\n"
    "its domains, login forms and per-mailbox login names (web12p3 → its mailbox) count\n"
    "too, read as serve reads them (the snapshot, with a warning, when the database is down).\n"
    "\n"
    "  --config FILE        hosted domains and login scheme (default: the built-in example)\n"
    "  --json               one JSON object: generated, summary, domains, mailboxes, ...\n"
    "  --csv                contact list: mailbox,domain,state,evidence,last_seen,setup_link\n"
    "                       (every hosted mailbox except those that switched)\n"
    "  --grace DURATION     how long the map lets an IP relay after a login (default 30m;\n"
    "                       e.g. 1800, 90s, 30m, 1h)\n"
    "  --mynetworks LIST    Postfix's mynetworks (relays from there are not the map's);\n"
    "                       default: `postconf -h mynetworks` when postconf is installed\n"
    "  --postfix-config DIR ask `postconf -c DIR` for mynetworks\n"
    "  --state FILE         incremental: read only what is new since the run that wrote\n"
    "                       FILE (files are recognised by their first bytes, so rotated and\n"
    "                       compressed copies are not read twice), and keep the results\n"
    "  --journal            also read the systemd journal (journalctl -o json)\n"
    "  --setup-url URL      the setup page for the CSV/JSON links (default\n"
    "                       https://<provider's autodiscover host>/setup)\n"
    "\n"
    "Year-less timestamps (RFC 3164, Postfix maillog_file, Dovecot log_path) are read in the\n"
    "local time zone (TZ) and dated by the file's modification time.\n"
    "\n"
    "Exit status: 0 nobody at risk; 1 a hosted mailbox is at-risk, ambiguous or broke;\n"
    "2 usage or configuration error (a <database> that cannot be read and no snapshot\n"
    "included); 3 a log or the state file could not be read or written.\n";

constexpr const char* kStateHeader = "mailconfd-cutover-state\t1";

int usage_error(const std::string& message) {
  std::cerr << "mailconfd: " << message << "\n\n" << kCutoverHelp;
  return 2;
}

// "1800", "90s", "30m", "1h" → microseconds; between 1 s and 7 days.
std::optional<Micros> parse_duration(std::string_view text) {
  if (text.empty() || text.size() > 8) return std::nullopt;
  Micros unit = kSecondMicros;
  switch (text.back()) {
    case 's':
      text.remove_suffix(1);
      break;
    case 'm':
      unit *= 60;
      text.remove_suffix(1);
      break;
    case 'h':
      unit *= 3600;
      text.remove_suffix(1);
      break;
    default:
      break;
  }
  if (text.empty()) return std::nullopt;
  Micros value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  const Micros total = value * unit;
  if (total < kSecondMicros || total > 7 * 86400 * kSecondMicros) return std::nullopt;
  return total;
}

// Runs a program (found on PATH) and returns its standard output; nullopt when it cannot
// run or exits non-zero. Its standard error is discarded.
std::optional<std::string> capture(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return std::nullopt;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  std::string out;
  if (rc == 0) {
    char buffer[4096];
    ssize_t got = 0;
    while ((got = read(fds[0], buffer, sizeof buffer)) != 0) {
      if (got < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (out.size() < (1 << 20)) out.append(buffer, static_cast<std::size_t>(got));
    }
  }
  close(fds[0]);
  if (rc != 0) return std::nullopt;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  return out;
}

struct Options {
  std::string config;
  bool json = false;
  bool csv = false;
  bool journal = false;
  std::optional<std::string> grace, mynetworks, postfix_config, state, setup_url;
  std::vector<std::string> logs;
};

std::optional<Options> parse_options(int argc, char** argv, std::string& error) {
  Options o;
  const std::map<std::string, std::optional<std::string>*> valued = {
      {"grace", &o.grace},
      {"mynetworks", &o.mynetworks},
      {"postfix-config", &o.postfix_config},
      {"state", &o.state},
      {"setup-url", &o.setup_url}};
  std::optional<std::string> config;
  for (int i = 3; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-" || !arg.starts_with("-")) {
      o.logs.push_back(arg);
      continue;
    }
    if (arg == "--") {
      for (++i; i < argc; ++i) o.logs.emplace_back(argv[i]);
      break;
    }
    if (arg == "--json" || arg == "--csv" || arg == "--journal") {
      (arg == "--json" ? o.json : arg == "--csv" ? o.csv : o.journal) = true;
      continue;
    }
    if (!arg.starts_with("--")) {
      error = "unknown option " + arg;
      return std::nullopt;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (const auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    std::optional<std::string>* slot = nullptr;
    if (name == "config") {
      slot = &config;
    } else if (auto it = valued.find(name); it != valued.end()) {
      slot = it->second;
    } else {
      error = "unknown option --" + name.substr(0, 64);
      return std::nullopt;
    }
    if (!value) {
      if (i + 1 >= argc) {
        error = "option --" + name + " needs a value";
        return std::nullopt;
      }
      value = argv[++i];
    }
    *slot = *value;
  }
  if (config) o.config = *config;
  if (o.json && o.csv) {
    error = "--json and --csv exclude each other";
    return std::nullopt;
  }
  if (o.logs.empty() && !o.journal) {
    error = "name at least one LOG ('-' for standard input) or --journal";
    return std::nullopt;
  }
  return o;
}

struct FileMark {
  Fingerprint fingerprint;
  std::uint64_t offset = 0;
  std::string name;
};

struct SavedState {
  std::vector<FileMark> files;
  std::string journal_cursor;
};

std::string hex(std::uint64_t value) {
  char buffer[20];
  std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(value));
  return buffer;
}

// Reads --state FILE into the scanner and the file marks. A missing file is a first run.
bool load_state(const std::string& path, Scanner& scanner, SavedState& saved, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return true;
    error = path + ": " + std::strerror(errno);
    return false;
  }
  std::string line;
  std::size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    auto fail = [&](const std::string& what) {
      error = path + ":" + std::to_string(number) + ": " + what;
      return false;
    };
    if (number == 1) {
      if (line != kStateHeader) return fail("not a mailconfd cutover state file");
      continue;
    }
    if (line.starts_with("file\t")) {
      FileMark mark;
      std::istringstream fields(line.substr(5));
      std::string hash;
      if (!(fields >> hash >> mark.fingerprint.length >> mark.offset) || hash.size() != 16 ||
          mark.fingerprint.length == 0 || mark.fingerprint.length > kFingerprintBytes) {
        return fail("bad file record");
      }
      mark.fingerprint.hash = std::strtoull(hash.c_str(), nullptr, 16);
      std::getline(fields >> std::ws, mark.name);
      saved.files.push_back(std::move(mark));
      continue;
    }
    if (line.starts_with("journal\t")) {
      saved.journal_cursor = line.substr(8);
      if (saved.journal_cursor.find_first_of("\r\n") != std::string::npos) {
        return fail("bad journal record");
      }
      continue;
    }
    std::string what;
    if (!scanner.load_line(line, what)) return fail(what);
  }
  if (number == 0) {
    error = path + ": empty state file";
    return false;
  }
  return true;
}

bool save_state(const std::string& path, const Scanner& scanner, const SavedState& saved,
                std::string& error) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << kStateHeader << '\n';
    for (const FileMark& mark : saved.files) {
      out << "file\t" << hex(mark.fingerprint.hash) << '\t' << mark.fingerprint.length << '\t'
          << mark.offset << '\t' << mark.name << '\n';
    }
    if (!saved.journal_cursor.empty()) out << "journal\t" << saved.journal_cursor << '\n';
    scanner.save(out);
    out.close();
    if (!out) {
      error = temp + ": cannot write";
      std::remove(temp.c_str());
      return false;
    }
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    error = path + ": " + std::strerror(errno);
    std::remove(temp.c_str());
    return false;
  }
  return true;
}

int scan(const Options& o) {
  Loaded loaded = o.config.empty() ? load_config_text(example_config(), kExampleConfigName, ".")
                                   : load_config_file(o.config);
  if (!loaded.ok()) {
    for (const std::string& problem : loaded.problems) std::cerr << problem << '\n';
    return 2;
  }
  ScanOptions options;
  {
    std::string error;
    auto hosted = load_hosted(loaded.config, error);
    if (!hosted) {
      std::cerr << "mailconfd: " << error << '\n';
      return 2;
    }
    // A login name shared by several addresses (with the default logins query: a mailbox
    // and its addresses at alias domains) maps to the first the query gave, the mailbox's.
    if (hosted->domains) {
      hosted->domains->logins.for_each([&](std::string_view address, std::string_view login) {
        options.login_names.try_emplace(ascii_lower(login), address);
      });
    }
  }
  if (o.grace) {
    const auto grace = parse_duration(*o.grace);
    if (!grace) return usage_error("--grace '" + *o.grace + "' is not a duration from 1s to 7d");
    options.grace = *grace;
  }
  std::vector<std::string> bad_networks;
  if (o.mynetworks) {
    options.mynetworks = parse_networks(*o.mynetworks, bad_networks);
    if (!bad_networks.empty()) {
      return usage_error("--mynetworks: '" + bad_networks.front().substr(0, 64) +
                         "' is not an address or CIDR network");
    }
  } else {
    std::vector<std::string> args{"postconf"};
    if (o.postfix_config) args.insert(args.end(), {"-c", *o.postfix_config});
    args.insert(args.end(), {"-h", "mynetworks"});
    if (const auto text = capture(args)) {
      options.mynetworks = parse_networks(*text, bad_networks);
      for (const std::string& item : bad_networks) {
        std::cerr << "mailconfd: mynetworks entry '" << item.substr(0, 80)
                  << "' is not read (only addresses and networks are); use --mynetworks\n";
      }
    } else if (o.postfix_config) {
      std::cerr << "mailconfd: postconf -c " << *o.postfix_config << " failed\n";
      return 2;
    }
  }

  // The scanner lives until the process exits, which it does right after the report: freeing
  // tens of thousands of mailbox records one by one would only cost time. The pointer in
  // static storage keeps it reachable (not a leak to LeakSanitizer).
  static Scanner* kept = nullptr;
  prefer_huge_heap();  // the mailbox records' strings and IP lists: this process exits soon
  kept = new Scanner(loaded.config, options);
  Scanner& scanner = *kept;
  SavedState saved;
  std::string error;
  if (o.state && !load_state(*o.state, scanner, saved, error)) {
    std::cerr << "mailconfd: " << error << '\n';
    return 3;
  }

  std::vector<std::unique_ptr<Source>> sources;
  std::vector<std::optional<Fingerprint>> fingerprints;
  std::vector<std::string> seen;
  std::vector<bool> resumed(saved.files.size(), false);  // marks superseded by this run
  for (const std::string& path : o.logs) {
    if (path != "-" && std::find(seen.begin(), seen.end(), path) != seen.end()) continue;
    seen.push_back(path);
    auto source = Source::open_file(path, error);
    if (!source) {
      std::cerr << "mailconfd: " << error << '\n';
      return 3;
    }
    std::optional<Fingerprint> fingerprint;
    if (o.state && source->seekable()) {
      source->set_take_partial(false);      // a line still being written is read next time
      fingerprint = source->fingerprint();  // reads ahead; consumes nothing
      for (std::size_t m = 0; m < saved.files.size(); ++m) {
        const FileMark& mark = saved.files[m];
        if (!source->matches(mark.fingerprint)) continue;
        resumed[m] = true;
        if (!source->skip(mark.offset)) {  // shorter than before: replaced; read it all
          source = Source::open_file(path, error);
          if (!source) {
            std::cerr << "mailconfd: " << error << '\n';
            return 3;
          }
          source->set_take_partial(false);
          fingerprint = source->fingerprint();
        }
        break;
      }
    }
    fingerprints.push_back(fingerprint);
    sources.push_back(std::move(source));
  }
  if (o.journal) {
    auto source = Source::open_journal(saved.journal_cursor, error);
    if (!source) {
      std::cerr << "mailconfd: " << error << '\n';
      return 3;
    }
    fingerprints.emplace_back();
    sources.push_back(std::move(source));
  }

  const Micros now = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  Merge merge(std::move(sources), now, false);
  std::uint64_t lines = 0, skipped = 0, bytes = 0;
  Merged merged;
  // The events go to the scanner in batches (its cache misses overlap); the reader keeps the
  // lines of a batch in place until the batch is joined.
  // Each event is parsed straight into its place in the batch (a copy of the parser's
  // result would load it back right after the parser stored it: a stall on every line).
  std::vector<TimedEvent> batch(Scanner::kBatch);
  std::size_t held = 0;
  while (true) {
    const Merge::Step step = merge.next(merged, lines, skipped, bytes, held == 0);
    if (step == Merge::Step::Line) {
      TimedEvent* next = ::new (&batch[held])
          TimedEvent{merged.line.time, parse_event(merged.line.program, merged.line.message)};
      if (next->event.kind == EventKind::None) continue;  // add() would ignore it
      if (++held < Scanner::kBatch) continue;
    }
    scanner.add(std::span<const TimedEvent>(batch.data(), held));
    held = 0;
    if (step == Merge::Step::End) break;
  }
  scanner.count(lines, skipped, bytes);
  if (const std::string read_error = merge.error(); !read_error.empty()) {
    std::cerr << "mailconfd: " << read_error << '\n';
    return 3;
  }

  if (o.state) {
    SavedState next;
    for (std::size_t i = 0; i < merge.sources().size(); ++i) {
      const Source& source = *merge.sources()[i];
      if (!fingerprints[i] || !source.seekable()) continue;
      std::string name = source.name();
      for (char& c : name) {
        if (static_cast<unsigned char>(c) < 0x20) c = '?';
      }
      next.files.push_back({*fingerprints[i], source.offset(), name});
    }
    // Files not named this time stay known (a rotated copy named again later is skipped),
    // the most recent 64 of them.
    for (std::size_t m = 0; m < saved.files.size() && next.files.size() < 64; ++m) {
      if (!resumed[m]) next.files.push_back(saved.files[m]);
    }
    next.journal_cursor =
        merge.journal_cursor().empty() ? saved.journal_cursor : merge.journal_cursor();
    if (!save_state(*o.state, scanner, next, error)) {
      std::cerr << "mailconfd: " << error << '\n';
      return 3;
    }
  }

  const Report report = build_report(loaded.config, scanner, now);
  const std::string setup_url = o.setup_url.value_or("");
  if (o.json) {
    render_json(loaded.config, report, setup_url, [](std::string_view chunk) {
      std::cout.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    });
  } else if (o.csv) {
    std::cout << render_csv(loaded.config, report, setup_url);
  } else {
    std::cout << render_table(loaded.config, report);
  }
  std::cout.flush();
  if (!std::cout) return 3;
  return anyone_at_risk(report) ? 1 : 0;
}

}  // namespace

int cutover(int argc, char** argv) {
  if (argc < 3) return usage_error("cutover needs a subcommand: scan");
  const std::string sub = argv[2];
  if (sub == "--help" || sub == "-h" || sub == "help") return std::cout << kCutoverHelp, 0;
  if (sub != "scan") return usage_error("unknown cutover subcommand '" + sub.substr(0, 64) + "'");
  for (int i = 3; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") return std::cout << kCutoverHelp, 0;
    if (arg == "--") break;
  }
  std::string error;
  const auto options = parse_options(argc, argv, error);
  if (!options) return usage_error(error);
  init_logging(false);  // warnings (a database read from its snapshot) on stderr, never stdout
  return scan(*options);
}

}  // namespace mailconfd::cli
