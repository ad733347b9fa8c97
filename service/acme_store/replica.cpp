#include "acme_store/replica.h"

#include <sys/stat.h>

#include <fstream>
#include <optional>

#include <spdlog/spdlog.h>

#include "acme/jws.h"
#include "acme_store/memory.h"
#include "acme_store/sealed.h"
#include "tls/validation.h"

namespace mailconfd::acme_store {
namespace {

// The file at path (at most 1 MiB); nullopt when it cannot be read.
std::optional<std::string> read_small_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string text(1024 * 1024, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return text;
}

// A name from the database that may become a file name: a lowercase DNS name (letters,
// digits, hyphens; labels separated by single dots), nothing that could leave the directory.
bool safe_name(const std::string& name) {
  if (name.empty() || name.size() > 253 || name.front() == '.' || name.back() == '.') return false;
  char previous = '.';
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                    (c == '.' && previous != '.');
    if (!ok) return false;
    previous = c;
  }
  return true;
}

// Writes text to path (0600, atomically) unless the file already holds it. False with error.
bool write_if_changed(const std::string& path, const std::string& text, bool& written,
                      std::string& error) {
  written = false;
  if (read_small_file(path) == text) return true;
  if (!acme::write_file_atomically(path, text, 0600, error)) return false;
  written = true;
  return true;
}

}  // namespace

Replica::Replica(ReplicaOptions options, std::shared_ptr<acme::Tokens> tokens,
                 IssuerFactory make_issuer, std::function<void(const std::string&)> changed)
    : options_(std::move(options)),
      tokens_(std::move(tokens)),
      make_issuer_(std::move(make_issuer)),
      changed_(std::move(changed)) {
  ::mkdir(options_.storage.c_str(), 0700);
  ::mkdir(acme::certificates_directory(options_.storage).c_str(), 0700);
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

Replica::~Replica() {
  thread_.request_stop();
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  stop_issuing();
}

acme::Demand Replica::request(const std::string& name) {
  {
    std::lock_guard lock(issuer_mutex_);
    if (issuer_) return issuer_->request(name);
  }
  acme::Demand result = acme::Demand::Forwarded;
  {
    std::lock_guard lock(outbox_mutex_);
    const auto now = std::chrono::steady_clock::now();
    const auto it = forwarded_.find(name);
    if (it != forwarded_.end() && now - it->second < options_.forward_again) {
      result = acme::Demand::Known;
    } else if (outbox_.size() >= options_.max_forward) {
      result = acme::Demand::Full;
    } else {
      forwarded_[name] = now;
      outbox_.push_back(name);
    }
  }
  acme::count_demand(result);
  return result;
}

void Replica::run(std::stop_token stop) {
  bool failing = false;  // the last round failed (logged once until it works again)
  bool issuing = false;
  bool announced = false;  // "another replica issues" said since the last change
  while (!stop.stop_requested()) {
    std::string error;
    bool ok = true;
    bool take_over = false;
    std::vector<std::string> requests;  // on demand, from the other replicas
    {
      std::lock_guard lock(store_mutex_);
      if (!store_) {
        store_ = options_.mariadb ? open_mariadb_store(options_.dsn, error)
                                  : open_postgresql_store(options_.dsn, error);
        ok = store_ != nullptr;
        if (ok && failing) spdlog::info("acme: the database is back");
      }
      if (ok && !issuing) {
        bool held = false;
        ok = store_->try_lock(held, error) && load_certificates(error);
        if (ok && held) {
          take_over = true;
        } else if (ok) {
          std::unordered_map<std::string, std::string> answers;
          ok = store_->challenges(Challenge::Http01, answers, error);
          if (ok) tokens_->set_shared(std::move(answers));
          if (ok) ok = load_alpn_challenges(error);
          if (ok) ok = forward_requests(error);
          if (ok && !announced) {
            spdlog::info("acme: another replica issues; certificates come from the database");
            announced = true;
          }
        }
      } else if (ok) {
        ok = store_->take_requests(options_.request_lifetime, options_.take_per_poll, requests,
                                   error);
        // Certificates issued while the database refused them: again now.
        for (auto it = unsaved_.begin(); ok && it != unsaved_.end();) {
          const std::string file = acme::certificates_directory(options_.storage) + "/" + *it;
          const auto pem = read_small_file(file + ".pem");
          const auto key = read_small_file(file + ".key");
          std::int64_t version = 0;
          std::string stored;
          if (pem && key &&
              (!to_store(certificate_associated_data(*it), *key, stored, error) ||
               !store_->put_certificate({*it, *pem, stored, 0}, version, error))) {
            break;
          }
          it = unsaved_.erase(it);
        }
      }
    }
    if (ok && take_over) ok = become_issuer(error);
    if (ok && take_over) issuing = true;
    if (ok && issuing) hand_to_issuer(std::move(requests));
    if (!ok) {
      if (!failing) spdlog::error("acme: the database: {}", error);
      failing = true;
      announced = false;
      if (issuing) {
        spdlog::warn("acme: this replica stops issuing (its lock went with the connection)");
        issuing = false;
      }
      stop_issuing();
      {
        std::lock_guard lock(store_mutex_);
        store_.reset();  // closes the session: the lock is free for another replica
      }
      tokens_->set_shared({});
      tls::alpn_challenges().clear_shared();
      std::unique_lock lock(wait_mutex_);
      wake_.wait_for(lock, stop, options_.reconnect, [] { return false; });
      continue;
    }
    failing = false;
    std::unique_lock lock(wait_mutex_);
    wake_.wait_for(lock, stop, options_.poll, [] { return false; });
  }
}

bool Replica::load_certificates(std::string& error) {
  std::vector<StoredCertificate> rows;
  if (!store_->certificates_since(version_, rows, error)) return false;
  const std::string directory = acme::certificates_directory(options_.storage);
  for (const StoredCertificate& c : rows) {
    version_ = std::max(version_, c.version);
    if (!safe_name(c.name)) {
      spdlog::warn("acme: the database's certificate for a name that is not a DNS name: skipped");
      continue;
    }
    const std::string file = directory + "/" + c.name;
    const std::string associated = certificate_associated_data(c.name);
    std::string key_pem;
    std::string why;
    const Opened opened = open_sealed(options_.key, associated, c.key_pem, key_pem, why);
    if (opened == Opened::Failed) {
      spdlog::error(
          "acme: the database's private key for {} cannot be used: {}; skipped (what this "
          "replica has for it keeps serving)",
          c.name, why);
      continue;
    }
    if (opened == Opened::Plain && !options_.key.empty()) {
      // The previous release's PEM: written back sealed (a new version, read again unchanged).
      std::string stored;
      std::int64_t version = 0;
      if (!to_store(associated, key_pem, stored, error) ||
          !store_->put_certificate({c.name, c.certificate_pem, stored, 0}, version, error)) {
        return false;
      }
      spdlog::info("acme: sealed the private key for {} in the database", c.name);
    }
    bool key_written = false, pem_written = false;
    if (!write_if_changed(file + ".key", key_pem, key_written, error) ||
        !write_if_changed(file + ".pem", c.certificate_pem, pem_written, error)) {
      return false;
    }
    if (key_written || pem_written) {
      spdlog::info("acme: loaded the certificate for {} from the database", c.name);
      changed_(file + ".pem");
    }
  }
  return true;
}

bool Replica::become_issuer(std::string& error) {
  const std::string path = options_.storage + "/account.key";
  {
    std::lock_guard lock(store_mutex_);
    if (!store_) return error = "not connected", false;
    std::optional<std::string> stored;
    if (!store_->account_key(stored, error)) return false;
    std::optional<std::string> key;  // the account key as PEM
    bool seal_it = false;            // not in the database as it should be (yet)
    if (stored) {
      std::string pem;
      std::string why;
      const Opened opened = open_sealed(options_.key, kAccountAssociatedData, *stored, pem, why);
      if (opened == Opened::Failed) return error = "the account key in the database: " + why, false;
      seal_it = opened == Opened::Plain && !options_.key.empty();
      bool written = false;
      if (!write_if_changed(path, pem, written, error)) return false;
      key = std::move(pem);
    } else {
      if (!acme::AccountKey::load_or_create(path, error)) return false;
      key = read_small_file(path);
      if (!key) return error = "cannot read " + path, false;
      seal_it = true;
    }
    std::string text;
    if (seal_it && (!to_store(kAccountAssociatedData, *key, text, error) ||
                    !store_->put_account_key(text, error))) {
      return false;
    }
    if (seal_it && stored) spdlog::info("acme: sealed the account key in the database");
  }
  acme::IssuerMemory memory;
  {
    std::lock_guard lock(store_mutex_);
    if (!load_memory(memory, error) || !erase_leftover_challenges(error)) return false;
  }
  memory.held = [this](const acme::Hold& hold) {
    remember("the CA's hold",
             [&](Store& store, std::string& e) { return store.put_hold(to_row(hold), e); });
  };
  memory.renewal_changed = [this](const std::string& name, const acme::RenewalState* state) {
    remember("the renewal info for " + name, [&](Store& store, std::string& e) {
      return state ? store.put_renewal(to_row(name, *state), e) : store.erase_renewal(name, e);
    });
  };
  memory.backoff_changed = [this](const std::string& name, const acme::NameBackoff* backoff) {
    remember("the wait for " + name, [&](Store& store, std::string& e) {
      return backoff ? store.put_backoff(to_row(name, *backoff), e) : store.erase_backoff(name, e);
    });
  };
  tokens_->set_shared({});
  tokens_->set_hook(
      [this](const std::string& token, const std::string* answer) { on_token(token, answer); });
  tls::alpn_challenges().clear_shared();
  tls::alpn_challenges().set_hook(
      [this](const std::string& name, const std::string* digest) { on_alpn(name, digest); });
  spdlog::info("acme: this replica issues (it holds the database's lock)");
  auto issuer =
      make_issuer_([this](const std::string& name, const std::string& file) { issued(name, file); },
                   std::move(memory));
  std::lock_guard lock(issuer_mutex_);
  issuer_ = std::move(issuer);
  return true;
}

void Replica::stop_issuing() {
  std::unique_ptr<acme::Issuer> issuer;
  {
    std::lock_guard lock(issuer_mutex_);
    issuer = std::move(issuer_);
  }
  issuer.reset();  // joins its thread, outside the lock (request() must not wait for it)
  tokens_->set_hook({});
  tls::alpn_challenges().set_hook({});
}

bool Replica::remember(std::string_view what,
                       const std::function<bool(Store&, std::string&)>& write) {
  std::lock_guard lock(store_mutex_);
  std::string why;
  if (store_ && write(*store_, why)) return true;
  spdlog::warn("acme: the database did not take {}: {}", what, store_ ? why : "not connected");
  return false;
}

bool Replica::load_memory(acme::IssuerMemory& memory, std::string& error) {
  std::optional<StoredHold> hold;
  std::vector<StoredRenewal> rows;
  std::vector<StoredBackoff> waits;
  if (!store_ || !store_->hold(hold, error) || !store_->renewals(rows, error) ||
      !store_->backoffs(waits, error)) {
    if (!store_) error = "not connected";
    return false;
  }
  if (hold) {
    memory.hold = from_row(*hold);
    if (!memory.hold) spdlog::warn("acme: the database's hold is not usable: ignored");
  }
  for (const StoredRenewal& row : rows) {
    auto state = safe_name(row.name) ? from_row(row) : std::nullopt;
    if (!state) {
      spdlog::warn("acme: the database's renewal info for a name is not usable: ignored");
      continue;
    }
    memory.renewal.emplace(row.name, std::move(*state));
  }
  const auto day_ago = std::chrono::system_clock::now() - std::chrono::hours(24);
  for (const StoredBackoff& row : waits) {
    auto wait = safe_name(row.name) ? from_row(row) : std::nullopt;
    if (wait && wait->not_before < day_ago) {
      // Over for a day (a name no longer wanted, or never ordered again): forgotten.
      if (!store_->erase_backoff(row.name, error)) return false;
      continue;
    }
    if (!wait) {
      spdlog::warn("acme: the database's wait after a failed order is not usable: ignored");
      continue;
    }
    memory.backoff.emplace(row.name, *wait);
  }
  return true;
}

bool Replica::erase_leftover_challenges(std::string& error) {
  std::unordered_map<std::string, std::string> http01;
  std::unordered_map<std::string, std::string> alpn;
  for (auto [kind, rows] : {std::pair{Challenge::Http01, &http01}, {Challenge::TlsAlpn01, &alpn}}) {
    if (!store_->challenges(kind, *rows, error)) return false;
    for (const auto& row : *rows) {
      if (!store_->erase_challenge(kind, row.first, error)) return false;
    }
  }
  if (!http01.empty() || !alpn.empty()) {
    spdlog::info("acme: deleted {} http-01 and {} tls-alpn-01 challenge(s) a previous issuer left",
                 http01.size(), alpn.size());
  }
  return true;
}

bool Replica::load_alpn_challenges(std::string& error) {
  std::unordered_map<std::string, std::string> rows;
  if (!store_->challenges(Challenge::TlsAlpn01, rows, error)) return false;
  std::erase_if(rows, [](const auto& row) { return !safe_name(row.first); });
  std::vector<std::string> added;
  std::string why;
  if (tls::alpn_challenges().set_shared(rows, added, why)) {
    alpn_warned_.clear();
  } else if (why != alpn_warned_) {  // once, not every poll interval
    spdlog::warn("acme: a tls-alpn-01 challenge in the database: {}; not answered", why);
    alpn_warned_ = why;
  }
  for (const std::string& name : added) {
    spdlog::info("acme: answering the tls-alpn-01 challenge for {} from the database", name);
  }
  return true;
}

void Replica::issued(const std::string& name, const std::string& file) {
  const auto pem = read_small_file(file);
  const auto key = read_small_file(file.substr(0, file.size() - 4) + ".key");
  {
    std::lock_guard lock(store_mutex_);
    std::string error;
    std::int64_t version = 0;
    std::string stored;
    if (!pem || !key) {
      spdlog::error("acme: cannot read the certificate for {} to store it", name);
    } else if (!store_ || !to_store(certificate_associated_data(name), *key, stored, error) ||
               !store_->put_certificate({name, *pem, stored, 0}, version, error)) {
      spdlog::warn(
          "acme: the database did not take the certificate for {}: {}; this replica serves it "
          "and tries again",
          name, store_ ? error : "not connected");
      unsaved_.insert(name);
    }
  }
  changed_(file);
}

bool Replica::forward_requests(std::string& error) {
  const auto now = std::chrono::steady_clock::now();
  if (now - minute_start_ >= std::chrono::minutes(1)) {
    minute_start_ = now;
    written_this_minute_ = 0;
  }
  std::vector<std::string> names;
  {
    std::lock_guard lock(outbox_mutex_);
    std::erase_if(forwarded_,
                  [&](const auto& sent) { return now - sent.second >= options_.forward_again; });
    while (!outbox_.empty() && written_this_minute_ + names.size() < options_.forward_per_minute) {
      names.push_back(std::move(outbox_.front()));
      outbox_.pop_front();
    }
  }
  if (names.empty()) return true;
  if (!store_->put_requests(names, error)) {
    std::lock_guard lock(outbox_mutex_);
    outbox_.insert(outbox_.begin(), names.begin(), names.end());  // again after reconnecting
    return false;
  }
  written_this_minute_ += names.size();
  for (const std::string& name : names) {
    spdlog::info("acme: asked the issuing replica for {} (on demand)", name);
  }
  return true;
}

void Replica::hand_to_issuer(std::vector<std::string> names) {
  {
    // Names a handshake asked for just before this replica began to issue.
    std::lock_guard lock(outbox_mutex_);
    names.insert(names.end(), outbox_.begin(), outbox_.end());
    outbox_.clear();
  }
  if (names.empty()) return;
  std::lock_guard lock(issuer_mutex_);
  if (!issuer_) return;
  for (const std::string& name : names) {
    // The same guard as a handshake's, again: the row may be older than a reload, or not
    // written by a replica at all. The name is not logged (it may be anything).
    if (!options_.wanted || !options_.wanted(name)) {
      acme::count_demand(acme::Demand::Refused);
      spdlog::warn("acme: a name asked for through the database is not a wanted name: not ordered");
      continue;
    }
    if (issuer_->request(name) == acme::Demand::Queued) {
      spdlog::info("acme: {} asked for by another replica (on demand): queued", name);
    }
  }
}

bool Replica::to_store(std::string_view associated, const std::string& pem, std::string& stored,
                       std::string& error) const {
  if (options_.key.empty()) return stored = pem, true;
  stored = seal(options_.key, associated, pem);
  if (stored.empty()) return error = "cannot seal a private key (OpenSSL)", false;
  return true;
}

void Replica::on_alpn(const std::string& name, const std::string* digest) {
  share_challenge("a tls-alpn-01 challenge", digest != nullptr, [&](Store& store, std::string& e) {
    return digest ? store.put_challenge(Challenge::TlsAlpn01, name, *digest, e)
                  : store.erase_challenge(Challenge::TlsAlpn01, name, e);
  });
}

void Replica::on_token(const std::string& token, const std::string* answer) {
  share_challenge("a challenge answer", answer != nullptr, [&](Store& store, std::string& e) {
    return answer ? store.put_challenge(Challenge::Http01, token, *answer, e)
                  : store.erase_challenge(Challenge::Http01, token, e);
  });
}

void Replica::share_challenge(std::string_view what, bool put,
                              const std::function<bool(Store&, std::string&)>& write) {
  // Before the CA is told to look: every other replica reads the tables once a poll interval.
  if (remember(what, write) && put) std::this_thread::sleep_for(options_.poll * 3);
}

}  // namespace mailconfd::acme_store
