// The configuration the database source's unit tests build parts for: two providers, the first
// with POP3 and a file domain with its own IMAP host, the second IMAP only.
#pragma once

#include <string>

#include <doctest/doctest.h>

#include "support.h"

namespace testing {

inline mailconfd::Config two_providers() {
  mailconfd::Loaded loaded = load_text(
      "<mailconfd>\n"
      "<provider id=\"one.example\">\n"
      "  <incoming protocol=\"imap\" host=\"imap.one.example\" port=\"993\" security=\"tls\"/>\n"
      "  <incoming protocol=\"pop3\" host=\"pop.one.example\" port=\"995\" security=\"tls\"/>\n"
      "  <outgoing host=\"smtp.one.example\" port=\"587\" security=\"starttls\"/>\n"
      "  <domain imap-host=\"imap.file.example\">file.example</domain>\n"
      "</provider>\n"
      "<provider id=\"two.example\">\n"
      "  <incoming protocol=\"imap\" host=\"imap.two.example\" port=\"993\" security=\"tls\"/>\n"
      "  <outgoing host=\"smtp.two.example\" port=\"587\" security=\"starttls\"/>\n"
      "</provider>\n"
      "</mailconfd>\n");
  REQUIRE_MESSAGE(loaded.ok(), (loaded.problems.empty() ? "" : loaded.problems[0]));
  return std::move(loaded.config);
}

}  // namespace testing
