// The format of private keys sealed for the database (<acme key-file>): exact header and
// layout, round trip, every kind of change refused, the previous release's PEM passed through.
#include "acme_store/sealed.h"

#include <string>

#include <doctest/doctest.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

using mailconfd::acme_store::certificate_associated_data;
using mailconfd::acme_store::kAccountAssociatedData;
using mailconfd::acme_store::open_sealed;
using mailconfd::acme_store::Opened;
using mailconfd::acme_store::seal;

namespace {

const std::string kKey(32, '\x42');
// A P-256 key made for this run, as PEM (no key is kept in the repository).
std::string fresh_key_pem() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  BIO* bio = BIO_new(BIO_s_mem());
  REQUIRE(key != nullptr);
  REQUIRE(bio != nullptr);
  REQUIRE(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(size));
  BIO_free(bio);
  EVP_PKEY_free(key);
  return pem;
}

// Made on first use, inside a test case (REQUIRE needs one).
const std::string& key_pem() {
  static const std::string pem = fresh_key_pem();
  return pem;
}

std::string decoded(const std::string& sealed) {
  const std::string text = sealed.substr(std::string("mailconfd-sealed-v1:").size());
  std::string raw(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(raw.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  REQUIRE(n >= 0);
  raw.resize(static_cast<std::size_t>(n) - (text.ends_with("==")  ? 2
                                            : text.ends_with('=') ? 1
                                                                  : 0));
  return raw;
}

std::string encoded(const std::string& raw) {
  std::string text(4 * ((raw.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(text.data()),
                                reinterpret_cast<const unsigned char*>(raw.data()),
                                static_cast<int>(raw.size()));
  text.resize(static_cast<std::size_t>(n));
  return "mailconfd-sealed-v1:" + text;
}

Opened open_value(const std::string& key, const std::string& associated, const std::string& stored,
                  std::string& plain, std::string& error) {
  return open_sealed(key, associated, stored, plain, error);
}

}  // namespace

TEST_CASE("acme_store: a sealed key has the v1 header, nonce, ciphertext and tag, and opens") {
  const std::string ad = certificate_associated_data("autoconfig.customer.example");
  CHECK(ad == "certificate autoconfig.customer.example");
  CHECK(kAccountAssociatedData == "account");
  const std::string sealed = seal(kKey, ad, key_pem());
  REQUIRE(sealed.starts_with("mailconfd-sealed-v1:"));
  CHECK(sealed.find("PRIVATE KEY") == std::string::npos);
  CHECK(sealed.find('\n') == std::string::npos);
  CHECK(decoded(sealed).size() == 12 + key_pem().size() + 16);
  // A new nonce each time: sealing twice gives two values.
  const std::string again = seal(kKey, ad, key_pem());
  CHECK(again != sealed);
  CHECK(decoded(again).substr(0, 12) != decoded(sealed).substr(0, 12));
  std::string plain, error;
  CHECK(open_value(kKey, ad, sealed, plain, error) == Opened::Sealed);
  CHECK(plain == key_pem());
  CHECK(open_value(kKey, ad, again, plain, error) == Opened::Sealed);
  CHECK(plain == key_pem());
  CHECK(seal(std::string(31, 'k'), ad, key_pem()).empty());  // not an AES-256 key
}

TEST_CASE("acme_store: the previous release's plain PEM is passed through as it is") {
  std::string plain, error;
  CHECK(open_value(kKey, "certificate a.example", key_pem(), plain, error) == Opened::Plain);
  CHECK(plain == key_pem());
  CHECK(open_value("", "certificate a.example", key_pem(), plain, error) == Opened::Plain);
  CHECK(plain == key_pem());
}

TEST_CASE("acme_store: a wrong key, another row or any changed byte is refused") {
  const std::string ad = certificate_associated_data("a.example");
  const std::string sealed = seal(kKey, ad, key_pem());
  const std::string raw = decoded(sealed);
  const std::string kChanged = "sealed with another key-file, for another row, or changed";
  std::string plain = "untouched", error;
  CHECK(open_value(std::string(32, '\x43'), ad, sealed, plain, error) == Opened::Failed);
  CHECK(error == kChanged);
  CHECK(plain == "untouched");
  error.clear();
  CHECK(open_value(kKey, certificate_associated_data("b.example"), sealed, plain, error) ==
        Opened::Failed);
  CHECK(error == kChanged);
  CHECK(open_value(kKey, std::string(kAccountAssociatedData), sealed, plain, error) ==
        Opened::Failed);
  // One bit flipped in the nonce, the ciphertext and the tag.
  for (const std::size_t at : {std::size_t{0}, std::size_t{11}, std::size_t{12}, std::size_t{40},
                               raw.size() - 17, raw.size() - 16, raw.size() - 1}) {
    CAPTURE(at);
    std::string changed = raw;
    changed[at] = static_cast<char>(changed[at] ^ 0x01);
    error.clear();
    CHECK(open_value(kKey, ad, encoded(changed), plain, error) == Opened::Failed);
    CHECK(error == kChanged);
  }
  // Cut short: the tag missing, or less than a nonce and a tag.
  CHECK(open_value(kKey, ad, encoded(raw.substr(0, raw.size() - 16)), plain, error) ==
        Opened::Failed);
  error.clear();
  CHECK(open_value(kKey, ad, encoded(raw.substr(0, 27)), plain, error) == Opened::Failed);
  CHECK(error == "sealed, but not well-formed");
  CHECK(plain == "untouched");
}

TEST_CASE(
    "acme_store: a sealed value that is not well-formed, of another version or without a key") {
  const std::string ad = certificate_associated_data("a.example");
  const std::string sealed = seal(kKey, ad, key_pem());
  std::string plain, error;
  CHECK(open_value(kKey, ad, sealed + "\n", plain, error) == Opened::Failed);
  CHECK(error == "sealed, but not well-formed");
  CHECK(open_value(kKey, ad, "mailconfd-sealed-v1:not base64!", plain, error) == Opened::Failed);
  CHECK(open_value(kKey, ad, "mailconfd-sealed-v1:", plain, error) == Opened::Failed);
  CHECK(error == "sealed, but not well-formed");
  CHECK(open_value(kKey, ad, "mailconfd-sealed-v1:AAAA=AAA", plain, error) == Opened::Failed);
  std::string v2 = sealed;
  v2.replace(0, 20, "mailconfd-sealed-v2:");
  CHECK(open_value(kKey, ad, v2, plain, error) == Opened::Failed);
  CHECK(error == "sealed in a format this version does not know");
  CHECK(open_value("", ad, sealed, plain, error) == Opened::Failed);
  CHECK(error == "sealed, and <acme> has no key-file");
  CHECK(plain.empty());
}
