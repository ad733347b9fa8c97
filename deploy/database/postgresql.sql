-- mailconfd's own tables beside PostfixAdmin's (domain, alias_domain, mailbox), and the triggers that tell
-- a running mailconfd about every change (LISTEN mailconfd). Run once, as the owner of the
-- PostfixAdmin database, after PostfixAdmin's schema exists:
--   psql -v ON_ERROR_STOP=1 -d postfix -f postgresql.sql
-- then let mailconfd's role read: GRANT SELECT ON domain, alias_domain, mailbox,
-- mailconfd_domain, mailconfd_mailbox, mailconfd_change, mailconfd_changed TO mailconfd;
--
-- Everything here is optional per row: a domain without a mailconfd_domain row is served with
-- its provider's defaults (<database provider>), a mailbox without a mailconfd_mailbox row logs
-- in as its domain's login scheme says. There are no port or security columns on purpose:
-- servers, ports and TLS come only from the XML file, whose policy no row can change.

SET client_min_messages = warning;

-- Plain text columns: mailconfd checks every value itself (a row it refuses is skipped,
-- logged with its key and counted; `mailconfd check` lists them).
CREATE TABLE IF NOT EXISTS mailconfd_domain (
  domain    text PRIMARY KEY,  -- as in PostfixAdmin's domain.domain
  provider  text,  -- a <provider id> of the XML file; NULL: <database provider>
  login     text,  -- 'address' or 'local-part'; NULL: the provider's <login>
  incoming  text,  -- 'imap-first', 'pop3-first', 'imap-only', 'pop3-only'; NULL: imap-first
  imap_host text,  -- host names only (no port); NULL: the provider's
  pop3_host text,
  smtp_host text
);

CREATE TABLE IF NOT EXISTS mailconfd_mailbox (
  username   text PRIMARY KEY,  -- as in PostfixAdmin's mailbox.username (the address)
  login_name text NOT NULL      -- what the mailbox logs in with, e.g. web12p3
);

-- The change log: each statement that changes rows of these tables adds the names of the
-- domains they belong to (once each) under the next serials of mailconfd_change, in the same
-- transaction. mailconfd reads only the domains logged after the serial it last read (and
-- the alias domains of those); a serial without its row (a TRUNCATE, rows deleted from the
-- log) makes it read every row instead. Bumping the one row of mailconfd_change serializes
-- the writing transactions (each waits for the one before to commit), so serials are in
-- commit order without gaps. Each statement bumps it once: a bulk change is best one
-- statement (or a few) per transaction, not one statement per row. Prune old rows at will,
-- e.g. daily: DELETE FROM mailconfd_changed WHERE at < now() - interval '1 day';
CREATE TABLE IF NOT EXISTS mailconfd_change (
  serial bigint NOT NULL
);
INSERT INTO mailconfd_change (serial) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM mailconfd_change);
CREATE TABLE IF NOT EXISTS mailconfd_changed (
  id     bigint PRIMARY KEY,  -- mailconfd_change.serial after this change
  domain text NOT NULL,       -- the domain whose rows changed
  at     timestamp with time zone NOT NULL DEFAULT now()
);

-- TG_ARGV[0]: the domain of a row r of the table (its key, or a mailbox's domain part).
CREATE OR REPLACE FUNCTION mailconfd_log() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  q text;
  n bigint;
  first bigint;
BEGIN
  IF TG_OP = 'INSERT' THEN
    q := format('SELECT DISTINCT %s AS d FROM new_rows r', TG_ARGV[0]);
  ELSIF TG_OP = 'DELETE' THEN
    q := format('SELECT DISTINCT %s AS d FROM old_rows r', TG_ARGV[0]);
  ELSE
    q := format('SELECT %1$s AS d FROM old_rows r UNION SELECT %1$s FROM new_rows r',
                TG_ARGV[0]);
  END IF;
  EXECUTE 'SELECT count(*) FROM (' || q || ') x WHERE d IS NOT NULL' INTO n;
  IF n = 0 THEN
    RETURN NULL;
  END IF;
  UPDATE mailconfd_change SET serial = serial + n RETURNING serial - n INTO first;
  EXECUTE 'INSERT INTO mailconfd_changed (id, domain) SELECT $1 + row_number() OVER (ORDER BY d), d '
          'FROM (' || q || ') x WHERE d IS NOT NULL' USING first;
  RETURN NULL;
END $$;

-- TRUNCATE: the serial moves without a row of the log: mailconfd reads every row.
CREATE OR REPLACE FUNCTION mailconfd_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE mailconfd_change SET serial = serial + 1;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION mailconfd_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('mailconfd', TG_TABLE_NAME);
  RETURN NULL;
END $$;

DO $$
DECLARE
  t text;
  domain_of text;
BEGIN
  FOREACH t IN ARRAY ARRAY['domain', 'alias_domain', 'mailbox', 'mailconfd_domain',
                         'mailconfd_mailbox'] LOOP
    domain_of := CASE t WHEN 'alias_domain' THEN 'r.alias_domain'
                        WHEN 'mailconfd_mailbox' THEN 'substring(r.username from ''[^@]*$'')'
                        ELSE 'r.domain' END;
    EXECUTE format('DROP TRIGGER IF EXISTS mailconfd_log_i ON %I', t);
    EXECUTE format('CREATE TRIGGER mailconfd_log_i AFTER INSERT ON %I REFERENCING NEW TABLE '
                   'AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION mailconfd_log(%L)',
                   t, domain_of);
    EXECUTE format('DROP TRIGGER IF EXISTS mailconfd_log_u ON %I', t);
    EXECUTE format('CREATE TRIGGER mailconfd_log_u AFTER UPDATE ON %I REFERENCING OLD TABLE '
                   'AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT '
                   'EXECUTE FUNCTION mailconfd_log(%L)', t, domain_of);
    EXECUTE format('DROP TRIGGER IF EXISTS mailconfd_log_d ON %I', t);
    EXECUTE format('CREATE TRIGGER mailconfd_log_d AFTER DELETE ON %I REFERENCING OLD TABLE '
                   'AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION mailconfd_log(%L)',
                   t, domain_of);
    EXECUTE format('DROP TRIGGER IF EXISTS mailconfd_truncated ON %I', t);
    EXECUTE format('CREATE TRIGGER mailconfd_truncated AFTER TRUNCATE ON %I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION mailconfd_truncated()', t);
    EXECUTE format('DROP TRIGGER IF EXISTS mailconfd_notify ON %I', t);
    EXECUTE format('CREATE TRIGGER mailconfd_notify AFTER INSERT OR UPDATE OR DELETE OR '
                   'TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION mailconfd_notify()', t);
  END LOOP;
END $$;

-- The settings journal, when <journal dsn-file> puts it here (every replica writes the same
-- rows: a fetch's first and last time and count are merged). Its role needs write rights on
-- these two tables only, and no others; the source's role stays read-only:
--   CREATE ROLE mailconfd_journal LOGIN PASSWORD '…';
--   GRANT SELECT, INSERT, UPDATE, DELETE ON mailconfd_journal_fetch,
--     mailconfd_journal_history TO mailconfd_journal;
CREATE TABLE IF NOT EXISTS mailconfd_journal_fetch (
  address    text NOT NULL,    -- the mailbox that fetched settings (lower case)
  door       text NOT NULL,    -- autoconfig, autodiscover, autodiscover-json, redirect, …
  client     text NOT NULL,    -- the client kind (thunderbird, outlook, apple, …)
  first_seen bigint NOT NULL,  -- Unix seconds
  last_seen  bigint NOT NULL,
  fetches    bigint NOT NULL,
  PRIMARY KEY (address, door, client)
);

-- The cockpit's burn-down: mailboxes per state in the newest scan of each day (UTC).
CREATE TABLE IF NOT EXISTS mailconfd_journal_history (
  day           text PRIMARY KEY,  -- YYYY-MM-DD
  at_risk       bigint NOT NULL,
  fetched       bigint NOT NULL,
  switched      bigint NOT NULL,
  ambiguous     bigint NOT NULL,
  broke         bigint NOT NULL,
  login_failing bigint NOT NULL,
  unknown       bigint NOT NULL
);

-- The built-in ACME client's shared storage, when <acme dsn-file> puts it here: the account
-- key, every certificate with its PRIVATE KEY (PEM, unless <acme key-file> seals them: whoever
-- can read plain rows can impersonate every name), the http-01 answers and tls-alpn-01
-- digests of the order in progress, so that every replica serves the same certificates and
-- answers the CA, what the issuer learnt from the CA (its hold after a 429 or a failure, the
-- renewalInfo windows, each name's wait after its order failed), so that the next issuer goes
-- on from it, and the names a replica that
-- does not issue asks the issuer for (on demand). Only one replica issues at a time (it holds
-- the session-level advisory lock 7881696737120710246 on its connection). Its role needs
-- rights on these tables and the sequence only, and no other role any right on them:
--   CREATE ROLE mailconfd_acme LOGIN PASSWORD '…';
--   GRANT SELECT, INSERT, UPDATE, DELETE ON mailconfd_acme_account,
--     mailconfd_acme_certificate, mailconfd_acme_challenge, mailconfd_acme_alpn_challenge,
--     mailconfd_acme_hold, mailconfd_acme_renewal, mailconfd_acme_backoff TO mailconfd_acme;
--   GRANT SELECT, INSERT, DELETE ON mailconfd_acme_request TO mailconfd_acme;
--   GRANT USAGE ON SEQUENCE mailconfd_acme_version TO mailconfd_acme;
CREATE SEQUENCE IF NOT EXISTS mailconfd_acme_version;
CREATE TABLE IF NOT EXISTS mailconfd_acme_account (
  id      integer PRIMARY KEY CHECK (id = 1),  -- one account
  key_pem text NOT NULL                        -- the account's private key (EC P-256, PEM)
);
CREATE TABLE IF NOT EXISTS mailconfd_acme_certificate (
  name            text PRIMARY KEY,  -- the one DNS name the certificate is for (lower case)
  certificate_pem text NOT NULL,     -- leaf first, then the chain
  key_pem         text NOT NULL,     -- the certificate's private key (PEM)
  version         bigint NOT NULL    -- from mailconfd_acme_version: replicas load what is newer
);
CREATE TABLE IF NOT EXISTS mailconfd_acme_challenge (
  token  text PRIMARY KEY,  -- http-01 token, while its order runs
  answer text NOT NULL      -- the key authorization
);
-- Added in the release after the first with <acme dsn-file>: running this file again (every
-- statement is IF NOT EXISTS) and the GRANT above adds them to an existing database.
CREATE TABLE IF NOT EXISTS mailconfd_acme_alpn_challenge (
  name   varchar(253) PRIMARY KEY,  -- tls-alpn-01: the name, while its order runs
  digest char(64) NOT NULL          -- SHA-256 of the key authorization (hexadecimal)
);
CREATE TABLE IF NOT EXISTS mailconfd_acme_hold (
  id         integer PRIMARY KEY CHECK (id = 1),  -- one CA
  held_until bigint NOT NULL,  -- Unix seconds: no order before (429 Retry-After, CA failing)
  ca_delay   bigint NOT NULL,  -- seconds: the last hold after the CA failed (doubled next)
  reason     text NOT NULL
);
CREATE TABLE IF NOT EXISTS mailconfd_acme_renewal (
  name         varchar(253) PRIMARY KEY,  -- the certificate's name
  cert_id      text NOT NULL,             -- RFC 9773 certID the CA answered about
  window_start bigint NOT NULL,           -- Unix seconds: the suggested window
  window_end   bigint NOT NULL,
  renew_at     bigint NOT NULL,           -- the point chosen in it
  ask_again    bigint NOT NULL            -- the CA's Retry-After: not asked before
);
CREATE TABLE IF NOT EXISTS mailconfd_acme_backoff (
  name       varchar(253) PRIMARY KEY,  -- a name whose last order failed (not the CA's hold)
  not_before bigint NOT NULL,           -- Unix seconds: no order for it before
  delay      bigint NOT NULL            -- seconds it waits (5 min, doubled per failure, a day)
);
CREATE TABLE IF NOT EXISTS mailconfd_acme_request (
  name      varchar(253) PRIMARY KEY,           -- a wanted name, asked for at a handshake
  requested timestamptz NOT NULL DEFAULT now()  -- rows an hour old are deleted unread
);
