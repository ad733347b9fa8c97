#include "sign/signer.h"

#include <doctest/doctest.h>

#include "app.h"
#include "sign/signed_cache.h"
#include "support.h"

using namespace mailconfd;
using mailconfd::sign::Signer;

namespace {

struct Verified {
  bool ok = false;
  std::string content;  // the attached content, when ok
  std::string error;
  int certificates = 0;  // certificates carried in the SignedData
  bool detached = true;
};

// Verifies DER CMS SignedData against root.pem of the test PKI, with the OpenSSL API and only
// the certificates the structure itself carries (as a device does).
Verified verify(const std::string& der) {
  Verified v;
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  sign::CmsPtr cms(d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(der.size())));
  if (!cms || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    v.error = "not one DER ContentInfo: " + sign::openssl_error();
    return v;
  }
  if (OBJ_obj2nid(CMS_get0_type(cms.get())) != NID_pkcs7_signed ||
      OBJ_obj2nid(CMS_get0_eContentType(cms.get())) != NID_pkcs7_data) {
    v.error = "not SignedData over id-data";
    return v;
  }
  v.detached = CMS_is_detached(cms.get()) == 1;
  STACK_OF(X509)* certs = CMS_get1_certs(cms.get());
  v.certificates = certs ? sk_X509_num(certs) : 0;
  sk_X509_pop_free(certs, X509_free);
  std::unique_ptr<X509_STORE, sign::Deleter<X509_STORE_free>> store(X509_STORE_new());
  const std::string root = testing::test_pki() + "/root.pem";
  REQUIRE(X509_STORE_load_file(store.get(), root.c_str()) == 1);
  sign::BioPtr out(BIO_new(BIO_s_mem()));
  if (CMS_verify(cms.get(), nullptr, store.get(), nullptr, out.get(), CMS_BINARY) != 1) {
    v.error = sign::openssl_error();
    return v;
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(out.get(), &data);
  v.content.assign(data, static_cast<std::size_t>(size));
  v.ok = true;
  return v;
}

std::shared_ptr<const Signer> load(const std::string& cert, const std::string& key,
                                   const std::string& chain, std::string& error) {
  const std::string& dir = testing::test_pki();
  return Signer::load(dir + "/" + cert, dir + "/" + key, chain.empty() ? "" : dir + "/" + chain,
                      error);
}

std::string signing_element(const std::string& cert, const std::string& key) {
  const std::string& dir = testing::test_pki();
  return "<signing certificate=\"" + dir + "/" + cert + "\" key=\"" + dir + "/" + key +
         "\" chain=\"" + dir + "/chain.pem\"/>\n";
}

std::string profile(const App& app, const std::string& text) {
  auto address = parse_email(text);
  REQUIRE(address);
  const DomainEntry* entry = app.domains->find(address->domain);
  REQUIRE(entry != nullptr);
  auto body = mobileconfig_for(app, *entry, *address);
  REQUIRE(body);
  return *body;
}

}  // namespace

TEST_CASE("sign() gives attached DER SignedData with the chain that verifies against the root") {
  const std::string content = "<?xml version=\"1.0\"?>\n<plist>\r\n bytes kept as they are\n";
  for (const char* name : {"rsa", "ec"}) {
    CAPTURE(name);
    std::string error;
    auto signer = load(std::string(name) + ".pem", std::string(name) + ".key", "chain.pem", error);
    REQUIRE_MESSAGE(signer, error);
    CHECK(signer->key_description() == (std::string(name) == "rsa" ? "RSA-2048" : "EC-prime256v1"));
    CHECK(signer->chain_length() == 1);
    CHECK(signer->subject().find("CN=profiles.example.net") != std::string::npos);
    CHECK(signer->not_after() > std::chrono::system_clock::now());
    auto der = signer->sign(content);
    REQUIRE(der);
    CHECK(static_cast<unsigned char>((*der)[0]) == 0x30);  // DER SEQUENCE, not PEM or S/MIME
    const Verified v = verify(*der);
    CHECK_MESSAGE(v.ok, v.error);
    CHECK_FALSE(v.detached);
    CHECK(v.certificates == 2);  // signer + intermediate; the root stays out
    CHECK(v.content == content);

    // A changed byte in the embedded content breaks the signature.
    std::string tampered = *der;
    const auto at = tampered.find("bytes kept");
    REQUIRE(at != std::string::npos);
    tampered[at] = 'B';
    CHECK_FALSE(verify(tampered).ok);
  }
}

TEST_CASE("without the chain the signature does not verify against the root") {
  std::string error;
  auto signer = load("ec.pem", "ec.key", "", error);
  REQUIRE_MESSAGE(signer, error);
  auto der = signer->sign("x");
  REQUIRE(der);
  const Verified v = verify(*der);
  CHECK(v.certificates == 1);
  CHECK_FALSE(v.ok);
}

TEST_CASE("Signer::load names the file and OpenSSL's reason for each problem") {
  struct Case {
    const char* cert;
    const char* key;
    const char* chain;
    const char* expected;
  };
  for (const Case& c : {
           Case{"missing.pem", "ec.key", "", "cannot open '"},
           Case{"ec.key", "ec.key", "", "no PEM certificate in '"},
           Case{"ec.pem", "missing.key", "", "missing.key"},
           Case{"ec.pem", "ec.pem", "", "no unencrypted PEM private key in '"},
           Case{"ec.pem", "encrypted.key", "", "no unencrypted PEM private key in '"},
           Case{"ec.pem", "other.key", "", "does not belong to the certificate"},
           Case{"ec.pem", "rsa.key", "", "does not belong to the certificate"},
           Case{"ec.pem", "ec.key", "ec.key", "no PEM certificate in '"},
           Case{"ec.pem", "ec.key", "missing-chain.pem", "missing-chain.pem"},
       }) {
    std::string error;
    auto signer = load(c.cert, c.key, c.chain, error);
    CHECK_FALSE(signer);
    CHECK_MESSAGE(error.find(c.expected) != std::string::npos, error);
    CHECK_MESSAGE(error.find(testing::test_pki()) != std::string::npos, error);
    CHECK(ERR_peek_error() == 0);  // the queue is drained
  }
}

TEST_CASE("the loader reports a <signing> problem at its line with OpenSSL's reason") {
  Loaded loaded =
      testing::load_text(testing::minimal_config("", signing_element("ec.pem", "other.key")));
  REQUIRE(loaded.problems.size() == 1);
  CHECK(loaded.problems[0].starts_with("test.xml:2:1: <signing>: the key in '"));
  CHECK(loaded.problems[0].find("key values mismatch") != std::string::npos);

  loaded = testing::load_text(testing::minimal_config("", "<signing certificate=\"a.pem\"/>\n"));
  REQUIRE(loaded.problems.size() == 1);
  CHECK(loaded.problems[0] ==
        "test.xml:2:1: <signing> needs certificate and key (PEM files); chain is optional");

  // Relative paths are read from the config file's directory.
  loaded = testing::load_text(
      testing::minimal_config("", "<signing certificate=\"no-such.pem\" key=\"no-such.key\"/>\n"));
  REQUIRE(loaded.problems.size() == 1);
  CHECK(loaded.problems[0].find(testing::source_path("tests/fixtures/no-such.pem")) !=
        std::string::npos);

  loaded = testing::load_text(testing::minimal_config("", signing_element("rsa.pem", "rsa.key")));
  REQUIRE(loaded.ok());
  REQUIRE(loaded.config.signing);
  CHECK(loaded.config.signing->signer != nullptr);
  CHECK(loaded.config.signing->chain == testing::test_pki() + "/chain.pem");
}

TEST_CASE("signed profiles carry exactly the unsigned plist and are cached per address") {
  for (const char* name : {"rsa", "ec"}) {
    CAPTURE(name);
    const std::string secret = "<mobileconfig secret=\"0123456789abcdef\"/>\n";
    Loaded plain = testing::load_text(testing::minimal_config("", secret));
    Loaded signed_config = testing::load_text(testing::minimal_config(
        "", secret + signing_element(std::string(name) + ".pem", std::string(name) + ".key")));
    REQUIRE(plain.ok());
    REQUIRE(signed_config.ok());
    const auto unsigned_app = build_app(std::move(plain.config));
    const auto app = build_app(std::move(signed_config.config));
    CHECK(unsigned_app->profiles->signer == nullptr);
    REQUIRE(app->profiles->signer != nullptr);

    const std::string plist = profile(*unsigned_app, "alice@customer.example");
    CHECK(plist.starts_with("<?xml"));
    const std::string first = profile(*app, "alice@customer.example");
    const Verified v = verify(first);
    CHECK_MESSAGE(v.ok, v.error);
    CHECK(v.content == plist);
    CHECK(unsigned_app->profiles->signed_cache.size() == 0);

    // The signature includes a signing time, so identical bytes mean the cache answered.
    CHECK(profile(*app, "alice@customer.example") == first);
    CHECK(app->profiles->signed_cache.size() == 1);
    const std::string bob = profile(*app, "bob@customer.example");
    CHECK(bob != first);
    CHECK(verify(bob).content == profile(*unsigned_app, "bob@customer.example"));
    CHECK(app->profiles->signed_cache.size() == 2);
  }
}

TEST_CASE("SignedCache keeps within its byte budget, oldest out first") {
  sign::SignedCache cache(sign::SignedCache::kShards * 1000);
  CHECK(cache.find("a") == nullptr);
  cache.insert("a", std::make_shared<const std::string>(100, 'x'));
  REQUIRE(cache.find("a") != nullptr);
  CHECK(*cache.find("a") == std::string(100, 'x'));
  cache.insert("a", std::make_shared<const std::string>(5, 'y'));  // first value stays
  CHECK(cache.find("a")->size() == 100);
  cache.insert("huge", std::make_shared<const std::string>(2000, 'z'));  // over a shard's share
  CHECK(cache.find("huge") == nullptr);
  for (int i = 0; i < 2000; ++i) {
    cache.insert("key" + std::to_string(i), std::make_shared<const std::string>(90, 'v'));
  }
  CHECK(cache.bytes() <= sign::SignedCache::kShards * 1000);
  CHECK(cache.size() < 2000);
  CHECK(cache.find("key1999") != nullptr);  // the newest entry is always kept
  CHECK(cache.find("a") == nullptr);        // the oldest went first
}
