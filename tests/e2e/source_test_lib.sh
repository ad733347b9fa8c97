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
