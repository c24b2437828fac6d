#include "sync/peer_config.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/file_io.h"

namespace recall {
namespace fs = std::filesystem;

std::optional<PeerConfig> load_peer_config(const fs::path& data_dir) {
  std::error_code ec;
  fs::path p = data_dir / "peer.json";
  if (!fs::exists(p, ec)) return std::nullopt;
  try {
    auto j = nlohmann::json::parse(read_small_file(p));
    return PeerConfig{j.at("listen").get<std::string>(), j.value("advertise", "")};
  } catch (const nlohmann::json::exception&) {
    throw Error(EUCLEAN, quote(p.string()) + " is damaged; run recallfs peer set again");
  }
}

void save_peer_config(const fs::path& data_dir, const PeerConfig& c) {
  nlohmann::json j = {{"listen", c.listen}, {"advertise", c.advertise}};
  write_small_file_durable(data_dir / "peer.json", j.dump(2) + "\n", 0644);
}

void remove_peer_config(const fs::path& data_dir) {
  if (::unlink((data_dir / "peer.json").c_str()) != 0 && errno != ENOENT)
    throw_last_errno("remove peer.json");
}

}  // namespace recall
