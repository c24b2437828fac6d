#include "catalog/rows.h"

#include <algorithm>

#include "base/sha256.h"
#include "catalog/catalog_internal.h"

namespace recall {

bool is_role(std::string_view role) {
  return std::find(std::begin(kRoles), std::end(kRoles), role) != std::end(kRoles);
}

namespace catalog_detail {

std::string prefixed(const char* cols, const char* alias) {
  std::string out = std::string(alias) + ".";
  for (const char* p = cols; *p; ++p) {
    out += *p;
    if (*p == ',') {
      while (p[1] == ' ') ++p;
      out += std::string(" ") + alias + ".";
    }
  }
  return out;
}

Work work_from(const Stmt& s, int c) {
  Work w;
  w.id = s.text(c + 0);
  w.title = s.text(c + 1);
  w.subtitle = s.opt_text(c + 2);
  w.work_type = s.text(c + 3);
  w.authors = s.text(c + 4);
  w.year = s.opt_int64(c + 5);
  w.doi = s.opt_text(c + 6);
  w.arxiv_id = s.opt_text(c + 7);
  w.mode = static_cast<uint32_t>(s.int64(c + 8));
  w.mtime_ns = s.int64(c + 9);
  w.local_only = s.int64(c + 10) != 0;
  w.created_ms = s.int64(c + 11);
  w.updated_ms = s.int64(c + 12);
  return w;
}

Asset asset_from(const Stmt& s, int c) {
  Asset a;
  a.id = s.text(c + 0);
  a.work_id = s.opt_text(c + 1);
  a.folder = s.text(c + 2);
  a.filename = s.text(c + 3);
  a.sha256 = s.text(c + 4);
  a.role = s.text(c + 5);
  a.mime = s.opt_text(c + 6);
  a.bytes = static_cast<uint64_t>(s.int64(c + 7));
  a.page_count = s.opt_int64(c + 8);
  a.mode = static_cast<uint32_t>(s.int64(c + 9));
  a.mtime_ns = s.int64(c + 10);
  a.local_only = s.int64(c + 11) != 0;
  a.created_ms = s.int64(c + 12);
  a.updated_ms = s.int64(c + 13);
  return a;
}

Edge edge_from(const Stmt& s, int c) {
  Edge e;
  e.id = s.text(c + 0);
  e.from_id = s.opt_text(c + 1);
  e.to_id = s.text(c + 2);
  e.relation = s.text(c + 3);
  e.folder = s.text(c + 4);
  e.name = s.text(c + 5);
  e.created_ms = s.int64(c + 6);
  return e;
}

Folder folder_from(const Stmt& s, int c) {
  Folder f;
  f.id = s.text(c + 0);
  f.work_id = s.opt_text(c + 1);
  f.path = s.text(c + 2);
  f.mode = static_cast<uint32_t>(s.int64(c + 3));
  f.mtime_ns = s.int64(c + 4);
  f.local_only = s.int64(c + 5) != 0;
  f.created_ms = s.int64(c + 6);
  return f;
}

std::string join_path(const std::string& folder, const std::string& name) {
  return folder.empty() ? name : folder + "/" + name;
}

std::string stamp_asset(const char* group, const std::string& now) {
  std::string sql;
  for (const char* g : {kStampContent, kStampPlace, kStampAttrs}) {
    sql += std::string(g) + " = ";
    sql += std::string_view(g) == group ? now : "coalesce(" + std::string(g) + ", updated_ms)";
    sql += ", ";
  }
  return sql + "updated_ms = " + now;
}

}  // namespace catalog_detail

std::string cloud_holder_row_id(const std::string& sha256) {
  std::string h = sha256_hex("recallfs cloud holder " + sha256).substr(0, 32);
  h[12] = '5';                                                  // version 5 (name-based)
  h[16] = "89ab"[std::stoi(h.substr(16, 1), nullptr, 16) & 3];  // the RFC 4122 variant
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20, 12);
}

namespace catalog_detail {

std::string last_component(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string parent_path(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

}  // namespace catalog_detail
}  // namespace recall
