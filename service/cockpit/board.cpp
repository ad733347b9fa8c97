#include "cockpit/board.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "journal/journal.h"
#include "journal/store.h"

namespace mailconfd::cockpit {
namespace {

std::atomic<Board*> running{nullptr};

constexpr auto kPoll = std::chrono::seconds(1);
// A journal in the provider's database gets rows from other replicas too, which rows_written()
// does not see: the model is rebuilt at least this often then.
constexpr std::int64_t kShared = 10;
// A re-read after new journal rows waits at least this many times as long as the last re-read
// took (and at least kPoll).
constexpr int kPauseFactor = 10;

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::chrono::milliseconds journal_pause(std::chrono::milliseconds last_read) {
  return std::max<std::chrono::milliseconds>(kPoll, last_read * kPauseFactor);
}

struct Board::Seen {
  const App* app = nullptr;
  std::string report;  // path, mtime, size and inode of the report the model was built from
  std::uint64_t rows = 0;
  std::string day;
  std::unique_ptr<journal::Store> store;
  journal::Location location;
  std::int64_t built_at = 0;  // when the model was built (a shared journal: re-read every kShared)
  std::chrono::steady_clock::time_point read_end{};  // when the last rebuild ended
  std::chrono::milliseconds read_took{0};            // and how long it took
  std::string last_error;                            // logged once until it changes
};

Board::Board(std::shared_ptr<const App> app) : seen_(std::make_unique<Seen>()) {
  app_.store(std::move(app));
  running.store(this);
  thread_ = std::thread([this] { run(); });
}

Board::~Board() {
  running.store(nullptr);
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Board::swap(std::shared_ptr<const App> app) {
  app_.store(std::move(app));
  std::lock_guard lock(mutex_);
  ++requests_;
  wake_.notify_all();
}

void Board::refresh() {
  std::unique_lock lock(mutex_);
  const std::uint64_t mine = ++requests_;
  wake_.notify_all();
  wake_.wait(lock, [&] { return done_ >= mine || stopping_; });
}

void Board::run() {
  std::unique_lock lock(mutex_);
  bool forced = true;
  while (!stopping_) {
    const std::uint64_t target = requests_;
    lock.unlock();
    Seen& s = *seen_;
    const auto app = app_.load();
    std::string report_key;
    struct stat st {};
    const std::string& path = app->config->cockpit->report;
    if (!path.empty() && ::stat(path.c_str(), &st) == 0) {
      report_key = fmt::format("{}:{}.{}:{}:{}", path, st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                               st.st_size, st.st_ino);
    }
    const std::int64_t now = now_seconds();
    const std::string day = utc_day(now);
    // New journal rows (or a shared journal's age) wait for journal_pause; a forced rebuild,
    // a reload, a new report or a new day never do.
    const bool journal_due =
        std::chrono::steady_clock::now() - s.read_end >= journal_pause(s.read_took);
    const bool shared = s.location.shared() && now - s.built_at >= kShared && journal_due;
    const bool rows = journal::rows_written() != s.rows && journal_due;
    if (forced || shared || app.get() != s.app || report_key != s.report || rows || day != s.day) {
      s.built_at = now;
      s.app = app.get();
      s.report = report_key;
      s.rows = journal::rows_written();
      s.day = day;
      const auto start = std::chrono::steady_clock::now();
      rebuild();
      s.read_end = std::chrono::steady_clock::now();
      s.read_took = std::chrono::duration_cast<std::chrono::milliseconds>(s.read_end - start);
    }
    lock.lock();
    done_ = target;
    wake_.notify_all();
    forced = false;
    wake_.wait_for(lock, kPoll, [&] { return stopping_ || requests_ != done_; });
    if (requests_ != done_) forced = true;
  }
}

void Board::rebuild() {
  Seen& s = *seen_;
  const auto app = app_.load();
  const CockpitOptions& options = *app->config->cockpit;
  auto problem = [&](const std::string& text) {
    if (text != s.last_error) spdlog::error("cockpit: {}", text);
    s.last_error = text;
  };
  std::string error;
  Report report;
  bool found = false;
  std::string report_error;
  if (!options.report.empty()) {
    std::ifstream in(options.report, std::ios::binary);
    if (in) {
      std::ostringstream text;
      text << in.rdbuf();
      if (parse_report(text.str(), report, error)) {
        found = true;
      } else {
        report_error = fmt::format("scan report {}: {}", options.report, error);
      }
    }
  }
  const journal::Location location = journal::location_of(*app->config);
  const std::string file = location.name();
  if (!s.store || s.location != location) {
    s.store = journal::open_store(location, 2000, error);
    s.location = location;
  }
  std::vector<journal::Fetch> fetches;
  std::vector<journal::DayCounts> days;
  std::string journal_error;
  if (!s.store) {
    journal_error = fmt::format("journal {}: {}", file, error);
  } else if (!s.store->fetches(fetches, error) || !s.store->days(days, error)) {
    // A database connection may have broken since the last read (the server restarted): one
    // more try on a new one.
    fetches.clear();
    days.clear();
    s.store = location.shared() ? journal::open_store(location, 2000, error) : nullptr;
    if (!s.store || !s.store->fetches(fetches, error) || !s.store->days(days, error)) {
      journal_error = fmt::format("journal {}: {}", file, error);
      s.store.reset();
    }
  }
  auto model =
      std::make_shared<Model>(build_model(*app->config, found ? &report : nullptr, fetches,
                                          std::move(days), now_seconds(), app->domains.get()));
  model->report_path = options.report;
  model->report_found = found;
  model->report_error = report_error;
  if (found && s.store && !s.store->put_day(day_counts(*model, model->today), error)) {
    journal_error = fmt::format("journal {}: {}", file, error);
  }
  const std::string text = !report_error.empty() ? report_error : journal_error;
  if (!text.empty()) {
    problem(text);
  } else {
    s.last_error.clear();
  }
  model_.store(std::move(model));
}

std::shared_ptr<const Model> current() {
  Board* board = running.load();
  return board ? board->model() : nullptr;
}

void append_metrics(std::string& out) {
  const auto model = current();
  if (!model) return;
  out +=
      "# HELP mailconfd_cutover_mailboxes Mailboxes per state in the cockpit (newest scan "
      "joined with the settings journal).\n"
      "# TYPE mailconfd_cutover_mailboxes gauge\n";
  for (Status s : kStatuses) {
    fmt::format_to(std::back_inserter(out), "mailconfd_cutover_mailboxes{{state=\"{}\"}} {}\n",
                   to_string(s), model->counts[static_cast<std::size_t>(s)]);
  }
  out +=
      "# HELP mailconfd_cutover_provider_mailboxes Mailboxes per provider and state "
      "(provider \"none\": domains that are not hosted).\n"
      "# TYPE mailconfd_cutover_provider_mailboxes gauge\n";
  for (const Row& row : model->providers) {
    for (Status s : kStatuses) {
      fmt::format_to(std::back_inserter(out),
                     "mailconfd_cutover_provider_mailboxes{{provider=\"{}\",state=\"{}\"}} {}\n",
                     row.name.empty() ? "none" : row.name, to_string(s),
                     row.counts[static_cast<std::size_t>(s)]);
    }
  }
}

}  // namespace mailconfd::cockpit
