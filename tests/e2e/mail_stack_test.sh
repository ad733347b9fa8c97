#!/usr/bin/env bash
# End to end with real mail servers: starts Postfix (submission with STARTTLS, SASL through
# Dovecot) and Dovecot (IMAP and POP3) on 127.0.0.1 high ports, with a CA and certificate made
# here, all configuration in a temporary directory; starts mailconfd on them; then
#   1. fetches the autoconfig answer (and Autodiscover, when this build serves it),
#   2. submits mail with swaks using exactly those settings (STARTTLS, AUTH PLAIN and LOGIN)
#      and reads it back over IMAP with curl,
#   3. checks that submission without AUTH, and AUTH before STARTTLS, are refused,
#   4. checks that `mailconfd probe` passes the good setup and names each weakness of two
#      deliberately weakened submission services (AUTH before TLS; relaying by client IP),
#   5. runs a real POP-before-SMTP setup (deploy/postfix/: Dovecot's post-login script feeding
#      Postfix's check_client_access map) with simulated customers on loopback addresses
#      127.0.0.10-16, through the dry run and the cut-off, and checks that
#      `mailconfd cutover scan` classifies each of them exactly;
#   6. (inside 5) the cut-off cockpit as README sets it up (the settings journal on, the
#      cockpit on the loopback admin listener with a password, the scan report replaced by
#      README's command): a customer relays via the map (at risk), fetches new settings with
#      Thunderbird's autoconfig request (fetched new settings) and sends with SMTP-Auth
#      (switched), while another stays at risk, each state read from the cockpit's page and CSV.
# Usage: mail_stack_test.sh MAILCONFD_BINARY. Needs root (Postfix's master runs as root) and
# the packages from .ci/install-deps; exits 77 (skipped) when not root. Everything it
# starts is stopped on exit, also on failure or a signal. KEEP=1 keeps the directory.
set -euo pipefail

mailconfd=${1:?usage: mail_stack_test.sh MAILCONFD_BINARY}
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: needs root to run Postfix (CI runs as root)"
  exit 77
fi
for tool in postfix dovecot swaks curl openssl xmllint python3 flock; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool missing (.ci/install-deps installs it)"; exit 1; }
done

T=$(mktemp -d /tmp/mailconfd-mail-XXXXXX)
chmod 755 "$T"  # Postfix's and Dovecot's unprivileged processes must reach their files
started=$(date +%s)
mailconfd_pid="" dovecot_pid="" postfix_up=""

step() { echo "== $(( $(date +%s) - started ))s: $*"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

dump_logs() {
  for f in "$T/postfix/maillog" "$T/dovecot/dovecot.log" "$T/mailconfd.log" \
    "$T/popb4smtp/popb4smtp.log"; do
    [ -s "$f" ] && { echo "--- $f (last 40 lines)"; tail -n 40 "$f"; }
  done >&2
}

# Waits up to $1 seconds for process $2 to exit.
wait_gone() {
  local i
  for ((i = 0; i < $1 * 10; i++)); do
    kill -0 "$2" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

cleanup() {
  local status=$?
  set +e
  trap - EXIT INT TERM HUP
  [ $status -ne 0 ] && dump_logs
  if [ -n "$mailconfd_pid" ]; then
    kill "$mailconfd_pid" 2>/dev/null
    wait_gone 10 "$mailconfd_pid" || kill -9 "$mailconfd_pid" 2>/dev/null
  fi
  if [ -n "$postfix_up" ]; then
    local master
    master=$(tr -d ' ' <"$T/postfix/queue/pid/master.pid" 2>/dev/null)
    postfix -c "$T/postfix" stop >/dev/null 2>&1
    if [ -n "$master" ]; then
      wait_gone 10 "$master" || kill -9 "$master" 2>/dev/null
    fi
  fi
  if [ -n "$dovecot_pid" ]; then
    kill "$dovecot_pid" 2>/dev/null
    wait_gone 10 "$dovecot_pid" || kill -9 "$dovecot_pid" 2>/dev/null
  fi
  if [ "${KEEP:-}" = 1 ]; then echo "kept $T" >&2; else rm -rf "$T"; fi
  echo "== took $(( $(date +%s) - started ))s"
  exit $status
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# A port on 127.0.0.1 that nothing answers on and that this run has not taken yet.
taken=" "
free_port() {
  local port
  while true; do
    # Below Linux's ephemeral range (32768+), so no outgoing connection takes it meanwhile.
    port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 12000 ))
    [[ $taken == *" $port "* ]] && continue
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
    taken="$taken$port "
    echo "$port"
    return
  done
}

# Waits until something listens on ${2:-127.0.0.1}:$1 (at most 30 s).
wait_port() {
  local i
  for ((i = 0; i < 300; i++)); do
    (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  fail "nothing listens on ${2:-127.0.0.1}:$1"
}

provider=provider.test
smtp_host=smtp.$provider imap_host=imap.$provider pop_host=pop.$provider
user=alice@customer.test
password="e2e-$RANDOM$RANDOM-secret"
token="mailconfd-e2e-$RANDOM$RANDOM"

submission=$(free_port)       # the good one: 587 as advertised
legacy=$(free_port)           # where customers relay via SMTP-after-POP (port 25's role)
submission_tls=$(free_port)   # 465 implicit TLS
auth_early=$(free_port)       # weakened: AUTH offered before STARTTLS
open_relay=$(free_port)       # weakened: relays for 127.0.0.0/8 without a login
imaps=$(free_port) imap=$(free_port) pop3s=$(free_port) pop3=$(free_port)
admin=$(free_port)            # mailconfd's admin listener: /metrics and the cockpit

step "certificates"
mkdir -p "$T/tls"
(
  cd "$T/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/CN=mailconfd e2e test CA" -keyout ca.key -out ca.pem 2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=$smtp_host" -keyout server.key -out server.csr 2>/dev/null
  printf 'subjectAltName=DNS:%s,DNS:%s,DNS:%s\nextendedKeyUsage=serverAuth\n' \
    "$smtp_host" "$imap_host" "$pop_host" >server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
    -extfile server.ext -out server.pem 2>/dev/null
  chmod 644 server.pem ca.pem
  chmod 600 server.key ca.key
)

# Dovecot treats a connection whose client and server addresses are equal as secure and then
# allows plaintext logins before STARTTLS; clients never connect that way, so neither does
# the test: Dovecot listens on 127.0.0.2 and the clients connect from 127.0.0.1.
dovecot_ip=127.0.0.2
step "dovecot on $dovecot_ip (imaps $imaps, imap $imap, pop3s $pop3s, pop3 $pop3)"
mkdir -p "$T/dovecot" "$T/mail"
chown nobody:nogroup "$T/mail"
customers="anna bert carol dave dora emil fritz hanna"  # section 5
for name in "${user%@*}" $customers; do
  printf '%s@customer.test:{PLAIN}%s::::::\n' "$name" "$password"
done >"$T/dovecot/users"
chown root:dovecot "$T/dovecot/users"
chmod 640 "$T/dovecot/users"
dh=""
[ -f /usr/share/dovecot/dh.pem ] && dh="ssl_dh = </usr/share/dovecot/dh.pem"
cat >"$T/dovecot/dovecot.conf" <<EOF
base_dir = $T/dovecot/run
state_dir = $T/dovecot/state
instance_name = mailconfd-e2e-$$
log_path = $T/dovecot/dovecot.log
protocols = imap pop3
listen = $dovecot_ip
ssl = yes
ssl_cert = <$T/tls/server.pem
ssl_key = <$T/tls/server.key
$dh
disable_plaintext_auth = yes
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = scheme=PLAIN $T/dovecot/users
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$T/mail/%d/%n
}
mail_location = maildir:$T/mail/%d/%n
service imap-login {
  inet_listener imap {
    port = $imap
  }
  inet_listener imaps {
    port = $imaps
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = $pop3
  }
  inet_listener pop3s {
    port = $pop3s
    ssl = yes
  }
}
service auth {
  unix_listener auth-postfix {
    mode = 0666
  }
}
EOF
# POP-before-SMTP as many sites run it: deploy/postfix/popb4smtp-postlogin.sh after each login
# (wired by deploy/postfix/dovecot-postlogin.conf, paths pointed into $T) feeds the map.
pf=$T/postfix
pb=$T/popb4smtp
mkdir -p "$T/bin" "$pb" "$pf"
install -m 755 "$source_dir/deploy/postfix/popb4smtp-postlogin.sh" "$T/bin/"
sed -e "s|^POPB4SMTP_MAP=.*|POPB4SMTP_MAP=$pb/map|" -e "s|^POPB4SMTP_LOG=.*|POPB4SMTP_LOG=$pb/popb4smtp.log|" \
  -e "s|^POPB4SMTP_POSTFIX_CONFIG=.*|POPB4SMTP_POSTFIX_CONFIG=$pf|" \
  -e "s|^POPB4SMTP_ACTION=.*|POPB4SMTP_ACTION=popb4smtp|" \
  "$source_dir/deploy/postfix/popb4smtp-postlogin.conf" >"$T/bin/popb4smtp-postlogin.conf"
printf '' >"$pb/map"
chown -R dovecot "$pb"
sed -e "s|/usr/local/lib/mailconfd/popb4smtp-postlogin.sh|$T/bin/popb4smtp-postlogin.sh|" \
  "$source_dir/deploy/postfix/dovecot-postlogin.conf" >>"$T/dovecot/dovecot.conf"
dovecot -F -c "$T/dovecot/dovecot.conf" >>"$T/dovecot/dovecot.log" 2>&1 &
dovecot_pid=$!
for port in $imaps $imap $pop3s $pop3; do wait_port "$port" $dovecot_ip; done

step "postfix (submission $submission, smtps $submission_tls, weakened $auth_early and $open_relay, legacy $legacy)"
mkdir -p "$pf/queue" "$pf/data"
chown postfix "$pf/data"
cat >"$pf/main.cf.base" <<EOF
compatibility_level = 3.6
queue_directory = $pf/queue
data_directory = $pf/data
maillog_file_prefixes = $T
maillog_file = $pf/maillog
myhostname = $smtp_host
mydomain = $provider
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
# Only the probe's own address: the customers of section 5 (127.0.0.10-16) are not trusted.
mynetworks = 127.0.0.1/32
alias_maps =
alias_database =
local_recipient_maps =
biff = no
# Nothing ever leaves this machine: mail for other domains would be dropped. (Not the error
# transport: smtpd would then refuse outside recipients itself and hide an open relay.)
default_transport = discard:mailconfd e2e test delivers no outside mail
relay_transport = discard:mailconfd e2e test delivers no outside mail
virtual_mailbox_domains = customer.test
virtual_mailbox_base = $T/mail
virtual_mailbox_maps = inline:{ $user=customer.test/alice/ }
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
smtpd_tls_cert_file = $T/tls/server.pem
smtpd_tls_key_file = $T/tls/server.key
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $T/dovecot/run/auth-postfix
smtpd_sasl_auth_enable = yes
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
EOF
# Section 5 changes only the legacy service's relay restrictions, by phase.
relay_phase() {  # $1: map (SMTP-after-POP as today), dry-run (deploy/postfix snippet), cutoff
  {
    cat "$pf/main.cf.base"
    case $1 in
      # The map's value names a restriction class (as the post-login script writes it for
      # the snippet); today it only permits.
      map) printf '%s\n' "smtpd_restriction_classes = popb4smtp" "popb4smtp = permit" \
             "legacy_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, check_client_access hash:$pb/map, reject_unauth_destination" ;;
      # The shipped snippet, its paths pointed into $T, for the legacy service only.
      dry-run) sed -e "s|/etc/postfix/pop-before-smtp|$pb/map|" \
                 -e "s|/etc/postfix/popb4smtp-info.regexp|$source_dir/deploy/postfix/popb4smtp-info.regexp|" \
                 -e "s|^smtpd_relay_restrictions =|legacy_relay_restrictions =|" \
                 "$source_dir/deploy/postfix/main.cf.cutover" ;;
      cutoff) echo "legacy_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination" ;;
    esac
  } >"$pf/main.cf"
}
relay_phase map
postmap -c "$pf" "hash:$pb/map"
chown dovecot "$pb/map.db"
cat >"$pf/master.cf" <<EOF
127.0.0.1:$submission inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
127.0.0.1:$submission_tls inet n - n - - smtpd
  -o syslog_name=postfix/submissions
  -o smtpd_tls_wrappermode=yes
127.0.0.1:$auth_early inet n - n - - smtpd
  -o syslog_name=postfix/auth-early
  -o smtpd_tls_auth_only=no
127.0.0.1:$open_relay inet n - n - - smtpd
  -o syslog_name=postfix/open-relay
  -o smtpd_relay_restrictions=permit_mynetworks,permit_sasl_authenticated,reject_unauth_destination
  -o smtpd_recipient_restrictions=permit_mynetworks,permit_sasl_authenticated,reject
127.0.0.1:$legacy inet n - n - - smtpd
  -o syslog_name=postfix/legacy
  -o smtpd_relay_restrictions=\$legacy_relay_restrictions
  -o smtpd_recipient_restrictions=
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
tlsmgr    unix - - n 1000? 1 tlsmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
virtual   unix - n n - - virtual
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
EOF
postfix -c "$pf" check >/dev/null 2>&1 || true  # creates the queue directories
postfix_up=1
postfix -c "$pf" start >"$pf/start.log" 2>&1 || { cat "$pf/start.log" >&2; fail "postfix did not start"; }
for port in $submission $submission_tls $auth_early $open_relay $legacy; do wait_port "$port"; done

step "mailconfd (the settings journal on, the cockpit on the admin listener $admin)"
# README's snippets for the journal and the cockpit, their paths pointed into $T.
mkdir -p "$T/lib"
cockpit_password="cockpit-$RANDOM$RANDOM"
printf '%s\n' "$cockpit_password" >"$T/cockpit-password"
"$mailconfd" cockpit password admin <"$T/cockpit-password" >>"$T/cockpit.passwd"
cat >"$T/mailconfd.xml" <<EOF
<mailconfd>
  <server><metrics listen="127.0.0.1:$admin"/></server>
  <journal file="$T/lib/journal.sqlite" retention="180d"/>
  <cockpit report="$T/lib/cutover.json" password-file="$T/cockpit.passwd"/>
  <provider id="$provider">
    <display-name>E2E Mail</display-name>
    <incoming protocol="imap" host="$imap_host" port="993" security="tls"/>
    <incoming protocol="imap" host="$imap_host" port="143" security="starttls"/>
    <incoming protocol="pop3" host="$pop_host" port="995" security="tls"/>
    <incoming protocol="pop3" host="$pop_host" port="110" security="starttls"/>
    <outgoing host="$smtp_host" port="587" security="starttls"/>
    <outgoing host="$smtp_host" port="465" security="tls"/>
    <domain>customer.test</domain>
  </provider>
</mailconfd>
EOF
"$mailconfd" check --config "$T/mailconfd.xml" >/dev/null
"$mailconfd" serve --config "$T/mailconfd.xml" --listen 127.0.0.1:0 >"$T/ready" 2>"$T/mailconfd.log" &
mailconfd_pid=$!
for ((i = 0; i < 100; i++)); do grep -qs '^listening on' "$T/ready" && break; sleep 0.1; done
base=$(sed -n 's/^listening on \(http:[^ ]*\)$/\1/p' "$T/ready")
[ -n "$base" ] || fail "mailconfd did not become ready"
wait_port "$admin"

# Where each advertised HOST:PORT really listens in this test (instead of DNS).
good_map="$smtp_host:587:127.0.0.1:$submission,$smtp_host:465:127.0.0.1:$submission_tls"
good_map+=",$imap_host:993:$dovecot_ip:$imaps,$imap_host:143:$dovecot_ip:$imap"
good_map+=",$pop_host:995:$dovecot_ip:$pop3s,$pop_host:110:$dovecot_ip:$pop3"
real_address() {  # advertised host and port → "ADDRESS PORT" where it listens here
  local rule
  IFS=, read -ra rules <<<"$good_map"
  for rule in "${rules[@]}"; do
    [[ $rule == "$1:$2:"* ]] && { rule=${rule#"$1:$2:"}; echo "${rule%:*} ${rule##*:}"; return; }
  done
  fail "nothing listens for $1:$2"
}

step "1. autoconfig"
curl -sS --max-time 10 -o "$T/autoconfig.xml" -w '%{http_code} %{content_type}\n' \
  "$base/mail/config-v1.1.xml?emailaddress=alice%40customer.test" >"$T/autoconfig.status"
[ "$(cat "$T/autoconfig.status")" = "200 application/xml; charset=utf-8" ] ||
  fail "autoconfig answered $(cat "$T/autoconfig.status")"
xml() { xmllint --xpath "string($1)" "$T/autoconfig.xml"; }
out_host=$(xml '//outgoingServer[1]/hostname')
out_port=$(xml '//outgoingServer[1]/port')
out_socket=$(xml '//outgoingServer[1]/socketType')
out_user=$(xml '//outgoingServer[1]/username')
out_auth=$(xml '//outgoingServer[1]/authentication')
in_host=$(xml '//incomingServer[1]/hostname')
in_port=$(xml '//incomingServer[1]/port')
in_socket=$(xml '//incomingServer[1]/socketType')
in_user=$(xml '//incomingServer[1]/username')
in_type=$(xml '//incomingServer[1]/@type')
echo "   outgoing $out_host:$out_port $out_socket $out_auth user $out_user"
echo "   incoming $in_type $in_host:$in_port $in_socket user $in_user"
[ "$out_host:$out_port:$out_socket:$out_auth:$out_user" = \
  "$smtp_host:587:STARTTLS:password-cleartext:$user" ] || fail "unexpected outgoing server"
[ "$in_type:$in_host:$in_port:$in_socket:$in_user" = "imap:$imap_host:993:SSL:$user" ] ||
  fail "unexpected incoming server"

autodiscover_status=$(curl -sS --max-time 10 -o "$T/autodiscover.xml" -w '%{http_code}' \
  -H 'Content-Type: text/xml' --data-binary @- "$base/autodiscover/autodiscover.xml" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>$user</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>
EOF
)
if [ "$autodiscover_status" = 200 ]; then
  ad() { xmllint --xpath "string(//*[local-name()='Protocol'][*[local-name()='Type']='$1']/*[local-name()='$2'])" "$T/autodiscover.xml"; }
  ad_smtp="$(ad SMTP Server):$(ad SMTP Port):$(ad SMTP LoginName)"
  echo "   autodiscover SMTP $ad_smtp"
  [ "$ad_smtp" = "$smtp_host:587:$user" ] || fail "Autodiscover SMTP settings differ: $ad_smtp"
  [ "$(ad IMAP Server):$(ad IMAP Port)" = "$imap_host:993" ] || fail "Autodiscover IMAP differs"
else
  echo "   autodiscover: not served by this build ($autodiscover_status); skipped"
fi

step "2. submission with the advertised settings (STARTTLS, AUTH PLAIN and LOGIN)"
[ "$out_socket" = STARTTLS ] || fail "expected STARTTLS"
read -r smtp_ip smtp_port <<<"$(real_address "$out_host" "$out_port")"
printf 'auth-password %s\n' "$password" >"$T/swaks.conf"
chmod 600 "$T/swaks.conf"
for mechanism in PLAIN LOGIN; do
  swaks --config "$T/swaks.conf" --server "$smtp_ip" --port "$smtp_port" --timeout 20 \
    --tls --tls-verify --tls-ca-path "$T/tls/ca.pem" --tls-sni "$out_host" \
    --auth "$mechanism" --auth-user "$out_user" \
    --from "$user" --to "$user" --header "Subject: $token $mechanism" \
    --body "sent by mail_stack_test.sh" >"$T/swaks-$mechanism.log" 2>&1 ||
    { cat "$T/swaks-$mechanism.log" >&2; fail "authenticated submission with AUTH $mechanism failed"; }
  grep -q '^<~  250 2.0.0 Ok: queued' "$T/swaks-$mechanism.log" ||
    { cat "$T/swaks-$mechanism.log" >&2; fail "message with AUTH $mechanism not queued"; }
done
grep -q "$password" "$T"/swaks-*.log && fail "the password appears in swaks' transcript"

# Read both messages back over IMAP, with the incoming settings from the same answer.
read -r imap_ip imap_port <<<"$(real_address "$in_host" "$in_port")"
printf 'machine %s login %s password %s\n' "$in_host" "$in_user" "$password" >"$T/netrc"
chmod 600 "$T/netrc"
imap() {
  curl -sS --max-time 10 --netrc-file "$T/netrc" --cacert "$T/tls/ca.pem" \
    --connect-to "$in_host:$in_port:$imap_ip:$imap_port" "imaps://$in_host:$in_port/$1" "${@:2}"
}
found=""
for ((i = 0; i < 60; i++)); do
  found=$(imap INBOX -X "SEARCH SUBJECT \"$token\"" 2>/dev/null | sed -n 's/^\* SEARCH *//p' | tr -d '\r')
  [ "$(wc -w <<<"$found")" -eq 2 ] && break
  sleep 0.5
done
[ "$(wc -w <<<"$found")" -eq 2 ] || fail "expected 2 delivered messages, IMAP SEARCH found '$found'"
for uid in $found; do
  imap "INBOX;UID=$uid" >"$T/message-$uid"
  grep -q "^Subject: $token" "$T/message-$uid" || fail "message $uid has the wrong subject"
  grep -q "sent by mail_stack_test.sh" "$T/message-$uid" || fail "message $uid lost its body"
done
echo "   delivered and read back over IMAP: UIDs $found"

step "3. without AUTH, and AUTH before STARTTLS, are refused"
if swaks --server "$smtp_ip" --port "$smtp_port" --timeout 20 --tls --tls-sni "$out_host" \
  --from "$user" --to "$user" --header "Subject: $token no-auth" >"$T/swaks-noauth.log" 2>&1; then
  cat "$T/swaks-noauth.log" >&2
  fail "submission without AUTH was accepted"
fi
grep -Eq '^<~?\*+ +554 5\.7\.1 <alice@customer\.test>: Recipient address rejected' "$T/swaks-noauth.log" ||
  { cat "$T/swaks-noauth.log" >&2; fail "submission without AUTH not refused with 5xx"; }

# AUTH PLAIN sent before STARTTLS (also where the EHLO does not offer it); prints the reply.
auth_before_tls() {
  local line reply=""
  exec 3<>"/dev/tcp/127.0.0.1/$1"
  IFS= read -r -t 10 line <&3 || true
  printf 'EHLO e2e.test\r\n' >&3
  while IFS= read -r -t 10 line <&3; do [[ $line == 250\ * ]] && break; done
  printf 'AUTH PLAIN %s\r\n' "$(printf '\0%s\0%s' "$user" "$password" | base64 -w0)" >&3
  IFS= read -r -t 10 reply <&3 || true
  printf 'QUIT\r\n' >&3
  exec 3>&-
  echo "${reply%$'\r'}"
}
reply=$(auth_before_tls "$smtp_port")
echo "   AUTH before STARTTLS: $reply"
[[ $reply == 5* ]] || fail "AUTH before STARTTLS was not refused: $reply"
reply=$(auth_before_tls "$auth_early")
[[ $reply == 235* ]] || fail "the weakened service should accept AUTH before TLS: $reply"

step "4. mailconfd probe"
printf '%s\n' "$password" >"$T/password"
chmod 600 "$T/password"
probe() {
  "$mailconfd" probe --config "$T/mailconfd.xml" --ca-file "$T/tls/ca.pem" --timeout 10s "$@"
}
set +e
probe --connect-to "$good_map" --user "$user" --password-file "$T/password" >"$T/probe-good.txt" 2>&1
status=$?
set -e
cat "$T/probe-good.txt"
[ $status -eq 0 ] || fail "probe of the good setup exited $status"
grep -q '^6 servers probed, 0 with problems$' "$T/probe-good.txt" || fail "probe summary"
[ "$(grep -c '^      ok  *login  ' "$T/probe-good.txt")" -eq 6 ] || fail "a login was not proven"
grep -q "$password" "$T/probe-good.txt" && fail "the password appears in the probe report"
probe --connect-to "$good_map" --json >"$T/probe-good.json" || fail "probe --json of the good setup"
grep -q '^{"ok":true,"servers":\[' "$T/probe-good.json" || fail "probe --json: not ok"

weak_probe() {  # $1 = port behind smtp:587; prints the report; fails unless exit 1
  local status
  set +e
  probe --connect-to "$smtp_host:587:127.0.0.1:$1,$good_map" customer.test "${@:2}" >"$T/probe-weak" 2>&1
  status=$?
  set -e
  cat "$T/probe-weak"
  [ $status -eq 1 ] || fail "probe of a weakened service exited $status, expected 1"
}
echo "   -- weakened: AUTH offered before STARTTLS"
weak_probe "$auth_early"
grep -Eq '^      PROBLEM +auth-before-tls +AUTH PLAIN LOGIN offered before STARTTLS' "$T/probe-weak" ||
  fail "probe did not name AUTH before STARTTLS"
grep -q '^      ok  *relay ' "$T/probe-weak" || fail "auth-early service should still refuse relay"
echo "   -- weakened: relays for the client's IP address without a login"
weak_probe "$open_relay" --json
grep -q '"name":"relay","ok":false,"detail":"accepted RCPT TO:<relay-probe@mailconfd-probe.invalid> without authentication: an open relay' \
  "$T/probe-weak" || fail "probe did not name the open relay"
grep -q '"name":"auth-before-tls","ok":true' "$T/probe-weak" || fail "open-relay service keeps AUTH after TLS"
echo "   -- a CA the system does not trust"
set +e
"$mailconfd" probe --config "$T/mailconfd.xml" --connect-to "$good_map" --timeout 10s \
  customer.test >"$T/probe-ca.txt" 2>&1
status=$?
set -e
[ $status -eq 1 ] && grep -Eq '^      PROBLEM +certificate-chain +not trusted' "$T/probe-ca.txt" ||
  { cat "$T/probe-ca.txt"; fail "probe without --ca-file should report an untrusted chain"; }
grep -Eq '^      ok +certificate-name +valid for smtp.provider.test' "$T/probe-ca.txt" ||
  fail "certificate-name should still pass"

# Nothing was relayed: the open-relay probe stopped at RCPT TO and never sent DATA.
grep -q 'relay-probe@mailconfd-probe.invalid' "$pf/maillog" &&
  grep 'relay-probe@mailconfd-probe.invalid' "$pf/maillog" | grep -q 'status=' &&
  fail "a probe message was queued for delivery"

step "5. SMTP-after-POP customers and mailconfd cutover scan"
# Each customer has its own loopback address. A POP3 login (curl, over TLS, from that
# address) runs the post-login script, which puts the address into the map; Postfix notices
# the rebuilt map by its modification time (seconds), hence the pauses around each login.
read -r pop_ip pop_port <<<"$(real_address "$pop_host" 995)"
pop_login() {  # $1 = mailbox name, $2 = source address
  sleep 1.1
  printf 'machine %s login %s@customer.test password %s\n' "$pop_host" "$1" "$password" >"$T/netrc-$1"
  chmod 600 "$T/netrc-$1"
  curl -sS --max-time 10 --interface "$2" --netrc-file "$T/netrc-$1" --cacert "$T/tls/ca.pem" \
    --connect-to "$pop_host:995:$pop_ip:$pop_port" "pop3s://$pop_host:995/" >/dev/null ||
    fail "POP3 login of $1 from $2 failed"
  sleep 1.1
}
# Unauthenticated mail to an outside address through the legacy service; $3 = expect
# accepted|refused; the rest goes to swaks.
legacy_send() {
  local from=$1 ip=$2 expect=$3 log="$T/swaks-legacy-$2-$RANDOM.log" status
  set +e
  swaks --server 127.0.0.1 --port "$legacy" --local-interface "$ip" --timeout 20 \
    --from "$from" --to friend@remote.example --header "Subject: $token legacy" "${@:4}" >"$log" 2>&1
  status=$?
  set -e
  if [ "$expect" = accepted ]; then
    [ $status -eq 0 ] && grep -q '^<-  250 2.0.0 Ok: queued' "$log" ||
      { cat "$log" >&2; fail "mail from $from at $ip was not relayed"; }
  else
    [ $status -ne 0 ] && grep -q '^<\*\* 554 5.7.1 <friend@remote.example>: Relay access denied' "$log" ||
      { cat "$log" >&2; fail "mail from $from at $ip was not refused"; }
  fi
}
authenticated_send() {  # $1 = mailbox name, $2 = source address, $3 = password
  printf 'auth-password %s\n' "$3" >"$T/swaks-$1.conf"
  chmod 600 "$T/swaks-$1.conf"
  swaks --config "$T/swaks-$1.conf" --server "$smtp_ip" --port "$smtp_port" --local-interface "$2" \
    --timeout 20 --tls --tls-verify --tls-ca-path "$T/tls/ca.pem" --tls-sni "$out_host" \
    --auth PLAIN --auth-user "$1@customer.test" --from "$1@customer.test" \
    --to friend@remote.example --header "Subject: $token authenticated" >"$T/swaks-auth-$1.log" 2>&1
}

echo "   -- phase 1: the map as it is today"
pop_login anna 127.0.0.10                                  # (a) at-risk
legacy_send anna@customer.test 127.0.0.10 accepted
pop_login bert 127.0.0.11                                  # (b) relays, then switches
legacy_send bert@customer.test 127.0.0.11 accepted
authenticated_send bert 127.0.0.11 "$password" || fail "bert's authenticated submission"
pop_login carol 127.0.0.12                                 # (c) two mailboxes, one IP
pop_login dave 127.0.0.12
legacy_send carol@customer.test 127.0.0.12 accepted
authenticated_send fritz 127.0.0.15 "$password" || fail "fritz's authenticated submission"
# (g) forgeries from an address where nobody logged in: a HELO holding a Dovecot login line
# and one holding an AUTH, a sender holding sasl_username=; to outside (refused) and to a
# hosted mailbox (accepted: a client= line and a from= line carry the forged sender).
legacy_send forger@evil.example 127.0.0.16 refused \
  --ehlo "x dovecot: pop3-login: Login: user=<gina@customer.test>, method=PLAIN, rip=127.0.0.16, lip=127.0.0.2"
swaks --server 127.0.0.1 --port "$legacy" --local-interface 127.0.0.16 --timeout 20 \
  --ehlo "x, sasl_method=PLAIN, sasl_username=gina@customer.test" \
  --from '"y, sasl_method=PLAIN, sasl_username=gina@customer.test"@evil.example' \
  --to "$user" --header "Subject: $token forged" >"$T/swaks-forged.log" 2>&1 ||
  { cat "$T/swaks-forged.log" >&2; fail "the forged sender's mail to a hosted mailbox"; }

echo "   -- the cockpit: hanna relays (at risk), fetches new settings, sends with SMTP-Auth"
cockpit=http://127.0.0.1:$admin
# README's command for the timer: replace the report atomically (exit 1 = someone at risk).
cockpit_scan() {
  sh -c "'$mailconfd' cutover scan --config '$T/mailconfd.xml' --postfix-config '$pf' --json \
    '$T/dovecot/dovecot.log' '$pf/maillog' '$pb/popb4smtp.log' > '$T/lib/cutover.json.tmp'; [ \$? -le 1 ] && mv '$T/lib/cutover.json.tmp' '$T/lib/cutover.json'" ||
    fail "the scan for the cockpit failed"
}
cockpit_get() {  # $1 = path; the answer's body on stdout, "STATUS" in $T/cockpit.status
  curl -sS --max-time 10 -u "admin:$cockpit_password" -o "$T/cockpit.body" \
    -w '%{http_code}' "$cockpit$1" >"$T/cockpit.status" || fail "GET $1 on the admin listener"
  cat "$T/cockpit.body"
}
# Waits (at most 15 s: the journal writes every second, the cockpit re-reads every second)
# until the cockpit's CSV row of mailbox $1 has state $2, then checks the whole row and the
# page: $3 = whether it fetched settings (yes/no).
cockpit_expect() {
  local i
  for ((i = 0; i < 150; i++)); do
    cockpit_get /cockpit/contacts.csv >"$T/cockpit.csv"
    python3 - "$T/cockpit.csv" "$1" "$2" <<'PY' && break
import csv, sys
rows = {r["address"]: r for r in csv.DictReader(open(sys.argv[1], newline=""))}
sys.exit(0 if rows.get(sys.argv[2], {}).get("state") == sys.argv[3] else 1)
PY
    sleep 0.1
  done
  [ "$(cat "$T/cockpit.status")" = 200 ] || fail "the cockpit's CSV answered $(cat "$T/cockpit.status")"
  cockpit_get "/cockpit?lang=en&q=${1%@*}" >"$T/cockpit.html"
  [ "$(cat "$T/cockpit.status")" = 200 ] || fail "the cockpit answered $(cat "$T/cockpit.status")"
  python3 - "$T/cockpit.csv" "$T/cockpit.html" "$1" "$2" "$3" "$4" <<'PY' ||
import csv, re, sys
path, html_path, address, state, fetched, ip = sys.argv[1:7]
lines = open(path, newline="").read().split("\r\n")
assert lines[0] == ("address,domain,provider,state,confidence,ips,first_seen,last_seen,"
                    "fetched_settings,setup_link"), lines[0]
rows = {r["address"]: r for r in csv.DictReader(open(path, newline=""))}
r = rows[address]
time = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"
ok = (r["domain"] == "customer.test" and r["provider"] == "provider.test"
      and r["state"] == state and r["ips"] == ip
      and r["confidence"] == ("explicit" if state == "switched" else "high")
      and re.fullmatch(time, r["first_seen"]) and re.fullmatch(time, r["last_seen"])
      and r["setup_link"] == "https://autodiscover.provider.test/setup?emailaddress="
                             + address.replace("@", "%40"))
stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"
ok = ok and (re.fullmatch(stamp, r["fetched_settings"]) if fetched == "yes"
             else r["fetched_settings"] == "")
# The page's mailbox list: the state's label and what it fetched through which door.
labels = {"at-risk": "at risk", "fetched": "fetched new settings", "switched": "switched"}
cell = ("autoconfig \\(thunderbird\\) " + stamp) if fetched == "yes" else "none"
row = (r'<tr><td class="addr">' + re.escape(address) + "</td><td>" + labels[state]
       + "</td><td>[^<]*</td><td>" + cell + "</td>")
ok = ok and re.search(row, open(html_path).read())
if not ok:
    print(r, file=sys.stderr)
    sys.exit(1)
PY
    { cat "$T/cockpit.csv" >&2; fail "the cockpit does not show $1 as $2 (fetched settings: $3)"; }
  echo "   cockpit: $1 $2, fetched settings: $3"
}
# Without credentials: 401 with a Basic challenge; a wrong password: 401 as well.
[ "$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$cockpit/cockpit")" = 401 ] ||
  fail "the cockpit answered without credentials"
[ "$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -u admin:wrong "$cockpit/cockpit")" = 401 ] ||
  fail "the cockpit let a wrong password in"
# ... and nothing of it on the public listener.
[ "$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -u "admin:$cockpit_password" "$base/cockpit")" = 404 ] ||
  fail "the cockpit is on the public listener"
pop_login hanna 127.0.0.19
legacy_send hanna@customer.test 127.0.0.19 accepted
sleep 1
cockpit_scan
cockpit_expect hanna@customer.test at-risk no 127.0.0.19
cockpit_expect anna@customer.test at-risk no 127.0.0.10
# Thunderbird sets up the account anew: its autoconfig request, to the real binary.
curl -sS --max-time 10 -o "$T/autoconfig-hanna.xml" -w '%{http_code}' \
  -A "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.5.0" \
  "$base/mail/config-v1.1.xml?emailaddress=hanna%40customer.test" >"$T/autoconfig-hanna.status"
[ "$(cat "$T/autoconfig-hanna.status")" = 200 ] || fail "hanna's autoconfig request"
[ "$(xmllint --xpath 'string(//outgoingServer[1]/port)' "$T/autoconfig-hanna.xml")" = 587 ] ||
  fail "hanna's autoconfig answer has no port 587"
cockpit_expect hanna@customer.test fetched yes 127.0.0.19
# ... and sends with the new settings: 587, STARTTLS, SMTP-Auth.
authenticated_send hanna 127.0.0.19 "$password" || fail "hanna's authenticated submission"
sleep 1
cockpit_scan
cockpit_expect hanna@customer.test switched yes 127.0.0.19
cockpit_expect anna@customer.test at-risk no 127.0.0.10
# The journal's row: address, door and client kind, nothing else about the request.
python3 - "$T/lib/journal.sqlite" <<'PY' || fail "the journal's row for hanna's fetch"
import sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
rows = db.execute("SELECT address, door, client, fetches, first_seen <= last_seen FROM fetch"
                  " WHERE address LIKE 'hanna%'").fetchall()
assert rows == [("hanna@customer.test", "autoconfig", "thunderbird", 1, 1)], rows
columns = [c[1] for c in db.execute("PRAGMA table_info(fetch)")]
assert columns == ["address", "door", "client", "first_seen", "last_seen", "fetches"], columns
PY
grep -q "$cockpit_password\|$password" "$T/mailconfd.log" && fail "a password appears in mailconfd's log"
grep -q 'hanna' "$T/mailconfd.log" && fail "a mailbox address appears in mailconfd's log"

# The probe's cut-off-day check, from an address of its own, the legacy service standing in
# for submission: after a POP3 login as the test account, relaying without AUTH still works.
cutoff_probe() {  # $1 = source address; prints the report, returns the probe's status
  local status
  set +e
  probe --connect-to "$smtp_host:587:127.0.0.1:$legacy,$good_map" --source "$1" --parallel 1 \
    --user "$user" --password-file "$T/password" customer.test >"$T/probe-cutoff-$1.txt" 2>&1
  status=$?
  set -e
  cat "$T/probe-cutoff-$1.txt"
  return $status
}
cutoff_probe 127.0.0.17 && fail "the probe passed while SMTP-after-POP is on"
grep -Eq '^      PROBLEM +relay-after-login +accepted RCPT TO:<relay-probe@mailconfd-probe\.invalid> without authentication after logged in as alice@customer\.test at POP3 pop\.provider\.test:995 from 127\.0\.0\.17.*: SMTP-after-POP is still on' \
  "$T/probe-cutoff-127.0.0.17.txt" || fail "the probe did not name relay-after-login"
[ "$(grep -c '^      PROBLEM' "$T/probe-cutoff-127.0.0.17.txt")" -eq 1 ] ||
  fail "the probe should have found exactly one problem"

echo "   -- phase 2: the dry-run rule and the INFO tag (deploy/postfix/main.cf.cutover)"
relay_phase dry-run
postfix -c "$pf" reload >/dev/null 2>&1
pop_login dora 127.0.0.13                                  # (d) explicit evidence
legacy_send dora@customer.test 127.0.0.13 accepted         # the dry run refuses nothing
sleep 1
grep -Eq 'postfix/legacy/smtpd\[[0-9]+\]: NOQUEUE: reject_warning: RCPT from [^ ]*\[127\.0\.0\.13\]: 554 5\.7\.1 <friend@remote\.example>: Relay access denied;' "$pf/maillog" ||
  fail "the dry-run rule logged no reject_warning"
grep -Eq 'postfix/legacy/smtpd\[[0-9]+\]: (NOQUEUE|[0-9A-F]+): info: RCPT from [^ ]*\[127\.0\.0\.13\]: relayed via SMTP-after-POP; from=<dora@customer\.test> to=<friend@remote\.example>' "$pf/maillog" ||
  fail "the INFO tag was not logged"
grep -q 'popb4smtp\[[0-9]*\]: added ip=127.0.0.13 user=dora@customer.test$' "$pb/popb4smtp.log" ||
  fail "the post-login script did not log dora"
grep -q "^127.0.0.13	popb4smtp$" "$pb/map" || fail "the post-login script did not write the map"

echo "   -- phase 3: the cut-off (the map is gone)"
relay_phase cutoff
postfix -c "$pf" reload >/dev/null 2>&1
sleep 1
pop_login emil 127.0.0.14                                  # (e) broke
legacy_send emil@customer.test 127.0.0.14 refused
authenticated_send fritz 127.0.0.15 "wrong-$password" &&    # (f) switched, wrong password
  fail "AUTH with a wrong password succeeded"
sleep 1
grep -q 'warning: [^ ]*\[127.0.0.15\]: SASL PLAIN authentication failed: .*, sasl_username=fritz@customer.test$' "$pf/maillog" ||
  fail "Postfix logged no SASL failure with the user name"

echo "   -- the scan"
set +e
"$mailconfd" cutover scan --config "$T/mailconfd.xml" --postfix-config "$pf" --json \
  "$T/dovecot/dovecot.log" "$pf/maillog" "$pb/popb4smtp.log" >"$T/cutover.json" 2>"$T/cutover.err"
status=$?
set -e
[ $status -eq 1 ] || { cat "$T/cutover.err" "$T/cutover.json" >&2; fail "cutover scan exited $status, expected 1"; }
[ -s "$T/cutover.err" ] && { cat "$T/cutover.err" >&2; fail "cutover scan wrote to stderr"; }
python3 - "$T/cutover.json" <<'PY' || fail "cutover scan classified a customer wrongly (report above)"
import json, sys
report = json.load(open(sys.argv[1]))
got = {m["address"]: (m["state"], m["confidence"], m["candidates_with"]) for m in report["mailboxes"]}
want = {
    # The probe's test account: switched in section 2, but the probe's relay tests after its
    # POP3 login from 127.0.0.17 were refused on the submission services: broke, as a
    # customer's would be.
    "alice@customer.test": ("broke", "high", []),
    "anna@customer.test": ("at-risk", "high", []),          # (a)
    "bert@customer.test": ("switched", "explicit", []),     # (b)
    "carol@customer.test": ("ambiguous", "low", ["dave@customer.test"]),  # (c)
    "dave@customer.test": ("ambiguous", "low", ["carol@customer.test"]),
    "dora@customer.test": ("at-risk", "explicit", []),      # (d)
    "emil@customer.test": ("broke", "high", []),            # (e)
    "fritz@customer.test": ("login-failing", "explicit", []),  # (f)
    "hanna@customer.test": ("switched", "explicit", []),    # the cockpit's customer
}
ok = got == want                                           # (g): gina nowhere
ok &= report["summary"] == {"at-risk": 2, "ambiguous": 2, "broke": 2, "login-failing": 1,
                            "switched": 2, "total": 9, "not_hosted": 0}
ok &= report["not_hosted"] == [] and report["unattributed"] == []
ok &= report["domains"] == [{"domain": "customer.test", "provider": "provider.test", "at-risk": 2,
                             "ambiguous": 2, "broke": 2, "login-failing": 1, "switched": 2,
                             "total": 9}]
ips = {m["address"]: m["ips"] for m in report["mailboxes"]}
ok &= ips["anna@customer.test"] == ["127.0.0.10"] and ips["emil@customer.test"] == ["127.0.0.14"]
# The forger's refused relay (and the probe's first relay test, unless its login follows
# within the second the scan allows for logs written with different clock resolutions).
ok &= report["logs"]["explicit_evidence"] >= 2 and report["logs"]["unattributed_denied"] >= 1
for m in report["mailboxes"]:
    ok &= m["setup_url"] == "https://autodiscover.provider.test/setup?emailaddress=" + m["address"].replace("@", "%40")
if not ok:
    json.dump(report, sys.stderr, indent=1)
    sys.exit(1)
PY
echo "   classified: anna at-risk, bert switched, carol+dave ambiguous, dora at-risk (explicit),"
echo "   emil broke, fritz login-failing, hanna switched; the forged lines named nobody"
"$mailconfd" cutover scan --config "$T/mailconfd.xml" --postfix-config "$pf" --csv \
  "$T/dovecot/dovecot.log" "$pf/maillog" >"$T/cutover.csv" || true
[ "$(head -1 "$T/cutover.csv")" = $'mailbox,domain,state,evidence,last_seen,setup_link\r' ] ||
  fail "CSV header"
# Everyone but bert and hanna (switched): alice (the probe account), anna, carol, dave, dora, emil, fritz.
[ "$(grep -c 'customer.test,' "$T/cutover.csv")" -eq 7 ] || { cat "$T/cutover.csv"; fail "CSV rows"; }
grep -q "$password" "$T/cutover.json" "$T/cutover.csv" "$pb/popb4smtp.log" &&
  fail "a password appears in the scan's output"
echo "   -- the probe after the cut-off"
cutoff_probe 127.0.0.18 || fail "the probe should pass after the cut-off"
grep -Eq '^      ok +relay-after-login +refused after logged in as alice@customer\.test at POP3 pop\.provider\.test:995 from 127\.0\.0\.18.*Relay access denied' \
  "$T/probe-cutoff-127.0.0.18.txt" || fail "relay-after-login should pass after the cut-off"
grep -q "$password" "$T"/probe-cutoff-*.txt && fail "the password appears in the probe report"

step "all passed"
