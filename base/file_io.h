// Small, checked wrappers around POSIX file I/O. Every function throws
// recall::Error with the failing call's errno and the path involved.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "base/fd.h"

namespace recall {

// open(2) that retries on EINTR and throws on failure.
UniqueFd open_file(const std::filesystem::path& path, int flags, mode_t mode = 0644);

// Reads until `buf` is full or end of file; returns the bytes read.
size_t read_full(int fd, std::span<std::byte> buf);
// pread until `buf` is full or end of file; returns the bytes read.
size_t pread_full(int fd, std::span<std::byte> buf, uint64_t offset);
// Writes all of `buf` (retrying short writes and EINTR).
void write_full(int fd, std::span<const std::byte> buf);

void fsync_fd(int fd, const std::filesystem::path& what);
// fsync a directory, making the creation, rename or removal of its entries
// durable.
void fsync_dir(const std::filesystem::path& dir);
// mkdir that accepts an existing directory; fsyncs the parent when it created
// one, so the new directory survives a crash.
void make_dir_durable(const std::filesystem::path& dir, mode_t mode = 0755);

struct stat stat_path(const std::filesystem::path& path);
struct stat stat_fd(int fd, const std::filesystem::path& what);

// The whole content of a small file.
std::string read_small_file(const std::filesystem::path& path);
// Writes a small file atomically and durably (temp file, fsync, rename,
// fsync directory) with the given mode.
void write_small_file_durable(const std::filesystem::path& path, std::string_view content,
                              mode_t mode = 0644);

}  // namespace recall
