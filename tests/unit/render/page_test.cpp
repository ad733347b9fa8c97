#include "render/page.h"

#include <doctest/doctest.h>

using namespace mailconfd::render;

namespace {

std::string render(const std::string& text, const Values& values, const SlotValues& slots = {}) {
  TemplateError error;
  auto t = Template::parse({{"t", text}}, "t", error);
  REQUIRE_MESSAGE(t, error.message);
  return t->render(values).expand(slots);
}

TemplateError parse_error(const std::map<std::string, std::string>& files) {
  TemplateError error;
  CHECK_FALSE(Template::parse(files, "t", error));
  return error;
}

}  // namespace

TEST_CASE("values are HTML-escaped, in text and in attributes") {
  Values v;
  v.text("name", "<b>\"Bob\" & 'Al'</b>");
  CHECK(render("<p title=\"{{name}}\">{{ name }}</p>", v) ==
        "<p title=\"&lt;b&gt;&quot;Bob&quot; &amp; &#39;Al&#39;&lt;/b&gt;\">"
        "&lt;b&gt;&quot;Bob&quot; &amp; &#39;Al&#39;&lt;/b&gt;</p>");
}

TEST_CASE("slots are escaped when the page is expanded, not when it is rendered") {
  Values v;
  v.slot("address", Slot::Address).slot("q", Slot::AddressQuery);
  SlotValues s;
  s[Slot::Address] = "<i>x</i>@example.com\r\n";
  s[Slot::AddressQuery] = "a%40b";
  CHECK(render("[{{address}}] ?e={{q}}", v, s) ==
        "[&lt;i&gt;x&lt;/i&gt;@example.com\xEF\xBF\xBD\xEF\xBF\xBD] ?e=a%40b");
}

TEST_CASE("unknown names render as nothing and as false") {
  CHECK(render("a{{nothing}}b{{#nothing}}X{{/nothing}}{{^nothing}}Y{{/nothing}}", Values()) ==
        "abY");
}

TEST_CASE("sections show for true flags, non-empty text, slots, and inverted for the rest") {
  Values v;
  v.flag("yes", true).flag("no", false).text("full", "t").text("empty", "").slot("s", Slot::Login);
  CHECK(render("{{#yes}}1{{/yes}}{{#no}}2{{/no}}{{#full}}3{{/full}}{{#empty}}4{{/empty}}"
               "{{#s}}5{{/s}}{{^yes}}6{{/yes}}{{^no}}7{{/no}}{{^empty}}8{{/empty}}",
               v) == "13578");
}

TEST_CASE("a list section repeats with each item's names in scope, outer names visible") {
  Values v;
  v.text("outer", "O");
  v.add("items", Values().text("name", "a").flag("first", true));
  v.add("items", Values().text("name", "<b>"));
  CHECK(render("{{#items}}[{{name}}{{#first}}!{{/first}}{{outer}}]{{/items}}", v) ==
        "[a!O][&lt;b&gt;O]");
  CHECK(render("{{^items}}none{{/items}}", Values()) == "none");
}

TEST_CASE("section and comment tags alone on a line take the line with them") {
  Values v;
  v.flag("on", true);
  CHECK(render("a\n  {{#on}}  \nb\n{{/on}}\n{{! note }}\nc\n", v) == "a\nb\nc\n");
  CHECK(render("a {{#on}}b{{/on}}\n", v) == "a b\n");
  CHECK(render("x{{value}}\n", Values()) == "x\n");
}

TEST_CASE("partials insert another file's bytes, never a value") {
  TemplateError error;
  auto t = Template::parse({{"t", "<style>{{>css}}</style>"}, {"css", "p{color:red}"}}, "t", error);
  REQUIRE(t);
  CHECK(t->render(Values()).expand({}) == "<style>p{color:red}</style>");
  CHECK(t->names().empty());
}

TEST_CASE("names() lists every name a template uses") {
  TemplateError error;
  auto t = Template::parse({{"t", "{{a}}{{#b}}{{c}}{{/b}}{{^d}}{{/d}}"}}, "t", error);
  REQUIRE(t);
  CHECK(t->names() == std::set<std::string>{"a", "b", "c", "d"});
}

TEST_CASE("syntax errors name the file and the byte offset") {
  const struct {
    std::string text;
    std::size_t offset;
    std::string message;
  } cases[] = {
      {"ab{{x", 2, "'{{' without '}}'"},
      {"{{#a}}x", 0, "section 'a' is not closed"},
      {"x{{/a}}", 1, "'{{/a}}' closes nothing"},
      {"{{#a}}{{#b}}{{/a}}{{/b}}", 12, "'{{/a}}' closes 'b', opened earlier"},
      {"..{{Bad Name}}", 2, "'{{Bad Name}}' is not a valid tag: names are a-z, 0-9, '_', '.', '-'"},
      {"{{&raw}}", 0, "'{{&raw}}' is not a valid tag: names are a-z, 0-9, '_', '.', '-'"},
      {"{{{raw}}}", 0, "'{{{raw}}' is not a valid tag: names are a-z, 0-9, '_', '.', '-'"},
      {"{{}}", 0, "'{{}}' is not a valid tag: names are a-z, 0-9, '_', '.', '-'"},
      {"  {{>missing}}", 2, "partial 'missing' not found"},
  };
  for (const auto& c : cases) {
    const TemplateError e = parse_error({{"t", c.text}});
    CHECK_MESSAGE(e.file == "t", c.text);
    CHECK_MESSAGE(e.offset == c.offset, c.text);
    CHECK_MESSAGE(e.message == c.message, c.text);
  }
}

TEST_CASE("an error inside a partial is reported in the partial's file") {
  const TemplateError e = parse_error({{"t", "ok {{>p}}"}, {"p", "\n{{#open}}"}});
  CHECK(e.file == "p");
  CHECK(e.offset == 1);
}

TEST_CASE("partials may not recurse without end") {
  const TemplateError e = parse_error({{"t", "{{>t}}"}});
  CHECK(e.message == "partials nested too deeply");
}
