#include <mysql.h>

#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "acme_store/store.h"
#include "source/mariadb.h"
#include "source/mariadb_sql.h"

namespace mailconfd::acme_store {
namespace {

class Mariadb final : public Store, private source::MysqlSession {
 public:
  explicit Mariadb(source::MysqlHandle handle) : MysqlSession(std::move(handle)) {}

  bool try_lock(bool& held, std::string& error) override {
    held = false;
    return select(
        "SELECT GET_LOCK('mailconfd_acme', 0)", 1,
        [&held](MYSQL_ROW row, const unsigned long*) {
          held = row[0] != nullptr && std::string_view(row[0]) == "1";
        },
        error);
  }

  bool account_key(std::optional<std::string>& key_pem, std::string& error) override {
    key_pem.reset();
    return select(
        "SELECT key_pem FROM mailconfd_acme_account WHERE id = 1", 1,
        [&key_pem](MYSQL_ROW row, const unsigned long* lengths) {
          key_pem = text(row, lengths, 0);
        },
        error);
  }

  bool put_account_key(const std::string& key_pem, std::string& error) override {
    std::string sql = "REPLACE INTO mailconfd_acme_account (id, key_pem) VALUES (1, ";
    quoted(sql, key_pem);
    sql.push_back(')');
    return command(sql, error);
  }

  bool put_certificate(const StoredCertificate& c, std::int64_t& version,
                       std::string& error) override {
    version = 0;
    if (!select(
            // Above every stored row too: a row written with a larger version (restored,
            // typed by hand) must not hide this one from the replicas that saw it.
            "SELECT GREATEST(NEXTVAL(mailconfd_acme_version), (SELECT COALESCE(MAX(version), 0) + "
            "1 FROM mailconfd_acme_certificate))",
            1, [&version](MYSQL_ROW row, const unsigned long*) { version = number(row, 0); },
            error)) {
      return false;
    }
    std::string sql =
        "REPLACE INTO mailconfd_acme_certificate (name, certificate_pem, key_pem, version) "
        "VALUES (";
    quoted(sql, c.name);
    sql.push_back(',');
    quoted(sql, c.certificate_pem);
    sql.push_back(',');
    quoted(sql, c.key_pem);
    sql += ',' + std::to_string(version) + ')';
    return command(sql, error);
  }

  bool certificates_since(std::int64_t version, std::vector<StoredCertificate>& out,
                          std::string& error) override {
    const std::string sql =
        "SELECT name, certificate_pem, key_pem, version FROM mailconfd_acme_certificate "
        "WHERE version > " +
        std::to_string(version) + " ORDER BY version";
    return select(
        sql.c_str(), 4,
        [&out](MYSQL_ROW row, const unsigned long* lengths) {
          out.push_back({text(row, lengths, 0), text(row, lengths, 1), text(row, lengths, 2),
                         number(row, 3)});
        },
        error);
  }

  bool put_challenge(Challenge kind, const std::string& key, const std::string& value,
                     std::string& error) override {
    const ChallengeTable t = table_of(kind);
    std::string sql = fmt::format("REPLACE INTO {} ({}, {}) VALUES (", t.table, t.key, t.value);
    quoted(sql, key);
    sql.push_back(',');
    quoted(sql, value);
    sql.push_back(')');
    return command(sql, error);
  }

  bool erase_challenge(Challenge kind, const std::string& key, std::string& error) override {
    const ChallengeTable t = table_of(kind);
    std::string sql = fmt::format("DELETE FROM {} WHERE {} = ", t.table, t.key);
    quoted(sql, key);
    return command(sql, error);
  }

  bool challenges(Challenge kind, std::unordered_map<std::string, std::string>& out,
                  std::string& error) override {
    const ChallengeTable t = table_of(kind);
    return select(
        fmt::format("SELECT {}, {} FROM {}", t.key, t.value, t.table), 2,
        [&out](MYSQL_ROW row, const unsigned long* lengths) {
          out[text(row, lengths, 0)] = text(row, lengths, 1);
        },
        error);
  }

  bool hold(std::optional<StoredHold>& out, std::string& error) override {
    out.reset();
    return select(
        "SELECT held_until, ca_delay, reason FROM mailconfd_acme_hold WHERE id = 1", 3,
        [&out](MYSQL_ROW row, const unsigned long* lengths) {
          out = StoredHold{number(row, 0), number(row, 1), text(row, lengths, 2)};
        },
        error);
  }

  bool put_hold(const StoredHold& hold, std::string& error) override {
    std::string sql =
        "REPLACE INTO mailconfd_acme_hold (id, held_until, ca_delay, reason) VALUES (1," +
        std::to_string(hold.until) + ',' + std::to_string(hold.ca_delay) + ',';
    quoted(sql, hold.reason);
    sql.push_back(')');
    return command(sql, error);
  }

  bool renewals(std::vector<StoredRenewal>& out, std::string& error) override {
    return select(
        "SELECT name, cert_id, window_start, window_end, renew_at, ask_again "
        "FROM mailconfd_acme_renewal ORDER BY name",
        6,
        [&out](MYSQL_ROW row, const unsigned long* lengths) {
          out.push_back({text(row, lengths, 0), text(row, lengths, 1), number(row, 2),
                         number(row, 3), number(row, 4), number(row, 5)});
        },
        error);
  }

  bool put_renewal(const StoredRenewal& w, std::string& error) override {
    std::string sql =
        "REPLACE INTO mailconfd_acme_renewal (name, cert_id, window_start, window_end, renew_at, "
        "ask_again) VALUES (";
    quoted(sql, w.name);
    sql.push_back(',');
    quoted(sql, w.cert_id);
    sql += ',' + std::to_string(w.window_start) + ',' + std::to_string(w.window_end) + ',' +
           std::to_string(w.renew_at) + ',' + std::to_string(w.ask_again) + ')';
    return command(sql, error);
  }

  bool erase_renewal(const std::string& name, std::string& error) override {
    return erase_named("mailconfd_acme_renewal", name, error);
  }

  bool backoffs(std::vector<StoredBackoff>& out, std::string& error) override {
    return select(
        "SELECT name, not_before, delay FROM mailconfd_acme_backoff ORDER BY name", 3,
        [&out](MYSQL_ROW row, const unsigned long* lengths) {
          out.push_back({text(row, lengths, 0), number(row, 1), number(row, 2)});
        },
        error);
  }

  bool put_backoff(const StoredBackoff& b, std::string& error) override {
    std::string sql = "REPLACE INTO mailconfd_acme_backoff (name, not_before, delay) VALUES (";
    quoted(sql, b.name);
    sql += ',' + std::to_string(b.not_before) + ',' + std::to_string(b.delay) + ')';
    return command(sql, error);
  }

  bool erase_backoff(const std::string& name, std::string& error) override {
    return erase_named("mailconfd_acme_backoff", name, error);
  }

  bool put_requests(const std::vector<std::string>& names, std::string& error) override {
    if (names.empty()) return true;
    // IGNORE: a name another replica asked for already stays as it is.
    std::string sql = "INSERT IGNORE INTO mailconfd_acme_request (name) VALUES ";
    for (std::size_t i = 0; i < names.size(); ++i) {
      sql += i ? ",(" : "(";
      quoted(sql, names[i]);
      sql.push_back(')');
    }
    return command(sql, error);
  }

  bool take_requests(std::chrono::seconds max_age, std::size_t limit,
                     std::vector<std::string>& names, std::string& error) override {
    if (!command("DELETE FROM mailconfd_acme_request WHERE requested < NOW() - INTERVAL " +
                     std::to_string(max_age.count()) + " SECOND",
                 error)) {
      return false;
    }
    const std::string sql = "DELETE FROM mailconfd_acme_request ORDER BY requested, name LIMIT " +
                            std::to_string(limit) + " RETURNING name";
    return select(
        sql.c_str(), 1,
        [&names](MYSQL_ROW row, const unsigned long* lengths) {
          names.push_back(text(row, lengths, 0));
        },
        error);
  }

 private:
  static std::int64_t number(MYSQL_ROW row, int column) {
    return row[column] ? std::strtoll(row[column], nullptr, 10) : 0;
  }

  // Deletes the row of name from table (a table keyed by name).
  bool erase_named(std::string_view table, const std::string& name, std::string& error) {
    std::string sql = fmt::format("DELETE FROM {} WHERE name = ", table);
    quoted(sql, name);
    return command(sql, error);
  }
};

}  // namespace

std::unique_ptr<Store> open_mariadb_store(const std::string& dsn, std::string& error) {
  source::MysqlHandle handle = source::open_mariadb(dsn, error);
  if (!handle) return nullptr;
  return std::make_unique<Mariadb>(std::move(handle));
}

}  // namespace mailconfd::acme_store
