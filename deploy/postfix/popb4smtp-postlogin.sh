#!/bin/sh
# mailconfd: Dovecot post-login script for POP-before-SMTP (the common DIY setup), logging
# who logged in from where so that `mailconfd cutover scan` need not guess from the IP.
# After each POP3/IMAP login it puts the client IP into the Postfix check_client_access map
# for POPB4SMTP_GRACE seconds and logs
#   popb4smtp[PID]: added ip=IP user=USER
# (syslog facility mail, or a line in that format appended to POPB4SMTP_LOG), then runs the
# mail process. Wiring: dovecot-postlogin.conf. Dovecot sets USER and IP; the settings come
# from popb4smtp-postlogin.conf next to this script (Dovecot gives post-login scripts a clean
# environment), each with a default:
#
#   POPB4SMTP_MAP             the map's source file (default /etc/postfix/pop-before-smtp);
#                             the script rebuilds it and runs postmap hash:MAP
#   POPB4SMTP_GRACE           seconds an IP stays in the map (default 1800)
#   POPB4SMTP_ACTION          the map's value (default OK; popb4smtp once the restriction
#                             class of main.cf.cutover is in place: each hit is then logged)
#   POPB4SMTP_LOG             a file to append the log line to (default: syslog via logger)
#   POPB4SMTP_POSTFIX_CONFIG  Postfix's config directory for postmap (default /etc/postfix)
set -u
settings=${0%.sh}.conf
# shellcheck source=/dev/null
[ -r "$settings" ] && . "$settings"
map=${POPB4SMTP_MAP:-/etc/postfix/pop-before-smtp}
grace=${POPB4SMTP_GRACE:-1800}
action=${POPB4SMTP_ACTION:-OK}
log=${POPB4SMTP_LOG:-}
config=${POPB4SMTP_POSTFIX_CONFIG:-/etc/postfix}
ip=${IP:-}
user=$(printf '%s' "${USER:-}" | tr -d '\000-\040\177')

case $ip in
  ::ffff:*.*) ip=${ip#::ffff:} ;;
esac
# Only an address goes into the map, never anything else Dovecot might pass.
case $ip in
  '' | *[!0-9A-Fa-f:.]*) exec "$@" ;;
esac
case $grace in
  '' | *[!0-9]*) grace=1800 ;;
esac

now=$(date +%s)
(
  flock -w 10 9 || exit 0
  times=$map.times
  touch "$times"
  # One line per IP: "EPOCH IP"; expired ones and this IP's old one are dropped.
  awk -v now="$now" -v grace="$grace" -v ip="$ip" '$1 + grace >= now && $2 != ip' \
    "$times" >"$times.new" && printf '%s %s\n' "$now" "$ip" >>"$times.new" &&
    mv "$times.new" "$times" &&
    awk -v action="$action" '{ print $2 "\t" action }' "$times" >"$map.new" &&
    mv "$map.new" "$map" &&
    postmap -c "$config" "hash:$map"
) 9>"$map.lock"

if [ -n "$log" ]; then
  printf '%s %s popb4smtp[%s]: added ip=%s user=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)" \
    "$(hostname -s 2>/dev/null || echo localhost)" "$$" "$ip" "$user" >>"$log"
else
  logger -p mail.info -t popb4smtp -i "added ip=$ip user=$user"
fi
exec "$@"
