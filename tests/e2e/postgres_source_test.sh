#!/usr/bin/env bash
# End to end with a real PostgreSQL 15 (Debian's): domains, per-domain choices and per-mailbox
# login names read from PostfixAdmin's tables plus mailconfd's own (deploy/database/
# postgresql.sql), served by the real mailconfd binary over HTTP. One PostgreSQL for the whole
# file, started here as an unprivileged user (postgres when run as root) in a temporary
# directory, on a unix socket only. Checks, each with exact answers:
#   1. a web12p3 login reaching autoconfig <username>, POX <LoginName>, the Apple profile and
#      the setup page;
#      a POP3-only domain, a host override, a local-part domain; an alias domain with its
#      target's choices and the target mailbox's login name; PostfixAdmin's ALL row and
#      inactive domains not served;
#   2. hostile rows (a port in a host, plaintext, smtp-after-pop, markup, a 10 KB value, a
#      login with markup) skipped: 404, named in the log, /metrics and `check`;
#   3. LISTEN/NOTIFY under wrk load: a new domain, a changed login and a retargeted alias
#      domain answered without restart (change-to-answer measured), 0 failed requests;
#   4. PostgreSQL killed (SIGKILL, the postmaster and its processes) under wrk load: 0 failed
#      requests, /readyz 200 throughout, the failure and the reconnect counted, and a row
#      changed while mailconfd could not reach the database served after it reconnects (the
#      full reload); NOTIFY works again after;
#   5. start with the database down: from the snapshot (said in the log), and without a
#      snapshot a refusal with the reason (exit 2); the DSN's password never in any output;
#   6. dns zone, dns check, probe, render and cutover scan with the database's domains and
#      login names (source_test_lib.sh: subcommands_test), and with the database down from
#      the snapshot (with the warning) or, without one, exit 2 with the reason.
# Usage: postgres_source_test.sh MAILCONFD_BINARY. KEEP=1 keeps the directory.
set -euo pipefail

mailconfd=${1:?usage: postgres_source_test.sh MAILCONFD_BINARY}
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
driver=postgresql
# db_require, db_create, start_db, stop_db, sql, db_dsn (shared with the other database tests)
source "$(dirname "$0")/database.sh"
db_require curl wrk
T=$(mktemp -d /tmp/mailconfd-pg-XXXXXX)
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

step "PostgreSQL 15 in $T/db (unix socket only)"
db_create
sql < "$source_dir/deploy/container/database/postfixadmin.sql"
sql < "$source_dir/deploy/database/postgresql.sql"
sql <<'SQL'
CREATE ROLE mailconfd LOGIN PASSWORD 'dsn-pass-7f3a';
GRANT SELECT ON domain, alias_domain, mailbox, mailconfd_domain, mailconfd_mailbox,
  mailconfd_change, mailconfd_changed TO mailconfd;
INSERT INTO domain (domain) VALUES ('customer.example'), ('pop.example'), ('own.example'),
  ('local.example'), ('Upper.Example');
INSERT INTO domain (domain, active) VALUES ('inactive.example', false);
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
INSERT INTO domain (domain) VALUES ('port25.example'), ('plain.example'), ('sap.example'),
  ('<script>x</script>.example'), ('big.example'), ('markup.example');
INSERT INTO mailconfd_domain (domain, smtp_host) VALUES ('port25.example', 'smtp.evil.example:25');
INSERT INTO mailconfd_domain (domain, incoming) VALUES ('plain.example', 'plaintext');
INSERT INTO mailconfd_domain (domain, login) VALUES ('sap.example', 'smtp-after-pop');
INSERT INTO mailconfd_domain (domain, imap_host) VALUES ('big.example', repeat('a', 10240));
INSERT INTO mailbox (username, domain) VALUES ('eve@markup.example', 'markup.example');
INSERT INTO mailconfd_mailbox VALUES ('eve@markup.example', '<b>eve</b>');
SQL

db_dsn mailconfd dsn-pass-7f3a > "$T/dsn"
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
  <database driver="postgresql" dsn-file="dsn" snapshot="snapshot"/>
</mailconfd>
XML


step "check reads the database and lists the skipped rows (exit 0: serve skips them too)"
set +e
"$mailconfd" check "$T/mailconfd.xml" >"$T/check.out" 2>"$T/check.err"
rc=$?
set -e
expect "check exit status" "$rc" 0
expect "check stdout" "$(cat "$T/check.out")" "$T/mailconfd.xml: ok (1 provider, 1 domains)
postgresql: 8 domains, 3 login names, 6 rows skipped"
expect "check stderr" "$(sort "$T/check.err")" "$(sort <<'E'
skipped domain '<script>x</script>.example': not a domain name
skipped domain 'plain.example': incoming 'plaintext' is not imap-first, pop3-first, imap-only or pop3-only
skipped domain 'port25.example': smtp_host 'smtp.evil.example:25' is not a host name (ports and security come from the configuration file)
skipped domain 'sap.example': login 'smtp-after-pop' is not address or local-part
skipped domain 'big.example': a value is longer than 255 bytes
skipped mailbox 'eve@markup.example': login name must be 1 to 255 letters, digits and . - _ + @ =
E
)"

step "dns zone, dns check, probe, render and cutover scan see the database's domains"
subcommands_test 6 postgresql "alias.example. customer.example. file.example. local.example. markup.example. own.example. pop.example. upper.example. "

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
# The page names the user name once per client's instructions.
page=$(curl -sf "$base/setup?emailaddress=alice%40customer.example&lang=en")
expect "alice's login on the setup page" "$(grep -o 'web12p3' <<<"$page" | wc -l)" 14
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
expect "upper-case row normalized" "$(status '/mail/config-v1.1.xml?emailaddress=a%40upper.example')" 200
expect "the file's domain" "$(status '/mail/config-v1.1.xml?emailaddress=a%40file.example')" 200
for d in inactive.example ALL port25.example plain.example sap.example big.example; do
  expect "$d not served" "$(status "/mail/config-v1.1.xml?emailaddress=a%40$d")" 404
done
expect "markup.example served (its mailbox row alone skipped)" \
  "$(autoconfig 'eve%40markup.example' | grep -c '<username>eve@markup.example</username>')" 3
expect "skipped rows gauge" "$(metric mailconfd_source_rows_skipped)" 6
expect "skipped row named by key" \
  "$(metric 'mailconfd_source_row_skipped{table="domain",key="port25.example"}')" 1
expect "logins gauge" "$(metric mailconfd_source_logins)" 3
grep -q "postgresql: skipped domain 'port25.example': smtp_host 'smtp.evil.example:25' is not a host name" \
  "$T/mailconfd.log" || fail "the skipped row is not logged"
[ -s "$T/snapshot" ] || fail "no snapshot written after the load"

step "LISTEN/NOTIFY under wrk load: a new domain, a changed login, a retargeted alias domain"
alice="$base/mail/config-v1.1.xml?emailaddress=alice%40customer.example"
loads=$(metric mailconfd_source_loads_total)
updates=$(metric mailconfd_source_updates_total)
wrk_start notify 6 "$alice"
sleep 0.5
sql "INSERT INTO domain (domain) VALUES ('new.example')"
ms1=$(wait_for "new domain served" served new.example)
sql "UPDATE mailconfd_mailbox SET login_name = 'web12p4' WHERE username = 'alice@customer.example'"
ms2=$(wait_for "changed login served" eval "autoconfig 'alice%40customer.example' | grep -q web12p4")
sql "UPDATE alias_domain SET target_domain = 'own.example' WHERE alias_domain = 'alias.example'"
ms3=$(wait_for "alias domain retargeted" eval "autoconfig 'x%40alias.example' | grep -q imap.own.example")
echo "change to answer (after psql returned; the test checks every 20 ms): $ms1 ms, $ms2 ms, $ms3 ms"
# Each change read only its domains' rows (the change log), none all rows.
wait_for "three updates counted" eval "[ \"\$(metric mailconfd_source_updates_total)\" = $((updates + 3)) ]" >/dev/null
expect "no full load for the changes" "$(metric mailconfd_source_loads_total)" "$loads"
expect "updates logged" "$(grep -c 'postgresql: 1 changed domains read (change log' "$T/mailconfd.log")" 3

step "changes read from the change log: a deleted domain, a row turned hostile and back"
sql "INSERT INTO domain (domain) VALUES ('brief.example')"
wait_for "brief.example served" served brief.example >/dev/null
sql "DELETE FROM domain WHERE domain = 'brief.example'"
wait_for "deleted domain gone" eval '! served brief.example' >/dev/null
# An alias domain follows a change of its target: own.example's override reaches alias.example.
sql "UPDATE mailconfd_domain SET smtp_host = 'smtp.evil.example:25' WHERE domain = 'own.example'"
wait_for "hostile change skipped" eval '! served own.example' >/dev/null
expect "its alias domain skipped with it" "$(status '/mail/config-v1.1.xml?emailaddress=a%40alias.example')" 404
grep -q "postgresql: skipped domain 'own.example': smtp_host 'smtp.evil.example:25' is not a host name" \
  "$T/mailconfd.log" || fail "the hostile change is not logged"
expect "skipped rows gauge with the hostile change" "$(metric mailconfd_source_rows_skipped)" 8
expect "the hostile change named by key" \
  "$(metric 'mailconfd_source_row_skipped{table="domain",key="own.example"}')" 1
expect "the row skipped before still named" \
  "$(metric 'mailconfd_source_row_skipped{table="domain",key="port25.example"}')" 1
sql "UPDATE mailconfd_domain SET smtp_host = 'smtp.own.example' WHERE domain = 'own.example'"
wait_for "fixed row served again" served own.example >/dev/null
wait_for "its alias domain again" served alias.example >/dev/null
expect "skipped rows gauge after the fix" "$(metric mailconfd_source_rows_skipped)" 6
expect "the fixed row no longer named" \
  "$(metric 'mailconfd_source_row_skipped{table="domain",key="own.example"}')" ""
expect "no full load for any change" "$(metric mailconfd_source_loads_total)" "$loads"
expect "every change an update" "$(metric mailconfd_source_updates_total)" $((updates + 7))
# Without SELECT on the log every change reads every row, and says so.
sql "REVOKE SELECT ON mailconfd_changed FROM mailconfd"
sql "INSERT INTO domain (domain) VALUES ('revoked.example')"
wait_for "a change without the log served" served revoked.example >/dev/null
expect "a full load without the log" "$(metric mailconfd_source_loads_total)" $((loads + 1))
grep -q "postgresql: change log: .*permission denied for table mailconfd_changed; reading every row" \
  "$T/mailconfd.log" || fail "the unreadable change log is not logged"
sql "GRANT SELECT ON mailconfd_changed TO mailconfd"
sql "DELETE FROM domain WHERE domain = 'revoked.example'"
wait_for "deleted again" eval '! served revoked.example' >/dev/null
expect "a full load again (the part had no serial)" "$(metric mailconfd_source_loads_total)" $((loads + 2))
updates=$(metric mailconfd_source_updates_total)
sql "UPDATE mailconfd_mailbox SET login_name = 'web12p4' WHERE username = 'alice@customer.example'"
wait_for "the log used again" eval "[ \"\$(metric mailconfd_source_updates_total)\" = $((updates + 1)) ]" >/dev/null
expect "no full load with the log back" "$(metric mailconfd_source_loads_total)" $((loads + 2))
loads=$(metric mailconfd_source_loads_total)
wrk_wait
wrk_check notify
expect "changed login" "$(autoconfig 'alice%40customer.example' | grep -c '<username>web12p4</username>')" 3

step "PostgreSQL killed (SIGKILL) under wrk load; a row changed while mailconfd cannot reach it"
reconnects=$(metric mailconfd_source_reconnects_total)
connect_failures=$(metric 'mailconfd_source_failures_total{kind="connect"}')
wrk_start kill 9 "$alice"
wrk_start readyz 9 "$base/readyz"
sleep 0.5
# The postmaster and every process it started, as a crash or the OOM killer would.
stop_db KILL
wait_for "the lost connection counted" eval \
  "[ \"\$(metric 'mailconfd_source_failures_total{kind=\"connect\"}')\" -gt $connect_failures ]" >/dev/null
expect "readyz with the database down" "$(status /readyz)" 200
expect "answers with the database down" "$(autoconfig 'alice%40customer.example' | grep -c web12p4)" 3
# The change is made where mailconfd cannot see it (another socket directory) so that no
# NOTIFY can reach it: only the full reload after the reconnect can.
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
grep -q "postgresql: connected again; reloading" "$T/mailconfd.log" || fail "reconnect not logged"
expect "a full load after the reconnect" "$(metric mailconfd_source_loads_total)" $((loads + 1))
expect "changed login after the reconnect" \
  "$(autoconfig 'alice%40customer.example' | grep -c '<username>web12p5</username>')" 3
updates=$(metric mailconfd_source_updates_total)
sql "INSERT INTO domain (domain) VALUES ('after.example')"
wait_for "NOTIFY after the reconnect" served after.example >/dev/null
expect "an update after the reconnect" "$(metric mailconfd_source_updates_total)" $((updates + 1))
stop_mailconfd

step "start with the database down: from the snapshot, then refused without one"
stop_db
start_mailconfd
expect "served from the snapshot" "$(autoconfig 'alice%40customer.example' | grep -c web12p5)" 3
expect "after.example from the snapshot" "$(status '/mail/config-v1.1.xml?emailaddress=a%40after.example')" 200
grep -q "serving the snapshot $T/snapshot of rows read at" "$T/mailconfd.log" ||
  fail "the snapshot start is not said in the log"
stop_mailconfd
"$mailconfd" check "$T/mailconfd.xml" >"$T/check-snapshot.out" 2>"$T/check-snapshot.err" ||
  fail "check with the database down and a snapshot: exit $?"
expect "check from the snapshot" "$(tail -n 1 "$T/check-snapshot.out")" \
  "snapshot $T/snapshot: 10 domains, 2 login names, 0 rows skipped"
subcommands_down_test snapshot web12p5 postgresql
rm "$T/snapshot"
set +e
"$mailconfd" check "$T/mailconfd.xml" >/dev/null 2>"$T/check-none.err"
rc=$?
set -e
expect "check without database and snapshot" "$rc" 2
subcommands_down_test none - postgresql
set +e
"$mailconfd" serve --config "$T/mailconfd.xml" --listen 127.0.0.1:0 >"$T/ready" 2>"$T/refused.log"
rc=$?
set -e
expect "exit status without a snapshot" "$rc" 2
grep -q "not starting: postgresql: .*; and no snapshot to start from: cannot read $T/snapshot: No such file or directory" \
  "$T/refused.log" || fail "unclear refusal: $(cat "$T/refused.log")"
if grep -rq 'dsn-pass-7f3a' "$T"/*.log "$T"/*.out "$T"/*.err; then
  fail "the DSN's password appears in the output"
fi
step "ok"
