// <journal> and <cockpit> in the configuration file: every mistake named with FILE:LINE:COLUMN.
#include <crypt.h>

#include <fstream>
#include <memory>

#include <doctest/doctest.h>

#include "config/config_file.h"
#include "journal/store.h"
#include "support.h"

using namespace mailconfd;

namespace {

std::string all(const Loaded& loaded) {
  std::string out;
  for (const auto& p : loaded.problems) out += p + "\n";
  return out;
}

Loaded load_in(const std::string& dir, const std::string& head) {
  return load_config_text(testing::minimal_config("", head), dir + "/test.xml", dir);
}

constexpr const char* kAdmin =
    "<server><metrics listen=\"127.0.0.1:9187\"/></server>\n"
    "<journal file=\"journal.sqlite\"/>\n";

}  // namespace

TEST_CASE("journal: file is required, retention is whole days from 1d to 3650d") {
  const std::string dir = testing::temp_dir();
  Loaded ok = load_in(dir, "<journal file=\"j.sqlite\" retention=\"30d\"/>\n");
  REQUIRE_MESSAGE(ok.ok(), all(ok));
  REQUIRE(ok.config.journal);
  CHECK(ok.config.journal->file == dir + "/j.sqlite");
  CHECK(ok.config.journal->retention == std::chrono::hours(24 * 30));
  Loaded def = load_in(dir, "<journal file=\"/var/lib/mailconfd/j.sqlite\"/>\n");
  REQUIRE(def.ok());
  CHECK(def.config.journal->file == "/var/lib/mailconfd/j.sqlite");
  CHECK(def.config.journal->retention == std::chrono::hours(24 * 180));
  const std::string either =
      "<journal> needs either file (an SQLite database) or dsn-file (the <database>'s server, a "
      "role that may write the journal's tables)\n";
  CHECK(all(load_in(dir, "<journal/>\n")) == dir + "/test.xml:2:1: " + either);
  CHECK(all(load_in(dir, "<journal file=\"j\" dsn-file=\"d\"/>\n")) ==
        dir + "/test.xml:2:1: " + either);
  for (const char* bad : {"0d", "3651d", "180", "1w", "d"}) {
    CHECK(all(load_in(dir, std::string("<journal file=\"j\" retention=\"") + bad + "\"/>\n")) ==
          dir + "/test.xml:2:1: <journal> retention must be a number of days from 1d to 3650d\n");
  }
  CHECK(all(load_in(dir, "<journal file=\"j\" keep=\"1\"/>\n")) ==
        dir + "/test.xml:2:1: <journal>: unknown attribute 'keep'\n");
  CHECK(all(load_in(dir, "<journal file=\"a\"/>\n<journal file=\"b\"/>\n")) ==
        dir + "/test.xml:3:1: <journal> may appear only once in <mailconfd>\n");
}

TEST_CASE("journal: dsn-file puts it into the <database>'s server with its own DSN") {
  const std::string dir = testing::temp_dir();
  std::ofstream(dir + "/source.dsn") << "host=127.0.0.1 user=reader password=r dbname=mail\n";
  std::ofstream(dir + "/journal.dsn")
      << "  host=127.0.0.1 user=writer password=w dbname=mail \nx\n";
  for (const char* driver : {"postgresql", "mariadb"}) {
    Loaded ok = load_in(dir, std::string("<journal dsn-file=\"journal.dsn\" retention=\"7d\"/>\n"
                                         "<database driver=\"") +
                                 driver + "\" dsn-file=\"source.dsn\"/>\n");
    REQUIRE_MESSAGE(ok.ok(), all(ok));
    CHECK(ok.config.journal->file.empty());
    CHECK(ok.config.journal->dsn_file == dir + "/journal.dsn");
    CHECK(ok.config.journal->dsn == "host=127.0.0.1 user=writer password=w dbname=mail");
    const journal::Location location = journal::location_of(ok.config);
    CHECK(location.kind == (std::string_view(driver) == "mariadb"
                                ? journal::Location::Kind::Mariadb
                                : journal::Location::Kind::Postgresql));
    CHECK(location.dsn == "host=127.0.0.1 user=writer password=w dbname=mail");
    CHECK(location.shared());
    CHECK(location.name() == std::string("the ") + driver + " database");
  }
  Loaded file = load_in(dir, "<journal file=\"j.sqlite\"/>\n");
  REQUIRE(file.ok());
  CHECK(journal::location_of(file.config) ==
        journal::Location{journal::Location::Kind::Sqlite, dir + "/j.sqlite", ""});
  CHECK_FALSE(journal::location_of(file.config).shared());
  CHECK(all(load_in(dir, "<journal dsn-file=\"journal.dsn\"/>\n")) ==
        dir + "/test.xml:2:1: <journal> dsn-file needs <database> (its driver and server)\n");
  CHECK(all(load_in(dir,
                    "<journal dsn-file=\"missing.dsn\"/>\n"
                    "<database driver=\"postgresql\" dsn-file=\"source.dsn\"/>\n")) ==
        dir + "/test.xml:2:1: <journal>: cannot read dsn-file '" + dir +
            "/missing.dsn': No such file or directory\n");
  std::ofstream(dir + "/empty.dsn") << "\n";
  CHECK(all(load_in(dir,
                    "<journal dsn-file=\"empty.dsn\"/>\n"
                    "<database driver=\"postgresql\" dsn-file=\"source.dsn\"/>\n")) ==
        dir + "/test.xml:2:1: <journal>: dsn-file '" + dir + "/empty.dsn' is empty\n");
}

TEST_CASE("cockpit: only on a loopback admin listener, only with the journal") {
  const std::string dir = testing::temp_dir();
  Loaded ok = load_in(dir, std::string(kAdmin) + "<cockpit report=\"scan.json\"/>\n");
  REQUIRE_MESSAGE(ok.ok(), all(ok));
  CHECK(ok.config.cockpit->report == dir + "/scan.json");
  CHECK(ok.config.cockpit->users.empty());
  CHECK(load_in(dir,
                "<server><metrics listen=\"[::1]:9187\"/></server>\n"
                "<journal file=\"j\"/><cockpit/>\n")
            .ok());
  CHECK(all(load_in(dir, "<journal file=\"j\"/>\n<cockpit/>\n")) ==
        dir +
            "/test.xml:3:1: <cockpit> is served only on the admin listener: set <metrics listen> "
            "to a loopback address such as 127.0.0.1:9187\n");
  CHECK(all(load_in(dir,
                    "<server><metrics listen=\"0.0.0.0:9187\"/></server>\n"
                    "<journal file=\"j\"/>\n<cockpit/>\n")) ==
        dir +
            "/test.xml:4:1: <cockpit>: the admin listener 0.0.0.0:9187 is not a loopback "
            "address; it has no TLS, so the cockpit is refused there (use 127.0.0.1 or ::1 and an "
            "SSH tunnel or a TLS proxy)\n");
  CHECK(all(load_in(dir, "<server><metrics listen=\"127.0.0.1:9187\"/></server>\n<cockpit/>\n")) ==
        dir + "/test.xml:3:1: <cockpit> needs <journal> (it keeps the day-by-day history there)\n");
}

TEST_CASE("cockpit: the password file holds NAME:HASH lines with yescrypt or bcrypt hashes") {
  const std::string dir = testing::temp_dir();
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  REQUIRE(crypt_gensalt_rn("$y$", 0, nullptr, 0, salt, sizeof salt));
  auto data = std::make_unique<crypt_data>();
  const std::string yescrypt = crypt_r("pw", salt, data.get());
  REQUIRE(crypt_gensalt_rn("$2b$", 4, nullptr, 0, salt, sizeof salt));
  const std::string bcrypt = crypt_r("pw", salt, data.get());
  std::ofstream(dir + "/good") << "# staff\n\nadmin:" << yescrypt << "\nsupport:" << bcrypt << "\n";
  Loaded ok = load_in(dir, std::string(kAdmin) + "<cockpit password-file=\"good\"/>\n");
  REQUIRE_MESSAGE(ok.ok(), all(ok));
  REQUIRE(ok.config.cockpit->users.size() == 2);
  CHECK(ok.config.cockpit->users[0].name == "admin");
  CHECK(ok.config.cockpit->users[0].hash == yescrypt);
  CHECK(ok.config.cockpit->users[1].name == "support");

  const std::string message =
      ": expected NAME:HASH with a yescrypt ($y$) or bcrypt ($2b$) hash, as `mailconfd cockpit "
      "password NAME` writes it\n";
  std::ofstream(dir + "/bad") << "admin:" << yescrypt << "\nmd5:$1$abc$def\nplain:secret\n"
                              << ":" << bcrypt << "\nnocolon\n";
  CHECK(all(load_in(dir, std::string(kAdmin) + "<cockpit password-file=\"bad\"/>\n")) ==
        dir + "/bad:2:1" + message + dir + "/bad:3:1" + message + dir + "/bad:4:1" + message + dir +
            "/bad:5:1" + message);
  std::ofstream(dir + "/empty") << "# nobody\n";
  CHECK(all(load_in(dir, std::string(kAdmin) + "<cockpit password-file=\"empty\"/>\n")) ==
        dir + "/test.xml:4:1: <cockpit>: password-file " + dir + "/empty has no NAME:HASH line\n");
  CHECK(all(load_in(dir, std::string(kAdmin) + "<cockpit password-file=\"missing\"/>\n")) ==
        dir + "/test.xml:4:1: <cockpit>: cannot read password-file '" + dir +
            "/missing': No such file or directory\n");
}
