// What the issuer learnt from the CA, as rows of the shared storage (acme_store/store.h) and
// back: the hold (mailconfd_acme_hold), the renewalInfo answers (mailconfd_acme_renewal) and
// the names' waits after a failed order (mailconfd_acme_backoff), in Unix seconds. Pure: no
// database here (replica.cpp reads and writes the rows).
#pragma once

#include <optional>
#include <string>

#include "acme/issuer.h"
#include "acme_store/store.h"

namespace mailconfd::acme_store {

// until rounded up to the next second: a replica never orders before the CA allowed it.
StoredHold to_row(const acme::Hold& hold);
// nullopt for a row that cannot be a hold (a negative delay, or one beyond a day).
std::optional<acme::Hold> from_row(const StoredHold& row);

StoredRenewal to_row(const std::string& name, const acme::RenewalState& state);
// nullopt for a row that cannot be an answer: no certID, a window whose end is not after its
// start, or a chosen point outside the window. The issuer then asks the CA again.
std::optional<acme::RenewalState> from_row(const StoredRenewal& row);

// not_before rounded up to the next second.
StoredBackoff to_row(const std::string& name, const acme::NameBackoff& backoff);
// nullopt for a row that cannot be a wait: a delay not above 0 or beyond a day.
std::optional<acme::NameBackoff> from_row(const StoredBackoff& row);

}  // namespace mailconfd::acme_store
