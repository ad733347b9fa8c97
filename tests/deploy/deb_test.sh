#!/usr/bin/env bash
# make test-deb: the Debian package, tested the way an administrator uses it.
#
#  1. builds the package (.ci/build-deb) and a newer build of it (version +test1);
#  2. lintian, pedantic, fails on every tag that is not overridden in
#     deploy/debian/mailconfd.lintian-overrides (each override says why);
#  3. boots a clean Debian 12 tree with systemd in systemd-nspawn (own network namespace:
#     only its loopback) and, inside it: installs the package; the unit is enabled, runs as
#     the mailconfd user (member of ssl-cert) and answers over HTTP exactly what
#     `mailconfd render` prints; `man mailconfd` and `man 5 mailconfd.xml` render without
#     warnings; the shipped templates are the built-in ones; a locally edited conffile
#     survives the upgrade and the service restarts onto the new binary; a broken
#     configuration on upgrade keeps the old process serving and the output says why;
#     `remove` keeps configuration, state and user; `purge` leaves the tree as it was
#     before the installation (every path, and /etc/passwd, group, shadow, gshadow).
#
# Each file of deploy/debian/ and where it is checked: control, rules, source/format,
# changelog, copyright (the build in 1, lintian in 2); mailconfd.lintian-overrides (2);
# mailconfd.install (the conffile /etc/mailconfd/mailconfd.xml, "apt-get install" and the
# upgrade); mailconfd.docs (README.md.gz in the list of installed paths); postinst (the system
# user in ssl-cert, /var/lib/mailconfd 0750, the restart onto the new binary on upgrade, the
# refusal with a broken configuration, the install with one already in place); prerm (the
# scan's enabled timer stopped on remove); postrm ("remove" keeps, "purge" deletes user,
# group, state and configuration, and the timer's enablement). rules also ships the scan's
# units (deploy/systemd/mailconfd-cutover-scan.*): installed, not enabled, accepted by
# systemd-analyze verify; enabled, they scan /var/log/mail.log as the mailconfd user, and
# the timer stays active across the upgrade.
#
# Needs root (systemd-nspawn). The Debian tree is cached by tests/deploy/debian-base.sh
# (a few minutes the first time); later runs take about two minutes. KEEP=1 keeps the
# temporary directory (tree, logs) for inspection; NO_BUILD=1 tests the packages of the last
# run again.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
started=$(date +%s)
step() { echo "== $* ($(($(date +%s) - started))s)"; }
fail() {
  echo "deb_test.sh: FAIL: $*" >&2
  exit 1
}
[ "$(id -u)" -eq 0 ] || fail "needs root (systemd-nspawn)"

step "building the package and a newer build of it"
base_version=$(dpkg-parsechangelog -l deploy/debian/changelog -S Version)
new_version="$base_version+test1"
if [ -n "${NO_BUILD:-}" ]; then # while working on this script: the packages of the last run
  arch=$(dpkg --print-architecture)
  deb=build/deb/mailconfd_${base_version}_$arch.deb
  new_deb=build/deb/mailconfd_${new_version}_$arch.deb
else
  deb=$(.ci/build-deb)
  new_deb=$(.ci/build-deb "$new_version")
fi

step "lintian"
if ! tags=$(lintian --pedantic -I --fail-on error,warning,info,pedantic "$deb" 2>&1); then
  printf '%s\n' "$tags" >&2
  fail "lintian reports tags (above)"
fi

step "Debian 12 tree"
# The package's run-time dependencies are in the cached tree, so installing needs no
# network; man-db and groff-base render the man pages, curl asks the service.
mapfile -t depends < <(dpkg-deb -f "$deb" Depends | sed 's/([^)]*)//g; s/|[^,]*//g' |
  tr ',' '\n' | tr -d ' ' | grep -v '^$')
tarball=$(tests/deploy/debian-base.sh tarball deb-test systemd systemd-sysv dbus man-db \
  groff-base curl "${depends[@]}")
work=$(mktemp -d /var/tmp/mailconfd-deb-test.XXXXXX)
tree=$work/root
mkdir "$tree"
tar -C "$tree" -xf "$tarball"
cp "$deb" "$new_deb" "$tree/root/"
deb_in=/root/$(basename "$deb")
new_in=/root/$(basename "$new_deb")

nspawn=""
init=""
cleanup() {
  local rc=$?
  if [ -n "$init" ] && kill -0 "$init" 2>/dev/null; then
    nsenter -t "$init" -a -- systemctl poweroff >/dev/null 2>&1 || true
  fi
  if [ -n "$nspawn" ]; then
    for _ in $(seq 1 100); do
      kill -0 "$nspawn" 2>/dev/null || break
      sleep 0.1
    done
    kill "$nspawn" 2>/dev/null || true
    wait "$nspawn" 2>/dev/null || true
  fi
  if [ $rc -ne 0 ]; then
    echo "--- container console (last 30 lines):" >&2
    tail -30 "$work/console.log" >&2 || true
  fi
  if [ -n "${KEEP:-}" ]; then
    echo "deb_test.sh: kept $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

step "booting it with systemd"
systemd-nspawn -q --register=no --keep-unit --private-network -M "mailconfd-deb-$$" \
  -D "$tree" -b >"$work/console.log" 2>&1 </dev/null &
nspawn=$!
# The container's PID 1: systemd, started by systemd-nspawn as its child.
for _ in $(seq 1 200); do
  init=$(pgrep -P "$nspawn" -x systemd || true)
  [ -n "$init" ] && break
  kill -0 "$nspawn" 2>/dev/null || fail "systemd-nspawn exited"
  sleep 0.1
done
[ -n "$init" ] || fail "the container's systemd did not start"

# Runs a command in the container, with a clean environment.
ct() {
  nsenter -t "$init" -a -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}
# systemctl needs systemd's private socket, which exists shortly after PID 1 starts.
for _ in $(seq 1 300); do
  ct test -S /run/systemd/private && break
  sleep 0.1
done
state=$(ct timeout 120 systemctl is-system-running --wait || true)
case $state in
  running | degraded) ;;
  *) fail "the container's systemd is '$state'" ;;
esac

# Every path of the tree except what changes by itself (logs, caches, apt's and dpkg's
# own records, the run-time directories) and /root (the .deb files).
snapshot() {
  ct find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \
    -o -path /var/tmp -o -path /var/log -o -path /var/cache -o -path /var/lib/apt \
    -o -path /var/lib/dpkg -o -path /root -o -path /var/lib/systemd/timers \
    -o -path /var/lib/systemd/random-seed -o -path /var/lib/systemd/catalog \
    -o -path '/etc/*-' \) -prune -o -print | sort
  for f in /etc/passwd /etc/group /etc/shadow /etc/gshadow; do
    echo "== $f"
    ct cat "$f"
  done
}
snapshot >"$work/before"

# GET on the service inside the container: "STATUS BODY-FILE".
get() {
  local name=$1 url=$2
  ct rm -f "/tmp/$name"
  ct curl -s -o "/tmp/$name" -w '%{http_code}' --max-time 10 "$url" || true
  ct cat "/tmp/$name" >"$work/$name" 2>/dev/null || true
}
autoconfig=http://127.0.0.1:8080/mail/config-v1.1.xml?emailaddress=alice%40
expect_eq() { # WHAT EXPECTED ACTUAL
  [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
}

step "apt-get install"
ct apt-get install -y --no-install-recommends "$deb_in" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log" >&2; fail "apt-get install"; }
expect_eq "version" "install ok installed $base_version" \
  "$(ct dpkg-query -W -f '${Status} ${Version}' mailconfd)"
expect_eq "is-enabled" enabled "$(ct systemctl is-enabled mailconfd || true)"
expect_eq "is-active" active "$(ct systemctl is-active mailconfd || true)"
expect_eq "files" "$(printf '%s\n' /. /etc /etc/mailconfd /etc/mailconfd/mailconfd.xml /lib \
  /lib/systemd /lib/systemd/system /lib/systemd/system/mailconfd.service \
  /lib/systemd/system/mailconfd-cutover-scan.service \
  /lib/systemd/system/mailconfd-cutover-scan.timer /usr /usr/sbin \
  /usr/sbin/mailconfd /usr/share /usr/share/doc /usr/share/doc/mailconfd \
  /usr/share/doc/mailconfd/README.md.gz /usr/share/doc/mailconfd/changelog.gz \
  /usr/share/doc/mailconfd/copyright /usr/share/lintian /usr/share/lintian/overrides \
  /usr/share/lintian/overrides/mailconfd /usr/share/mailconfd /usr/share/mailconfd/templates \
  /usr/share/mailconfd/templates/setup.css /usr/share/mailconfd/templates/setup.de.html \
  /usr/share/mailconfd/templates/setup.en.html /usr/share/man /usr/share/man/man5 \
  /usr/share/man/man5/mailconfd.xml.5.gz /usr/share/man/man8 /usr/share/man/man8/mailconfd.8.gz |
  sort)" "$(ct dpkg -L mailconfd | sort)"
expect_eq "conffiles" "/etc/mailconfd/mailconfd.xml" \
  "$(ct dpkg-query -W -f '${Conffiles}' mailconfd | awk 'NF { print $1 }')"
ct cat /etc/mailconfd/mailconfd.xml | cmp - deploy/example/mailconfd.xml ||
  fail "/etc/mailconfd/mailconfd.xml is not deploy/example/mailconfd.xml"
for t in setup.css setup.de.html setup.en.html; do
  ct cat "/usr/share/mailconfd/templates/$t" | cmp - "templates/$t" ||
    fail "/usr/share/mailconfd/templates/$t differs from templates/$t"
done
expect_eq "Documentation" '"man:mailconfd(8)" "man:mailconfd.xml(5)"' \
  "$(ct systemctl show -P Documentation mailconfd)"
for unit in mailconfd.service mailconfd-cutover-scan.service mailconfd-cutover-scan.timer; do
  verify=$(ct systemd-analyze verify "/lib/systemd/system/$unit" 2>&1 || echo "exit $?")
  expect_eq "systemd-analyze verify $unit" "" "$verify"
done
# The scan's units are shipped, not enabled: the administrator turns the timer on.
expect_eq "is-enabled mailconfd-cutover-scan.timer" disabled \
  "$(ct systemctl is-enabled mailconfd-cutover-scan.timer || true)"
expect_eq "is-active mailconfd-cutover-scan.timer" inactive \
  "$(ct systemctl is-active mailconfd-cutover-scan.timer || true)"
expect_eq "the scan's user, groups and program" \
  "mailconfd mailconfd adm ssl-cert /usr/sbin/mailconfd" \
  "$(ct systemctl show -P User mailconfd-cutover-scan.service) $(ct systemctl show -P Group \
    mailconfd-cutover-scan.service) $(ct systemctl show -P SupplementaryGroups \
    mailconfd-cutover-scan.service) $(ct systemctl show -P ExecStart \
    mailconfd-cutover-scan.service | grep -o '/usr/s*bin/mailconfd' | sort -u)"

step "the service: user, state directory, HTTP"
pid=$(ct systemctl show -P MainPID mailconfd)
[ "$pid" -gt 0 ] || fail "no MainPID"
expect_eq "process user" "mailconfd mailconfd" "$(ct stat -c '%U %G' "/proc/$pid")"
expect_eq "groups" "mailconfd ssl-cert" "$(ct id -nG mailconfd)"
expect_eq "passwd entry" "/var/lib/mailconfd:/usr/sbin/nologin" \
  "$(ct getent passwd mailconfd | cut -d: -f6,7)"
[ "$(ct getent passwd mailconfd | cut -d: -f3)" -lt 1000 ] || fail "mailconfd is not a system user"
expect_eq "/var/lib/mailconfd" "mailconfd mailconfd 750" \
  "$(ct stat -c '%U %G %a' /var/lib/mailconfd)"
expect_eq "readyz" 200 "$(get readyz http://127.0.0.1:8080/readyz)"
expect_eq "readyz body" "ready" "$(cat "$work/readyz")"
expect_eq "autoconfig" 200 "$(get autoconfig "${autoconfig}example.com")"
ct mailconfd render autoconfig alice@example.com --config /etc/mailconfd/mailconfd.xml |
  cmp - "$work/autoconfig" || fail "the served autoconfig differs from mailconfd render"
grep -q '<hostname>smtp.example.net</hostname>' "$work/autoconfig" || fail "autoconfig body"
expect_eq "setup page" 200 "$(get setup-before http://127.0.0.1:8080/)"

step "cutover scan --journal: lines in the container's real journald"
# The mail servers' lines go to journald the way Postfix and Dovecot send theirs: syslog(3)
# datagrams on /dev/log (logger: one socket, so the order is kept) with their identifiers
# (SYSLOG_IDENTIFIER postfix/smtpd, postfix/qmgr, postfix/submission/smtpd, dovecot, ...);
# the scan reads them back through journalctl -o json. alice logs in over POP3 and relays without AUTH (at-risk), bob submits with AUTH
# (switched), carol and dave share an IP and one of them relays (ambiguous, both named);
# mallory appears only inside client-controlled text and a line under a foreign tag (nothing).
jlog() { # TAG MESSAGE
  ct logger --id=$$ -t "$1" -p mail.info -- "$2"
}
jlog dovecot "pop3-login: Login: user=<alice@example.com>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.1, mpid=101, TLS, session=<a1>"
jlog dovecot "imap-login: Login: user=<carol@example.org>, method=PLAIN, rip=::ffff:192.0.2.30, lip=192.0.2.1, mpid=102, TLS, session=<c1>"
jlog dovecot "pop3-login: Login: user=<dave@example.org>, method=PLAIN, rip=192.0.2.30, lip=192.0.2.1, mpid=103, TLS, session=<d1>"
jlog postfix/smtpd "connect from pc[192.0.2.10]"
jlog postfix/smtpd "NOQUEUE: reject: RCPT from pc[192.0.2.99]: 554 5.7.1 <x@remote.example>: Relay access denied; from=<x@y> to=<x@remote.example> proto=ESMTP helo=<dovecot: pop3-login: Login: user=<mallory@example.com>, method=PLAIN, rip=192.0.2.99, lip=1.1.1.1>"
jlog logger "pop3-login: Login: user=<mallory@example.com>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.1, mpid=9, TLS"
jlog postfix/smtpd "4Jq1A: client=pc[192.0.2.10]"
jlog postfix/cleanup "4Jq1A: message-id=<a1@pc>"
jlog postfix/qmgr "4Jq1A: from=<alice@example.com>, size=512, nrcpt=1 (queue active)"
jlog postfix/smtp "4Jq1A: to=<friend@remote.example>, relay=mx.remote.example[198.51.100.25]:25, delay=0.2, delays=0.1/0/0.05/0.05, dsn=2.0.0, status=sent (250 2.0.0 Ok)"
jlog postfix/qmgr "4Jq1A: removed"
jlog postfix/submission/smtpd "4Jq1B: client=pc[192.0.2.11], sasl_method=PLAIN, sasl_username=bob@example.com"
jlog postfix/qmgr "4Jq1B: from=<bob@example.com>, size=512, nrcpt=1 (queue active)"
jlog postfix/smtp "4Jq1B: to=<friend@remote.example>, relay=mx.remote.example[198.51.100.25]:25, delay=0.2, delays=0.1/0/0.05/0.05, dsn=2.0.0, status=sent (250 2.0.0 Ok)"
jlog postfix/smtpd "4Jq1C: client=pc[192.0.2.30]"
jlog postfix/qmgr "4Jq1C: from=<sasl_username=mallory@example.com>, size=512, nrcpt=1 (queue active)"
jlog postfix/smtp "4Jq1C: to=<friend@remote.example>, relay=mx.remote.example[198.51.100.25]:25, delay=0.2, delays=0.1/0/0.05/0.05, dsn=2.0.0, status=sent (250 2.0.0 Ok)"
# journald writes asynchronously: wait (bounded) until the last line can be read back.
for _ in $(seq 1 100); do
  ct journalctl -q -o cat -t postfix/smtp | grep -q '^4Jq1C: to=' && break
  sleep 0.1
done
scan_rc=0
ct mailconfd cutover scan --config /etc/mailconfd/mailconfd.xml --mynetworks 127.0.0.0/8 \
  --json --journal --state /tmp/cutover.state >"$work/scan.json" 2>"$work/scan.err" ||
  scan_rc=$?
expect_eq "cutover scan --journal exit status (someone at risk)" 1 "$scan_rc"
expect_eq "cutover scan --journal stderr" "" "$(cat "$work/scan.err")"
# address state confidence candidates_with ips, one line per mailbox; then the counts. The
# scan uses 14 of the lines above (not the connect and cleanup lines, and not the forged
# login in a HELO or under the tag "logger").
verdict() {
  python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
for m in r["mailboxes"] + r["not_hosted"]:
    print(m["address"], m["state"], m["confidence"], ",".join(m["candidates_with"]) or "-",
          ",".join(m["ips"]))
print("unattributed", len(r["unattributed"]), "summary", r["summary"]["at-risk"],
      r["summary"]["ambiguous"], r["summary"]["switched"], r["summary"]["total"],
      "used", r["logs"]["used"], "denied", r["logs"]["unattributed_denied"])
' "$1"
}
expect_eq "cutover scan --journal mailboxes" "$(printf '%s\n' \
  "alice@example.com at-risk high - 192.0.2.10" \
  "bob@example.com switched explicit - 192.0.2.11" \
  "carol@example.org ambiguous low dave@example.org 192.0.2.30" \
  "dave@example.org ambiguous low carol@example.org 192.0.2.30" \
  "unattributed 0 summary 1 2 1 4 used 14 denied 1")" "$(verdict "$work/scan.json")"
# Incremental: the saved cursor makes the next run read only the lines written since.
jlog postfix/submission/smtpd "4Jq1D: client=pc[192.0.2.10], sasl_method=PLAIN, sasl_username=alice@example.com"
jlog postfix/qmgr "4Jq1D: from=<alice@example.com>, size=512, nrcpt=1 (queue active)"
for _ in $(seq 1 100); do
  ct journalctl -q -o cat -t postfix/qmgr | grep -q '^4Jq1D: from=' && break
  sleep 0.1
done
lines_before=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["logs"]["lines"])' \
  "$work/scan.json")
scan_rc=0
ct mailconfd cutover scan --config /etc/mailconfd/mailconfd.xml --mynetworks 127.0.0.0/8 \
  --json --journal --state /tmp/cutover.state >"$work/scan2.json" 2>"$work/scan.err" ||
  scan_rc=$?
expect_eq "second scan exit status (carol and dave still ambiguous)" 1 "$scan_rc"
expect_eq "second scan mailboxes" "$(printf '%s\n' \
  "alice@example.com switched explicit - 192.0.2.10" \
  "bob@example.com switched explicit - 192.0.2.11" \
  "carol@example.org ambiguous low dave@example.org 192.0.2.30" \
  "dave@example.org ambiguous low carol@example.org 192.0.2.30" \
  "unattributed 0 summary 0 2 2 4 used 16 denied 1")" "$(verdict "$work/scan2.json")"
lines_after=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["logs"]["lines"])' \
  "$work/scan2.json")
# Only the journal entries since the cursor were read: the two lines above, plus whatever
# the system logged meanwhile (a handful), never the whole journal again.
new_lines=$((lines_after - lines_before))
[ "$new_lines" -ge 2 ] && [ "$new_lines" -lt 50 ] ||
  fail "the second --journal --state scan read $new_lines entries (expected the few new ones)"
ct rm -f /tmp/cutover.state

step "the packaged cut-off scan: timer enabled, service run on /var/log/mail.log"
# As README says: a mail log as Debian's rsyslog keeps it (root:adm 0640), the timer enabled,
# a scan started at once. alice relays via the map after a POP login (at-risk); bob submits
# with SMTP-Auth (switched). The report lands in /var/lib/mailconfd as the mailconfd user.
printf '%s\n' \
  "2026-12-01T10:00:00.000000+00:00 mail dovecot: pop3-login: Login: user=<alice@example.com>, method=PLAIN, rip=203.0.113.10, lip=192.0.2.1, mpid=1, TLS, session=<a>" \
  "2026-12-01T10:00:05.000000+00:00 mail postfix/smtpd[5]: A1: client=pc[203.0.113.10]" \
  "2026-12-01T10:00:05.000000+00:00 mail postfix/qmgr[6]: A1: from=<alice@example.com>, size=1, nrcpt=1" \
  "2026-12-01T10:00:05.000000+00:00 mail postfix/smtp[7]: A1: to=<r@remote.test>, relay=mx[198.51.100.1]:25, status=sent (ok)" \
  "2026-12-01T10:05:00.000000+00:00 mail postfix/submission/smtpd[5]: B2: client=pc[203.0.113.11], sasl_method=PLAIN, sasl_username=bob@example.com" \
  "2026-12-01T10:05:00.000000+00:00 mail postfix/qmgr[6]: B2: from=<bob@example.com>, size=1, nrcpt=1" |
  ct sh -c 'cat >/var/log/mail.log && chown root:adm /var/log/mail.log && chmod 0640 /var/log/mail.log'
ct systemctl enable --now mailconfd-cutover-scan.timer >"$work/enable.log" 2>&1 ||
  { cat "$work/enable.log" >&2; fail "systemctl enable --now mailconfd-cutover-scan.timer"; }
expect_eq "is-active mailconfd-cutover-scan.timer (enabled)" active \
  "$(ct systemctl is-active mailconfd-cutover-scan.timer || true)"
ct timeout 120 systemctl start mailconfd-cutover-scan.service ||
  { ct journalctl -u mailconfd-cutover-scan --no-pager >&2; fail "the packaged scan failed"; }
expect_eq "the scan's report and state" "mailconfd mailconfd 600 mailconfd mailconfd 600" \
  "$(ct stat -c '%U %G %a' /var/lib/mailconfd/cutover.json /var/lib/mailconfd/cutover.state |
    tr '\n' ' ' | sed 's/ $//')"
ct cat /var/lib/mailconfd/cutover.json >"$work/packaged-scan.json"
expect_eq "the packaged scan's mailboxes" "$(printf '%s\n' \
  "alice@example.com at-risk high - 203.0.113.10" \
  "bob@example.com switched explicit - 203.0.113.11" \
  "unattributed 0 summary 1 0 1 2 used 6 denied 0")" "$(verdict "$work/packaged-scan.json")"
ct test ! -e /var/lib/mailconfd/cutover.json.tmp || fail "the scan left cutover.json.tmp"

step "man pages"
for page in "mailconfd" "5 mailconfd.xml"; do
  # shellcheck disable=SC2086 # the section and the name are two words
  ct env MANWIDTH=100 man -P cat $page >"$work/man.txt" 2>"$work/man.err" ||
    fail "man $page: exit $?"
  [ ! -s "$work/man.err" ] || { cat "$work/man.err" >&2; fail "man $page wrote to stderr"; }
  case $page in
    mailconfd)
      grep -q '^NAME$' "$work/man.txt" && grep -q 'mailconfd - mail client autoconfiguration' \
        "$work/man.txt" && grep -q -- '--connect-to LIST' "$work/man.txt" ||
        { cat "$work/man.txt" >&2; fail "man mailconfd"; }
      ;;
    *)
      grep -q 'mailconfd.xml - mailconfd configuration file' "$work/man.txt" &&
        grep -q 'limits/@keepalive-timeout' "$work/man.txt" ||
        { cat "$work/man.txt" >&2; fail "man 5 mailconfd.xml"; }
      ;;
  esac
done
for f in /usr/share/man/man8/mailconfd.8.gz /usr/share/man/man5/mailconfd.xml.5.gz; do
  warnings=$(ct env MANWIDTH=100 man --warnings -l "$f" 2>&1 >/dev/null)
  expect_eq "groff warnings for $f" "" "$warnings"
done

step "a local edit, then the upgrade to $new_version"
# The edit: one more domain, and the shipped templates (identical to the built-in ones).
ct sed -i -e 's|<domain>example.org</domain>|&<domain>local.example</domain>|' \
  -e 's|<setup lang="en"/>|<setup lang="en" templates="/usr/share/mailconfd/templates"/>|' \
  /etc/mailconfd/mailconfd.xml
ct systemctl reload mailconfd || fail "systemctl reload"
# systemctl returns once the check passed and SIGHUP is sent; the builder thread swaps the new
# snapshot in a little later (README, Reload): wait for it, up to 10 s.
for _ in $(seq 1 100); do
  [ "$(get local "${autoconfig}local.example")" = 200 ] && break
  sleep 0.1
done
expect_eq "local.example after reload" 200 "$(get local "${autoconfig}local.example")"
expect_eq "setup page from /usr/share/mailconfd/templates" 200 \
  "$(get setup-after http://127.0.0.1:8080/)"
cmp "$work/setup-before" "$work/setup-after" ||
  fail "the setup page from /usr/share/mailconfd/templates differs from the built-in one"
edited=$(ct sha256sum /etc/mailconfd/mailconfd.xml)
ct apt-get install -y --no-install-recommends "$new_in" >"$work/upgrade.log" 2>&1 ||
  { cat "$work/upgrade.log" >&2; fail "apt-get install (upgrade)"; }
expect_eq "version after upgrade" "install ok installed $new_version" \
  "$(ct dpkg-query -W -f '${Status} ${Version}' mailconfd)"
expect_eq "the edited conffile" "$edited" "$(ct sha256sum /etc/mailconfd/mailconfd.xml)"
expect_eq "/etc/mailconfd" "mailconfd.xml" "$(ct ls -A /etc/mailconfd)"
expect_eq "is-active after upgrade" active "$(ct systemctl is-active mailconfd || true)"
upgraded=$(ct systemctl show -P MainPID mailconfd)
[ "$upgraded" != "$pid" ] || fail "the upgrade did not restart mailconfd (MainPID $pid)"
expect_eq "the running binary" /usr/sbin/mailconfd "$(ct readlink "/proc/$upgraded/exe")"
expect_eq "local.example after upgrade" 200 "$(get local "${autoconfig}local.example")"
expect_eq "the scan's timer after upgrade" "enabled active" \
  "$(ct systemctl is-enabled mailconfd-cutover-scan.timer || true) $(ct systemctl is-active \
    mailconfd-cutover-scan.timer || true)"

step "a broken configuration: reload refused, the service keeps serving"
ct sed -i 's|port="587" security="starttls"|port="25" security="starttls"|' \
  /etc/mailconfd/mailconfd.xml
ct systemctl reload mailconfd >"$work/reload.log" 2>&1 &&
  fail "systemctl reload accepted a configuration with port 25"
expect_eq "is-active after a refused reload" active "$(ct systemctl is-active mailconfd || true)"
expect_eq "MainPID after a refused reload" "$upgraded" "$(ct systemctl show -P MainPID mailconfd)"
expect_eq "local.example after a refused reload" 200 "$(get local "${autoconfig}local.example")"

step "a broken configuration on upgrade"
ct apt-get install -y --reinstall --no-install-recommends "$new_in" >"$work/broken.log" 2>&1 ||
  { cat "$work/broken.log" >&2; fail "apt-get install --reinstall with a broken configuration"; }
grep -q '^mailconfd: .*mailconfd was NOT restarted' "$work/broken.log" &&
  grep -q '^mailconfd:   /etc/mailconfd/mailconfd.xml:[0-9]*:[0-9]*: .*25' "$work/broken.log" ||
  { cat "$work/broken.log" >&2; fail "the upgrade does not say why it kept the old process"; }
expect_eq "MainPID after a broken upgrade" "$upgraded" "$(ct systemctl show -P MainPID mailconfd)"
expect_eq "local.example after a broken upgrade" 200 "$(get local "${autoconfig}local.example")"

step "remove"
ct apt-get remove -y mailconfd >"$work/remove.log" 2>&1 ||
  { cat "$work/remove.log" >&2; fail "apt-get remove"; }
expect_eq "status after remove" "deinstall ok config-files" \
  "$(ct dpkg-query -W -f '${Status}' mailconfd)"
expect_eq "is-active after remove" inactive "$(ct systemctl is-active mailconfd || true)"
expect_eq "the scan's timer after remove" inactive \
  "$(ct systemctl is-active mailconfd-cutover-scan.timer || true)"
ct test ! -e /usr/sbin/mailconfd || fail "/usr/sbin/mailconfd is still there"
ct test -f /etc/mailconfd/mailconfd.xml || fail "remove deleted the configuration"
ct test -d /var/lib/mailconfd || fail "remove deleted /var/lib/mailconfd"
ct getent passwd mailconfd >/dev/null || fail "remove deleted the mailconfd user"

step "purge"
ct apt-get purge -y mailconfd >"$work/purge.log" 2>&1 ||
  { cat "$work/purge.log" >&2; fail "apt-get purge"; }
ct dpkg-query -W mailconfd >/dev/null 2>&1 && fail "dpkg still knows mailconfd after purge"
snapshot >"$work/after"
diff -u "$work/before" "$work/after" || fail "purge left the tree different from before (above)"

step "installing with a broken configuration already in place"
# Enabled, but not started, and the output says why; the installation itself succeeds.
ct mkdir /etc/mailconfd
sed 's|port="587" security="starttls"|port="25" security="starttls"|' \
  deploy/example/mailconfd.xml | ct sh -c 'cat >/etc/mailconfd/mailconfd.xml'
ct apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confold "$deb_in" \
  >"$work/install-broken.log" 2>&1 ||
  { cat "$work/install-broken.log" >&2; fail "apt-get install with a broken configuration"; }
grep -q '^mailconfd: .*mailconfd is enabled but was not started' "$work/install-broken.log" ||
  { cat "$work/install-broken.log" >&2; fail "the installation does not say why"; }
expect_eq "is-enabled (broken configuration)" enabled "$(ct systemctl is-enabled mailconfd || true)"
[ "$(ct systemctl is-active mailconfd || true)" != active ] ||
  fail "mailconfd runs with a broken configuration"
expect_eq "nothing listens" 000 "$(get none http://127.0.0.1:8080/readyz 2>/dev/null)"
# A file of the administrator's own survives the purge, and so does its directory.
ct mkdir /etc/mailconfd/tls
ct sh -c 'echo mine >/etc/mailconfd/tls/notes'
ct apt-get purge -y mailconfd >"$work/purge2.log" 2>&1 ||
  { cat "$work/purge2.log" >&2; fail "apt-get purge"; }
expect_eq "the administrator's file after purge" "mine" "$(ct cat /etc/mailconfd/tls/notes)"
ct test ! -e /etc/mailconfd/mailconfd.xml || fail "purge kept /etc/mailconfd/mailconfd.xml"

step "done"
