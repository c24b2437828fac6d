#include "sync/credentials.h"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/file_io.h"

namespace recall {
namespace fs = std::filesystem;

fs::path credentials_path(const fs::path& data_dir) { return data_dir / "credentials.json"; }

std::optional<Credentials> load_credentials(const fs::path& data_dir) {
  fs::path p = credentials_path(data_dir);
  std::error_code ec;
  if (!fs::exists(p, ec)) return std::nullopt;
  try {
    auto j = nlohmann::json::parse(read_small_file(p));
    Credentials c;
    c.server = j.at("server").get<std::string>();
    c.token = j.at("token").get<std::string>();
    c.account_id = j.value("account_id", "");
    c.account_name = j.value("account_name", "");
    c.device_name = j.value("device_name", "");
    c.signed_in_ms = j.value("signed_in_ms", int64_t{0});
    c.peer_key = j.value("peer_key", "");
    return c;
  } catch (const nlohmann::json::exception&) {
    throw Error(EUCLEAN, quote(p.string()) + " is damaged; sign in again");
  }
}

void save_credentials(const fs::path& data_dir, const Credentials& c) {
  nlohmann::json j = {{"server", c.server},           {"token", c.token},
                      {"account_id", c.account_id},   {"account_name", c.account_name},
                      {"device_name", c.device_name}, {"signed_in_ms", c.signed_in_ms},
                      {"peer_key", c.peer_key}};
  write_small_file_durable(credentials_path(data_dir), j.dump(2) + "\n", 0600);
}

void remove_credentials(const fs::path& data_dir) {
  fs::path p = credentials_path(data_dir);
  if (::unlink(p.c_str()) != 0 && errno != ENOENT) throw_last_errno("remove " + quote(p.string()));
  fsync_dir(data_dir);
}

}  // namespace recall
