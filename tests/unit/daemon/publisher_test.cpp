#include "daemon/publisher.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <doctest/doctest.h>

#include "support.h"

using namespace mailconfd;
using namespace std::chrono_literals;
using daemon::Build;
using daemon::Publisher;
using daemon::PublisherOptions;

namespace {

std::shared_ptr<const App> make_app() { return std::make_shared<const App>(); }

// A builder the test drives: records every call's reasons and, while closed, holds each
// build until open() (ignoring its stop_token, like a slow database would).
struct Gate {
  std::mutex mutex;
  std::condition_variable changed;
  bool closed = false;
  int entered = 0;  // builds started
  int left = 0;     // builds returned
  std::vector<std::vector<std::string>> calls;
  std::vector<Build> results;  // returned in order; past the end: a new App

  Build build(const std::vector<std::string>& reasons) {
    std::unique_lock lock(mutex);
    calls.push_back(reasons);
    const std::size_t n = calls.size() - 1;
    ++entered;
    changed.notify_all();
    changed.wait(lock, [this] { return !closed; });
    ++left;
    changed.notify_all();
    return n < results.size() ? results[n] : Build{make_app(), {}};
  }
  bool wait_entered(int n) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, 10s, [&] { return entered >= n; });
  }
  void open() {
    std::lock_guard lock(mutex);
    closed = false;
    changed.notify_all();
  }
  daemon::Builder builder() {
    return [this](const std::shared_ptr<const App>&, const std::vector<std::string>& reasons,
                  std::stop_token) { return build(reasons); };
  }
};

PublisherOptions debounce(std::chrono::milliseconds ms) {
  PublisherOptions options;
  options.debounce = ms;
  return options;
}

// The datagrams a NOTIFY_SOCKET receives.
struct NotifySocket {
  std::string path = testing::temp_dir() + "/notify";
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  NotifySocket() {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  }
  ~NotifySocket() {
    ::unsetenv("NOTIFY_SOCKET");
    ::close(fd);
  }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;
  // Every datagram received so far, first line of each.
  std::vector<std::string> received() const {
    std::vector<std::string> out;
    char buffer[512];
    while (true) {
      const ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
      if (n <= 0) break;
      const std::string text(buffer, static_cast<std::size_t>(n));
      out.push_back(text.substr(0, text.find('\n')));
    }
    return out;
  }
};

}  // namespace

TEST_CASE("the publisher serves its first App until a trigger's build is published") {
  const auto first = make_app();
  Gate gate;
  std::vector<std::shared_ptr<const App>> published;
  PublisherOptions options = debounce(0ms);
  options.published = [&](const std::shared_ptr<const App>& app, const std::vector<std::string>&) {
    published.push_back(app);
  };
  Publisher publisher(first, gate.builder(), std::move(options));
  CHECK(publisher.current() == first);
  CHECK(publisher.slot()->load() == first);
  publisher.trigger("SIGHUP");
  REQUIRE(publisher.wait_idle(10s));
  REQUIRE(published.size() == 1);
  CHECK(publisher.current() == published[0]);
  CHECK(publisher.slot()->load() == published[0]);
  CHECK(publisher.current() != first);
  CHECK(publisher.builds_published() == 1);
  CHECK(publisher.builds_failed() == 0);
  CHECK(gate.calls == std::vector<std::vector<std::string>>{{"SIGHUP"}});
}

TEST_CASE("triggers within the debounce, and during a build, are coalesced into one build each") {
  Gate gate;
  gate.closed = true;
  Publisher publisher(make_app(), gate.builder(), debounce(300ms));
  publisher.trigger("SIGHUP");
  publisher.trigger("database");
  publisher.trigger("SIGHUP");
  REQUIRE(gate.wait_entered(1));
  // While the first build runs: three more triggers, one build after it.
  publisher.trigger("certificate");
  publisher.trigger("SIGHUP");
  publisher.trigger("certificate");
  gate.open();
  REQUIRE(publisher.wait_idle(10s));
  CHECK(gate.calls ==
        std::vector<std::vector<std::string>>{{"SIGHUP", "database"}, {"certificate", "SIGHUP"}});
  CHECK(publisher.builds_published() == 2);
}

TEST_CASE("a failed build keeps the current App, and the next good one replaces it") {
  const auto first = make_app();
  Gate gate;
  gate.results.push_back(Build{nullptr, {"a.xml:3:5: port 25 is for relay"}});
  bool called = false;
  PublisherOptions options = debounce(0ms);
  options.published = [&](const std::shared_ptr<const App>&, const std::vector<std::string>&) {
    called = true;
  };
  Publisher publisher(first, gate.builder(), std::move(options));
  publisher.trigger("SIGHUP");
  REQUIRE(publisher.wait_idle(10s));
  CHECK(publisher.current() == first);
  CHECK(publisher.builds_failed() == 1);
  CHECK(publisher.builds_published() == 0);
  CHECK_FALSE(called);

  publisher.trigger("SIGHUP");
  REQUIRE(publisher.wait_idle(10s));
  CHECK(publisher.current() != first);
  CHECK(publisher.builds_published() == 1);
  CHECK(called);
}

TEST_CASE("a builder that throws is a failed build, and the builder thread goes on") {
  const auto first = make_app();
  int calls = 0;
  Publisher publisher(
      first,
      [&](const std::shared_ptr<const App>&, const std::vector<std::string>&,
          std::stop_token) -> Build {
        if (++calls == 1) throw std::runtime_error("cannot read the key");
        return {make_app(), {}};
      },
      debounce(0ms));
  publisher.trigger("SIGHUP");
  REQUIRE(publisher.wait_idle(10s));
  CHECK(publisher.current() == first);
  CHECK(publisher.builds_failed() == 1);
  publisher.trigger("SIGHUP");
  REQUIRE(publisher.wait_idle(10s));
  CHECK(publisher.current() != first);
}

TEST_CASE("systemd hears RELOADING=1 before each build and READY=1 after it is published") {
  NotifySocket notify;
  Gate gate;
  Publisher publisher(make_app(), gate.builder(), debounce(0ms));
  publisher.trigger("SIGHUP");
  REQUIRE(publisher.wait_idle(10s));
  CHECK(notify.received() == std::vector<std::string>{"RELOADING=1", "READY=1"});
}

TEST_CASE("stop() returns while a build is blocked, and that build is never published") {
  NotifySocket notify;
  const auto first = make_app();
  Gate gate;
  gate.closed = true;
  bool called = false;
  PublisherOptions options = debounce(0ms);
  options.published = [&](const std::shared_ptr<const App>&, const std::vector<std::string>&) {
    called = true;
  };
  {
    Publisher publisher(first, gate.builder(), std::move(options));
    publisher.trigger("SIGHUP");
    REQUIRE(gate.wait_entered(1));
    publisher.stop();  // returns although the build has not
    {
      std::lock_guard lock(gate.mutex);
      CHECK(gate.left == 0);
    }
    publisher.trigger("SIGHUP");  // ignored after stop
    gate.open();
    // ~Publisher waits for the build to return and discards its App.
  }
  CHECK(gate.left == 1);
  CHECK(gate.calls.size() == 1);
  CHECK_FALSE(called);
  // RELOADING=1 went out before the build; nothing after stop (no READY=1 after STOPPING=1).
  CHECK(notify.received() == std::vector<std::string>{"RELOADING=1"});
}

TEST_CASE("a slow builder sees its stop_token requested when the publisher stops") {
  std::mutex mutex;
  std::condition_variable_any changed;
  bool entered = false, saw_stop = false;
  {
    Publisher publisher(
        make_app(),
        [&](const std::shared_ptr<const App>&, const std::vector<std::string>&,
            std::stop_token stop) -> Build {
          std::unique_lock lock(mutex);
          entered = true;
          changed.notify_all();
          saw_stop =
              changed.wait(lock, stop, [] { return false; }) == false && stop.stop_requested();
          return {make_app(), {}};
        },
        debounce(0ms));
    publisher.trigger("database");
    std::unique_lock lock(mutex);
    REQUIRE(changed.wait_for(lock, 10s, [&] { return entered; }));
    lock.unlock();
    publisher.stop();
  }
  CHECK(saw_stop);
}
