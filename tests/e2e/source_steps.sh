# The steps postgres_source_test.sh and mariadb_source_test.sh both run, each a function
# given what differs between the drivers (counts, the driver-only rows, names); the steps one
# driver alone has stay in its script. Sourced after database.sh and db_require: makes the
# temporary directory $T, sources source_test_lib.sh (step, fail, expect, start_mailconfd, the
# HTTP and wrk helpers) and removes $T and what the test started on exit (KEEP=1 keeps $T).
#   fixture_rows            the rows of step 1 and the hostile rows of step 2 (SQL on stdout)
#   source_config [ATTRS]   $T/mailconfd.xml: a provider with file.example and the database
#   check_step COUNTS [SKIP...]  `check`'s answer; SKIP: the driver-only lines of skipped rows
#   serve_step SKIPPED [DOMAIN...]  steps 1 and 2 over HTTP; DOMAIN: more not served
#   changes_under_load WRK_NAME, changes_counted N, change_log_step SKIPPED UPDATES  step 3
#   kill_step               step 4 up to the full load after the reconnect
#   snapshot_step LOGIN DOMAIN COUNTS REFUSAL  step 5 and step 6 with the database down
#   expect_no_password REGEX  the DSN's password in no output

T=$(mktemp -d "/tmp/mailconfd-$driver-XXXXXX")
chmod 755 "$T"
started=$(date +%s)
mailconfd_pid="" wrk_pids=()
db_log="$T/db.log"
source "$(dirname "${BASH_SOURCE[0]}")/source_test_lib.sh"
cleanup() {
  for p in "${wrk_pids[@]}"; do kill "$p" 2>/dev/null; done
  [ -n "$mailconfd_pid" ] && kill "$mailconfd_pid" 2>/dev/null && wait "$mailconfd_pid" 2>/dev/null
  stop_db
  if [ -n "${KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Step 1's rows (alice's web12p3, a POP3-only domain, a host override, a local-part domain, an
# alias domain, PostfixAdmin's ALL row from the schema and an inactive domain) and step 2's
# hostile rows, in SQL both drivers take.
fixture_rows() {
  cat <<'SQL'
INSERT INTO domain (domain) VALUES ('customer.example'), ('pop.example'), ('own.example'),
  ('local.example');
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
INSERT INTO domain (domain) VALUES ('port25.example'), ('plain.example'),
  ('<script>x</script>.example'), ('big.example'), ('markup.example');
INSERT INTO mailconfd_domain (domain, smtp_host) VALUES ('port25.example', 'smtp.evil.example:25');
INSERT INTO mailconfd_domain (domain, incoming) VALUES ('plain.example', 'plaintext');
INSERT INTO mailconfd_domain (domain, imap_host) VALUES ('big.example', repeat('a', 10240));
INSERT INTO mailbox (username, domain) VALUES ('eve@markup.example', 'markup.example');
INSERT INTO mailconfd_mailbox VALUES ('eve@markup.example', '<b>eve</b>');
SQL
}

source_config() {  # source_config [ATTRIBUTES]: more attributes of <database> (poll="200ms")
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
  <database driver="$driver" dsn-file="dsn" snapshot="snapshot"${1:+ $1}/>
</mailconfd>
XML
}

# check_step COUNTS [LINE...]: `check` exits 0, says "DRIVER: COUNTS" and names each skipped
# row of fixture_rows and each LINE (the driver-only ones) on stderr.
check_step() {
  local counts=$1 line
  shift
  set +e
  "$mailconfd" check "$T/mailconfd.xml" >"$T/check.out" 2>"$T/check.err"
  rc=$?
  set -e
  expect "check exit status" "$rc" 0
  expect "check stdout" "$(cat "$T/check.out")" "$T/mailconfd.xml: ok (1 provider, 1 domains)
$driver: $counts"
  expect "check stderr" "$(sort "$T/check.err")" "$( {
    cat <<'E'
skipped domain '<script>x</script>.example': not a domain name
skipped domain 'plain.example': incoming 'plaintext' is not imap-first, pop3-first, imap-only or pop3-only
skipped domain 'port25.example': smtp_host 'smtp.evil.example:25' is not a host name (ports and security come from the configuration file)
skipped domain 'big.example': a value is longer than 255 bytes
skipped mailbox 'eve@markup.example': login name must be 1 to 255 letters, digits and . - _ + @ =
E
    for line in "$@"; do echo "$line"; done
  } | sort)"
}

# serve_step SKIPPED [DOMAIN...]: mailconfd started ($base) answers fixture_rows' domains and
# login names, does not serve the skipped or inactive domains nor DOMAIN..., and counts
# SKIPPED rows skipped.
serve_step() {
  local skipped=$1 d doc
  shift
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
  for d in inactive.example ALL port25.example plain.example big.example "$@"; do
    expect "$d not served" "$(status "/mail/config-v1.1.xml?emailaddress=a%40$d")" 404
  done
  expect "markup.example served (its mailbox row alone skipped)" \
    "$(autoconfig 'eve%40markup.example' | grep -c '<username>eve@markup.example</username>')" 3
  expect "skipped rows gauge" "$(metric mailconfd_source_rows_skipped)" "$skipped"
  expect "skipped row named by key" \
    "$(metric 'mailconfd_source_row_skipped{table="domain",key="port25.example"}')" 1
  expect "skipped mailbox named by key" \
    "$(metric 'mailconfd_source_row_skipped{table="mailbox",key="eve@markup.example"}')" 1
  expect "logins gauge" "$(metric mailconfd_source_logins)" 3
  grep -q "$driver: skipped domain 'port25.example': smtp_host 'smtp.evil.example:25' is not a host name" \
    "$T/mailconfd.log" || fail "the skipped row is not logged"
  [ -s "$T/snapshot" ] || fail "no snapshot written after the load"
}

# changes_under_load WRK_NAME: wrk load on alice's autoconfig ($alice) for 6 s (wrk_check
# WRK_NAME after); a new domain (new.example), a changed login (web12p4) and a retargeted alias
# domain, each waited for until answered. Sets loads and updates (the counters before) and
# changes_ms (change to answer, "N ms, N ms, N ms").
changes_under_load() {
  local ms
  alice="$base/mail/config-v1.1.xml?emailaddress=alice%40customer.example"
  loads=$(metric mailconfd_source_loads_total)
  updates=$(metric mailconfd_source_updates_total)
  wrk_start "$1" 6 "$alice"
  sleep 0.5
  sql "INSERT INTO domain (domain) VALUES ('new.example')"
  ms=$(wait_for "new domain served" served new.example)
  changes_ms="$ms ms"
  sql "UPDATE mailconfd_mailbox SET login_name = 'web12p4' WHERE username = 'alice@customer.example'"
  ms=$(wait_for "changed login served" eval "autoconfig 'alice%40customer.example' | grep -q web12p4")
  changes_ms+=", $ms ms"
  sql "UPDATE alias_domain SET target_domain = 'own.example' WHERE alias_domain = 'alias.example'"
  ms=$(wait_for "alias domain retargeted" eval "autoconfig 'x%40alias.example' | grep -q imap.own.example")
  changes_ms+=", $ms ms"
}

# changes_counted N: the N changes since changes_under_load each read only its domains' rows
# (the change log): N updates counted and logged, no full load.
changes_counted() {
  wait_for "$1 updates counted" eval "[ \"\$(metric mailconfd_source_updates_total)\" = $((updates + $1)) ]" >/dev/null
  expect "no full load for the changes" "$(metric mailconfd_source_loads_total)" "$loads"
  expect "updates logged" "$(grep -c "$driver: 1 changed domains read (change log" "$T/mailconfd.log")" "$1"
}

# change_log_step SKIPPED UPDATES: a deleted domain, a row turned hostile and back, each read
# from the change log. SKIPPED: the rows skipped at the load; UPDATES: the updates counted
# since changes_under_load once these four are.
change_log_step() {
  sql "INSERT INTO domain (domain) VALUES ('brief.example')"
  wait_for "brief.example served" served brief.example >/dev/null
  sql "DELETE FROM domain WHERE domain = 'brief.example'"
  wait_for "deleted domain gone" eval '! served brief.example' >/dev/null
  # An alias domain follows a change of its target: own.example's override reaches alias.example.
  sql "UPDATE mailconfd_domain SET smtp_host = 'smtp.evil.example:25' WHERE domain = 'own.example'"
  wait_for "hostile change skipped" eval '! served own.example' >/dev/null
  expect "its alias domain skipped with it" "$(status '/mail/config-v1.1.xml?emailaddress=a%40alias.example')" 404
  grep -q "$driver: skipped domain 'own.example': smtp_host 'smtp.evil.example:25' is not a host name" \
    "$T/mailconfd.log" || fail "the hostile change is not logged"
  # own.example and its alias domain
  expect "skipped rows gauge with the hostile change" "$(metric mailconfd_source_rows_skipped)" $(($1 + 2))
  expect "the hostile change named by key" \
    "$(metric 'mailconfd_source_row_skipped{table="domain",key="own.example"}')" 1
  expect "the row skipped before still named" \
    "$(metric 'mailconfd_source_row_skipped{table="domain",key="port25.example"}')" 1
  expect "the mailbox skipped before still named" \
    "$(metric 'mailconfd_source_row_skipped{table="mailbox",key="eve@markup.example"}')" 1
  sql "UPDATE mailconfd_domain SET smtp_host = 'smtp.own.example' WHERE domain = 'own.example'"
  wait_for "fixed row served again" served own.example >/dev/null
  wait_for "its alias domain again" served alias.example >/dev/null
  expect "skipped rows gauge after the fix" "$(metric mailconfd_source_rows_skipped)" "$1"
  expect "the fixed row no longer named" \
    "$(metric 'mailconfd_source_row_skipped{table="domain",key="own.example"}')" ""
  expect "no full load for any change" "$(metric mailconfd_source_loads_total)" "$loads"
  expect "every change an update" "$(metric mailconfd_source_updates_total)" $((updates + $2))
}

# kill_step: the database killed (stop_db KILL) under wrk load (wrk_check kill and readyz
# after) while alice's login is web12p4; alice's login changed to web12p5 where mailconfd
# cannot see it (start_db hidden: no poll or NOTIFY can find it), then the database started
# again: the reconnect, the change served (the full reload after it) and logged. Needs $alice
# and $loads (the full loads so far).
kill_step() {
  local reconnects connect_failures t0
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
  grep -q "$driver: connected again; reloading" "$T/mailconfd.log" || fail "reconnect not logged"
  expect "a full load after the reconnect" "$(metric mailconfd_source_loads_total)" $((loads + 1))
}

# snapshot_step LOGIN DOMAIN COUNTS REFUSAL: mailconfd stopped and the database stopped here;
# serve starts from the snapshot (alice's LOGIN, DOMAIN served, said in the log), check
# reads it ("snapshot …: COUNTS") and the other subcommands use it (subcommands_down_test);
# without the snapshot check, serve and the subcommands exit 2, serve saying
# "not starting: DRIVER: REFUSAL; and no snapshot …" (REFUSAL a grep pattern).
snapshot_step() {
  stop_db
  start_mailconfd
  expect "served from the snapshot" "$(autoconfig 'alice%40customer.example' | grep -c "$1")" 3
  expect "$2 from the snapshot" "$(status "/mail/config-v1.1.xml?emailaddress=a%40$2")" 200
  grep -q "serving the snapshot $T/snapshot of rows read at" "$T/mailconfd.log" ||
    fail "the snapshot start is not said in the log"
  expect "readyz from the snapshot" "$(status /readyz)" 200
  stop_mailconfd
  "$mailconfd" check "$T/mailconfd.xml" >"$T/check-snapshot.out" 2>"$T/check-snapshot.err" ||
    fail "check with the database down and a snapshot: exit $?"
  expect "check from the snapshot" "$(tail -n 1 "$T/check-snapshot.out")" \
    "snapshot $T/snapshot: $3"
  subcommands_down_test snapshot "$1" "$driver"
  rm "$T/snapshot"
  set +e
  "$mailconfd" check "$T/mailconfd.xml" >/dev/null 2>"$T/check-none.err"
  rc=$?
  set -e
  expect "check without database and snapshot" "$rc" 2
  subcommands_down_test none - "$driver"
  set +e
  "$mailconfd" serve --config "$T/mailconfd.xml" --listen 127.0.0.1:0 >"$T/ready" 2>"$T/refused.log"
  rc=$?
  set -e
  expect "exit status without a snapshot" "$rc" 2
  grep -q "not starting: $driver: $4; and no snapshot to start from: cannot read $T/snapshot: No such file or directory" \
    "$T/refused.log" || fail "unclear refusal: $(cat "$T/refused.log")"
}

expect_no_password() {  # expect_no_password REGEX: in no log, stdout or stderr of the test
  if grep -rqE "$1" "$T"/*.log "$T"/*.out "$T"/*.err; then
    fail "the DSN's password appears in the output"
  fi
}
