// tls-alpn-01 (RFC 8737): a handshake offering ALPN acme-tls/1 for a name with a pending
// challenge gets the validation certificate; every other handshake is untouched. Real
// OpenSSL handshakes over an in-memory BIO pair.
#include "tls/validation.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "support.h"
#include "tls/certificates.h"

namespace {

using mailconfd::tls::alpn_challenges;

struct Handshake {
  bool done = false;
  std::string alpn;     // what the server selected; empty: none
  std::string subject;  // CN of the certificate the server presented
  std::string san;      // its first dNSName
  bool identifier_critical = false;
  std::string identifier;  // the acmeIdentifier extension's DER value, empty if none
};

Handshake handshake(const mailconfd::tls::CertificateSet& set, const std::string& sni,
                    const std::string& alpn) {
  Handshake out;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> client_ctx(SSL_CTX_new(TLS_client_method()),
                                                               SSL_CTX_free);
  SSL* client = SSL_new(client_ctx.get());
  SSL* server = SSL_new(set.fallback().context->get());
  set.attach(server);
  BIO *client_bio = nullptr, *server_bio = nullptr;
  BIO_new_bio_pair(&client_bio, 0, &server_bio, 0);
  SSL_set_bio(client, client_bio, client_bio);
  SSL_set_bio(server, server_bio, server_bio);
  SSL_set_connect_state(client);
  SSL_set_accept_state(server);
  SSL_set_tlsext_host_name(client, sni.c_str());
  const std::string wire = std::string(1, static_cast<char>(alpn.size())) + alpn;
  SSL_set_alpn_protos(client, reinterpret_cast<const unsigned char*>(wire.data()),
                      static_cast<unsigned>(wire.size()));
  for (int i = 0; i < 20 && !out.done; ++i) {
    const int c = SSL_do_handshake(client);
    const int s = SSL_do_handshake(server);
    out.done = c == 1 && s == 1;
  }
  if (out.done) {
    const unsigned char* selected = nullptr;
    unsigned int size = 0;
    SSL_get0_alpn_selected(client, &selected, &size);
    out.alpn.assign(reinterpret_cast<const char*>(selected), size);
    X509* peer = SSL_get1_peer_certificate(client);
    char cn[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
    out.subject = cn;
    auto* sans =
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(peer, NID_subject_alt_name, nullptr, nullptr));
    if (sans && sk_GENERAL_NAME_num(sans) > 0) {
      const ASN1_STRING* s = sk_GENERAL_NAME_value(sans, 0)->d.dNSName;
      out.san.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<std::size_t>(ASN1_STRING_length(s)));
    }
    GENERAL_NAMES_free(sans);
    ASN1_OBJECT* oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
    const int at = X509_get_ext_by_OBJ(peer, oid, -1);
    if (at >= 0) {
      X509_EXTENSION* ext = X509_get_ext(peer, at);
      out.identifier_critical = X509_EXTENSION_get_critical(ext) == 1;
      const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(ext);
      out.identifier.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                            static_cast<std::size_t>(ASN1_STRING_length(data)));
    }
    ASN1_OBJECT_free(oid);
    X509_free(peer);
  }
  SSL_free(client);
  SSL_free(server);
  return out;
}

std::string sha256(const std::string& text) {
  unsigned char digest[32];
  unsigned int size = 0;
  EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), size);
}

// The CA's handshake for sni: acme-tls/1 selected, the validation certificate of RFC 8737 for
// name with the critical acmeIdentifier holding SHA-256(key_authorization).
void check_validation(const mailconfd::tls::CertificateSet& set, const std::string& sni,
                      const std::string& name, const std::string& key_authorization) {
  const Handshake h = handshake(set, sni, "acme-tls/1");
  REQUIRE(h.done);
  CHECK(h.alpn == "acme-tls/1");
  CHECK(h.san == name);
  CHECK(h.identifier_critical);
  CHECK(h.identifier == std::string("\x04\x20", 2) + sha256(key_authorization));
}

}  // namespace

TEST_CASE("tls-alpn-01: acme-tls/1 for a pending name gets the validation certificate only") {
  std::string error;
  const std::string& pki = testing::test_pki();
  auto loaded = mailconfd::tls::load_certificate({pki + "/ec.pem", pki + "/ec.key", ""}, error);
  REQUIRE_MESSAGE(loaded, error);
  const std::string normal_cn =
      handshake(mailconfd::tls::CertificateSet({*loaded}), "autoconfig.example.com", "http/1.1")
          .subject;
  REQUIRE(!normal_cn.empty());
  const mailconfd::tls::CertificateSet set({*loaded});
  const std::string key_authorization = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.thumbprint";
  REQUIRE(alpn_challenges().empty());
  REQUIRE(alpn_challenges().put("autoconfig.example.com", key_authorization, error));
  CHECK(!alpn_challenges().empty());

  // The CA's handshake: acme-tls/1 and the pending name (SNI compared without case).
  check_validation(set, "AutoConfig.Example.com", "autoconfig.example.com", key_authorization);

  // A browser for the same name: the normal certificate and http/1.1, no identifier.
  auto h = handshake(set, "autoconfig.example.com", "http/1.1");
  REQUIRE(h.done);
  CHECK(h.alpn == "http/1.1");
  CHECK(h.subject == normal_cn);
  CHECK(h.identifier.empty());

  // acme-tls/1 for a name without a challenge: the normal certificate, no ALPN.
  h = handshake(set, "autodiscover.example.com", "acme-tls/1");
  REQUIRE(h.done);
  CHECK(h.alpn.empty());
  CHECK(h.subject == normal_cn);
  CHECK(h.identifier.empty());

  // Once the challenge is over, the CA's handshake gets the normal certificate too.
  alpn_challenges().erase("autoconfig.example.com");
  CHECK(alpn_challenges().empty());
  h = handshake(set, "autoconfig.example.com", "acme-tls/1");
  REQUIRE(h.done);
  CHECK(h.subject == normal_cn);
  CHECK(h.identifier.empty());
}

TEST_CASE("tls-alpn-01 shared by replicas: the digest from the database makes the same answer") {
  std::string error;
  const std::string& pki = testing::test_pki();
  auto loaded = mailconfd::tls::load_certificate({pki + "/ec.pem", pki + "/ec.key", ""}, error);
  REQUIRE_MESSAGE(loaded, error);
  const mailconfd::tls::CertificateSet set({*loaded});
  const std::string key_authorization = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0.thumbprint";
  const std::string digest = mailconfd::tls::key_authorization_digest(key_authorization);
  REQUIRE(digest.size() == 64);
  std::string hex;
  for (const unsigned char c : sha256(key_authorization)) {
    hex += "0123456789abcdef"[c >> 4];
    hex += "0123456789abcdef"[c & 15];
  }
  CHECK(digest == hex);

  // The issuing replica: put reports name and digest to the hook (the database's row), erase
  // reports the name with no digest.
  std::vector<std::pair<std::string, std::string>> hooked;
  alpn_challenges().set_hook([&](const std::string& name, const std::string* d) {
    hooked.emplace_back(name, d ? *d : "(erased)");
  });
  REQUIRE(alpn_challenges().put("autoconfig.example.net", key_authorization, error));
  alpn_challenges().erase("autoconfig.example.net");
  alpn_challenges().set_hook({});
  REQUIRE(hooked.size() == 2);
  CHECK(hooked[0] == std::pair<std::string, std::string>("autoconfig.example.net", digest));
  CHECK(hooked[1] == std::pair<std::string, std::string>("autoconfig.example.net", "(erased)"));
  CHECK(alpn_challenges().empty());

  // Another replica: the row alone gives the validation certificate of RFC 8737.
  std::vector<std::string> added;
  REQUIRE(alpn_challenges().set_shared({{"autoconfig.example.net", digest}}, added, error));
  CHECK(added == std::vector<std::string>{"autoconfig.example.net"});
  CHECK(!alpn_challenges().empty());
  check_validation(set, "autoconfig.example.net", "autoconfig.example.net", key_authorization);
  const auto context = alpn_challenges().find("autoconfig.example.net");

  // The same rows again: nothing made again (the same context); a bad digest is refused and
  // the good rows are kept.
  added.clear();
  CHECK(!alpn_challenges().set_shared(
      {{"autoconfig.example.net", digest}, {"autodiscover.example.net", "not-a-digest"}}, added,
      error));
  CHECK(error == "tls-alpn-01 challenge for autodiscover.example.net: not a SHA-256 digest");
  CHECK(added.empty());
  CHECK(alpn_challenges().find("autoconfig.example.net") == context);
  CHECK(alpn_challenges().find("autodiscover.example.net") == nullptr);

  // The row gone: the normal certificate again.
  REQUIRE(alpn_challenges().set_shared({}, added, error));
  CHECK(alpn_challenges().empty());
  const Handshake h = handshake(set, "autoconfig.example.net", "acme-tls/1");
  REQUIRE(h.done);
  CHECK(h.identifier.empty());
}
