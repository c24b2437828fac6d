// recallfs init | add | ls | cat — the library, without a mount.
#include <fcntl.h>
#include <unistd.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/file_io.h"
#include "fs/names.h"
#include "fs/tree.h"
#include "mount-helper/cli.h"

namespace recall::cli {
namespace fs = std::filesystem;

namespace {

// The place `add` puts files: the inbox, or the work titled `title` (the
// oldest one when several share the title; created when there is none).
Place target_place(Library& lib, const std::string& title) {
  if (title.empty()) return Place{};
  std::vector<Work> ws = lib.catalog().works_titled(title);
  if (!ws.empty()) return Place{ws[0].id, ""};
  return Place{lib.catalog().create_work(title).id, ""};
}

std::string shown_path(Library& lib, const Place& place, const std::string& name) {
  std::string p;
  if (place.work_id) {
    std::optional<Work> w = lib.catalog().get_work(*place.work_id);
    p = "works/" + escape_name(w ? w->title : *place.work_id);
  } else {
    p = "inbox";
  }
  if (!place.folder.empty()) p += "/" + place.folder;
  return p + "/" + escape_name(name);
}

// Adds one file, or with `recursive` a directory as a sub-folder.
void add_path(Library& lib, const fs::path& src, const Place& place, bool recursive, bool json,
              nlohmann::json& out) {
  std::error_code ec;
  fs::file_status st = fs::status(src, ec);
  if (ec) throw Error(ec.value(), "cannot read " + quote(src.string()) + ": " + ec.message());
  std::string name = src.filename().string();
  if (name.empty() || name == "." || name == "..")
    name = fs::absolute(src).lexically_normal().parent_path().filename().string();
  if (fs::is_directory(st)) {
    if (!recursive)
      throw Error(EISDIR,
                  quote(src.string()) + " is a directory (use -r to add it with its contents)");
    std::optional<Folder> existing = lib.catalog().get_folder(
        Place{place.work_id, place.folder.empty() ? name : place.folder + "/" + name});
    Folder f = existing ? *existing : lib.catalog().create_folder(place, name);
    std::vector<fs::path> children;
    for (const auto& e : fs::directory_iterator(src)) children.push_back(e.path());
    std::sort(children.begin(), children.end());
    for (const fs::path& c : children)
      add_path(lib, c, Place{place.work_id, f.path}, recursive, json, out);
    return;
  }
  Asset a = lib.add_file(src, place, name);
  std::string shown = shown_path(lib, place, a.filename);
  if (json) {
    out.push_back({{"path", shown},
                   {"asset_id", a.id},
                   {"sha256", a.sha256},
                   {"bytes", a.bytes},
                   {"mime", a.mime.value_or("")}});
  } else {
    std::cout << "added " << shown << "  (" << human_bytes(a.bytes) << ", "
              << a.sha256.substr(0, 12) << ")\n";
  }
}

void print_entry(const std::string& shown, const Node& n, bool long_format,
                 const std::string& prefix) {
  std::string name = prefix + shown + (n.is_dir() ? "/" : "");
  if (!long_format) {
    std::cout << name << "\n";
    return;
  }
  if (n.kind == Node::Kind::File) {
    const Asset& a = *n.entry->asset;
    std::printf("%-10s %12llu  %-10s %s  %s\n", a.role.c_str(),
                static_cast<unsigned long long>(a.bytes), a.local_only ? "local-only" : "",
                a.sha256.substr(0, 12).c_str(), name.c_str());
  } else if (n.kind == Node::Kind::Blob) {
    std::printf("%-10s %12s  %-10s %s  %s\n", "blob", "", "", n.sha256.substr(0, 12).c_str(),
                name.c_str());
  } else {
    std::printf("%-10s %12s  %-10s %12s  %s\n", "dir", "", "", "", name.c_str());
  }
}

nlohmann::json entry_json(const std::string& shown, const Node& n) {
  nlohmann::json j = {{"name", shown}, {"dir", n.is_dir()}};
  if (n.kind == Node::Kind::File) {
    const Asset& a = *n.entry->asset;
    j["asset_id"] = a.id;
    j["sha256"] = a.sha256;
    j["bytes"] = a.bytes;
    j["role"] = a.role;
    j["mime"] = a.mime.value_or("");
    j["local_only"] = a.local_only;
    if (n.entry->kind == FolderEntry::Kind::Link) j["link_id"] = n.entry->edge->id;
  } else if (n.kind == Node::Kind::Blob) {
    j["sha256"] = n.sha256;
  } else if (n.work) {
    j["work_id"] = n.work->id;
  }
  return j;
}

void list_dir(Tree& tree, const Node& dir, bool long_format, bool recursive, bool json,
              const std::string& prefix, nlohmann::json& out) {
  tree.list(dir, [&](const std::string& shown, const Node& n) {
    if (json) {
      nlohmann::json j = entry_json(prefix + shown, n);
      out.push_back(std::move(j));
    } else {
      print_entry(shown, n, long_format, prefix);
    }
    if (recursive && n.is_dir() && n.kind != Node::Kind::BlobsDir)
      list_dir(tree, n, long_format, recursive, json, prefix + shown + "/", out);
    return true;
  });
}

void cat_node(Library& lib, const Node& n, const std::string& path) {
  if (n.is_dir()) throw Error(EISDIR, quote(path) + " is a directory");
  UniqueFd fd;
  try {
    fd = lib.blobs().open_object(n.sha256);
  } catch (const Error& e) {
    if (e.code() == ENOENT)
      throw Error(EIO, quote(path) + ": its bytes (" + n.sha256 + ") are not on this device");
    throw;
  }
  std::vector<std::byte> buf(1 << 20);
  uint64_t off = 0;
  for (;;) {
    size_t got = pread_full(fd.get(), buf, off);
    if (got == 0) break;
    write_full(STDOUT_FILENO, std::span<const std::byte>(buf.data(), got));
    off += got;
  }
}

}  // namespace

void add_library_verbs(CLI::App& app, Common& common) {
  CLI::App* init = app.add_subcommand(
      "init", "Create an empty library (a guest library: nothing leaves this device)");
  add_data_option(init, common);
  init->callback([&] {
    fs::path dir = data_dir(common);
    auto lib = Library::open(dir, {.create = true});
    std::cout << "library ready in " << dir.string() << " (device " << lib->catalog().device_id()
              << ")\n";
  });

  static std::vector<std::string> add_files;
  static std::string add_work, add_role = "main";
  static bool add_recursive = false;
  CLI::App* add = app.add_subcommand(
      "add", "Store files in the library: in the inbox, or in a work with --work");
  add_data_option(add, common);
  add->add_option("FILE", add_files, "Files to add")->required();
  add->add_option("--work", add_work, "Title of the work to add them to (created when missing)");
  add->add_option("--role", add_role,
                  "Role of the new assets: main, supplement, slides, solutions, data, notes, "
                  "exercises, thumbnail");
  add->add_flag("-r,--recursive", add_recursive,
                "Add directories with their contents, as sub-folders");
  add->add_flag("--json", common.json, "Print the added assets as JSON");
  add->callback([&] {
    if (!is_role(add_role)) throw Error(EINVAL, "unknown role " + quote(add_role));
    auto lib = open_library(common);
    Place place = target_place(*lib, add_work);
    nlohmann::json out = nlohmann::json::array();
    for (const std::string& f : add_files)
      add_path(*lib, f, place, add_recursive, common.json, out);
    if (common.json) std::cout << out.dump(2) << "\n";
  });

  static std::string ls_path;
  static bool ls_long = false, ls_recursive = false;
  CLI::App* ls =
      app.add_subcommand("ls", "List a folder of the library: works/, works/TITLE, inbox, blobs");
  add_data_option(ls, common);
  ls->add_option("PATH", ls_path, "Path in the library tree (default: its top)");
  ls->add_flag("-l,--long", ls_long, "Show role, size and content hash");
  ls->add_flag("-R,--recursive", ls_recursive, "List sub-folders too");
  ls->add_flag("--json", common.json, "Print JSON");
  ls->callback([&] {
    auto lib = open_library(common);
    Tree tree(lib->catalog(), lib->blobs());
    Node n = tree.resolve(ls_path);
    nlohmann::json out = nlohmann::json::array();
    if (n.is_dir()) {
      list_dir(tree, n, ls_long, ls_recursive, common.json, "", out);
    } else if (common.json) {
      out.push_back(entry_json(ls_path, n));
    } else {
      print_entry(ls_path, n, ls_long, "");
    }
    if (common.json) std::cout << out.dump(2) << "\n";
  });

  static std::vector<std::string> cat_paths;
  CLI::App* cat = app.add_subcommand("cat", "Write files of the library to standard output");
  add_data_option(cat, common);
  cat->add_option("PATH", cat_paths,
                  "Paths in the library tree (works/TITLE/FILE, inbox/FILE, blobs/SHA256)")
      ->required();
  cat->callback([&] {
    auto lib = open_library(common);
    Tree tree(lib->catalog(), lib->blobs());
    for (const std::string& p : cat_paths) cat_node(*lib, tree.resolve(p), p);
  });
}

}  // namespace recall::cli
