// One probe connection: TCP connect, CRLF line I/O, and an in-place TLS upgrade (OpenSSL),
// each step bounded by a timeout. The certificate is never trusted blindly: the handshake
// completes so that chain, dates and host name can each be reported on their own.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/ssl.h>

namespace mailconfd::probe {

// Where to connect instead of resolving the advertised name, like curl's --connect-to:
// probe a new server before DNS points at it, or a test server on a high port.
struct ConnectTo {
  std::string host;  // advertised host name (lowercase)
  std::uint16_t port = 0;
  std::string to_host;  // address or name to connect to
  std::uint16_t to_port = 0;
};

// Parses "HOST:PORT:TO_HOST:TO_PORT" (an IPv6 TO_HOST in brackets). nullopt if malformed.
std::optional<ConnectTo> parse_connect_to(std::string_view text);

// "10s", "500ms", "1m", or a bare number of seconds; 100ms to 10m. nullopt otherwise.
std::optional<std::chrono::milliseconds> parse_timeout(std::string_view text);

struct Account {
  std::string user;
  std::string password;  // never logged, never printed
};

struct Options {
  std::chrono::milliseconds timeout{10'000};  // each connect, handshake, read and write
  std::string ca_file;                        // empty: the system trust store
  std::optional<Account> account;             // proves a real login when given
  std::string relay_to = "relay-probe@mailconfd-probe.invalid";  // outside recipient
  std::vector<ConnectTo> connect_to;
  unsigned parallel = 8;  // servers probed at the same time
  // Local address every connection comes from (--source); empty: the system's choice. The
  // cut-off-day check (relay-after-login) must come from an address a customer could have.
  std::string source;
  // relay-after-login: the pause between the POP3/IMAP login and the SMTP connection, for
  // the POP-before-SMTP map to be updated and noticed.
  std::chrono::milliseconds map_delay{2'000};
};

// What the TLS handshake showed about the server's certificate.
struct Certificate {
  std::string protocol;  // "TLSv1.3"
  std::string subject;   // leaf subject, one line
  bool chain_ok = false;
  std::string chain_error;  // OpenSSL's verify error when !chain_ok
  bool dates_ok = false;    // valid now and not within kExpiryWarningDays of expiry
  std::string dates;        // "valid until 2027-01-01 00:00:00 UTC (34 days)"
  bool name_ok = false;     // X509_check_host against the advertised name
};

// A whole server's probe may take at most this many timeouts: a server that answers each
// step just in time, or drips a reply byte by byte, cannot hold the probe much longer.
inline constexpr int kSessionTimeouts = 8;

// A certificate valid for fewer days than this is reported as a problem.
inline constexpr int kExpiryWarningDays = 14;

class Session {
 public:
  // Connects to host:port (or its --connect-to replacement). On failure returns nullptr
  // and sets error.
  static std::unique_ptr<Session> open(const std::string& host, std::uint16_t port,
                                       const Options& options, std::string& error);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const std::string& peer() const { return peer_; }    // "IP:PORT" connected to
  const std::string& local() const { return local_; }  // our own address, for EHLO
  bool local_is_v6() const { return local_v6_; }

  // TLS handshake on the open connection, SNI and name check against host. Fails if
  // plaintext bytes are still buffered (the STARTTLS response-injection problem).
  std::optional<Certificate> start_tls(const std::string& host, std::string& error);

  // Each of these, and start_tls, must finish within the timeout, and all of them within
  // kSessionTimeouts timeouts of opening the session.
  bool write_line(std::string_view line);
  // One line without its CRLF; nullopt on timeout, close, or a line over 8 KiB.
  std::optional<std::string> read_line();
  const std::string& error() const { return error_; }

 private:
  Session(int fd, std::chrono::milliseconds timeout, std::string ca_file);
  std::chrono::steady_clock::time_point step_deadline() const;
  bool wait(bool for_write, std::chrono::steady_clock::time_point deadline);
  long transfer(char* read_into, const char* write_from, std::size_t size,
                std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::chrono::milliseconds timeout_;
  std::chrono::steady_clock::time_point end_;  // of the whole session
  bool tls_failed_ = false;                    // no close_notify after a fatal TLS error
  std::string ca_file_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::string buffer_;
  std::string peer_, local_, error_;
  bool local_v6_ = false;
};

}  // namespace mailconfd::probe
