// TruncationNote — a truncation that a close() reported done, kept durable
// until it is recorded.
//
// Only bytes written make a close commit (see OpenFile::written): a shell's
// `cmd > file` closes a duplicate of the new descriptor before cmd writes
// anything, and a write that then fails (a full disk) must leave the file as
// it was. A truncation alone is committed by the kernel's release, which
// comes after the last close has returned. For a kill -9 in between, the
// close stores the truncated bytes as a blob and writes a note in staging/;
// the next mount applies every note whose file still has the content it was
// truncated from. A commit made after the note, a failed write and the last
// close remove it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace recall {

struct TruncationNote {
  std::string asset_id;
  std::string base_sha256;  // the content it was truncated from
  std::string sha256;       // the truncated content, in the store
  int64_t mtime_ns = 0;
  std::filesystem::path file;  // where it was read from (read_truncation_notes)
};

// Writes the note durably to a new file in `dir`; returns its path.
std::filesystem::path write_truncation_note(const std::filesystem::path& dir,
                                            const TruncationNote& note);
// The notes in `dir`. Files that are not well-formed notes are skipped.
std::vector<TruncationNote> read_truncation_notes(const std::filesystem::path& dir);
// Removes everything in `dir` but the notes: what a crash left there may
// fill the disk, and a mount must free it before it opens the library.
void remove_all_but_truncation_notes(const std::filesystem::path& dir);

}  // namespace recall
