// UTF-8 checks for the library's names.
//
// Titles, file and folder names are shared with the server (PostgreSQL TEXT
// takes only valid UTF-8, and no NUL) and with the app, so a name that is
// not valid UTF-8 is refused where it would enter the catalog, with EILSEQ
// ("Invalid or incomplete multibyte or wide character"), rather than taken
// here and left to stop every later push.
#pragma once

#include <string_view>

namespace recall {

// True when `s` is well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing past U+10FFFF) and holds no NUL.
bool is_valid_utf8(std::string_view s);

// Throws Error(EILSEQ, "<what> is not valid UTF-8: '<s>'") unless `s` is;
// the bytes that are not are shown as \xNN.
void require_utf8(std::string_view s, std::string_view what);

}  // namespace recall
