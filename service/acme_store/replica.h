// One replica's part in the shared ACME storage (<acme dsn-file>): a thread of its own keeps a
// connection to the provider's database and, every poll interval,
//  * while another replica issues: tries the issuer's lock (acme_store/store.h), loads the
//    certificates that are new in the database into STORAGE/certificates (written atomically,
//    0600; the loader and the publisher take them from there, as from the issuer) and copies
//    the pending http-01 answers into acme::Tokens and the pending tls-alpn-01 digests into
//    tls::alpn_challenges() (which makes the validation certificate), so the CA may ask this
//    replica;
//  * once it holds the lock: puts the account key in the database (or takes the one there),
//    reads what the previous issuer learnt from the CA (its hold after a 429 or a failure, the
//    renewalInfo answers: acme_store/memory.h) and starts the issuer (acme/issuer.h) with it;
//    the issuer writes each http-01 answer and tls-alpn-01 digest to the database, waits until
//    the other replicas have read it, and then tells the CA; every certificate it issues, every
//    hold and every renewalInfo answer goes to the database;
//  * while it issues: checks the connection; when it is gone, so is the lock: the issuer stops,
//    and another replica (or this one, reconnected) takes over;
//  * on demand: a replica that does not issue hands a wanted name (the caller checked it) to
//    the issuer through mailconfd_acme_request: request() only puts it in a bounded outbox,
//    this thread writes it (at most forward_per_minute names a minute, each name again only
//    after forward_again); the issuing replica takes the rows every poll interval, checks
//    each name with wanted() again, queues it in its issuer and deletes the row (rows older
//    than request_lifetime are deleted unread). The certificate then comes to every replica
//    like any other.
// Nothing here runs on a worker: request threads read only Tokens and the snapshot.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "acme/challenges.h"
#include "acme/issuer.h"
#include "acme_store/store.h"

namespace mailconfd::acme_store {

struct ReplicaOptions {
  bool mariadb = false;  // the driver: MariaDB, else PostgreSQL
  std::string dsn;       // never logged
  std::string storage;   // <acme storage>: account.key and certificates/ on this replica
  // <acme key-file>'s 32 bytes: private keys go to the database sealed (acme_store/sealed.h),
  // plain rows of the previous release are read and written back sealed. Empty: as PEM.
  std::string key;  // never logged
  std::chrono::milliseconds poll{500};
  std::chrono::seconds reconnect{5};  // after the database failed
  // On demand (see above): whether the issuing replica may order a name taken from the
  // database (the same guard as a handshake's); safe from this replica's thread.
  std::function<bool(const std::string& name)> wanted;
  std::size_t max_forward = 1'000;          // names waiting in the outbox
  std::size_t forward_per_minute = 100;     // rows this replica writes a minute
  std::chrono::seconds forward_again{600};  // before the same name is written again
  std::chrono::seconds request_lifetime{3600};
  std::size_t take_per_poll = 1'000;  // rows the issuer takes each poll interval
};

class Replica {
 public:
  // make_issuer(issued): the issuer to start once this replica holds the lock, which calls
  // issued(name, certificate file) (acme::Issuer's callback). changed(file): a certificate
  // file this replica loaded from the database (or issued), for the publisher; must not block.
  using IssuedCallback = std::function<void(const std::string& name, const std::string& file)>;
  // memory: what the previous issuer learnt, with the callbacks that store what this one learns
  // (for IssuerOptions::memory).
  using IssuerFactory = std::function<std::unique_ptr<acme::Issuer>(IssuedCallback issued,
                                                                    acme::IssuerMemory memory)>;
  Replica(ReplicaOptions options, std::shared_ptr<acme::Tokens> tokens, IssuerFactory make_issuer,
          std::function<void(const std::string& file)> changed);
  ~Replica();  // stops the issuer and the thread; the lock goes with the connection
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // On demand, for a wanted name: to the issuer when this replica issues; else to the
  // outbox for the issuing replica (Forwarded; Known when it was sent less than
  // forward_again ago; Full when the outbox is full). Counted (acme::count_demand). Never
  // waits for the database: two short locks.
  acme::Demand request(const std::string& name);

 private:
  void run(std::stop_token stop);
  bool load_certificates(std::string& error);  // the ones newer than version_
  // pem as it goes to the database: sealed when there is a key. False with error.
  bool to_store(std::string_view associated, const std::string& pem, std::string& stored,
                std::string& error) const;
  bool become_issuer(std::string& error);
  void stop_issuing();
  void issued(const std::string& name, const std::string& file);       // on the issuer's thread
  void on_token(const std::string& token, const std::string* answer);  // likewise
  void on_alpn(const std::string& name, const std::string* digest);    // likewise
  // A row written or deleted through WRITE under store_mutex_; false, and logged as "the
  // database did not take WHAT", when it failed.
  bool remember(std::string_view what, const std::function<bool(Store&, std::string&)>& write);
  // A challenge row through remember; after a write (put), waits until the others have read it.
  void share_challenge(std::string_view what, bool put,
                       const std::function<bool(Store&, std::string&)>& write);
  // What the previous issuer stored (store_mutex_ held). False with error.
  bool load_memory(acme::IssuerMemory& memory, std::string& error);
  // Deletes the challenge rows a previous issuer left (it died mid-order, and its orders with
  // it): nobody finishes them, and every replica would go on answering them (store_mutex_
  // held). False with error.
  bool erase_leftover_challenges(std::string& error);
  // The shared tls-alpn-01 challenges to tls::alpn_challenges() (store_mutex_ held).
  bool load_alpn_challenges(std::string& error);
  // The outbox's names to the database, within the rate bound (store_mutex_ held).
  bool forward_requests(std::string& error);
  // The issuer's side: the requests taken from the database (and this replica's outbox) to
  // the issuer, each checked with wanted().
  void hand_to_issuer(std::vector<std::string> names);

  ReplicaOptions options_;
  std::shared_ptr<acme::Tokens> tokens_;
  IssuerFactory make_issuer_;
  std::function<void(const std::string&)> changed_;
  std::mutex store_mutex_;  // the connection: the replica's thread and the issuer's
  std::unique_ptr<Store> store_;
  std::mutex issuer_mutex_;
  std::unique_ptr<acme::Issuer> issuer_;
  std::set<std::string> unsaved_;  // issued names the database did not take yet (store_mutex_)
  std::int64_t version_ = 0;       // the newest certificate version loaded
  std::string alpn_warned_;        // the last unusable tls-alpn-01 row logged (this thread)
  std::mutex outbox_mutex_;
  std::deque<std::string> outbox_;  // on-demand names for the issuing replica
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> forwarded_;  // when
  std::chrono::steady_clock::time_point minute_start_{};  // the rate bound's window
  std::size_t written_this_minute_ = 0;
  std::mutex wait_mutex_;
  std::condition_variable_any wake_;
  std::jthread thread_;  // last
};

}  // namespace mailconfd::acme_store
