#include "base/file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include "base/error.h"

namespace recall {

UniqueFd open_file(const std::filesystem::path& path, int flags, mode_t mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) throw_last_errno("open " + quote(path.string()));
  return UniqueFd(fd);
}

size_t read_full(int fd, std::span<std::byte> buf) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::read(fd, buf.data() + done, buf.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_last_errno("read");
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

size_t pread_full(int fd, std::span<std::byte> buf, uint64_t offset) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n =
        ::pread(fd, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_last_errno("pread");
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

void write_full(int fd, std::span<const std::byte> buf) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::write(fd, buf.data() + done, buf.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_last_errno("write");
    }
    done += static_cast<size_t>(n);
  }
}

void fsync_fd(int fd, const std::filesystem::path& what) {
  if (::fsync(fd) != 0) throw_last_errno("fsync " + quote(what.string()));
}

void fsync_dir(const std::filesystem::path& dir) {
  UniqueFd fd = open_file(dir, O_RDONLY | O_DIRECTORY);
  fsync_fd(fd.get(), dir);
}

void make_dir_durable(const std::filesystem::path& dir, mode_t mode) {
  if (::mkdir(dir.c_str(), mode) == 0) {
    fsync_dir(dir.parent_path().empty() ? "." : dir.parent_path());
    return;
  }
  if (errno != EEXIST) throw_last_errno("mkdir " + quote(dir.string()));
}

struct stat stat_path(const std::filesystem::path& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) throw_last_errno("stat " + quote(path.string()));
  return st;
}

struct stat stat_fd(int fd, const std::filesystem::path& what) {
  struct stat st;
  if (::fstat(fd, &st) != 0) throw_last_errno("fstat " + quote(what.string()));
  return st;
}

std::string read_small_file(const std::filesystem::path& path) {
  UniqueFd fd = open_file(path, O_RDONLY);
  std::string out;
  std::byte buf[4096];
  for (;;) {
    size_t n = read_full(fd.get(), buf);
    out.append(reinterpret_cast<const char*>(buf), n);
    if (n < sizeof buf) break;
  }
  return out;
}

void write_small_file_durable(const std::filesystem::path& path, std::string_view content,
                              mode_t mode) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    UniqueFd fd = open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (::fchmod(fd.get(), mode) != 0) throw_last_errno("chmod " + quote(tmp.string()));
    write_full(fd.get(), std::as_bytes(std::span(content)));
    fsync_fd(fd.get(), tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw_errno(e, "rename " + quote(tmp.string()));
  }
  fsync_dir(path.parent_path().empty() ? "." : path.parent_path());
}

}  // namespace recall
