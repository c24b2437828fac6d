// Sha256 — streaming SHA-256 over OpenSSL's EVP interface (which uses the
// CPU's SHA extensions when present). Not thread-safe; one per stream.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace recall {

using Digest = std::array<unsigned char, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void update(std::span<const std::byte> data);
  void update(std::string_view data) { update(std::as_bytes(std::span(data))); }
  // Returns the digest and resets the hasher for a new stream.
  Digest finish();
  // The digest of what was hashed so far, leaving the stream open.
  Digest peek() const;

 private:
  struct CtxFree {
    void operator()(evp_md_ctx_st* c) const noexcept;
  };
  std::unique_ptr<evp_md_ctx_st, CtxFree> ctx_;
};

// The SHA-256 of no bytes (an empty file's blob).
inline constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// Lower-case hex of a digest (64 characters).
std::string to_hex(const Digest& d);
std::string to_hex(std::span<const unsigned char> bytes);
// True when `s` is 64 lower-case hex digits, the only form of a blob name.
bool is_sha256_hex(std::string_view s);
// The digest `s` names when is_sha256_hex(s), else nullopt.
std::optional<Digest> digest_of_hex(std::string_view s);
// SHA-256 of a string, as hex.
std::string sha256_hex(std::string_view data);

}  // namespace recall
