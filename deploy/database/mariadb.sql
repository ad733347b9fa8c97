-- mailconfd's own tables beside PostfixAdmin's (domain, alias_domain, mailbox), and the triggers that bump
-- a change marker mailconfd polls (<database poll>; MariaDB has no LISTEN/NOTIFY). Run once,
-- as the owner of the PostfixAdmin database, after PostfixAdmin's schema exists:
--   mariadb postfix < mariadb.sql
-- then let mailconfd's user read: GRANT SELECT ON postfix.domain TO mailconfd; and the same
-- for alias_domain, mailbox, mailconfd_domain, mailconfd_mailbox, mailconfd_change,
-- mailconfd_changed.
--
-- Everything here is optional per row, as in postgresql.sql. There are no port or security
-- columns on purpose: servers, ports and TLS come only from the XML file. TRUNCATE fires no
-- trigger in MariaDB: after one, run UPDATE mailconfd_change SET serial = serial + 1.

CREATE TABLE IF NOT EXISTS mailconfd_domain (
  domain    varchar(255) NOT NULL PRIMARY KEY,  -- as in PostfixAdmin's domain.domain
  provider  text,  -- a <provider id> of the XML file; NULL: <database provider>
  login     text,  -- 'address' or 'local-part'; NULL: the provider's <login>
  incoming  text,  -- 'imap-first', 'pop3-first', 'imap-only', 'pop3-only'; NULL: imap-first
  imap_host text,  -- host names only (no port); NULL: the provider's
  pop3_host text,
  smtp_host text
) DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS mailconfd_mailbox (
  username   varchar(255) NOT NULL PRIMARY KEY,  -- PostfixAdmin's mailbox.username
  login_name text NOT NULL                       -- what the mailbox logs in with, e.g. web12p3
) DEFAULT CHARSET = utf8mb4;

-- The change marker and the change log: every changed row of these tables adds the name of the
-- domain it belongs to under the next serial, in the same transaction. mailconfd polls the
-- serial, then reads only the domains logged after the serial it last read (and the alias
-- domains of those); a serial without its row (the UPDATE after a TRUNCATE, rows deleted from
-- the log) makes it read every row instead. Bumping the one row of mailconfd_change serializes
-- the writing transactions, so serials are in commit order without gaps. Prune old rows at
-- will, e.g. daily: DELETE FROM mailconfd_changed WHERE at < NOW() - INTERVAL 1 DAY;
CREATE TABLE IF NOT EXISTS mailconfd_change (
  serial bigint NOT NULL
);
INSERT INTO mailconfd_change (serial) SELECT 0 FROM DUAL
  WHERE NOT EXISTS (SELECT 1 FROM mailconfd_change);
CREATE TABLE IF NOT EXISTS mailconfd_changed (
  id     bigint NOT NULL PRIMARY KEY,  -- mailconfd_change.serial after this change
  domain varchar(255) NOT NULL,        -- the domain whose rows changed
  at     timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP
) DEFAULT CHARSET = utf8mb4;

-- Logs before, and after when it is another domain (a row moved, an alias retargeted to...).
DELIMITER //
CREATE OR REPLACE PROCEDURE mailconfd_log(IN before_change varchar(255),
                                          IN after_change varchar(255))
BEGIN
  UPDATE mailconfd_change SET serial = serial + 1;
  INSERT INTO mailconfd_changed (id, domain) SELECT serial, before_change FROM mailconfd_change;
  IF after_change IS NOT NULL AND after_change <> before_change THEN
    UPDATE mailconfd_change SET serial = serial + 1;
    INSERT INTO mailconfd_changed (id, domain) SELECT serial, after_change FROM mailconfd_change;
  END IF;
END //
DELIMITER ;

CREATE OR REPLACE TRIGGER mailconfd_domain_i AFTER INSERT ON domain FOR EACH ROW
  CALL mailconfd_log(NEW.domain, NULL);
CREATE OR REPLACE TRIGGER mailconfd_domain_u AFTER UPDATE ON domain FOR EACH ROW
  CALL mailconfd_log(OLD.domain, NEW.domain);
CREATE OR REPLACE TRIGGER mailconfd_domain_d AFTER DELETE ON domain FOR EACH ROW
  CALL mailconfd_log(OLD.domain, NULL);
CREATE OR REPLACE TRIGGER mailconfd_alias_domain_i AFTER INSERT ON alias_domain FOR EACH ROW
  CALL mailconfd_log(NEW.alias_domain, NULL);
CREATE OR REPLACE TRIGGER mailconfd_alias_domain_u AFTER UPDATE ON alias_domain FOR EACH ROW
  CALL mailconfd_log(OLD.alias_domain, NEW.alias_domain);
CREATE OR REPLACE TRIGGER mailconfd_alias_domain_d AFTER DELETE ON alias_domain FOR EACH ROW
  CALL mailconfd_log(OLD.alias_domain, NULL);
CREATE OR REPLACE TRIGGER mailconfd_mailbox_i AFTER INSERT ON mailbox FOR EACH ROW
  CALL mailconfd_log(NEW.domain, NULL);
CREATE OR REPLACE TRIGGER mailconfd_mailbox_u AFTER UPDATE ON mailbox FOR EACH ROW
  CALL mailconfd_log(OLD.domain, NEW.domain);
CREATE OR REPLACE TRIGGER mailconfd_mailbox_d AFTER DELETE ON mailbox FOR EACH ROW
  CALL mailconfd_log(OLD.domain, NULL);
CREATE OR REPLACE TRIGGER mailconfd_mcdomain_i AFTER INSERT ON mailconfd_domain FOR EACH ROW
  CALL mailconfd_log(NEW.domain, NULL);
CREATE OR REPLACE TRIGGER mailconfd_mcdomain_u AFTER UPDATE ON mailconfd_domain FOR EACH ROW
  CALL mailconfd_log(OLD.domain, NEW.domain);
CREATE OR REPLACE TRIGGER mailconfd_mcdomain_d AFTER DELETE ON mailconfd_domain FOR EACH ROW
  CALL mailconfd_log(OLD.domain, NULL);
CREATE OR REPLACE TRIGGER mailconfd_mcmailbox_i AFTER INSERT ON mailconfd_mailbox FOR EACH ROW
  CALL mailconfd_log(SUBSTRING_INDEX(NEW.username, '@', -1), NULL);
CREATE OR REPLACE TRIGGER mailconfd_mcmailbox_u AFTER UPDATE ON mailconfd_mailbox FOR EACH ROW
  CALL mailconfd_log(SUBSTRING_INDEX(OLD.username, '@', -1), SUBSTRING_INDEX(NEW.username, '@', -1));
CREATE OR REPLACE TRIGGER mailconfd_mcmailbox_d AFTER DELETE ON mailconfd_mailbox FOR EACH ROW
  CALL mailconfd_log(SUBSTRING_INDEX(OLD.username, '@', -1), NULL);

-- The settings journal, when <journal dsn-file> puts it here (every replica writes the same
-- rows: a fetch's first and last time and count are merged). Its user needs write rights on
-- these two tables only; the source's user stays read-only:
--   CREATE USER mailconfd_journal@'…' IDENTIFIED BY '…';
--   GRANT SELECT, INSERT, UPDATE, DELETE ON postfix.mailconfd_journal_fetch TO mailconfd_journal@'…';
--   GRANT SELECT, INSERT, UPDATE, DELETE ON postfix.mailconfd_journal_history TO mailconfd_journal@'…';
-- Binary collation: addresses compare byte for byte (no case or accent folding).
CREATE TABLE IF NOT EXISTS mailconfd_journal_fetch (
  address    varchar(320) NOT NULL,  -- the mailbox that fetched settings (lower case)
  door       varchar(32) NOT NULL,   -- autoconfig, autodiscover, autodiscover-json, redirect, …
  client     varchar(32) NOT NULL,   -- the client kind (thunderbird, outlook, apple, …)
  first_seen bigint NOT NULL,        -- Unix seconds
  last_seen  bigint NOT NULL,
  fetches    bigint NOT NULL,
  PRIMARY KEY (address, door, client)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The cockpit's burn-down: mailboxes per state in the newest scan of each day (UTC).
CREATE TABLE IF NOT EXISTS mailconfd_journal_history (
  day           char(10) NOT NULL PRIMARY KEY,  -- YYYY-MM-DD
  at_risk       bigint NOT NULL,
  fetched       bigint NOT NULL,
  switched      bigint NOT NULL,
  ambiguous     bigint NOT NULL,
  broke         bigint NOT NULL,
  login_failing bigint NOT NULL,
  unknown       bigint NOT NULL
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The built-in ACME client's shared storage, when <acme dsn-file> puts it here: the account
-- key, every certificate with its PRIVATE KEY (PEM, unless <acme key-file> seals them: whoever
-- can read plain rows can impersonate every name), the http-01 answers and tls-alpn-01
-- digests of the order in progress, so that every replica serves the same certificates and
-- answers the CA, what the issuer learnt from the CA (its hold after a 429 or a failure, the
-- renewalInfo windows, each name's wait after its order failed), so that the next issuer goes
-- on from it, and the names a replica that
-- does not issue asks the issuer for (on demand). Only one replica issues at a time (it holds
-- GET_LOCK('mailconfd_acme') on its connection). Its user needs rights on these tables and
-- the sequence only, and no other user any right on them:
--   CREATE USER mailconfd_acme@'…' IDENTIFIED BY '…';
--   GRANT SELECT, INSERT, UPDATE, DELETE ON postfix.mailconfd_acme_account TO mailconfd_acme@'…';
--   GRANT SELECT, INSERT, UPDATE, DELETE ON postfix.mailconfd_acme_certificate TO mailconfd_acme@'…';
--   GRANT SELECT, INSERT, UPDATE, DELETE ON postfix.mailconfd_acme_challenge TO mailconfd_acme@'…';
--   GRANT SELECT, INSERT, UPDATE, DELETE ON postfix.mailconfd_acme_alpn_challenge TO mailconfd_acme@'…';
--   GRANT SELECT, INSERT, UPDATE, DELETE ON postfix.mailconfd_acme_hold TO mailconfd_acme@'…';
--   GRANT SELECT, INSERT, UPDATE, DELETE ON postfix.mailconfd_acme_renewal TO mailconfd_acme@'…';
--   GRANT SELECT, INSERT, UPDATE, DELETE ON postfix.mailconfd_acme_backoff TO mailconfd_acme@'…';
--   GRANT SELECT, INSERT, DELETE ON postfix.mailconfd_acme_request TO mailconfd_acme@'…';
--   GRANT SELECT, INSERT ON postfix.mailconfd_acme_version TO mailconfd_acme@'…';
CREATE SEQUENCE IF NOT EXISTS mailconfd_acme_version;
CREATE TABLE IF NOT EXISTS mailconfd_acme_account (
  id      int NOT NULL PRIMARY KEY CHECK (id = 1),  -- one account
  key_pem text NOT NULL                             -- the account's private key (EC P-256, PEM)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE TABLE IF NOT EXISTS mailconfd_acme_certificate (
  name            varchar(253) NOT NULL PRIMARY KEY,  -- the one DNS name (lower case)
  certificate_pem mediumtext NOT NULL,                -- leaf first, then the chain
  key_pem         text NOT NULL,                      -- the certificate's private key (PEM)
  version         bigint NOT NULL                     -- from mailconfd_acme_version
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE TABLE IF NOT EXISTS mailconfd_acme_challenge (
  token  varchar(128) NOT NULL PRIMARY KEY,  -- http-01 token, while its order runs
  answer varchar(512) NOT NULL               -- the key authorization
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
-- Added in the release after the first with <acme dsn-file>: running this file again (every
-- statement is IF NOT EXISTS) and the GRANTs above add them to an existing database.
CREATE TABLE IF NOT EXISTS mailconfd_acme_alpn_challenge (
  name   varchar(253) NOT NULL PRIMARY KEY,  -- tls-alpn-01: the name, while its order runs
  digest char(64) NOT NULL                   -- SHA-256 of the key authorization (hexadecimal)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE TABLE IF NOT EXISTS mailconfd_acme_hold (
  id         int NOT NULL PRIMARY KEY CHECK (id = 1),  -- one CA
  held_until bigint NOT NULL,  -- Unix seconds: no order before (429 Retry-After, CA failing)
  ca_delay   bigint NOT NULL,  -- seconds: the last hold after the CA failed (doubled next)
  reason     varchar(255) NOT NULL
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE TABLE IF NOT EXISTS mailconfd_acme_renewal (
  name         varchar(253) NOT NULL PRIMARY KEY,  -- the certificate's name
  cert_id      varchar(512) NOT NULL,              -- RFC 9773 certID the CA answered about
  window_start bigint NOT NULL,                    -- Unix seconds: the suggested window
  window_end   bigint NOT NULL,
  renew_at     bigint NOT NULL,                    -- the point chosen in it
  ask_again    bigint NOT NULL                     -- the CA's Retry-After: not asked before
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE TABLE IF NOT EXISTS mailconfd_acme_backoff (
  name       varchar(253) NOT NULL PRIMARY KEY,  -- a name whose last order failed (not the CA's hold)
  not_before bigint NOT NULL,                    -- Unix seconds: no order for it before
  delay      bigint NOT NULL                     -- seconds it waits (5 min, doubled per failure, a day)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE TABLE IF NOT EXISTS mailconfd_acme_request (
  name      varchar(253) NOT NULL PRIMARY KEY,          -- a wanted name, asked for at a handshake
  requested datetime NOT NULL DEFAULT CURRENT_TIMESTAMP  -- rows an hour old are deleted unread
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
