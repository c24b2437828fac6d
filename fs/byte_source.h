// Where the bytes of a blob that is not on this device can come from: the
// narrow seam between the file system (which verifies and stores them) and
// the network code in sync/ (peers, the cloud). Test doubles plug in here
// to inject faults (a holder that sends bad bytes, one that never answers).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"

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

  // Streams [offset, offset + length) of the blob to `sink` as the bytes
  // arrive, in pieces of any size and in order; one request for many chunks
  // is what makes a sequential read fast. `sink` returns false to stop early
  // (stream then returns). While nothing arrives (a holder gone silent, a
  // wait before a retry), `sink` is also given an empty piece about once a
  // second, so that it can stop a stream that would otherwise last until
  // the source's stall timeout. Throws recall::Error when the source fails
  // or ends short; the bytes already given to `sink` stay given. The default
  // reads 4 MiB pieces with read().
  using Sink = std::function<bool(std::span<const std::byte>)>;
  virtual void stream(const std::string& sha256, uint64_t offset, uint64_t length,
                      const Sink& sink);
};

inline void ByteSource::stream(const std::string& sha256, uint64_t offset, uint64_t length,
                               const Sink& sink) {
  std::vector<std::byte> buf(static_cast<size_t>(std::min<uint64_t>(length, 4u << 20)));
  for (uint64_t done = 0; done < length;) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), length - done));
    size_t got = read(sha256, offset + done, std::span(buf.data(), want));
    if (got == 0) throw Error(EIO, name() + " ended short");
    if (!sink(std::span<const std::byte>(buf.data(), got))) return;
    done += got;
  }
}

// Finds the holders of a blob, best first. Thread-safe.
class SourceProvider {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~SourceProvider() = default;
  // Every holder of the blob that is configured, best first (empty: nobody
  // can serve it, e.g. a guest).
  virtual std::vector<std::shared_ptr<ByteSource>> sources_for(const std::string& sha256) = 0;
  // Tells the provider which source served a blob, so it is tried first next time.
  virtual void worked(const std::string& /*sha256*/, const ByteSource& /*source*/) {}
  // Tells the provider that a source asked at `asked_at` failed with `error`
  // (an errno; ENOTCONN: it did not answer), so that it may rest it.
  virtual void failed(const std::string& /*sha256*/, const ByteSource& /*source*/, int /*error*/,
                      Clock::time_point /*asked_at*/) {}
  // Whether a source is resting (it did not answer a moment ago): readers
  // skip it rather than wait out its timeouts again.
  virtual bool resting(const ByteSource& /*source*/) { return false; }
};

}  // namespace recall
