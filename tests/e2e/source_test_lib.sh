# Helpers shared by the database source's end-to-end tests (postgres_source_test.sh,
# mariadb_source_test.sh), sourced after they set T (the temporary directory), started (the
# start time), db_log (the database's log), mailconfd, wrk_pids=() and mailconfd_pid.
# start_mailconfd serves $T/mailconfd.xml on 127.0.0.1:0 and sets base.

step() { echo "== $(( $(date +%s) - started ))s: $*"; }
fail() {
  echo "FAIL: $*" >&2
  for f in "$T/mailconfd.log" "$db_log"; do
    [ -s "$f" ] && { echo "--- $f (last 30 lines)"; tail -n 30 "$f"; } >&2
  done
  exit 1
}
start_mailconfd() {
  : > "$T/ready"
  "$mailconfd" serve --config "$T/mailconfd.xml" --listen 127.0.0.1:0 \
    >"$T/ready" 2>>"$T/mailconfd.log" &
  mailconfd_pid=$!
  for ((i = 0; i < 100; i++)); do grep -qs '^listening on' "$T/ready" && break; sleep 0.1; done
  base=$(sed -n 's/^listening on \(http:[^ ]*\)$/\1/p' "$T/ready")
  [ -n "$base" ] || fail "mailconfd did not start"
}
stop_mailconfd() {
  kill "$mailconfd_pid"
  wait "$mailconfd_pid" || true
  mailconfd_pid=""
}
expect() {  # expect WHAT GOT WANT
  [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}
status() { curl -s -o /dev/null -w '%{http_code}' "$base$1"; }
autoconfig() { curl -sf "$base/mail/config-v1.1.xml?emailaddress=$1"; }
pox() {
  curl -sf -H 'Content-Type: text/xml' --data-binary @- "$base/autodiscover/autodiscover.xml" <<X
<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>$1</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>
X
}
metric() { curl -sf "$base/metrics" | sed -n "s/^$1 //p"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# wait_for WHAT COMMAND...: runs COMMAND every 20 ms until it succeeds (at most 20 s); prints
# how long it took in ms.
wait_for() {
  local what=$1 t0
  shift
  t0=$(now_ms)
  for ((i = 0; i < 1000; i++)); do
    "$@" && { echo $(( $(now_ms) - t0 )); return 0; }
    sleep 0.02
  done
  fail "$what: not within 20 s"
}
# Load: wrk against URL for SECONDS in the background (-c4, one thread); wrk_check NAME says
# how many requests it made and fails on any non-2xx answer or socket error.
wrk_start() {  # wrk_start NAME SECONDS URL
  wrk -t1 -c4 -d"$2s" --timeout 5s "$3" >"$T/wrk-$1.out" 2>&1 &
  wrk_pids+=($!)
}
wrk_check() {
  local name=$1 out requests
  out=$(cat "$T/wrk-$name.out")
  requests=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' <<<"$out")
  [ -n "$requests" ] && [ "$requests" -gt 0 ] || fail "wrk $name made no requests: $out"
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then fail "wrk $name: failed requests: $out"; fi
  echo "wrk $name: $requests requests, 0 failed"
}
wrk_wait() {
  for p in "${wrk_pids[@]}"; do wait "$p" || fail "wrk exited with $?"; done
  wrk_pids=()
}
served() { [ "$(status "/mail/config-v1.1.xml?emailaddress=a%40$1")" = 200 ]; }

# The subcommands besides serve and check read the database's domains too (cli/hosted.h),
# each asserted with a domain or login name that only the database has. $T/mailconfd.xml's
# database holds the rows both tests insert first (customer.example with alice's web12p3,
# own.example's host override, pop.example POP3-only, local.example local-part, dave's
# p123-4 at pop.example and alias.example). subcommands_test SKIPPED DRIVER ORIGINS: how many
# rows the database has that the policy skips, the driver's name, the domains dns zone lists
# ("a.example. b.example. ").
run() {  # run NAME ARGS...: mailconfd ARGS with stdout in $T/NAME.out, stderr in $T/NAME.err
  local name=$1
  shift
  set +e
  TZ=UTC "$mailconfd" "$@" >"$T/$name.out" 2>"$T/$name.err"
  rc=$?
  set -e
}
subcommands_test() {
  local x=$T/mailconfd.xml closed connect
  closed=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  local skipped="mailconfd: $1 rows of $2 skipped (mailconfd check lists them)"

  run zone dns zone --config "$x" own.example
  expect "dns zone own.example exit" "$rc" 0
  expect "dns zone own.example: the database's host override" "$(cat "$T/zone.out")" \
"; own.example: mail client discovery records, provider mail.provider.example
\$ORIGIN own.example.
_autodiscover._tcp 3600 IN SRV   0 0 443 autodiscover.mail.provider.example.
_imap._tcp         3600 IN SRV   0 0 0 .
_imaps._tcp        3600 IN SRV   0 0 993 imap.own.example.
_pop3._tcp         3600 IN SRV   0 0 0 .
_pop3s._tcp        3600 IN SRV   20 0 995 pop.provider.example.
_submission._tcp   3600 IN SRV   10 0 587 smtp.own.example.
_submissions._tcp  3600 IN SRV   0 0 0 ."
  expect "dns zone stderr" "$(cat "$T/zone.err")" "$skipped"
  run zone-pop dns zone --config "$x" pop.example
  expect "dns zone pop.example: POP3-only, no IMAP" "$(grep -E '^_(imaps|pop3s)' "$T/zone-pop.out")" \
"_imaps._tcp        3600 IN SRV   0 0 0 .
_pop3s._tcp        3600 IN SRV   20 0 995 pop.provider.example."
  run zones dns zone --config "$x"
  expect "dns zone: every domain of the file and the database" \
    "$(sed -n 's/^\$ORIGIN //p' "$T/zones.out" | tr '\n' ' ')" \
    "$3"

  run dnscheck dns check --config "$x" pop.example --resolver "127.0.0.1:$closed" --timeout 50 --json
  expect "dns check of a database domain: exit (its lookups fail)" "$rc" 1
  expect "dns check: the domain checked" "$(head -n 2 "$T/dnscheck.out" | cut -c 1-52)" \
'{"checked":1,"ok":0,"with_problems":1,"domains":[
{"domain":"pop.example","ok":false,"problems":[{"pro'
  run dnscheck-none dns check --config "$x" nothere.example --resolver "127.0.0.1:$closed"
  expect "dns check of a domain neither has: exit" "$rc" 2
  expect "dns check of a domain neither has" "$(sed -n 2p "$T/dnscheck-none.err")" \
    "mailconfd: domain 'nothere.example' is not hosted in this configuration"

  connect="imap.own.example:993:127.0.0.1:$closed,pop.provider.example:995:127.0.0.1:$closed"
  connect+=",smtp.own.example:587:127.0.0.1:$closed"
  run probe probe --config "$x" own.example --timeout 500ms --connect-to "$connect"
  expect "probe of a database domain: exit (nothing listens)" "$rc" 1
  expect "probe: the database's host override probed" "$(grep -vE '^ ' "$T/probe.out")" \
"FAIL  submission smtp.own.example:587 STARTTLS  [mail.provider.example]
FAIL  imap imap.own.example:993 TLS  [mail.provider.example]
FAIL  pop3 pop.provider.example:995 TLS  [mail.provider.example]
3 servers probed, 3 with problems"

  run autoconfig render autoconfig alice@customer.example --config "$x"
  expect "render autoconfig exit" "$rc" 0
  expect "render autoconfig: alice's login name" "$(cat "$T/autoconfig.out")" \
'<?xml version="1.0" encoding="utf-8"?>
<clientConfig version="1.1">
  <emailProvider id="mail.provider.example">
    <domain>customer.example</domain>
    <displayName>Provider Mail</displayName>
    <displayShortName>Provider Mail</displayShortName>
    <incomingServer type="imap">
      <hostname>imap.provider.example</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <username>web12p3</username>
      <authentication>password-cleartext</authentication>
    </incomingServer>
    <incomingServer type="pop3">
      <hostname>pop.provider.example</hostname>
      <port>995</port>
      <socketType>SSL</socketType>
      <username>web12p3</username>
      <authentication>password-cleartext</authentication>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.provider.example</hostname>
      <port>587</port>
      <socketType>STARTTLS</socketType>
      <username>web12p3</username>
      <authentication>password-cleartext</authentication>
    </outgoingServer>
  </emailProvider>
</clientConfig>'
  expect "render stderr" "$(cat "$T/autoconfig.err")" "$skipped"
  run autodiscover render autodiscover dave@alias.example --config "$x"
  expect "render autodiscover: the alias domain's POP3-only and the target mailbox's login" \
    "$(grep -oE '<(Type|Server|LoginName)>[^<]*' "$T/autodiscover.out" | tr '\n' ' ')" \
    "<Type>POP3 <Server>pop.provider.example <LoginName>p123-4 <Type>SMTP <Server>smtp.provider.example <LoginName>p123-4 "
  run mobileconfig render mobileconfig alice@customer.example --config "$x"
  expect "render mobileconfig: alice's login name" \
    "$(grep -A1 -E 'IncomingMailServerUsername|OutgoingMailServerUsername' "$T/mobileconfig.out" | grep -o '<string>[^<]*</string>' | sort | uniq -c | tr -s ' ')" \
    " 2 <string>web12p3</string>"
  run setup render setup carol@local.example --config "$x"
  expect "render setup: the local-part domain's login" "$rc" 0
  grep -q '<title>carol@local.example – Mail settings – Provider Mail</title>' "$T/setup.out" ||
    fail "render setup: no page for carol@local.example"
  expect "render setup: carol's login" "$(grep -o 'class="value">carol<' "$T/setup.out" | wc -l)" 14
  run unhosted render autoconfig x@nothere.example --config "$x"
  expect "render of a domain neither has: exit" "$rc" 1

  # web12p3 and P123-4 are per-mailbox login names, carol a local-part login of a domain
  # whose login form only the database says.
  cat > "$T/mail.log" <<'LOG'
2026-12-02T10:00:00Z mail dovecot: pop3-login: Login: user=<web12p3>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.1, mpid=1, TLS, session=<a>
2026-12-02T10:01:00Z mail postfix/smtpd[5]: A1: client=pc[192.0.2.10]
2026-12-02T10:01:00Z mail postfix/qmgr[6]: A1: from=<alice@customer.example>, size=1, nrcpt=1
2026-12-02T10:01:00Z mail postfix/smtp[7]: A1: to=<r@remote.test>, relay=mx[1.1.1.1]:25, status=sent (ok)
2026-12-02T10:02:00Z mail dovecot: pop3-login: Login: user=<carol>, method=PLAIN, rip=192.0.2.11, lip=192.0.2.1, mpid=2, TLS, session=<b>
2026-12-02T10:03:00Z mail postfix/smtpd[5]: A2: client=pc[192.0.2.11]
2026-12-02T10:03:00Z mail postfix/qmgr[6]: A2: from=<carol@local.example>, size=1, nrcpt=1
2026-12-02T10:03:00Z mail postfix/smtp[7]: A2: to=<r@remote.test>, relay=mx[1.1.1.1]:25, status=sent (ok)
2026-12-02T10:04:00Z mail dovecot: pop3-login: Login: user=<P123-4>, method=PLAIN, rip=192.0.2.12, lip=192.0.2.1, mpid=3, TLS, session=<c>
2026-12-02T10:05:00Z mail postfix/smtpd[5]: A3: client=pc[192.0.2.12]
2026-12-02T10:05:00Z mail postfix/qmgr[6]: A3: from=<dave@alias.example>, size=1, nrcpt=1
2026-12-02T10:05:00Z mail postfix/smtp[7]: A3: to=<r@remote.test>, relay=mx[1.1.1.1]:25, status=sent (ok)
LOG
  run scan cutover scan --config "$x" --mynetworks 127.0.0.0/8 --csv "$T/mail.log"
  expect "cutover scan exit (at-risk mailboxes)" "$rc" 1
  expect "cutover scan: login names mapped to the database's mailboxes" "$(tr -d '\r' <"$T/scan.out")" \
'mailbox,domain,state,evidence,last_seen,setup_link
alice@customer.example,customer.example,at-risk,"1 message relayed via SMTP-after-POP without a login, from 192.0.2.10 (confidence high)",2026-12-02T10:01:00Z,https://autodiscover.mail.provider.example/setup?emailaddress=alice%40customer.example
carol@local.example,local.example,at-risk,"1 message relayed via SMTP-after-POP without a login, from 192.0.2.11 (confidence high)",2026-12-02T10:03:00Z,https://autodiscover.mail.provider.example/setup?emailaddress=carol%40local.example
dave@pop.example,pop.example,at-risk,"1 message relayed via SMTP-after-POP without a login, from 192.0.2.12 (confidence medium)",2026-12-02T10:05:00Z,https://autodiscover.mail.provider.example/setup?emailaddress=dave%40pop.example'
  run scanjson cutover scan --config "$x" --mynetworks 127.0.0.0/8 --json "$T/mail.log"
  expect "cutover scan: the per-domain roll-up with the database's domains" \
    "$(grep -o '"domains":\[[^]]*\]' "$T/scanjson.out")" \
    '"domains":[{"domain":"customer.example","provider":"mail.provider.example","at-risk":1,"ambiguous":0,"broke":0,"login-failing":0,"switched":0,"total":1},{"domain":"local.example","provider":"mail.provider.example","at-risk":1,"ambiguous":0,"broke":0,"login-failing":0,"switched":0,"total":1},{"domain":"pop.example","provider":"mail.provider.example","at-risk":1,"ambiguous":0,"broke":0,"login-failing":0,"switched":0,"total":1}]'
}

# With the database down: each subcommand uses the snapshot and says so
# (subcommands_down_test snapshot LOGIN DRIVER: alice's login name in the snapshot), or,
# without one (subcommands_down_test none - DRIVER), exits 2 with the reason, as serve
# refuses to start. Runs after subcommands_test (its mail.log).
subcommands_down_test() {
  local x=$T/mailconfd.xml
  if [ "$1" = snapshot ]; then
    run autoconfig-down render autoconfig alice@customer.example --config "$x"
    expect "render from the snapshot: exit" "$rc" 0
    expect "render from the snapshot: alice's login name" \
      "$(grep -c "<username>$2</username>" "$T/autoconfig-down.out")" 3
    tr '\n' ' ' <"$T/autoconfig-down.err" |
      grep -q "Z warning $3: .*; serving the snapshot $T/snapshot of rows read at 20" ||
      fail "render does not say it used the snapshot: $(cat "$T/autoconfig-down.err")"
    run zone-down dns zone --config "$x" own.example
    expect "dns zone from the snapshot" "$(grep _imaps "$T/zone-down.out")" \
      "_imaps._tcp        3600 IN SRV   0 0 993 imap.own.example."
    grep -q "serving the snapshot $T/snapshot" "$T/zone-down.err" || fail "dns zone: no warning"
    sed -i "s/user=<web12p3>/user=<$2>/" "$T/mail.log"
    run scan-down cutover scan --config "$x" --mynetworks 127.0.0.0/8 --csv "$T/mail.log"
    expect "cutover scan from the snapshot" "$(sed -n 2p "$T/scan-down.out" | cut -d, -f1-3)" \
      "alice@customer.example,customer.example,at-risk"
    return
  fi
  local cmd
  for cmd in "dns zone own.example" "dns check own.example --resolver 127.0.0.1:1" \
    "probe own.example" "render autoconfig alice@customer.example" \
    "cutover scan --mynetworks 127.0.0.0/8 $T/mail.log"; do
    # shellcheck disable=SC2086
    run none $cmd --config "$x"
    expect "$cmd without database and snapshot: exit" "$rc" 2
    expect "$cmd without database and snapshot: stdout" "$(cat "$T/none.out")" ""
    # (libpq's message may span lines)
    tr '\n' ' ' <"$T/none.err" |
      grep -q "^mailconfd: $3: .*; and no snapshot to start from: cannot read $T/snapshot: No such file or directory \$" ||
      fail "$cmd: unclear error: $(cat "$T/none.err")"
  done
}
