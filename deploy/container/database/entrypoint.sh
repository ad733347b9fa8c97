#!/bin/sh
# The database image's start (database/Dockerfile): on the first start creates the cluster in
# /var/lib/postgresql/data, the database "postfix" with PostfixAdmin's tables and mailconfd's,
# the role "mailconfd" (SELECT only) with the password of the DSN file and, when the journal's
# DSN file is there too, the role it names (default mailconfd_journal) with write rights on
# the settings journal's two tables only (<journal dsn-file>: the replicas share one
# journal); then runs
# PostgreSQL as the user postgres, listening on every address of the container's network
# (password required, scram-sha-256). The password never reaches an argument list or a log.
set -eu
data=/var/lib/postgresql/data
dsn=${MAILCONFD_DSN_FILE:-/run/secrets/database.dsn}
journal_dsn=${MAILCONFD_JOURNAL_DSN_FILE:-/run/secrets/journal.dsn}
bin=/usr/lib/postgresql/15/bin
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

if [ ! -s "$data/PG_VERSION" ]; then
  [ -r "$dsn" ] || { echo "mailconfd-database: cannot read $dsn" >&2; exit 1; }
  # libpq's key=value form: password=VALUE up to the next blank (no quoting supported here).
  MAILCONFD_PASSWORD=$(sed -n '1s/.*\(^\|[[:space:]]\)password=\([^[:space:]]*\).*/\2/p' "$dsn")
  [ -n "$MAILCONFD_PASSWORD" ] || { echo "mailconfd-database: no password= in $dsn" >&2; exit 1; }
  export MAILCONFD_PASSWORD
  chown postgres:postgres "$data"
  chmod 0700 "$data"
  as_postgres "$bin/initdb" -D "$data" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >/dev/null
  echo "host all all all scram-sha-256" >>"$data/pg_hba.conf"
  as_postgres "$bin/pg_ctl" -D "$data" -w -o "-c listen_addresses='' -k /tmp" start >/dev/null
  as_postgres "$bin/psql" -h /tmp -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
    -c 'CREATE DATABASE postfix'
  as_postgres "$bin/psql" -h /tmp -U postgres -d postfix -v ON_ERROR_STOP=1 -q \
    -f /usr/share/mailconfd-database/postfixadmin.sql \
    -f /usr/share/mailconfd-database/postgresql.sql
  as_postgres "$bin/psql" -h /tmp -U postgres -d postfix -v ON_ERROR_STOP=1 -q <<'SQL'
\getenv password MAILCONFD_PASSWORD
CREATE ROLE mailconfd LOGIN PASSWORD :'password';
GRANT SELECT ON domain, alias_domain, mailbox, mailconfd_domain, mailconfd_mailbox,
  mailconfd_change, mailconfd_changed TO mailconfd;
SQL
  unset MAILCONFD_PASSWORD
  roles="the role mailconfd"
  if [ -e "$journal_dsn" ]; then
    [ -r "$journal_dsn" ] || { echo "mailconfd-database: cannot read $journal_dsn" >&2; exit 1; }
    JOURNAL_PASSWORD=$(sed -n '1s/.*\(^\|[[:space:]]\)password=\([^[:space:]]*\).*/\2/p' "$journal_dsn")
    JOURNAL_USER=$(sed -n '1s/.*\(^\|[[:space:]]\)user=\([^[:space:]]*\).*/\2/p' "$journal_dsn")
    [ -n "$JOURNAL_PASSWORD" ] || { echo "mailconfd-database: no password= in $journal_dsn" >&2; exit 1; }
    [ "${JOURNAL_USER:-mailconfd_journal}" != mailconfd ] ||
      { echo "mailconfd-database: $journal_dsn must name another role than mailconfd (it writes)" >&2; exit 1; }
    export JOURNAL_PASSWORD JOURNAL_USER=${JOURNAL_USER:-mailconfd_journal}
    as_postgres "$bin/psql" -h /tmp -U postgres -d postfix -v ON_ERROR_STOP=1 -q <<'SQL'
\getenv password JOURNAL_PASSWORD
\getenv role JOURNAL_USER
CREATE ROLE :"role" LOGIN PASSWORD :'password';
GRANT SELECT, INSERT, UPDATE, DELETE ON mailconfd_journal_fetch, mailconfd_journal_history TO :"role";
SQL
    roles="the roles mailconfd and $JOURNAL_USER"
    unset JOURNAL_PASSWORD
  fi
  as_postgres "$bin/pg_ctl" -D "$data" -w -m fast stop >/dev/null
  echo "mailconfd-database: created the database postfix and $roles" >&2
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups -- \
  "$bin/postgres" -D "$data" -c listen_addresses='*' -k /tmp
