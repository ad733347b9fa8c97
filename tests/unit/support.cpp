#include "support.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

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

std::string minimal_config(const std::string& provider_body, const std::string& head) {
  return "<mailconfd>\n" + head +
         "<provider id=\"provider.example\">\n"
         "<incoming protocol=\"imap\" host=\"imap.provider.example\" port=\"993\" "
         "security=\"tls\"/>\n"
         "<outgoing host=\"smtp.provider.example\" port=\"587\" security=\"starttls\"/>\n"
         "<domain>customer.example</domain>\n" +
         provider_body + "</provider>\n</mailconfd>\n";
}

}  // namespace testing
