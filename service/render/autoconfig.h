// Thunderbird's config-v1.1.xml (also read by Thunderbird for Android, Evolution, KMail,
// FairEmail, Delta Chat). See ../shared/reference/protocols.md §1.
#pragma once

#include "core/client_settings.h"
#include "render/splice.h"

namespace mailconfd::render {

// Slots: Domain (<domain>), Login (every <username>: the real login name, or the
// %EMAILADDRESS% / %EMAILLOCALPART% placeholder when the request named no address).
// Cannot fail; the same settings always give the same bytes.
Splice autoconfig(const ClientSettings& settings);

}  // namespace mailconfd::render
