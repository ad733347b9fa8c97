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
# Usage: mariadb_source_test.sh MAILCONFD_BINARY. KEEP=1 keeps the directory.
set -euo pipefail

mailconfd=${1:?usage: mariadb_source_test.sh MAILCONFD_BINARY}
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
driver=mariadb
# db_require, db_create, start_db, stop_db, sql, db_dsn (shared with the other database tests)
source "$(dirname "$0")/database.sh"
db_require curl wrk openssl
T=$(mktemp -d /tmp/mailconfd-mariadb-XXXXXX)
chmod 755 "$T"
started=$(date +%s)
mailconfd_pid="" wrk_pids=()
db_log="$T/db.log"
# step, fail, expect, start_mailconfd, the HTTP and wrk helpers (shared with the other driver)
source "$(dirname "$0")/source_test_lib.sh"
cleanup() {
  for p in "${wrk_pids[@]}"; do kill "$p" 2>/dev/null; done
  [ -n "$mailconfd_pid" ] && kill "$mailconfd_pid" 2>/dev/null && wait "$mailconfd_pid" 2>/dev/null
  stop_db
  if [ -n "${KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

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
sql < "$source_dir/tests/fixtures/postfixadmin.mysql.sql"
sql < "$source_dir/deploy/database/mariadb.sql"
sql <<'SQL'
CREATE USER mailconfd@'127.0.0.1' IDENTIFIED BY 'dsn pass 5c1e';
GRANT SELECT ON mail.domain TO mailconfd@'127.0.0.1';
GRANT SELECT ON mail.mailbox TO mailconfd@'127.0.0.1';
GRANT SELECT ON mail.alias_domain TO mailconfd@'127.0.0.1';
GRANT SELECT ON mail.mailconfd_domain TO mailconfd@'127.0.0.1';
GRANT SELECT ON mail.mailconfd_mailbox TO mailconfd@'127.0.0.1';
GRANT SELECT ON mail.mailconfd_change TO mailconfd@'127.0.0.1';
GRANT SELECT ON mail.mailconfd_changed TO mailconfd@'127.0.0.1';
INSERT INTO domain (domain) VALUES ('customer.example'), ('pop.example'), ('own.example'),
  ('local.example');
INSERT INTO domain (domain, active) VALUES ('inactive.example', 0);
INSERT INTO mailbox (username, domain) VALUES ('alice@customer.example', 'customer.example'),
  ('bob@customer.example', 'customer.example'), ('carol@local.example', 'local.example');
INSERT INTO mailconfd_domain (domain, incoming) VALUES ('pop.example', 'pop3-only');
INSERT INTO mailconfd_domain (domain, imap_host, smtp_host)
  VALUES ('own.example', 'imap.own.example', 'smtp.own.example');
INSERT INTO mailconfd_domain (domain, login) VALUES ('local.example', 'local-part');
INSERT INTO mailconfd_mailbox VALUES ('alice@customer.example', 'web12p3');
-- an alias domain of the POP3-only domain, whose mailbox dave has a login name
INSERT INTO domain (domain) VALUES ('alias.example');
INSERT INTO alias_domain (alias_domain, target_domain) VALUES ('alias.example', 'pop.example');
INSERT INTO mailbox (username, local_part, domain) VALUES ('dave@pop.example', 'dave', 'pop.example');
INSERT INTO mailconfd_mailbox VALUES ('dave@pop.example', 'p123-4');
-- hostile rows
INSERT INTO domain (domain) VALUES ('port25.example'), ('plain.example'),
  ('<script>x</script>.example'), ('big.example'), ('markup.example');
INSERT INTO mailconfd_domain (domain, smtp_host) VALUES ('port25.example', 'smtp.evil.example:25');
INSERT INTO mailconfd_domain (domain, incoming) VALUES ('plain.example', 'plaintext');
INSERT INTO mailconfd_domain (domain, imap_host) VALUES ('big.example', REPEAT('a', 10240));
INSERT INTO mailbox (username, domain) VALUES ('eve@markup.example', 'markup.example');
INSERT INTO mailconfd_mailbox VALUES ('eve@markup.example', '<b>eve</b>');
SQL

# The password has blanks: quoted, as the DSN's format allows.
db_dsn mailconfd "dsn pass 5c1e" > "$T/dsn"
cat > "$T/mailconfd.xml" <<XML
<?xml version="1.0" encoding="utf-8"?>
<mailconfd>
  <provider id="mail.provider.example">
    <display-name>Provider Mail</display-name>
    <incoming protocol="imap" host="imap.provider.example" port="993" security="tls"/>
    <incoming protocol="pop3" host="pop.provider.example" port="995" security="tls"/>
    <outgoing host="smtp.provider.example" port="587" security="starttls"/>
    <domain>file.example</domain>
  </provider>
  <database driver="mariadb" dsn-file="dsn" snapshot="snapshot" poll="200ms"/>
</mailconfd>
XML


step "check reads the database and lists the skipped rows (exit 0: serve skips them too)"
set +e
"$mailconfd" check "$T/mailconfd.xml" >"$T/check.out" 2>"$T/check.err"
rc=$?
set -e
expect "check exit status" "$rc" 0
expect "check stdout" "$(cat "$T/check.out")" "$T/mailconfd.xml: ok (1 provider, 1 domains)
mariadb: 7 domains, 3 login names, 5 rows skipped"
expect "check stderr" "$(sort "$T/check.err")" "$(sort <<'E'
skipped domain '<script>x</script>.example': not a domain name
skipped domain 'plain.example': incoming 'plaintext' is not imap-first, pop3-first, imap-only or pop3-only
skipped domain 'port25.example': smtp_host 'smtp.evil.example:25' is not a host name (ports and security come from the configuration file)
skipped domain 'big.example': a value is longer than 255 bytes
skipped mailbox 'eve@markup.example': login name must be 1 to 255 letters, digits and . - _ + @ =
E
)"

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
start_mailconfd
doc=$(autoconfig 'alice%40customer.example')
expect "alice's autoconfig username" "$(grep -c '<username>web12p3</username>' <<<"$doc")" 3
doc=$(autoconfig 'bob%40customer.example')
expect "bob's autoconfig username" "$(grep -c '<username>bob@customer.example</username>' <<<"$doc")" 3
expect "alice's POX LoginName" "$(pox alice@customer.example | grep -o '<LoginName>[^<]*</LoginName>' | sort -u)" \
  "<LoginName>web12p3</LoginName>"
curl -sf "$base/mobileconfig?emailaddress=alice%40customer.example" > "$T/alice.mobileconfig"
expect "alice's profile usernames" \
  "$(grep -A1 -E 'IncomingMailServerUsername|OutgoingMailServerUsername' "$T/alice.mobileconfig" | grep -o '<string>[^<]*</string>' | sort -u)" \
  "<string>web12p3</string>"
doc=$(autoconfig 'x%40pop.example')
expect "POP3-only domain: incoming servers" "$(grep -o '<incomingServer type="[a-z0-9]*">' <<<"$doc" | tr '\n' ' ')" \
  '<incomingServer type="pop3"> '
doc=$(autoconfig 'x%40own.example')
expect "host override: hostnames" "$(grep -o '<hostname>[^<]*</hostname>' <<<"$doc" | tr '\n' ' ')" \
  '<hostname>imap.own.example</hostname> <hostname>pop.provider.example</hostname> <hostname>smtp.own.example</hostname> '
doc=$(autoconfig 'x%40alias.example')
expect "alias domain: its target's POP3-only" "$(grep -o '<incomingServer type="[a-z0-9]*">' <<<"$doc" | tr '\n' ' ')" \
  '<incomingServer type="pop3"> '
expect "alias domain: address login" "$(grep -c '<username>x@alias.example</username>' <<<"$doc")" 2
expect "alias domain: the target mailbox's login name" \
  "$(autoconfig 'dave%40alias.example' | grep -c '<username>p123-4</username>')" 2
expect "alias domain: POX LoginName" "$(pox dave@alias.example | grep -o '<LoginName>[^<]*</LoginName>' | sort -u)" \
  "<LoginName>p123-4</LoginName>"
doc=$(autoconfig 'carol%40local.example')
expect "local-part domain" "$(grep -c '<username>carol</username>' <<<"$doc")" 3
expect "the file's domain" "$(status '/mail/config-v1.1.xml?emailaddress=a%40file.example')" 200
for d in inactive.example ALL port25.example plain.example big.example; do
  expect "$d not served" "$(status "/mail/config-v1.1.xml?emailaddress=a%40$d")" 404
done
expect "markup.example served (its mailbox row alone skipped)" \
  "$(autoconfig 'eve%40markup.example' | grep -c '<username>eve@markup.example</username>')" 3
expect "skipped rows gauge" "$(metric mailconfd_source_rows_skipped)" 5
expect "skipped row named by key" \
  "$(metric 'mailconfd_source_row_skipped{table="domain",key="port25.example"}')" 1
expect "skipped mailbox named by key" \
  "$(metric 'mailconfd_source_row_skipped{table="mailbox",key="eve@markup.example"}')" 1
expect "logins gauge" "$(metric mailconfd_source_logins)" 3
grep -q "mariadb: skipped domain 'port25.example': smtp_host 'smtp.evil.example:25' is not a host name" \
  "$T/mailconfd.log" || fail "the skipped row is not logged"
[ -s "$T/snapshot" ] || fail "no snapshot written after the load"

step "polling the change marker (every 200 ms) under wrk load: a new domain, a changed login"
alice="$base/mail/config-v1.1.xml?emailaddress=alice%40customer.example"
loads=$(metric mailconfd_source_loads_total)
updates=$(metric mailconfd_source_updates_total)
wrk_start poll 6 "$alice"
sleep 0.5
sql "INSERT INTO domain (domain) VALUES ('new.example')"
ms1=$(wait_for "new domain served" served new.example)
sql "UPDATE mailconfd_mailbox SET login_name = 'web12p4' WHERE username = 'alice@customer.example'"
ms2=$(wait_for "changed login served" eval "autoconfig 'alice%40customer.example' | grep -q web12p4")
sql "INSERT INTO mailconfd_domain (domain, incoming) VALUES ('new.example', 'pop3-only')"
ms3=$(wait_for "new per-domain choice served" eval \
  "autoconfig 'x%40new.example' | grep -q '<incomingServer type=\"pop3\">' && ! autoconfig 'x%40new.example' | grep -q 'type=\"imap\"'")
sql "UPDATE alias_domain SET target_domain = 'own.example' WHERE alias_domain = 'alias.example'"
ms4=$(wait_for "alias domain retargeted" eval "autoconfig 'x%40alias.example' | grep -q imap.own.example")
echo "change to answer (after the committing client returned; poll 200 ms, test checks every 20 ms): $ms1 ms, $ms2 ms, $ms3 ms, $ms4 ms"
# Each change read only its domains' rows (the change log), none all rows.
wait_for "four updates counted" eval "[ \"\$(metric mailconfd_source_updates_total)\" = $((updates + 4)) ]" >/dev/null
expect "no full load for the changes" "$(metric mailconfd_source_loads_total)" "$loads"
expect "updates logged" "$(grep -c 'mariadb: 1 changed domains read (change log' "$T/mailconfd.log")" 4

step "changes read from the change log: a deleted domain, a row turned hostile and back"
sql "INSERT INTO domain (domain) VALUES ('brief.example')"
wait_for "brief.example served" served brief.example >/dev/null
sql "DELETE FROM domain WHERE domain = 'brief.example'"
wait_for "deleted domain gone" eval '! served brief.example' >/dev/null
# An alias domain follows a change of its target: own.example's override reaches alias.example.
sql "UPDATE mailconfd_domain SET smtp_host = 'smtp.evil.example:25' WHERE domain = 'own.example'"
wait_for "hostile change skipped" eval '! served own.example' >/dev/null
expect "its alias domain skipped with it" "$(status '/mail/config-v1.1.xml?emailaddress=a%40alias.example')" 404
grep -q "mariadb: skipped domain 'own.example': smtp_host 'smtp.evil.example:25' is not a host name" \
  "$T/mailconfd.log" || fail "the hostile change is not logged"
expect "skipped rows gauge with the hostile change" "$(metric mailconfd_source_rows_skipped)" 7
expect "the hostile change named by key" \
  "$(metric 'mailconfd_source_row_skipped{table="domain",key="own.example"}')" 1
expect "the row skipped before still named" \
  "$(metric 'mailconfd_source_row_skipped{table="mailbox",key="eve@markup.example"}')" 1
sql "UPDATE mailconfd_domain SET smtp_host = 'smtp.own.example' WHERE domain = 'own.example'"
wait_for "fixed row served again" served own.example >/dev/null
wait_for "its alias domain again" served alias.example >/dev/null
expect "skipped rows gauge after the fix" "$(metric mailconfd_source_rows_skipped)" 5
expect "the fixed row no longer named" \
  "$(metric 'mailconfd_source_row_skipped{table="domain",key="own.example"}')" ""
expect "no full load for any change" "$(metric mailconfd_source_loads_total)" "$loads"
expect "every change an update" "$(metric mailconfd_source_updates_total)" $((updates + 8))
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
reconnects=$(metric mailconfd_source_reconnects_total)
connect_failures=$(metric 'mailconfd_source_failures_total{kind="connect"}')
wrk_start kill 9 "$alice"
wrk_start readyz 9 "$base/readyz"
sleep 0.5
stop_db KILL 2>/dev/null  # no "Killed" line from the shell
wait_for "the lost connection counted" eval \
  "[ \"\$(metric 'mailconfd_source_failures_total{kind=\"connect\"}')\" -gt $connect_failures ]" >/dev/null
expect "readyz with the database down" "$(status /readyz)" 200
expect "answers with the database down" "$(autoconfig 'alice%40customer.example' | grep -c web12p4)" 3
# The change is made where mailconfd cannot see it (a socket only, no TCP) so that no poll
# can find it: only the full reload after the reconnect can.
start_db hidden
sql "UPDATE mailconfd_mailbox SET login_name = 'web12p5' WHERE username = 'alice@customer.example'"
stop_db
start_db
t0=$(now_ms)
wait_for "the reconnect counted" eval "[ \"\$(metric mailconfd_source_reconnects_total)\" -gt $reconnects ]" >/dev/null
wait_for "the row changed while down served" eval "autoconfig 'alice%40customer.example' | grep -q web12p5" >/dev/null
echo "database back to the changed row served: $(( $(now_ms) - t0 )) ms (reconnect backoff included)"
wrk_wait
wrk_check kill
wrk_check readyz
grep -q "mariadb: connected again; reloading" "$T/mailconfd.log" || fail "reconnect not logged"
expect "a full load after the reconnect" "$(metric mailconfd_source_loads_total)" $((loads + 1))
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
stop_db
start_mailconfd
expect "served from the snapshot" "$(autoconfig 'alice%40customer.example' | grep -c web12p6)" 3
expect "new.example from the snapshot" "$(status '/mail/config-v1.1.xml?emailaddress=a%40new.example')" 200
grep -q "serving the snapshot $T/snapshot of rows read at" "$T/mailconfd.log" ||
  fail "the snapshot start is not said in the log"
expect "readyz from the snapshot" "$(status /readyz)" 200
stop_mailconfd
"$mailconfd" check "$T/mailconfd.xml" >"$T/check-snapshot.out" 2>"$T/check-snapshot.err" ||
  fail "check with the database down and a snapshot: exit $?"
expect "check from the snapshot" "$(tail -n 1 "$T/check-snapshot.out")" \
  "snapshot $T/snapshot: 8 domains, 2 login names, 0 rows skipped"
subcommands_down_test snapshot web12p6 mariadb
rm "$T/snapshot"
set +e
"$mailconfd" check "$T/mailconfd.xml" >/dev/null 2>"$T/check-none.err"
rc=$?
"$mailconfd" serve --config "$T/mailconfd.xml" --listen 127.0.0.1:0 >"$T/ready" 2>"$T/refused.log"
rc_serve=$?
set -e
expect "check without database and snapshot" "$rc" 2
subcommands_down_test none - mariadb
expect "exit status without a snapshot" "$rc_serve" 2
grep -q "not starting: mariadb: Can't connect to server on '127.0.0.1' .*; and no snapshot to start from: cannot read $T/snapshot: No such file or directory" \
  "$T/refused.log" || fail "unclear refusal: $(cat "$T/refused.log")"
if grep -rqE 'dsn pass 5c1e|tls pass 9d2b' "$T"/*.log "$T"/*.out "$T"/*.err; then
  fail "the DSN's password appears in the output"
fi
step "ok"
