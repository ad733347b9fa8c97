#include <map>
#include <string>

#include <doctest/doctest.h>

#include "source/database.h"
#include "source/providers_fixture.h"
#include "source/rows.h"
#include "source/status.h"
#include "support.h"

using namespace mailconfd;
using source::Rows;

namespace {

Config config() { return testing::two_providers(); }

const auto kReadAt = std::chrono::system_clock::time_point(std::chrono::seconds(1'796'000'000));

// Every domain with its provider and host set spelled out, and every login: what a request
// can see of a part (host set indices may differ between two parts that answer the same).
std::map<std::string, std::string> answers(const HostedDomains& d) {
  std::map<std::string, std::string> out;
  d.table->for_each([&](std::string_view name, DomainEntry e) {
    const HostOverride& h = d.host_set(e);
    out[std::string(name)] = std::to_string(e.provider) + " " + h.imap_host + " " + h.pop3_host +
                             " " + h.smtp_host + " " + std::string(to_string(h.incoming)) +
                             (h.login ? (*h.login == LoginForm::Address ? " a" : " l") : " -");
  });
  d.logins.for_each([&](std::string_view key, std::string_view login) {
    out["login " + std::string(key)] = std::string(login);
  });
  return out;
}

std::vector<std::string> skipped(const source::Built& built) {
  std::vector<std::string> got;
  for (const auto& r : built.skipped) got.push_back(r.table + " " + r.key + ": " + r.reason);
  return got;
}

}  // namespace

TEST_CASE("DomainTable and LoginTable erase keeps every other entry findable") {
  DomainTable table;
  LoginTable logins;
  std::map<std::string, std::uint32_t> want;
  // A small index (many collisions and wrapped runs): insert 600, erase every third, insert
  // 200 more, erase some of those.
  for (std::uint32_t i = 0; i < 600; ++i) {
    const std::string name = "d" + std::to_string(i) + ".example";
    REQUIRE(table.insert(name, {i, 0}));
    REQUIRE(logins.insert("u@" + name, "l" + std::to_string(i)));
    want[name] = i;
  }
  for (std::uint32_t i = 0; i < 600; i += 3) {
    const std::string name = "d" + std::to_string(i) + ".example";
    CHECK(table.erase(name));
    CHECK(logins.erase("u@" + name));
    CHECK_FALSE(table.erase(name));
    CHECK_FALSE(logins.erase("u@" + name));
    want.erase(name);
  }
  for (std::uint32_t i = 600; i < 800; ++i) {
    const std::string name = "d" + std::to_string(i) + ".example";
    REQUIRE(table.insert(name, {i, 0}));
    REQUIRE(logins.insert("u@" + name, "l" + std::to_string(i)));
    want[name] = i;
  }
  for (std::uint32_t i = 601; i < 800; i += 7) {
    const std::string name = "d" + std::to_string(i) + ".example";
    CHECK(table.erase(name));
    CHECK(logins.erase("u@" + name));
    want.erase(name);
  }
  CHECK(table.size() == want.size());
  CHECK(logins.size() == want.size());
  for (std::uint32_t i = 0; i < 800; ++i) {
    const std::string name = "d" + std::to_string(i) + ".example";
    const DomainEntry* e = table.find(name);
    const auto login = logins.find("u@" + name);
    if (want.contains(name)) {
      REQUIRE(e != nullptr);
      CHECK(e->provider == i);
      CHECK(login == std::optional<std::string_view>("l" + std::to_string(i)));
    } else {
      CHECK(e == nullptr);
      CHECK_FALSE(login);
    }
  }
  std::map<std::string, std::uint32_t> seen;
  table.for_each(
      [&](std::string_view name, DomainEntry e) { seen[std::string(name)] = e.provider; });
  CHECK(seen == want);
  CHECK(table.max_probe() >= 1);
  // Re-inserting an erased name works; erasing everything leaves an empty table.
  CHECK(table.insert("d0.example", {7, 0}));
  CHECK(table.find("d0.example")->provider == 7);
  for (const auto& [name, provider] : want) CHECK(table.erase(name));
  CHECK(table.erase("d0.example"));
  CHECK(table.size() == 0);
  CHECK(table.find("d1.example") == nullptr);
}

TEST_CASE("apply_changes answers exactly as a full load of the changed rows would") {
  const Config c = config();
  Rows before;
  before.domains = {{"a.example", "", "", "", "imap.a.example", "", ""},
                    {"b.example", "", "", "", "", "", ""},
                    {"d.example", "two.example", "local-part", "", "", "", ""},
                    {"e.example", "", "", "", "", "", ""},
                    {"keep.example", "", "", "pop3-only", "", "", ""}};
  before.logins = {{"alice@d.example", "web12p3"},
                   {"bob@d.example", "web7"},
                   {"carol@keep.example", "p1"},
                   {"eve@e.example", "e1"}};
  before.change_serial = 5;
  const source::Built one = source::build_domains(c, before, "postgresql", kReadAt, nullptr);
  REQUIRE(one.skipped.empty());
  CHECK(one.domains->change_serial == std::optional<std::uint64_t>(5));

  // a changed host, b deleted, c added, d's alice renamed and bob gone, e now hostile (port
  // 25), file.example named by a row (refused, and the file's entry stays), keep untouched.
  const std::vector<std::string> changed = {"a.example", "b.example", "c.example",
                                            "d.example", "e.example", "file.example"};
  Rows rows;
  rows.domains = {{"A.example", "", "", "", "imap.new.example", "", ""},
                  {"c.example", "two.example", "", "", "", "", ""},
                  {"d.example", "two.example", "local-part", "", "", "", ""},
                  {"e.example", "", "", "", "", "", "smtp.evil.example:25"},
                  {"file.example", "", "", "", "", "", ""}};
  rows.logins = {{"alice@d.example", "web12p4"},
                 {"mallory@e.example", "m1"},
                 {"carol@keep.example", "changed-elsewhere"},  // not in changed: ignored
                 {"x@c.example", "<b>x</b>"}};
  rows.change_serial = 9;
  const source::Built two = source::apply_changes(c, *one.domains, changed, rows, kReadAt);
  CHECK(skipped(two) == std::vector<std::string>{
                            "domain e.example: smtp_host 'smtp.evil.example:25' is not a host name "
                            "(ports and security come from the configuration file)",
                            "domain file.example: already listed in the configuration file",
                            "mailbox x@c.example: login name must be 1 to 255 letters, digits and "
                            ". - _ + @ ="});
  CHECK(two.domains->change_serial == std::optional<std::uint64_t>(9));
  CHECK(two.domains->origin == "postgresql");

  // The same as a full load of the rows as they are now (the host set indices kept).
  Rows after;
  after.domains = {{"A.example", "", "", "", "imap.new.example", "", ""},
                   {"c.example", "two.example", "", "", "", "", ""},
                   {"d.example", "two.example", "local-part", "", "", "", ""},
                   {"e.example", "", "", "", "", "", "smtp.evil.example:25"},
                   {"keep.example", "", "", "pop3-only", "", "", ""}};
  after.logins = {
      {"alice@d.example", "web12p4"}, {"carol@keep.example", "p1"}, {"mallory@e.example", "m1"}};
  const source::Built full = source::build_domains(c, after, "postgresql", kReadAt, nullptr);
  CHECK(answers(*two.domains) == answers(*full.domains));
  CHECK(two.domains->find("b.example") == nullptr);
  CHECK(two.domains->find("e.example") == nullptr);
  CHECK(two.domains->logins.find("eve@e.example") == std::nullopt);
  CHECK(two.domains->logins.find("bob@d.example") == std::nullopt);
  CHECK(two.domains->host_set(*two.domains->find("file.example")).imap_host == "imap.file.example");
  // Host sets of the part it came from keep their indices; the new one is appended.
  CHECK(two.domains->find("keep.example")->hosts == one.domains->find("keep.example")->hosts);
  CHECK(two.domains->host_sets[0].size() == one.domains->host_sets[0].size() + 1);
  // The part it came from is not touched (requests may still be reading it).
  CHECK(one.domains->size() == 6);
  CHECK(one.domains->logins.find("bob@d.example") == std::optional<std::string_view>("web7"));
  CHECK(one.domains->host_set(*one.domains->find("a.example")).imap_host == "imap.a.example");
}

TEST_CASE("record_update replaces the skipped rows of the changed domains only") {
  const Config c = config();
  Rows rows;
  rows.domains = {{"port25.example", "", "", "", "", "", "smtp.x.example:25"},
                  {"Plain.Example", "", "", "plaintext", "", "", ""},
                  {"m.example", "", "", "", "", "", ""}};
  rows.logins = {{"eve@m.example", "<b>"}};
  const source::Built one = source::build_domains(c, rows, "postgresql", kReadAt, nullptr);
  source::record_load(one, false);
  std::string first;
  source::append_metrics(first, *one.domains);
  CHECK(first.find("mailconfd_source_rows_skipped 3\n") != std::string::npos);
  CHECK(first.find("key=\"eve@m.example\"} 1\n") != std::string::npos);
  Rows changed_rows;  // port25 fixed, m.example's eve fixed, a new hostile one at plain
  changed_rows.domains = {{"port25.example", "", "", "", "", "", "smtp.x.example"},
                          {"plain.example", "", "", "", "", "", "<b>"},
                          {"m.example", "", "", "", "", "", ""}};
  changed_rows.logins = {{"eve@m.example", "eve1"}};
  const source::Built two = source::apply_changes(
      c, *one.domains, {"port25.example", "plain.example", "m.example"}, changed_rows, kReadAt);
  source::record_update(two, {"port25.example", "Plain.Example", "plain.example", "m.example"},
                        false);
  std::string out;
  source::append_metrics(out, *two.domains);
  CHECK(out.find("mailconfd_source_rows_skipped 1\n") != std::string::npos);
  CHECK(out.find("mailconfd_source_row_skipped{table=\"domain\",key=\"plain.example\"} 1\n") !=
        std::string::npos);
  CHECK(out.find("key=\"port25.example\"") == std::string::npos);
  CHECK(out.find("key=\"eve@m.example\"") == std::string::npos);
  CHECK(out.find("key=\"Plain.Example\"") == std::string::npos);
}

TEST_CASE("a snapshot of a merged part reads back as the same answers") {
  const Config c = config();
  Rows rows;
  rows.domains = {{"a.example", "two.example", "local-part", "imap-only", "imap.a.example", "", ""},
                  {"p.example", "", "address", "pop3-first", "", "pop.p.example", "smtp.p.example"},
                  {"file.example", "", "", "", "", "", ""}};
  rows.logins = {{"Alice@a.example", "web12p3"}};
  const source::Built built = source::build_domains(c, rows, "postgresql", kReadAt, nullptr);
  const std::string path = testing::temp_dir() + "/snapshot";
  std::string error;
  REQUIRE_MESSAGE(source::write_snapshot(path, c, *built.domains, error), error);
  std::chrono::system_clock::time_point read_at;
  auto back = source::read_snapshot(path, read_at, error);
  REQUIRE_MESSAGE(back, error);
  CHECK(read_at == kReadAt);
  CHECK(back->domains.size() == 2);  // the file's own domain is not written
  const source::Built again = source::build_domains(c, *back, "snapshot", read_at, nullptr);
  CHECK(again.skipped.empty());
  CHECK(answers(*again.domains) == answers(*built.domains));
  // An older part does not replace a newer snapshot.
  Rows older;
  older.domains = {{"old.example", "", "", "", "", "", ""}};
  const source::Built old =
      source::build_domains(c, older, "postgresql", kReadAt - std::chrono::seconds(5), nullptr);
  REQUIRE(source::write_snapshot(path, c, *old.domains, error));
  back = source::read_snapshot(path, read_at, error);
  REQUIRE(back);
  CHECK(back->domains.size() == 2);
}
