#include "config/config_file.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include <fmt/format.h>
#include <pugixml.hpp>

#include "core/email_address.h"
#include "render/setup.h"
#include "sign/signer.h"
#include "tls/certificates.h"

namespace mailconfd {
namespace {

// Turns byte offsets into "file:line:column" and collects problems.
class Problems {
 public:
  Problems(std::string file, std::string_view text) : file_(std::move(file)) {
    line_starts_.push_back(0);
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  void at_offset(std::ptrdiff_t offset, const std::string& message) {
    const auto pos = static_cast<std::size_t>(std::max<std::ptrdiff_t>(offset, 0));
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), pos);
    const std::size_t line = static_cast<std::size_t>(it - line_starts_.begin());
    const std::size_t column = pos - line_starts_[line - 1] + 1;
    list_.push_back(fmt::format("{}:{}:{}: {}", file_, line, column, message));
  }
  void at_line(std::size_t line, std::size_t column, const std::string& message) {
    list_.push_back(fmt::format("{}:{}:{}: {}", file_, line, column, message));
  }
  void at(const pugi::xml_node& node, const std::string& message) {
    // offset_debug points just past '<'; report the '<' itself.
    at_offset(node.offset_debug() - 1, message);
  }
  std::string where(const pugi::xml_node& node) const {
    const auto pos = static_cast<std::size_t>(std::max<std::ptrdiff_t>(node.offset_debug() - 1, 0));
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), pos);
    return fmt::format("{}:{}", file_, it - line_starts_.begin());
  }
  std::size_t line_of(const pugi::xml_node& node) const {
    const auto pos = static_cast<std::size_t>(std::max<std::ptrdiff_t>(node.offset_debug() - 1, 0));
    return static_cast<std::size_t>(
        std::upper_bound(line_starts_.begin(), line_starts_.end(), pos) - line_starts_.begin());
  }
  std::vector<std::string> take() { return std::move(list_); }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::vector<std::size_t> line_starts_;
  std::vector<std::string> list_;
};

// Reads a whole file; on failure, error is the operating system's reason ("No such file or
// directory", "Permission denied", "Is a directory").
bool read_whole_file(const std::string& path, std::string& out, std::string& error) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    error = std::strerror(errno);
    return false;
  }
  char buffer[1 << 16];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) out.append(buffer, n);
  const bool ok = std::ferror(f) == 0;
  if (!ok) error = std::strerror(errno);
  std::fclose(f);
  return ok;
}

// A leading UTF-8 byte-order mark, as Windows editors write it: invisible, never content.
std::string_view without_bom(std::string_view text) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  return text;
}

// Number of characters (code points) of valid UTF-8 text.
std::size_t utf8_length(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

// The longest prefix of valid UTF-8 text with at most max characters: never splits one.
std::string utf8_prefix(std::string_view text, std::size_t max) {
  std::size_t chars = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80 && chars++ == max) {
      return std::string(text.substr(0, i));
    }
  }
  return std::string(text);
}

// Elements of parent that may appear at most once: the second one of each is reported, so
// that an appended correction never silently loses to the line above it.
void check_once(Problems& problems, const pugi::xml_node& parent,
                std::initializer_list<const char*> names) {
  for (const char* name : names) {
    const pugi::xml_node first = parent.child(name);
    if (!first) continue;
    for (pugi::xml_node again = first.next_sibling(name); again; again = again.next_sibling(name)) {
      problems.at(again, fmt::format("<{}> may appear only once in <{}>", name, parent.name()));
    }
  }
}

bool has_control(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    const auto b = static_cast<unsigned char>(c);
    return (b < 0x20 && c != '\t' && c != '\n' && c != '\r') || b == 0x7F;
  });
}

std::string trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(first, last - first + 1));
}

template <typename T>
std::optional<T> parse_number(std::string_view text) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  auto number = parse_number<std::uint64_t>(text.substr(0, digits));
  if (!number || *number > 86'400'000) return std::nullopt;
  const std::string_view unit = text.substr(digits);
  if (unit == "ms") return std::chrono::milliseconds(*number);
  if (unit == "s") return std::chrono::milliseconds(*number * 1000);
  if (unit == "m") return std::chrono::milliseconds(*number * 60'000);
  return std::nullopt;
}

// Checks that only known attributes and children appear, so typos do not pass silently.
void check_known(Problems& problems, const pugi::xml_node& node,
                 std::initializer_list<std::string_view> attributes,
                 std::initializer_list<std::string_view> children) {
  for (const pugi::xml_attribute& a : node.attributes()) {
    if (std::find(attributes.begin(), attributes.end(), a.name()) == attributes.end()) {
      problems.at(node, fmt::format("<{}>: unknown attribute '{}'", node.name(), a.name()));
    }
  }
  for (const pugi::xml_node& child : node.children()) {
    if (child.type() != pugi::node_element) continue;
    if (std::find(children.begin(), children.end(), child.name()) == children.end()) {
      problems.at(child,
                  fmt::format("<{}>: unknown element inside <{}>", child.name(), node.name()));
    }
  }
}

class Loader {
 public:
  Loader(Problems& problems, std::string base_dir, TlsKeys tls_keys,
         const tls::CertificateSet* previous)
      : problems_(problems),
        base_dir_(std::move(base_dir)),
        tls_keys_(tls_keys),
        previous_(previous) {
    sources_.push_back(problems_.file());
  }

  void load(const pugi::xml_document& doc, Config& config) {
    const pugi::xml_node root = doc.document_element();
    if (std::string_view(root.name()) != "mailconfd") {
      problems_.at(root, "the root element must be <mailconfd>");
      return;
    }
    check_known(problems_, root, {},
                {"server", "setup", "signing", "mobileconfig", "provider", "journal", "cockpit",
                 "acme", "database"});
    check_once(
        problems_, root,
        {"server", "signing", "mobileconfig", "setup", "journal", "cockpit", "acme", "database"});
    if (auto server = root.child("server")) read_server(server, config.server);
    if (auto signing = root.child("signing")) read_signing(signing, config);
    if (auto mobileconfig = root.child("mobileconfig")) read_mobileconfig(mobileconfig, config);
    if (auto journal = root.child("journal")) read_journal(journal, config);
    if (auto cockpit = root.child("cockpit")) read_cockpit(cockpit, config);
    if (auto acme = root.child("acme")) read_acme(acme, config);
    for (const pugi::xml_node& p : root.children("provider")) read_provider(p, config);
    if (config.providers.empty()) problems_.at(root, "no <provider> is configured");
    if (auto setup = root.child("setup")) read_setup(setup, config);
    if (auto database = root.child("database")) read_database(database, config);
  }

 private:
  void read_server(const pugi::xml_node& node, ServerOptions& server) {
    check_known(problems_, node, {"listen", "threads", "forwarded-proto", "shutdown-grace"},
                {"limits", "tls", "metrics"});
    check_once(problems_, node, {"limits", "tls", "metrics"});
    if (auto a = node.attribute("listen")) {
      if (parse_listen(a.value())) {
        server.listen = a.value();
      } else {
        problems_.at(node, fmt::format("listen '{}' is not HOST:PORT", a.value()));
      }
    }
    if (auto a = node.attribute("threads")) {
      auto n = parse_number<unsigned>(a.value());
      if (!n || *n > 256) {
        problems_.at(node, "threads must be a number from 0 (one per core) to 256");
      } else {
        server.threads = *n;
      }
    }
    if (auto a = node.attribute("forwarded-proto")) {
      const std::string_view value = a.value();
      if (value == "trust" || value == "ignore") {
        server.trust_forwarded_proto = value == "trust";
      } else {
        problems_.at(node, fmt::format("forwarded-proto must be ignore or trust, not '{}'", value));
      }
    }
    if (auto a = node.attribute("shutdown-grace")) {
      auto d = parse_duration(a.value());
      if (!d || *d > std::chrono::minutes(10)) {
        problems_.at(node, "shutdown-grace must be a duration from 0s to 10m, like 10s");
      } else {
        server.shutdown_grace = *d;
      }
    }
    if (auto limits = node.child("limits")) read_limits(limits, server.limits);
    if (auto tls = node.child("tls")) read_tls(tls, server.tls.emplace());
    if (auto metrics = node.child("metrics")) {
      check_known(problems_, metrics, {"listen"}, {});
      const pugi::xml_attribute a = metrics.attribute("listen");
      if (!a || !parse_listen(a.value())) {
        problems_.at(metrics, fmt::format("<metrics> listen '{}' is not HOST:PORT", a.value()));
      } else {
        server.metrics_listen = a.value();
      }
    }
  }

  // <tls>: the files are read here, so `check` and a reload see the same problems as start-up.
  void read_tls(const pugi::xml_node& node, TlsOptions& tls) {
    check_known(
        problems_, node,
        {"listen", "certificate", "key", "chain", "certificate-directory", "handshake-timeout"},
        {"certificate"});
    if (auto a = node.attribute("listen")) {
      if (parse_listen(a.value())) {
        tls.listen = a.value();
      } else {
        problems_.at(node, fmt::format("<tls>: listen '{}' is not HOST:PORT", a.value()));
      }
    }
    if (auto a = node.attribute("handshake-timeout")) {
      auto d = parse_duration(a.value());
      if (!d || d->count() < 100 || d->count() > 60'000) {
        problems_.at(node, "<tls>: handshake-timeout must be a duration from 100ms to 60s");
      } else {
        tls.handshake_timeout = *d;
      }
    }
    auto path = [&](const pugi::xml_node& n, const char* name) -> std::string {
      const std::string value = n.attribute(name).value();
      if (value.empty()) return value;
      return value.front() == '/' ? value : base_dir_ + "/" + value;
    };
    tls.certificate = path(node, "certificate");
    tls.key = path(node, "key");
    tls.chain = path(node, "chain");
    tls.certificate_directory = path(node, "certificate-directory");
    if (tls.certificate.empty() || tls.key.empty()) {
      problems_.at(node, "<tls> needs certificate and key attributes (the default certificate)");
      return;
    }
    // Each certificate with the element its problems are reported at.
    std::vector<std::pair<tls::CertificateFiles, pugi::xml_node>> wanted;
    wanted.push_back({{tls.certificate, tls.key, tls.chain}, node});
    for (const pugi::xml_node& child : node.children("certificate")) {
      check_known(problems_, child, {"file", "key", "chain"}, {});
      TlsOptions::Files files{path(child, "file"), path(child, "key"), path(child, "chain")};
      if (files.certificate.empty() || files.key.empty()) {
        problems_.at(child, "<certificate> needs file and key attributes");
        continue;
      }
      tls.more.push_back(files);
      wanted.push_back({{files.certificate, files.key, files.chain}, child});
    }
    if (tls_keys_ == TlsKeys::Skip) return;
    // The built-in ACME client's certificates (acme/issuer.h: STORAGE/certificates), once
    // there are any, after everything configured by hand.
    std::vector<std::string> directories;
    if (!tls.certificate_directory.empty()) directories.push_back(tls.certificate_directory);
    if (const pugi::xml_node acme = node.root().first_child().child("acme");
        acme && acme.attribute("ca") && acme.attribute("storage")) {
      const std::string issued = path_of(acme.attribute("storage").value()) + "/certificates";
      if (struct stat st{}; ::stat(issued.c_str(), &st) == 0) directories.push_back(issued);
    }
    for (const std::string& directory : directories) {
      std::vector<std::string> errors;
      for (auto& files : tls::scan_directory(directory, errors)) {
        wanted.push_back({std::move(files), node});
      }
      for (const auto& e : errors) problems_.at(node, "<tls>: " + e);
    }
    std::vector<tls::Certificate> loaded;
    loaded.reserve(wanted.size());
    for (const auto& [files, where] : wanted) {
      std::string error;
      if (auto c = tls::load_certificate(files, error)) {
        loaded.push_back(std::move(*c));
        continue;
      }
      const tls::Certificate* before = nullptr;
      if (previous_) {
        for (const auto& c : previous_->certificates()) {
          if (c.files.certificate == files.certificate) before = &c;
        }
      }
      const std::string element = std::string("<") + where.name() + ">: ";
      if (before) {
        // A reload keeps serving what it served rather than dropping one name's certificate.
        warnings_.push_back(fmt::format("{}: {}{}; keeping the certificate loaded before",
                                        problems_.where(where), element, error));
        loaded.push_back(*before);
      } else {
        problems_.at(where, element + error);
      }
    }
    if (loaded.size() == wanted.size()) {
      tls.certificates = std::make_shared<const tls::CertificateSet>(std::move(loaded));
    }
  }

  // <setup lang="de" provider="ID" templates="DIR"/>: the setup page (README).
  void read_setup(const pugi::xml_node& node, Config& config) {
    check_known(problems_, node, {"lang", "provider", "templates"}, {});
    SetupOptions& setup = config.setup;
    if (auto a = node.attribute("lang")) {
      if (auto lang = render::parse_lang(a.value())) {
        setup.lang = render::to_string(*lang);
      } else {
        problems_.at(node, fmt::format("<setup> lang '{}' must be de or en", a.value()));
      }
    }
    if (auto a = node.attribute("provider")) {
      const auto id = normalize_domain(a.value());
      const auto it = std::find_if(config.providers.begin(), config.providers.end(),
                                   [&](const Provider& p) { return id && p.id == *id; });
      if (it == config.providers.end()) {
        problems_.at(node, fmt::format("<setup> provider '{}' is not configured", a.value()));
      } else {
        setup.provider = static_cast<std::uint32_t>(it - config.providers.begin());
      }
    }
    if (auto a = node.attribute("templates")) {
      const std::string dir = a.value();
      if (dir.empty()) {
        problems_.at(node, "<setup> templates must name a directory");
        return;
      }
      setup.templates_dir = dir.front() == '/' ? dir : base_dir_ + "/" + dir;
      read_templates(node, setup);
    }
  }

  void read_templates(const pugi::xml_node& node, SetupOptions& setup) {
    for (std::string_view name : render::kSetupTemplateFiles) {
      const std::string path = setup.templates_dir + "/" + std::string(name);
      std::string text;
      std::string error;
      if (!read_whole_file(path, text, error)) {
        problems_.at(node, fmt::format("cannot read template '{}': {}", path, error));
        continue;
      }
      setup.templates.emplace(std::string(name), std::move(text));
    }
    if (setup.templates.size() != render::kSetupTemplateFiles.size()) return;
    for (const render::TemplateError& e : render::check_setup_templates(setup.templates)) {
      const std::string path = setup.templates_dir + "/" + e.file;
      const auto it = setup.templates.find(e.file);
      Problems in_file(path, it == setup.templates.end() ? std::string_view() : it->second);
      in_file.at_offset(static_cast<std::ptrdiff_t>(e.offset), e.message);
      for (auto& p : in_file.take()) extra_.push_back(std::move(p));
    }
  }

  // <notice smtp-after-pop-off="YYYY-MM-DD"><text lang="de">…</text>…</notice>
  void read_notice(const pugi::xml_node& node, Notice& notice) {
    check_known(problems_, node, {"smtp-after-pop-off"}, {"text"});
    if (auto a = node.attribute("smtp-after-pop-off")) {
      if (render::valid_iso_date(a.value())) {
        notice.smtp_after_pop_off = a.value();
      } else {
        problems_.at(node, fmt::format("<notice> smtp-after-pop-off '{}' must be a date like "
                                       "2013-09-02",
                                       a.value()));
      }
    }
    for (const pugi::xml_node& t : node.children("text")) {
      check_known(problems_, t, {"lang"}, {});
      const std::string lang = t.attribute("lang").value();
      if (!render::parse_lang(lang)) {
        problems_.at(t, fmt::format("<text> lang '{}' must be de or en", lang));
        continue;
      }
      if (std::any_of(notice.text.begin(), notice.text.end(),
                      [&](const LocalizedText& other) { return other.lang == lang; })) {
        problems_.at(t, fmt::format("<text lang=\"{}\"> may appear only once in <notice>", lang));
        continue;
      }
      notice.text.push_back({lang, text_of(t, 4000)});
    }
    if (notice.text.empty()) problems_.at(node, "<notice> needs at least one <text lang=\"…\">");
  }

  std::string path_of(const std::string& file) const {
    return file.empty() || file.front() == '/' ? file : base_dir_ + "/" + file;
  }

  // Loads the key material now, so that `check`, start-up and every reload report a file that
  // cannot be read or a key that does not match, with OpenSSL's reason.
  void read_signing(const pugi::xml_node& node, Config& config) {
    check_known(problems_, node, {"certificate", "key", "chain"}, {});
    Signing signing;
    signing.certificate = path_of(node.attribute("certificate").value());
    signing.key = path_of(node.attribute("key").value());
    signing.chain = path_of(node.attribute("chain").value());
    if (signing.certificate.empty() || signing.key.empty()) {
      problems_.at(node, "<signing> needs certificate and key (PEM files); chain is optional");
      return;
    }
    std::string error;
    signing.signer = sign::Signer::load(signing.certificate, signing.key, signing.chain, error);
    if (!signing.signer) {
      problems_.at(node, fmt::format("<signing>: {}", error));
      return;
    }
    config.signing = std::move(signing);
  }

  // The secret is in the file itself, or in secret-file (e.g. 0640 root:mailconfd or a
  // systemd credential), so that the configuration can stay world-readable. One trailing
  // newline of the file is not part of the secret.
  void read_mobileconfig(const pugi::xml_node& node, Config& config) {
    check_known(problems_, node, {"secret", "secret-file"}, {});
    const bool inline_secret = !node.attribute("secret").empty();
    const bool file_secret = !node.attribute("secret-file").empty();
    if (inline_secret == file_secret) {
      problems_.at(node, "<mobileconfig> needs exactly one of secret and secret-file");
      return;
    }
    std::string secret = node.attribute("secret").value();
    if (file_secret) {
      const std::string path = path_of(node.attribute("secret-file").value());
      std::string error;
      if (!read_whole_file(path, secret, error)) {
        problems_.at(node, fmt::format("cannot read secret-file '{}': {}", path, error));
        return;
      }
      if (secret.ends_with("\r\n")) {
        secret.resize(secret.size() - 2);
      } else if (secret.ends_with('\n')) {
        secret.pop_back();
      }
    }
    if (secret.size() < 16 || secret.size() > 1024 || has_control(secret)) {
      problems_.at(node,
                   "<mobileconfig> secret must be 16 to 1024 characters without control "
                   "characters");
      return;
    }
    config.profile_secret = secret;
  }

  // <acme key-file>: the key that seals the private keys in the database; a secret, so the
  // file must not be readable by others nor writable by its group (0600 or 0640), and its
  // contents are never echoed.
  void read_acme_key_file(const pugi::xml_node& node, AcmeOptions& acme) {
    acme.key_file = path_of(node.attribute("key-file").value());
    if (acme.dsn_file.empty()) {
      problems_.at(node, "<acme> key-file needs dsn-file (it seals the keys in the database)");
      return;
    }
    struct stat st {};
    if (::stat(acme.key_file.c_str(), &st) == 0 && (st.st_mode & 0137) != 0) {
      problems_.at(node, fmt::format("<acme>: key-file '{}' has mode {:04o}; it must be 0600 or "
                                     "0640 (a secret)",
                                     acme.key_file, st.st_mode & 07777));
      return;
    }
    std::string text;
    std::string error;
    if (!read_whole_file(acme.key_file, text, error)) {
      problems_.at(node,
                   fmt::format("<acme>: cannot read key-file '{}': {}", acme.key_file, error));
      return;
    }
    const std::string hex = trimmed(std::string_view(text).substr(0, text.find('\n')));
    std::string key;
    for (std::size_t i = 0; hex.size() == 64 && i < hex.size(); i += 2) {
      const auto digit = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
      };
      const int high = digit(hex[i]);
      const int low = digit(hex[i + 1]);
      if (high < 0 || low < 0) break;
      key.push_back(static_cast<char>(high * 16 + low));
    }
    if (key.size() != 32) {
      problems_.at(node, fmt::format("<acme>: key-file '{}' must begin with 64 hexadecimal digits "
                                     "(32 random bytes: openssl rand -hex 32)",
                                     acme.key_file));
      return;
    }
    acme.database_key = std::move(key);
  }

  // <acme challenge-directory="DIR" ca="URL" storage="DIR" names="…" hosted-names="…"/>:
  // http-01 answers written by an external ACME client, and/or the built-in client.
  void read_acme(const pugi::xml_node& node, Config& config) {
    check_known(problems_, node,
                {"challenge-directory", "ca", "ca-certificate", "contact", "storage", "names",
                 "hosted-names", "challenge", "on-demand", "dsn-file", "key-file"},
                {});
    AcmeOptions acme;
    acme.challenge_directory = path_of(node.attribute("challenge-directory").value());
    acme.ca = node.attribute("ca").value();
    if (acme.challenge_directory.empty() && acme.ca.empty()) {
      problems_.at(node, "<acme> needs challenge-directory or ca");
    }
    if (!acme.challenge_directory.empty()) {
      if (struct stat st{};
          ::stat(acme.challenge_directory.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        problems_.at(node, fmt::format("<acme>: challenge-directory '{}' is not a directory",
                                       acme.challenge_directory));
      }
    }
    if (!acme.ca.empty()) {
      if (!acme.ca.starts_with("https://") || has_control(acme.ca)) {
        problems_.at(node, fmt::format("<acme>: ca '{}' is not an https:// URL", acme.ca));
      }
      acme.ca_certificate = path_of(node.attribute("ca-certificate").value());
      acme.contact = node.attribute("contact").value();
      if (!acme.contact.empty() &&
          (!acme.contact.starts_with("mailto:") || has_control(acme.contact))) {
        problems_.at(node, "<acme>: contact must be a mailto: URL");
      }
      acme.storage = path_of(node.attribute("storage").value());
      if (acme.storage.empty()) problems_.at(node, "<acme> with ca needs storage (a directory)");
      std::string_view names = node.attribute("names").value();
      while (!names.empty()) {
        const auto space = names.find(' ');
        const std::string_view name = names.substr(0, space);
        names = space == std::string_view::npos ? std::string_view() : names.substr(space + 1);
        if (name.empty()) continue;
        auto normalized = normalize_domain(name);
        if (!normalized || normalized->find('.') == std::string::npos) {
          problems_.at(node, fmt::format("<acme>: names: '{}' is not a host name", name));
        } else {
          acme.names.push_back(*normalized);
        }
      }
      if (auto a = node.attribute("hosted-names")) {
        if (auto hosted = hosted_names_of(a.value())) {
          acme.hosted_names = *hosted;
        } else {
          problems_.at(node, fmt::format("<acme>: hosted-names must be autoconfig, autodiscover, "
                                         "both (separated by a space) or none, not '{}'",
                                         a.value()));
        }
      }
      const std::string_view challenge = node.attribute("challenge").value();
      if (challenge == "tls-alpn-01") {
        acme.prefer_tls_alpn = true;
      } else if (!challenge.empty() && challenge != "http-01") {
        problems_.at(node, fmt::format("<acme>: challenge must be http-01 or tls-alpn-01, not '{}'",
                                       challenge));
      }
      const std::string_view on_demand = node.attribute("on-demand").value();
      if (on_demand == "yes") {
        acme.on_demand = true;
      } else if (!on_demand.empty() && on_demand != "no") {
        problems_.at(node, fmt::format("<acme>: on-demand must be yes or no, not '{}'", on_demand));
      }
      if (!config.server.tls) problems_.at(node, "<acme> with ca needs <tls> (HTTPS to serve on)");
      acme.dsn_file = path_of(node.attribute("dsn-file").value());
      if (!acme.dsn_file.empty()) {
        if (!node.parent().child("database")) {
          problems_.at(node, "<acme> dsn-file needs <database> (its driver and server)");
        }
        std::string text;
        std::string error;
        if (!read_whole_file(acme.dsn_file, text, error)) {
          problems_.at(node,
                       fmt::format("<acme>: cannot read dsn-file '{}': {}", acme.dsn_file, error));
        } else {
          acme.dsn = trimmed(std::string_view(text).substr(0, text.find('\n')));
          if (acme.dsn.empty()) {
            problems_.at(node, fmt::format("<acme>: dsn-file '{}' is empty", acme.dsn_file));
          }
        }
      }
      if (node.attribute("key-file")) read_acme_key_file(node, acme);
    } else if (node.attribute("dsn-file")) {
      problems_.at(node, "<acme> dsn-file needs ca (the built-in client)");
    } else if (node.attribute("key-file")) {
      problems_.at(node, "<acme> key-file needs ca and dsn-file");
    }
    config.acme = std::move(acme);
  }

  void read_journal(const pugi::xml_node& node, Config& config) {
    check_known(problems_, node, {"file", "dsn-file", "retention"}, {});
    JournalOptions journal;
    journal.file = path_of(node.attribute("file").value());
    journal.dsn_file = path_of(node.attribute("dsn-file").value());
    if (journal.file.empty() == journal.dsn_file.empty()) {
      problems_.at(node,
                   "<journal> needs either file (an SQLite database) or dsn-file (the "
                   "<database>'s server, a role that may write the journal's tables)");
    } else if (!journal.dsn_file.empty()) {
      if (!node.parent().child("database")) {
        problems_.at(node, "<journal> dsn-file needs <database> (its driver and server)");
      }
      std::string text;
      std::string error;
      if (!read_whole_file(journal.dsn_file, text, error)) {
        problems_.at(
            node, fmt::format("<journal>: cannot read dsn-file '{}': {}", journal.dsn_file, error));
      } else {
        journal.dsn = trimmed(std::string_view(text).substr(0, text.find('\n')));
        if (journal.dsn.empty()) {
          problems_.at(node, fmt::format("<journal>: dsn-file '{}' is empty", journal.dsn_file));
        }
      }
    }
    if (auto a = node.attribute("retention")) {
      const std::string_view text = a.value();
      auto days = text.size() > 1 && text.back() == 'd'
                      ? parse_number<unsigned>(text.substr(0, text.size() - 1))
                      : std::nullopt;
      if (!days || *days < 1 || *days > 3650) {
        problems_.at(node, "<journal> retention must be a number of days from 1d to 3650d");
      } else {
        journal.retention = std::chrono::seconds(std::int64_t{*days} * 24 * 3600);
      }
    }
    config.journal = std::move(journal);
  }

  // <database>: the DSN is read from its own file here (so `check` and every reload see it
  // and the password never sits in this file); only its first line counts.
  void read_database(const pugi::xml_node& node, Config& config) {
    check_known(problems_, node, {"driver", "dsn-file", "provider", "snapshot", "poll"},
                {"domains-query", "logins-query"});
    check_once(problems_, node, {"domains-query", "logins-query"});
    DatabaseOptions database;
    const std::string_view driver = node.attribute("driver").value();
    if (driver == "postgresql") {
      database.driver = DatabaseOptions::Driver::Postgresql;
    } else if (driver == "mariadb" || driver == "mysql") {
      database.driver = DatabaseOptions::Driver::Mariadb;
    } else {
      problems_.at(
          node, fmt::format("<database> driver '{}' is unknown (postgresql or mariadb)", driver));
    }
    database.dsn_file = path_of(node.attribute("dsn-file").value());
    if (database.dsn_file.empty()) {
      problems_.at(node, "<database> needs dsn-file (a file whose first line is the DSN)");
    } else {
      std::string text;
      std::string error;
      if (!read_whole_file(database.dsn_file, text, error)) {
        problems_.at(node, fmt::format("<database>: cannot read dsn-file '{}': {}",
                                       database.dsn_file, error));
      } else {
        database.dsn = trimmed(std::string_view(text).substr(0, text.find('\n')));
        if (database.dsn.empty()) {
          problems_.at(node, fmt::format("<database>: dsn-file '{}' is empty", database.dsn_file));
        }
      }
    }
    if (auto a = node.attribute("provider")) {
      const std::string_view id = a.value();
      auto it = std::find_if(config.providers.begin(), config.providers.end(),
                             [&](const Provider& p) { return p.id == id; });
      if (it == config.providers.end()) {
        problems_.at(node, fmt::format("<database> provider '{}' is not a <provider> id", id));
      } else {
        database.provider = static_cast<std::uint32_t>(it - config.providers.begin());
      }
    }
    database.snapshot = path_of(node.attribute("snapshot").value());
    if (auto a = node.attribute("poll")) {
      auto d = parse_duration(a.value());
      if (!d || *d < std::chrono::milliseconds(100) || *d > std::chrono::minutes(60)) {
        problems_.at(node, "<database> poll must be a duration from 100ms to 60m");
      } else if (database.driver != DatabaseOptions::Driver::Mariadb) {
        problems_.at(node, "<database> poll is for driver mariadb (PostgreSQL notifies)");
      } else {
        database.poll = *d;
      }
    }
    if (auto q = node.child("domains-query")) database.domains_query = trimmed(q.text().get());
    if (auto q = node.child("logins-query")) database.logins_query = trimmed(q.text().get());
    config.database = std::move(database);
  }

  // The cockpit's password file is read here, so `check` and every reload see it; its lines
  // are NAME:HASH with a yescrypt or bcrypt crypt(3) hash (`mailconfd cockpit password NAME`).
  void read_cockpit(const pugi::xml_node& node, Config& config) {
    check_known(problems_, node, {"report", "password-file"}, {});
    CockpitOptions cockpit;
    cockpit.report = path_of(node.attribute("report").value());
    cockpit.password_file = path_of(node.attribute("password-file").value());
    if (!node.parent().child("journal")) {
      problems_.at(node, "<cockpit> needs <journal> (it keeps the day-by-day history there)");
    }
    const std::string& listen = config.server.metrics_listen;
    const auto admin = parse_listen(listen);
    if (!admin) {
      problems_.at(node,
                   "<cockpit> is served only on the admin listener: set <metrics listen> to a "
                   "loopback address such as 127.0.0.1:9187");
    } else {
      in6_addr v6{};
      in_addr v4{};
      const bool loopback =
          (inet_pton(AF_INET, admin->host.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127) ||
          (inet_pton(AF_INET6, admin->host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6));
      if (!loopback) {
        problems_.at(node, fmt::format("<cockpit>: the admin listener {} is not a loopback "
                                       "address; it has no TLS, so the cockpit is refused there "
                                       "(use 127.0.0.1 or ::1 and an SSH tunnel or a TLS proxy)",
                                       listen));
      }
    }
    if (!cockpit.password_file.empty()) {
      std::string text, error;
      if (!read_whole_file(cockpit.password_file, text, error)) {
        problems_.at(node, fmt::format("<cockpit>: cannot read password-file '{}': {}",
                                       cockpit.password_file, error));
      } else {
        Problems in_file(cockpit.password_file, text);
        std::size_t line = 0, start = 0;
        while (start < text.size()) {
          ++line;
          auto end = text.find('\n', start);
          if (end == std::string::npos) end = text.size();
          const std::string entry = trimmed(std::string_view(text).substr(start, end - start));
          start = end + 1;
          if (entry.empty() || entry.front() == '#') continue;
          const auto colon = entry.find(':');
          const std::string name = entry.substr(0, colon);
          const std::string hash = colon == std::string::npos ? "" : entry.substr(colon + 1);
          const bool strong = hash.rfind("$y$", 0) == 0 || hash.rfind("$gy$", 0) == 0 ||
                              hash.rfind("$2b$", 0) == 0 || hash.rfind("$2y$", 0) == 0;
          if (name.empty() || has_control(name) || !strong ||
              crypt_checksalt(hash.c_str()) != CRYPT_SALT_OK) {
            in_file.at_line(line, 1,
                            "expected NAME:HASH with a yescrypt ($y$) or bcrypt ($2b$) hash, as "
                            "`mailconfd cockpit password NAME` writes it");
            continue;
          }
          cockpit.users.push_back({name, hash});
        }
        auto found = in_file.take();
        if (cockpit.users.empty() && found.empty()) {
          problems_.at(node, fmt::format("<cockpit>: password-file {} has no NAME:HASH line",
                                         cockpit.password_file));
        }
        for (auto& problem : found) extra_.push_back(std::move(problem));
      }
    }
    config.cockpit = std::move(cockpit);
  }

  void read_limits(const pugi::xml_node& node, Limits& limits) {
    check_known(problems_, node,
                {"max-request-line", "max-header-bytes", "max-headers", "max-body-bytes",
                 "header-timeout", "body-timeout", "keepalive-timeout", "max-connections"},
                {});
    auto size = [&](const char* name, std::size_t& field, std::size_t min, std::size_t max) {
      if (auto a = node.attribute(name)) {
        auto n = parse_number<std::size_t>(a.value());
        if (!n || *n < min || *n > max) {
          problems_.at(node, fmt::format("{} must be a number from {} to {}", name, min, max));
        } else {
          field = *n;
        }
      }
    };
    auto duration = [&](const char* name, std::chrono::milliseconds& field) {
      if (auto a = node.attribute(name)) {
        auto d = parse_duration(a.value());
        if (!d || d->count() < 100) {
          problems_.at(node, fmt::format("{} must be a duration of at least 100ms, like 10s or "
                                         "500ms",
                                         name));
        } else {
          field = *d;
        }
      }
    };
    size("max-request-line", limits.max_request_line, 256, 1 << 20);
    size("max-header-bytes", limits.max_header_bytes, 1024, 1 << 20);
    size("max-headers", limits.max_headers, 8, 1000);
    size("max-body-bytes", limits.max_body_bytes, 1024, 1 << 24);
    size("max-connections", limits.max_connections, 1, 1'000'000);
    duration("header-timeout", limits.header_timeout);
    duration("body-timeout", limits.body_timeout);
    duration("keepalive-timeout", limits.keepalive_timeout);
  }

  std::string text_of(const pugi::xml_node& node, std::size_t max_length) {
    std::string text = trimmed(node.text().get());
    if (has_control(text))
      problems_.at(node, fmt::format("<{}> contains control characters", node.name()));
    if (!valid_utf8(text)) {
      problems_.at(node, fmt::format("<{}> is not valid UTF-8", node.name()));
    } else if (utf8_length(text) > max_length) {
      problems_.at(node, fmt::format("<{}> is longer than {} characters", node.name(), max_length));
    }
    return text;
  }

  std::optional<std::string> host_attribute(const pugi::xml_node& node, const char* name) {
    const pugi::xml_attribute a = node.attribute(name);
    if (!a) return std::nullopt;
    auto host = normalize_domain(a.value());
    if (!host || host->find('.') == std::string::npos) {
      problems_.at(node, fmt::format("{} '{}' is not a host name", name, a.value()));
      return std::nullopt;
    }
    return host;
  }

  // Reads <incoming>/<outgoing>. Returns nullopt if the entry is unusable.
  std::optional<MailServer> read_server_entry(const pugi::xml_node& node, bool outgoing) {
    check_known(problems_, node, {"protocol", "host", "port", "security", "auth"}, {});
    MailServer server;
    bool ok = true;
    const std::string protocol = node.attribute("protocol").as_string(outgoing ? "smtp" : "");
    if (outgoing) {
      if (protocol != "smtp") {
        problems_.at(node, fmt::format("<outgoing> protocol must be smtp, not '{}'", protocol));
        ok = false;
      }
      server.protocol = Protocol::Smtp;
    } else if (protocol == "imap") {
      server.protocol = Protocol::Imap;
    } else if (protocol == "pop3") {
      server.protocol = Protocol::Pop3;
    } else {
      problems_.at(node,
                   fmt::format("<incoming> protocol must be imap or pop3, not '{}'", protocol));
      ok = false;
    }

    if (auto host = host_attribute(node, "host")) {
      server.host = *host;
    } else {
      if (!node.attribute("host"))
        problems_.at(node, fmt::format("<{}> needs a host", node.name()));
      ok = false;
    }

    const auto port = parse_number<unsigned>(node.attribute("port").value());
    if (!port || *port == 0 || *port > 65535) {
      problems_.at(node, fmt::format("<{}> needs a port from 1 to 65535", node.name()));
      ok = false;
    } else {
      server.port = static_cast<std::uint16_t>(*port);
    }

    const std::string security = node.attribute("security").value();
    bool security_ok = true;
    if (security == "tls") {
      server.security = Security::Tls;
    } else if (security == "starttls") {
      server.security = Security::StartTls;
    } else if (security == "plain" || security == "none" || security.empty()) {
      problems_.at(node, fmt::format("<{}> security must be tls or starttls: passwords are never "
                                     "sent without TLS",
                                     node.name()));
      ok = security_ok = false;
    } else {
      problems_.at(node, fmt::format("<{}> security '{}' is unknown (tls or starttls)", node.name(),
                                     security));
      ok = security_ok = false;
    }

    const std::string auth = node.attribute("auth").as_string("password-cleartext");
    if (auth == "password-cleartext") {
      server.auth = Auth::PasswordCleartext;
    } else if (auth == "password-encrypted") {
      server.auth = Auth::PasswordEncrypted;
    } else if (auth == "smtp-after-pop" || auth == "client-IP-address" || auth == "none") {
      problems_.at(node, fmt::format("<{}> auth '{}' is refused: every client must log in with "
                                     "its password (SMTP-Auth)",
                                     node.name(), auth));
      ok = false;
    } else {
      problems_.at(node, fmt::format("<{}> auth '{}' is unknown (password-cleartext or "
                                     "password-encrypted)",
                                     node.name(), auth));
      ok = false;
    }

    if (outgoing && port) {
      if (*port == 25) {
        problems_.at(node,
                     "<outgoing> port 25 is for server-to-server relay, never for clients; "
                     "use 587 with starttls");
        ok = false;
      } else if (security_ok && !((*port == 587 && server.security == Security::StartTls) ||
                                  (*port == 465 && server.security == Security::Tls))) {
        problems_.at(node, "<outgoing> must be submission on 587 with starttls (or 465 with tls)");
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return server;
  }

  // "autoconfig", "autodiscover", both (space-separated, any order) or "none".
  static std::optional<AcmeHostedNames> hosted_names_of(std::string_view text) {
    AcmeHostedNames names;
    if (text == "none") return names;
    bool any = false;
    while (!text.empty()) {
      const auto space = text.find(' ');
      const std::string_view word = text.substr(0, space);
      text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
      if (word.empty()) continue;
      if (word == "autoconfig" && !names.autoconfig) {
        names.autoconfig = true;
      } else if (word == "autodiscover" && !names.autodiscover) {
        names.autodiscover = true;
      } else {
        return std::nullopt;
      }
      any = true;
    }
    if (!any) return std::nullopt;
    return names;
  }

  void read_provider(const pugi::xml_node& node, Config& config) {
    check_known(problems_, node, {"id", "acme-hosted-names"},
                {"display-name", "short-name", "login", "incoming", "outgoing", "documentation",
                 "notice", "autodiscover", "dns", "domain", "domains"});
    check_once(
        problems_, node,
        {"display-name", "short-name", "login", "documentation", "notice", "autodiscover", "dns"});
    Provider provider;
    provider.overrides.emplace_back();
    const std::string id = node.attribute("id").value();
    if (auto norm = normalize_domain(id); norm && norm->find('.') != std::string::npos) {
      provider.id = *norm;
    } else {
      problems_.at(node, fmt::format("<provider> id '{}' must be a host name such as "
                                     "provider.example (Thunderbird requires it)",
                                     id));
    }
    for (const auto& p : config.providers) {
      if (!provider.id.empty() && p.id == provider.id) {
        problems_.at(node, fmt::format("provider id '{}' is used twice", provider.id));
      }
    }

    if (auto a = node.attribute("acme-hosted-names")) {
      provider.acme_hosted_names = hosted_names_of(a.value());
      if (!provider.acme_hosted_names) {
        problems_.at(node, fmt::format("<provider>: acme-hosted-names must be autoconfig, "
                                       "autodiscover, both (separated by a space) or none, not "
                                       "'{}'",
                                       a.value()));
      }
    }
    if (auto n = node.child("display-name")) provider.display_name = text_of(n, 60);
    if (provider.display_name.empty()) provider.display_name = provider.id;
    if (auto n = node.child("short-name")) provider.short_name = text_of(n, 20);
    // Cut at a character boundary: a cut inside a UTF-8 sequence would reach clients as
    // replacement characters.
    if (provider.short_name.empty()) provider.short_name = utf8_prefix(provider.display_name, 20);

    if (auto n = node.child("login")) {
      check_known(problems_, n, {"domain"}, {});
      if (auto a = n.attribute("domain")) {
        const std::string_view value = a.value();
        if (value == "a-label" || value == "u-label") {
          provider.login_domain = value == "a-label" ? LoginDomain::ALabel : LoginDomain::ULabel;
        } else {
          problems_.at(n,
                       fmt::format("<login> domain must be a-label or u-label, not '{}'", value));
        }
      }
      const std::string form = text_of(n, 20);
      if (form == "address") {
        provider.login = LoginForm::Address;
      } else if (form == "local-part") {
        provider.login = LoginForm::LocalPart;
      } else {
        problems_.at(n, fmt::format("<login> must be address or local-part, not '{}'", form));
      }
    }

    for (const pugi::xml_node& n : node.children("incoming")) {
      if (auto s = read_server_entry(n, false)) provider.incoming.push_back(*s);
    }
    bool has_submission = false;
    for (const pugi::xml_node& n : node.children("outgoing")) {
      if (auto s = read_server_entry(n, true)) {
        has_submission = has_submission || (s->port == 587 && s->security == Security::StartTls);
        provider.outgoing.push_back(*s);
      }
    }
    if (node.child("incoming").empty())
      problems_.at(node, "<provider> needs at least one <incoming>");
    if (!has_submission && !node.child("outgoing").empty()) {
      problems_.at(node, "<provider> needs an <outgoing> on port 587 with starttls");
    } else if (node.child("outgoing").empty()) {
      problems_.at(node, "<provider> needs an <outgoing> on port 587 with starttls");
    }

    if (auto doc = node.child("documentation")) {
      check_known(problems_, doc, {"url"}, {"text"});
      provider.documentation_url = doc.attribute("url").value();
      if (!provider.documentation_url.starts_with("https://") &&
          !provider.documentation_url.starts_with("http://")) {
        problems_.at(doc, "<documentation> needs a url starting with https://");
      }
      for (const pugi::xml_node& t : doc.children("text")) {
        check_known(problems_, t, {"lang"}, {});
        const std::string lang = t.attribute("lang").as_string("en");
        if (std::any_of(provider.documentation.begin(), provider.documentation.end(),
                        [&](const LocalizedText& other) { return other.lang == lang; })) {
          problems_.at(t, fmt::format("<text lang=\"{}\"> may appear only once in "
                                      "<documentation>",
                                      lang));
          continue;
        }
        provider.documentation.push_back({lang, text_of(t, 200)});
      }
    }

    if (auto notice = node.child("notice")) read_notice(notice, provider.notice);

    if (auto ad = node.child("autodiscover")) {
      check_known(problems_, ad, {"host", "http-redirect"}, {});
      if (auto host = host_attribute(ad, "host")) provider.autodiscover_host = *host;
      if (auto a = ad.attribute("http-redirect")) {
        const std::string_view value = a.value();
        if (value == "on" || value == "off") {
          provider.autodiscover_redirect = value == "on";
        } else {
          problems_.at(
              ad, fmt::format("<autodiscover> http-redirect must be on or off, not '{}'", value));
        }
      }
    }
    if (provider.autodiscover_host.empty() && !provider.id.empty()) {
      provider.autodiscover_host = "autodiscover." + provider.id;
    }

    if (auto d = node.child("dns")) read_dns(d, provider.dns);

    const auto index = static_cast<std::uint32_t>(config.providers.size());
    for (const pugi::xml_node& d : node.children("domain")) read_domain(d, provider, index, config);
    for (const pugi::xml_node& d : node.children("domains"))
      read_domain_list(d, provider, index, config);
    config.providers.push_back(std::move(provider));
  }

  void read_dns(const pugi::xml_node& node, DnsOptions& dns) {
    check_known(problems_, node, {"ttl", "autoconfig-cname", "autodiscover-cname"}, {"mx"});
    if (auto a = node.attribute("ttl")) {
      auto ttl = parse_number<std::uint32_t>(a.value());
      if (!ttl || *ttl < 60 || *ttl > 604'800) {
        problems_.at(node, "ttl must be a number of seconds from 60 to 604800");
      } else {
        dns.ttl = *ttl;
      }
    }
    if (auto h = host_attribute(node, "autoconfig-cname")) dns.autoconfig_cname = *h;
    if (auto h = host_attribute(node, "autodiscover-cname")) dns.autodiscover_cname = *h;
    for (const pugi::xml_node& m : node.children("mx")) {
      check_known(problems_, m, {"host", "preference"}, {});
      MxHost mx;
      if (auto h = host_attribute(m, "host")) {
        mx.host = *h;
      } else {
        if (!m.attribute("host")) problems_.at(m, "<mx> needs a host");
        continue;
      }
      if (auto a = m.attribute("preference")) {
        auto preference = parse_number<std::uint16_t>(a.value());
        if (!preference) {
          problems_.at(m, "preference must be a number from 0 to 65535");
          continue;
        }
        mx.preference = *preference;
      }
      if (std::any_of(dns.mx.begin(), dns.mx.end(),
                      [&](const MxHost& other) { return other.host == mx.host; })) {
        problems_.at(m, fmt::format("<mx> host '{}' is listed twice", mx.host));
        continue;
      }
      dns.mx.push_back(mx);
    }
  }

  // Inserts a domain, or reports where it was listed first: "listed twice" within one
  // provider, "already served by provider P" across two. source and line say where this
  // entry is (source: index into sources_).
  void add_domain(const std::string& name, DomainEntry entry, std::uint32_t source,
                  std::size_t line, Config& config,
                  const std::function<void(const std::string&)>& report) {
    if (config.domains.insert(name, entry)) {
      first_seen_.push_back({source, static_cast<std::uint32_t>(line)});
      return;
    }
    const DomainEntry* existing = config.domains.find(name);
    const auto position = config.domains.position(name);
    std::string first;
    if (position && *position < first_seen_.size()) {
      const Location& at = first_seen_[*position];
      first = fmt::format("{}:{}", sources_[at.source], at.line);
    }
    if (existing->provider == entry.provider) {
      report(fmt::format("domain '{}' is listed twice (first at {})", name, first));
      return;
    }
    const std::string owner = existing->provider < config.providers.size()
                                  ? config.providers[existing->provider].id
                                  : std::string();
    report(
        fmt::format("domain '{}' is already served by provider '{}' ({}); a domain can have "
                    "only one provider",
                    name, owner, first));
  }

  void read_domain(const pugi::xml_node& node, Provider& provider, std::uint32_t index,
                   Config& config) {
    check_known(problems_, node, {"imap-host", "pop3-host", "smtp-host"}, {});
    const std::string raw = trimmed(node.text().get());
    auto name = normalize_domain(raw);
    if (!name || name->find('.') == std::string::npos) {
      problems_.at(node, fmt::format("<domain> '{}' is not a domain name", raw));
      return;
    }
    HostOverride hosts;
    if (auto h = host_attribute(node, "imap-host")) hosts.imap_host = *h;
    if (auto h = host_attribute(node, "pop3-host")) hosts.pop3_host = *h;
    if (auto h = host_attribute(node, "smtp-host")) hosts.smtp_host = *h;
    DomainEntry entry{index, 0};
    if (hosts != HostOverride{}) {
      auto it = std::find(provider.overrides.begin(), provider.overrides.end(), hosts);
      entry.hosts = static_cast<std::uint32_t>(it - provider.overrides.begin());
      if (it == provider.overrides.end()) provider.overrides.push_back(hosts);
    }
    add_domain(*name, entry, 0, problems_.line_of(node), config,
               [&](const std::string& m) { problems_.at(node, m); });
  }

  void read_domain_list(const pugi::xml_node& node, Provider& provider, std::uint32_t index,
                        Config& config) {
    check_known(problems_, node, {"file"}, {});
    const std::string file = node.attribute("file").value();
    if (file.empty()) {
      problems_.at(node, "<domains> needs a file attribute");
      return;
    }
    const std::string path = file.front() == '/' ? file : base_dir_ + "/" + file;
    std::string content;
    std::string error;
    if (!read_whole_file(path, content, error)) {
      problems_.at(node, fmt::format("cannot read domain list '{}': {}", path, error));
      return;
    }
    const std::string_view text = without_bom(content);
    const std::size_t bom = content.size() - text.size();
    Problems list_problems(path, {});
    if (!valid_utf8(text)) {
      // A Latin-1 (or other legacy) file: one clear message instead of one per umlaut.
      std::size_t start = 0;
      std::size_t line = 1;
      while (true) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        const std::string_view bad = text.substr(start, end - start);
        if (!valid_utf8(bad)) {
          std::size_t column = 0;
          while (column < bad.size() && valid_utf8(bad.substr(0, column + 1))) ++column;
          list_problems.at_line(line, column + 1 + (line == 1 ? bom : 0),
                                "not valid UTF-8 (save the file as UTF-8)");
          break;
        }
        start = end + 1;
        ++line;
      }
      for (auto& p : list_problems.take()) extra_.push_back(std::move(p));
      return;
    }
    const auto source = static_cast<std::uint32_t>(sources_.size());
    sources_.push_back(path);
    config.domains.reserve(static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) +
                           1);
    first_seen_.reserve(config.domains.size() +
                        static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
    std::size_t line_start = 0;
    std::size_t line_number = 1;
    std::size_t errors = 0;
    while (line_start < text.size()) {
      std::size_t line_end = text.find('\n', line_start);
      if (line_end == std::string_view::npos) line_end = text.size();
      std::string_view line(text.data() + line_start, line_end - line_start);
      if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
      const auto first = line.find_first_not_of(" \t\r");
      if (first != std::string_view::npos) {
        const auto last = line.find_last_not_of(" \t\r");
        const std::string_view entry = line.substr(first, last - first + 1);
        auto report = [&](const std::string& message) {
          if (++errors <= 100) {
            list_problems.at_line(line_number, first + 1 + (line_number == 1 ? bom : 0), message);
          }
        };
        auto name = normalize_domain(entry);
        if (!name || name->find('.') == std::string::npos) {
          report(fmt::format("'{}' is not a domain name", entry));
        } else {
          add_domain(*name, DomainEntry{index, 0}, source, line_number, config, report);
        }
      }
      line_start = line_end + 1;
      ++line_number;
    }
    (void)provider;
    auto found = list_problems.take();
    if (errors > 100)
      found.push_back(fmt::format("{}: {} more problems not shown", path, errors - 100));
    for (auto& p : found) extra_.push_back(std::move(p));
  }

 public:
  std::vector<std::string> extra_;

 private:
  Problems& problems_;
  std::string base_dir_;
  TlsKeys tls_keys_;
  const tls::CertificateSet* previous_;

 public:
  std::vector<std::string> warnings_;

 private:
  // Where each domain was listed, by insertion number (DomainTable::position), for the
  // "listed twice" messages: 8 bytes per domain while loading, freed with the Loader.
  struct Location {
    std::uint32_t source;  // index into sources_
    std::uint32_t line;
  };
  std::vector<Location> first_seen_;
  std::vector<std::string> sources_;  // [0] the configuration file, then each domain list
};

}  // namespace

std::optional<ListenAddress> parse_listen(std::string_view text) {
  ListenAddress out;
  std::string_view port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    out.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
    in6_addr v6{};
    if (inet_pton(AF_INET6, out.host.c_str(), &v6) != 1) return std::nullopt;
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    out.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
    in_addr v4{};
    if (out.host != "localhost" && inet_pton(AF_INET, out.host.c_str(), &v4) != 1)
      return std::nullopt;
    if (out.host == "localhost") out.host = "127.0.0.1";
  }
  auto number = parse_number<unsigned>(port);
  if (!number || *number > 65535) return std::nullopt;
  out.port = static_cast<std::uint16_t>(*number);
  return out;
}

Loaded load_config_text(std::string_view text, const std::string& name, const std::string& base_dir,
                        TlsKeys tls_keys, const tls::CertificateSet* previous) {
  Loaded loaded;
  loaded.config.path = name;
  Problems problems(name, text);
  pugi::xml_document doc;
  // Default flags: no DTD processing, only the five predefined entities; a DOCTYPE is refused.
  const pugi::xml_parse_result result =
      doc.load_buffer(text.data(), text.size(), pugi::parse_default | pugi::parse_doctype);
  if (!result) {
    problems.at_offset(result.offset, fmt::format("not well-formed XML: {}", result.description()));
    loaded.problems = problems.take();
    return loaded;
  }
  for (const pugi::xml_node& n : doc.children()) {
    if (n.type() == pugi::node_doctype) {
      const auto at = text.find("<!DOCTYPE");
      problems.at_offset(at == std::string_view::npos ? 0 : static_cast<std::ptrdiff_t>(at),
                         "a DOCTYPE is not allowed");
    }
  }
  Loader loader(problems, base_dir, tls_keys, previous);
  loader.load(doc, loaded.config);
  loaded.warnings = std::move(loader.warnings_);
  loaded.problems = problems.take();
  for (auto& p : loader.extra_) loaded.problems.push_back(std::move(p));
  return loaded;
}

Loaded load_config_file(const std::string& path, TlsKeys tls_keys,
                        const tls::CertificateSet* previous) {
  std::string text;
  std::string error;
  if (!read_whole_file(path, text, error)) {
    Loaded loaded;
    loaded.problems.push_back(fmt::format("{}:1:1: cannot read the file: {}", path, error));
    return loaded;
  }
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  return load_config_text(text, path, dir.empty() ? "/" : dir, tls_keys, previous);
}

}  // namespace mailconfd
