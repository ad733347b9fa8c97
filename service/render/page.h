// A tiny template language for the HTML pages, rendered into a Splice:
//   {{name}}               a value, HTML-escaped (render/html.h); a slot value is escaped
//                          when the Splice is expanded, so nothing reaches the page unescaped
//   {{#name}}…{{/name}}    a section: shown once if name is a true flag, a non-empty text or
//                          a slot; once per item (with the item's names in scope) for a list
//   {{^name}}…{{/name}}    shown when the section would not be
//   {{>file}}              the raw bytes of another template file (trusted, never a value)
//   {{! comment }}         dropped
// There is no way to insert a value unescaped. Names are [a-z0-9_.-]+.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "render/splice.h"

namespace mailconfd::render {

// The names a template can use, nested for lists. Lookup goes from the innermost list item
// outwards, so an item sees every name of the page too.
class Values {
 public:
  Values& text(const std::string& name, std::string value);
  Values& slot(const std::string& name, Slot slot);
  Values& flag(const std::string& name, bool on);
  Values& add(const std::string& name, Values item);  // appends an item to the list `name`

  struct Entry {
    enum class Kind { Text, Slot, Flag, List } kind = Kind::Text;
    std::string text;
    Slot slot = Slot::Domain;
    bool on = false;
    std::vector<Values> items;
  };
  const Entry* find(const std::string& name) const;

 private:
  std::map<std::string, Entry, std::less<>> entries_;
};

struct TemplateError {
  std::string file;        // the template file the problem is in (a partial's own name)
  std::size_t offset = 0;  // byte offset into that file
  std::string message;
};

class Template {
 public:
  // Parses files.at(name), resolving {{>…}} against files (at most 4 levels deep). Returns
  // nullopt and fills error on the first problem.
  static std::optional<Template> parse(const std::map<std::string, std::string>& files,
                                       const std::string& name, TemplateError& error);

  // Cannot fail; unknown names render as nothing (and as false for sections).
  Splice render(const Values& values) const;

  // Every name the template uses, for checking a customized template against the names
  // its page provides.
  const std::set<std::string>& names() const { return names_; }

  struct Node;

 private:
  std::shared_ptr<const std::vector<Node>> nodes_;
  std::set<std::string> names_;
};

}  // namespace mailconfd::render
