// Whether and where this device serves its blobs to the account's other
// devices: DATA/peer.json, {"listen": "host:port", "advertise": "host:port"}.
// `advertise` (default: the bound address) is what other devices connect to,
// recorded in the account's devices.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace recall {

struct PeerConfig {
  std::string listen;
  std::string advertise;
};

std::optional<PeerConfig> load_peer_config(const std::filesystem::path& data_dir);
void save_peer_config(const std::filesystem::path& data_dir, const PeerConfig& c);
void remove_peer_config(const std::filesystem::path& data_dir);

}  // namespace recall
