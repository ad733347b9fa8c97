// ARI (RFC 9773): the certificate identifier, RFC 3339 times, the suggested window.
#include "acme/renewal_info.h"

#include <chrono>
#include <string>

#include <doctest/doctest.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace {

// A self-signed certificate with the given serial (hex) and, unless empty, an Authority Key
// Identifier with key_id; as PEM.
std::string certificate(const char* serial_hex, const std::string& key_id) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  X509_set_version(x, X509_VERSION_3);
  BIGNUM* bn = nullptr;
  BN_hex2bn(&bn, serial_hex);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  if (!key_id.empty()) {
    AUTHORITY_KEYID* akid = AUTHORITY_KEYID_new();
    akid->keyid = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(akid->keyid, reinterpret_cast<const unsigned char*>(key_id.data()),
                          static_cast<int>(key_id.size()));
    X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT);
    AUTHORITY_KEYID_free(akid);
  }
  X509_sign(x, key, EVP_sha256());
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, x);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(size));
  BIO_free(bio);
  X509_free(x);
  EVP_PKEY_free(key);
  return pem;
}

}  // namespace

TEST_CASE("acme: the ARI certID of RFC 9773's example, and none without a keyIdentifier") {
  // RFC 9773 §4.1: keyIdentifier 69:88:5B:…:C8:D4, serial 0x87654321 (DER content 00 87 65
  // 43 21: the high bit is set, so a leading zero).
  const std::string key_id(
      "\x69\x88\x5B\x6B\x87\x46\x40\x41\xE1\xB3\x7B\x84\x7B\xA0\xAE\x2C\xDE\x01\xC8\xD4", 20);
  CHECK(mailconfd::acme::ari_cert_id(certificate("87654321", key_id)) ==
        "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
  CHECK(mailconfd::acme::ari_cert_id(certificate("7F", key_id)) ==
        "aYhba4dGQEHhs3uEe6CuLN4ByNQ.fw");
  CHECK(mailconfd::acme::ari_cert_id(certificate("87654321", "")) == "");
  CHECK(mailconfd::acme::ari_cert_id("not a certificate") == "");
  CHECK(mailconfd::acme::ari_cert_id("") == "");
}

TEST_CASE("acme: RFC 3339 times and renewalInfo's suggestedWindow") {
  using namespace std::chrono;
  using mailconfd::acme::parse_rfc3339;
  const auto t = system_clock::from_time_t(1'796'299'200);  // 2026-12-03T12:00:00Z
  CHECK(parse_rfc3339("2026-12-03T12:00:00Z") == t);
  CHECK(parse_rfc3339("2026-12-03t12:00:00.123456789z") == t);
  CHECK(parse_rfc3339("2026-12-03T14:30:00+02:30") == t);
  CHECK(parse_rfc3339("2026-12-03T09:00:00-03:00") == t);
  for (const char* bad :
       {"", "2026-12-03", "2026-12-03 12:00:00Z", "2026-12-03T12:00:00", "2026-13-03T12:00:00Z",
        "2026-12-03T12:00:00.Z", "2026-12-03T12:00:00+0200", "2026-12-03T12:00:00Zjunk"}) {
    CHECK_MESSAGE(parse_rfc3339(bad) == std::nullopt, bad);
  }
  using mailconfd::acme::parse_renewal_info;
  const auto window = parse_renewal_info(
      R"({"suggestedWindow": {"start": "2026-12-03T12:00:00Z", "end": "2026-12-04T12:00:00Z"},
          "explanationURL": "https://ca.example/why"})");
  REQUIRE(window);
  CHECK(window->start == t);
  CHECK(window->end == t + hours(24));
  CHECK(!parse_renewal_info(R"({"suggestedWindow": {"start": "2026-12-04T12:00:00Z",
                                                     "end": "2026-12-03T12:00:00Z"}})"));
  CHECK(!parse_renewal_info(R"({"suggestedWindow": {"start": "2026-12-03T12:00:00Z"}})"));
  CHECK(!parse_renewal_info(R"({"suggestedWindow": {"start": 1, "end": 2}})"));
  CHECK(!parse_renewal_info("{}"));
  CHECK(!parse_renewal_info("not json"));
  // The point in the window: inside it, stable per name, spread between names.
  const auto at = mailconfd::acme::renewal_point(*window, "autoconfig.example.com");
  CHECK(at >= window->start);
  CHECK(at <= window->end);
  CHECK(at == mailconfd::acme::renewal_point(*window, "autoconfig.example.com"));
  CHECK(at != mailconfd::acme::renewal_point(*window, "autoconfig.example.org"));
}
