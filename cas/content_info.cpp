#include "cas/content_info.h"

#include <magic.h>
#include <poppler-document.h>
#include <poppler-global.h>
#include <stb_image.h>

#include <memory>
#include <mutex>
#include <vector>

#include "base/file_io.h"

namespace recall {
namespace {

// libmagic reads at most this much of a file to decide its type.
constexpr size_t kMagicBytes = 1 << 20;

struct MagicClose {
  void operator()(magic_set* m) const noexcept { magic_close(m); }
};
using Magic = std::unique_ptr<magic_set, MagicClose>;

// One libmagic handle per thread: a handle is not thread-safe and loading the
// database costs milliseconds, so each thread loads it once.
magic_set* thread_magic() {
  thread_local Magic magic = [] {
    Magic m(magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR));
    if (m && magic_load(m.get(), nullptr) != 0) m.reset();
    return m;
  }();
  return magic.get();
}

void quiet_poppler(const std::string&, void*) {}

// poppler logs parse problems to stderr by default; recallfs reports what it
// found instead.
void silence_poppler_once() {
  static std::once_flag once;
  std::call_once(once, [] { poppler::set_debug_error_function(quiet_poppler, nullptr); });
}

std::optional<std::string> nonempty_utf8(const poppler::ustring& s) {
  if (s.empty()) return std::nullopt;
  poppler::byte_array utf8 = s.to_utf8();
  std::string out(utf8.begin(), utf8.end());
  while (!out.empty() && out.back() == '\0') out.pop_back();
  if (out.empty()) return std::nullopt;
  return out;
}

struct FdReader {
  int fd;
  uint64_t pos = 0;
  bool eof = false;
};

int stb_read(void* user, char* data, int size) {
  auto* r = static_cast<FdReader*>(user);
  size_t n = 0;
  try {
    n = pread_full(r->fd, std::as_writable_bytes(std::span(data, static_cast<size_t>(size))),
                   r->pos);
  } catch (...) {
    n = 0;
  }
  r->pos += n;
  if (n < static_cast<size_t>(size)) r->eof = true;
  return static_cast<int>(n);
}
void stb_skip(void* user, int n) {
  auto* r = static_cast<FdReader*>(user);
  r->pos = static_cast<uint64_t>(static_cast<int64_t>(r->pos) + n);
}
int stb_eof(void* user) { return static_cast<FdReader*>(user)->eof ? 1 : 0; }

}  // namespace

ContentInfo probe_content(int fd, const std::filesystem::path& path) {
  ContentInfo info;
  info.mime = "application/octet-stream";

  std::vector<std::byte> head(kMagicBytes);
  size_t n = 0;
  try {
    n = pread_full(fd, head, 0);
  } catch (...) {
    return info;
  }
  if (magic_set* m = thread_magic()) {
    if (const char* mime = magic_buffer(m, head.data(), n)) info.mime = mime;
  }

  if (info.mime == "application/pdf") {
    silence_poppler_once();
    std::unique_ptr<poppler::document> doc(poppler::document::load_from_file(path.string()));
    if (doc) {
      info.page_count = doc->pages();
      if (!doc->is_locked()) {
        info.pdf_title = nonempty_utf8(doc->get_title());
        info.pdf_author = nonempty_utf8(doc->get_author());
      }
    }
  } else if (info.mime.starts_with("image/")) {
    FdReader reader{fd};
    stbi_io_callbacks cb{stb_read, stb_skip, stb_eof};
    int w = 0, h = 0, comp = 0;
    if (stbi_info_from_callbacks(&cb, &reader, &w, &h, &comp)) {
      info.image_width = w;
      info.image_height = h;
    }
  }
  return info;
}

}  // namespace recall
