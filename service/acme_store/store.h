// The built-in ACME client's storage in the provider's database (<acme dsn-file>), shared by
// every replica: the account key, each certificate with its key, the http-01 answers and
// tls-alpn-01 digests of the order in progress, what the issuer learnt from the CA that must
// outlive it (its hold after a 429 or a failure, the renewalInfo windows, each name's wait after
// its order failed), and the lock that lets
// one replica issue at a time (PostgreSQL: the session-level advisory lock 7881696737120710246;
// MariaDB: GET_LOCK('mailconfd_acme')), held by the connection's session, so it goes when the
// issuer's process or connection does. Tables and grants: deploy/database/postgresql.sql,
// mariadb.sql (mailconfd_acme_*). Every call blocks: only the replica's own thread and the issuer's
// thread use a store.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace mailconfd::acme_store {

struct StoredCertificate {
  std::string name;             // the one DNS name it is for
  std::string certificate_pem;  // leaf first, then the chain
  std::string key_pem;
  std::int64_t version = 0;  // from the version sequence: larger is newer
};

// The CA's hold on every order (mailconfd_acme_hold, one row): no order before until; the
// delay after the CA failed, doubled each time it fails again. Unix seconds.
struct StoredHold {
  std::int64_t until = 0;
  std::int64_t ca_delay = 0;  // seconds
  std::string reason;         // for the log: "Retry-After", "the CA failed", …
};

// A renewalInfo answer (RFC 9773) for the certificate of name (mailconfd_acme_renewal): the
// certificate it is about, the suggested window, the point chosen in it, and when to ask the
// CA again (its Retry-After). Unix seconds.
struct StoredRenewal {
  std::string name;
  std::string cert_id;
  std::int64_t window_start = 0, window_end = 0;
  std::int64_t renew_at = 0;
  std::int64_t ask_again = 0;
};

// The two kinds of challenge of the order in progress, each in a table of its own:
// http-01: token → the answer served at /.well-known/acme-challenge/TOKEN;
// tls-alpn-01: name → key_authorization_digest (tls/validation.h).
enum class Challenge { Http01, TlsAlpn01 };

// Where a kind of challenge lives (deploy/database/*.sql): the table, its key and value columns.
struct ChallengeTable {
  const char* table;
  const char* key;
  const char* value;
};
constexpr ChallengeTable table_of(Challenge kind) {
  return kind == Challenge::Http01
             ? ChallengeTable{"mailconfd_acme_challenge", "token", "answer"}
             : ChallengeTable{"mailconfd_acme_alpn_challenge", "name", "digest"};
}

// A name's wait after its order failed (mailconfd_acme_backoff): no order before not_before
// (Unix seconds); delay (seconds) is doubled at the next failure.
struct StoredBackoff {
  std::string name;
  std::int64_t not_before = 0;
  std::int64_t delay = 0;
};

// Each call: false with error set (the server's words, never the DSN) when it failed.
class Store {
 public:
  virtual ~Store() = default;
  // Takes the issuer's lock when it is free, without waiting: held says whether this
  // session has it now.
  virtual bool try_lock(bool& held, std::string& error) = 0;
  virtual bool account_key(std::optional<std::string>& key_pem, std::string& error) = 0;
  virtual bool put_account_key(const std::string& key_pem, std::string& error) = 0;
  // Inserts or replaces the certificate for c.name with a new version (set in version).
  virtual bool put_certificate(const StoredCertificate& c, std::int64_t& version,
                               std::string& error) = 0;
  // The certificates with a version above version, oldest first.
  virtual bool certificates_since(std::int64_t version, std::vector<StoredCertificate>& out,
                                  std::string& error) = 0;
  // The rows of one kind of challenge (key → value); put inserts or replaces the row of key.
  virtual bool put_challenge(Challenge kind, const std::string& key, const std::string& value,
                             std::string& error) = 0;
  virtual bool erase_challenge(Challenge kind, const std::string& key, std::string& error) = 0;
  virtual bool challenges(Challenge kind, std::unordered_map<std::string, std::string>& out,
                          std::string& error) = 0;
  // The hold (nullopt: none was ever written); put replaces it.
  virtual bool hold(std::optional<StoredHold>& out, std::string& error) = 0;
  virtual bool put_hold(const StoredHold& hold, std::string& error) = 0;
  // The renewalInfo rows; put inserts or replaces the row of r.name.
  virtual bool renewals(std::vector<StoredRenewal>& out, std::string& error) = 0;
  virtual bool put_renewal(const StoredRenewal& r, std::string& error) = 0;
  virtual bool erase_renewal(const std::string& name, std::string& error) = 0;
  // The names' waits after a failed order; put inserts or replaces the row of b.name.
  virtual bool backoffs(std::vector<StoredBackoff>& out, std::string& error) = 0;
  virtual bool put_backoff(const StoredBackoff& b, std::string& error) = 0;
  virtual bool erase_backoff(const std::string& name, std::string& error) = 0;
  // On demand at a replica that does not issue: asks the issuer for these names (rows of
  // mailconfd_acme_request; a name already there stays as it is, with its time).
  virtual bool put_requests(const std::vector<std::string>& names, std::string& error) = 0;
  // The issuer's side: deletes the requests older than max_age (the database's clock), then
  // takes (deletes and returns) at most limit of the others, oldest first.
  virtual bool take_requests(std::chrono::seconds max_age, std::size_t limit,
                             std::vector<std::string>& names, std::string& error) = 0;
};

// Connects with dsn (libpq's connection string or URI; connect timeout 5 s, statements at most
// 30 s). nullptr with error (never the password) on failure.
std::unique_ptr<Store> open_postgresql_store(const std::string& dsn, std::string& error);
// Connects with dsn (source/mariadb.h's key=value form; connect timeout 5 s, reads and writes
// at most 30 s). nullptr with error (never the password) on failure.
std::unique_ptr<Store> open_mariadb_store(const std::string& dsn, std::string& error);

}  // namespace mailconfd::acme_store
