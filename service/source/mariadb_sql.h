// Small helpers over an open libmariadb connection (source::open_mariadb), for the stores that
// write to the provider's database (journal/mariadb_store.cpp, acme_store/mariadb_store.cpp):
// one copy of the quoting, the statement and the query loop, and MysqlSession that binds them
// to a connection.
#pragma once

#include <mysql.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "source/mariadb.h"

namespace mailconfd::source {

struct MysqlResultFree {
  void operator()(MYSQL_RES* r) const { mysql_free_result(r); }
};
using MysqlResult = std::unique_ptr<MYSQL_RES, MysqlResultFree>;

// Column i of a row; empty for NULL.
inline std::string mysql_text(MYSQL_ROW row, const unsigned long* lengths, int i) {
  return row[i] != nullptr ? std::string(row[i], lengths[i]) : std::string();
}

// Appends value as a string literal: quoted, escaped for the connection's character set.
inline void append_mysql_literal(MYSQL* mysql, std::string& sql, std::string_view value) {
  const std::size_t at = sql.size();
  sql.resize(at + 1 + value.size() * 2 + 1);
  sql[at] = '\'';
  const unsigned long n =
      mysql_real_escape_string(mysql, sql.data() + at + 1, value.data(), value.size());
  sql.resize(at + 1 + n);
  sql.push_back('\'');
}

// Runs one statement; false with the server's message in error.
inline bool mysql_command(MYSQL* mysql, std::string_view sql, std::string& error) {
  if (mysql_real_query(mysql, sql.data(), sql.size()) != 0) {
    error = mysql_error(mysql);
    return false;
  }
  return true;
}

// Runs a query and calls each(row, lengths) for every row; false with error when the query
// fails or its result does not have `columns` columns.
template <typename Each>
bool mysql_select(MYSQL* mysql, std::string_view sql, unsigned columns, const Each& each,
                  std::string& error) {
  if (!mysql_command(mysql, sql, error)) return false;
  MysqlResult result(mysql_store_result(mysql));
  if (!result) return error = mysql_error(mysql), false;
  if (mysql_num_fields(result.get()) != columns) return error = "unexpected columns", false;
  while (MYSQL_ROW row = mysql_fetch_row(result.get())) {
    each(row, mysql_fetch_lengths(result.get()));
  }
  return true;
}

// An open connection with the helpers above bound to it, for the stores to derive from.
class MysqlSession {
 protected:
  explicit MysqlSession(MysqlHandle handle) : handle_(std::move(handle)) {}

  static std::string text(MYSQL_ROW row, const unsigned long* lengths, int i) {
    return mysql_text(row, lengths, i);
  }
  void quoted(std::string& sql, std::string_view value) {
    append_mysql_literal(handle_.get(), sql, value);
  }
  template <typename Each>
  bool select(std::string_view sql, unsigned columns, const Each& each, std::string& error) {
    return mysql_select(handle_.get(), sql, columns, each, error);
  }
  bool command(std::string_view sql, std::string& error) {
    return mysql_command(handle_.get(), sql, error);
  }

  MysqlHandle handle_;
};

}  // namespace mailconfd::source
