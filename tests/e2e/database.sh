# A real PostgreSQL 15 or MariaDB 10.11 (Debian's) for an end-to-end test, started as an
# unprivileged user (postgres or mysql when the test runs as root) in the test's temporary
# directory: PostgreSQL on a unix socket only ($T/sock), MariaDB on 127.0.0.1:$db_port (and a
# socket for the administrator). Sourced after the test sets driver (postgresql or mariadb),
# T, db_log and source_dir, and defines fail. Shared by postgres_source_test.sh, mariadb_source_test.sh,
# journal_database_test.sh and acme_database_test.sh.
#   db_require TOOL...   the driver's tools and the test's own, or a clear failure
#   db_create            initdb / mariadb-install-db, start, CREATE DATABASE mail
#   start_db [hidden]    start again; "hidden": where mailconfd cannot reach it (another
#                        socket directory, no TCP), for changes it must not be told about
#   stop_db [KILL]       stop and wait (KILL: the server and every process it started, as a
#                        crash or the OOM killer would)
#   sql [STATEMENT]      as the administrator: STATEMENT, or standard input; columns by |
#   sql_as ROLE PASSWORD the same as ROLE, over the connection mailconfd uses
#   db_dsn ROLE PASSWORD the DSN mailconfd reads for ROLE (the password quoted)
#   db_source_schema PASSWORD  PostfixAdmin's tables, deploy/database/DRIVER.sql and the
#                        source's role mailconfd with the reads that file's comment gives
# db_mariadbd_args (an array) adds options to mariadbd (TLS certificates, say).

pgbin=/usr/lib/postgresql/15/bin
PATH=$PATH:/usr/sbin
db_pid="" db_as=() db_user=$(id -un) db_admin=() db_mariadbd_args=()

db_require() {
  local tools
  case $driver in
    postgresql) tools=("$pgbin/initdb" "$pgbin/pg_ctl" "$pgbin/psql") ;;
    mariadb) tools=(mariadb-install-db mariadbd mariadb python3) ;;
    *) echo "FAIL: driver must be postgresql or mariadb"; exit 1 ;;
  esac
  for tool in "${tools[@]}" "$@"; do
    [ -x "$tool" ] || command -v "$tool" >/dev/null ||
      { echo "FAIL: $tool missing (.ci/install-deps installs it)"; exit 1; }
  done
}

db_create() {
  mkdir "$T/db" "$T/sock" "$T/hidden"
  touch "$db_log"
  if [ "$(id -u)" -eq 0 ]; then
    db_user=$([ "$driver" = postgresql ] && echo postgres || echo mysql)
    getent passwd "$db_user" >/dev/null || fail "no $db_user user (its server package)"
    db_as=(runuser -u "$db_user" --)
    chown "$db_user" "$T/db" "$T/sock" "$T/hidden" "$db_log"
  fi
  if [ "$driver" = postgresql ]; then
    echo 'admin-secret' > "$T/pwfile"
    chmod 644 "$T/pwfile"
    "${db_as[@]}" "$pgbin/initdb" -D "$T/db" -U admin --pwfile="$T/pwfile" -A scram-sha-256 \
      --no-sync -E UTF8 --locale=C.UTF-8 >"$T/initdb.log" 2>&1 || { cat "$T/initdb.log"; fail initdb; }
    start_db
    PGPASSWORD=admin-secret "$pgbin/psql" -h "$T/sock" -U admin -d postgres -qc 'CREATE DATABASE mail'
  else
    db_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "${db_as[@]}" mariadb-install-db --no-defaults --datadir="$T/db" --user="$db_user" \
      --auth-root-authentication-method=normal --skip-test-db >"$T/install.log" 2>&1 ||
      { cat "$T/install.log"; fail mariadb-install-db; }
    start_db
    mariadb --no-defaults -S "$T/sock/mariadb.sock" -u root -e 'CREATE DATABASE mail'
  fi
}

start_db() {
  local dir=$T/sock
  [ "${1:-}" = hidden ] && dir=$T/hidden
  if [ "$driver" = postgresql ]; then
    "${db_as[@]}" "$pgbin/pg_ctl" -D "$T/db" -w -t 30 -l "$db_log" \
      -o "-k $dir -c listen_addresses='' -c fsync=off -c synchronous_commit=off" start \
      >/dev/null || fail "pg_ctl start"
    db_admin=(env PGPASSWORD=admin-secret "$pgbin/psql" -h "$dir" -U admin -d mail
      -v ON_ERROR_STOP=1 -qAt -F '|')
    return
  fi
  local net=(--bind-address=127.0.0.1 --port="$db_port")
  [ "${1:-}" = hidden ] && net=(--skip-networking)
  rm -f "$dir/mariadb.sock"
  mariadbd --no-defaults --datadir="$T/db" --socket="$dir/mariadb.sock" "${net[@]}" \
    --user="$db_user" --pid-file="$T/db/mariadb.pid" --log-error="$db_log" \
    --innodb-buffer-pool-size=16M --innodb-log-file-size=8M --skip-log-bin --skip-name-resolve \
    --innodb-flush-log-at-trx-commit=2 "${db_mariadbd_args[@]}" >/dev/null 2>&1 &
  db_pid=$!
  db_admin=(mariadb --no-defaults -S "$dir/mariadb.sock" -u root -N -B mail)
  for ((i = 0; i < 300; i++)); do
    mariadb --no-defaults -S "$dir/mariadb.sock" -u root -e 'SELECT 1' >/dev/null 2>&1 && return 0
    kill -0 "$db_pid" 2>/dev/null || break
    sleep 0.1
  done
  fail "mariadbd did not start"
}

stop_db() {
  if [ "$driver" = postgresql ]; then
    if [ "${1:-}" != KILL ]; then
      "${db_as[@]}" "$pgbin/pg_ctl" -D "$T/db" -m fast stop >/dev/null 2>&1 || true
      return
    fi
    local postmaster children alive
    postmaster=$(head -n 1 "$T/db/postmaster.pid")
    children=$(ps -o pid= --ppid "$postmaster" || true)
    kill -KILL "$postmaster" $children
    for ((i = 0; i < 100; i++)); do
      alive=""
      for p in "$postmaster" $children; do kill -0 "$p" 2>/dev/null && alive=1; done
      [ -z "$alive" ] && break
      sleep 0.1
    done
    return
  fi
  [ -n "$db_pid" ] || return 0
  kill "-${1:-TERM}" "$db_pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do kill -0 "$db_pid" 2>/dev/null || break; sleep 0.1; done
  { wait "$db_pid"; } 2>/dev/null || true
  db_pid=""
}

sql() {
  local run=("${db_admin[@]}")
  if [ $# -gt 0 ]; then
    [ "$driver" = postgresql ] && run+=(-c "$*") || run+=(-e "$*")
  fi
  if [ "$driver" = postgresql ]; then "${run[@]}"; else "${run[@]}" | tr '\t' '|'; fi
}

sql_as() {
  if [ "$driver" = postgresql ]; then
    PGPASSWORD=$2 "$pgbin/psql" -h "$T/sock" -U "$1" -d mail -v ON_ERROR_STOP=1 -qAt -F '|'
  else
    mariadb --no-defaults -h 127.0.0.1 -P "$db_port" -u "$1" -p"$2" -N -B mail | tr '\t' '|'
  fi
}

db_dsn() {
  if [ "$driver" = postgresql ]; then
    printf "host=%s dbname=mail user=%s password='%s'\n" "$T/sock" "$1" "$2"
  else
    printf "host=127.0.0.1 port=%s user=%s password='%s' dbname=mail\n" "$db_port" "$1" "$2"
  fi
}

db_source_schema() {
  local tables=(domain alias_domain mailbox mailconfd_domain mailconfd_mailbox mailconfd_change
    mailconfd_changed)
  if [ "$driver" = postgresql ]; then
    sql < "$source_dir/deploy/container/database/postfixadmin.sql"
    sql < "$source_dir/deploy/database/postgresql.sql"
    sql "CREATE ROLE mailconfd LOGIN PASSWORD '$1'"
    sql "GRANT SELECT ON $(IFS=,; echo "${tables[*]}") TO mailconfd"
  else
    sql < "$source_dir/tests/fixtures/postfixadmin.mysql.sql"
    sql < "$source_dir/deploy/database/mariadb.sql"
    sql "CREATE USER mailconfd@'127.0.0.1' IDENTIFIED BY '$1'"
    local t
    for t in "${tables[@]}"; do sql "GRANT SELECT ON mail.$t TO mailconfd@'127.0.0.1'"; done
  fi
}
