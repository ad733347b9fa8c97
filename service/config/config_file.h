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
  // Said in the log but no reason to refuse: a certificate that could not be read again on a
  // reload, for which the one loaded before keeps serving ("FILE:LINE:COLUMN: message").
  std::vector<std::string> warnings;
  bool ok() const { return problems.empty(); }
};

// What a command needs read besides the file itself.
enum class TlsKeys {
  Load,  // serve, check, reload: <tls> certificate and private key are read and matched
  Skip,  // render, dns: <tls> is checked for form only, its files are not opened (an
         // operator without access to the private key can still run them)
};

// Reads and checks the file at path. Domain-list files named in it are read relative to the
// directory of path. previous: the certificates being served (a reload); a certificate that
// cannot be read now but was loaded there from the same file is kept (a warning, not a
// problem).
Loaded load_config_file(const std::string& path, TlsKeys tls_keys = TlsKeys::Load,
                        const tls::CertificateSet* previous = nullptr);

// Checks text as if it had been read from a file called name in directory base_dir.
Loaded load_config_text(std::string_view text, const std::string& name, const std::string& base_dir,
                        TlsKeys tls_keys = TlsKeys::Load,
                        const tls::CertificateSet* previous = nullptr);

struct ListenAddress {
  std::string host;  // "127.0.0.1", "::1", "0.0.0.0", "::"
  std::uint16_t port = 0;
};

// Parses HOST:PORT or [V6]:PORT. Port 0 means "any free port".
std::optional<ListenAddress> parse_listen(std::string_view text);

}  // namespace mailconfd
