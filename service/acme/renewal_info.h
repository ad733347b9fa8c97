// ACME Renewal Information (ARI, RFC 9773): the certificate identifier a CA's renewalInfo
// resource is asked about, and the suggested renewal window it answers. Nothing here
// touches the network (acme/client.h does the GET).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace mailconfd::acme {

// The certID of RFC 9773 §4.1 for the first certificate in pem: base64url of the Authority
// Key Identifier's keyIdentifier, ".", base64url of the serial number's DER content octets.
// Empty when pem holds no certificate or it has no keyIdentifier.
std::string ari_cert_id(const std::string& pem);

// RFC 3339 "YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)" (fraction dropped); nullopt otherwise.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);

struct RenewalWindow {
  std::chrono::system_clock::time_point start, end;
};

// The suggestedWindow of a renewalInfo answer; nullopt when body is not JSON with both times
// in RFC 3339 and end after start.
std::optional<RenewalWindow> parse_renewal_info(const std::string& body);

// Where in window a certificate for name is renewed: the same point for the same name and
// window, spread over the window between names (RFC 9773 §4.2 asks for a random point, so
// that a CA's burst of renewals is spread).
std::chrono::system_clock::time_point renewal_point(const RenewalWindow& window,
                                                    const std::string& name);

}  // namespace mailconfd::acme
