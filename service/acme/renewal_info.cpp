#include "acme/renewal_info.h"

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme/jws.h"

namespace mailconfd::acme {

std::string ari_cert_id(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (!bio) return "";
  std::unique_ptr<X509, decltype(&X509_free)> x(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
  ERR_clear_error();
  if (!x) return "";
  const ASN1_OCTET_STRING* key_id = X509_get0_authority_key_id(x.get());
  const ASN1_INTEGER* serial = X509_get0_serialNumber(x.get());
  if (!key_id || ASN1_STRING_length(key_id) == 0 || !serial) return "";
  // The serial's DER encoding without its tag and length: the content octets.
  const int size = i2d_ASN1_INTEGER(serial, nullptr);
  if (size < 3) return "";
  std::vector<unsigned char> der(static_cast<std::size_t>(size));
  unsigned char* out = der.data();
  i2d_ASN1_INTEGER(serial, &out);
  std::size_t header = 2;
  if (der[1] & 0x80) header += der[1] & 0x7f;
  if (header >= der.size()) return "";
  return base64url(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(key_id)),
                                    static_cast<std::size_t>(ASN1_STRING_length(key_id)))) +
         "." +
         base64url(std::string_view(reinterpret_cast<const char*>(der.data() + header),
                                    der.size() - header));
}

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text) {
  std::tm tm{};
  int consumed = 0;
  const std::string s(text);
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%*1[Tt]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
      consumed != 19) {
    return std::nullopt;
  }
  if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60) {
    return std::nullopt;
  }
  std::string_view rest = text.substr(19);
  if (!rest.empty() && rest.front() == '.') {
    rest.remove_prefix(1);
    if (rest.empty() || rest.front() < '0' || rest.front() > '9') return std::nullopt;
    while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') rest.remove_prefix(1);
  }
  long offset = 0;
  if (rest == "Z" || rest == "z") {
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    const auto digit = [&](std::size_t i) { return rest[i] >= '0' && rest[i] <= '9'; };
    if (!digit(1) || !digit(2) || !digit(4) || !digit(5)) return std::nullopt;
    offset = ((rest[1] - '0') * 10 + (rest[2] - '0')) * 3600 +
             ((rest[4] - '0') * 10 + (rest[5] - '0')) * 60;
    if (rest[0] == '+') offset = -offset;  // local time ahead of UTC: subtract to get UTC
  } else {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return std::chrono::system_clock::from_time_t(timegm(&tm) + offset);
}

std::optional<RenewalWindow> parse_renewal_info(const std::string& body) {
  const auto json = nlohmann::json::parse(body, nullptr, false);
  if (!json.is_object() || !json.contains("suggestedWindow")) return std::nullopt;
  const auto& window = json["suggestedWindow"];
  if (!window.is_object() || !window.contains("start") || !window.contains("end") ||
      !window["start"].is_string() || !window["end"].is_string()) {
    return std::nullopt;
  }
  const auto start = parse_rfc3339(window["start"].get<std::string>());
  const auto end = parse_rfc3339(window["end"].get<std::string>());
  if (!start || !end || *end <= *start) return std::nullopt;
  return RenewalWindow{*start, *end};
}

std::chrono::system_clock::time_point renewal_point(const RenewalWindow& window,
                                                    const std::string& name) {
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a: stable between builds
  for (const char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  const auto length = std::chrono::duration_cast<std::chrono::seconds>(window.end - window.start);
  return window.start + length * static_cast<std::int64_t>(h % 1001) / 1000;
}

}  // namespace mailconfd::acme
