#!/usr/bin/env bash
# End to end with a real MariaDB 10.11 (Debian's): the same source as postgres_source_test.sh
# through libmariadb, with changes found by polling the change marker the triggers of
# deploy/database/mariadb.sql bump. One mariadbd, started here as an unprivileged user (mysql
# when run as root) in a temporary directory, listening on 127.0.0.1 only; mailconfd logs in
# over TCP as a user with a password (no --skip-grant-tables). Checks, each with exact answers:
#   1. a web12p3 login reaching autoconfig <username>, POX <LoginName> and the Apple profile;
#      a POP3-only domain, a host override; an alias domain with its target's choices and
#      the target mailbox's login name; PostfixAdmin's ALL row and an inactive domain not
#      served;
#   2. hostile rows (a port in a host, plaintext, markup, a 10 KB value, a login with markup)
#      skipped: 404, named in the log, /metrics and `check`;
#   3. polling under wrk load: a new domain, a changed login, a new per-domain choice and a
#      retargeted alias domain answered without restart (change-to-answer measured), 0 failed
#      requests;
#   4. mariadbd killed with SIGKILL under wrk load: 0 failed requests, /readyz 200 throughout,
#      the reconnect counted, and a row changed while mailconfd could not reach the database
#      served after it reconnects (the full reload);
#   1a. TLS to the database (DSN ssl-mode, ssl-ca) as a user that REQUIRE SSL: verified
#      against the right CA; another CA refused with verify-identity and with required (ssl-ca checks the chain), required
#      without ssl-ca encrypts without a check;
#      without TLS refused by the server;
#   4a. SIGTERM while mariadbd is frozen (SIGSTOP) mid-poll: mailconfd exits 0 within 5 s
#      (the watcher's blocked read is cancelled, not left to its 30 s timeout);
#   5. start with the database down: from the snapshot (said in the log), and without a
#      snapshot a refusal with the reason (exit 2); the DSN's password never in any output;
#   6. dns zone, dns check, probe, render and cutover scan with the database's domains and
#      login names (source_test_lib.sh: subcommands_test), and with the database down from
#      the snapshot (with the warning) or, without one, exit 2 with the reason.
#   The steps but 1a, 4a and the SIGHUP are functions shared with postgres_source_test.sh
#   (source_steps.sh), given the counts and rows that differ.
# Usage: mariadb_source_test.sh MAILCONFD_BINARY. KEEP=1 keeps the directory.
set -euo pipefail

mailconfd=${1:?usage: mariadb_source_test.sh MAILCONFD_BINARY}
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
driver=mariadb
# db_require, db_create, start_db, stop_db, sql, db_dsn (shared with the other database tests)
source "$(dirname "$0")/database.sh"
db_require curl wrk openssl
# $T, the cleanup, source_test_lib.sh's helpers and the steps both drivers run
source "$(dirname "$0")/source_steps.sh"

# TLS for the connection (DSN ssl-mode, ssl-ca): a CA and a certificate for 127.0.0.1, and a
# second CA that did not sign it.
mkdir "$T/tls"
(
  cd "$T/tls"
  for ca in ca other-ca; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$ca.key" \
      -out "$ca.pem" -days 2 -subj "/CN=mailconfd test $ca" 2>/dev/null
  done
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key \
    -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:127.0.0.1\nbasicConstraints=CA:FALSE\n' > server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days 2 \
    -extfile server.ext -out server.pem 2>/dev/null
  chmod 644 server.key
) || fail "openssl: no test certificates"

db_mariadbd_args=(--ssl-ca="$T/tls/ca.pem" --ssl-cert="$T/tls/server.pem" --ssl-key="$T/tls/server.key")

step "MariaDB 10.11 in $T/db on 127.0.0.1"
db_create
db_source_schema 'dsn pass 5c1e'
fixture_rows | sql

# The password has blanks: quoted, as the DSN's format allows.
db_dsn mailconfd "dsn pass 5c1e" > "$T/dsn"
source_config 'poll="200ms"'

step "check reads the database and lists the skipped rows (exit 0: serve skips them too)"
check_step "7 domains, 3 login names, 5 rows skipped"

step "dns zone, dns check, probe, render and cutover scan see the database's domains"
subcommands_test 5 mariadb "alias.example. customer.example. file.example. local.example. markup.example. own.example. pop.example. "

step "TLS to the database: ssl-mode=verify-identity with ssl-ca, as a user that must use TLS"
sql "CREATE USER tls@'127.0.0.1' IDENTIFIED BY 'tls pass 9d2b' REQUIRE SSL;
  GRANT SELECT ON mail.* TO tls@'127.0.0.1'"
sed 's/dsn-file="dsn" snapshot="snapshot"/dsn-file="dsn-tls"/' "$T/mailconfd.xml" > "$T/tls.xml"
tls_check() {  # tls_check DSN_TAIL: check over $T/tls.xml with that DSN; $T/tls.out, $T/tls.err
  printf "host=127.0.0.1 port=%s user=tls password='tls pass 9d2b' dbname=mail %s\n" "$db_port" "$1" \
    > "$T/dsn-tls"
  set +e
  "$mailconfd" check "$T/tls.xml" >"$T/tls.out" 2>"$T/tls.err"
  rc=$?
  set -e
}
tls_check "ssl-ca=$T/tls/ca.pem"
expect "check over TLS (verify-identity: ssl-ca's default): exit" "$rc" 0
expect "check over TLS: the rows" "$(tail -n 1 "$T/tls.out")" \
  "mariadb: 7 domains, 3 login names, 5 rows skipped"
tls_check "ssl-mode=verify-identity ssl-ca=$T/tls/other-ca.pem"
expect "a certificate another CA signed: exit" "$rc" 2
grep -q "^mailconfd: mariadb: TLS/SSL error: self-signed certificate in certificate chain" "$T/tls.err" ||
  fail "a certificate another CA signed: $(cat "$T/tls.err")"
tls_check "ssl-mode=required"
expect "ssl-mode=required without ssl-ca does not check the certificate" "$rc" 0
tls_check "ssl-mode=required ssl-ca=$T/tls/other-ca.pem"
expect "ssl-mode=required with ssl-ca checks the chain: exit" "$rc" 2
grep -q "^mailconfd: mariadb: TLS/SSL error: self-signed certificate in certificate chain" "$T/tls.err" ||
  fail "ssl-mode=required with another CA: $(cat "$T/tls.err")"
tls_check "ssl-mode=disabled"
expect "without TLS for a user that must use it: exit" "$rc" 2
grep -q "^mailconfd: mariadb: Access denied for user 'tls'@'127.0.0.1'" "$T/tls.err" ||
  fail "without TLS: $(cat "$T/tls.err")"
tls_check "ssl-mode=verify-ca"
expect "an unknown ssl-mode: exit" "$rc" 2
expect "an unknown ssl-mode" "$(cat "$T/tls.err")" \
  "mailconfd: mariadb: DSN: ssl-mode must be disabled, required or verify-identity; no <database snapshot> is configured to start from"

step "serve: the database's domains and login names"
serve_step 5

step "polling the change marker (every 200 ms) under wrk load: a new domain, a changed login"
changes_under_load poll
# and a per-domain choice for the new domain
sql "INSERT INTO mailconfd_domain (domain, incoming) VALUES ('new.example', 'pop3-only')"
ms3=$(wait_for "new per-domain choice served" eval \
  "autoconfig 'x%40new.example' | grep -q '<incomingServer type=\"pop3\">' && ! autoconfig 'x%40new.example' | grep -q 'type=\"imap\"'")
changes_ms+=", $ms3 ms"
echo "change to answer (after the committing client returned; poll 200 ms, test checks every 20 ms): $changes_ms"
changes_counted 4

step "changes read from the change log: a deleted domain, a row turned hostile and back"
change_log_step 5 8
wrk_wait
wrk_check poll
expect "database changes are no configuration reloads" \
  "$(metric 'mailconfd_config_reloads_total{result="success"}') $(metric 'mailconfd_config_reloads_total{result="failure"}')" "0 0"
kill -HUP "$mailconfd_pid"
wait_for "SIGHUP counted as one reload" eval \
  "[ \"\$(metric 'mailconfd_config_reloads_total{result=\"success\"}')\" = 1 ]" >/dev/null
loads=$(metric mailconfd_source_loads_total)  # the SIGHUP read every row again
expect "changed login" "$(autoconfig 'alice%40customer.example' | grep -c '<username>web12p4</username>')" 3

step "mariadbd killed (SIGKILL) under wrk load; a row changed while mailconfd cannot reach it"
kill_step
updates=$(metric mailconfd_source_updates_total)
sql "UPDATE mailconfd_mailbox SET login_name = 'web12p6' WHERE username = 'alice@customer.example'"
wait_for "a change after the reconnect" eval "autoconfig 'alice%40customer.example' | grep -q web12p6" >/dev/null
expect "an update after the reconnect" "$(metric mailconfd_source_updates_total)" $((updates + 1))
step "SIGTERM while mariadbd does not answer (SIGSTOP): exit within 5 s, not the 30 s read timeout"
lost=$(grep -c "connection lost" "$T/mailconfd.log" || true)
kill -STOP "$db_pid"
sleep 0.6  # the next marker poll (every 200 ms) is sent and waits for an answer
t0=$(now_ms)
kill "$mailconfd_pid"
set +e
wait "$mailconfd_pid"
rc=$?
set -e
ms=$(( $(now_ms) - t0 ))
mailconfd_pid=""
kill -CONT "$db_pid"
echo "SIGTERM to exit with the database frozen: $ms ms"
expect "exit status after SIGTERM" "$rc" 0
[ "$ms" -lt 5000 ] || fail "shutdown took $ms ms with the database frozen (bound: 5 s)"
expect "the cancelled connection not logged as lost" \
  "$(grep -c "connection lost" "$T/mailconfd.log" || true)" "$lost"

step "start with the database down: from the snapshot, then refused without one"
snapshot_step web12p6 new.example "8 domains, 2 login names, 0 rows skipped" \
  "Can't connect to server on '127.0.0.1' .*"
expect_no_password 'dsn pass 5c1e|tls pass 9d2b'
step "ok"
