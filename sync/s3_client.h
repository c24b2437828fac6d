// S3Client — the S3 API calls recallfs needs, over libcurl with its built-in
// AWS SigV4 signing. Path-style URLs (endpoint/bucket/key); every request
// sends x-amz-content-sha256 (the body's SHA-256, computed here) and query
// strings sorted and percent-encoded, which curl 7.88's signer leaves to us.
//
// Retries: 5xx, timeouts, resets and stalls (< 1 KiB/s for stall_seconds) are retried
// with exponential backoff and jitter, up to `attempts` times; then ENOTCONN
// when the last attempt got no answer (refused, timed out, stalled, reset),
// EIO when it got a 5xx. 404 is ENOENT, 403 EACCES ("check the keys"), other
// 4xx EINVAL, with the server's error code in the message. The secret key
// never appears in a message. A request can be ended while it runs or
// waits to retry: a stream's sink saying stop (see get_stream), or the flag
// given to cancel_when (ECANCELED).
//
// Not thread-safe: one client per thread (it keeps its connection).
#pragma once

#include <curl/curl.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace recall {

struct S3Config {
  std::string endpoint;  // "http://127.0.0.1:9000"
  std::string bucket;
  std::string region = "us-east-1";
  std::string access_key;
  std::string secret_key;
  std::string prefix = "recallfs";  // keys are <prefix>/<owner_id>/<sha256>
  int attempts = 6;
  int stall_seconds = 15;  // a transfer below 1 KiB/s this long is retried
};

struct S3Part {
  int number = 0;
  std::string etag;
  uint64_t size = 0;
};

class S3Client {
 public:
  // A 403 answered by a server whose clock is this far from this device's
  // is put down to the clock (S3 allows 15 minutes).
  static constexpr int64_t kSkewedClock = 10 * 60;

  explicit S3Client(S3Config config);
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  const S3Config& config() const { return config_; }
  // From now on, a request under way or waiting to retry when `*flag` turns
  // true ends within about a second with ECANCELED (an unmount does not
  // wait out a silent server's stall timeouts and retries). `flag` must
  // outlive the client, or be replaced (nullptr: never).
  void cancel_when(const std::atomic<bool>* flag) { cancel_ = flag; }
  std::string key_for(const std::string& owner_id, const std::string& sha256) const;

  // Creates the bucket; succeeds when it exists and is ours.
  void create_bucket();
  // Size of an object, or nullopt when there is none.
  std::optional<uint64_t> head(const std::string& key);
  // Uploads [offset, offset + size) of the file at `fd` as one object.
  void put(const std::string& key, int fd, uint64_t offset, uint64_t size);
  // Reads [offset, offset + buf.size()) of an object; returns the bytes read.
  size_t get_range(const std::string& key, uint64_t offset, std::span<std::byte> buf);
  // Streams [offset, offset + length) of an object to `sink` as it arrives.
  // A retry after a cut asks only for the rest: `sink` never sees a byte
  // twice. `sink` returning false stops the transfer (no error); while
  // nothing arrives it is given an empty piece about once a second, so that
  // it can.
  void get_stream(const std::string& key, uint64_t offset, uint64_t length,
                  const std::function<bool(std::span<const std::byte>)>& sink);
  void remove(const std::string& key);

  // Multipart upload.
  std::string create_multipart(const std::string& key);
  std::string upload_part(const std::string& key, const std::string& upload_id, int number, int fd,
                          uint64_t offset, uint64_t size);
  // Parts already uploaded (to resume an interrupted upload). ENOENT when the
  // upload is gone (completed, aborted or expired).
  std::vector<S3Part> list_parts(const std::string& key, const std::string& upload_id);
  void complete_multipart(const std::string& key, const std::string& upload_id,
                          const std::vector<S3Part>& parts);
  void abort_multipart(const std::string& key, const std::string& upload_id);

 private:
  struct Request;
  struct Response {
    long status = 0;
    std::string body;
    std::string etag;
    std::optional<uint64_t> content_length;
    std::optional<int64_t> server_time;  // its Date header, in Unix seconds
  };
  Response perform(Request& r);
  std::string url(const std::string& key,
                  const std::vector<std::pair<std::string, std::string>>& query) const;
  [[noreturn]] void fail(const Response& r, const std::string& what) const;

  S3Config config_;
  const std::atomic<bool>* cancel_ = nullptr;
  struct CurlFree {
    void operator()(CURL* c) const noexcept { curl_easy_cleanup(c); }
  };
  std::unique_ptr<CURL, CurlFree> curl_;
};

// The canonical (sorted, RFC 3986-encoded) query string SigV4 signs.
std::string canonical_query(std::vector<std::pair<std::string, std::string>> query);
std::string uri_encode(const std::string& s, bool keep_slash);

}  // namespace recall
