#!/usr/bin/env bash
# End to end: the settings journal in the provider's database (<journal dsn-file>), shared by
# two real mailconfd processes, with a real PostgreSQL 15 or MariaDB 10.11 (Debian's) started
# here as an unprivileged user in a temporary directory. The journal writes as its own role
# (SELECT, INSERT, UPDATE, DELETE on the two journal tables of deploy/database/*.sql only); the
# source reads as the read-only one. Checks, each with exact answers:
#   1. replicas A and B answer fetches for the same mailbox (alice: 3 at A, then 2 at B a
#      second later) and for different ones (bob at A, carol at B): one row per mailbox, door
#      and client in the database, alice's count 5, first seen A's second, last seen B's;
#      addresses with a quote, braces and UTF-8 stored as they are (SQL and array quoting);
#   2. the cockpit of either replica shows the merged rows (its CSV lists bob and carol, the
#      /metrics gauge counts 6 mailboxes) and writes today's counts (with a scan report) into
#      the history table; a row past the retention is deleted at start (once: by one replica);
#   3. the database stopped during fetches: every request 200, the failure counted in
#      /metrics and logged once (never the DSN's password), the rows written after it is back
#      (dave's count exact), "writing … again" logged;
#   4. the database refusing the write (INSERT revoked): requests 200, counted, logged once,
#      the rows written once it is granted again;
#   5. the journal's role cannot write other tables; the source's role cannot write the journal.
# Usage: journal_database_test.sh postgresql|mariadb MAILCONFD_BINARY. KEEP=1 keeps the directory.
set -euo pipefail

driver=${1:?usage: journal_database_test.sh postgresql|mariadb MAILCONFD_BINARY}
mailconfd=${2:?usage: journal_database_test.sh postgresql|mariadb MAILCONFD_BINARY}
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
# db_require, db_create, start_db, stop_db, sql, sql_as, db_dsn (shared with the other
# database tests)
source "$(dirname "$0")/database.sh"
db_require curl
T=$(mktemp -d "/tmp/mailconfd-journal-$driver-XXXXXX")
chmod 755 "$T"
started=$(date +%s)
pids=() wrk_pids=() mailconfd_pid=""
db_log="$T/db.log"
source "$(dirname "$0")/source_test_lib.sh"
fail() {
  echo "FAIL: $*" >&2
  for f in "$T/a.log" "$T/b.log" "$db_log"; do
    [ -s "$f" ] && { echo "--- $f (last 30 lines)"; tail -n 30 "$f"; } >&2
  done
  exit 1
}

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  stop_db
  if [ -n "${KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

step "$driver in $T/db"
db_create
db_source_schema source-pass-1b
if [ "$driver" = postgresql ]; then
  sql <<'SQL'
CREATE ROLE mailconfd_journal LOGIN PASSWORD 'journal-pass-9d2e';
GRANT SELECT, INSERT, UPDATE, DELETE ON mailconfd_journal_fetch, mailconfd_journal_history
  TO mailconfd_journal;
SQL
else
  sql <<'SQL'
CREATE USER mailconfd_journal@'127.0.0.1' IDENTIFIED BY 'journal-pass-9d2e';
GRANT SELECT, INSERT, UPDATE, DELETE ON mail.mailconfd_journal_fetch TO mailconfd_journal@'127.0.0.1';
GRANT SELECT, INSERT, UPDATE, DELETE ON mail.mailconfd_journal_history TO mailconfd_journal@'127.0.0.1';
SQL
fi
db_dsn mailconfd source-pass-1b > "$T/dsn"
db_dsn mailconfd_journal journal-pass-9d2e > "$T/journal-dsn"
sql <<'SQL'
INSERT INTO domain (domain) VALUES ('customer.example');
INSERT INTO mailbox (username, domain) VALUES ('alice@customer.example', 'customer.example'),
  ('bob@customer.example', 'customer.example'), ('carol@customer.example', 'customer.example'),
  ('dave@customer.example', 'customer.example'), ('erin@customer.example', 'customer.example');
INSERT INTO mailconfd_journal_fetch VALUES ('old@customer.example', 'autoconfig', 'outlook', 1000, 1000, 2);
SQL
cat > "$T/scan.json" <<'JSON'
{"generated": "2026-12-02T06:00:00Z", "mailboxes": [
  {"address": "erin@customer.example", "domain": "customer.example", "provider": "mail.provider.example",
   "state": "at-risk", "confidence": "high", "first_seen": "2026-11-20T08:00:00Z",
   "last_seen": "2026-12-02T05:00:00Z", "ips": ["127.0.0.21"]}],
  "domains": [], "summary": {}}
JSON

step "the journal's role writes only the journal, the source's role not the journal"
echo "INSERT INTO domain (domain) VALUES ('evil.example');" | sql_as mailconfd_journal journal-pass-9d2e \
  >/dev/null 2>&1 && fail "the journal's role could write domain"
echo "INSERT INTO mailconfd_journal_fetch VALUES ('x@y', 'a', 'b', 1, 1, 1);" |
  sql_as mailconfd source-pass-1b >/dev/null 2>&1 && fail "the source's role could write the journal"

for name in a b; do
  cat > "$T/$name.xml" <<XML
<?xml version="1.0" encoding="utf-8"?>
<mailconfd>
  <server><metrics listen="127.0.0.1:0"/></server>
  <provider id="mail.provider.example">
    <display-name>Provider Mail</display-name>
    <incoming protocol="imap" host="imap.provider.example" port="993" security="tls"/>
    <outgoing host="smtp.provider.example" port="587" security="starttls"/>
    <domain>file.example</domain>
  </provider>
  <database driver="$driver" dsn-file="dsn"/>
  <journal dsn-file="journal-dsn"/>
  <cockpit report="scan.json"/>
</mailconfd>
XML
done
start() {  # start NAME: serves $T/NAME.xml; sets NAME_base and NAME_admin
  "$mailconfd" serve --config "$T/$1.xml" --listen 127.0.0.1:0 >"$T/$1.ready" 2>>"$T/$1.log" &
  pids+=($!)
  for ((i = 0; i < 100; i++)); do grep -qs '^listening on' "$T/$1.ready" && break; sleep 0.1; done
  local b m
  b=$(sed -n 's/^listening on \(http:[^ ]*\)$/\1/p' "$T/$1.ready")
  m=$(sed -n 's/^metrics on \(http:[^ ]*\)\/metrics$/\1/p' "$T/$1.ready")
  [ -n "$b" ] && [ -n "$m" ] || fail "mailconfd $1 did not start"
  eval "$1_base=$b $1_admin=$m"
}
start a
start b
gone() { [ "$(echo "SELECT count(*) FROM mailconfd_journal_fetch WHERE address LIKE 'old@%';" | sql)" = 0 ]; }
wait_for "the row past the retention deleted" gone >/dev/null
expect "its deletion logged by one replica" \
  "$(cat "$T/a.log" "$T/b.log" | grep -c 'journal: 1 fetch(es) past the retention period deleted')" 1
fetch() {  # fetch BASE LOCAL: Thunderbird's autoconfig for LOCAL@customer.example, must be 200
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -A 'Mozilla/5.0 Thunderbird/115.0' \
    "$1/mail/config-v1.1.xml?emailaddress=$2%40customer.example")
  [ "$code" = 200 ] || fail "fetch of $2 at $1: $code"
}
rows() {
  echo "SELECT address, door, client, first_seen, last_seen, fetches FROM mailconfd_journal_fetch
        ORDER BY address;" | sql
}
rows_match() { [ "$(rows | grep -c "$1")" = 1 ] && rows | grep -q "^$1"; }

step "1. A and B fetch for the same mailbox and for different ones"
a0=$(date +%s)
for _ in 1 2 3; do fetch "$a_base" alice; done
fetch "$a_base" bob
for local in o%27brien %7Ba%7D j%C3%BCrgen; do fetch "$a_base" "$local"; done
a1=$(date +%s)
sleep 1.2
b0=$(date +%s)
for _ in 1 2; do fetch "$b_base" alice; done
fetch "$b_base" carol
b1=$(date +%s)
wait_for "alice's 5 fetches in the database" rows_match 'alice@customer.example|autoconfig|thunderbird|[0-9]*|[0-9]*|5$' >/dev/null
wait_for "carol's row" rows_match 'carol@customer.example|autoconfig|thunderbird|' >/dev/null
alice=$(rows | grep '^alice')
IFS='|' read -r _ _ _ first last count <<<"$alice"
[ "$first" -ge "$a0" ] && [ "$first" -le "$a1" ] || fail "alice first_seen $first not A's ($a0..$a1)"
[ "$last" -ge "$b0" ] && [ "$last" -le "$b1" ] || fail "alice last_seen $last not B's ($b0..$b1)"
expect "alice's count" "$count" 5
alice_last=$last
IFS='|' read -r _ _ _ first last count <<<"$(rows | grep '^bob')"
[ "$first" = "$last" ] && [ "$first" -ge "$a0" ] && [ "$first" -le "$a1" ] || fail "bob: $first $last"
expect "bob's count" "$count" 1
expect "rows" "$(rows | cut -d'|' -f1-3,6)" "alice@customer.example|autoconfig|thunderbird|5
bob@customer.example|autoconfig|thunderbird|1
carol@customer.example|autoconfig|thunderbird|1
jürgen@customer.example|autoconfig|thunderbird|1
o'brien@customer.example|autoconfig|thunderbird|1
{a}@customer.example|autoconfig|thunderbird|1"

step "2. the cockpit of either replica shows the merged rows"
minute() { date -u -d "@$1" '+%Y-%m-%d %H:%M UTC'; }
unknown6() { [ "$(curl -sf "$1/metrics" | sed -n 's/^mailconfd_cutover_mailboxes{state="unknown"} //p')" = 6 ]; }
for name in a b; do
  admin=${name}_admin
  wait_for "cockpit $name: 6 mailboxes" unknown6 "${!admin}" >/dev/null
  csv=$(curl -sf "${!admin}/cockpit/contacts.csv" | tr -d '\r' | cut -d, -f1,4,9 | sort)
  expect "cockpit $name's CSV" "$csv" "$(sort <<E
address,state,fetched_settings
"alice@customer.example","unknown","$(minute "$alice_last")"
"bob@customer.example","unknown","$(minute "$first")"
"carol@customer.example","unknown","$(minute "$(rows | grep '^carol' | cut -d'|' -f5)")"
"jürgen@customer.example","unknown","$(minute "$(rows | grep '^j' | cut -d'|' -f5)")"
"o'brien@customer.example","unknown","$(minute "$(rows | grep '^o' | cut -d'|' -f5)")"
"{a}@customer.example","unknown","$(minute "$(rows | grep '^{' | cut -d'|' -f5)")"
"erin@customer.example","at-risk",""
E
)"
done

history() {
  [ "$(echo "SELECT day, at_risk, fetched, switched, ambiguous, broke, login_failing, unknown
             FROM mailconfd_journal_history;" | sql)" = "$(date -u +%F)|1|0|0|0|0|0|6" ]
}
wait_for "today's counts in the history table" history >/dev/null

step "3. the database stopped during fetches: requests 200, failure counted, rows after"
stop_db
for _ in 1 2 3 4; do fetch "$a_base" dave; done
failures() { [ "$(curl -sf "$a_admin/metrics" | sed -n 's/^mailconfd_journal_write_failures_total //p')" -ge 2 ]; }
wait_for "write failures counted" failures >/dev/null
for _ in 1 2 3; do fetch "$a_base" dave; done
expect "failure logged once" "$(grep -c "journal: cannot write the $driver database" "$T/a.log")" 1
start_db
wait_for "dave's 7 fetches after the restart" rows_match 'dave@customer.example|autoconfig|thunderbird|[0-9]*|[0-9]*|7$' >/dev/null
expect "written again, logged" "$(grep -c "journal: writing the $driver database again" "$T/a.log")" 1
step "4. the database refuses the write: requests 200, failure counted, rows after the GRANT"
if [ "$driver" = postgresql ]; then
  grantee=mailconfd_journal table=mailconfd_journal_fetch
else
  grantee="mailconfd_journal@'127.0.0.1'" table=mail.mailconfd_journal_fetch
fi
echo "REVOKE INSERT ON $table FROM $grantee;" | sql
for _ in 1 2; do fetch "$b_base" erin; done
b_failures() { [ "$(curl -sf "$b_admin/metrics" | sed -n 's/^mailconfd_journal_write_failures_total //p')" -ge 2 ]; }
wait_for "B's refused writes counted" b_failures >/dev/null
expect "refusal logged once" "$(grep -c "journal: cannot write the $driver database: .*denied" "$T/b.log")" 1
echo "GRANT INSERT ON $table TO $grantee;" | sql
wait_for "erin's 2 fetches after the GRANT" rows_match 'erin@customer.example|autoconfig|thunderbird|[0-9]*|[0-9]*|2$' >/dev/null
expect "B writing again, logged" "$(grep -c "journal: writing the $driver database again" "$T/b.log")" 1

# The source's role has the grants the schema's comment gives: it reads the change log.
grep -l 'change log not read' "$T/a.log" "$T/b.log" && fail "the source cannot read the change log"
grep -l 'journal-pass-9d2e\|source-pass-1b' "$T"/*.log "$T"/*.ready && fail "a password in a log"

echo "PASS: journal in $driver shared by two replicas ($(( $(date +%s) - started ))s)"
