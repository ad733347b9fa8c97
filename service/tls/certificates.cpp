#include "tls/certificates.h"

#include <algorithm>
#include <atomic>
#include <ctime>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/ascii.h"
#include "core/utc_time.h"
#include "sign/openssl.h"
#include "tls/validation.h"

namespace mailconfd::tls {
namespace {

SystemClock::time_point to_time(const ASN1_TIME* time) {
  std::tm tm{};
  if (!time || ASN1_TIME_to_tm(time, &tm) != 1) return {};
  return SystemClock::from_time_t(timegm(&tm));
}

std::vector<std::string> dns_names(X509* leaf) {
  std::vector<std::string> names;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans, i);
      if (name->type != GEN_DNS) continue;
      const ASN1_STRING* s = name->d.dNSName;
      names.push_back(ascii_lower(std::string_view(
          reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), ASN1_STRING_length(s))));
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    // RFC 6125 allows the CN only without DNS SANs.
    char cn[256];
    const int n =
        X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof cn);
    if (n > 0) names.push_back(ascii_lower(std::string_view(cn, static_cast<std::size_t>(n))));
  }
  ERR_clear_error();
  return names;
}

int ex_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

std::function<void(std::string_view)> uncovered_hook;
std::atomic<bool> uncovered_hook_set{false};

// Chooses the context for the name the client sent. Runs inside SSL_do_handshake on the
// worker's thread; only reads the immutable set the connection was attached to.
int on_server_name(SSL* ssl, int*, void*) {
  const auto* set = static_cast<const CertificateSet*>(SSL_get_ex_data(ssl, ex_index()));
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!set || !name || answering_alpn_challenge(ssl)) return SSL_TLSEXT_ERR_OK;
  const Certificate* certificate = set->find(name);
  if (certificate && certificate->context->get() != SSL_get_SSL_CTX(ssl)) {
    SSL_set_SSL_CTX(ssl, certificate->context->get());
  }
  if (!certificate && uncovered_hook_set.load(std::memory_order_acquire)) {
    std::string_view n = name;
    if (!n.empty() && n.back() == '.') n.remove_suffix(1);
    if (!n.empty() && n.size() <= 253) uncovered_hook(ascii_lower(n));
  }
  return SSL_TLSEXT_ERR_OK;
}

std::array<std::atomic<std::uint64_t>, kHandshakeFailureKinds> failures{};
std::atomic<std::uint64_t> completed{0}, resumed{0};

}  // namespace

std::optional<Certificate> load_certificate(const CertificateFiles& files, std::string& error) {
  if (files.key.empty()) {
    error = "certificate '" + files.certificate + "' has no private key beside it";
    return std::nullopt;
  }
  auto context = Context::load(files.certificate, files.key, files.chain, error);
  if (!context) return std::nullopt;
  X509* leaf = SSL_CTX_get0_certificate(context->get());
  if (!leaf) {
    error = "certificate '" + files.certificate + "' has no leaf certificate";
    return std::nullopt;
  }
  Certificate c;
  c.files = files;
  c.names = dns_names(leaf);
  c.not_before = to_time(X509_get0_notBefore(leaf));
  c.not_after = to_time(X509_get0_notAfter(leaf));
  SSL_CTX_set_tlsext_servername_callback(context->get(), on_server_name);
  answer_alpn_challenges(context->get());
  c.context = std::move(context);
  if (c.names.empty()) {
    error = "certificate '" + files.certificate + "' names no host (no DNS subjectAltName or CN)";
    return std::nullopt;
  }
  return c;
}

std::vector<CertificateFiles> scan_directory(const std::string& directory,
                                             std::vector<std::string>& errors) {
  namespace fs = std::filesystem;
  std::vector<CertificateFiles> found;
  std::error_code ec;
  fs::directory_iterator it(directory, ec);
  if (ec) {
    errors.push_back(
        fmt::format("cannot read certificate directory '{}': {}", directory, ec.message()));
    return found;
  }
  std::vector<fs::path> entries;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    entries.push_back(it->path());
  }
  std::sort(entries.begin(), entries.end());
  for (const fs::path& p : entries) {
    if (fs::is_directory(p, ec)) {
      const fs::path chain = p / "fullchain.pem", key = p / "privkey.pem";
      if (fs::exists(chain, ec)) {
        found.push_back({chain.string(), fs::exists(key, ec) ? key.string() : "", ""});
      }
      continue;
    }
    const std::string ext = p.extension().string();
    if (ext != ".pem" && ext != ".crt") continue;
    fs::path key = p;
    key.replace_extension(".key");
    found.push_back({p.string(), fs::exists(key, ec) ? key.string() : "", ""});
  }
  return found;
}

State state_at(const Certificate& certificate, SystemClock::time_point now) {
  if (now < certificate.not_before) return State::NotYetValid;
  if (now >= certificate.not_after) return State::Expired;
  return State::Valid;
}

std::vector<std::string> describe(const std::vector<Certificate>& certificates,
                                  SystemClock::time_point now, std::vector<std::string>& warnings) {
  std::vector<std::string> lines;
  lines.reserve(certificates.size());
  for (std::size_t i = 0; i < certificates.size(); ++i) {
    const Certificate& c = certificates[i];
    std::string names;
    for (const auto& n : c.names) names += (names.empty() ? "" : ", ") + n;
    lines.push_back(fmt::format("certificate {}: {}; valid until {}{}", c.files.certificate, names,
                                rfc3339_utc(c.not_after), i == 0 ? " (default)" : ""));
    switch (state_at(c, now)) {
      case State::Expired:
        warnings.push_back(fmt::format("certificate {} expired at {}", c.files.certificate,
                                       rfc3339_utc(c.not_after)));
        break;
      case State::NotYetValid:
        warnings.push_back(fmt::format("certificate {} is not valid before {}", c.files.certificate,
                                       rfc3339_utc(c.not_before)));
        break;
      case State::Valid:
        break;
    }
  }
  return lines;
}

CertificateSet::CertificateSet(std::vector<Certificate> certificates)
    : certificates_(std::move(certificates)) {
  for (std::size_t i = 0; i < certificates_.size(); ++i) {
    for (const std::string& name : certificates_[i].names) {
      if (name.starts_with("*.")) {
        wildcard_.emplace(name.substr(2), i);
      } else {
        exact_.emplace(name, i);
      }
    }
  }
}

const Certificate* CertificateSet::find(std::string_view server_name) const {
  if (!server_name.empty() && server_name.back() == '.') server_name.remove_suffix(1);
  if (server_name.empty() || server_name.size() > 253) return nullptr;
  const std::string name = ascii_lower(server_name);
  if (auto it = exact_.find(name); it != exact_.end()) return &certificates_[it->second];
  const auto dot = name.find('.');
  if (dot == std::string::npos || dot == 0) return nullptr;
  if (auto it = wildcard_.find(name.substr(dot + 1)); it != wildcard_.end()) {
    return &certificates_[it->second];
  }
  return nullptr;
}

void CertificateSet::attach(ssl_st* ssl) const {
  SSL_set_ex_data(ssl, ex_index(), const_cast<CertificateSet*>(this));
}

void set_uncovered_name_hook(std::function<void(std::string_view)> hook) {
  uncovered_hook_set.store(false, std::memory_order_release);
  uncovered_hook = std::move(hook);
  if (uncovered_hook) uncovered_hook_set.store(true, std::memory_order_release);
}

std::string_view to_string(HandshakeFailure failure) {
  switch (failure) {
    case HandshakeFailure::CertificateRejected:
      return "certificate_rejected";
    case HandshakeFailure::NoSharedProtocol:
      return "no_shared_protocol";
    case HandshakeFailure::NotTls:
      return "not_tls";
    case HandshakeFailure::ClosedEarly:
      return "closed_early";
    case HandshakeFailure::Timeout:
      return "timeout";
    case HandshakeFailure::Other:
      break;
  }
  return "other";
}

HandshakeFailure classify_handshake_failure() {
  const unsigned long code = ERR_peek_error();
  if (code == 0) return HandshakeFailure::ClosedEarly;
  if (ERR_GET_LIB(code) != ERR_LIB_SSL) return HandshakeFailure::Other;
  switch (ERR_GET_REASON(code)) {
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
      return HandshakeFailure::CertificateRejected;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_NO_SHARED_GROUPS:
      return HandshakeFailure::NoSharedProtocol;
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_UNKNOWN_PROTOCOL:
      return HandshakeFailure::NotTls;
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
      return HandshakeFailure::ClosedEarly;
    default:
      return HandshakeFailure::Other;
  }
}

void count_handshake_failure(HandshakeFailure failure) {
  failures[static_cast<std::size_t>(failure)].fetch_add(1, std::memory_order_relaxed);
}

std::array<std::uint64_t, kHandshakeFailureKinds> handshake_failures() {
  std::array<std::uint64_t, kHandshakeFailureKinds> out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = failures[i].load();
  return out;
}

void count_handshake(bool was_resumed) {
  completed.fetch_add(1, std::memory_order_relaxed);
  if (was_resumed) resumed.fetch_add(1, std::memory_order_relaxed);
}
std::uint64_t handshakes_completed() { return completed.load(); }
std::uint64_t handshakes_resumed() { return resumed.load(); }

}  // namespace mailconfd::tls
