#include "fs/truncation_note.h"

#include <unistd.h>

#include <atomic>
#include <sstream>
#include <system_error>

#include "base/file_io.h"

namespace recall {
namespace fs = std::filesystem;

namespace {
constexpr std::string_view kPrefix = "truncated-";

bool is_sha256(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}
}  // namespace

fs::path write_truncation_note(const fs::path& dir, const TruncationNote& note) {
  static std::atomic<uint64_t> counter{0};
  // (pid: a note kept from an earlier mount is never overwritten)
  fs::path path = dir / (std::string(kPrefix) + note.asset_id + "-" + std::to_string(::getpid()) +
                         "-" + std::to_string(++counter));
  std::ostringstream text;
  text << note.asset_id << ' ' << note.base_sha256 << ' ' << note.sha256 << ' ' << note.mtime_ns
       << '\n';
  write_small_file_durable(path, text.str(), 0600);
  return path;
}

namespace {
bool is_note(const fs::path& p) {
  std::string name = p.filename().string();
  return name.starts_with(kPrefix) && !name.ends_with(".tmp");  // (.tmp: never renamed, a crash)
}
}  // namespace

void remove_all_but_truncation_notes(const fs::path& dir) {
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec))
    if (!is_note(e.path())) fs::remove_all(e.path(), ec);
}

std::vector<TruncationNote> read_truncation_notes(const fs::path& dir) {
  std::vector<TruncationNote> notes;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    if (!is_note(e.path())) continue;
    std::istringstream in;
    try {
      in.str(read_small_file(e.path()));
    } catch (const std::exception&) {
      continue;
    }
    TruncationNote n;
    if (in >> n.asset_id >> n.base_sha256 >> n.sha256 >> n.mtime_ns && !n.asset_id.empty() &&
        is_sha256(n.base_sha256) && is_sha256(n.sha256)) {
      n.file = e.path();
      notes.push_back(std::move(n));
    }
  }
  return notes;
}

}  // namespace recall
