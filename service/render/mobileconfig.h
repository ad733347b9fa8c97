// Apple configuration profile with one com.apple.mail.managed payload (iPhone, iPad and Mac
// Mail), as an unsigned plist. See ../shared/reference/protocols.md §3; sign/signer.h signs it.
#pragma once

#include <string>
#include <string_view>

#include "core/client_settings.h"
#include "core/email_address.h"
#include "render/splice.h"

namespace mailconfd::render {

// The identifiers of one mailbox's profile. Installing a profile whose PayloadIdentifier and
// PayloadUUIDs match an installed one replaces it instead of adding a second account
// (protocols.md §3.1), so they are derived, never random: one HMAC-SHA512 keyed with secret
// over the provider id and the normalized address (local part ASCII-lowercased, domain as
// A-label), cut into the three ids.
struct ProfileIds {
  std::string profile_uuid;  // RFC 9562 version 8 (custom) UUID, uppercase: "8C1F…-…"
  std::string account_uuid;  // the mail payload's PayloadUUID, different from profile_uuid
  std::string identifier;  // reverse provider id + ".mail." + 20 hex digits ("net.example.mail.…")
};

// Same inputs, same ids; a different provider, address or secret gives different ids. An
// empty secret uses a fixed public key instead: the ids are then a function of public data
// only, so anyone can check whether a profile id belongs to a guessed address.
ProfileIds profile_ids(std::string_view provider_id, const EmailAddress& address,
                       std::string_view secret);

// Slots: Address (EmailAddress, PayloadDescription), Login (user names), ProfileUuid,
// AccountUuid, ProfileId. Incoming is the first IMAP server (POP3 only when the provider has
// no IMAP), outgoing is submission on 587. No password is ever included. Cannot fail; the
// same settings always give the same bytes.
Splice mobileconfig(const ClientSettings& settings);

}  // namespace mailconfd::render
