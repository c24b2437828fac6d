// The SQL statements SyncEngine sends to the server for a synced table, and
// what they take: the rules of push and pull live here (README, "Accounts
// and sync"). Every statement acts only on the rows of the account whose
// token the session presented (recall.current_owner()); $1 is a JSON array.
// Pure functions: nothing here talks to the server.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "catalog/synced_tables.h"

namespace recall::sync_statements {

// Locks the server's rows of the asset rows in $1 (a JSON array of rows), in
// id order, until the transaction ends: the upsert that follows then sees
// them as another device's push left them, not as they were when that push
// began (upsert_sql tells edits made apart by the server's content; two
// pushes that met in the middle would each see the content before both).
std::string lock_assets_sql();

// Upserts a batch of rows ($1), last writer wins (per column group for an
// asset); returns the key of each row taken (an asset's with its three
// group stamps). `held_elsewhere`: asset rows naming bytes their device
// does not hold, taken only while a holder has them. Brings back a removed
// work that a pushed row lives in, and the links removed with a file an
// edit brings back. `edits`: asset rows among them carry edits of their
// content, and one made apart from another device's keeps the older
// version in a conflicted copy.
std::string upsert_sql(const SyncedTable& t, bool held_elsewhere = false, bool edits = false);
// The group stamps an asset row was pushed with, as upsert_sql returns
// them ("" for none), read from its JSON payload.
std::array<std::string_view, 3> asset_stamps_sent(std::string_view payload);
// Tombstones a batch of rows ($1) where the server has the version the
// deleter saw or older; returns the keys taken.
std::string delete_sql(const SyncedTable& t);
// The rows changed after a cursor: $1 txid, $2 rev, below $3 (the oldest
// running transaction), in commit order.
std::string pull_sql(const SyncedTable& t);
// Advisory locks per (account, sha256): shared for a push's asset rows
// ($1: rows), exclusive for a holder's drop ($1: sha256 strings).
std::string lock_bytes_sql(bool exclusive);
// The server's rows for the keys in $1 (objects holding the key), in
// pull_sql's columns.
std::string recheck_sql(const SyncedTable& t);

}  // namespace recall::sync_statements
