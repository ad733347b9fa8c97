#include "acme/client.h"

#include <algorithm>
#include <atomic>
#include <thread>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include "tls/validation.h"

namespace mailconfd::acme {
namespace {

using Json = nlohmann::json;
constexpr auto kPoll = std::chrono::milliseconds(500);

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* out) {
  auto* body = static_cast<std::string*>(out);
  if (body->size() + size * n > 1024 * 1024) return 0;  // a CA answer is never this big
  body->append(data, size * n);
  return size * n;
}

std::string trimmed(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' '))
    v.remove_suffix(1);
  return std::string(v);
}

struct Headers {
  std::string location, nonce, retry_after;
};

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* out) {
  auto* h = static_cast<Headers*>(out);
  const std::string_view line(data, size * n);
  const auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const std::string value = trimmed(line.substr(colon + 1));
    if (name == "location") h->location = value;
    if (name == "replay-nonce") h->nonce = value;
    if (name == "retry-after") h->retry_after = value;
  }
  return size * n;
}

Json parse(const std::string& body) { return Json::parse(body, nullptr, false); }

std::string text(const Json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

std::atomic<std::uint64_t> bad_nonce_count{0};

}  // namespace

std::uint64_t bad_nonces() { return bad_nonce_count.load(); }

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now) {
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (value.size() > 9) return std::chrono::seconds(999'999'999);  // capped by the caller
    return std::chrono::seconds(std::stol(std::string(value)));
  }
  // IMF-fixdate (and the two obsolete forms RFC 9110 still asks recipients to accept).
  const std::string text(value);
  const time_t date = curl_getdate(text.c_str(), nullptr);
  if (date == -1) return std::nullopt;
  const auto wait = std::chrono::system_clock::from_time_t(date) - now;
  if (wait <= std::chrono::system_clock::duration::zero()) return std::chrono::seconds(0);
  return std::chrono::ceil<std::chrono::seconds>(wait);
}

std::string_view to_string(Challenge challenge) {
  return challenge == Challenge::TlsAlpn01 ? "tls-alpn-01" : "http-01";
}

Client::Client(std::string directory, std::string ca_file, std::string contact, AccountKey key)
    : directory_url_(std::move(directory)),
      ca_file_(std::move(ca_file)),
      contact_(std::move(contact)),
      key_(std::move(key)) {}

Client::Response Client::request(const std::string& url, const std::string* jws, bool head) {
  Response r;
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) {
    r.error = "cannot create a curl handle";
    return r;
  }
  Headers headers;
  curl_slist* list = nullptr;
  if (jws) list = curl_slist_append(list, "Content-Type: application/jose+json");
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(curl.get(), CURLOPT_USERAGENT, "mailconfd-acme");
  if (!ca_file_.empty()) curl_easy_setopt(curl.get(), CURLOPT_CAINFO, ca_file_.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERDATA, &headers);
  if (list) curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, list);
  if (head) curl_easy_setopt(curl.get(), CURLOPT_NOBODY, 1L);
  if (jws) {
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, jws->c_str());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(jws->size()));
  }
  const CURLcode code = curl_easy_perform(curl.get());
  curl_slist_free_all(list);
  if (code != CURLE_OK) {
    r.error = curl_easy_strerror(code);
    return r;
  }
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &r.status);
  r.location = headers.location;
  r.nonce = headers.nonce;
  r.retry_after = headers.retry_after;
  if (!r.nonce.empty()) nonce_ = r.nonce;
  return r;
}

Client::Response Client::post(const std::string& url, const std::string& payload) {
  for (int attempt = 0; attempt < kNonceAttempts; ++attempt) {
    if (nonce_.empty()) {
      Response n = request(new_nonce_, nullptr, true);
      n.for_nonce = true;
      if (nonce_.empty()) return n;
    }
    const std::string jws = key_.sign(url, nonce_, kid_, payload);
    nonce_.clear();
    Response r = request(url, &jws);
    if (r.status == 400 && text(parse(r.body), "type") == "urn:ietf:params:acme:error:badNonce") {
      bad_nonce_count.fetch_add(1, std::memory_order_relaxed);
      continue;
    }  // the CA may reject any nonce (RFC 8555 §6.5): once more with the new one
    return r;
  }
  Response r;
  r.error = "the CA rejected " + std::to_string(kNonceAttempts) + " nonces in a row";
  return r;
}

Failure Client::failure(const std::string& step, const Response& r) const {
  Failure f;
  const std::string what = step + (r.for_nonce ? " (newNonce)" : "");
  if (r.status == 0) {
    f.reason = what + ": " + r.error;
    f.ca_failed = true;
    return f;
  }
  const Json problem = parse(r.body);
  const std::string type = text(problem, "type");
  f.reason = what + ": HTTP " + std::to_string(r.status) +
             (type.empty() ? "" : " " + type + ": " + text(problem, "detail"));
  f.rate_limited = r.status == 429 || type == "urn:ietf:params:acme:error:rateLimited";
  f.ca_failed = r.status >= 500 || type == "urn:ietf:params:acme:error:serverInternal";
  f.retry_after = parse_retry_after(r.retry_after, std::chrono::system_clock::now());
  return f;
}

std::optional<Failure> Client::load_directory() {
  if (!new_order_.empty()) return std::nullopt;
  Response d = request(directory_url_, nullptr);
  if (d.status != 200) return failure("directory " + directory_url_, d);
  const Json dir = parse(d.body);
  new_nonce_ = text(dir, "newNonce");
  new_account_ = text(dir, "newAccount");
  new_order_ = text(dir, "newOrder");
  renewal_info_ = text(dir, "renewalInfo");
  if (new_nonce_.empty() || new_account_.empty() || new_order_.empty()) {
    new_order_.clear();
    return make_failure("directory " + directory_url_ + ": not an ACME directory");
  }
  return std::nullopt;
}

bool Client::offers_renewal_info() {
  // A directory that could not be read is asked again 5 minutes later at the soonest here
  // (issue() asks at every order).
  const auto now = std::chrono::steady_clock::now();
  if (new_order_.empty() && now < directory_retry_) return false;
  if (load_directory()) {
    directory_retry_ = now + std::chrono::minutes(5);
    return false;
  }
  return !renewal_info_.empty();
}

std::optional<Client::RenewalInfo> Client::renewal_info(const std::string& cert_id,
                                                        std::string& error) {
  if (!offers_renewal_info()) {
    error = "the CA offers no renewalInfo";
    return std::nullopt;
  }
  const std::string url =
      renewal_info_ + (renewal_info_.ends_with('/') ? "" : "/") + cert_id;  // RFC 9773 §4.1
  const Response r = request(url, nullptr);
  if (r.status != 200) {
    error = failure("renewalInfo " + url, r).reason;
    return std::nullopt;
  }
  const auto window = parse_renewal_info(r.body);
  if (!window) {
    error = "renewalInfo " + url + ": no suggestedWindow with start before end";
    return std::nullopt;
  }
  return RenewalInfo{*window, parse_retry_after(r.retry_after, std::chrono::system_clock::now())};
}

std::optional<Failure> Client::ensure_account() {
  if (!kid_.empty()) return std::nullopt;
  if (auto f = load_directory()) return f;
  Json account = {{"termsOfServiceAgreed", true}};
  if (!contact_.empty()) account["contact"] = Json::array({contact_});
  Response r = post(new_account_, account.dump());
  if ((r.status != 200 && r.status != 201) || r.location.empty()) return failure("newAccount", r);
  kid_ = r.location;
  return std::nullopt;
}

std::optional<Failure> Client::issue(const std::string& name,
                                     const std::vector<Challenge>& preference, Tokens& tokens,
                                     Issued& out, std::stop_token stop,
                                     std::chrono::seconds timeout, const std::string& replaces) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  const auto expired = [&] {
    return stop.stop_requested() || std::chrono::steady_clock::now() > until;
  };
  if (auto f = ensure_account()) return f;
  Json order_request = {{"identifiers", Json::array({{{"type", "dns"}, {"value", name}}})}};
  if (!replaces.empty()) order_request["replaces"] = replaces;
  Response r = post(new_order_, order_request.dump());
  if (r.status != 201 || r.location.empty()) return failure("newOrder " + name, r);
  const std::string order_url = r.location;
  Json order = parse(r.body);
  if (!order.is_object() || !order.contains("authorizations")) {
    return make_failure("newOrder " + name + ": no authorizations in the order");
  }
  for (const Json& authz_url : order["authorizations"]) {
    if (!authz_url.is_string()) continue;
    r = post(authz_url.get<std::string>(), "");
    if (r.status != 200) return failure("authorization " + name, r);
    Json authz = parse(r.body);
    if (text(authz, "status") == "valid") continue;
    // The first challenge of preference the CA offers for this authorization.
    std::string challenge_url, token;
    std::optional<Challenge> chosen;
    for (const Challenge wanted : preference) {
      if (!authz.contains("challenges") || !authz["challenges"].is_array()) break;
      for (const Json& c : authz["challenges"]) {
        if (text(c, "type") == to_string(wanted) && valid_token(text(c, "token"))) {
          challenge_url = text(c, "url");
          token = text(c, "token");
          chosen = wanted;
          break;
        }
      }
      if (chosen) break;
    }
    std::string wanted_text;
    for (const Challenge c : preference) {
      wanted_text += (wanted_text.empty() ? "" : " or ") + std::string(to_string(c));
    }
    if (!chosen || challenge_url.empty()) {
      return make_failure("authorization " + name + ": the CA offers no " + wanted_text +
                          " challenge");
    }
    const std::string key_authorization = token + "." + key_.thumbprint();
    const auto withdraw = [&] {
      if (*chosen == Challenge::Http01) {
        tokens.erase(token);
      } else {
        tls::alpn_challenges().erase(name);
      }
    };
    if (*chosen == Challenge::Http01) {
      tokens.put(token, key_authorization);
    } else if (std::string error; !tls::alpn_challenges().put(name, key_authorization, error)) {
      return make_failure(error);
    }
    r = post(challenge_url, "{}");
    if (r.status != 200) {
      withdraw();
      return failure("challenge " + name, r);
    }
    std::string status;
    while (!expired()) {
      std::this_thread::sleep_for(kPoll);
      r = post(authz_url.get<std::string>(), "");
      if (r.status != 200) break;
      authz = parse(r.body);
      status = text(authz, "status");
      if (status != "pending" && status != "processing") break;
    }
    withdraw();
    if (status != "valid") {
      std::string detail;
      if (authz.contains("challenges")) {
        for (const Json& c : authz["challenges"]) {
          if (c.contains("error")) detail = text(c["error"], "detail");
        }
      }
      if (r.status != 200) return failure("authorization " + name, r);
      return make_failure("authorization " + name + ": " + (status.empty() ? "timed out" : status) +
                          (detail.empty() ? "" : ": " + detail));
    }
  }
  out.key_pem = new_certificate_key();
  const std::string csr = make_csr(name, out.key_pem);
  if (out.key_pem.empty() || csr.empty()) {
    return make_failure("CSR for " + name + ": " + sign::openssl_error());
  }
  r = post(text(order, "finalize"), Json{{"csr", base64url(csr)}}.dump());
  if (r.status != 200) return failure("finalize " + name, r);
  order = parse(r.body);
  while (text(order, "status") != "valid" && text(order, "status") != "invalid" && !expired()) {
    std::this_thread::sleep_for(kPoll);
    r = post(order_url, "");
    if (r.status != 200) return failure("order " + name, r);
    order = parse(r.body);
  }
  const std::string certificate_url = text(order, "certificate");
  if (text(order, "status") != "valid" || certificate_url.empty()) {
    return make_failure("order " + name + ": " + text(order, "status"));
  }
  r = post(certificate_url, "");
  if (r.status != 200 || r.body.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return failure("certificate " + name, r);
  }
  out.certificate_pem = r.body;
  return std::nullopt;
}

}  // namespace mailconfd::acme
