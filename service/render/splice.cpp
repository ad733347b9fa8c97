#include "render/splice.h"

#include "render/html.h"
#include "render/xml.h"

namespace mailconfd::render {

void Splice::expand(const SlotValues& values, std::string& out) const {
  out.append(pieces_.front().literal_after);
  for (std::size_t i = 1; i < pieces_.size(); ++i) {
    if (escape_ == Escape::Html) {
      html::escape_to(values[pieces_[i].slot], out);
    } else {
      xml::escape_to(values[pieces_[i].slot], out);
    }
    out.append(pieces_[i].literal_after);
  }
}

std::string Splice::expand(const SlotValues& values) const {
  std::string out;
  out.reserve(literal_size() + 256);
  expand(values, out);
  return out;
}

std::size_t Splice::literal_size() const {
  std::size_t size = 0;
  for (const Piece& piece : pieces_) size += piece.literal_after.size();
  return size;
}

bool Splice::uses(Slot slot) const {
  for (std::size_t i = 1; i < pieces_.size(); ++i) {
    if (pieces_[i].slot == slot) return true;
  }
  return false;
}

}  // namespace mailconfd::render
