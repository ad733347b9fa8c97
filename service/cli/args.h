// What the subcommands share: their options, usage errors, and loading the configuration.
#pragma once

#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_file.h"

namespace mailconfd::cli {

// Prints "mailconfd: message", a blank line and help on stderr; returns 2 (usage error).
int usage_error(const std::string& message, const char* help);

// Options of the form --name VALUE (or --name=VALUE); positional arguments in order.
struct Args {
  std::map<std::string, std::string> options;
  std::vector<std::string> positional;
  bool help = false;
};

// argv[first..argc): known are the options that take a value, flags those without (--json).
// nullopt, with error set, for an unknown option or a missing value.
std::optional<Args> parse_args(int argc, char** argv, int first,
                               std::initializer_list<std::string_view> known, std::string& error,
                               std::initializer_list<std::string_view> flags = {});

// The configuration of --config FILE, or the built-in example without it.
Loaded load(const Args& args, TlsKeys tls_keys = TlsKeys::Load);

// Prints every problem of loaded on stderr; true when there is none.
bool report(const Loaded& loaded);

}  // namespace mailconfd::cli
