// One replica's part in the shared ACME storage (<acme dsn-file>): a thread of its own keeps a
// connection to the provider's database and, every poll interval,
//  * while another replica issues: tries the issuer's lock (acme_store/store.h), loads the
//    certificates that are new in the database into STORAGE/certificates (written atomically,
//    0600; the loader and the publisher take them from there, as from the issuer) and copies
//    the pending http-01 answers into acme::Tokens, so the CA may ask this replica;
//  * once it holds the lock: puts the account key in the database (or takes the one there),
//    starts the issuer (acme/issuer.h), which writes each http-01 answer to the database, waits
//    until the other replicas have read it, and then tells the CA; every certificate it issues
//    goes to the database;
//  * while it issues: checks the connection; when it is gone, so is the lock: the issuer stops,
//    and another replica (or this one, reconnected) takes over.
// Nothing here runs on a worker: request threads read only Tokens and the snapshot.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "acme/challenges.h"
#include "acme/issuer.h"
#include "acme_store/store.h"

namespace mailconfd::acme_store {

struct ReplicaOptions {
  bool mariadb = false;  // the driver: MariaDB, else PostgreSQL
  std::string dsn;       // never logged
  std::string storage;   // <acme storage>: account.key and certificates/ on this replica
  std::chrono::milliseconds poll{500};
  std::chrono::seconds reconnect{5};  // after the database failed
};

class Replica {
 public:
  // make_issuer(issued): the issuer to start once this replica holds the lock, which calls
  // issued(name, certificate file) (acme::Issuer's callback). changed(file): a certificate
  // file this replica loaded from the database (or issued), for the publisher; must not block.
  using IssuedCallback = std::function<void(const std::string& name, const std::string& file)>;
  using IssuerFactory = std::function<std::unique_ptr<acme::Issuer>(IssuedCallback issued)>;
  Replica(ReplicaOptions options, std::shared_ptr<acme::Tokens> tokens, IssuerFactory make_issuer,
          std::function<void(const std::string& file)> changed);
  ~Replica();  // stops the issuer and the thread; the lock goes with the connection
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // On demand: to the issuer when this replica issues; nullopt when it does not (the name is
  // queued when a handshake for it reaches the issuing replica). One short lock.
  std::optional<acme::Demand> request(const std::string& name);

 private:
  void run(std::stop_token stop);
  bool load_certificates(std::string& error);  // the ones newer than version_
  bool become_issuer(std::string& error);
  void stop_issuing();
  void issued(const std::string& name, const std::string& file);       // on the issuer's thread
  void on_token(const std::string& token, const std::string* answer);  // likewise

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
  std::mutex wait_mutex_;
  std::condition_variable_any wake_;
  std::jthread thread_;  // last
};

}  // namespace mailconfd::acme_store
