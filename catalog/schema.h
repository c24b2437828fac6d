// The catalog's SQLite schema and its migrations.
//
// Versioned with PRAGMA user_version: migration i takes the schema from
// version i to i+1, inside the same transaction that sets the new version.
#pragma once

#include "base/sqlite.h"

namespace recall {

inline constexpr int kCatalogSchemaVersion = 6;

// Brings `db` to kCatalogSchemaVersion. EUCLEAN when the file is newer than
// this program.
void migrate_catalog(Db& db);

// SQL that queues every synced row (not local_only) in the outbox, as an
// upsert of the row as it is now: the whole library, pushed again.
std::string queue_every_row_sql();

// A SQL condition: whether a row at (`work`, `folder`), SQL expressions for
// a work id (NULL: the inbox) and a folder path, lies in a pinned place
// (Catalog::pin_place).
std::string in_pinned_place_sql(const std::string& work, const std::string& folder);

}  // namespace recall
