// Writing HTML text and quoted attribute values safely. Every value a page shows goes through
// escape_to; templates put attribute values in double quotes, and escape_to also escapes the
// single quote, so a value can end neither an element nor an attribute of either quoting.
#pragma once

#include <string>
#include <string_view>

namespace mailconfd::render::html {

// Escapes & < > " ' as character references. Invalid UTF-8, C0 controls (CR and LF too:
// values are single-line), DEL and C1 controls, and the bidi overrides U+202A..U+202E and
// U+2066..U+2069 (which could reorder the text around them) become U+FFFD.
void escape_to(std::string_view text, std::string& out);
std::string escape(std::string_view text);

// Percent-encodes everything but RFC 3986 unreserved characters, for a query-string value.
std::string url_encode(std::string_view text);

// The Content-Security-Policy of mailconfd's pages (the setup page, the cockpit): nothing
// loads but the one inline stylesheet whose bytes are css (allowed by its SHA-256), images
// from the page's origin and data:, forms posted to the origin; no framing, no <base>.
std::string content_security_policy(std::string_view css);

}  // namespace mailconfd::render::html
