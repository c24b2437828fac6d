// PendingFiles — new files not committed yet (created and open, no row in
// the catalog), by place and name.
//
// The Vfs changes it together with its open files (under its files_mu_);
// Catalog::apply_remote asks it, holding no Vfs lock, whether a folder or
// work another device removed still holds such a file (then it stays, as
// one holding committed content does). So its lock is a leaf: it calls
// nothing while held. Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "catalog/catalog.h"

namespace recall {

class PendingFiles {
 public:
  void add(const Place& place, const std::string& raw_name, const std::string& asset_id);
  // Whether it was there.
  bool erase(const Place& place, const std::string& raw_name);
  std::optional<std::string> find(const Place& place, const std::string& raw_name) const;
  // Asset ids of the new files in `place` itself, or (`below`) also in its
  // sub-folders (a work's top place: anywhere in the work).
  std::vector<std::string> in(const Place& place, bool below) const;
  bool any_below(const Place& place) const { return !in(place, true).empty(); }

 private:
  using Key = std::tuple<std::string, std::string, std::string>;  // work id or "", folder, name
  static Key key(const Place& place, const std::string& raw_name) {
    return {place.work_id.value_or(""), place.folder, raw_name};
  }
  mutable std::mutex mu_;
  std::map<Key, std::string> files_;  // -> asset id
};

}  // namespace recall
