// Signals: SIGHUP reloads (and never kills), with a config file that changes between reloads.
#include <signal.h>

#include <fstream>
#include <thread>

#include <doctest/doctest.h>

#include "service.h"

namespace {

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

bool wait_for_log(e2e::Service& s, const std::string& needle, std::size_t times) {
  for (int i = 0; i < 250; ++i) {
    if (count(s.log(), needle) >= times) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace

TEST_CASE("SIGHUP reloads the file and never ends the process") {
  const std::string dir = e2e::temp_dir();
  const std::string path = dir + "/mailconfd.xml";
  const std::string example =
      e2e::read_file(std::string(MAILCONFD_SOURCE_DIR) + "/deploy/example/mailconfd.xml");
  std::ofstream(path) << example;
  e2e::Service s({"--config", path});
  REQUIRE(s.ready());
  for (int i = 1; i <= 3; ++i) {
    s.signal(SIGHUP);
    REQUIRE(wait_for_log(s, "reloaded ", static_cast<std::size_t>(i)));
  }
  CHECK(s.get("/mail/config-v1.1.xml?emailaddress=alice%40example.com").status == 200);
  CHECK(s.get("/mail/config-v1.1.xml?emailaddress=alice%40added.example").status == 404);

  std::string changed = example;
  changed.replace(changed.find("<domain>example.org</domain>"), 28,
                  "<domain>example.org</domain><domain>added.example</domain>");
  std::ofstream(path) << changed;
  s.signal(SIGHUP);
  REQUIRE(wait_for_log(s, "reloaded ", 4));
  CHECK(s.get("/mail/config-v1.1.xml?emailaddress=alice%40added.example").status == 200);
  s.signal(SIGTERM);
  CHECK(s.wait_exit(std::chrono::seconds(10)) == 0);
}
