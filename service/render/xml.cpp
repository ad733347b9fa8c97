#include "render/xml.h"

#include "core/email_address.h"

namespace mailconfd::render::xml {

void escape_to(std::string_view text, std::string& out) {
  const bool utf8 = valid_utf8(text);
  std::size_t run = 0;  // start of the bytes that go out as they are, appended in one piece
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    std::string_view replacement;
    switch (c) {
      case '&':
        replacement = "&amp;";
        break;
      case '<':
        replacement = "&lt;";
        break;
      case '>':
        replacement = "&gt;";
        break;
      case '"':
        replacement = "&quot;";
        break;
      case '\'':
        replacement = "&apos;";
        break;
      default: {
        const auto byte = static_cast<unsigned char>(c);
        // XML 1.0 Char excludes C0 controls other than tab, LF and CR; CR and LF would be
        // normalized away by parsers, so they are replaced as well.
        if (byte < 0x20 || byte == 0x7F || (byte >= 0x80 && !utf8)) {
          replacement = "\xEF\xBF\xBD";  // U+FFFD
        } else {
          continue;
        }
      }
    }
    out.append(text.data() + run, i - run);
    out.append(replacement);
    run = i + 1;
  }
  out.append(text.data() + run, text.size() - run);
}

std::string escape(std::string_view text) {
  std::string out;
  escape_to(text, out);
  return out;
}

void Writer::declaration() { out_.append("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"); }

void Writer::indent() {
  for (int i = 0; i < depth_; ++i) out_.append("  ");
}

void Writer::start_tag(std::string_view name, Attributes attributes) {
  indent();
  std::string tag = "<";
  tag.append(name);
  for (const auto& [key, value] : attributes) {
    tag.append(" ").append(key).append("=\"");
    escape_to(value, tag);
    tag.append("\"");
  }
  out_.append(tag);
}

void Writer::open(std::string_view name, Attributes attributes) {
  start_tag(name, attributes);
  out_.append(">\n");
  ++depth_;
}

void Writer::close(std::string_view name) {
  --depth_;
  indent();
  out_.append("</");
  out_.append(name);
  out_.append(">\n");
}

void Writer::leaf(std::string_view name, std::string_view text, Attributes attributes) {
  start_tag(name, attributes);
  out_.append(">");
  out_.append(escape(text));
  out_.append("</");
  out_.append(name);
  out_.append(">\n");
}

void Writer::leaf(std::string_view name, Slot slot) {
  start_tag(name, {});
  out_.append(">");
  out_.append_slot(slot);
  out_.append("</");
  out_.append(name);
  out_.append(">\n");
}

void Writer::leaf(std::string_view name, std::string_view prefix, Slot slot,
                  std::string_view suffix) {
  start_tag(name, {});
  out_.append(">");
  out_.append(escape(prefix));
  out_.append_slot(slot);
  out_.append(escape(suffix));
  out_.append("</");
  out_.append(name);
  out_.append(">\n");
}

void Writer::empty(std::string_view name, Attributes attributes) {
  start_tag(name, attributes);
  out_.append("/>\n");
}

}  // namespace mailconfd::render::xml
