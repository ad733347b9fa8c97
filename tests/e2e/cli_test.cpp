// The command line: check, render, help and usage errors.
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include <doctest/doctest.h>

#include "service.h"

using e2e::run_mailconfd;

TEST_CASE("check accepts the shipped example") {
  const std::string path = std::string(MAILCONFD_SOURCE_DIR) + "/deploy/example/mailconfd.xml";
  auto r = run_mailconfd({"check", "--config", path});
  CHECK(r.exit_code == 0);
  CHECK(r.out == path + ": ok (1 provider, 2 domains)\n");
  CHECK(r.err.empty());
}

TEST_CASE("check prints every problem as FILE:LINE:COLUMN and exits 2") {
  const std::string path = e2e::fixture("refused.xml");
  auto r = run_mailconfd({"check", "--config", path});
  CHECK(r.exit_code == 2);
  CHECK(r.out.empty());
  CHECK(r.err.find(path + ":5:5: <outgoing> port 25 is for server-to-server relay") !=
        std::string::npos);
  CHECK(r.err.find(path + ":6:5: <outgoing> auth 'smtp-after-pop' is refused") !=
        std::string::npos);
  CHECK(r.err.find("9 problems in " + path + "\n") != std::string::npos);
}

TEST_CASE("check of a missing file names it") {
  auto r = run_mailconfd({"check", "--config", "/nonexistent/mailconfd.xml"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.starts_with(
      "/nonexistent/mailconfd.xml:1:1: cannot read the file: No such file or directory\n"));
}

TEST_CASE("render autoconfig prints the document that is served") {
  auto r = run_mailconfd({"render", "autoconfig", "alice@example.com"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == e2e::golden("autoconfig/example-alice.xml"));
  auto unknown = run_mailconfd({"render", "autoconfig", "alice@not-hosted.example"});
  CHECK(unknown.exit_code == 1);
  CHECK(unknown.err ==
        "mailconfd: no --config given: rendering from the built-in example configuration "
        "(deploy/example/mailconfd.xml)\n"
        "mailconfd: domain not-hosted.example is not hosted in this configuration\n");
  auto bad = run_mailconfd({"render", "autoconfig", "not-an-address"});
  CHECK(bad.exit_code == 2);
}

TEST_CASE("--help on each command exits 0, unknown options and commands exit 2") {
  for (auto cmd : {"serve", "check", "render"}) {
    auto r = run_mailconfd({cmd, "--help"});
    CHECK_MESSAGE(r.exit_code == 0, cmd);
    CHECK(r.out.starts_with(std::string("usage: mailconfd ") + cmd));
  }
  CHECK(run_mailconfd({"--help"}).exit_code == 0);
  auto unknown_option = run_mailconfd({"serve", "--frobnicate", "1"});
  CHECK(unknown_option.exit_code == 2);
  CHECK(unknown_option.err.starts_with("mailconfd: unknown option --frobnicate\n"));
  CHECK(run_mailconfd({"check", "-x"}).exit_code == 2);
  CHECK(run_mailconfd({"launch"}).exit_code == 2);
  CHECK(run_mailconfd({}).exit_code == 2);
}

TEST_CASE("serve refuses an invalid config before listening, exit 2") {
  e2e::Service s({"--config", e2e::fixture("refused.xml")}, false);
  CHECK_FALSE(s.ready());
  CHECK(s.wait_exit(std::chrono::seconds(5)) == 2);
  CHECK(s.log().find("port 25 is for server-to-server relay") != std::string::npos);
}

TEST_CASE("serve reports a port that is taken and exits 1") {
  e2e::Service first;
  REQUIRE(first.ready());
  auto r = run_mailconfd({"serve", "--listen", "127.0.0.1:" + std::to_string(first.port())});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("cannot listen on 127.0.0.1:" + std::to_string(first.port())) !=
        std::string::npos);
}

TEST_CASE("check FILE works like check --config FILE") {
  const std::string path = std::string(MAILCONFD_SOURCE_DIR) + "/deploy/example/mailconfd.xml";
  auto r = run_mailconfd({"check", path});
  CHECK(r.exit_code == 0);
  CHECK(r.out == path + ": ok (1 provider, 2 domains)\n");
  CHECK(run_mailconfd({"check", path, path}).exit_code == 2);
  CHECK(run_mailconfd({"check"}).exit_code == 2);
}

TEST_CASE("render says when it used the built-in example, and render setup prints the page") {
  auto r = run_mailconfd({"render", "autodiscover", "alice@example.com"});
  CHECK(r.exit_code == 0);
  CHECK(r.err ==
        "mailconfd: no --config given: rendering from the built-in example "
        "configuration (deploy/example/mailconfd.xml)\n");
  const std::string path = std::string(MAILCONFD_SOURCE_DIR) + "/deploy/example/mailconfd.xml";
  auto quiet = run_mailconfd({"render", "autodiscover", "alice@example.com", "--config", path});
  CHECK(quiet.err.empty());
  auto de =
      run_mailconfd({"render", "setup", "alice@example.com", "--lang", "de", "--config", path});
  CHECK(de.exit_code == 0);
  CHECK(de.out.starts_with("<!DOCTYPE html>\n<html lang=\"de\">"));
  CHECK(de.out.find("Einstellungen für <span class=\"value\">alice@example.com</span>") !=
        std::string::npos);
  auto en = run_mailconfd({"render", "setup", "alice@example.com", "--config", path});
  CHECK(en.out.find("<html lang=\"en\">") != std::string::npos);
  auto unknown = run_mailconfd({"render", "setup", "bob@elsewhere.example", "--config", path});
  CHECK(unknown.exit_code == 1);
  CHECK(unknown.out.find("We do not host mail for") != std::string::npos);
  CHECK(unknown.err ==
        "mailconfd: the domain is not hosted in this configuration (the page says "
        "so; HTTP status 404)\n");
  CHECK(run_mailconfd({"render", "setup", "alice@example.com", "--lang", "fr"}).exit_code == 2);
  CHECK(run_mailconfd({"render", "autoconfig", "alice@example.com", "--lang", "de"}).exit_code ==
        2);
}

TEST_CASE("dns zone, dns check and render do not need the TLS private key, check and serve do") {
  const std::string dir = e2e::temp_dir();
  const std::string config = dir + "/mailconfd.xml";
  {
    std::string text =
        e2e::read_file(std::string(MAILCONFD_SOURCE_DIR) + "/deploy/example/mailconfd.xml");
    const auto at = text.find("<limits");
    REQUIRE(at != std::string::npos);
    text.insert(at,
                "<tls certificate=\"/nonexistent/cert.pem\" "
                "key=\"/nonexistent/private-key.pem\"/>\n");
    std::ofstream(config) << text;
  }
  auto zone = run_mailconfd({"dns", "zone", "--config", config});
  CHECK_MESSAGE(zone.exit_code == 0, zone.err);
  CHECK(zone.out.find("$ORIGIN example.com.") != std::string::npos);
  auto render = run_mailconfd({"render", "autoconfig", "alice@example.com", "--config", config});
  CHECK_MESSAGE(render.exit_code == 0, render.err);
  auto dns_check = run_mailconfd(
      {"dns", "check", "--config", config, "--resolver", "127.0.0.1:9", "--timeout", "50"});
  CHECK(dns_check.err.find("<tls>") == std::string::npos);
  CHECK(dns_check.exit_code == 1);  // nothing answers there: a DNS finding, not a config error
  auto check = run_mailconfd({"check", config});
  CHECK(check.exit_code == 2);
  CHECK(check.err.find("<tls>: ") != std::string::npos);
}

TEST_CASE("check --as-user reads every file as that user and names what it cannot read") {
  if (::geteuid() != 0) {
    MESSAGE("skipped: check --as-user needs root (run the e2e tests as root to cover it)");
    return;
  }
  passwd* nobody = ::getpwnam("nobody");
  REQUIRE_MESSAGE(nobody != nullptr, "the user 'nobody' is needed");
  const gid_t nobody_group = nobody->pw_gid;
  const std::string dir = e2e::temp_dir();
  // nobody must reach the files: the tests' base directory is 0700.
  const std::string base = dir.substr(0, dir.rfind('/'));
  REQUIRE(::chmod(base.c_str(), 0711) == 0);
  REQUIRE(::chmod(dir.c_str(), 0755) == 0);
  const std::string config = dir + "/mailconfd.xml";
  const std::string secret = dir + "/profile.secret";
  const std::string domains = dir + "/domains.txt";
  std::string text =
      e2e::read_file(std::string(MAILCONFD_SOURCE_DIR) + "/deploy/example/mailconfd.xml");
  const auto provider = text.find("\n  <provider ");
  REQUIRE(provider != std::string::npos);
  text.insert(provider + 1, "  <mobileconfig secret-file=\"profile.secret\"/>\n");
  const auto listed = text.find("    <domain>example.org</domain>\n");
  REQUIRE(listed != std::string::npos);
  text.insert(listed, "    <domains file=\"domains.txt\"/>\n");
  std::ofstream(config) << text;
  std::ofstream(secret) << "a secret of at least sixteen characters\n";
  std::ofstream(domains) << "customer.example\n";
  REQUIRE(::chmod(config.c_str(), 0644) == 0);
  REQUIRE(::chmod(secret.c_str(), 0600) == 0);
  REQUIRE(::chmod(domains.c_str(), 0600) == 0);
  const std::string secret_line = std::to_string(
      1 + std::count(text.begin(), text.begin() + text.find("<mobileconfig secret-file"), '\n'));
  const std::string domains_line =
      std::to_string(1 + std::count(text.begin(), text.begin() + text.find("<domains file"), '\n'));

  // As root everything is readable.
  auto root = run_mailconfd({"check", config});
  CHECK_MESSAGE(root.exit_code == 0, root.err);
  CHECK(root.out == config + ": ok (1 provider, 3 domains)\n");

  auto as_nobody = run_mailconfd({"check", config, "--as-user", "nobody"});
  CHECK(as_nobody.exit_code == 2);
  CHECK(as_nobody.out.empty());
  CHECK(as_nobody.err == config + ":" + secret_line + ":3: cannot read secret-file '" + secret +
                             "': Permission denied\n" + config + ":" + domains_line +
                             ":5: cannot read domain list '" + domains +
                             "': Permission denied\n2 problems in " + config + " as user nobody\n");

  // The user's group is taken on (setgid; initgroups the same way for ssl-cert and others).
  REQUIRE(::chown(secret.c_str(), 0, nobody_group) == 0);
  REQUIRE(::chmod(secret.c_str(), 0640) == 0);
  REQUIRE(::chown(domains.c_str(), 0, nobody_group) == 0);
  REQUIRE(::chmod(domains.c_str(), 0640) == 0);
  auto readable = run_mailconfd({"check", "--config", config, "--as-user", "nobody"});
  CHECK_MESSAGE(readable.exit_code == 0, readable.err);
  CHECK(readable.out == config + ": ok (1 provider, 3 domains) as user nobody\n");

  // The configuration file itself, unreadable.
  REQUIRE(::chmod(config.c_str(), 0600) == 0);
  auto hidden = run_mailconfd({"check", config, "--as-user", "nobody"});
  CHECK(hidden.exit_code == 2);
  CHECK(hidden.err.starts_with(config + ":1:1: cannot read the file: Permission denied\n"));

  auto unknown = run_mailconfd({"check", config, "--as-user", "no-such-user-mailconfd"});
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.err == "mailconfd: --as-user: no such user 'no-such-user-mailconfd'\n");

  // Not root: refused (run as nobody through setpriv, when nobody can reach the binary).
  auto probe =
      e2e::run_command({"setpriv", "--reuid=nobody", "--regid=" + std::to_string(nobody_group),
                        "--clear-groups", MAILCONFD_BINARY, "--version"});
  if (probe.exit_code != 0) {
    MESSAGE("not-root case skipped: user nobody cannot run ", MAILCONFD_BINARY);
    return;
  }
  auto not_root = e2e::run_command({"setpriv", "--reuid=nobody",
                                    "--regid=" + std::to_string(nobody_group), "--clear-groups",
                                    MAILCONFD_BINARY, "check", config, "--as-user", "nobody"});
  CHECK(not_root.exit_code == 2);
  CHECK(not_root.err ==
        "mailconfd: --as-user needs root (it switches to user 'nobody' to read every file as "
        "that user; run it with sudo)\n");
}
