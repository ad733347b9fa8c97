// The cockpit page (GET /cockpit on the admin listener) and its CSV contact list, as pure
// functions of a Model: German or English, no JavaScript, no external assets, one inline
// style (its hash is in the CSP), charts and bars as inline SVG, sorting and filtering by
// links and a GET form. Every value from the report or the journal is HTML-escaped; CSV cells
// are quoted and neutralised against spreadsheet formulas.
#pragma once

#include <string>
#include <string_view>

#include "cockpit/model.h"
#include "config/config.h"
#include "render/setup.h"

namespace mailconfd::cockpit {

// What the query string asks for (all optional; anything unknown is ignored).
struct View {
  render::Lang lang = render::Lang::En;
  std::string sort = "domain";  // domain, provider, total, at-risk, switched, progress
  bool descending = false;
  bool has_status = false;  // filter by status
  Status status = Status::AtRisk;
  std::string domain;  // filter: exact domain
  std::string search;  // filter: part of the address
};

// Reads View from a raw query string (percent-decoding each value; '+' is a space).
View parse_view(std::string_view query, render::Lang fallback);

inline constexpr std::size_t kListLimit = 500;  // mailbox rows on the page (the CSV has all)

std::string render_page(const Model& model, const View& view);
// The contact list of the mailboxes view selects (sort and language do not matter): one line
// per mailbox, a header line first, CRLF line ends (RFC 4180).
std::string render_csv(const Model& model, const View& view, const Config& config);

// The Content-Security-Policy of the page.
const std::string& content_security_policy();

}  // namespace mailconfd::cockpit
