#include "cli/args.h"

#include <algorithm>
#include <iostream>

#include "example_config.h"

namespace mailconfd::cli {

int usage_error(const std::string& message, const char* help) {
  std::cerr << "mailconfd: " << message << "\n\n" << help;
  return 2;
}

std::optional<Args> parse_args(int argc, char** argv, int first,
                               std::initializer_list<std::string_view> known, std::string& error,
                               std::initializer_list<std::string_view> flags) {
  Args args;
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      args.help = true;
      continue;
    }
    if (arg.starts_with("--") &&
        std::find(flags.begin(), flags.end(), std::string_view(arg).substr(2)) != flags.end()) {
      args.options[arg.substr(2)] = "";
      continue;
    }
    if (arg.starts_with("--")) {
      std::string name = arg.substr(2);
      std::string value;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        error = "option --" + name + " needs a value";
        return std::nullopt;
      }
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        error = "unknown option --" + name;
        return std::nullopt;
      }
      args.options[name] = value;
      continue;
    }
    if (arg.starts_with("-") && arg.size() > 1) {
      error = "unknown option " + arg;
      return std::nullopt;
    }
    args.positional.push_back(arg);
  }
  return args;
}

Loaded load(const Args& args, TlsKeys tls_keys) {
  if (auto it = args.options.find("config"); it != args.options.end()) {
    return load_config_file(it->second, tls_keys);
  }
  return load_config_text(example_config(), kExampleConfigName, ".", tls_keys);
}

bool report(const Loaded& loaded) {
  for (const std::string& problem : loaded.problems) std::cerr << problem << '\n';
  return loaded.ok();
}

}  // namespace mailconfd::cli
