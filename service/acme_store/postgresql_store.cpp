#include <array>
#include <cstdlib>
#include <string>

#include <fmt/format.h>
#include <libpq-fe.h>

#include "acme_store/store.h"
#include "source/postgresql.h"

namespace mailconfd::acme_store {
namespace {

struct PgResultFree {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, PgResultFree>;

class Postgresql final : public Store {
 public:
  explicit Postgresql(source::PgHandle conn) : conn_(std::move(conn)) {}

  bool try_lock(bool& held, std::string& error) override {
    Result r = query("SELECT pg_try_advisory_lock(7881696737120710246)", {}, error);
    if (!r) return false;
    held = text(r.get(), 0, 0) == "t";
    return true;
  }

  bool account_key(std::optional<std::string>& key_pem, std::string& error) override {
    Result r = query("SELECT key_pem FROM mailconfd_acme_account WHERE id = 1", {}, error);
    if (!r) return false;
    key_pem.reset();
    if (PQntuples(r.get()) == 1) key_pem = text(r.get(), 0, 0);
    return true;
  }

  bool put_account_key(const std::string& key_pem, std::string& error) override {
    return query(
               "INSERT INTO mailconfd_acme_account (id, key_pem) VALUES (1, $1) "
               "ON CONFLICT (id) DO UPDATE SET key_pem = EXCLUDED.key_pem",
               {key_pem.c_str()}, error) != nullptr;
  }

  bool put_certificate(const StoredCertificate& c, std::int64_t& version,
                       std::string& error) override {
    Result r = query(
        "INSERT INTO mailconfd_acme_certificate (name, certificate_pem, key_pem, version) "
        // Above every stored row too: a row written with a larger version (restored, typed
        // by hand) must not hide this one from the replicas that saw it.
        "VALUES ($1, $2, $3, GREATEST(nextval('mailconfd_acme_version'), "
        "(SELECT COALESCE(max(version), 0) + 1 FROM mailconfd_acme_certificate))) "
        "ON CONFLICT (name) DO UPDATE SET certificate_pem = EXCLUDED.certificate_pem, "
        "key_pem = EXCLUDED.key_pem, version = EXCLUDED.version RETURNING version",
        {c.name.c_str(), c.certificate_pem.c_str(), c.key_pem.c_str()}, error);
    if (!r) return false;
    version = std::strtoll(PQgetvalue(r.get(), 0, 0), nullptr, 10);
    return true;
  }

  bool certificates_since(std::int64_t version, std::vector<StoredCertificate>& out,
                          std::string& error) override {
    const std::string since = std::to_string(version);
    Result r = query(
        "SELECT name, certificate_pem, key_pem, version FROM mailconfd_acme_certificate "
        "WHERE version > $1 ORDER BY version",
        {since.c_str()}, error);
    if (!r) return false;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      out.push_back({text(r.get(), i, 0), text(r.get(), i, 1), text(r.get(), i, 2),
                     std::strtoll(PQgetvalue(r.get(), i, 3), nullptr, 10)});
    }
    return true;
  }

  bool put_challenge(Challenge kind, const std::string& key, const std::string& value,
                     std::string& error) override {
    const ChallengeTable t = table_of(kind);
    const std::string sql = fmt::format(
        "INSERT INTO {0} ({1}, {2}) VALUES ($1, $2) ON CONFLICT ({1}) DO UPDATE SET "
        "{2} = EXCLUDED.{2}",
        t.table, t.key, t.value);
    return query(sql.c_str(), {key.c_str(), value.c_str()}, error) != nullptr;
  }

  bool erase_challenge(Challenge kind, const std::string& key, std::string& error) override {
    const ChallengeTable t = table_of(kind);
    const std::string sql = fmt::format("DELETE FROM {} WHERE {} = $1", t.table, t.key);
    return query(sql.c_str(), {key.c_str()}, error) != nullptr;
  }

  bool challenges(Challenge kind, std::unordered_map<std::string, std::string>& out,
                  std::string& error) override {
    const ChallengeTable t = table_of(kind);
    const std::string sql = fmt::format("SELECT {}, {} FROM {}", t.key, t.value, t.table);
    Result r = query(sql.c_str(), {}, error);
    if (!r) return false;
    for (int i = 0; i < PQntuples(r.get()); ++i) out[text(r.get(), i, 0)] = text(r.get(), i, 1);
    return true;
  }

  bool hold(std::optional<StoredHold>& out, std::string& error) override {
    Result r = query("SELECT held_until, ca_delay, reason FROM mailconfd_acme_hold WHERE id = 1",
                     {}, error);
    if (!r) return false;
    out.reset();
    if (PQntuples(r.get()) == 1) {
      out = StoredHold{number(r.get(), 0, 0), number(r.get(), 0, 1), text(r.get(), 0, 2)};
    }
    return true;
  }

  bool put_hold(const StoredHold& hold, std::string& error) override {
    const std::string until = std::to_string(hold.until);
    const std::string delay = std::to_string(hold.ca_delay);
    return query(
               "INSERT INTO mailconfd_acme_hold (id, held_until, ca_delay, reason) "
               "VALUES (1, $1::bigint, $2::bigint, $3) ON CONFLICT (id) DO UPDATE SET "
               "held_until = EXCLUDED.held_until, ca_delay = EXCLUDED.ca_delay, reason = "
               "EXCLUDED.reason",
               {until.c_str(), delay.c_str(), hold.reason.c_str()}, error) != nullptr;
  }

  bool renewals(std::vector<StoredRenewal>& out, std::string& error) override {
    Result r = query(
        "SELECT name, cert_id, window_start, window_end, renew_at, ask_again "
        "FROM mailconfd_acme_renewal ORDER BY name",
        {}, error);
    if (!r) return false;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      out.push_back({text(r.get(), i, 0), text(r.get(), i, 1), number(r.get(), i, 2),
                     number(r.get(), i, 3), number(r.get(), i, 4), number(r.get(), i, 5)});
    }
    return true;
  }

  bool put_renewal(const StoredRenewal& w, std::string& error) override {
    const std::string start = std::to_string(w.window_start), end = std::to_string(w.window_end),
                      at = std::to_string(w.renew_at), again = std::to_string(w.ask_again);
    return query(
               "INSERT INTO mailconfd_acme_renewal (name, cert_id, window_start, window_end, "
               "renew_at, ask_again) VALUES ($1, $2, $3::bigint, $4::bigint, $5::bigint, "
               "$6::bigint) ON CONFLICT (name) DO UPDATE SET cert_id = EXCLUDED.cert_id, "
               "window_start = EXCLUDED.window_start, window_end = EXCLUDED.window_end, "
               "renew_at = EXCLUDED.renew_at, ask_again = EXCLUDED.ask_again",
               {w.name.c_str(), w.cert_id.c_str(), start.c_str(), end.c_str(), at.c_str(),
                again.c_str()},
               error) != nullptr;
  }

  bool erase_renewal(const std::string& name, std::string& error) override {
    return erase_named("mailconfd_acme_renewal", name, error);
  }

  bool backoffs(std::vector<StoredBackoff>& out, std::string& error) override {
    Result r = query("SELECT name, not_before, delay FROM mailconfd_acme_backoff ORDER BY name", {},
                     error);
    if (!r) return false;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      out.push_back({text(r.get(), i, 0), number(r.get(), i, 1), number(r.get(), i, 2)});
    }
    return true;
  }

  bool put_backoff(const StoredBackoff& b, std::string& error) override {
    const std::string not_before = std::to_string(b.not_before), delay = std::to_string(b.delay);
    return query(
               "INSERT INTO mailconfd_acme_backoff (name, not_before, delay) VALUES ($1, "
               "$2::bigint, $3::bigint) ON CONFLICT (name) DO UPDATE SET not_before = "
               "EXCLUDED.not_before, delay = EXCLUDED.delay",
               {b.name.c_str(), not_before.c_str(), delay.c_str()}, error) != nullptr;
  }

  bool erase_backoff(const std::string& name, std::string& error) override {
    return erase_named("mailconfd_acme_backoff", name, error);
  }

  bool put_requests(const std::vector<std::string>& names, std::string& error) override {
    for (const std::string& name : names) {
      if (!query("INSERT INTO mailconfd_acme_request (name) VALUES ($1) ON CONFLICT (name) DO "
                 "NOTHING",
                 {name.c_str()}, error)) {
        return false;
      }
    }
    return true;
  }

  bool take_requests(std::chrono::seconds max_age, std::size_t limit,
                     std::vector<std::string>& names, std::string& error) override {
    const std::string age = std::to_string(max_age.count());
    const std::string count = std::to_string(limit);
    if (!query("DELETE FROM mailconfd_acme_request WHERE requested < now() - make_interval(secs "
               "=> $1::bigint)",
               {age.c_str()}, error)) {
      return false;
    }
    Result r = query(
        "DELETE FROM mailconfd_acme_request WHERE name IN (SELECT name FROM "
        "mailconfd_acme_request ORDER BY requested, name LIMIT $1::bigint) RETURNING name",
        {count.c_str()}, error);
    if (!r) return false;
    for (int i = 0; i < PQntuples(r.get()); ++i) names.push_back(text(r.get(), i, 0));
    return true;
  }

 private:
  static std::string text(const PGresult* r, int row, int column) {
    return {PQgetvalue(r, row, column), static_cast<std::size_t>(PQgetlength(r, row, column))};
  }

  static std::int64_t number(const PGresult* r, int row, int column) {
    return std::strtoll(PQgetvalue(r, row, column), nullptr, 10);
  }

  // Deletes the row of name from table (a table keyed by name).
  bool erase_named(std::string_view table, const std::string& name, std::string& error) {
    const std::string sql = fmt::format("DELETE FROM {} WHERE name = $1", table);
    return query(sql.c_str(), {name.c_str()}, error) != nullptr;
  }

  // The statement with text parameters; null with error set unless it worked.
  Result query(const char* sql, std::initializer_list<const char*> parameters, std::string& error) {
    const std::vector<const char*> values(parameters);
    Result r(PQexecParams(conn_.get(), sql, static_cast<int>(values.size()), nullptr, values.data(),
                          nullptr, nullptr, 0));
    const auto status = PQresultStatus(r.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      error = source::pg_message(conn_.get());
      return nullptr;
    }
    return r;
  }

  source::PgHandle conn_;
};

}  // namespace

std::unique_ptr<Store> open_postgresql_store(const std::string& dsn, std::string& error) {
  source::PgHandle conn =
      source::open_postgresql(dsn, "mailconfd-acme", "-c statement_timeout=30000", error);
  if (!conn) return nullptr;
  return std::make_unique<Postgresql>(std::move(conn));
}

}  // namespace mailconfd::acme_store
