#include "cas/blob_info.h"

#include <cstring>

#include "base/error.h"

namespace recall {

std::string_view to_string(Health h) {
  switch (h) {
    case Health::Healthy:
      return "healthy";
    case Health::Missing:
      return "missing";
    case Health::Modified:
      return "modified";
    case Health::Relocated:
      return "relocated";
  }
  return "unknown";
}

Health health_from_string(std::string_view s) {
  if (s == "healthy") return Health::Healthy;
  if (s == "missing") return Health::Missing;
  if (s == "modified") return Health::Modified;
  if (s == "relocated") return Health::Relocated;
  throw Error(EINVAL, "unknown health " + quote(s));
}

std::vector<unsigned char> ChunkManifest::packed() const {
  std::vector<unsigned char> out;
  out.reserve(chunks.size() * 32);
  for (const Digest& d : chunks) out.insert(out.end(), d.begin(), d.end());
  return out;
}

ChunkManifest ChunkManifest::unpack(uint64_t chunk_size, const std::vector<unsigned char>& bytes) {
  if (bytes.size() % 32 != 0) throw Error(EUCLEAN, "chunk manifest has a partial digest");
  ChunkManifest m;
  m.chunk_size = chunk_size;
  m.chunks.resize(bytes.size() / 32);
  for (size_t i = 0; i < m.chunks.size(); ++i) std::memcpy(m.chunks[i].data(), &bytes[i * 32], 32);
  return m;
}

}  // namespace recall
