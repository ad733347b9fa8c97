// The settings journal and the cockpit against the real binary: nothing without credentials,
// a wrong password refused, a brute force throttled, nothing on the public listener, the
// numbers of a seeded scan report joined with fetches made through the public listener, and
// the CSV's bytes.
#include <signal.h>

#include <regex>
#include <thread>

#include <doctest/doctest.h>
#include <openssl/evp.h>

#include "service.h"

using e2e::Connection;
using e2e::Response;
using e2e::Service;
using namespace std::chrono_literals;

namespace {

constexpr const char* kReport = R"({"generated": "2026-12-02T06:00:00Z", "mailboxes": [
  {"address": "alice@example.com", "domain": "example.com", "provider": "example.net",
   "state": "at-risk", "confidence": "high", "first_seen": "2026-11-20T08:00:00Z",
   "last_seen": "2026-12-02T05:00:00Z", "ips": ["127.0.0.21"]},
  {"address": "bob@example.com", "domain": "example.com", "provider": "example.net",
   "state": "switched", "confidence": "explicit", "first_seen": "2026-11-20T08:00:00Z",
   "last_seen": "2026-12-01T22:00:00Z", "ips": ["127.0.0.22"]},
  {"address": "carol@example.com", "domain": "example.com", "provider": "example.net",
   "state": "at-risk", "confidence": "medium", "first_seen": "2026-11-21T08:00:00Z",
   "last_seen": "2026-12-02T04:00:00Z", "ips": ["127.0.0.23"]}],
  "domains": [], "summary": {}})";

std::string basic(const std::string& credentials) {
  std::string out(4 * ((credentials.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(credentials.data()),
                                static_cast<int>(credentials.size()));
  out.resize(static_cast<std::size_t>(n));
  return "Authorization: Basic " + out;
}

Response admin_get(std::uint16_t port, const std::string& target,
                   const std::string& authorization = "", const char* source = nullptr) {
  Connection c(port, "127.0.0.1", source);
  std::string raw = "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n";
  if (!authorization.empty()) raw += authorization + "\r\n";
  c.send(raw + "\r\n");
  return c.read_response(10s);
}

struct Setup {
  std::string dir = e2e::temp_dir();
  std::string config = dir + "/mailconfd.xml";
  Setup() {
    const auto made = e2e::run_command({"sh", "-c",
                                        "printf 'correct horse\\n' | '" MAILCONFD_BINARY
                                        "' cockpit password admin > '" +
                                            dir + "/cockpit.passwd'"});
    REQUIRE(made.exit_code == 0);
    CHECK(e2e::read_file(dir + "/cockpit.passwd").rfind("admin:$y$", 0) == 0);
    e2e::run_command(
        {"sh", "-c", "cat > '" + dir + "/scan.json' <<'EOF'\n" + std::string(kReport) + "\nEOF"});
    e2e::run_command(
        {"sh", "-c",
         "cat > '" + config +
             "' <<'EOF'\n<mailconfd>\n"
             "<server><metrics listen=\"127.0.0.1:0\"/></server>\n"
             "<journal file=\"journal.sqlite\" retention=\"30d\"/>\n"
             "<cockpit report=\"scan.json\" password-file=\"cockpit.passwd\"/>\n"
             "<provider id=\"example.net\">\n"
             "<incoming protocol=\"imap\" host=\"imap.example.net\" port=\"993\" "
             "security=\"tls\"/>\n"
             "<outgoing host=\"smtp.example.net\" port=\"587\" security=\"starttls\"/>\n"
             "<notice smtp-after-pop-off=\"2099-01-01\"><text lang=\"en\">Bye</text></notice>\n"
             "<domain>example.com</domain>\n</provider>\n</mailconfd>\nEOF"});
  }
};

const std::string kRight = basic("admin:correct horse");

std::size_t occurrences(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// SIGHUP, then waits until the log says "reloaded " times times.
bool reload(Service& s, std::size_t times) {
  s.signal(SIGHUP);
  for (int i = 0; i < 500; ++i) {
    if (occurrences(s.log(), "reloaded ") >= times) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

void edit(const std::string& file, const std::string& sed_script) {
  REQUIRE(e2e::run_command({"sed", "-i", "-e", sed_script, file}).exit_code == 0);
}

// The addresses in the journal's file, sorted, one a line.
std::string journaled(const std::string& file) {
  return e2e::run_command({"python3", "-c",
                           "import sqlite3, sys\n"
                           "db = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n"
                           "for (a,) in db.execute('SELECT DISTINCT address FROM fetch ORDER BY "
                           "address'): print(a)",
                           file})
      .out;
}

}  // namespace

TEST_CASE("cockpit: nothing without the password, nothing on the public listener") {
  Setup setup;
  Service s({"--config", setup.config});
  REQUIRE(s.ready());
  REQUIRE(s.metrics_port() != 0);
  for (const char* target : {"/cockpit", "/cockpit/contacts.csv", "/cockpit?lang=de"}) {
    const Response none = admin_get(s.metrics_port(), target);
    CHECK(none.status == 401);
    CHECK(none.header("WWW-Authenticate") ==
          "Basic realm=\"mailconfd cockpit\", charset=\"UTF-8\"");
    CHECK(none.body == "401 Unauthorized\n");
    CHECK(admin_get(s.metrics_port(), target, basic("admin:wrong")).status == 401);
    // The public listener does not know the cockpit, with or without credentials.
    CHECK(s.get(target).status == 404);
    CHECK(s.get(target, {kRight}).status == 404);
    CHECK(s.get(target, {kRight}).body == "404 Not Found\n");
  }
  const Response ok = admin_get(s.metrics_port(), "/cockpit", kRight);
  CHECK(ok.status == 200);
  CHECK(ok.header("Content-Type") == "text/html; charset=utf-8");
  CHECK(ok.header("Content-Security-Policy").rfind("default-src 'none'; style-src 'sha256-", 0) ==
        0);
  CHECK(ok.header("Cache-Control") == "no-store");
  CHECK(ok.header("X-Frame-Options") == "DENY");
  CHECK(ok.body.find("<script") == std::string::npos);
}

TEST_CASE("cockpit: the seeded scan joined with fetches through the public listener, and the CSV") {
  Setup setup;
  Service s({"--config", setup.config});
  REQUIRE(s.ready());
  // alice fetches new settings with Thunderbird; a domain that is not hosted is not journaled.
  CHECK(s.get("/mail/config-v1.1.xml?emailaddress=alice%40example.com",
              {"User-Agent: Mozilla/5.0 Thunderbird/115.0"})
            .status == 200);
  CHECK(s.get("/autodiscover/autodiscover.json?Email=dora%40example.com&Protocol=AutodiscoverV1",
              {"User-Agent: Microsoft Office/16.0"})
            .status == 200);
  CHECK(s.get("/mail/config-v1.1.xml?emailaddress=eve%40not-hosted.example").status == 404);
  // The journal writes within a second, the cockpit picks it up within another.
  std::string page;
  const auto until = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < until) {
    page = admin_get(s.metrics_port(), "/cockpit?lang=en", kRight).body;
    if (page.find("<li id=\"count-fetched\"><a href=\"/cockpit?lang=en&amp;sort=domain&amp;"
                  "dir=asc&amp;state=fetched#list\"><span class=\"n\">1</span>") !=
        std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(200ms);
  }
  auto count = [&](const std::string& state) {
    const std::string key = "<li id=\"count-" + state + "\">";
    const auto at = page.find(key);
    REQUIRE(at != std::string::npos);
    const auto n = page.find("<span class=\"n\">", at);
    return std::stoi(page.substr(n + 16));
  };
  CHECK(count("at-risk") == 1);   // carol
  CHECK(count("fetched") == 1);   // alice
  CHECK(count("switched") == 1);  // bob
  CHECK(count("unknown") == 1);   // dora: fetched, no log evidence
  CHECK(count("broke") == 0);
  CHECK(page.find("thunderbird") != std::string::npos);

  const Response csv = admin_get(s.metrics_port(), "/cockpit/contacts.csv?state=switched", kRight);
  CHECK(csv.status == 200);
  CHECK(csv.header("Content-Type") == "text/csv; charset=utf-8; header=present");
  CHECK(csv.header("Content-Disposition") == "attachment; filename=\"mailconfd-contacts.csv\"");
  CHECK(csv.body ==
        "address,domain,provider,state,confidence,ips,first_seen,last_seen,fetched_settings,"
        "setup_link\r\n"
        "\"bob@example.com\",\"example.com\",\"example.net\",\"switched\",\"explicit\","
        "\"127.0.0.22\",\"2026-11-20T08:00:00Z\",\"2026-12-01T22:00:00Z\",\"\","
        "\"https://autodiscover.example.net/setup?emailaddress=bob%40example.com\"\r\n");
  const std::string all = admin_get(s.metrics_port(), "/cockpit/contacts.csv", kRight).body;
  CHECK(std::regex_search(
      all, std::regex("\r\n\"alice@example.com\",\"example.com\",\"example.net\",\"fetched\","
                      "\"high\",\"127.0.0.21\",\"2026-11-20T08:00:00Z\",\"2026-12-02T05:00:00Z\","
                      "\"20[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2} UTC\",\"https://"
                      "autodiscover.example.net/setup\\?emailaddress=alice%40example.com\"\r\n")));
  CHECK(all.find("not-hosted") == std::string::npos);

  // /metrics on the admin listener: gauges per state and provider, fetches by door and kind.
  const std::string metrics = admin_get(s.metrics_port(), "/metrics").body;
  CHECK(metrics.find("\nmailconfd_cutover_mailboxes{state=\"fetched\"} 1\n") != std::string::npos);
  CHECK(metrics.find("\nmailconfd_cutover_provider_mailboxes{provider=\"example.net\",state="
                     "\"switched\"} 1\n") != std::string::npos);
  CHECK(metrics.find("\nmailconfd_settings_fetched_total{door=\"autoconfig\",client="
                     "\"thunderbird\"} 1\n") != std::string::npos);
  CHECK(metrics.find("\nmailconfd_settings_fetched_total{door=\"autodiscover-json\",client="
                     "\"outlook\"} 1\n") != std::string::npos);
  CHECK(metrics.find("alice") == std::string::npos);
  // The access log has paths only: no address, no Authorization.
  const std::string log = s.log();
  CHECK(log.find("GET /cockpit 200") != std::string::npos);
  CHECK(log.find("alice") == std::string::npos);
  CHECK(log.find("Basic") == std::string::npos);
}

TEST_CASE("cockpit: a brute force is answered 429 without checking, then the password works") {
  Setup setup;
  Service s({"--config", setup.config});
  REQUIRE(s.ready());
  for (int i = 0; i < 6; ++i) {
    CHECK(
        admin_get(s.metrics_port(), "/cockpit", basic("admin:guess" + std::to_string(i))).status ==
        401);
  }
  const Response locked = admin_get(s.metrics_port(), "/cockpit", kRight);
  CHECK(locked.status == 429);
  CHECK(locked.header("Retry-After") == "1");
  // Other admin URLs keep answering while the cockpit is locked.
  CHECK(admin_get(s.metrics_port(), "/healthz").status == 200);
  std::this_thread::sleep_for(1100ms);
  CHECK(admin_get(s.metrics_port(), "/cockpit", kRight).status == 200);
}

TEST_CASE("cockpit: the throttle is per client address, one attacker cannot lock staff out") {
  Setup setup;
  Service s({"--config", setup.config});
  REQUIRE(s.ready());
  // The attacker connects from 127.0.0.2; staff from 127.0.0.1 (the admin listener is on
  // 127.0.0.1, loopback answers any 127/8 source).
  for (int i = 0; i < 6; ++i) {
    CHECK(admin_get(s.metrics_port(), "/cockpit", basic("admin:guess" + std::to_string(i)),
                    "127.0.0.2")
              .status == 401);
  }
  const Response locked = admin_get(s.metrics_port(), "/cockpit", kRight, "127.0.0.2");
  CHECK(locked.status == 429);
  CHECK(locked.header("Retry-After") == "1");
  CHECK(admin_get(s.metrics_port(), "/cockpit", kRight, "127.0.0.1").status == 200);
  CHECK(admin_get(s.metrics_port(), "/cockpit/contacts.csv", kRight, "127.0.0.3").status == 200);
  // A wrong password from staff is a plain 401, its own count.
  const Response typo = admin_get(s.metrics_port(), "/cockpit", basic("admin:typo"), "127.0.0.1");
  CHECK(typo.status == 401);
  CHECK(typo.header("WWW-Authenticate") == "Basic realm=\"mailconfd cockpit\", charset=\"UTF-8\"");
  // The attacker's next failure after its second (2 s) lock.
  std::this_thread::sleep_for(1100ms);
  CHECK(admin_get(s.metrics_port(), "/cockpit", basic("admin:guess"), "127.0.0.2").status == 401);
  const Response longer = admin_get(s.metrics_port(), "/cockpit", kRight, "127.0.0.2");
  CHECK(longer.status == 429);
  CHECK(longer.header("Retry-After") == "2");
  CHECK(admin_get(s.metrics_port(), "/cockpit", kRight, "127.0.0.1").status == 200);
  // No client address in the log.
  const std::string log = s.log();
  CHECK(log.find("127.0.0.2") == std::string::npos);
  CHECK(log.find("GET /cockpit 429") != std::string::npos);
}

TEST_CASE("journal: a file that cannot be written never fails a request") {
  Setup setup;
  e2e::run_command(
      {"sh", "-c", "sed -i 's#journal.sqlite#no-such-dir/journal.sqlite#' '" + setup.config + "'"});
  Service s({"--config", setup.config});
  REQUIRE(s.ready());
  for (int i = 0; i < 20; ++i) {
    CHECK(s.get("/mail/config-v1.1.xml?emailaddress=alice%40example.com").status == 200);
  }
  std::string metrics;
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < until) {
    metrics = admin_get(s.metrics_port(), "/metrics").body;
    if (metrics.find("\nmailconfd_journal_write_failures_total 0\n") == std::string::npos) break;
    std::this_thread::sleep_for(200ms);
  }
  CHECK(metrics.find("\nmailconfd_journal_write_failures_total 0\n") == std::string::npos);
  CHECK(s.get("/mail/config-v1.1.xml?emailaddress=alice%40example.com").status == 200);
  std::this_thread::sleep_for(1500ms);  // more failed attempts, still one log line
  const std::string log = s.log();
  const auto first = log.find("journal: cannot write");
  CHECK(first != std::string::npos);
  CHECK(log.find("journal: cannot write", first + 1) == std::string::npos);
}

TEST_CASE(
    "reload: password file and report live, removing journal or cockpit at once, adding at "
    "restart") {
  Setup setup;
  const std::string journal_file = setup.dir + "/journal.sqlite";
  Service s({"--config", setup.config});
  REQUIRE(s.ready());
  // Another password file and another retention.
  REQUIRE(e2e::run_command({"sh", "-c",
                            "printf 'battery staple\\n' | '" MAILCONFD_BINARY
                            "' cockpit password admin > '" +
                                setup.dir + "/other.passwd'"})
              .exit_code == 0);
  edit(setup.config, "s#cockpit.passwd#other.passwd#; s#retention=\"30d\"#retention=\"60d\"#");
  REQUIRE(reload(s, 1));
  std::string log = s.log();
  CHECK(log.find("reload: <cockpit> report " + setup.dir +
                 "/scan.json and password file (1 user(s)) in effect now") != std::string::npos);
  CHECK(log.find("reload: <journal> file or retention changed: the journal keeps writing " +
                 journal_file + " (retention 30 days) until the next start") != std::string::npos);
  const std::string other = basic("admin:battery staple");
  CHECK(admin_get(s.metrics_port(), "/cockpit", kRight).status == 401);
  CHECK(admin_get(s.metrics_port(), "/cockpit", other).status == 200);

  // Removing both: /cockpit is gone and nothing more is recorded, at once.
  CHECK(s.get("/mail/config-v1.1.xml?emailaddress=alice%40example.com").status == 200);
  edit(setup.config, "/<journal /d; /<cockpit /d");
  REQUIRE(reload(s, 2));
  log = s.log();
  CHECK(log.find("reload: <journal> removed: recording stopped now (what was buffered is written "
                 "to " +
                 journal_file + "; the file is kept)") != std::string::npos);
  CHECK(log.find("reload: <cockpit> removed: /cockpit answers 404 from now on") !=
        std::string::npos);
  CHECK(journaled(journal_file) == "alice@example.com\n");
  CHECK(admin_get(s.metrics_port(), "/cockpit", other).status == 404);
  CHECK(s.get("/mail/config-v1.1.xml?emailaddress=carol%40example.com").status == 200);
  std::this_thread::sleep_for(1500ms);  // longer than the writer's interval
  CHECK(journaled(journal_file) == "alice@example.com\n");

  // Adding the journal back needs a restart; the cockpit's thread still runs, so it is back.
  edit(setup.config,
       "s#<server>#<journal file=\"journal.sqlite\"/><cockpit report=\"scan.json\" "
       "password-file=\"other.passwd\"/><server>#");
  REQUIRE(reload(s, 3));
  log = s.log();
  CHECK(log.find("reload: <journal> added: it starts at the next start; nothing is recorded "
                 "until then") != std::string::npos);
  CHECK(occurrences(log, "password file (1 user(s)) in effect now") == 2);
  CHECK(admin_get(s.metrics_port(), "/cockpit", other).status == 200);
  CHECK(s.get("/mail/config-v1.1.xml?emailaddress=dora%40example.com").status == 200);
  std::this_thread::sleep_for(1500ms);
  CHECK(journaled(journal_file) == "alice@example.com\n");

  // Without a password file the loopback admin listener is all it takes, and the log says so
  // rather than counting the users of a file there is none of.
  CHECK(admin_get(s.metrics_port(), "/cockpit").status == 401);
  edit(setup.config, "s# password-file=\"other.passwd\"##");
  REQUIRE(reload(s, 4));
  log = s.log();
  CHECK(log.find("reload: <cockpit> report " + setup.dir +
                 "/scan.json in effect now (no password file: loopback only)") !=
        std::string::npos);
  CHECK(occurrences(log, "user(s)) in effect now") == 2);
  CHECK(admin_get(s.metrics_port(), "/cockpit").status == 200);
}

TEST_CASE("reload: a cockpit added to a running server answers 503 until the next start") {
  Setup setup;
  edit(setup.config, "/<journal /d; /<cockpit /d");
  Service s({"--config", setup.config});
  REQUIRE(s.ready());
  CHECK(admin_get(s.metrics_port(), "/cockpit", kRight).status == 404);
  edit(setup.config,
       "s#<server>#<journal file=\"journal.sqlite\"/><cockpit report=\"scan.json\" "
       "password-file=\"cockpit.passwd\"/><server>#");
  REQUIRE(reload(s, 1));
  const std::string log = s.log();
  CHECK(log.find("reload: <journal> added: it starts at the next start") != std::string::npos);
  CHECK(log.find("reload: <cockpit> added: it starts at the next start; until then /cockpit "
                 "answers 503") != std::string::npos);
  CHECK(admin_get(s.metrics_port(), "/cockpit").status == 401);
  CHECK(admin_get(s.metrics_port(), "/cockpit", kRight).status == 503);
}
