#!/usr/bin/env bash
# End to end: the built-in ACME client's storage in the provider's database (<acme dsn-file>),
# shared by two real mailconfd replicas, with a real PostgreSQL 15 or MariaDB 10.11 (Debian's,
# started here as an unprivileged user in a temporary directory), a real Pebble (the ACME test
# CA) behind tests/e2e/acme_proxy.py (which adds ARI's renewalInfo and answers the 429 of step
# 9) and a real NSD for Pebble's lookups. Replica A serves 127.0.0.1, replica B 127.0.0.2,
# both on the port Pebble validates http-01 on (and, from step 8, TLS on its tls-alpn-01
# port); NSD answers 127.0.0.1 for one.provider.example and 127.0.0.2 for every name of
# customer.example and alpn.example. The ACME role has rights on the mailconfd_acme_* tables
# only. Checks, each with exact answers:
#   1. A starts first and issues (the database's lock), B starts and does not; A's certificate
#      for one.provider.example (validated against A) reaches B through the database, and
#      both serve it by SNI with the same SHA-256 fingerprint; its key file on B is 0600;
#   2. on demand at the replica that does not issue, and a challenge answered by it: a
#      handshake at B for autoconfig.customer.example puts it in mailconfd_acme_request, A
#      takes it and orders it, Pebble validates against B (127.0.0.2), which answers from the
#      database; both then serve the same certificate and the request is gone; an unhosted
#      name at B writes no request, and a row for a name that is not wanted is not ordered;
#   3. A killed (SIGKILL): B takes over the lock, orders nothing for the names it has (it asks
#      the CA's renewalInfo for them and stores each answer), and issues
#      autodiscover.customer.example at its first handshake (validated against itself); the
#      challenge rows A left (one http-01, one tls-alpn-01) are deleted when B takes over;
#   4. A started again: it does not issue, loads all three certificates from the database and
#      serves them, with no new order; B stopped: A takes over and orders nothing
#      (Pebble's order count and both logs say so), and takes the renewalInfo answers B stored
#      (the same windows, not asked again), asking only about the certificate B issued;
#   5. the database stopped under the issuer: it stops issuing and serves on; when the database
#      is back it issues again, ordering nothing;
#   6. <acme key-file>: A restarted with it seals the plain rows it finds (the previous
#      release's) and the account key, so no key column holds "PRIVATE KEY"; a new replica C
#      with the same key and an empty storage opens them (the same keys on disk, the same
#      certificates served, and the account key when it takes over); B with another key logs
#      each row it cannot open and serves on from its disk; a key-file that is readable by
#      others or not 64 hexadecimal digits is a configuration error naming FILE:LINE;
#   8. tls-alpn-01 with two replicas: A issues with challenge="tls-alpn-01"; a handshake at B for
#      autoconfig.alpn.example is handed to A, which writes the challenge's digest to
#      mailconfd_acme_alpn_challenge; Pebble validates on B's TLS listener (127.0.0.2), which
#      answers ALPN acme-tls/1 from that row (no http-01 request anywhere); both then serve the
#      certificate and the row is gone;
#   9. a hold survives the issuer: A's newOrder gets 429 with Retry-After: 15; the hold is
#      stored; A killed (SIGKILL); B takes over, logs the hold and sends no newOrder before it
#      ends, then issues the name a handshake asked for; the renewalInfo answers are not asked
#      again by any later issuer;
#  10. a name's wait after its failed order survives the issuer: B's order for a hosted name
#      Pebble cannot validate (no DNS) fails, the 300 s wait is stored; B stopped, A takes
#      over, logs the wait and sends no order for that name at its handshake; a wait over
#      for two days is deleted;
#   7. no password and no private key in any log; the account key is the database's on A.
# Usage: acme_database_test.sh postgresql|mariadb MAILCONFD_BINARY. KEEP=1 keeps the directory.
set -euo pipefail

driver=${1:?usage: acme_database_test.sh postgresql|mariadb MAILCONFD_BINARY}
mailconfd=${2:?usage: acme_database_test.sh postgresql|mariadb MAILCONFD_BINARY}
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
# db_require, db_create, start_db, stop_db, sql, sql_as, db_dsn (shared with the other
# database tests)
source "$(dirname "$0")/database.sh"
db_require curl openssl pebble nsd python3
T=$(mktemp -d "/tmp/mailconfd-acmedb-$driver-XXXXXX")
chmod 755 "$T"
started=$(date +%s)
pids=() wrk_pids=() mailconfd_pid="" a_pid="" b_pid=""
db_log="$T/db.log"
source "$(dirname "$0")/source_test_lib.sh"
fail() {
  echo "FAIL: $*" >&2
  for f in "$T/a.log" "$T/b.log" "$T/pebble.log" "$db_log"; do
    [ -s "$f" ] && { echo "--- $f (last 30 lines)"; tail -n 30 "$f"; } >&2
  done
  exit 1
}
cleanup() {
  # Pebble exits 143 on SIGTERM: not a failure of the test.
  for p in "${pids[@]}"; do { kill "$p" && wait "$p"; } 2>/dev/null || true; done
  stop_db
  if [ -n "${KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

step "$driver in $T/db"
db_create
db_source_schema source-pass-1b
# The ACME role's grants deploy/database/DRIVER.sql's comment gives.
if [ "$driver" = postgresql ]; then
  sql <<'SQL'
CREATE ROLE mailconfd_acme LOGIN PASSWORD 'acme-pass-7c41';
GRANT SELECT, INSERT, UPDATE, DELETE ON mailconfd_acme_account,
  mailconfd_acme_certificate, mailconfd_acme_challenge, mailconfd_acme_alpn_challenge,
  mailconfd_acme_hold, mailconfd_acme_renewal, mailconfd_acme_backoff TO mailconfd_acme;
GRANT SELECT, INSERT, DELETE ON mailconfd_acme_request TO mailconfd_acme;
GRANT USAGE ON SEQUENCE mailconfd_acme_version TO mailconfd_acme;
SQL
else
  sql <<'SQL'
CREATE USER mailconfd_acme@'127.0.0.1' IDENTIFIED BY 'acme-pass-7c41';
GRANT SELECT, INSERT, UPDATE, DELETE ON mail.mailconfd_acme_account TO mailconfd_acme@'127.0.0.1';
GRANT SELECT, INSERT, UPDATE, DELETE ON mail.mailconfd_acme_certificate TO mailconfd_acme@'127.0.0.1';
GRANT SELECT, INSERT, UPDATE, DELETE ON mail.mailconfd_acme_challenge TO mailconfd_acme@'127.0.0.1';
GRANT SELECT, INSERT, UPDATE, DELETE ON mail.mailconfd_acme_alpn_challenge TO mailconfd_acme@'127.0.0.1';
GRANT SELECT, INSERT, UPDATE, DELETE ON mail.mailconfd_acme_hold TO mailconfd_acme@'127.0.0.1';
GRANT SELECT, INSERT, UPDATE, DELETE ON mail.mailconfd_acme_renewal TO mailconfd_acme@'127.0.0.1';
GRANT SELECT, INSERT, UPDATE, DELETE ON mail.mailconfd_acme_backoff TO mailconfd_acme@'127.0.0.1';
GRANT SELECT, INSERT, DELETE ON mail.mailconfd_acme_request TO mailconfd_acme@'127.0.0.1';
GRANT SELECT, INSERT ON mail.mailconfd_acme_version TO mailconfd_acme@'127.0.0.1';
SQL
fi
db_dsn mailconfd source-pass-1b > "$T/dsn"
db_dsn mailconfd_acme acme-pass-7c41 > "$T/acme-dsn"
sql <<'SQL'
INSERT INTO domain (domain) VALUES ('customer.example');
INSERT INTO domain (domain) VALUES ('alpn.example');
INSERT INTO domain (domain) VALUES ('nodns.example');
SQL
echo "INSERT INTO domain (domain) VALUES ('evil.example');" | sql_as mailconfd_acme acme-pass-7c41 \
  >/dev/null 2>&1 && fail "the ACME role could write domain"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
http_port=$(free_port)
step "NSD and Pebble (http-01 on port $http_port)"
dns_port=$(free_port)
mkdir "$T/nsd"
cat > "$T/nsd/nsd.conf" <<NSD
server:
  ip-address: 127.0.0.1@$dns_port
  port: $dns_port
  do-ip6: no
  username: ""
  chroot: ""
  zonesdir: "$T/nsd"
  database: ""
  zonelistfile: "$T/nsd/zone.list"
  xfrdfile: "$T/nsd/xfrd.state"
  xfrdir: "$T/nsd"
  pidfile: "$T/nsd/nsd.pid"
  logfile: "$T/nsd/nsd.log"
  server-count: 1
remote-control:
  control-enable: no
zone:
  name: provider.example
  zonefile: "$T/nsd/provider.example.db"
zone:
  name: customer.example
  zonefile: "$T/nsd/customer.example.db"
zone:
  name: alpn.example
  zonefile: "$T/nsd/alpn.example.db"
NSD
for zone in provider.example:127.0.0.1 customer.example:127.0.0.2 alpn.example:127.0.0.2; do
  name=${zone%%:*} address=${zone#*:}
  printf '$ORIGIN %s.\n$TTL 60\n@ IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 60\n@ IN NS ns.%s.\n@ IN A %s\n* IN A %s\n' \
    "$name" "$name" "$name" "$name" "$address" "$address" > "$T/nsd/$name.db"
done
nsd -d -c "$T/nsd/nsd.conf" >"$T/nsd/nsd.out" 2>&1 &
pids+=($!)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$T/pebble.key" -out "$T/pebble.pem" \
  2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=default.test \
  -keyout "$T/default.key" -out "$T/default.pem" 2>/dev/null
pebble_port=$(free_port)
tls_port=$(free_port)  # where Pebble validates tls-alpn-01 (both replicas' TLS port from step 8)
cat > "$T/pebble.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:$pebble_port", "managementListenAddress": "127.0.0.1:$(free_port)",
 "certificate": "$T/pebble.pem", "privateKey": "$T/pebble.key", "httpPort": $http_port,
 "tlsPort": $tls_port, "ocspResponderURL": "", "externalAccountBindingRequired": false}}
JSON
PEBBLE_VA_NOSLEEP=1 pebble -config "$T/pebble.json" -dnsserver "127.0.0.1:$dns_port" \
  >"$T/pebble.log" 2>&1 &
pids+=($!)
pebble_up() { curl -sf --cacert "$T/pebble.pem" "https://127.0.0.1:$pebble_port/dir" >/dev/null; }
wait_for "Pebble answers" pebble_up >/dev/null
# Orders Pebble created (a POST to newOrder may be repeated after a badNonce: not an order).
orders() { grep -c '^Pebble .* Added order "[^"]*" to the db$' "$T/pebble.log" || true; }
# The proxy in front of Pebble: ARI from the start, a window 20 to 21 days ahead (so nothing
# is due), asked again after 6 hours.
window_start=$(date -u -d '+20 days' +%Y-%m-%dT%H:%M:%SZ)
window_end=$(date -u -d '+21 days' +%Y-%m-%dT%H:%M:%SZ)
ari_rules="\"renewal_info\": {\"start\": \"$window_start\", \"end\": \"$window_end\", \"retry_after\": 21600}"
echo "{$ari_rules}" > "$T/proxy-rules.json"
python3 "$source_dir/tests/e2e/acme_proxy.py" "$pebble_port" "$T/pebble.pem" "$T/pebble.key" \
  "$T/pebble.pem" "$T/proxy-rules.json" "$T/proxy.log" "$T/proxy.port" 2>"$T/proxy.err" &
pids+=($!)
wait_for "the proxy listens" test -s "$T/proxy.port" >/dev/null
proxy_port=$(cat "$T/proxy.port")
: >> "$T/proxy.log"
# proxied ENDPOINT [STATUS]: requests the proxy logged for ENDPOINT (with STATUS).
proxied() { awk -F '\t' -v e="$1" -v s="${2:-}" '$2 == e && (s == "" || $3 == s)' "$T/proxy.log" | wc -l; }

for name in a b; do
  cat > "$T/$name.xml" <<XML
<?xml version="1.0" encoding="utf-8"?>
<mailconfd>
  <server><tls certificate="default.pem" key="default.key"/></server>
  <provider id="mail.provider.example">
    <display-name>Provider Mail</display-name>
    <incoming protocol="imap" host="imap.provider.example" port="993" security="tls"/>
    <outgoing host="smtp.provider.example" port="587" security="starttls"/>
    <domain>file.example</domain>
  </provider>
  <database driver="$driver" dsn-file="dsn"/>
  <acme ca="https://127.0.0.1:$proxy_port/dir" ca-certificate="pebble.pem" storage="acme-$name"
        dsn-file="acme-dsn" names="one.provider.example" hosted-names="autoconfig autodiscover"
        on-demand="yes"/>
</mailconfd>
XML
done
# tls-alpn-01 with dsn-file is answered by every replica (step 8): no configuration error.
sed 's/dsn-file="acme-dsn"/dsn-file="acme-dsn" challenge="tls-alpn-01"/' "$T/a.xml" > "$T/alpn.xml"
run alpn check "$T/alpn.xml"
expect "tls-alpn-01 with dsn-file: exit" "$rc" 0
# Configuration errors name the file and line.
grep -v '<database ' "$T/a.xml" > "$T/nodb.xml"
run nodb check "$T/nodb.xml"
expect "dsn-file without <database>: exit" "$rc" 2
grep -q "^$T/nodb.xml:10:3: <acme> dsn-file needs <database>" "$T/nodb.err" ||
  fail "dsn-file without <database>: $(cat "$T/nodb.err")"
start() {  # start NAME ADDRESS [TLS_PORT]: serves $T/NAME.xml on ADDRESS; sets NAME_pid, NAME_tls
  : > "$T/$1.ready"
  "$mailconfd" serve --config "$T/$1.xml" --listen "$2:$http_port" --tls-listen "$2:${3:-0}" \
    >"$T/$1.ready" 2>>"$T/$1.log" &
  pids+=($!)
  eval "$1_pid=$!"
  for ((i = 0; i < 100; i++)); do grep -qs '^listening on https' "$T/$1.ready" && break; sleep 0.1; done
  local t
  t=$(sed -n 's/^listening on https:\/\/\([^ ]*\)$/\1/p' "$T/$1.ready")
  [ -n "$t" ] || fail "mailconfd $1 did not start"
  eval "$1_tls=$t"
}
# fingerprint ADDRESS:PORT NAME: the SHA-256 fingerprint of the certificate served for NAME.
fingerprint() {
  openssl s_client -connect "$1" -servername "$2" </dev/null 2>/dev/null |
    openssl x509 -noout -fingerprint -sha256 2>/dev/null | cut -d= -f2
}
issuer_of() {
  openssl s_client -connect "$1" -servername "$2" </dev/null 2>/dev/null |
    openssl x509 -noout -issuer 2>/dev/null
}
from_pebble() { issuer_of "$1" "$2" | grep -q 'Pebble Intermediate'; }
logged() { grep -q "$2" "$T/$1.log"; }
stored() {
  [ "$(echo "SELECT count(*) FROM mailconfd_acme_certificate WHERE name = '$1';" | sql)" = 1 ]
}
# sql_text: one text value as it is (MariaDB's batch mode escapes newlines unless --raw).
sql_text() {
  if [ "$driver" = postgresql ]; then sql; else
    "${db_admin[@]}" --raw
  fi
}
stored_pem() { echo "SELECT certificate_pem FROM mailconfd_acme_certificate WHERE name = '$1';" | sql_text; }

step "1. A issues, B does not; both serve A's certificate"
start a 127.0.0.1
wait_for "A holds the lock" logged a 'acme: this replica issues' >/dev/null
start b 127.0.0.2
wait_for "B sees another issuer" logged b 'acme: another replica issues' >/dev/null
wait_for "one.provider.example in the database" stored one.provider.example >/dev/null
wait_for "B serves one.provider.example from Pebble" from_pebble "$b_tls" one.provider.example >/dev/null
fa=$(fingerprint "$a_tls" one.provider.example)
fb=$(fingerprint "$b_tls" one.provider.example)
[ -n "$fa" ] || fail "no fingerprint from A"
expect "A and B serve the same certificate for one.provider.example" "$fb" "$fa"
expect "the stored certificate is the one served" \
  "$(stored_pem one.provider.example | openssl x509 -noout -fingerprint -sha256 | cut -d= -f2)" "$fa"
expect "B's copy of the key" "$(stat -c %a "$T/acme-b/certificates/one.provider.example.key")" 600
expect "B's copy of the certificate" "$(stat -c %a "$T/acme-b/certificates/one.provider.example.pem")" 600
expect "the default for an unhosted name" "$(issuer_of "$b_tls" www.unhosted.example)" "issuer=CN = default.test"
expect "orders so far" "$(orders)" 1
logged b 'acme: issued' && fail "B issued"
# metric ADDRESS NAME: one value of mailconfd's /metrics (on its plain listener).
metric() {
  curl -sf "http://$1:$http_port/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}
on_demand() { metric "$1" "mailconfd_acme_on_demand_total{result=\"$2\"}"; }
requests() { echo 'SELECT count(*) FROM mailconfd_acme_request;' | sql; }
# The guard comes before anything is written: refused at the handshake, nothing forwarded.
expect "B refused the unhosted name" "$(on_demand 127.0.0.2 refused)" 1
expect "B forwarded nothing" "$(on_demand 127.0.0.2 forwarded)" 0
sleep 1  # two poll intervals of B's thread
expect "no request row for the unhosted name" "$(requests)" 0

step "2. on demand at B: A orders autoconfig.customer.example; Pebble validates against B"
known_before=$(on_demand 127.0.0.2 known)  # handshakes for one.provider.example before B had it
issuer_of "$b_tls" autoconfig.customer.example >/dev/null  # the first handshake: the default
issuer_of "$b_tls" autoconfig.customer.example >/dev/null  # again, before A can have issued it
expect "B forwarded the name once" "$(on_demand 127.0.0.2 forwarded)" 1
expect "B: the second handshake found it forwarded" "$(on_demand 127.0.0.2 known)" \
  $((known_before + 1))
wait_for "B wrote the request" \
  logged b 'acme: asked the issuing replica for autoconfig.customer.example (on demand)' >/dev/null
wait_for "A took it" \
  logged a 'acme: autoconfig.customer.example asked for by another replica (on demand): queued' \
  >/dev/null
wait_for "autoconfig.customer.example in the database" stored autoconfig.customer.example >/dev/null
wait_for "B serves autoconfig.customer.example" from_pebble "$b_tls" autoconfig.customer.example >/dev/null
wait_for "A serves autoconfig.customer.example" from_pebble "$a_tls" autoconfig.customer.example >/dev/null
expect "A and B serve the same certificate for autoconfig.customer.example" \
  "$(fingerprint "$b_tls" autoconfig.customer.example)" "$(fingerprint "$a_tls" autoconfig.customer.example)"
expect "B serves the stored certificate for autoconfig.customer.example" \
  "$(fingerprint "$b_tls" autoconfig.customer.example)" \
  "$(stored_pem autoconfig.customer.example | openssl x509 -noout -fingerprint -sha256 | cut -d= -f2)"
expect "orders so far" "$(orders)" 2
challenges() { grep -c 'GET /.well-known/acme-challenge/[A-Za-z0-9_-]* 200 ' "$T/$1.log" || true; }
# Pebble asks three times per challenge (its multi-perspective validation).
expect "challenge answers by A (one.provider.example)" "$(challenges a)" 3
expect "challenge answers by B (autoconfig.customer.example, from the database)" "$(challenges b)" 3
# Only B listens on 127.0.0.2, where NSD sends Pebble for customer.example.
expect "A's orders, each logged" "$(grep -c 'acme: issued a certificate for' "$T/a.log")" 2
logged b 'acme: issued' && fail "B issued"
expect "no challenge left in the database" "$(echo 'SELECT count(*) FROM mailconfd_acme_challenge;' | sql)" 0
expect "no request left in the database" "$(requests)" 0
expect "A queued it once" "$(on_demand 127.0.0.1 queued)" 1
# A row for a name that is not wanted (not written by a replica): the issuer checks it again.
echo "INSERT INTO mailconfd_acme_request (name) VALUES ('www.customer.example');" | sql
wait_for "A refuses a requested name that is not wanted" \
  logged a 'acme: a name asked for through the database is not a wanted name: not ordered' >/dev/null
wait_for "and deletes the row" eval '[ "$(requests)" = 0 ]' >/dev/null
expect "A's refusals" "$(on_demand 127.0.0.1 refused)" 1
expect "orders after the unwanted request" "$(orders)" 2

step "3. A killed: B takes over"
# Challenge rows of an order A does not live to finish: the next issuer deletes them.
sql <<'SQL'
INSERT INTO mailconfd_acme_challenge (token, answer) VALUES ('left-by-a', 'left-by-a.thumbprint');
INSERT INTO mailconfd_acme_alpn_challenge (name, digest)
  VALUES ('left.customer.example', 'ab8f1cbd6e7f4c2e0a9b3d5c7e1f2a4b6c8d0e2f4a6b8c0d2e4f6a8b0c2d4e6f');
SQL
kill -KILL "$a_pid"
wait "$a_pid" 2>/dev/null || true
t0=$(now_ms)
wait_for "B issues" logged b 'acme: this replica issues' >/dev/null
echo "B took over in $(( $(now_ms) - t0 )) ms"
logged b 'acme: deleted 1 http-01 and 1 tls-alpn-01 challenge(s) a previous issuer left' ||
  fail "B did not delete the challenges A left"
expect "challenge rows after the takeover" "$(echo 'SELECT (SELECT count(*) FROM mailconfd_acme_challenge) + (SELECT count(*) FROM mailconfd_acme_alpn_challenge);' | sql)" 0
wait_for "B's walk" logged b 'acme: 0 issued, 0 failed, 2 current of 2 names' >/dev/null
expect "orders after the takeover" "$(orders)" 2
# ARI: A asked nothing (its one walk came before any certificate); B asked about both.
expect "renewalInfo asked by B" "$(proxied renewalInfo 200)" 2
renewals() {  # name|cert_id|start|end per row, by name
  echo 'SELECT name, cert_id, window_start, window_end FROM mailconfd_acme_renewal ORDER BY name;' | sql
}
start_s=$(date -u -d "$window_start" +%s) end_s=$(date -u -d "$window_end" +%s)
for name in autoconfig.customer.example one.provider.example; do
  logged b "acme: renewal info for $name: window $window_start to $window_end; renewing at .*, asking again in 21600s" ||
    fail "B did not log the renewal info for $name"
done
# The stored rows: the window the proxy answered, for the certIDs it was asked about.
expect "renewal rows" "$(renewals | cut -d'|' -f1,3,4)" \
  "$(printf 'autoconfig.customer.example|%s|%s\none.provider.example|%s|%s' "$start_s" "$end_s" "$start_s" "$end_s")"
expect "renewal rows' certIDs" "$(renewals | cut -d'|' -f2 | sort)" \
  "$(awk -F '\t' '$2 == "renewalInfo" { print $5 }' "$T/proxy.log" | sort)"
issuer_of "$b_tls" autodiscover.customer.example >/dev/null
wait_for "B issues autodiscover.customer.example" stored autodiscover.customer.example >/dev/null
wait_for "B serves it" from_pebble "$b_tls" autodiscover.customer.example >/dev/null
expect "orders" "$(orders)" 3

step "4. A again: loads everything, issues nothing; B stopped: A takes over, orders nothing"
start a 127.0.0.1
wait_for "A sees another issuer" logged a 'acme: another replica issues' >/dev/null
wait_for "A serves autodiscover.customer.example" from_pebble "$a_tls" autodiscover.customer.example >/dev/null
for name in one.provider.example autoconfig.customer.example autodiscover.customer.example; do
  expect "A and B serve the same certificate for $name" "$(fingerprint "$a_tls" "$name")" \
    "$(fingerprint "$b_tls" "$name")"
done
echo "INSERT INTO mailconfd_acme_certificate VALUES ('../evil', 'x', 'y', 1000);" | sql
wait_for "a stored name that is not a DNS name skipped" \
  logged a 'acme: the database.s certificate for a name that is not a DNS name: skipped' >/dev/null
[ -e "$T/acme-a/evil.pem" ] && fail "a file written outside certificates/"
# Its version (1000) is above the sequence: the row stays, and every later certificate is
# written above it, so replicas that saw it still load them (step 8: B, started after it,
# serves the certificate A issues then).
kill "$b_pid"
wait "$b_pid" 2>/dev/null || true
wait_for "A issues again" eval '[ "$(grep -c "acme: this replica issues" "$T/a.log")" = 2 ]' >/dev/null
wait_for "A's walk" logged a 'acme: 0 issued, 0 failed, 3 current of 3 names' >/dev/null
expect "orders in all" "$(orders)" 3
# ARI after the failover: B's answers read back, not asked again; only B's new certificate.
for name in autoconfig.customer.example one.provider.example; do
  logged a "acme: renewal info for $name remembered: window $window_start to $window_end; renewing at " ||
    fail "A did not take B's renewal info for $name"
done
expect "renewalInfo asked after A took over" "$(proxied renewalInfo 200)" 3
logged a "acme: renewal info for autodiscover.customer.example: window $window_start to $window_end" ||
  fail "A did not ask about autodiscover.customer.example"
expect "renewal rows after the failover" "$(renewals | cut -d'|' -f1 | tr '\n' ' ')" \
  "autoconfig.customer.example autodiscover.customer.example one.provider.example "
expect "the account key on A is the database's" "$(cat "$T/acme-a/account.key")" \
  "$(echo 'SELECT key_pem FROM mailconfd_acme_account;' | sql_text)"

step "5. the database stopped under the issuer: it stops issuing, serves on, issues again after"
fp=$(fingerprint "$a_tls" autodiscover.customer.example)
stop_db
wait_for "A stops issuing" logged a 'acme: this replica stops issuing (its lock went with the connection)' >/dev/null
expect "A serves on" "$(fingerprint "$a_tls" autodiscover.customer.example)" "$fp"
start_db
wait_for "A issues again" eval '[ "$(grep -c "acme: this replica issues" "$T/a.log")" = 3 ]' >/dev/null
expect "the database is back, logged" "$(grep -c 'acme: the database is back' "$T/a.log")" 1
expect "orders in all" "$(orders)" 3

step "6. private keys sealed with <acme key-file>"
openssl rand -hex 32 > "$T/acme-key"
openssl rand -hex 32 > "$T/other-key"
chmod 600 "$T/acme-key" "$T/other-key"
for name in a b; do
  sed 's/dsn-file="acme-dsn"/dsn-file="acme-dsn" key-file="acme-key"/' "$T/$name.xml" > "$T/$name.new"
  mv "$T/$name.new" "$T/$name.xml"
done
chmod 644 "$T/acme-key"
run open check "$T/a.xml"
expect "a key-file readable by others: exit" "$rc" 2
grep -q "^$T/a.xml:11:3: <acme>: key-file '$T/acme-key' has mode 0644; it must be 0600 or 0640 (a secret)" \
  "$T/open.err" || fail "key-file 0644: $(cat "$T/open.err")"
chmod 640 "$T/acme-key"
echo 'not-a-key' > "$T/bad-key"
chmod 600 "$T/bad-key"
sed 's/key-file="acme-key"/key-file="bad-key"/' "$T/a.xml" > "$T/badkey.xml"
run badkey check "$T/badkey.xml"
expect "a key-file that is not 64 hex digits: exit" "$rc" 2
grep -q "^$T/badkey.xml:11:3: <acme>: key-file '$T/bad-key' must begin with 64 hexadecimal digits" \
  "$T/badkey.err" || fail "bad key-file: $(cat "$T/badkey.err")"
grep -q 'not-a-key' "$T/badkey.err" && fail "the key-file's contents echoed"
keys_with() {  # keys_with PATTERN: key columns (both tables) that contain PATTERN
  echo "SELECT (SELECT count(*) FROM mailconfd_acme_certificate WHERE key_pem LIKE '$1') +
               (SELECT count(*) FROM mailconfd_acme_account WHERE key_pem LIKE '$1');" | sql
}
expect "plain keys before" "$(keys_with '%PRIVATE KEY%')" 4
kill "$a_pid"
wait "$a_pid" 2>/dev/null || true
start a 127.0.0.1
wait_for "A issues" eval '[ "$(grep -c "acme: this replica issues" "$T/a.log")" = 4 ]' >/dev/null
for name in one.provider.example autoconfig.customer.example autodiscover.customer.example; do
  logged a "acme: sealed the private key for $name in the database" || fail "A did not seal $name"
done
logged a 'acme: sealed the account key in the database' || fail "A did not seal the account key"
expect "plain keys in the database" "$(keys_with '%PRIVATE KEY%')" 0
expect "sealed keys in the database" "$(keys_with 'mailconfd-sealed-v1:%')" 4
expect "A serves on" "$(fingerprint "$a_tls" autodiscover.customer.example)" "$fp"
expect "orders in all" "$(orders)" 3
# C: the same key, nothing on disk: everything comes from the sealed rows.
sed 's/storage="acme-a"/storage="acme-c"/' "$T/a.xml" > "$T/c.xml"
start c 127.0.0.3
wait_for "C serves autodiscover.customer.example" from_pebble "$c_tls" autodiscover.customer.example >/dev/null
for name in one.provider.example autoconfig.customer.example autodiscover.customer.example; do
  wait_for "C has $name" test -s "$T/acme-c/certificates/$name.key" >/dev/null
  cmp -s "$T/acme-c/certificates/$name.key" "$T/acme-a/certificates/$name.key" ||
    fail "C's key for $name is not A's"
  expect "A and C serve the same certificate for $name" "$(fingerprint "$c_tls" "$name")" \
    "$(fingerprint "$a_tls" "$name")"
done
# B: another key; its disk still has the keys from before.
sed 's/key-file="acme-key"/key-file="other-key"/' "$T/b.xml" > "$T/b.new"
mv "$T/b.new" "$T/b.xml"
start b 127.0.0.2
for name in one.provider.example autoconfig.customer.example autodiscover.customer.example; do
  wait_for "B cannot open $name" logged b "acme: the database's private key for $name cannot be used: sealed with another key-file, for another row, or changed; skipped" >/dev/null
  expect "B serves its own copy of $name" "$(fingerprint "$b_tls" "$name")" \
    "$(fingerprint "$a_tls" "$name")"
done
kill "$b_pid"
wait "$b_pid" 2>/dev/null || true
kill "$a_pid"
wait "$a_pid" 2>/dev/null || true
wait_for "C issues" logged c 'acme: this replica issues' >/dev/null
cmp -s "$T/acme-c/account.key" "$T/acme-a/account.key" || fail "C's account key is not A's"
wait_for "C's walk" logged c 'acme: 0 issued, 0 failed, 3 current of 3 names' >/dev/null
expect "orders in all" "$(orders)" 3

step "8. tls-alpn-01: A issues, Pebble validates on B's TLS listener from the database's row"
kill "$c_pid"
wait "$c_pid" 2>/dev/null || true
for name in a b; do
  sed -e 's/dsn-file="acme-dsn"/dsn-file="acme-dsn" challenge="tls-alpn-01"/' \
    -e 's/key-file="other-key"/key-file="acme-key"/' "$T/$name.xml" > "$T/$name.new"
  mv "$T/$name.new" "$T/$name.xml"
done
issuing_before=$(grep -c "acme: this replica issues" "$T/a.log")
start a 127.0.0.1 "$tls_port"
wait_for "A issues" eval '[ "$(grep -c "acme: this replica issues" "$T/a.log")" = $((issuing_before + 1)) ]' >/dev/null
announced_before=$(grep -c "acme: another replica issues" "$T/b.log")
start b 127.0.0.2 "$tls_port"
wait_for "B sees another issuer" eval '[ "$(grep -c "acme: another replica issues" "$T/b.log")" = $((announced_before + 1)) ]' >/dev/null
http_answers_a=$(challenges a) http_answers_b=$(challenges b)
issuer_of "$b_tls" autoconfig.alpn.example >/dev/null  # the first handshake: the default
wait_for "A took autoconfig.alpn.example" \
  logged a 'acme: autoconfig.alpn.example asked for by another replica (on demand): queued' >/dev/null
wait_for "B answers from the database" \
  logged b 'acme: answering the tls-alpn-01 challenge for autoconfig.alpn.example from the database' >/dev/null
wait_for "autoconfig.alpn.example in the database" stored autoconfig.alpn.example >/dev/null
wait_for "B serves autoconfig.alpn.example" from_pebble "$b_tls" autoconfig.alpn.example >/dev/null
wait_for "A serves autoconfig.alpn.example" from_pebble "$a_tls" autoconfig.alpn.example >/dev/null
expect "A and B serve the same certificate for autoconfig.alpn.example" \
  "$(fingerprint "$b_tls" autoconfig.alpn.example)" "$(fingerprint "$a_tls" autoconfig.alpn.example)"
expect "orders in all" "$(orders)" 4
expect "no http-01 request at A" "$(challenges a)" "$http_answers_a"
expect "no http-01 request at B" "$(challenges b)" "$http_answers_b"
logged a 'acme: 3 names from .* (tls-alpn-01 first' || fail "A does not prefer tls-alpn-01"
expect "no tls-alpn-01 challenge left in the database" \
  "$(echo 'SELECT count(*) FROM mailconfd_acme_alpn_challenge;' | sql)" 0
logged a 'acme: issued a certificate for autoconfig.alpn.example' || fail "A did not issue it"
logged b 'acme: issued a certificate for autoconfig.alpn.example' && fail "B issued it"
expect "autoconfig.alpn.example's version above the row at 1000" \
  "$(echo "SELECT version > 1000 FROM mailconfd_acme_certificate WHERE name = 'autoconfig.alpn.example';" | sql)" \
  "$([ "$driver" = postgresql ] && echo t || echo 1)"

step "9. a 429's hold survives the issuer's SIGKILL"
cat > "$T/proxy-rules.json" <<JSON
{$ari_rules, "reject": [{"endpoint": "newOrder", "status": 429, "retry_after": "15"}]}
JSON
issuer_of "$a_tls" autodiscover.alpn.example >/dev/null  # on demand at the issuer
wait_for "A held by the CA" logged a 'no orders for 15s (Retry-After)' >/dev/null
# The proxy's line: arrival, endpoint, status, the time its Retry-After allows.
rejected_at=$(awk -F '\t' '$2 == "newOrder" && $3 == 429 { print $1 }' "$T/proxy.log")
not_before=$(awk -F '\t' '$2 == "newOrder" && $3 == 429 { print $4 }' "$T/proxy.log")
[ -n "$not_before" ] || fail "no 429 in the proxy's log"
hold_row() { echo 'SELECT held_until, reason FROM mailconfd_acme_hold;' | sql; }
wait_for "the hold in the database" eval '[ -n "$(hold_row)" ]' >/dev/null
held_until=$(hold_row | cut -d'|' -f1)
expect "the hold's reason" "$(hold_row | cut -d'|' -f2)" "Retry-After"
python3 -c "import sys; sys.exit(0 if $held_until >= $not_before and $held_until <= $not_before + 3 else 1)" ||
  fail "held until $held_until, the CA allowed $not_before"
issuing_before=$(grep -c "acme: this replica issues" "$T/b.log")
kill -KILL "$a_pid"
wait "$a_pid" 2>/dev/null || true
wait_for "B issues" eval '[ "$(grep -c "acme: this replica issues" "$T/b.log")" = $((issuing_before + 1)) ]' >/dev/null
logged b "acme: the CA's hold goes on (Retry-After): no orders until " || fail "B forgot the hold"
orders_before=$(proxied newOrder 201)
issuer_of "$b_tls" autodiscover.alpn.example >/dev/null  # on demand at the new issuer
wait_for "B queued autodiscover.alpn.example" logged b 'acme: autodiscover.alpn.example asked for at a handshake' >/dev/null
wait_for "autodiscover.alpn.example in the database" stored autodiscover.alpn.example >/dev/null
expect "orders after the takeover" "$(( $(proxied newOrder 201) - orders_before ))" 1
# No newOrder (of any answer, a badNonce's retry included) while the hold ran.
expect "newOrders during the hold" \
  "$(awk -F '\t' -v from="$rejected_at" -v to="$not_before" '$2 == "newOrder" && $1 > from && $1 < to' "$T/proxy.log" | wc -l)" 0
wait_for "B serves autodiscover.alpn.example" from_pebble "$b_tls" autodiscover.alpn.example >/dev/null
expect "orders in all" "$(orders)" 5
# Every later issuer took the stored renewalInfo answers: asked once per certificate in all,
# the last two by B's walk after the hold, about the certificates of steps 8 and 9.
for name in autoconfig.alpn.example autodiscover.alpn.example; do
  wait_for "B asked about $name" \
    logged b "acme: renewal info for $name: window $window_start to $window_end" >/dev/null
done
expect "renewalInfo asked in all" "$(proxied renewalInfo 200)" 5

step "10. a name's wait after its failed order survives the issuer"
# nodns.example is hosted, but NSD has no zone for it: Pebble cannot validate its names.
orders_before=$(proxied newOrder 201)
issuer_of "$b_tls" autoconfig.nodns.example >/dev/null  # on demand at the issuer
wait_for "B's order for autoconfig.nodns.example failed" \
  logged b '; autoconfig.nodns.example waits 300s' >/dev/null
expect "orders for autoconfig.nodns.example" "$(( $(proxied newOrder 201) - orders_before ))" 1
expect "its wait in the database" \
  "$(echo "SELECT delay FROM mailconfd_acme_backoff WHERE name = 'autoconfig.nodns.example';" | sql)" 300
announced_before=$(grep -c "acme: another replica issues" "$T/a.log")
start a 127.0.0.1 "$tls_port"
wait_for "A sees another issuer" eval '[ "$(grep -c "acme: another replica issues" "$T/a.log")" = $((announced_before + 1)) ]' >/dev/null
# A wait that ended two days ago (a name no longer ordered): the next issuer forgets it.
echo "INSERT INTO mailconfd_acme_backoff VALUES ('autodiscover.nodns.example', $(( $(date +%s) - 172800 )), 600);" | sql
issuing_before=$(grep -c "acme: this replica issues" "$T/a.log")
kill "$b_pid"
wait "$b_pid" 2>/dev/null || true
wait_for "A issues" eval '[ "$(grep -c "acme: this replica issues" "$T/a.log")" = $((issuing_before + 1)) ]' >/dev/null
expect "waits left after the takeover" \
  "$(echo 'SELECT name FROM mailconfd_acme_backoff;' | sql)" autoconfig.nodns.example
logged a 'acme: autoconfig.nodns.example failed before: no order for it before ' ||
  fail "A did not take B's wait for autoconfig.nodns.example"
issuer_of "$a_tls" autoconfig.nodns.example >/dev/null  # on demand at the new issuer
wait_for "A queued autoconfig.nodns.example" \
  logged a 'acme: autoconfig.nodns.example asked for at a handshake' >/dev/null
sleep 2  # an order would follow at once
expect "orders for autoconfig.nodns.example after the takeover" \
  "$(( $(proxied newOrder 201) - orders_before ))" 1

step "7. no password and no private key in any log"
# The source's role has the grants the schema's comment gives: it reads the change log.
grep -l 'change log not read' "$T/a.log" "$T/b.log" && fail "the source cannot read the change log"
grep -l 'acme-pass-7c41\|source-pass-1b\|PRIVATE KEY' "$T"/*.log "$T"/*.ready && fail "a secret in a log"
grep -l -f <(cat "$T/acme-key" "$T/other-key") "$T"/*.log "$T"/*.ready && fail "a key-file in a log"

echo "PASS: ACME storage in $driver shared by two replicas ($(( $(date +%s) - started ))s)"
