#include "base/sha256.h"

#include <openssl/evp.h>

#include "base/error.h"

namespace recall {

void Sha256::CtxFree::operator()(evp_md_ctx_st* c) const noexcept { EVP_MD_CTX_free(c); }

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1)
    throw Error(ENOMEM, "cannot initialise SHA-256");
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(std::span<const std::byte> data) {
  if (EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) != 1)
    throw Error(EIO, "SHA-256 update failed");
}

Digest Sha256::finish() {
  Digest d{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_.get(), d.data(), &len) != 1 || len != d.size())
    throw Error(EIO, "SHA-256 final failed");
  EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr);
  return d;
}

Digest Sha256::peek() const {
  std::unique_ptr<evp_md_ctx_st, CtxFree> copy(EVP_MD_CTX_new());
  if (!copy || EVP_MD_CTX_copy_ex(copy.get(), ctx_.get()) != 1)
    throw Error(ENOMEM, "cannot copy SHA-256 state");
  Digest d{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(copy.get(), d.data(), &len) != 1 || len != d.size())
    throw Error(EIO, "SHA-256 final failed");
  return d;
}

std::string to_hex(std::span<const unsigned char> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
  return out;
}

std::string to_hex(const Digest& d) { return to_hex(std::span<const unsigned char>(d)); }

bool is_sha256_hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::optional<Digest> digest_of_hex(std::string_view s) {
  if (!is_sha256_hex(s)) return std::nullopt;
  auto nibble = [](char c) {
    return static_cast<unsigned char>(c <= '9' ? c - '0' : c - 'a' + 10);
  };
  Digest d;
  for (size_t i = 0; i < d.size(); ++i)
    d[i] = static_cast<unsigned char>(nibble(s[2 * i]) << 4 | nibble(s[2 * i + 1]));
  return d;
}

std::string sha256_hex(std::string_view data) {
  Sha256 h;
  h.update(data);
  return to_hex(h.finish());
}

}  // namespace recall
