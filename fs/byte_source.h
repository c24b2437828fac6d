// Where the bytes of a blob that is not on this device can come from: the
// narrow seam between the file system (which verifies and stores them) and
// the network code in sync/ (peers, the cloud). Test doubles plug in here
// to inject faults (a holder that sends bad bytes, one that never answers).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace recall {

// One holder of blobs. Implementations are thread-safe.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // For messages: "cloud", "peer laptop".
  virtual std::string name() const = 0;
  // Reads [offset, offset + buf.size()) of the blob; returns the bytes read
  // (fewer only at its end). Throws recall::Error when it cannot.
  virtual size_t read(const std::string& sha256, uint64_t offset, std::span<std::byte> buf) = 0;
};

// Finds the holders of a blob, best first. Thread-safe.
class SourceProvider {
 public:
  virtual ~SourceProvider() = default;
  virtual std::vector<std::shared_ptr<ByteSource>> sources_for(const std::string& sha256) = 0;
  // Tells the provider which source served a blob, so it is tried first next time.
  virtual void worked(const std::string& /*sha256*/, const ByteSource& /*source*/) {}
};

}  // namespace recall
