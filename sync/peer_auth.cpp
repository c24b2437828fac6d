#include "sync/peer_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "base/error.h"
#include "base/sha256.h"

namespace recall {

std::string peer_signature(const std::vector<unsigned char>& key, const std::string& method,
                           const std::string& path, const std::string& range, int64_t date) {
  std::string msg = method + "\n" + path + "\n" + range + "\n" + std::to_string(date);
  unsigned char out[32];
  size_t len = 0;
  if (!EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
                 reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, sizeof out,
                 &len) ||
      len != sizeof out)
    throw Error(EIO, "HMAC failed");
  return to_hex(std::span<const unsigned char>(out, len));
}

bool peer_signature_ok(const std::vector<unsigned char>& key, const std::string& method,
                       const std::string& path, const std::string& range, int64_t date,
                       const std::string& signature) {
  std::string expected = peer_signature(key, method, path, range, date);
  return signature.size() == expected.size() &&
         CRYPTO_memcmp(signature.data(), expected.data(), expected.size()) == 0;
}

std::vector<unsigned char> from_hex(const std::string& hex) {
  if (hex.size() % 2) throw Error(EINVAL, "odd-length hex");
  std::vector<unsigned char> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    auto nib = [&](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      throw Error(EINVAL, "not hex");
    };
    out[i] = static_cast<unsigned char>(nib(hex[2 * i]) * 16 + nib(hex[2 * i + 1]));
  }
  return out;
}

}  // namespace recall
