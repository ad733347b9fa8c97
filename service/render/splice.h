// A rendered document with holes: literal bytes interleaved with slots for the few values
// that differ per request (the domain, the login name, the address). Documents are rendered
// once per provider and host set when the config loads; a request only fills the slots.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace mailconfd::render {

// Address is the address as protocols carry it (A-label domain); Display the same as people
// write it (U-label domain: pages, display names). AddressQuery is the displayed address
// percent-encoded for a query string (html::url_encode).
// ProfileUuid, AccountUuid, ProfileId: the per-address identifiers of an Apple profile
// (render/mobileconfig.h).
enum class Slot {
  Domain,
  Login,
  Address,
  Display,
  AddressQuery,
  ProfileUuid,
  AccountUuid,
  ProfileId
};
constexpr std::size_t kSlotCount = 8;

// How slot values are escaped while being inserted: a Splice can never produce malformed XML
// (Xml, render/xml.h) or let a value become markup (Html, render/html.h).
enum class Escape { Xml, Html };

// The values for the slots, already validated (see core/email_address.h).
struct SlotValues {
  std::array<std::string_view, kSlotCount> values;
  std::string_view& operator[](Slot slot) { return values[static_cast<std::size_t>(slot)]; }
  std::string_view operator[](Slot slot) const { return values[static_cast<std::size_t>(slot)]; }
};

class Splice {
 public:
  explicit Splice(Escape escape = Escape::Xml) : escape_(escape) {}
  void append(std::string_view literal) { pieces_.back().literal_after.append(literal); }
  void append_slot(Slot slot) { pieces_.push_back({slot, {}}); }

  // Appends the document with every slot filled to out (no allocation if out has capacity).
  void expand(const SlotValues& values, std::string& out) const;
  std::string expand(const SlotValues& values) const;

  // Upper bound of the literal size, for reserving buffers.
  std::size_t literal_size() const;
  bool uses(Slot slot) const;

 private:
  struct Piece {
    Slot slot;                  // ignored for the first piece
    std::string literal_after;  // bytes that follow the slot
  };
  Escape escape_;
  std::vector<Piece> pieces_{Piece{Slot::Domain, {}}};
};

}  // namespace mailconfd::render
