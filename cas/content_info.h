// Content metadata of a blob: MIME type (libmagic), page count, title and
// author of a PDF (poppler-cpp), width and height of an image (stb_image,
// which reads only the header).
//
// Thread-safe: probe_content() may be called from several threads at once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace recall {

struct ContentInfo {
  std::string mime;  // e.g. "application/pdf"; "application/octet-stream" if unknown
  std::optional<int64_t> page_count;
  std::optional<int64_t> image_width;
  std::optional<int64_t> image_height;
  std::optional<std::string> pdf_title;
  std::optional<std::string> pdf_author;

  bool operator==(const ContentInfo&) const = default;
};

// Probes the file open at `fd` (and at `path`, which poppler reads). Never
// throws for content it cannot parse: it reports what it could find.
ContentInfo probe_content(int fd, const std::filesystem::path& path);

}  // namespace recall
