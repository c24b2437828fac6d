#include "sync/cloud_config.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/file_io.h"

namespace recall {
namespace fs = std::filesystem;

namespace {
fs::path path_of(const fs::path& data_dir) { return data_dir / "cloud.json"; }
}  // namespace

std::optional<S3Config> load_cloud_config(const fs::path& data_dir) {
  std::error_code ec;
  if (!fs::exists(path_of(data_dir), ec)) return std::nullopt;
  try {
    auto j = nlohmann::json::parse(read_small_file(path_of(data_dir)));
    S3Config c;
    c.endpoint = j.at("endpoint").get<std::string>();
    c.bucket = j.at("bucket").get<std::string>();
    c.region = j.value("region", "us-east-1");
    c.access_key = j.at("access_key").get<std::string>();
    c.secret_key = j.at("secret_key").get<std::string>();
    c.prefix = j.value("prefix", "recallfs");
    c.stall_seconds = j.value("stall_seconds", 15);
    return c;
  } catch (const nlohmann::json::exception&) {
    throw Error(EUCLEAN,
                quote(path_of(data_dir).string()) + " is damaged; run recallfs cloud set again");
  }
}

void save_cloud_config(const fs::path& data_dir, const S3Config& c) {
  nlohmann::json j = {
      {"endpoint", c.endpoint},          {"bucket", c.bucket},         {"region", c.region},
      {"access_key", c.access_key},      {"secret_key", c.secret_key}, {"prefix", c.prefix},
      {"stall_seconds", c.stall_seconds}};
  write_small_file_durable(path_of(data_dir), j.dump(2) + "\n", 0600);
}

void remove_cloud_config(const fs::path& data_dir) {
  if (::unlink(path_of(data_dir).c_str()) != 0 && errno != ENOENT)
    throw_last_errno("remove " + quote(path_of(data_dir).string()));
}

}  // namespace recall
