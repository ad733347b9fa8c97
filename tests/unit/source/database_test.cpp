#include "source/database.h"

#include <fstream>

#include <doctest/doctest.h>

#include "support.h"

using namespace mailconfd;

TEST_CASE("a snapshot gives back exactly the rows and the time it was written with") {
  const std::string path = testing::temp_dir() + "/snapshot";
  source::Rows rows;
  rows.domains = {{"customer.example", "one.example", "local-part", "pop3-only", "imap.x", "", ""},
                  {"tab\there.example", "back\\slash", "new\nline", "", "", "", "s"}};
  rows.logins = {{"alice@customer.example", "web12p3"}};
  const auto at = std::chrono::system_clock::time_point(std::chrono::seconds(1'790'000'000));
  std::string error;
  REQUIRE(source::write_snapshot(path, rows, at, error));
  std::chrono::system_clock::time_point read_at;
  auto back = source::read_snapshot(path, read_at, error);
  REQUIRE_MESSAGE(back, error);
  CHECK(read_at == at);
  REQUIRE(back->domains.size() == 2);
  CHECK(back->domains[1].domain == "tab\there.example");
  CHECK(back->domains[1].provider == "back\\slash");
  CHECK(back->domains[1].login == "new\nline");
  CHECK(back->domains[1].smtp_host == "s");
  CHECK(back->domains[0].incoming == "pop3-only");
  REQUIRE(back->logins.size() == 1);
  CHECK(back->logins[0].login == "web12p3");
}

TEST_CASE("read_snapshot refuses what is not a snapshot, naming the line") {
  const std::string dir = testing::temp_dir();
  std::chrono::system_clock::time_point read_at;
  std::string error;
  CHECK_FALSE(source::read_snapshot(dir + "/missing", read_at, error));
  CHECK(error == "cannot read " + dir + "/missing: No such file or directory");
  std::ofstream(dir + "/other") << "domain\n";
  CHECK_FALSE(source::read_snapshot(dir + "/other", read_at, error));
  CHECK(error == dir + "/other is not a mailconfd snapshot");
  std::ofstream(dir + "/broken") << "mailconfd-snapshot 1\t5\nD\ta.example\nX\n";
  CHECK_FALSE(source::read_snapshot(dir + "/broken", read_at, error));
  CHECK(error == dir + "/broken:2: not a snapshot row");
}
