#include "render/page.h"

#include <algorithm>
#include <deque>

#include <fmt/format.h>

#include "render/html.h"

namespace mailconfd::render {

struct Template::Node {
  enum class Kind { Literal, Value, Section, Inverted } kind = Kind::Literal;
  std::string text;  // literal bytes, or the name
  std::vector<Node> children;
};

namespace {

using Node = Template::Node;
constexpr int kMaxDepth = 4;

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool blank(std::string_view s) { return s.find_first_not_of(" \t\r") == std::string_view::npos; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

class Parser {
 public:
  Parser(const std::map<std::string, std::string>& files, std::set<std::string>& names,
         TemplateError& error)
      : files_(files), names_(names), error_(error) {}

  // Parses one file into out (appending). Returns false on error.
  bool parse_file(const std::string& file, int depth, std::vector<Node>& out) {
    const auto it = files_.find(file);
    if (it == files_.end()) return fail(file, 0, fmt::format("template '{}' not found", file));
    const std::string_view text = it->second;
    struct Open {
      std::string name;
      std::size_t offset;
      std::vector<Node>* parent;
    };
    std::vector<Open> open;
    std::vector<Node>* current = &out;
    // Bodies of the open sections; a deque keeps references valid while it grows.
    std::deque<std::vector<Node>> bodies;
    std::vector<Node> heads;
    std::size_t pos = 0;
    while (pos < text.size()) {
      const std::size_t literal_start = pos;
      const std::size_t start = text.find("{{", pos);
      if (start == std::string_view::npos) {
        literal(*current, text.substr(pos));
        break;
      }
      const std::size_t end = text.find("}}", start + 2);
      if (end == std::string_view::npos) return fail(file, start, "'{{' without '}}'");
      std::string_view tag = trim(text.substr(start + 2, end - start - 2));
      const char sigil = tag.empty() ? '\0' : tag.front();
      std::size_t literal_end = start;
      pos = end + 2;
      // A section or comment tag alone on its line takes the line with it, as in Mustache,
      // so templates can put them on lines of their own without leaving blank lines.
      if (sigil == '#' || sigil == '^' || sigil == '/' || sigil == '!') {
        const std::size_t line_start =
            text.rfind('\n', start) == std::string_view::npos ? 0 : text.rfind('\n', start) + 1;
        std::size_t line_end = text.find('\n', pos);
        if (line_end == std::string_view::npos) line_end = text.size();
        if (blank(text.substr(line_start, start - line_start)) &&
            blank(text.substr(pos, line_end - pos))) {
          literal_end = std::max(line_start, literal_start);
          pos = line_end == text.size() ? line_end : line_end + 1;
        }
      }
      literal(*current, text.substr(literal_start, literal_end - literal_start));
      if (sigil == '!') continue;
      if (sigil == '#' || sigil == '^' || sigil == '/' || sigil == '>') tag = trim(tag.substr(1));
      if (!valid_name(tag)) {
        return fail(file, start,
                    fmt::format("'{{{{{}}}}}' is not a valid tag: names are a-z, 0-9, "
                                "'_', '.', '-'",
                                text.substr(start + 2, end - start - 2)));
      }
      const std::string name(tag);
      if (sigil == '>') {
        if (depth >= kMaxDepth) return fail(file, start, "partials nested too deeply");
        if (!files_.count(name))
          return fail(file, start, fmt::format("partial '{}' not found", name));
        if (!parse_file(name, depth + 1, *current)) return false;
        continue;
      }
      names_.insert(name);
      if (sigil == '#' || sigil == '^') {
        heads.push_back(Node{sigil == '#' ? Node::Kind::Section : Node::Kind::Inverted, name, {}});
        bodies.emplace_back();
        open.push_back({name, start, current});
        current = &bodies.back();
        continue;
      }
      if (sigil == '/') {
        if (open.empty() || open.back().name != name) {
          return fail(file, start,
                      open.empty() ? fmt::format("'{{{{/{}}}}}' closes nothing", name)
                                   : fmt::format("'{{{{/{}}}}}' closes '{}', opened earlier", name,
                                                 open.back().name));
        }
        Node section = std::move(heads.back());
        section.children = std::move(bodies.back());
        heads.pop_back();
        bodies.pop_back();
        current = open.back().parent;
        open.pop_back();
        current->push_back(std::move(section));
        continue;
      }
      current->push_back(Node{Node::Kind::Value, name, {}});
    }
    if (!open.empty()) {
      return fail(file, open.back().offset,
                  fmt::format("section '{}' is not closed", open.back().name));
    }
    return true;
  }

 private:
  static void literal(std::vector<Node>& nodes, std::string_view text) {
    if (text.empty()) return;
    if (!nodes.empty() && nodes.back().kind == Node::Kind::Literal) {
      nodes.back().text.append(text);
    } else {
      nodes.push_back(Node{Node::Kind::Literal, std::string(text), {}});
    }
  }

  bool fail(const std::string& file, std::size_t offset, std::string message) {
    error_ = TemplateError{file, offset, std::move(message)};
    return false;
  }

  const std::map<std::string, std::string>& files_;
  std::set<std::string>& names_;
  TemplateError& error_;
};

using Scopes = std::vector<const Values*>;

const Values::Entry* lookup(const Scopes& scopes, const std::string& name) {
  for (auto it = scopes.rbegin(); it != scopes.rend(); ++it) {
    if (const Values::Entry* e = (*it)->find(name)) return e;
  }
  return nullptr;
}

bool truthy(const Values::Entry* e) {
  if (e == nullptr) return false;
  switch (e->kind) {
    case Values::Entry::Kind::Text:
      return !e->text.empty();
    case Values::Entry::Kind::Slot:
      return true;
    case Values::Entry::Kind::Flag:
      return e->on;
    case Values::Entry::Kind::List:
      return !e->items.empty();
  }
  return false;
}

void render_nodes(const std::vector<Node>& nodes, Scopes& scopes, Splice& out) {
  for (const Node& node : nodes) {
    switch (node.kind) {
      case Node::Kind::Literal:
        out.append(node.text);
        break;
      case Node::Kind::Value: {
        const Values::Entry* e = lookup(scopes, node.text);
        if (e == nullptr) break;
        if (e->kind == Values::Entry::Kind::Text) out.append(html::escape(e->text));
        if (e->kind == Values::Entry::Kind::Slot) out.append_slot(e->slot);
        break;
      }
      case Node::Kind::Section: {
        const Values::Entry* e = lookup(scopes, node.text);
        if (!truthy(e)) break;
        if (e->kind != Values::Entry::Kind::List) {
          render_nodes(node.children, scopes, out);
          break;
        }
        for (const Values& item : e->items) {
          scopes.push_back(&item);
          render_nodes(node.children, scopes, out);
          scopes.pop_back();
        }
        break;
      }
      case Node::Kind::Inverted:
        if (!truthy(lookup(scopes, node.text))) render_nodes(node.children, scopes, out);
        break;
    }
  }
}

}  // namespace

Values& Values::text(const std::string& name, std::string value) {
  Entry& e = entries_[name];
  e = Entry{};
  e.text = std::move(value);
  return *this;
}

Values& Values::slot(const std::string& name, Slot slot) {
  Entry& e = entries_[name];
  e = Entry{};
  e.kind = Entry::Kind::Slot;
  e.slot = slot;
  return *this;
}

Values& Values::flag(const std::string& name, bool on) {
  Entry& e = entries_[name];
  e = Entry{};
  e.kind = Entry::Kind::Flag;
  e.on = on;
  return *this;
}

Values& Values::add(const std::string& name, Values item) {
  Entry& e = entries_[name];
  if (e.kind != Entry::Kind::List) {
    e = Entry{};
    e.kind = Entry::Kind::List;
  }
  e.items.push_back(std::move(item));
  return *this;
}

const Values::Entry* Values::find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

std::optional<Template> Template::parse(const std::map<std::string, std::string>& files,
                                        const std::string& name, TemplateError& error) {
  Template t;
  auto nodes = std::make_shared<std::vector<Node>>();
  Parser parser(files, t.names_, error);
  if (!parser.parse_file(name, 0, *nodes)) return std::nullopt;
  t.nodes_ = std::move(nodes);
  return t;
}

Splice Template::render(const Values& values) const {
  Splice out(Escape::Html);
  Scopes scopes{&values};
  if (nodes_) render_nodes(*nodes_, scopes, out);
  return out;
}

}  // namespace mailconfd::render
