// The configuration model: plain structs, no I/O. config_file.h fills them from XML and
// checks the policy; everything downstream reads a Config that has passed those checks and
// never changes afterwards (a reload builds a new one).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/arena_table.h"

namespace mailconfd {

namespace tls {
class CertificateSet;  // tls/certificates.h
}
namespace sign {
class Signer;  // sign/signer.h
}

enum class Protocol { Imap, Pop3, Smtp };

// How the connection is secured. Plaintext does not exist in the model: the loader refuses it.
enum class Security {
  Tls,       // TLS from the first byte (993, 995, 465)
  StartTls,  // plain connect, then a mandatory STARTTLS upgrade (143, 110, 587)
};

// How the password is sent. The loader refuses none, client-IP-address and smtp-after-pop.
enum class Auth {
  PasswordCleartext,  // SASL PLAIN/LOGIN inside TLS
  PasswordEncrypted,  // CRAM-MD5 / SCRAM; only if the servers really offer it
};

// What the client must type as user name.
enum class LoginForm {
  Address,    // alice@customer.example (default; what SMTP-Auth on shared servers needs)
  LocalPart,  // alice
};

// How an internationalized domain is spelled in the user name sent to clients (LoginForm
// Address only). The servers decide: the login must match what their user database stores.
enum class LoginDomain {
  ALabel,  // hans@xn--mller-bau-q9a.de (default: what Postfix maps, Dovecot passdbs and the
           // usual hosting panels store, and the only form a server without SMTPUTF8 knows)
  ULabel,  // hans@müller-bau.de (servers whose user database keeps UTF-8 domain names)
};

struct MailServer {
  Protocol protocol = Protocol::Imap;
  std::string host;  // lowercase A-label
  std::uint16_t port = 0;
  Security security = Security::Tls;
  Auth auth = Auth::PasswordCleartext;

  bool operator==(const MailServer&) const = default;
};

struct LocalizedText {
  std::string lang;  // "en", "de"
  std::string text;

  bool operator==(const LocalizedText&) const = default;
};

// Which incoming servers a domain's customers are offered, and in what order.
enum class Incoming {
  ImapFirst,  // every configured server, IMAP before POP3 (default)
  Pop3First,  // every configured server, POP3 before IMAP
  ImapOnly,   // IMAP servers only
  Pop3Only,   // POP3 servers only (a POP3-only customer domain)
};

// A domain's own choices on top of its provider's (a "host set"): host names, for customers
// whose certificates name their own host (imap.customer.example), and, from a database
// source, the login scheme and the incoming protocols. Empty/default means "as the provider".
// Ports and security are not here on purpose: they come only from the provider in the file.
struct HostOverride {
  std::string imap_host;
  std::string pop3_host;
  std::string smtp_host;
  std::optional<LoginForm> login;  // nullopt: the provider's <login>
  Incoming incoming = Incoming::ImapFirst;

  bool operator==(const HostOverride&) const = default;
};

// What `mailconfd dns zone` publishes and `mailconfd dns check` expects for every hosted
// domain of a provider, beyond the SRV records that follow from the servers (protocols.md §4).
struct MxHost {
  std::string host;  // lowercase A-label
  std::uint16_t preference = 10;

  bool operator==(const MxHost&) const = default;
};

struct DnsOptions {
  std::uint32_t ttl = 3600;        // seconds, for every generated record
  std::string autoconfig_cname;    // empty: no autoconfig.<domain> CNAME
  std::string autodiscover_cname;  // empty: no autodiscover.<domain> CNAME
  std::vector<MxHost> mx;          // empty: no MX published, none checked

  bool operator==(const DnsOptions&) const = default;
};

// The provider's notice on the setup page: why SMTP-after-POP is retired and from when.
struct Notice {
  std::string smtp_after_pop_off;   // YYYY-MM-DD (checked by the loader); empty: no date shown
  std::vector<LocalizedText> text;  // per language; paragraphs separated by blank lines

  bool operator==(const Notice&) const = default;
};

// Which names of a provider's hosted domains the built-in ACME client gets certificates for
// (ahead of time, and on demand at the first handshake).
struct AcmeHostedNames {
  bool autoconfig = false;    // autoconfig.<domain>
  bool autodiscover = false;  // autodiscover.<domain>
  bool operator==(const AcmeHostedNames&) const = default;
};

struct Provider {
  std::string id;                    // hostname syntax (Thunderbird rejects the file otherwise)
  std::string display_name;          // e.g. "Example Mail"; Thunderbird labels the account with it
  std::string short_name;            // e.g. "Example"
  std::vector<MailServer> incoming;  // IMAP and POP3, as written in the file
  std::vector<MailServer> outgoing;  // SMTP submission only; 587+STARTTLS is always present
  LoginForm login = LoginForm::Address;
  LoginDomain login_domain = LoginDomain::ALabel;
  std::string documentation_url;             // empty: no <documentation> element
  std::vector<LocalizedText> documentation;  // descriptions of documentation_url
  // Host that answers Outlook Autodiscover over HTTPS for every customer domain
  // (autodiscover.provider.example); the HTTP redirect and _autodiscover._tcp point here.
  std::string autodiscover_host;
  // Answer a plain-HTTP GET on autodiscover.<hosted domain>/autodiscover/autodiscover.xml
  // with 302 to https://<autodiscover_host>/autodiscover/autodiscover.xml (the Outlook HTTP
  // redirect method, protocols.md §2.1 step 4).
  bool autodiscover_redirect = true;
  std::vector<HostOverride> overrides;  // index 0 is always the empty override
  DnsOptions dns;
  Notice notice;
  // @acme-hosted-names: this provider's opt-in; nullopt: <acme hosted-names> decides.
  std::optional<AcmeHostedNames> acme_hosted_names;

  bool operator==(const Provider&) const = default;
};

// Where a hosted domain's answers come from.
struct DomainEntry {
  std::uint32_t provider = 0;  // index into Config::providers
  std::uint32_t hosts = 0;     // index into Provider::overrides (0 = provider defaults)
};

// Hosted domains, keyed by lowercase A-label. Sized for a million entries: names live back to
// back in one arena and an open-addressing index points at fixed-size records, about 50 bytes
// per domain and no allocation per entry (an unordered_map<string> needs about 150).
class DomainTable {
 public:
  // Returns false (and leaves the table unchanged) when the domain is already present.
  bool insert(std::string_view domain, DomainEntry entry) {
    return table_.insert(domain, Record{0, 0, 0, entry});
  }
  const DomainEntry* find(std::string_view domain) const {
    const Record* r = table_.find_record(domain);
    return r == nullptr ? nullptr : &r->entry;
  }
  // The domain's insertion number (0 for the first one inserted), or nullopt.
  std::optional<std::size_t> position(std::string_view domain) const {
    const std::ptrdiff_t at = table_.find(domain);
    if (at < 0) return std::nullopt;
    return static_cast<std::size_t>(at);
  }
  std::size_t size() const { return table_.size(); }
  // The longest run of index slots a lookup of a present domain walks (1: no collision).
  // The hash is keyed per process (keyed_hash.h), so chosen names cannot make this grow.
  std::size_t max_probe() const { return table_.max_probe(); }
  // Every domain in lexicographic order (stable output for zone files and tests).
  std::vector<std::string_view> sorted() const;
  // Makes room for n more domains without rehashing.
  void reserve(std::size_t n) { table_.reserve(n); }
  // Removes domain (its name's bytes stay in the arena until the table is built anew); the
  // last record takes its place, so position() of that one changes. False: not present.
  bool erase(std::string_view domain) { return table_.erase(domain); }
  // Calls f(domain, entry) for every domain, in record order.
  template <class F>
  void for_each(F&& f) const {
    for (const Record& r : table_.records()) f(table_.key(r), r.entry);
  }

 private:
  struct Record {
    std::uint32_t offset;  // into the arena
    std::uint32_t hash;
    std::uint16_t key_length;
    DomainEntry entry;
  };
  ArenaTable<Record> table_;
};

// Per-mailbox login names (Confixx/ISPConfig style "web12p3"), keyed by the address as
// login_key() spells it. Names and logins live back to back in one arena, like DomainTable:
// 20 to 28 bytes per mailbox (a 12-byte record, index slots at a load of 1/4 to 1/2) plus the
// two strings.
class LoginTable {
 public:
  // Returns false (and leaves the table unchanged) when key is present or a string is longer
  // than 65535 bytes.
  bool insert(std::string_view key, std::string_view login) {
    if (login.size() > 0xFFFF) return false;
    return table_.insert(key, Record{0, 0, 0, static_cast<std::uint16_t>(login.size())}, login);
  }
  // The login stored for key, or nullopt. The view lives as long as the table.
  std::optional<std::string_view> find(std::string_view key) const {
    const Record* r = table_.find_record(key);
    if (r == nullptr) return std::nullopt;
    return table_.tail(*r, r->login_length);
  }
  std::size_t size() const { return table_.size(); }
  // Removes key (its bytes stay in the arena until the table is built anew). False: absent.
  bool erase(std::string_view key) { return table_.erase(key); }
  // Calls f(key, login) for every entry: in the order they were inserted while nothing was
  // erased (an erase moves the last entry into the gap).
  template <class F>
  void for_each(F&& f) const {
    for (const Record& r : table_.records()) f(table_.key(r), table_.tail(r, r.login_length));
  }

 private:
  struct Record {
    std::uint32_t offset;  // into the arena: key, then login
    std::uint32_t hash;
    std::uint16_t key_length;
    std::uint16_t login_length;
  };
  ArenaTable<Record> table_;
};

// The domain part of a snapshot (App::domains): what every request resolves an address
// against. From the file alone it is the file's <domain> lists and each provider's host
// sets; a database source (source/) adds its domains, host sets and per-mailbox logins.
struct HostedDomains {
  // Never null. For the file alone it aliases Config::domains.
  std::shared_ptr<const DomainTable> table;
  // [provider][DomainEntry::hosts]: each provider's Provider::overrides first (same indices),
  // then the host sets only the database names. A source keeps the indices of the previous
  // part it was built from, so cached documents and signed profiles stay valid.
  std::vector<std::vector<HostOverride>> host_sets;
  LoginTable logins;
  std::string origin = "file";  // "file", "postgresql", "mariadb", "snapshot FILE"
  // When the source's rows were read (the database, or the snapshot's rows when they were
  // written); the epoch for the file alone.
  std::chrono::system_clock::time_point read_at;
  // Where these rows stand in the database's change log (mailconfd_change.serial when they
  // were read): the next update reads only the domains changed after it. nullopt: unknown
  // (the file, a snapshot, custom queries, no change log): every change reads all rows.
  std::optional<std::uint64_t> change_serial;

  const DomainEntry* find(std::string_view domain) const { return table->find(domain); }
  std::size_t size() const { return table->size(); }
  const HostOverride& host_set(DomainEntry entry) const {
    return host_sets[entry.provider][entry.hosts];
  }
};

// The key a mailbox's login is stored under: local part in ASCII lower case, '@', domain.
std::string login_key(std::string_view local, std::string_view domain);

// <database>: hosted domains and per-mailbox login names from the provider's database
// (source/). The file's providers, servers, policy and own <domain> lists stay in the file.
struct DatabaseOptions {
  enum class Driver { Postgresql, Mariadb };
  Driver driver = Driver::Postgresql;
  std::string dsn_file;                  // relative to the config's dir; its first line is the DSN
  std::string dsn;                       // read from dsn_file by the loader; never logged
  std::uint32_t provider = 0;            // index of the provider a row without a provider gets
  std::string domains_query;             // empty: the default (source/database.h)
  std::string logins_query;              // empty: the default
  std::string snapshot;                  // last-good snapshot file; empty: none
  std::chrono::milliseconds poll{2000};  // MariaDB: how often the change marker is read
};

// Connection and request limits. Defaults are what a public-facing service should use.
struct Limits {
  std::size_t max_request_line = 16 * 1024;
  std::size_t max_header_bytes = 32 * 1024;  // request line + all header lines
  std::size_t max_headers = 64;
  std::size_t max_body_bytes = 32 * 1024;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds body_timeout{10'000};
  std::chrono::milliseconds keepalive_timeout{30'000};
  std::size_t max_connections = 10'000;
};

// <tls>: HTTPS on a second listener, next to plain HTTP.
struct TlsOptions {
  std::string listen = "0.0.0.0:443";  // HOST:PORT; [v6]:PORT for IPv6
  std::string certificate;             // PEM, leaf first (may carry the chain): the default
  std::string key;                     // PEM
  std::string chain;                   // PEM intermediates; optional
  // <certificate file key chain/> children: more certificates, chosen by SNI.
  struct Files {
    std::string certificate, key, chain;
  };
  std::vector<Files> more;
  std::string certificate_directory;  // @certificate-directory; empty: none
  std::chrono::milliseconds handshake_timeout{10'000};
  // Every certificate above, loaded by the loader (null with TlsKeys::Skip). The default
  // first, then the <certificate> children, then the directory's in file-name order.
  std::shared_ptr<const tls::CertificateSet> certificates;
};

struct ServerOptions {
  std::string listen = "127.0.0.1:8080";  // HOST:PORT; [v6]:PORT for IPv6
  unsigned threads = 0;                   // 0: one per core
  // Behind a TLS-terminating proxy: a request counts as HTTPS when X-Forwarded-Proto says
  // https (or it arrived on mailconfd's own TLS listener). Off: only the listener counts.
  bool trust_forwarded_proto = false;
  Limits limits;
  std::optional<TlsOptions> tls;
  // At SIGTERM/SIGINT: how long requests in flight may take to finish before the process
  // closes every connection and exits.
  std::chrono::milliseconds shutdown_grace{10'000};
  // HOST:PORT of a separate listener for /metrics (and the health endpoints); empty: /metrics
  // is served on the main listener.
  std::string metrics_listen;
};

// The setup page (GET / and /setup).
struct SetupOptions {
  std::string lang = "en";     // language when neither ?lang= nor Accept-Language decides
  std::uint32_t provider = 0;  // index of the provider the page presents before an address
  std::string templates_dir;   // empty: the templates compiled into the binary
  // The files of templates_dir, read and checked by the loader (file name → bytes), so that
  // building the App cannot fail. Empty when templates_dir is.
  std::map<std::string, std::string> templates;

  bool operator==(const SetupOptions&) const = default;
};

// <signing>: the certificate Apple profiles are signed with (protocols.md §3.4).
struct Signing {
  std::string certificate;  // PEM file paths, relative ones resolved against the config's dir
  std::string key;
  std::string chain;                           // empty: no intermediates
  std::shared_ptr<const sign::Signer> signer;  // loaded and checked by the loader; never null
};

// <journal>: the opt-in settings journal (journal/journal.h); absent: nothing is recorded.
// Either file (SQLite, one per instance) or dsn_file (the tables of deploy/database/*.sql in
// the <database>'s server, with its driver, that every replica shares).
struct JournalOptions {
  std::string file;      // SQLite file, relative to the config's dir
  std::string dsn_file;  // relative to the config's dir; its first line is the writer's DSN
  std::string dsn;       // read from dsn_file by the loader; never logged
  std::chrono::seconds retention{180 * 24 * 3600};  // then a fetch row is deleted
};

// <cockpit>: the staff page on the admin (metrics) listener (cockpit/).
struct CockpitOptions {
  std::string report;         // the newest `cutover scan --json` report; may not exist yet
  std::string password_file;  // empty: no password (the admin listener is loopback-only)
  struct User {
    std::string name;
    std::string hash;  // crypt(3): yescrypt or bcrypt, checked by the loader
  };
  std::vector<User> users;  // read from password_file by the loader
};

// <acme>: certificates from an ACME CA (RFC 8555).
struct AcmeOptions {
  // @challenge-directory: where an external ACME client (certbot --webroot, lego, uacme)
  // writes http-01 answers, served at /.well-known/acme-challenge/TOKEN. Empty: none.
  std::string challenge_directory;
  // The built-in client (acme/issuer.h); ca empty: none.
  std::string ca;                  // @ca: the CA's directory URL (https://)
  std::string ca_certificate;      // @ca-certificate: PEM to verify the CA with; empty: system's
  std::string contact;             // @contact: "mailto:…"; empty: none
  std::string storage;             // @storage: account key and certificates/ (created 0700)
  std::vector<std::string> names;  // @names: the provider's own hosts, lowercase
  // @hosted-names: for providers without their own @acme-hosted-names.
  AcmeHostedNames hosted_names;
  // @challenge: the challenge tried first; the other one when the CA does not offer it.
  bool prefer_tls_alpn = false;  // tls-alpn-01 first (else http-01 first)
  bool on_demand = false;        // @on-demand="yes": order at the first handshake of a wanted name
  // @dsn-file: the account and certificates shared through the <database>'s server (its
  // driver), with a role of their own (acme_store/); the first line is the DSN, never logged.
  std::string dsn_file;
  std::string dsn;  // read from dsn_file by the loader; empty: storage on disk only
  // @key-file: with dsn-file, the key that seals the private keys stored in the database
  // (acme_store/sealed.h): its first line is 64 hexadecimal digits (32 random bytes), the file
  // 0600 or 0640. Never logged.
  std::string key_file;
  std::string database_key;  // its 32 bytes, read by the loader; empty: keys stored as PEM

  // What provider gets: its own @acme-hosted-names, else hosted_names.
  const AcmeHostedNames& hosted_for(const Provider& provider) const {
    return provider.acme_hosted_names ? *provider.acme_hosted_names : hosted_names;
  }
};

struct Config {
  std::string path;  // file it came from; "(built-in example)" for the compiled-in one
  ServerOptions server;
  SetupOptions setup;
  std::vector<Provider> providers;
  DomainTable domains;
  std::optional<Signing> signing;  // absent: profiles are served unsigned
  // <mobileconfig secret>: HMAC key for profile UUIDs and identifiers (render/mobileconfig.h).
  // Empty when not configured. Changing it changes every identifier.
  std::string profile_secret;
  std::optional<JournalOptions> journal;
  std::optional<CockpitOptions> cockpit;
  std::optional<AcmeOptions> acme;
  std::optional<DatabaseOptions> database;
};

// Warnings for the HTTPS names clients ask for that no certificate of set covers: each
// provider's autodiscover/@host (Outlook asks https://HOST/autodiscover/…; without a
// certificate for it that fails and Outlook falls back to the prompting HTTP redirect). A
// name <acme names> lists is left out: the built-in client gets its certificate.
std::vector<std::string> uncovered_https_names(const Config& config,
                                               const tls::CertificateSet& set);

std::string_view to_string(Protocol protocol);
std::string_view to_string(Security security);
std::string_view to_string(Incoming incoming);  // "imap-first", "pop3-first", ...
std::optional<Incoming> parse_incoming(std::string_view text);

}  // namespace mailconfd
