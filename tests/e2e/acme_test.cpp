// ACME: http-01 answers served from <acme challenge-directory> (for certbot --webroot, lego,
// uacme), against the real binary over plain HTTP.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <doctest/doctest.h>

#include "service.h"

using e2e::Service;

namespace {

// The example configuration with text inserted before </mailconfd>, written to DIR/mailconfd.xml.
std::string write_config(const std::string& dir, const std::string& text) {
  std::string config =
      e2e::read_file(std::string(MAILCONFD_SOURCE_DIR) + "/deploy/example/mailconfd.xml");
  config.insert(config.rfind("</mailconfd>"), text);
  const std::string path = dir + "/mailconfd.xml";
  std::ofstream(path, std::ios::binary | std::ios::trunc) << config;
  return path;
}

}  // namespace

TEST_CASE("acme: /.well-known/acme-challenge/ answers from challenge-directory, nothing else") {
  const std::string dir = e2e::temp_dir();
  std::filesystem::create_directory(dir + "/webroot");
  const std::string config = write_config(dir, "  <acme challenge-directory=\"webroot\"/>\n");
  const std::string token = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";
  const std::string answer = token + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";
  std::ofstream(dir + "/webroot/" + token) << answer;
  std::ofstream(dir + "/secret.txt") << "not for you\n";
  REQUIRE(::mkfifo((dir + "/webroot/fifo").c_str(), 0600) == 0);

  Service s({"--config", config});
  REQUIRE(s.ready());
  auto r = s.get("/.well-known/acme-challenge/" + token);
  CHECK(r.status == 200);
  CHECK(r.header("Content-Type") == "application/octet-stream");
  CHECK(r.header("Cache-Control") == "no-store");
  CHECK(r.body == answer);
  // A file written after start is served at once (certbot writes it just before the CA asks).
  std::ofstream(dir + "/webroot/second") << "second.key";
  CHECK(s.get("/.well-known/acme-challenge/second").body == "second.key");
  CHECK(s.get("/.well-known/acme-challenge/missing").status == 404);
  CHECK(s.get("/.well-known/acme-challenge/").status == 404);
  CHECK(s.get("/.well-known/acme-challenge/fifo").status == 404);  // and does not hang
  CHECK(s.get("/.well-known/acme-challenge/..%2Fsecret.txt").status == 404);
  CHECK(s.get("/.well-known/acme-challenge/a.b").status == 404);
  const auto traversal = s.get("/.well-known/acme-challenge/../secret.txt");
  CHECK(traversal.body.find("not for you") == std::string::npos);
  CHECK((traversal.status == 404 || traversal.status == 400));
  CHECK(s.get("/.well-known/acme-challenge/" + token, {"Host: autoconfig.example.com"}).status ==
        200);
  const auto post = s.request("POST /.well-known/acme-challenge/" + token +
                              " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  CHECK(post.status == 405);
  CHECK(post.header("Allow") == "GET, HEAD");
}

TEST_CASE(
    "acme: without <acme> the challenge path is 404, and a bad <acme> is a FILE:LINE problem") {
  Service s;
  REQUIRE(s.ready());
  CHECK(s.get("/.well-known/acme-challenge/abc").status == 404);

  const std::string dir = e2e::temp_dir();
  const std::string missing = write_config(dir, "  <acme challenge-directory=\"nowhere\"/>\n");
  auto r = e2e::run_mailconfd({"check", missing});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(missing + ":") != std::string::npos);
  CHECK(r.err.find("<acme>: challenge-directory '" + dir + "/nowhere' is not a directory") !=
        std::string::npos);
  std::filesystem::create_directory(dir + "/webroot");
  const std::string twice = write_config(
      dir,
      "  <acme challenge-directory=\"webroot\"/>\n  <acme challenge-directory=\"webroot\"/>\n");
  r = e2e::run_mailconfd({"check", twice});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("<acme> may appear only once in <mailconfd>") != std::string::npos);
  const std::string empty = write_config(dir, "  <acme/>\n");
  r = e2e::run_mailconfd({"check", empty});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("<acme> needs challenge-directory") != std::string::npos);
}
