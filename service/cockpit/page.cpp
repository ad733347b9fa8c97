#include "cockpit/page.h"

#include <time.h>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/ascii.h"
#include "core/email_address.h"
#include "core/utc_time.h"
#include "render/html.h"

namespace mailconfd::cockpit {
namespace {

using render::Lang;
using render::html::escape_to;
using render::html::url_encode;

constexpr std::string_view kCss =
    ":root{color-scheme:light dark;--fg:#1b1b1b;--bg:#fff;--muted:#4a4a4a;--line:#c8c8c8;"
    "--box:#f3f5f8;--link:#0645ad;--accent:#0b5394;--focus:#c25400}"
    "@media (prefers-color-scheme:dark){:root{--fg:#ececec;--bg:#161616;--muted:#bdbdbd;"
    "--line:#555;--box:#232629;--link:#8ab4f8;--accent:#8ab4f8;--focus:#ffb26b}}"
    "*{box-sizing:border-box}"
    "body{margin:0;background:var(--bg);color:var(--fg);font:1rem/1.5 system-ui,-apple-system,"
    "\"Segoe UI\",Roboto,\"Noto Sans\",Arial,sans-serif}"
    ".page{max-width:72rem;margin:0 auto;padding:1rem 1rem 3rem}"
    "header{display:flex;flex-wrap:wrap;align-items:baseline;justify-content:space-between;"
    "gap:.5rem 1rem;border-bottom:2px solid var(--accent)}"
    "h1{font-size:1.5rem;margin:.8rem 0}"
    "h2{font-size:1.2rem;margin:1.8rem 0 .6rem;border-bottom:1px solid var(--line)}"
    "a{color:var(--link)}"
    ":focus-visible{outline:3px solid var(--focus);outline-offset:2px}"
    ".muted{color:var(--muted)}"
    ".problem{border-left:4px solid #b3261e;padding:.4rem .8rem;background:var(--box)}"
    ".cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(9rem,1fr));gap:.6rem;"
    "padding:0;list-style:none}"
    ".cards li{border:1px solid var(--line);border-radius:.4rem;padding:.5rem .7rem;"
    "background:var(--box)}"
    ".cards a{text-decoration:none;color:inherit;display:block}"
    ".n{display:block;font-size:1.7rem;font-weight:700}"
    ".days{font-size:1.2rem;font-weight:600}"
    ".scroll{overflow-x:auto}"
    "table{border-collapse:collapse;width:100%;font-size:.95rem}"
    "th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid var(--line);"
    "vertical-align:top}"
    "td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".addr{overflow-wrap:anywhere}"
    "svg{max-width:100%;height:auto}"
    "form{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin:.5rem 0}"
    "label{display:flex;flex-direction:column;font-weight:600;font-size:.9rem}"
    "input,select,button{font:inherit;padding:.35rem .5rem;border:2px solid var(--muted);"
    "border-radius:.3rem;background:var(--bg);color:var(--fg)}"
    "button{background:var(--accent);color:var(--bg);border-color:var(--accent);font-weight:600}"
    ".legend{display:flex;gap:1rem;flex-wrap:wrap;list-style:none;padding:0;margin:.3rem 0}";

// The page's words, per language.
struct Words {
  std::string_view lang, title, days_left, day_left, days_after, cutoff_today, no_cutoff, cutoff_on,
      report, no_report, generated, journal_note, burn_down, burn_down_label, planned, providers,
      domains, provider, domain, total, progress, clients, clients_none, client, mailboxes_fetched,
      after, after_none, mailboxes, filter, state, all, search, apply, csv, address, evidence,
      last_seen, fetched, none, more, other_language, chart_none;
  std::array<std::string_view, kStatusCount> status;
  std::array<std::string_view, kStatusCount> status_help;
};

constexpr Words kEn{
    "en",
    "Cut-off cockpit",
    "days left until SMTP-after-POP is switched off",
    "day left until SMTP-after-POP is switched off",
    "days since SMTP-after-POP was switched off",
    "SMTP-after-POP is switched off today",
    "No cut-off date is configured (<notice smtp-after-pop-off>).",
    "Cut-off date",
    "Scan report",
    "No scan report yet: run mailconfd cutover scan --json and write it to",
    "generated",
    "The settings journal records which mailboxes fetched settings from mailconfd.",
    "Burn-down",
    "Mailboxes still sending via SMTP-after-POP (at risk and fetched), per day, towards the "
    "cut-off date",
    "planned",
    "Per provider",
    "Per domain",
    "Provider",
    "Domain",
    "Mailboxes",
    "Progress (switched)",
    "Client kinds that fetched settings",
    "No mailbox has fetched settings yet.",
    "Client kind",
    "Mailboxes",
    "After the cut-off: broken and failing logins",
    "Nobody broke and no login fails.",
    "Mailboxes",
    "Filter",
    "State",
    "all",
    "Address contains",
    "Show",
    "Download the contact list (CSV)",
    "Address",
    "Evidence",
    "Last seen",
    "Fetched settings",
    "none",
    "more; narrow the filter or download the CSV.",
    "Deutsch",
    "No history yet.",
    {"at risk", "fetched new settings", "switched", "ambiguous", "broke", "login failing",
     "unknown"},
    {"sends via SMTP-after-POP", "fetched settings, still sends via SMTP-after-POP",
     "sends with SMTP-Auth", "several mailboxes share the IP", "refused after the cut-off",
     "SMTP-Auth login fails", "fetched settings, no log evidence"}};

constexpr Words kDe{
    "de",
    "Cockpit zur Umstellung",
    "Tage bis SMTP-after-POP abgeschaltet wird",
    "Tag bis SMTP-after-POP abgeschaltet wird",
    "Tage seit der Abschaltung von SMTP-after-POP",
    "SMTP-after-POP wird heute abgeschaltet",
    "Kein Abschalttermin konfiguriert (<notice smtp-after-pop-off>).",
    "Abschalttermin",
    "Scan-Bericht",
    "Noch kein Scan-Bericht: mailconfd cutover scan --json ausführen und schreiben nach",
    "erstellt",
    "Das Einstellungs-Journal hält fest, welche Postfächer Einstellungen von mailconfd "
    "abgerufen haben.",
    "Burn-down",
    "Postfächer, die noch per SMTP-after-POP senden (gefährdet und abgerufen), pro Tag bis "
    "zum Abschalttermin",
    "geplant",
    "Pro Anbieter",
    "Pro Domain",
    "Anbieter",
    "Domain",
    "Postfächer",
    "Fortschritt (umgestellt)",
    "Programme, die Einstellungen abgerufen haben",
    "Noch hat kein Postfach Einstellungen abgerufen.",
    "Programm",
    "Postfächer",
    "Nach der Abschaltung: gescheitert und fehlerhafte Anmeldungen",
    "Niemand ist gescheitert, keine Anmeldung schlägt fehl.",
    "Postfächer",
    "Filter",
    "Status",
    "alle",
    "Adresse enthält",
    "Anzeigen",
    "Kontaktliste herunterladen (CSV)",
    "Adresse",
    "Nachweis",
    "Zuletzt gesehen",
    "Einstellungen abgerufen",
    "keine",
    "weitere; Filter eingrenzen oder CSV herunterladen.",
    "English",
    "Noch kein Verlauf.",
    {"gefährdet", "neue Einstellungen abgerufen", "umgestellt", "unklar", "gescheitert",
     "Anmeldung schlägt fehl", "unbekannt"},
    {"sendet per SMTP-after-POP", "hat abgerufen, sendet noch per SMTP-after-POP",
     "sendet mit SMTP-Auth", "mehrere Postfächer teilen die IP", "nach der Abschaltung abgewiesen",
     "SMTP-Auth-Anmeldung schlägt fehl", "hat abgerufen, keine Spuren im Log"}};

const Words& words(Lang lang) { return lang == Lang::De ? kDe : kEn; }

// Days from a to b (YYYY-MM-DD each); nullopt when either is not a date.
std::optional<long> days_between(std::string_view a, std::string_view b) {
  auto parse = [](std::string_view d) -> std::optional<long> {
    std::tm tm{};
    if (d.size() != 10 || std::sscanf(std::string(d).c_str(), "%4d-%2d-%2d", &tm.tm_year,
                                      &tm.tm_mon, &tm.tm_mday) != 3) {
      return std::nullopt;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return static_cast<long>(timegm(&tm) / 86400);
  };
  auto x = parse(a), y = parse(b);
  if (!x || !y) return std::nullopt;
  return *y - *x;
}

std::string format_time(std::int64_t t) {
  if (t <= 0) return {};
  return format_utc(t, "%Y-%m-%d %H:%M UTC");
}

std::string_view status_class(Status s) { return to_string(s); }

bool selected(const Mailbox& m, const View& view) {
  if (view.has_status && m.status != view.status) return false;
  if (!view.domain.empty() && m.domain != view.domain) return false;
  if (!view.search.empty() && m.address.find(view.search) == std::string::npos) return false;
  return true;
}

// Mailboxes that still relay via the map: at risk plus those that fetched but did not switch.
std::int64_t still_relaying(const Counts& c) {
  return c[static_cast<std::size_t>(Status::AtRisk)] + c[static_cast<std::size_t>(Status::Fetched)];
}

std::int64_t switched(const Counts& c) { return c[static_cast<std::size_t>(Status::Switched)]; }

class Page {
 public:
  Page(const Model& model, const View& view) : m_(model), v_(view), w_(words(view.lang)) {}

  std::string render() {
    out_.reserve(64 * 1024);
    out_ += "<!DOCTYPE html>\n<html lang=\"";
    out_ += w_.lang;
    out_ +=
        "\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta name=\"robots\" content=\"noindex\">\n<title>";
    text(w_.title);
    out_ += " – mailconfd</title>\n<style>";
    out_ += kCss;
    out_ += "</style>\n</head>\n<body>\n<div class=\"page\">\n<header><h1>";
    text(w_.title);
    out_ += "</h1><p><a href=\"";
    attr(link({{"lang", v_.lang == Lang::De ? "en" : "de"}}));
    out_ += "\" lang=\"";
    out_ += v_.lang == Lang::De ? "en" : "de";
    out_ += "\">";
    text(w_.other_language);
    out_ += "</a></p></header>\n<main>\n";
    headline();
    cards();
    burn_down();
    table(true);
    table(false);
    clients();
    after_cutoff();
    mailbox_list();
    out_ += "</main>\n</div>\n</body>\n</html>\n";
    return std::move(out_);
  }

 private:
  void text(std::string_view t) { escape_to(t, out_); }
  void attr(std::string_view t) { escape_to(t, out_); }
  void number(std::int64_t n) { fmt::format_to(std::back_inserter(out_), "{}", n); }

  // A link to the page with the current view, some parameters replaced.
  std::string link(std::initializer_list<std::pair<std::string_view, std::string>> changes,
                   std::string_view path = "/cockpit") const {
    std::vector<std::pair<std::string_view, std::string>> params{
        {"lang", std::string(render::to_string(v_.lang))},
        {"sort", v_.sort},
        {"dir", v_.descending ? "desc" : "asc"},
        {"state", v_.has_status ? std::string(to_string(v_.status)) : std::string()},
        {"domain", v_.domain},
        {"q", v_.search}};
    for (const auto& [name, value] : changes) {
      for (auto& p : params) {
        if (p.first == name) p.second = value;
      }
    }
    std::string url(path);
    char sep = '?';
    for (const auto& [name, value] : params) {
      if (value.empty()) continue;
      url += sep;
      url += name;
      url += '=';
      url += url_encode(value);
      sep = '&';
    }
    return url;
  }

  void headline() {
    out_ += "<section aria-labelledby=\"when\">\n<p id=\"when\" class=\"days\">";
    if (m_.cutoff.empty()) {
      text(w_.no_cutoff);
    } else {
      const auto left = days_between(m_.today, m_.cutoff).value_or(0);
      if (left > 0) {
        out_ += "<span class=\"n\" id=\"days-left\">";
        number(left);
        out_ += "</span> ";
        text(left == 1 ? w_.day_left : w_.days_left);
      } else if (left == 0) {
        out_ += "<span class=\"n\" id=\"days-left\">0</span> ";
        text(w_.cutoff_today);
      } else {
        out_ += "<span class=\"n\" id=\"days-left\">";
        number(-left);
        out_ += "</span> ";
        text(w_.days_after);
      }
      out_ += " (";
      text(w_.cutoff_on);
      out_ += ": ";
      text(render::format_date(m_.cutoff, v_.lang));
      out_ += ")";
    }
    out_ += "</p>\n<p class=\"muted\">";
    text(w_.report);
    out_ += ": ";
    if (m_.report_found) {
      text(m_.report_path);
      out_ += ", ";
      text(w_.generated);
      out_ += " ";
      text(m_.generated);
    } else {
      text(w_.no_report);
      out_ += " ";
      text(m_.report_path);
    }
    out_ += ". ";
    text(w_.journal_note);
    out_ += "</p>\n";
    if (!m_.report_error.empty()) {
      out_ += "<p class=\"problem\" role=\"alert\">";
      text(m_.report_error);
      out_ += "</p>\n";
    }
    out_ += "</section>\n";
  }

  void cards() {
    out_ += "<ul class=\"cards\">\n";
    for (Status s : kStatuses) {
      out_ += "<li id=\"count-";
      out_ += status_class(s);
      out_ += "\"><a href=\"";
      attr(link({{"state", std::string(to_string(s))}}) + "#list");
      out_ += "\"><span class=\"n\">";
      number(m_.counts[static_cast<std::size_t>(s)]);
      out_ += "</span>";
      text(w_.status[static_cast<std::size_t>(s)]);
      out_ += "<br><small class=\"muted\">";
      text(w_.status_help[static_cast<std::size_t>(s)]);
      out_ += "</small></a></li>\n";
    }
    out_ += "</ul>\n";
  }

  // The burn-down: still-relaying mailboxes per day of the history, a planned line from the
  // first day's count to zero on the cut-off date, and the switched mailboxes.
  void burn_down() {
    out_ += "<h2 id=\"burn-down\">";
    text(w_.burn_down);
    out_ += "</h2>\n";
    const auto& h = m_.history;
    if (h.empty()) {
      out_ += "<p>";
      text(w_.chart_none);
      out_ += "</p>\n";
      return;
    }
    const std::string first = h.front().day;
    std::string last = h.back().day;
    if (!m_.cutoff.empty() && m_.cutoff > last) last = m_.cutoff;
    const long span = std::max<long>(1, days_between(first, last).value_or(1));
    std::int64_t top = 1;
    for (const auto& d : h) top = std::max({top, d.at_risk + d.fetched, d.switched});
    constexpr int kW = 640, kH = 240, kL = 48, kR = 12, kT = 12, kB = 28;
    auto x = [&](const std::string& day) {
      return kL + static_cast<double>(days_between(first, day).value_or(0)) * (kW - kL - kR) /
                      static_cast<double>(span);
    };
    auto y = [&](std::int64_t n) {
      return kT + (kH - kT - kB) * (1.0 - static_cast<double>(n) / static_cast<double>(top));
    };
    fmt::format_to(std::back_inserter(out_),
                   "<svg viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" role=\"img\" "
                   "aria-labelledby=\"burn-down-title\">\n<title id=\"burn-down-title\">",
                   kW, kH, kW, kH);
    text(w_.burn_down_label);
    out_ += "</title>\n";
    fmt::format_to(std::back_inserter(out_),
                   "<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#888\"/>"
                   "<line x1=\"{0}\" y1=\"{2}\" x2=\"{3}\" y2=\"{2}\" stroke=\"#888\"/>\n"
                   "<text x=\"{4}\" y=\"{5}\" font-size=\"12\" text-anchor=\"end\" "
                   "fill=\"#888\">{6}</text>"
                   "<text x=\"{4}\" y=\"{2}\" font-size=\"12\" text-anchor=\"end\" "
                   "fill=\"#888\">0</text>\n",
                   kL, kT, kH - kB, kW - kR, kL - 4, kT + 10, top);
    fmt::format_to(std::back_inserter(out_),
                   "<text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"#888\">", kL, kH - 8);
    text(first);
    out_ += "</text>";
    fmt::format_to(std::back_inserter(out_),
                   "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"end\" fill=\"#888\">",
                   kW - kR, kH - 8);
    text(last);
    out_ += "</text>\n";
    if (!m_.cutoff.empty()) {
      fmt::format_to(std::back_inserter(out_),
                     "<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#b3261e\" "
                     "stroke-dasharray=\"4 3\"/>\n"
                     "<line x1=\"{3:.1f}\" y1=\"{4:.1f}\" x2=\"{0:.1f}\" y2=\"{2}\" "
                     "stroke=\"#888\" stroke-dasharray=\"2 4\"/>\n",
                     x(m_.cutoff), kT, kH - kB, x(first), y(h.front().at_risk + h.front().fetched));
    }
    auto polyline = [&](const char* colour, auto value) {
      out_ += "<polyline fill=\"none\" stroke-width=\"2.5\" stroke=\"";
      out_ += colour;
      out_ += "\" points=\"";
      for (const auto& d : h) {
        fmt::format_to(std::back_inserter(out_), "{:.1f},{:.1f} ", x(d.day), y(value(d)));
      }
      out_ += "\"/>\n";
      for (const auto& d : h) {
        fmt::format_to(std::back_inserter(out_),
                       "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>", x(d.day),
                       y(value(d)), colour);
      }
      out_ += "\n";
    };
    polyline("#c25400", [](const journal::DayCounts& d) { return d.at_risk + d.fetched; });
    polyline("#1a7f37", [](const journal::DayCounts& d) { return d.switched; });
    out_ +=
        "</svg>\n<ul class=\"legend\"><li><svg width=\"14\" height=\"14\" aria-hidden=\"true\">"
        "<rect width=\"14\" height=\"14\" fill=\"#c25400\"/></svg> ";
    text(w_.status[0]);
    out_ += " + ";
    text(w_.status[1]);
    out_ +=
        "</li><li><svg width=\"14\" height=\"14\" aria-hidden=\"true\"><rect width=\"14\" "
        "height=\"14\" fill=\"#1a7f37\"/></svg> ";
    text(w_.status[2]);
    out_ +=
        "</li><li><svg width=\"14\" height=\"4\" aria-hidden=\"true\"><rect width=\"14\" "
        "height=\"4\" fill=\"#888\"/></svg> ";
    text(w_.planned);
    out_ += "</li></ul>\n";
  }

  void bar(std::int64_t part, std::int64_t total) {
    const double share = total > 0 ? static_cast<double>(part) / static_cast<double>(total) : 0;
    const long percent = std::lround(share * 100);
    fmt::format_to(std::back_inserter(out_),
                   "<svg width=\"100\" height=\"10\" role=\"img\" aria-label=\"{0}%\">"
                   "<rect width=\"100\" height=\"10\" fill=\"#c8c8c8\"/>"
                   "<rect width=\"{0}\" height=\"10\" fill=\"#1a7f37\"/></svg> {0}%",
                   percent);
  }

  // The per-provider (providers true) or per-domain table, sorted as the view says.
  void table(bool providers) {
    std::vector<const Row*> rows;
    for (const Row& r : providers ? m_.providers : m_.domains) rows.push_back(&r);
    const std::string& key = v_.sort;
    auto value = [&](const Row* r) -> double {
      if (key == "total") return static_cast<double>(r->total);
      if (key == "at-risk") return static_cast<double>(still_relaying(r->counts));
      if (key == "switched") return static_cast<double>(switched(r->counts));
      if (key == "progress") {
        return r->total ? static_cast<double>(switched(r->counts)) / static_cast<double>(r->total)
                        : 0;
      }
      return 0;
    };
    std::stable_sort(rows.begin(), rows.end(), [&](const Row* a, const Row* b) {
      if (key == "provider" && a->provider != b->provider) {
        return v_.descending ? a->provider > b->provider : a->provider < b->provider;
      }
      const double va = value(a), vb = value(b);
      if (va != vb) return v_.descending ? va > vb : va < vb;
      return v_.descending && (key == "domain" || key == "provider") ? a->name > b->name
                                                                     : a->name < b->name;
    });
    out_ += providers ? "<h2 id=\"providers\">" : "<h2 id=\"domains\">";
    text(providers ? w_.providers : w_.domains);
    out_ += "</h2>\n<div class=\"scroll\"><table>\n<thead><tr>";
    auto header = [&](std::string_view sort, std::string_view label, bool num) {
      out_ += num ? "<th class=\"num\"" : "<th";
      const bool active = v_.sort == sort;
      if (active) out_ += v_.descending ? " aria-sort=\"descending\"" : " aria-sort=\"ascending\"";
      out_ += "><a href=\"";
      // Names sort A→Z first, numbers and progress largest first.
      const bool next_desc = active ? !v_.descending : sort != "domain" && sort != "provider";
      attr(link({{"sort", std::string(sort)}, {"dir", next_desc ? "desc" : "asc"}}) +
           (providers ? "#providers" : "#domains"));
      out_ += "\">";
      text(label);
      if (active) out_ += v_.descending ? " ▼" : " ▲";
      out_ += "</a></th>";
    };
    header("domain", providers ? w_.provider : w_.domain, false);
    if (!providers) header("provider", w_.provider, false);
    header("total", w_.total, true);
    header("at-risk", w_.status[0], true);
    out_ += "<th class=\"num\">";
    text(w_.status[1]);
    out_ += "</th>";
    header("switched", w_.status[2], true);
    out_ += "<th class=\"num\">";
    text(w_.status[3]);
    out_ += "</th>";
    header("progress", w_.progress, false);
    out_ += "</tr></thead>\n<tbody>\n";
    for (const Row* r : rows) {
      out_ += "<tr><td>";
      if (providers) {
        text(r->name.empty() ? "–" : r->name);
      } else {
        out_ += "<a href=\"";
        attr(link({{"domain", r->name}}) + "#list");
        out_ += "\">";
        text(r->name);
        out_ += "</a></td><td>";
        text(r->provider.empty() ? "–" : r->provider);
      }
      out_ += "</td><td class=\"num\">";
      number(r->total);
      out_ += "</td><td class=\"num\">";
      number(r->counts[static_cast<std::size_t>(Status::AtRisk)]);
      out_ += "</td><td class=\"num\">";
      number(r->counts[static_cast<std::size_t>(Status::Fetched)]);
      out_ += "</td><td class=\"num\">";
      number(switched(r->counts));
      out_ += "</td><td class=\"num\">";
      number(r->counts[static_cast<std::size_t>(Status::Ambiguous)]);
      out_ += "</td><td>";
      bar(switched(r->counts), r->total);
      out_ += "</td></tr>\n";
    }
    out_ += "</tbody></table></div>\n";
  }

  void clients() {
    out_ += "<h2 id=\"clients\">";
    text(w_.clients);
    out_ += "</h2>\n";
    if (m_.clients.empty()) {
      out_ += "<p>";
      text(w_.clients_none);
      out_ += "</p>\n";
      return;
    }
    out_ += "<table><thead><tr><th>";
    text(w_.client);
    out_ += "</th><th class=\"num\">";
    text(w_.mailboxes_fetched);
    out_ += "</th></tr></thead><tbody>\n";
    for (const auto& [kind, n] : m_.clients) {
      out_ += "<tr><td>";
      text(kind == "-" ? "?" : kind);
      out_ += "</td><td class=\"num\">";
      number(n);
      out_ += "</td></tr>\n";
    }
    out_ += "</tbody></table>\n";
  }

  void after_cutoff() {
    const bool past = !m_.cutoff.empty() && m_.today >= m_.cutoff;
    std::vector<const Mailbox*> hit;
    for (const Mailbox& mb : m_.mailboxes) {
      if (mb.status == Status::Broke || mb.status == Status::LoginFailing) hit.push_back(&mb);
    }
    if (!past && hit.empty()) return;
    out_ += "<h2 id=\"after\">";
    text(w_.after);
    out_ += "</h2>\n";
    if (hit.empty()) {
      out_ += "<p>";
      text(w_.after_none);
      out_ += "</p>\n";
      return;
    }
    rows_table(hit, hit.size());
  }

  void mailbox_list() {
    out_ += "<h2 id=\"list\">";
    text(w_.mailboxes);
    out_ +=
        "</h2>\n<form method=\"get\" action=\"/cockpit#list\" role=\"search\">"
        "<input type=\"hidden\" name=\"lang\" value=\"";
    out_ += render::to_string(v_.lang);
    out_ += "\"><label>";
    text(w_.state);
    out_ += "<select name=\"state\"><option value=\"\">";
    text(w_.all);
    out_ += "</option>";
    for (Status s : kStatuses) {
      out_ += "<option value=\"";
      out_ += to_string(s);
      out_ += '"';
      if (v_.has_status && v_.status == s) out_ += " selected";
      out_ += '>';
      text(w_.status[static_cast<std::size_t>(s)]);
      out_ += "</option>";
    }
    out_ += "</select></label><label>";
    text(w_.domain);
    out_ += "<input name=\"domain\" value=\"";
    attr(v_.domain);
    out_ += "\"></label><label>";
    text(w_.search);
    out_ += "<input name=\"q\" value=\"";
    attr(v_.search);
    out_ += "\"></label><button type=\"submit\">";
    text(w_.apply);
    out_ += "</button></form>\n<p><a id=\"csv\" href=\"";
    attr(link({{"sort", ""}, {"dir", ""}}, "/cockpit/contacts.csv"));
    out_ += "\" download>";
    text(w_.csv);
    out_ += "</a></p>\n";
    std::vector<const Mailbox*> shown;
    std::size_t matching = 0;
    for (const Mailbox& mb : m_.mailboxes) {
      if (!selected(mb, v_)) continue;
      ++matching;
      if (shown.size() < kListLimit) shown.push_back(&mb);
    }
    rows_table(shown, matching);
  }

  void rows_table(const std::vector<const Mailbox*>& rows, std::size_t matching) {
    out_ += "<div class=\"scroll\"><table class=\"mailboxes\">\n<thead><tr><th>";
    text(w_.address);
    out_ += "</th><th>";
    text(w_.state);
    out_ += "</th><th>";
    text(w_.evidence);
    out_ += "</th><th>";
    text(w_.fetched);
    out_ += "</th><th>";
    text(w_.last_seen);
    out_ += "</th></tr></thead>\n<tbody>\n";
    for (const Mailbox* mb : rows) {
      out_ += "<tr><td class=\"addr\">";
      text(mb->address);
      out_ += "</td><td>";
      text(w_.status[static_cast<std::size_t>(mb->status)]);
      out_ += "</td><td>";
      std::string evidence = mb->confidence;
      for (const auto& ip : mb->ips) evidence += (evidence.empty() ? "" : ", ") + ip;
      if (!mb->shared_with.empty()) {
        evidence += "; +";
        for (std::size_t i = 0; i < mb->shared_with.size(); ++i) {
          evidence += (i ? ", " : " ") + mb->shared_with[i];
        }
      }
      text(evidence.empty() ? "–" : evidence);
      out_ += "</td><td>";
      if (mb->fetch_last > 0) {
        std::string how;
        for (const auto& d : mb->doors) how += (how.empty() ? "" : ", ") + d;
        how += " (";
        for (std::size_t i = 0; i < mb->clients.size(); ++i) {
          how += (i ? ", " : "") + (mb->clients[i] == "-" ? std::string("?") : mb->clients[i]);
        }
        how += ") ";
        how += format_time(mb->fetch_last);
        text(how);
      } else {
        text(w_.none);
      }
      out_ += "</td><td>";
      text(mb->last_seen.empty() ? "–" : mb->last_seen);
      out_ += "</td></tr>\n";
    }
    out_ += "</tbody></table></div>\n";
    if (matching > rows.size()) {
      out_ += "<p>";
      number(static_cast<std::int64_t>(matching - rows.size()));
      out_ += " ";
      text(w_.more);
      out_ += "</p>\n";
    }
  }

  const Model& m_;
  const View& v_;
  const Words& w_;
  std::string out_;
};

void csv_cell(std::string_view value, std::string& out) {
  out += '"';
  // A cell a spreadsheet would read as a formula gets a leading apostrophe (OWASP CSV injection).
  if (!value.empty() &&
      std::string_view("=+-@\t\r").find(value.front()) != std::string_view::npos) {
    out += '\'';
  }
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

}  // namespace

View parse_view(std::string_view query, render::Lang fallback) {
  View view;
  view.lang = fallback;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view name = pair.substr(0, eq);
    std::string raw(pair.substr(eq + 1));
    std::replace(raw.begin(), raw.end(), '+', ' ');
    auto value = percent_decode(raw);
    if (!value || value->size() > 320) continue;
    if (name == "lang") {
      if (auto l = render::parse_lang(*value)) view.lang = *l;
    } else if (name == "sort") {
      for (std::string_view s :
           {"domain", "provider", "total", "at-risk", "switched", "progress"}) {
        if (*value == s) view.sort = s;
      }
    } else if (name == "dir") {
      view.descending = *value == "desc";
    } else if (name == "state") {
      view.has_status = parse_status(*value, view.status);
    } else if (name == "domain") {
      view.domain = ascii_lower(*value);
    } else if (name == "q") {
      view.search = ascii_lower(*value);
    }
  }
  return view;
}

std::string render_page(const Model& model, const View& view) { return Page(model, view).render(); }

std::string render_csv(const Model& model, const View& view, const Config& config) {
  std::string out =
      "address,domain,provider,state,confidence,ips,first_seen,last_seen,fetched_settings,"
      "setup_link\r\n";
  for (const Mailbox& m : model.mailboxes) {
    if (!selected(m, view)) continue;
    std::string ips;
    for (const auto& ip : m.ips) ips += (ips.empty() ? "" : " ") + ip;
    std::string link;
    for (const Provider& p : config.providers) {
      if (p.id == m.provider) {
        link = "https://" + p.autodiscover_host +
               "/setup?emailaddress=" + render::html::url_encode(m.address);
      }
    }
    for (std::string_view cell :
         {std::string_view(m.address), std::string_view(m.domain), std::string_view(m.provider),
          to_string(m.status), std::string_view(m.confidence), std::string_view(ips),
          std::string_view(m.first_seen), std::string_view(m.last_seen)}) {
      csv_cell(cell, out);
      out += ',';
    }
    csv_cell(format_time(m.fetch_last), out);
    out += ',';
    csv_cell(link, out);
    out += "\r\n";
  }
  return out;
}

const std::string& content_security_policy() {
  static const std::string csp = render::html::content_security_policy(kCss);
  return csp;
}

}  // namespace mailconfd::cockpit
