// The http-01 answers: the issuer's own, the hook that shares them through the database, and
// the answers another replica shared.
#include "acme/challenges.h"

#include <string>
#include <vector>

#include <doctest/doctest.h>

using mailconfd::acme::Tokens;

TEST_CASE("acme: Tokens calls the hook after each change and finds shared answers after its own") {
  Tokens tokens;
  std::vector<std::string> calls;
  tokens.set_hook([&](const std::string& token, const std::string* answer) {
    // The answer is already served locally when the hook runs.
    calls.push_back(token + "=" + (answer ? *answer : "(erased)") +
                    " local:" + tokens.find(token).value_or("-"));
  });
  tokens.put("tok1", "tok1.thumb");
  tokens.erase("tok1");
  CHECK(calls ==
        std::vector<std::string>{"tok1=tok1.thumb local:tok1.thumb", "tok1=(erased) local:-"});
  tokens.set_hook({});
  tokens.put("tok2", "own");
  CHECK(calls.size() == 2);  // no hook any more

  tokens.set_shared({{"tok2", "shared"}, {"tok3", "tok3.thumb"}});
  CHECK(tokens.find("tok2") == "own");  // the own answer first
  CHECK(tokens.find("tok3") == "tok3.thumb");
  CHECK_FALSE(tokens.find("tok4"));
  tokens.set_shared({});
  CHECK_FALSE(tokens.find("tok3"));
  CHECK(tokens.find("tok2") == "own");
}
