#include "fs/library.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <set>

#include "base/error.h"
#include "base/file_io.h"
#include "base/ids.h"
#include "fs/names.h"
#include "fs/truncation_note.h"

namespace recall {
namespace fs = std::filesystem;

std::unique_ptr<Library> Library::open(const fs::path& dir, const Options& options) {
  fs::path catalog_file = dir / "catalog.db";
  if (!options.create) {
    check_exists(dir);
  } else if (!fs::is_directory(dir)) {
    fs::create_directories(dir);
    fsync_dir(dir.parent_path().empty() ? "." : dir.parent_path());
  }
  std::unique_ptr<Library> lib(new Library());
  lib->dir_ = dir;
  lib->catalog_ = Catalog::open(catalog_file, {.create = options.create});
  // After a crash, an object no file has is one a commit stored and never
  // recorded (or one being removed): it goes, unless a truncation note
  // still names it (Vfs applies those).
  std::set<std::string> noted;
  for (const TruncationNote& n : read_truncation_notes(dir / "staging")) noted.insert(n.sha256);
  Catalog* catalog = lib->catalog_.get();
  lib->blobs_ = BlobStore::open(
      dir, {.create = true, .unneeded_after_crash = [catalog, noted](const std::string& sha) {
              return !noted.contains(sha) && catalog->forget_blob(sha);
            }});
  return lib;
}

void Library::check_exists(const fs::path& dir) {
  if (!fs::is_directory(dir))
    throw Error(ENOENT, "no library at " + quote(dir.string()) + ": no such directory");
  if (!fs::exists(dir / "catalog.db"))
    throw Error(ENOENT, quote(dir.string()) + " is not a recallfs library (it has no catalog.db)");
}

BlobMeta Library::blob_meta(const PutResult& put, const std::string& filename) {
  BlobMeta b;
  b.sha256 = put.sha256;
  b.size = put.size;
  b.mime = put.content.mime;
  b.filename = filename;
  b.page_count = put.content.page_count;
  b.image_width = put.content.image_width;
  b.image_height = put.content.image_height;
  if (put.content.pdf_title || put.content.pdf_author) {
    nlohmann::json j = nlohmann::json::object();
    if (put.content.pdf_title) j["title"] = *put.content.pdf_title;
    if (put.content.pdf_author) j["author"] = *put.content.pdf_author;
    b.pdf_metadata = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  b.created_ms = now_ms();
  return b;
}

Asset Library::add_fd(int fd, const Place& place, const std::string& name,
                      const AddOptions& options) {
  PutResult put = blobs_->put(fd);
  NewAsset n;
  n.place = place;
  n.filename = name;
  n.blob = blob_meta(put, name);
  n.role = options.role;
  n.mode = options.mode;
  n.mtime_ns = options.mtime_ns;
  n.local_only = options.local_only.value_or(is_scratch_name(name));
  return catalog_->add_asset(n);
}

Asset Library::add_file(const fs::path& file, const Place& place,
                        const std::optional<std::string>& name, const AddOptions& options) {
  UniqueFd fd = open_file(file, O_RDONLY);
  struct stat st = stat_fd(fd.get(), file);
  if (S_ISDIR(st.st_mode)) throw Error(EISDIR, quote(file.string()) + " is a directory");
  if (!S_ISREG(st.st_mode)) throw Error(EINVAL, quote(file.string()) + " is not a regular file");
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  AddOptions o = options;
  if (!o.mtime_ns)
    o.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  o.mode = st.st_mode & 07777;
  try {
    return add_fd(fd.get(), place, name.value_or(file.filename().string()), o);
  } catch (const Error& e) {
    throw Error(e.code(), "cannot add " + quote(file.string()) + ": " + e.message());
  }
}

}  // namespace recall
