#include "app.h"

#include <doctest/doctest.h>

#include "sign/signer.h"
#include "support.h"

using namespace mailconfd;

namespace {

const std::string kSecret = "<mobileconfig secret=\"0123456789abcdef\"/>\n";

std::string signing(const std::string& name) {
  const std::string& dir = testing::test_pki();
  return "<signing certificate=\"" + dir + "/" + name + ".pem\" key=\"" + dir + "/" + name +
         ".key\" chain=\"" + dir + "/chain.pem\"/>\n";
}

std::shared_ptr<const App> build(const std::string& text, const App* previous = nullptr) {
  Loaded loaded = testing::load_text(text);
  REQUIRE_MESSAGE(loaded.ok(), (loaded.problems.empty() ? "" : loaded.problems[0]));
  return build_app(std::move(loaded.config), previous);
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

// Two providers; customer.example is hosted at the first unless moved.
std::string two_providers(const std::string& head, bool moved = false) {
  const std::string domain = "<domain>customer.example</domain>\n";
  return "<mailconfd>\n" + head +
         "<provider id=\"one.example\">\n"
         "<incoming protocol=\"imap\" host=\"imap.one.example\" port=\"993\" security=\"tls\"/>\n"
         "<outgoing host=\"smtp.one.example\" port=\"587\" security=\"starttls\"/>\n" +
         (moved ? "" : domain) +
         "</provider>\n"
         "<provider id=\"two.example\">\n"
         "<incoming protocol=\"imap\" host=\"imap.two.example\" port=\"993\" security=\"tls\"/>\n"
         "<outgoing host=\"smtp.two.example\" port=\"587\" security=\"starttls\"/>\n"
         "<domain>other.example</domain>\n" +
         (moved ? domain : "") + "</provider>\n</mailconfd>\n";
}

}  // namespace

TEST_CASE("build_app without a previous App builds every part") {
  const auto app = build(testing::minimal_config());
  REQUIRE(app->config != nullptr);
  REQUIRE(app->domains != nullptr);
  REQUIRE(app->documents != nullptr);
  REQUIRE(app->setup != nullptr);
  REQUIRE(app->profiles != nullptr);
  CHECK(app->domains->table.get() == &app->config->domains);
  CHECK(app->domains->size() == 1);
  CHECK(app->documents->size() == 1);
  CHECK(app->profiles->signer == nullptr);
}

TEST_CASE("a rebuild with more domains shares the documents, setup pages and profile cache") {
  const auto first = build(testing::minimal_config("", kSecret + signing("ec")));
  const auto next =
      build(testing::minimal_config("<domain>added.example</domain>\n", kSecret + signing("ec")),
            first.get());
  CHECK(next->config != first->config);
  CHECK(next->domains != first->domains);
  CHECK(next->domains->find("added.example") != nullptr);
  CHECK(first->domains->find("added.example") == nullptr);
  CHECK(next->documents == first->documents);
  CHECK(next->setup == first->setup);
  CHECK(next->profiles == first->profiles);
  // The signer loaded again from the same files is a new object with the same fingerprint;
  // the part keeps the one it signed with.
  CHECK(next->config->signing->signer != first->profiles->signer);
  CHECK(next->config->signing->signer->fingerprint() == first->profiles->signer->fingerprint());
}

TEST_CASE("a signed profile survives a rebuild that keeps key, secret and documents") {
  const auto first = build(testing::minimal_config("", kSecret + signing("rsa")));
  const std::uint64_t before = profiles_signed();
  const std::string alice = profile(*first, "alice@customer.example");
  CHECK(profiles_signed() == before + 1);
  const auto next =
      build(testing::minimal_config("<domain>added.example</domain>\n", kSecret + signing("rsa")),
            first.get());
  // The signature carries its signing time: equal bytes come from the cache.
  CHECK(profile(*next, "alice@customer.example") == alice);
  CHECK(profiles_signed() == before + 1);
}

TEST_CASE("a changed key, secret or provider gives a new, empty profile cache") {
  const auto first = build(testing::minimal_config("", kSecret + signing("ec")));
  profile(*first, "alice@customer.example");
  REQUIRE(first->profiles->signed_cache.size() == 1);
  struct Case {
    const char* what;
    std::string text;
    bool same_documents;
  } cases[] = {
      {"other key", testing::minimal_config("", kSecret + signing("rsa")), true},
      {"other secret",
       testing::minimal_config("", "<mobileconfig secret=\"fedcba9876543210\"/>\n" + signing("ec")),
       true},
      {"no signing", testing::minimal_config("", kSecret), false},
      {"other server",
       testing::minimal_config(
           "<incoming protocol=\"pop3\" host=\"pop.provider.example\" port=\"995\" "
           "security=\"tls\"/>\n",
           kSecret + signing("ec")),
       false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    const auto next = build(c.text, first.get());
    CHECK(next->profiles != first->profiles);
    CHECK(next->profiles->signed_cache.size() == 0);
    CHECK((next->documents == first->documents) == c.same_documents);
    CHECK((next->setup == first->setup) == c.same_documents);
  }
}

TEST_CASE("a domain moved to another provider is not served the profile cached for its old one") {
  const auto first = build(two_providers(kSecret + signing("ec")));
  const std::uint64_t before = profiles_signed();
  const std::string at_one = profile(*first, "alice@customer.example");
  const auto next = build(two_providers(kSecret + signing("ec"), true), first.get());
  REQUIRE(next->profiles == first->profiles);  // same providers, key and secret
  const std::string at_two = profile(*next, "alice@customer.example");
  CHECK(at_two != at_one);
  CHECK(at_two.find("imap.two.example") != std::string::npos);
  CHECK(at_one.find("imap.one.example") != std::string::npos);
  CHECK(profiles_signed() == before + 2);
}
