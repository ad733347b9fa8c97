#include "render/setup.h"

#include <algorithm>
#include <cassert>
#include <charconv>

#include <fmt/format.h>

#include "core/ascii.h"
#include "core/email_address.h"
#include "render/html.h"

namespace mailconfd::render {
namespace {

// Every name the pages are given; a customized template that uses another one is refused,
// so a typo does not silently render as nothing.
const std::set<std::string>& known_names() {
  static const std::set<std::string> kNames{"form",
                                            "settings",
                                            "unknown_domain",
                                            "bad_address",
                                            "address",
                                            "address_query",
                                            "login",
                                            "domain",
                                            "provider_name",
                                            "provider_short",
                                            "notice",
                                            "notice_lang",
                                            "paragraph",
                                            "notice_date",
                                            "documentation_url",
                                            "documentation_text",
                                            "incoming",
                                            "outgoing",
                                            "imap",
                                            "pop3",
                                            "smtp",
                                            "protocol",
                                            "host",
                                            "port",
                                            "security",
                                            "tls",
                                            "starttls",
                                            "auth_normal",
                                            "auth_encrypted",
                                            "primary",
                                            "login_address",
                                            "login_local_part",
                                            "has_imap",
                                            "has_pop3",
                                            "smtp_alternatives",
                                            "date_passed",
                                            "ace_login",
                                            "signed_profile",
                                            "general",
                                            "example_domain",
                                            "security_outlook2010",
                                            "tls_port"};
  return kNames;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// q-value (RFC 9110 §12.4.2): 0, 1, or 0.ddd / 1.000. nullopt if malformed.
std::optional<int> parse_q(std::string_view text) {
  if (text.empty() || text.size() > 5 || (text[0] != '0' && text[0] != '1')) return std::nullopt;
  int milli = (text[0] - '0') * 1000;
  if (text.size() > 1) {
    if (text[1] != '.') return std::nullopt;
    int scale = 100;
    for (char c : text.substr(2)) {
      if (c < '0' || c > '9') return std::nullopt;
      milli += (c - '0') * scale;
      scale /= 10;
    }
  }
  if (milli > 1000) return std::nullopt;
  return milli;
}

std::string_view security_label(Security security) {
  return security == Security::Tls ? "SSL/TLS" : "STARTTLS";
}

Values server_values(const MailServer& server) {
  Values v;
  v.text("protocol", server.protocol == Protocol::Imap   ? "IMAP"
                     : server.protocol == Protocol::Pop3 ? "POP3"
                                                         : "SMTP");
  v.text("host", server.host);
  v.text("port", std::to_string(server.port));
  v.text("security", std::string(security_label(server.security)));
  // Outlook 2007-2013 name STARTTLS "TLS" and implicit TLS "SSL" in their encryption list.
  v.text("security_outlook2010", server.security == Security::Tls ? "SSL" : "TLS");
  v.flag("tls_port", server.security == Security::Tls);
  v.flag("tls", server.security == Security::Tls);
  v.flag("starttls", server.security == Security::StartTls);
  v.flag("auth_normal", server.auth == Auth::PasswordCleartext);
  v.flag("auth_encrypted", server.auth == Auth::PasswordEncrypted);
  return v;
}

// Paragraphs of a notice: separated by blank lines, whitespace runs collapsed.
std::vector<std::string> paragraphs(std::string_view text) {
  std::vector<std::string> out;
  std::string current;
  bool pending_space = false;
  std::size_t newlines = 0;
  for (char c : text) {
    if (c == '\n') ++newlines;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      pending_space = true;
      continue;
    }
    if (newlines >= 2 && !current.empty()) {
      out.push_back(std::move(current));
      current.clear();
    } else if (pending_space && !current.empty()) {
      current.push_back(' ');
    }
    newlines = 0;
    pending_space = false;
    current.push_back(c);
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

const LocalizedText* pick(const std::vector<LocalizedText>& texts, Lang lang) {
  for (const auto& t : texts) {
    if (parse_lang(t.lang) == lang) return &t;
  }
  return texts.empty() ? nullptr : &texts.front();
}

// Where the tag naming `used` first appears: in the page itself or one of the other files.
std::pair<std::string, std::size_t> tag_position(const std::map<std::string, std::string>& files,
                                                 const std::string& page, const std::string& used) {
  auto find_in = [&](const std::string& text) -> std::optional<std::size_t> {
    for (auto at = text.find("{{"); at != std::string::npos; at = text.find("{{", at + 2)) {
      std::size_t i = at + 2;
      while (i < text.size() && (text[i] == ' ' || text[i] == '#' || text[i] == '^' ||
                                 text[i] == '/' || text[i] == '\t')) {
        ++i;
      }
      if (text.compare(i, used.size(), used) == 0) {
        const std::size_t after = i + used.size();
        if (after < text.size() && (text[after] == '}' || text[after] == ' ')) return at;
      }
    }
    return std::nullopt;
  };
  if (auto at = find_in(files.at(page))) return {page, *at};
  for (const auto& [file, text] : files) {
    if (auto at = find_in(text)) return {file, *at};
  }
  return {page, 0};
}

}  // namespace

std::string_view to_string(Lang lang) { return lang == Lang::De ? "de" : "en"; }

std::optional<Lang> parse_lang(std::string_view text) {
  if (ascii_iequals(text, "de")) return Lang::De;
  if (ascii_iequals(text, "en")) return Lang::En;
  return std::nullopt;
}

Lang negotiate_lang(std::string_view header, Lang fallback) {
  std::optional<Lang> best;
  int best_q = 0;
  while (!header.empty()) {
    const auto comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    const auto semi = item.find(';');
    const std::string_view tag = trim(item.substr(0, semi));
    int q = 1000;
    if (semi != std::string_view::npos) {
      std::string_view param = trim(item.substr(semi + 1));
      if (param.size() < 2 || (param[0] | 0x20) != 'q' || param[1] != '=') continue;
      auto parsed = parse_q(trim(param.substr(2)));
      if (!parsed) continue;
      q = *parsed;
    }
    if (q == 0) continue;
    std::optional<Lang> lang;
    if (tag == "*") {
      lang = fallback;
    } else {
      lang = parse_lang(tag.substr(0, tag.find('-')));
    }
    if (lang && q > best_q) {
      best = lang;
      best_q = q;
    }
  }
  return best.value_or(fallback);
}

bool valid_iso_date(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return false;
  int year = 0;
  int month = 0;
  int day = 0;
  auto number = [&](std::size_t at, std::size_t length, int& out) {
    auto [end, ec] = std::from_chars(text.data() + at, text.data() + at + length, out);
    return ec == std::errc() && end == text.data() + at + length;
  };
  if (!number(0, 4, year) || !number(5, 2, month) || !number(8, 2, day)) return false;
  if (year < 1990 || month < 1 || month > 12 || day < 1) return false;
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return day <= kDays[month - 1] && !(month == 2 && day == 29 && !leap);
}

std::string format_date(std::string_view iso, Lang lang) {
  if (!valid_iso_date(iso)) return {};
  static constexpr std::array<std::string_view, 12> kEn{
      "January", "February", "March",     "April",   "May",      "June",
      "July",    "August",   "September", "October", "November", "December"};
  static constexpr std::array<std::string_view, 12> kDe{
      "Januar", "Februar", "März",      "April",   "Mai",      "Juni",
      "Juli",   "August",  "September", "Oktober", "November", "Dezember"};
  const int month = (iso[5] - '0') * 10 + (iso[6] - '0');
  const int day = (iso[8] - '0') * 10 + (iso[9] - '0');
  const auto m = static_cast<std::size_t>(month - 1);
  if (lang == Lang::De) return fmt::format("{}. {} {}", day, kDe[m], iso.substr(0, 4));
  return fmt::format("{} {} {}", day, kEn[m], iso.substr(0, 4));
}

std::vector<TemplateError> check_setup_templates(const std::map<std::string, std::string>& files) {
  std::vector<TemplateError> problems;
  for (std::string_view name : kSetupTemplateFiles) {
    if (!files.count(std::string(name)))
      problems.push_back({std::string(name), 0, fmt::format("template '{}' is missing", name)});
  }
  if (!problems.empty()) return problems;
  for (Lang lang : kLangs) {
    const std::string name = fmt::format("setup.{}.html", to_string(lang));
    TemplateError error;
    auto page = Template::parse(files, name, error);
    if (!page) {
      problems.push_back(std::move(error));
      continue;
    }
    for (const std::string& used : page->names()) {
      if (known_names().count(used)) continue;
      const auto [file, offset] = tag_position(files, name, used);
      problems.push_back({file, offset, fmt::format("unknown name '{}' in a tag", used)});
    }
    // The CSP header allows exactly the hash of setup.css as inline style.
    const std::string& text = files.at(name);
    constexpr std::string_view kStyle = "<style>{{>setup.css}}</style>";
    std::size_t styles = 0;
    for (auto at = text.find("<style"); at != std::string::npos; at = text.find("<style", at + 1)) {
      if (text.compare(at, kStyle.size(), kStyle) != 0) {
        problems.push_back({name, at, "a page may have only <style>{{>setup.css}}</style>"});
      }
      ++styles;
    }
    if (styles != 1)
      problems.push_back({name, 0, "the page must include <style>{{>setup.css}}</style> once"});
    if (const auto at = text.find(" style="); at != std::string::npos)
      problems.push_back({name, at, "style attributes are blocked by the CSP; use setup.css"});
  }
  return problems;
}

SetupPages::SetupPages(const std::map<std::string, std::string>& files) {
  for (Lang lang : kLangs) {
    TemplateError error;
    auto page = Template::parse(files, fmt::format("setup.{}.html", to_string(lang)), error);
    assert(page && "templates must pass check_setup_templates");
    if (page) pages_[static_cast<std::size_t>(lang)] = std::move(*page);
  }
  const auto css = files.find("setup.css");
  csp_ = html::content_security_policy(css == files.end() ? std::string_view()
                                                          : std::string_view(css->second));
}

Splice SetupPages::render(Lang lang, SetupState state, const Provider& provider,
                          const ClientSettings* settings, PageVariant variant) const {
  Values v;
  v.flag("date_passed", variant.date_passed && !provider.notice.smtp_after_pop_off.empty());
  v.flag("signed_profile", variant.signed_profile);
  v.flag("login_address", provider.login == LoginForm::Address);
  v.flag("login_local_part", provider.login == LoginForm::LocalPart);
  v.text("example_domain", domain_to_unicode(provider.id));
  v.flag("form", state == SetupState::Form);
  v.flag("settings", state == SetupState::Settings);
  v.flag("unknown_domain", state == SetupState::UnknownDomain);
  v.flag("bad_address", state == SetupState::BadAddress);
  if (state != SetupState::Form) {
    v.slot("address", Slot::Address);
    v.slot("address_query", Slot::AddressQuery);
  }
  v.text("provider_name", provider.display_name);
  v.text("provider_short", provider.short_name);
  if (const LocalizedText* notice = pick(provider.notice.text, lang)) {
    v.text("notice_lang", notice->lang);
    for (std::string& p : paragraphs(notice->text)) v.add("notice", Values().text("paragraph", p));
  }
  v.text("notice_date", format_date(provider.notice.smtp_after_pop_off, lang));
  if (!provider.documentation_url.empty()) {
    v.text("documentation_url", provider.documentation_url);
    const LocalizedText* doc = pick(provider.documentation, lang);
    v.text("documentation_text", doc ? doc->text : provider.documentation_url);
  }
  if (state == SetupState::Form && settings != nullptr) {
    // The general settings block (support staff on the phone read it out): servers only, the
    // user name described in words.
    Values general;
    for (const MailServer& s : settings->incoming) general.add("incoming", server_values(s));
    for (std::size_t i = 0; i < settings->outgoing.size(); ++i) {
      Values s = server_values(settings->outgoing[i]);
      s.flag("primary", i == 0);
      general.add("outgoing", std::move(s));
    }
    v.add("general", std::move(general));
  }
  if (state == SetupState::Settings && settings != nullptr) {
    v.slot("login", Slot::Login);
    v.slot("domain", Slot::Domain);
    v.flag("ace_login", variant.ace_login && provider.login == LoginForm::Address &&
                            provider.login_domain == LoginDomain::ALabel);
    bool imap = false;
    bool pop3 = false;
    for (const MailServer& s : settings->incoming) {
      v.add("incoming", server_values(s));
      // The first server of each protocol is the one the instructions name.
      if (s.protocol == Protocol::Imap && !imap) {
        v.add("imap", server_values(s));
        imap = true;
      }
      if (s.protocol == Protocol::Pop3 && !pop3) {
        v.add("pop3", server_values(s));
        pop3 = true;
      }
    }
    v.flag("has_imap", imap);
    v.flag("has_pop3", pop3);
    for (std::size_t i = 0; i < settings->outgoing.size(); ++i) {
      Values s = server_values(settings->outgoing[i]);
      s.flag("primary", i == 0);
      v.add("outgoing", std::move(s));
    }
    v.add("smtp", server_values(settings->outgoing.front()));
    v.flag("smtp_alternatives", settings->outgoing.size() > 1);
  }
  return pages_[static_cast<std::size_t>(lang)].render(v);
}

const std::string& favicon() {
  static const std::string kIcon = [] {
    constexpr int kSize = 16;
    std::string out;
    auto u16 = [&](unsigned v) {
      out.push_back(static_cast<char>(v & 0xFF));
      out.push_back(static_cast<char>((v >> 8) & 0xFF));
    };
    auto u32 = [&](unsigned v) {
      u16(v & 0xFFFF);
      u16(v >> 16);
    };
    constexpr unsigned kPixels = kSize * kSize * 4;
    constexpr unsigned kMask = kSize * 4;  // 1 bit per pixel, rows padded to 4 bytes
    constexpr unsigned kImage = 40 + kPixels + kMask;
    u16(0), u16(1), u16(1);                                // ICONDIR: reserved, icon, 1 image
    out.push_back(kSize), out.push_back(kSize), u16(0);    // 16×16, no palette
    u16(1), u16(32), u32(kImage), u32(6 + 16);             // planes, bpp, size, offset
    u32(40), u32(kSize), u32(kSize * 2), u16(1), u16(32);  // BITMAPINFOHEADER (XOR + AND)
    u32(0), u32(kPixels + kMask), u32(0), u32(0), u32(0), u32(0);
    for (int row = kSize - 1; row >= 0; --row) {  // bottom-up
      for (int x = 0; x < kSize; ++x) {
        const bool body = row >= 3 && row <= 12 && x >= 1 && x <= 14;
        const bool edge = body && (row == 3 || row == 12 || x == 1 || x == 14);
        const int fold = row - 3;  // the flap: a V from the top corners to the middle
        const bool flap = body && fold <= 5 && (x - 1 == fold || 14 - x == fold);
        if (edge || flap) {
          out += std::string("\x94\x53\x0b\xff", 4);  // #0b5394, opaque (BGRA)
        } else if (body) {
          out += std::string("\xff\xff\xff\xff", 4);
        } else {
          out += std::string(4, '\0');  // transparent
        }
      }
    }
    out.append(kMask, '\0');  // alpha decides; the AND mask is all zero
    return out;
  }();
  return kIcon;
}

const std::map<std::string, std::string>& builtin_setup_templates() {
  static const std::map<std::string, std::string> kFiles{
#include "builtin_templates.inc"
  };
  return kFiles;
}

}  // namespace mailconfd::render
