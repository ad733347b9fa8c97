// Signs Apple configuration profiles: CMS SignedData (RFC 5652) with the content attached,
// DER-encoded, carrying the signer certificate and its chain (protocols.md §3.4). The key
// material is read once, when the configuration is loaded; a reload loads it again.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "sign/openssl.h"

namespace mailconfd::sign {

class Signer {
 public:
  // Reads PEM files: the signer certificate, its private key (RSA or EC, unencrypted; an
  // encrypted key is refused rather than prompting) and optionally a chain of intermediate
  // certificates (chain_path empty: none). Checks that the key belongs to the certificate.
  // On failure returns nullptr and sets error to one line naming the file and OpenSSL's
  // reason.
  static std::shared_ptr<const Signer> load(const std::string& certificate_path,
                                            const std::string& key_path,
                                            const std::string& chain_path, std::string& error);

  // CMS SignedData over content (bytes unchanged, CMS_BINARY), DER. nullopt only when OpenSSL
  // fails (the reason is logged). Safe to call from several threads at once.
  std::optional<std::string> sign(std::string_view content) const;

  // "RSA-2048", "EC-prime256v1": for the start-up log.
  const std::string& key_description() const { return key_description_; }
  // The signer certificate's subject and notAfter, for the start-up log: Apple shows a
  // profile signed with an expired certificate as unsigned (protocols.md §3.4).
  const std::string& subject() const { return subject_; }
  std::chrono::system_clock::time_point not_after() const { return not_after_; }
  std::size_t chain_length() const;
  // SHA-256 over the certificate, key and chain (raw bytes): two Signers with the same
  // fingerprint produce interchangeable signatures, so a reload that reads the same files
  // may keep the profiles the old one signed.
  const std::string& fingerprint() const { return fingerprint_; }

 private:
  Signer() = default;
  X509Ptr certificate_;
  EvpPkeyPtr key_;
  X509StackPtr chain_;
  std::string key_description_;
  std::string subject_;
  std::string fingerprint_;
  std::chrono::system_clock::time_point not_after_;
};

}  // namespace mailconfd::sign
