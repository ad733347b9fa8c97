// Reads a mailconfd XML configuration into a Config and checks it against the policy:
// clients are only ever told to submit with a password over TLS (587+STARTTLS, optionally
// 465+TLS). Every problem is reported at once, each as "FILE:LINE:COLUMN: message".
// The format is documented in README.md ("Configuration reference").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace mailconfd {

struct Loaded {
  Config config;
  std::vector<std::string> problems;  // empty: config is valid and may be used
  bool ok() const { return problems.empty(); }
};

// Reads and checks the file at path. Domain-list files named in it are read relative to the
// directory of path.
Loaded load_config_file(const std::string& path);

// Checks text as if it had been read from a file called name in directory base_dir.
Loaded load_config_text(std::string_view text, const std::string& name,
                        const std::string& base_dir);

struct ListenAddress {
  std::string host;  // "127.0.0.1", "::1", "0.0.0.0", "::"
  std::uint16_t port = 0;
};

// Parses HOST:PORT or [V6]:PORT. Port 0 means "any free port".
std::optional<ListenAddress> parse_listen(std::string_view text);

}  // namespace mailconfd
