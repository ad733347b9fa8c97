#include "core/client_settings.h"

#include <doctest/doctest.h>

#include "support.h"

using namespace mailconfd;

TEST_CASE("resolve lists IMAP before POP3 and implicit TLS before STARTTLS") {
  const Loaded loaded = testing::load_fixture("two_providers.xml");
  REQUIRE(loaded.ok());
  auto s = resolve(loaded.config, "customer.example");
  REQUIRE(s);
  REQUIRE(s->incoming.size() == 3);
  CHECK(s->incoming[0] == MailServer{Protocol::Imap, "imap.provider.example", 993, Security::Tls,
                                     Auth::PasswordCleartext});
  CHECK(s->incoming[1] == MailServer{Protocol::Imap, "imap.provider.example", 143,
                                     Security::StartTls, Auth::PasswordCleartext});
  CHECK(s->incoming[2] == MailServer{Protocol::Pop3, "pop.provider.example", 995, Security::Tls,
                                     Auth::PasswordCleartext});
}

TEST_CASE("resolve puts 587 STARTTLS submission first, then 465") {
  const Loaded loaded = testing::load_fixture("two_providers.xml");
  auto s = resolve(loaded.config, "customer.example");
  REQUIRE(s);
  REQUIRE(s->outgoing.size() == 2);
  CHECK(s->outgoing[0].port == 587);
  CHECK(s->outgoing[0].security == Security::StartTls);
  CHECK(s->outgoing[1].port == 465);
}

TEST_CASE("resolve applies per-domain host overrides") {
  const Loaded loaded = testing::load_fixture("two_providers.xml");
  auto s = resolve(loaded.config, "own.example");
  REQUIRE(s);
  CHECK(s->incoming[0].host == "imap.own.example");
  CHECK(s->incoming[2].host == "pop.provider.example");
  CHECK(s->outgoing[0].host == "smtp.own.example");
}

TEST_CASE("resolve returns nullopt for a domain that is not hosted") {
  const Loaded loaded = testing::load_fixture("two_providers.xml");
  CHECK_FALSE(resolve(loaded.config, "unknown.example"));
  CHECK_FALSE(resolve(loaded.config, ""));
}

TEST_CASE("login_name follows the provider's login form") {
  const EmailAddress a{"Alice", "customer.example"};
  CHECK(login_name(LoginForm::Address, LoginDomain::ALabel, a) == "Alice@customer.example");
  CHECK(login_name(LoginForm::LocalPart, LoginDomain::ALabel, a) == "Alice");
  // An internationalized domain: A-labels by default, U-labels when the provider says so.
  const EmailAddress idn{"hans", "xn--mller-bau-q9a.de"};
  CHECK(login_name(LoginForm::Address, LoginDomain::ALabel, idn) == "hans@xn--mller-bau-q9a.de");
  CHECK(login_name(LoginForm::Address, LoginDomain::ULabel, idn) == "hans@m\u00fcller-bau.de");
  CHECK(login_name(LoginForm::LocalPart, LoginDomain::ULabel, idn) == "hans");
  CHECK(idn.display() == "hans@m\u00fcller-bau.de");
  CHECK(domain_to_unicode("xn--bcher-kva.example") == "b\u00fccher.example");
  CHECK(domain_to_unicode("example.com") == "example.com");
  CHECK(domain_to_unicode("xn--zz.example") == "xn--zz.example");  // does not decode: kept
  CHECK(login_placeholder(LoginForm::Address) == "%EMAILADDRESS%");
  CHECK(login_placeholder(LoginForm::LocalPart) == "%EMAILLOCALPART%");
}
