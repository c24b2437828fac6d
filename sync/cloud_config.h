// Where a library's bytes go in the cloud: an S3-compatible endpoint,
// bucket, region and keys, in DATA/cloud.json (mode 0600; the secret key is
// never printed).
#pragma once

#include <filesystem>
#include <optional>

#include "sync/s3_client.h"

namespace recall {

std::optional<S3Config> load_cloud_config(const std::filesystem::path& data_dir);
void save_cloud_config(const std::filesystem::path& data_dir, const S3Config& c);
void remove_cloud_config(const std::filesystem::path& data_dir);

}  // namespace recall
