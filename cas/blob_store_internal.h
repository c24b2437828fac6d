// Shared by blob_store.cpp and blob_check.cpp. Not part of the API.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "base/sha256.h"

namespace recall::cas_detail {

inline constexpr size_t kIoBuffer = 1 << 20;  // reads while hashing
inline constexpr size_t kPageRows = 256;      // index rows listed per page

// EINVAL unless `sha256` is 64 lowercase hex digits.
void require_sha(const std::string& sha256);
// Moves `from` to `to` unless `to` exists. Returns false when it exists.
bool rename_noreplace(const std::filesystem::path& from, const std::filesystem::path& to);
// Removes every entry of a flat directory (leftover temp files).
void empty_dir(const std::filesystem::path& dir);
// SHA-256 of [offset, offset + length) of `fd`, read through `buf`; adds
// the bytes read to `progress` when given. A short file gives the digest of
// what is there (which then does not match).
Digest hash_fd(int fd, uint64_t offset, uint64_t length, std::vector<std::byte>& buf,
               std::atomic<uint64_t>* progress);

}  // namespace recall::cas_detail
