// recallfs pin | unpin PATH... — keep the bytes of works, folders or files of
// a mounted library on this device whatever the cache budget (pin fetches
// what is missing now, verified, with progress), or let them go again. A
// folder stays pinned as a place: files that come into it later, made here
// or on another device, are pinned and fetched too (Catalog::pin_place).
#include <sys/xattr.h>

#include <iostream>
#include <map>
#include <memory>

#include "base/error.h"
#include "fs/fetcher.h"
#include "mount-helper/cli.h"
#include "mount-helper/mount_state.h"
#include "sync/sources.h"

namespace recall::cli {
namespace fs = std::filesystem;

namespace {

// The data directory of the recallfs mount that `path` is in.
fs::path library_of(const fs::path& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path), ec);
  if (ec) throw Error(ENOENT, quote(path.string()) + ": " + ec.message());
  for (fs::path cur = p;; cur = cur.parent_path()) {
    if (auto m = mount_at(cur); m && m->fstype == "fuse.recallfs") {
      if (!m->source.starts_with("recallfs:")) break;
      return m->source.substr(9);
    }
    if (cur == cur.root_path()) break;
  }
  throw Error(EINVAL, quote(path.string()) + " is not in a mounted recallfs library");
}

std::string sha_of(const fs::path& file) {
  char buf[80];
  ssize_t n = ::getxattr(file.c_str(), "user.recall.sha256", buf, sizeof buf);
  if (n < 0) throw_last_errno("read user.recall.sha256 of " + quote(file.string()));
  return std::string(buf, static_cast<size_t>(n));
}

// The blobs of the files at or under `paths` (a new file, not yet stored,
// has no blob and is skipped), each with one of its paths.
std::map<std::string, fs::path> blobs_under(const std::vector<std::string>& paths) {
  std::map<std::string, fs::path> out;
  auto add = [&](const fs::path& f, bool named) {
    try {
      std::string sha = sha_of(f);
      if (!sha.empty()) out.emplace(sha, f);
    } catch (const Error& e) {
      // Gone meanwhile (removed, or a blob of blobs/ the cache let go):
      // only a path the user named is an error.
      if (named || e.code() != ENOENT) throw;
    }
  };
  for (const std::string& p : paths) {
    fs::file_status st = fs::status(p);  // a path named through a symlink is what it names
    if (fs::is_regular_file(st)) {
      add(p, true);
    } else if (fs::is_directory(st)) {
      std::error_code ec;
      for (auto it = fs::recursive_directory_iterator(
               p, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
        if (it->is_regular_file(ec) && !it->is_symlink(ec)) add(it->path(), false);
      if (ec && ec != std::errc::no_such_file_or_directory)
        throw Error(ec.value(), "list " + quote(p) + ": " + ec.message());
    } else if (!fs::exists(st)) {
      throw Error(ENOENT, "no such file or folder: " + quote(p));
    }
  }
  return out;
}

// A folder's pin (or unpin) as a place, by the mount that shows it: it
// covers the files that come into the folder later too. Returns the paths
// that were not places: files, and blobs/ (whose files are (un)pinned one
// by one).
std::vector<std::string> set_folder_pins(const std::vector<std::string>& paths, bool pin) {
  std::vector<std::string> rest;
  for (const std::string& p : paths) {
    if (fs::is_directory(fs::status(p))) {
      if (::setxattr(p.c_str(), "user.recall.pinned", pin ? "1" : "0", 1, 0) == 0) continue;
      if (errno != EPERM) throw_last_errno((pin ? "pin " : "unpin ") + quote(p));
    }
    rest.push_back(p);
  }
  return rest;
}

// The library the paths are in; with --data, it must be that one.
std::unique_ptr<Library> library_for(const std::vector<std::string>& paths, const Common& common) {
  fs::path data = library_of(paths.front());
  for (const std::string& p : paths)
    if (library_of(p) != data)
      throw Error(EINVAL, "the paths are in different libraries: pin them one library at a time");
  std::error_code ec;
  if (!common.data.empty() && !fs::equivalent(common.data, data, ec))
    throw Error(EINVAL, "the paths are in the library " + quote(data.string()) + ", not in " +
                            quote(common.data));
  return Library::open(data, {.create = false});
}

}  // namespace

void add_pin_verbs(CLI::App& app, Common& common) {
  auto data_opt = [&](CLI::App* sub) {
    sub->add_option("--data", common.data, "The library (default: the one mounted at PATH)");
  };
  auto paths = std::make_shared<std::vector<std::string>>();
  CLI::App* pin = app.add_subcommand(
      "pin", "Keep the bytes of works, folders or files on this device (fetching them now)");
  pin->add_option("PATH", *paths, "Files or folders in a mounted library")->required();
  data_opt(pin);
  pin->callback([paths, &common] {
    auto lib = library_for(*paths, common);
    auto blobs = blobs_under(*paths);
    std::vector<std::string> missing;
    uint64_t missing_bytes = 0;
    for (const auto& [sha, path] : blobs) {
      lib->catalog().pin(sha);
      if (!lib->blobs().has(sha)) {
        missing.push_back(sha);
        if (auto m = lib->catalog().get_blob(sha)) missing_bytes += m->size;
      }
    }
    size_t failed = 0;
    if (!missing.empty()) {
      Fetcher fetcher(*lib, std::make_shared<HolderProvider>(*lib));
      ProgressLine line;
      uint64_t before = 0;
      for (size_t i = 0; i < missing.size(); ++i) {
        const fs::path& path = blobs.at(missing[i]);
        uint64_t last = 0;
        try {
          fetcher.fetch_all(missing[i], [&](uint64_t done, uint64_t) {
            last = done;
            line.show("fetching " + std::to_string(i + 1) + "/" + std::to_string(missing.size()) +
                      ": " + human_bytes(before + done) + " of " + human_bytes(missing_bytes) +
                      "  " + path.filename().string());
          });
        } catch (const Error& e) {
          line.done();
          std::cerr << "recallfs: pin: " << path.string() << ": " << e.message() << "\n";
          ++failed;
        }
        before += last;
      }
      line.done();
    }
    // After the fetch, so that the mount does not fetch the same bytes in
    // the background meanwhile; it does fetch what came in since.
    const size_t folders = paths->size() - set_folder_pins(*paths, true).size();
    std::cout << "pinned " << blobs.size() << " files; fetched " << missing.size() - failed << " ("
              << human_bytes(missing_bytes) << " wanted)"
              << (failed ? ", " + std::to_string(failed) + " could not be fetched (still pinned)"
                         : "")
              << "\n";
    if (folders)
      std::cout << "files that come into " << (folders == 1 ? "this folder" : "these folders")
                << " later are pinned too\n";
    if (failed) throw CLI::RuntimeError(1);
  });

  auto upaths = std::make_shared<std::vector<std::string>>();
  CLI::App* unpin = app.add_subcommand(
      "unpin", "Let the cache drop these bytes again when it needs room (once in the cloud)");
  unpin->add_option("PATH", *upaths, "Files or folders in a mounted library")->required();
  data_opt(unpin);
  unpin->callback([upaths, &common] {
    auto lib = library_for(*upaths, common);
    // A folder's unpin is the mount's (Catalog::unpin_place: what another
    // pinned folder has stays pinned); a file's is its own.
    std::vector<std::string> files = set_folder_pins(*upaths, false);
    auto blobs = blobs_under(files);
    for (const auto& [sha, path] : blobs) lib->catalog().unpin(sha);
    const size_t folders = upaths->size() - files.size();
    std::cout << "unpinned " << (folders ? std::to_string(folders) + " folders and " : "")
              << blobs.size() << " files\n";
  });
}

}  // namespace recall::cli
