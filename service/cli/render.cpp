#include "cli/render.h"

#include <chrono>
#include <iostream>
#include <optional>
#include <string>

#include "app.h"
#include "cli/args.h"
#include "cli/hosted.h"
#include "core/email_address.h"
#include "log.h"

namespace mailconfd::cli {
namespace {

constexpr const char* kRenderHelp =
    "usage: mailconfd render autoconfig|autodiscover|mobileconfig|setup EMAIL [--config FILE]\n"
    "                        [--lang de|en]\n"
    "\n"
    "Prints the document mailconfd would serve for EMAIL: the Thunderbird autoconfig file,\n"
    "the Outlook Autodiscover (POX, outlook 2006a) answer, the Apple profile's bytes\n"
    "(CMS-signed DER when the configuration has <signing>, else the plain plist), or the\n"
    "setup page (HTML; --lang picks the language, default <setup lang>).\n"
    "Without --config it says on stderr that it used the built-in example configuration.\n"
    "The <tls> private key is not read (it is not needed to render).\n"
    "With <database>, the database's domains, per-domain choices and per-mailbox login names\n"
    "are used, read as serve reads them (the snapshot, with a warning, when the database is\n"
    "down; neither: exit 2).\n";

int render(const Args& args) {
  if (args.help) return std::cout << kRenderHelp, 0;
  if (args.positional.size() != 2)
    return usage_error("render needs a document kind and an address", kRenderHelp);
  const std::string& kind = args.positional[0];
  if (kind != "autoconfig" && kind != "autodiscover" && kind != "mobileconfig" && kind != "setup") {
    return usage_error("unknown document kind '" + kind + "'", kRenderHelp);
  }
  std::optional<render::Lang> lang;
  if (auto it = args.options.find("lang"); it != args.options.end()) {
    if (kind != "setup") return usage_error("--lang goes with render setup", kRenderHelp);
    lang = render::parse_lang(it->second);
    if (!lang) return usage_error("--lang must be de or en", kRenderHelp);
  }
  if (!args.options.count("config")) {
    std::cerr << "mailconfd: no --config given: rendering from the built-in example "
                 "configuration (deploy/example/mailconfd.xml)\n";
  }
  Loaded loaded = load(args, TlsKeys::Skip);
  if (!report(loaded)) return 2;
  std::string error;
  auto hosted = load_hosted(loaded.config, error);
  if (!hosted) return std::cerr << "mailconfd: " << error << '\n', 2;
  // The App serve would build from the same domain part: the same documents and login names.
  auto app = build_app(std::move(loaded.config), std::move(hosted->domains), nullptr);
  if (kind == "setup") {
    // The page as a browser gets it, what the customer typed included: any input gives a
    // page (exit 0 for settings, 1 for an unknown domain or not an address, as the status).
    std::string body;
    const int status =
        setup_page(*app, lang.value_or(app->setup->default_lang), args.positional[1],
                   parse_pasted_email(args.positional[1]), std::chrono::system_clock::now(), body);
    std::cout << body;
    if (status != 200) {
      std::cerr << "mailconfd: "
                << (status == 404 ? "the domain is not hosted in this configuration"
                                  : "not an email address")
                << " (the page says so; HTTP status " << status << ")\n";
    }
    return status == 200 ? 0 : 1;
  }
  auto address = parse_email(args.positional[1]);
  if (!address) {
    std::cerr << "mailconfd: '" << args.positional[1] << "' is not a valid email address\n";
    return 2;
  }
  const DomainEntry* entry = app->domains->find(address->domain);
  if (entry == nullptr) {
    std::cerr << "mailconfd: domain " << address->domain
              << " is not hosted in this configuration\n";
    return 1;
  }
  if (kind == "mobileconfig") {
    auto profile = mobileconfig_for(*app, *entry, *address);
    if (!profile) return 1;  // the OpenSSL reason is logged
    std::cout.write(profile->data(), static_cast<std::streamsize>(profile->size()));
    std::cout.flush();
    return std::cout ? 0 : 1;
  }
  const std::string login = login_for(*app, *entry, *address);
  const std::string full = address->full();
  const std::string shown = address->display();
  render::SlotValues values;
  values[render::Slot::Domain] = address->domain;
  values[render::Slot::Login] = login;
  values[render::Slot::Address] = full;
  values[render::Slot::Display] = shown;
  const App::Documents& documents = app->documents_for(*entry);
  std::cout
      << (kind == "autoconfig" ? documents.autoconfig : documents.autodiscover).expand(values);
  return 0;
}

}  // namespace

int render_command(int argc, char** argv) {
  std::string error;
  auto args = parse_args(argc, argv, 2, {"config", "lang"}, error);
  if (!args) return usage_error(error, kRenderHelp);
  init_logging(false);
  return render(*args);
}

}  // namespace mailconfd::cli
