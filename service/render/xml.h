// Writing XML by construction: every text and attribute value goes through escape_to, so a
// document is well-formed whatever the values contain. Values must be valid UTF-8 without
// control characters (core/email_address.h and the config loader guarantee that); as a last
// line of defence escape_to replaces anything XML 1.0 cannot carry with U+FFFD.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "render/splice.h"

namespace mailconfd::render::xml {

void escape_to(std::string_view text, std::string& out);
std::string escape(std::string_view text);

using Attributes = std::initializer_list<std::pair<std::string_view, std::string_view>>;

// Indented writer (two spaces) that appends to a Splice.
class Writer {
 public:
  explicit Writer(Splice& out) : out_(out) {}
  void declaration();  // <?xml version="1.0" encoding="utf-8"?>
  void open(std::string_view name, Attributes attributes = {});
  void close(std::string_view name);
  void leaf(std::string_view name, std::string_view text, Attributes attributes = {});
  void leaf(std::string_view name, Slot slot);
  // <name>prefix{slot}suffix</name>: literal text around one slot.
  void leaf(std::string_view name, std::string_view prefix, Slot slot, std::string_view suffix);
  void empty(std::string_view name, Attributes attributes = {});

 private:
  void start_tag(std::string_view name, Attributes attributes);
  void indent();
  Splice& out_;
  int depth_ = 0;
};

}  // namespace mailconfd::render::xml
