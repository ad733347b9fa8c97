// Fuzzes the configuration loader (load_config_text). A configuration it accepts must obey
// the policy (outgoing only 587+STARTTLS or 465+TLS, 587 always present) and hold only
// normalized domains, and the Thunderbird document rendered from it must be well-formed.
#include <string>
#include <string_view>

#include <pugixml.hpp>

#include "app.h"
#include "config/config_file.h"
#include "core/email_address.h"
#include "fuzz.h"
#include "render/autoconfig.h"

using namespace mailconfd;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 65536) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // Domain-list files are resolved in a directory that does not exist: no disk reads.
  const Loaded loaded = load_config_text(text, "fuzz.xml", "/nonexistent/mailconfd-fuzz");
  if (!loaded.ok()) return 0;
  const Config& config = loaded.config;
  for (const Provider& provider : config.providers) {
    bool submission = false;
    for (const MailServer& s : provider.outgoing) {
      FUZZ_CHECK((s.port == 587 && s.security == Security::StartTls) ||
                 (s.port == 465 && s.security == Security::Tls));
      submission = submission || s.port == 587;
    }
    FUZZ_CHECK(submission);
  }
  const auto domains = config.domains.sorted();
  for (std::string_view domain : domains) {
    FUZZ_CHECK(normalize_domain(domain) == std::string(domain));
  }
  const auto app = build_app(Config(config));
  for (std::size_t i = 0; i < domains.size() && i < 4; ++i) {
    const DomainEntry* entry = app->domains->find(domains[i]);
    FUZZ_CHECK(entry != nullptr);
    render::SlotValues values;
    values[render::Slot::Domain] = domains[i];
    values[render::Slot::Login] = "a<b>&\"@x";
    const std::string document = app->documents_for(*entry).autoconfig.expand(values);
    pugi::xml_document parsed;
    FUZZ_CHECK(parsed.load_string(document.c_str()).status == pugi::status_ok);
  }
  return 0;
}
