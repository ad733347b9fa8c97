#include "source/mariadb.h"

#include <doctest/doctest.h>

using namespace mailconfd;

TEST_CASE("the MariaDB DSN: key=value pairs, quoted values, escapes") {
  std::string error;
  auto pairs = source::parse_mariadb_dsn(
      "host=db.example  port=3307\tuser=mailconfd password='a b\\'c' dbname=post\\ fix", error);
  REQUIRE_MESSAGE(pairs, error);
  CHECK(*pairs == std::map<std::string, std::string>{{"host", "db.example"},
                                                     {"port", "3307"},
                                                     {"user", "mailconfd"},
                                                     {"password", "a b'c"},
                                                     {"dbname", "post fix"},
                                                     {"ssl-mode", "disabled"}});
  pairs = source::parse_mariadb_dsn("socket=/run/mysqld/mysqld.sock password=", error);
  REQUIRE_MESSAGE(pairs, error);
  CHECK(*pairs == std::map<std::string, std::string>{{"socket", "/run/mysqld/mysqld.sock"},
                                                     {"password", ""},
                                                     {"ssl-mode", "disabled"}});
  pairs = source::parse_mariadb_dsn("", error);
  REQUIRE(pairs);
  CHECK(*pairs == std::map<std::string, std::string>{{"ssl-mode", "disabled"}});
}

TEST_CASE("a bad MariaDB DSN is refused, naming the key, never the value") {
  std::string error;
  CHECK_FALSE(source::parse_mariadb_dsn("host=x secret-word", error));
  CHECK(error == "DSN: expected key=value at offset 7");
  CHECK_FALSE(source::parse_mariadb_dsn("user=x passwd=hunter2", error));
  CHECK(error ==
        "DSN: unknown key 'passwd' (host, port, socket, user, password, dbname, ssl-mode, "
        "ssl-ca, ssl-cert, ssl-key)");
  CHECK_FALSE(source::parse_mariadb_dsn("user=x password='hunter2", error));
  CHECK(error == "DSN: the quoted value of password has no closing quote");
  CHECK_FALSE(source::parse_mariadb_dsn("user=x user=y", error));
  CHECK(error == "DSN: user given twice");
  for (const char* port : {"port=0", "port=65536", "port=33o6", "port=", "port=123456"}) {
    CHECK_FALSE(source::parse_mariadb_dsn(port, error));
    CHECK(error == "DSN: port must be a number from 1 to 65535");
  }
  CHECK(source::parse_mariadb_dsn("port=65535", error));
}

TEST_CASE("connecting with a bad DSN fails before any connection, without the password") {
  std::string error;
  CHECK(source::connect_mariadb("password=hunter2 colour=blue", std::chrono::seconds(2), error) ==
        nullptr);
  CHECK(error ==
        "DSN: unknown key 'colour' (host, port, socket, user, password, dbname, ssl-mode, "
        "ssl-ca, ssl-cert, ssl-key)");
}

TEST_CASE("the MariaDB DSN's TLS options: ssl-mode, ssl-ca, a client certificate") {
  std::string error;
  auto pairs = source::parse_mariadb_dsn("host=db.example ssl-ca='/etc/ssl/db ca.pem'", error);
  REQUIRE_MESSAGE(pairs, error);
  CHECK(pairs->at("ssl-mode") == "verify-identity");  // a CA given means: check with it
  CHECK(pairs->at("ssl-ca") == "/etc/ssl/db ca.pem");
  pairs = source::parse_mariadb_dsn("host=db ssl-mode=required", error);
  REQUIRE_MESSAGE(pairs, error);
  CHECK(pairs->at("ssl-mode") == "required");
  pairs = source::parse_mariadb_dsn(
      "host=db ssl-mode=verify-identity ssl-cert=/c.pem ssl-key=/c.key", error);
  REQUIRE_MESSAGE(pairs, error);
  CHECK(pairs->at("ssl-cert") == "/c.pem");
  CHECK(pairs->at("ssl-key") == "/c.key");
  for (const char* mode : {"ssl-mode=VERIFY_IDENTITY", "ssl-mode=preferred", "ssl-mode="}) {
    CHECK_FALSE(source::parse_mariadb_dsn(mode, error));
    CHECK(error == "DSN: ssl-mode must be disabled, required or verify-identity");
  }
  CHECK_FALSE(source::parse_mariadb_dsn("ssl-cert=/c.pem", error));
  CHECK(error == "DSN: ssl-cert and ssl-key go together");
  CHECK_FALSE(source::parse_mariadb_dsn("ssl-mode=disabled ssl-ca=/ca.pem", error));
  CHECK(error == "DSN: ssl-ca, ssl-cert and ssl-key need ssl-mode required or verify-identity");
}
