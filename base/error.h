// recall::Error — the one error type of recallfs.
//
// Every module reports failure by throwing Error. It carries a POSIX errno
// value (the code callers match on, never the message) and a message for
// people. The FUSE adapter turns the code into -errno and the command line
// turns it into an exit status, each in exactly one place.
//
// Codes in use, beyond the obvious ones from system calls:
//   EUCLEAN  a database or object that fails its own checks (corrupt)
//   EIO      bytes that cannot be read or do not match their hash
//   EBUSY    a lock or database held by someone else for too long
#pragma once

#include <cerrno>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

namespace recall {

class Error : public std::exception {
 public:
  Error(int code, std::string message) : code_(code), message_(std::move(message)) {}

  // The errno value that describes this failure.
  int code() const noexcept { return code_; }
  const char* what() const noexcept override { return message_.c_str(); }
  const std::string& message() const noexcept { return message_; }

 private:
  int code_;
  std::string message_;
};

// Throws Error(code, "<what>: <strerror(code)>").
[[noreturn]] void throw_errno(int code, std::string_view what);

// Throws Error(errno, ...) for the errno of the system call that just failed.
[[noreturn]] inline void throw_last_errno(std::string_view what) { throw_errno(errno, what); }

// Quotes a path or name for an error message, escaping control characters so
// that a file name with a newline cannot forge a log line.
std::string quote(std::string_view s);

}  // namespace recall
