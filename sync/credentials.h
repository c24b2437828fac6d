// The sign-in of a library: server, session token and account, in
// DATA/credentials.json with mode 0600. The token is a secret: it is never
// printed or logged (redacted() gives what may be shown).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace recall {

struct Credentials {
  std::string server;  // libpq connection string or URI (may hold a password)
  std::string token;
  std::string account_id;
  std::string account_name;
  std::string device_name;
  int64_t signed_in_ms = 0;
  std::string peer_key;  // hex: the account's peer key (sync/peer_auth.h), a secret
};

// nullopt for a guest library. EUCLEAN when the file is damaged.
std::optional<Credentials> load_credentials(const std::filesystem::path& data_dir);
// Written atomically and durably, mode 0600 from the start.
void save_credentials(const std::filesystem::path& data_dir, const Credentials& c);
void remove_credentials(const std::filesystem::path& data_dir);
std::filesystem::path credentials_path(const std::filesystem::path& data_dir);

}  // namespace recall
