// The tables that sync, their columns and types: one definition used by the
// outbox triggers (schema.cpp), the server schema and the push and pull code
// (sync/), so that what is queued, stored and applied always agrees.
#pragma once

#include <string_view>
#include <vector>

namespace recall {

struct SyncedColumn {
  enum class Type { Text, Uuid, Int, Json, Blob };
  const char* name;
  Type type;
};

struct SyncedTable {
  const char* name;
  const char* key;  // the primary key column (per account on the server)
  std::vector<SyncedColumn> columns;
  // Last writer wins on this column (milliseconds); nullptr: fill-in only.
  const char* version;
};

// In the order rows are applied: works before what lives in them.
const std::vector<SyncedTable>& synced_tables();
// EINVAL for a table that does not sync.
const SyncedTable& synced_table(std::string_view name);

}  // namespace recall
