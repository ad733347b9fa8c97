#include "sign/signer.h"

#include <array>
#include <ctime>

#include <fmt/format.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <spdlog/spdlog.h>

namespace mailconfd::sign {
namespace {

// Appends the DER encoding i2d gives for object, preceded by its length (so that the
// concatenation of several encodings is unambiguous).
template <typename T, typename Encode>
void append_der(std::string& out, const T* object, Encode encode) {
  const int length = encode(object, nullptr);
  if (length <= 0) return;
  std::string der(static_cast<std::size_t>(length), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  if (encode(object, &p) != length) return;
  out += std::to_string(length) + ':' + der;
}

// SHA-256 of the certificate, the private key and the chain: equal exactly when the key
// material is.
std::string fingerprint_of(X509* certificate, EVP_PKEY* key, STACK_OF(X509) * chain) {
  std::string material;
  append_der(material, certificate, i2d_X509);
  append_der(material, key, i2d_PrivateKey);
  for (int i = 0; i < sk_X509_num(chain); ++i)
    append_der(material, sk_X509_value(chain, i), i2d_X509);
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_Digest(material.data(), material.size(), digest.data(), &size, EVP_sha256(), nullptr) !=
      1) {
    return material;  // the material itself compares just as exactly
  }
  return std::string(reinterpret_cast<const char*>(digest.data()), size);
}

// Never prompt on a terminal for a pass phrase: an encrypted key is a load error.
int no_pass_phrase(char*, int, int, void*) { return 0; }

BioPtr open_file(const std::string& path, std::string& error) {
  BioPtr bio(BIO_new_file(path.c_str(), "rb"));
  if (!bio) error = fmt::format("cannot open '{}': {}", path, openssl_error());
  return bio;
}

std::string describe_key(EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
      return fmt::format("RSA-{}", EVP_PKEY_get_bits(key));
    case EVP_PKEY_EC: {
      char group[80] = {};
      std::size_t length = 0;
      if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                         &length) != 1) {
        ERR_clear_error();
        return "EC";
      }
      return fmt::format("EC-{}", group);
    }
    default:
      return {};
  }
}

std::string subject_of(X509* certificate) {
  BioPtr out(BIO_new(BIO_s_mem()));
  if (!out ||
      X509_NAME_print_ex(out.get(), X509_get_subject_name(certificate), 0, XN_FLAG_RFC2253) < 0) {
    ERR_clear_error();
    return "?";
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

}  // namespace

std::shared_ptr<const Signer> Signer::load(const std::string& certificate_path,
                                           const std::string& key_path,
                                           const std::string& chain_path, std::string& error) {
  ERR_clear_error();
  std::shared_ptr<Signer> signer(new Signer());

  BioPtr bio = open_file(certificate_path, error);
  if (!bio) return nullptr;
  signer->certificate_.reset(PEM_read_bio_X509(bio.get(), nullptr, no_pass_phrase, nullptr));
  if (!signer->certificate_) {
    error = fmt::format("no PEM certificate in '{}': {}", certificate_path, openssl_error());
    return nullptr;
  }

  bio = open_file(key_path, error);
  if (!bio) return nullptr;
  signer->key_.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_pass_phrase, nullptr));
  if (!signer->key_) {
    error = fmt::format("no unencrypted PEM private key in '{}': {}", key_path, openssl_error());
    return nullptr;
  }
  signer->key_description_ = describe_key(signer->key_.get());
  if (signer->key_description_.empty()) {
    error = fmt::format("the key in '{}' is neither RSA nor EC (ECDSA)", key_path);
    return nullptr;
  }
  if (EVP_PKEY_get_base_id(signer->key_.get()) == EVP_PKEY_RSA &&
      EVP_PKEY_get_bits(signer->key_.get()) < 2048) {
    error = fmt::format("the RSA key in '{}' has {} bits; at least 2048 are needed", key_path,
                        EVP_PKEY_get_bits(signer->key_.get()));
    return nullptr;
  }
  if (X509_check_private_key(signer->certificate_.get(), signer->key_.get()) != 1) {
    error = fmt::format("the key in '{}' does not belong to the certificate in '{}': {}", key_path,
                        certificate_path, openssl_error());
    return nullptr;
  }

  signer->chain_.reset(sk_X509_new_null());
  if (!signer->chain_) {
    error = openssl_error();
    return nullptr;
  }
  if (!chain_path.empty()) {
    bio = open_file(chain_path, error);
    if (!bio) return nullptr;
    while (X509* certificate = PEM_read_bio_X509(bio.get(), nullptr, no_pass_phrase, nullptr)) {
      if (sk_X509_push(signer->chain_.get(), certificate) == 0) {
        X509_free(certificate);
        error = openssl_error();
        return nullptr;
      }
    }
    // Reading stops with "no start line" at the end of the file; anything else is damage.
    const unsigned long last = ERR_peek_last_error();
    if (ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE) {
      ERR_clear_error();
    } else if (last != 0) {
      error = fmt::format("damaged certificate in '{}': {}", chain_path, openssl_error());
      return nullptr;
    }
    if (sk_X509_num(signer->chain_.get()) == 0) {
      error = fmt::format("no PEM certificate in '{}'", chain_path);
      return nullptr;
    }
  }

  signer->subject_ = subject_of(signer->certificate_.get());
  signer->fingerprint_ =
      fingerprint_of(signer->certificate_.get(), signer->key_.get(), signer->chain_.get());
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(signer->certificate_.get()), &tm) == 1) {
    signer->not_after_ = std::chrono::system_clock::from_time_t(timegm(&tm));
  }
  ERR_clear_error();
  return signer;
}

std::optional<std::string> Signer::sign(std::string_view content) const {
  BioPtr in(BIO_new_mem_buf(content.data(), static_cast<int>(content.size())));
  if (!in) {
    spdlog::error("signing a profile failed: {}", openssl_error());
    return std::nullopt;
  }
  // No CMS_DETACHED: the plist is embedded (protocols.md §3.4, "-nodetach"). CMS_BINARY keeps
  // the bytes as they are instead of canonicalizing line ends. S/MIME capabilities are an
  // e-mail attribute that profile readers ignore.
  CmsPtr cms(CMS_sign(certificate_.get(), key_.get(), chain_.get(), in.get(),
                      CMS_BINARY | CMS_NOSMIMECAP));
  if (!cms) {
    spdlog::error("signing a profile failed: {}", openssl_error());
    return std::nullopt;
  }
  const int length = i2d_CMS_ContentInfo(cms.get(), nullptr);
  if (length <= 0) {
    spdlog::error("encoding a signed profile failed: {}", openssl_error());
    return std::nullopt;
  }
  std::string out(static_cast<std::size_t>(length), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  if (i2d_CMS_ContentInfo(cms.get(), &p) != length) {
    spdlog::error("encoding a signed profile failed: {}", openssl_error());
    return std::nullopt;
  }
  return out;
}

std::size_t Signer::chain_length() const {
  return static_cast<std::size_t>(sk_X509_num(chain_.get()));
}

}  // namespace mailconfd::sign
