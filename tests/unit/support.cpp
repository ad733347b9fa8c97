#include "support.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace testing {

std::string source_path(const std::string& relative) {
  return std::string(MAILCONFD_SOURCE_DIR) + "/" + relative;
}

mailconfd::Loaded load_fixture(const std::string& name) {
  return mailconfd::load_config_file(source_path("tests/fixtures/" + name));
}

mailconfd::Loaded load_text(const std::string& text) {
  return mailconfd::load_config_text(text, "test.xml", source_path("tests/fixtures"));
}

std::string golden(const std::string& name, const std::string& actual) {
  const std::string path = source_path("tests/golden/" + name);
  if (const char* update = std::getenv("MAILCONFD_UPDATE_GOLDEN"); update && *update == '1') {
    std::ofstream(path, std::ios::binary) << actual;
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string temp_dir() {
  static const std::string root = [] {
    char pattern[] = "/tmp/mailconfd-unit-XXXXXX";
    return std::string(::mkdtemp(pattern));
  }();
  static const struct Cleanup {
    ~Cleanup() { std::filesystem::remove_all(root); }
  } cleanup;
  static int counter = 0;
  const std::string dir = root + "/" + std::to_string(++counter);
  ::mkdir(dir.c_str(), 0700);
  return dir;
}

std::string minimal_config(const std::string& provider_body, const std::string& head) {
  return "<mailconfd>\n" + head +
         "<provider id=\"provider.example\">\n"
         "<incoming protocol=\"imap\" host=\"imap.provider.example\" port=\"993\" "
         "security=\"tls\"/>\n"
         "<outgoing host=\"smtp.provider.example\" port=\"587\" security=\"starttls\"/>\n"
         "<domain>customer.example</domain>\n" +
         provider_body + "</provider>\n</mailconfd>\n";
}

const std::string& test_pki() {
  static const std::string dir = [] {
    char pattern[] = "/tmp/mailconfd-pki-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
    const std::string path = pattern;
    const std::string command = "sh '" + source_path("tests/make-test-pki.sh") + "' " + path;
    if (std::system(command.c_str()) != 0) {
      throw std::runtime_error("tests/make-test-pki.sh failed; see " + path + "/openssl.log");
    }
    return path;
  }();
  static const struct Cleanup {
    ~Cleanup() { std::filesystem::remove_all(dir); }
  } cleanup;
  return dir;
}

}  // namespace testing
