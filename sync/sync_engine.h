// SyncEngine — moves a signed-in library's rows to and from the server.
//
//   push     the outbox, oldest first, in batches: per table one upsert
//            statement (ON CONFLICT, last writer wins on updated_ms; for an
//            asset, on each group of columns: content, place, attributes,
//            each with its own time; an upsert brings a deleted row back,
//            an asset only with other content) and one tombstoning UPDATE
//            (applied only if the server's row is not newer than the one
//            the deleter saw; for assets, if its content is the one the
//            deleter saw, and their links go too). An edit of an asset's
//            content made apart from another device's (its content_base is
//            not the server's content) keeps the older version in a
//            conflicted copy next to it; the rows of such edits are locked
//            first, so that two pushes that meet see each other's. A batch
//            is one server transaction; its outbox rows go only after it
//            commits, so a failure anywhere loses nothing and a retry
//            applies nothing twice. An asset row naming bytes this device
//            does not hold is taken only while a holder has them (see
//            confirm_drops); a link only to an asset the server has.
//   pull     rows with (txid, rev) above the cursor and below the oldest
//            running transaction (so no commit is skipped), applied to the
//            catalog without echoing them into the outbox; and the rows this
//            device pushed that the server did not take whole, read back
//            (Catalog::rechecks): this device takes the version it kept. A
//            pulled row naming what is not here is read back next time.
//   upgrade  the first sign-in of a library: pull the account's library,
//            merge (works by title, assets by (work, sha256)), push. Every
//            step is idempotent: killed anywhere and run again, it ends in
//            the same state.
//
// Every server transaction presents the session token
// (set_config('recall.token', ..., true)); row-level security does the rest.
// Not thread-safe: one engine per thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "catalog/catalog.h"
#include "fs/library.h"
#include "sync/credentials.h"
#include "sync/pg.h"

namespace recall {

struct SyncProgress {
  std::string stage;  // "pull", "merge", "push"
  uint64_t done = 0, total = 0;
};

class SyncEngine {
 public:
  SyncEngine(Library& lib, Credentials creds);

  // Connects and checks the token. ENOTCONN when the server is unreachable,
  // EACCES when it refuses the token (unknown or expired).
  void connect();
  bool connected() const { return conn_.ok(); }
  // A statement under way when `*flag` turns true is given up (ECANCELED,
  // see PgConn::cancel_when): the caller is stopping.
  void cancel_when(const std::atomic<bool>* flag) {
    cancel_ = flag;
    conn_.cancel_when(flag);
  }
  void disconnect() { conn_ = PgConn(); }
  // How long the server may be silent in the middle of a statement before
  // the connection is given up (ETIMEDOUT; see PgConn::set_answer_timeout).
  void set_answer_timeout(std::chrono::milliseconds t) {
    answer_timeout_ = t;
    conn_.set_answer_timeout(t);
  }

  struct Account {
    std::string id, name;
  };
  Account account();
  // Records this device (id, name, last seen, the address it serves peers
  // on) in the account's devices.
  void register_device(const std::optional<std::string>& peer_address = std::nullopt);
  // Takes this device's peer address out of the account's devices (it is
  // stopping), so the other devices no longer ask it for bytes, each waiting
  // out a refused or unanswered connection before the next holder.
  void withdraw_peer_address();
  // The account's peer key, hex (readable by the account only).
  std::string peer_key();

  // Pushes the whole outbox; returns the rows pushed.
  size_t push(const std::function<void(const SyncProgress&)>& progress = {});
  Catalog::ApplyReport pull();
  // Of bytes this device is about to drop (no local file names them), those
  // no live row of the account names: marked no longer held here on the
  // server, under locks that a push naming bytes its device does not hold
  // takes too. So either that push finds this device still holding them,
  // or it is not taken (and read back); the bytes are never named by a row
  // while no holder has them.
  std::set<std::string> confirm_drops(const std::vector<std::string>& shas);
  // Readies a sign-in to the account of this engine's credentials, before
  // upgrade(): it merges again what was made while signed out (works by
  // title), and when the library last synced with another account (or one
  // not known; `previous`: the credentials it had, if any), sync starts over
  // for this one: the whole library is pushed to it, the account's rows
  // are all pulled, and the old account's holders are forgotten. Before,
  // a library signed out and in to another account pushed only what
  // changed since and pulled nothing of the account's older rows.
  void prepare_sign_in(const std::optional<Credentials>& previous);
  // The first sign-in; a no-op once done.
  void upgrade(const std::function<void(const SyncProgress&)>& progress = {});
  bool upgraded();

  // LISTEN on the account's channel; socket() to poll; notified() drains.
  void listen();
  int socket() const { return conn_.socket(); }
  bool notified();

 private:
  // Whether this device holds the bytes an asset's outbox payload names.
  bool holds_bytes_of(const std::string& payload);
  static std::optional<std::string> edited_content(const std::string& payload);
  // Starts a transaction as the account; EACCES if the token is refused.
  void present_token();
  void merge_into_account(const std::function<void(const SyncProgress&)>& progress);

  Library& lib_;
  Credentials creds_;
  PgConn conn_;
  std::chrono::milliseconds answer_timeout_ = PgConn::kAnswerTimeout;
  const std::atomic<bool>* cancel_ = nullptr;
};

// Keys of the catalog's meta table used by sync.
inline constexpr const char* kMetaPullTxid = "sync.pull_txid";
inline constexpr const char* kMetaPullRev = "sync.pull_rev";
inline constexpr const char* kMetaUpgraded = "sync.upgraded_ms";
inline constexpr const char* kMetaLastPush = "sync.last_push_ms";
inline constexpr const char* kMetaLastPull = "sync.last_pull_ms";
inline constexpr const char* kMetaLastError = "sync.last_error";
inline constexpr const char* kMetaAccount = "sync.account_id";  // whose rows were pulled

}  // namespace recall
