#include "render/mobileconfig.h"

#include <algorithm>
#include <array>
#include <cassert>

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/ascii.h"
#include "render/xml.h"

namespace mailconfd::render {
namespace {

using Digest = std::array<unsigned char, 64>;

// A fixed, public HMAC key for configurations without <mobileconfig secret>.
constexpr std::string_view kPublicKey = "mailconfd mobileconfig profile ids, no secret configured";

// One HMAC-SHA512 gives all three ids (bytes 0-15, 16-31, 32-41): a third of the cost of one
// HMAC per id, which dominated rendering an unsigned profile.
Digest hmac(std::string_view key, std::string_view provider_id, std::string_view address) {
  std::string message = "mailconfd-mobileconfig-v1";
  for (std::string_view part : {provider_id, address}) {
    message.push_back('\0');
    message.append(part);
  }
  Digest digest{};
  unsigned int length = 0;
  const unsigned char* ok = HMAC(EVP_sha512(), key.data(), static_cast<int>(key.size()),
                                 reinterpret_cast<const unsigned char*>(message.data()),
                                 message.size(), digest.data(), &length);
  assert(ok != nullptr && length == digest.size());
  (void)ok;
  return digest;
}

// RFC 9562 §5.8: version 8 is for UUIDs built by an application's own scheme (here a hash).
std::string uuid(const unsigned char* bytes) {
  std::array<unsigned char, 16> d{};
  std::copy(bytes, bytes + d.size(), d.begin());
  d[6] = static_cast<unsigned char>((d[6] & 0x0F) | 0x80);
  d[8] = static_cast<unsigned char>((d[8] & 0x3F) | 0x80);
  std::string out;
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.append(fmt::format("{:02X}", d[i]));
  }
  return out;
}

std::string reverse_dns(std::string_view host) {
  std::string out;
  while (!host.empty()) {
    const auto dot = host.rfind('.');
    if (!out.empty()) out.push_back('.');
    out.append(dot == std::string_view::npos ? host : host.substr(dot + 1));
    host = dot == std::string_view::npos ? std::string_view() : host.substr(0, dot);
  }
  return out;
}

// Apple has no STARTTLS switch (protocols.md §3.2): UseSSL=true on 993/995/465 is implicit TLS;
// on 143/110/587 Apple clients are reported to do STARTTLS when UseSSL is true (iCloud's
// documented "587, SSL required"), which is what the mission advertises. [uncertain; to be
// confirmed on devices, protocols.md §8.] UseSSL=false would let the device send the
// password without TLS, so it is never written.
constexpr bool use_ssl(Security) { return true; }

std::string_view authentication(Auth auth) {
  switch (auth) {
    case Auth::PasswordCleartext:
      return "EmailAuthPassword";
    case Auth::PasswordEncrypted:
      return "EmailAuthCRAMMD5";  // Apple's only challenge-response choice (protocols.md §3.2)
  }
  return "EmailAuthPassword";
}

void key_string(xml::Writer& w, std::string_view key, std::string_view value) {
  w.leaf("key", key);
  w.leaf("string", value);
}
void key_slot(xml::Writer& w, std::string_view key, Slot slot) {
  w.leaf("key", key);
  w.leaf("string", slot);
}
void key_integer(xml::Writer& w, std::string_view key, unsigned value) {
  w.leaf("key", key);
  w.leaf("integer", std::to_string(value));
}
void key_bool(xml::Writer& w, std::string_view key, bool value) {
  w.leaf("key", key);
  w.empty(value ? "true" : "false");
}

}  // namespace

ProfileIds profile_ids(std::string_view provider_id, const EmailAddress& address,
                       std::string_view secret) {
  std::string normalized = ascii_lower(address.local);
  normalized.append("@").append(address.domain);
  const std::string_view key = secret.empty() ? kPublicKey : secret;
  ProfileIds ids;
  const Digest digest = hmac(key, provider_id, normalized);
  ids.profile_uuid = uuid(digest.data());
  ids.account_uuid = uuid(digest.data() + 16);
  ids.identifier = reverse_dns(provider_id) + ".mail.";
  for (std::size_t i = 32; i < 42; ++i) ids.identifier.append(fmt::format("{:02x}", digest[i]));
  return ids;
}

Splice mobileconfig(const ClientSettings& settings) {
  const Provider& provider = *settings.provider;
  assert(!settings.incoming.empty() && !settings.outgoing.empty());
  // resolve() orders IMAP before POP3 and puts 587+STARTTLS first among outgoing servers.
  const MailServer& in = settings.incoming.front();
  const MailServer& out = settings.outgoing.front();
  assert(out.port == 587 && out.security == Security::StartTls);

  Splice doc;
  doc.append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
  doc.append(
      "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
      "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n");
  xml::Writer w(doc);
  w.open("plist", {{"version", "1.0"}});
  w.open("dict");
  // Keys in each dict are sorted, as Apple's own tools write them.
  w.leaf("key", "PayloadContent");
  w.open("array");
  w.open("dict");
  key_string(w, "EmailAccountDescription", provider.display_name);
  key_string(w, "EmailAccountType",
             in.protocol == Protocol::Imap ? "EmailTypeIMAP" : "EmailTypePOP");
  key_slot(w, "EmailAddress", Slot::Address);
  key_string(w, "IncomingMailServerAuthentication", authentication(in.auth));
  key_string(w, "IncomingMailServerHostName", in.host);
  key_integer(w, "IncomingMailServerPortNumber", in.port);
  key_bool(w, "IncomingMailServerUseSSL", use_ssl(in.security));
  key_slot(w, "IncomingMailServerUsername", Slot::Login);
  key_string(w, "OutgoingMailServerAuthentication", authentication(out.auth));
  key_string(w, "OutgoingMailServerHostName", out.host);
  // Always explicit: without a port the device tries 25 first (protocols.md §3.2).
  key_integer(w, "OutgoingMailServerPortNumber", out.port);
  key_bool(w, "OutgoingMailServerUseSSL", use_ssl(out.security));
  key_slot(w, "OutgoingMailServerUsername", Slot::Login);
  key_bool(w, "OutgoingPasswordSameAsIncomingPassword", true);
  key_string(w, "PayloadDisplayName", provider.display_name);
  w.leaf("key", "PayloadIdentifier");
  w.leaf("string", "", Slot::ProfileId, ".account");
  key_string(w, "PayloadType", "com.apple.mail.managed");
  key_slot(w, "PayloadUUID", Slot::AccountUuid);
  key_integer(w, "PayloadVersion", 1);
  w.close("dict");
  w.close("array");
  w.leaf("key", "PayloadDescription");
  w.leaf("string", "Mail settings for ", Slot::Display, "");
  key_string(w, "PayloadDisplayName", provider.display_name);
  key_slot(w, "PayloadIdentifier", Slot::ProfileId);
  key_string(w, "PayloadOrganization", provider.display_name);
  key_string(w, "PayloadType", "Configuration");
  key_slot(w, "PayloadUUID", Slot::ProfileUuid);
  key_integer(w, "PayloadVersion", 1);
  w.close("dict");
  w.close("plist");
  return doc;
}

}  // namespace mailconfd::render
