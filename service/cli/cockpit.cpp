#include "cli/cockpit.h"

#include <crypt.h>

#include <iostream>
#include <memory>
#include <string>

namespace mailconfd::cli {
namespace {

constexpr const char* kHelp =
    "usage: mailconfd cockpit password NAME < password\n"
    "\n"
    "Reads a password from the first line of standard input and prints the line\n"
    "NAME:HASH (yescrypt, crypt(3)) for the file named by <cockpit password-file>.\n"
    "The password never appears on the command line.\n";

int usage(const std::string& message) {
  std::cerr << "mailconfd: " << message << "\n\n" << kHelp;
  return 2;
}

}  // namespace

int cockpit_command(int argc, char** argv) {
  if (argc >= 3 && (std::string(argv[2]) == "--help" || std::string(argv[2]) == "-h")) {
    return std::cout << kHelp, 0;
  }
  if (argc != 4 || std::string(argv[2]) != "password") {
    return usage("cockpit needs: password NAME");
  }
  const std::string name = argv[3];
  if (name.empty() || name.find_first_of(":\r\n\t ") != std::string::npos || name.size() > 64) {
    return usage("NAME must be 1 to 64 characters without ':' or white space");
  }
  std::string password;
  if (!std::getline(std::cin, password) || password.empty()) {
    std::cerr << "mailconfd: no password on standard input\n";
    return 1;
  }
  if (!password.empty() && password.back() == '\r') password.pop_back();
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn("$y$", 0, nullptr, 0, salt, sizeof salt) == nullptr) {
    std::cerr << "mailconfd: cannot make a yescrypt salt\n";
    return 1;
  }
  auto data = std::make_unique<crypt_data>();
  const char* hash = crypt_r(password.c_str(), salt, data.get());
  if (hash == nullptr || hash[0] == '*') {
    std::cerr << "mailconfd: crypt failed\n";
    return 1;
  }
  std::cout << name << ':' << hash << '\n';
  return std::cout ? 0 : 1;
}

}  // namespace mailconfd::cli
