#include "probe/tls_check.h"

#include <fmt/format.h>
#include <openssl/evp.h>

namespace mailconfd::probe {

bool check_tls(Session& session, const std::string& host, ServerReport& report) {
  std::string error;
  const auto certificate = session.start_tls(host, error);
  if (!certificate) {
    report.fail("tls", error);
    return false;
  }
  report.pass("tls", certificate->protocol);
  if (certificate->chain_ok) {
    report.pass("certificate-chain", certificate->subject);
  } else {
    report.fail("certificate-chain", fmt::format("not trusted: {} ({})", certificate->chain_error,
                                                 certificate->subject));
  }
  if (certificate->dates_ok) {
    report.pass("certificate-dates", certificate->dates);
  } else {
    report.fail("certificate-dates", certificate->dates);
  }
  if (certificate->name_ok) {
    report.pass("certificate-name", "valid for " + host);
  } else {
    report.fail("certificate-name",
                fmt::format("not valid for {} ({})", host, certificate->subject));
  }
  return true;
}

std::unique_ptr<Session> open_checked(const Target& target, const Options& options,
                                      ServerReport& report) {
  std::string error;
  auto session = Session::open(target.server.host, target.server.port, options, error);
  if (!session) {
    report.fail("connect", error);
    return nullptr;
  }
  report.address = session->peer();
  report.pass("connect", session->peer());
  const bool implicit_tls = target.server.security == Security::Tls;
  if (implicit_tls && !check_tls(*session, target.server.host, report)) return nullptr;
  return session;
}

std::string sasl_plain(const Account& account) {
  std::string message;
  message += '\0';
  message += account.user;
  message += '\0';
  message += account.password;
  std::string out(4 * ((message.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(message.data()),
                                static_cast<int>(message.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

}  // namespace mailconfd::probe
