// Input hygiene for everything a client tells us about an address or a domain, in one place:
// percent-decoding (once), UTF-8 validation, control and bidi characters, RFC 5321 lengths,
// IDNA (UTS #46 via libidn2) and case-folding. Nothing downstream re-validates.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mailconfd {

struct EmailAddress {
  std::string local;   // as given (case preserved: local parts may be case-sensitive)
  std::string domain;  // lowercase A-label
  std::string full() const { return local + '@' + domain; }
  // The address as people write it: the domain as U-labels (hans@müller-bau.de), for pages
  // and display names. Equal to full() for an ASCII domain.
  std::string display() const;
};

// Decodes %XX escapes in a query-string value. '+' stays '+' (clients encode it as %2B, and a
// literal '+' in "alice+tag@..." is far more common than a form-encoded space). Returns nullopt
// for a truncated or non-hex escape. The result is not validated; pass it to parse_email.
std::optional<std::string> percent_decode(std::string_view value);

// Parses an already-decoded address "local@domain". The local part must be an RFC 5322
// dot-atom (UTF-8 allowed as in RFC 6531, but no control, bidi or invisible characters);
// quoted local parts are refused. Limits: local ≤ 64 octets, domain ≤ 253, whole ≤ 254.
std::optional<EmailAddress> parse_email(std::string_view address);

// Reads what customers paste from their mail program as an address: white space and line
// ends around it, "mailto:alice@example.com" (with a "?subject=…" after it), and
// "Alice Müller <alice@example.com>" (the part in angle brackets). Then parse_email. Only the
// setup page takes these forms; protocol endpoints take bare addresses.
std::optional<EmailAddress> parse_pasted_email(std::string_view text);

// Normalizes a domain name (U-label or A-label, any case, optional trailing dot) to a
// lowercase A-label with LDH labels of 1..63 octets. Returns nullopt for anything else.
std::optional<std::string> normalize_domain(std::string_view domain);

// The domain a request is about when it names no address: the Host header without a port
// and without a leading "autoconfig." or "autodiscover." label.
std::optional<std::string> domain_from_host(std::string_view host);

// A lowercase A-label domain as U-labels ("xn--mller-bau-q9a.de" → "müller-bau.de"); a
// label that does not decode stays as it is. Returns the input for a name without "xn--".
std::string domain_to_unicode(std::string_view a_label);

// True when text is valid UTF-8 (no overlongs, no surrogates, ≤ U+10FFFF).
bool valid_utf8(std::string_view text);

}  // namespace mailconfd
