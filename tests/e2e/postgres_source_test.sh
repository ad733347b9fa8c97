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
#   The steps but NOTIFY and the revoked change log are functions shared with
#   mariadb_source_test.sh (source_steps.sh), given the counts and rows that differ.
# Usage: postgres_source_test.sh MAILCONFD_BINARY. KEEP=1 keeps the directory.
set -euo pipefail

mailconfd=${1:?usage: postgres_source_test.sh MAILCONFD_BINARY}
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
driver=postgresql
# db_require, db_create, start_db, stop_db, sql, db_dsn (shared with the other database tests)
source "$(dirname "$0")/database.sh"
db_require curl wrk
# $T, the cleanup, source_test_lib.sh's helpers and the steps both drivers run
source "$(dirname "$0")/source_steps.sh"

step "PostgreSQL 15 in $T/db (unix socket only)"
db_create
db_source_schema dsn-pass-7f3a
{
  fixture_rows
  cat <<'SQL'
INSERT INTO domain (domain) VALUES ('Upper.Example');
-- a hostile row
INSERT INTO domain (domain) VALUES ('sap.example');
INSERT INTO mailconfd_domain (domain, login) VALUES ('sap.example', 'smtp-after-pop');
SQL
} | sql

db_dsn mailconfd dsn-pass-7f3a > "$T/dsn"
source_config

step "check reads the database and lists the skipped rows (exit 0: serve skips them too)"
check_step "8 domains, 3 login names, 6 rows skipped" \
  "skipped domain 'sap.example': login 'smtp-after-pop' is not address or local-part"

step "dns zone, dns check, probe, render and cutover scan see the database's domains"
subcommands_test 6 postgresql "alias.example. customer.example. file.example. local.example. markup.example. own.example. pop.example. upper.example. "

step "serve: the database's domains and login names"
serve_step 6 sap.example
# The page names the user name once per client's instructions.
page=$(curl -sf "$base/setup?emailaddress=alice%40customer.example&lang=en")
expect "alice's login on the setup page" "$(grep -o 'web12p3' <<<"$page" | wc -l)" 14
expect "upper-case row normalized" "$(status '/mail/config-v1.1.xml?emailaddress=a%40upper.example')" 200

step "LISTEN/NOTIFY under wrk load: a new domain, a changed login, a retargeted alias domain"
changes_under_load notify
echo "change to answer (after psql returned; the test checks every 20 ms): $changes_ms"
changes_counted 3

step "changes read from the change log: a deleted domain, a row turned hostile and back"
change_log_step 6 7
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
kill_step
expect "changed login after the reconnect" \
  "$(autoconfig 'alice%40customer.example' | grep -c '<username>web12p5</username>')" 3
updates=$(metric mailconfd_source_updates_total)
sql "INSERT INTO domain (domain) VALUES ('after.example')"
wait_for "NOTIFY after the reconnect" served after.example >/dev/null
expect "an update after the reconnect" "$(metric mailconfd_source_updates_total)" $((updates + 1))
stop_mailconfd

step "start with the database down: from the snapshot, then refused without one"
snapshot_step web12p5 after.example "10 domains, 2 login names, 0 rows skipped" ".*"
expect_no_password 'dsn-pass-7f3a'
step "ok"
