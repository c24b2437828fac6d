#include "fs/pending_files.h"

namespace recall {

void PendingFiles::add(const Place& place, const std::string& raw_name,
                       const std::string& asset_id) {
  std::lock_guard lock(mu_);
  files_[key(place, raw_name)] = asset_id;
}

bool PendingFiles::erase(const Place& place, const std::string& raw_name) {
  std::lock_guard lock(mu_);
  return files_.erase(key(place, raw_name)) > 0;
}

std::optional<std::string> PendingFiles::find(const Place& place,
                                              const std::string& raw_name) const {
  std::lock_guard lock(mu_);
  auto it = files_.find(key(place, raw_name));
  if (it == files_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> PendingFiles::in(const Place& place, bool below) const {
  std::vector<std::string> out;
  const std::string work = place.work_id.value_or("");
  std::lock_guard lock(mu_);
  // Keys sort by work, then folder: the work's entries are one range.
  for (auto it = files_.lower_bound({work, "", ""}); it != files_.end(); ++it) {
    const auto& [w, folder, name] = it->first;
    if (w != work) break;
    bool here = folder == place.folder;
    if (here || (below && (place.folder.empty() || folder.starts_with(place.folder + "/"))))
      out.push_back(it->second);
  }
  return out;
}

}  // namespace recall
