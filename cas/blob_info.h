// What the byte store knows about one object.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/sha256.h"
#include "cas/content_info.h"

namespace recall {

// The health of an indexed object, as the last verify or scan saw it.
enum class Health {
  Healthy,    // present, and its bytes matched its name when last checked
  Missing,    // indexed, but the file is gone from objects/
  Modified,   // its bytes no longer match its name; moved to quarantine/
  Relocated,  // found by scan outside its place and moved back; not yet re-hashed
};

std::string_view to_string(Health h);
// Throws EINVAL for an unknown name.
Health health_from_string(std::string_view s);

struct BlobInfo {
  std::string sha256;
  uint64_t size = 0;
  int64_t created_ms = 0;
  Health health = Health::Healthy;
  std::optional<int64_t> checked_ms;  // last time verify re-hashed it
  ContentInfo content;
};

// One SHA-256 per fixed-size chunk of an object (the last chunk may be short),
// so that a transfer can verify each chunk before serving it.
struct ChunkManifest {
  uint64_t chunk_size = 0;
  std::vector<Digest> chunks;

  bool operator==(const ChunkManifest&) const = default;
  // The chunks, concatenated: 32 bytes each.
  std::vector<unsigned char> packed() const;
  // Throws EUCLEAN when `bytes` is not a whole number of digests.
  static ChunkManifest unpack(uint64_t chunk_size, const std::vector<unsigned char>& bytes);
};

constexpr uint64_t kDefaultChunkSize = 4ull << 20;

}  // namespace recall
