// How devices of one account prove a peer request comes from the account:
// HMAC-SHA256 with the account's peer key (recall.peer_keys, readable only
// by the account's sessions) over method, path, Range header and a Unix
// timestamp, sent as X-Recall-Date and X-Recall-Signature. A request whose
// date is more than kPeerSkew away from the server's clock is stale.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace recall {

inline constexpr std::chrono::seconds kPeerSkew{300};

std::string peer_signature(const std::vector<unsigned char>& key, const std::string& method,
                           const std::string& path, const std::string& range, int64_t date);
// Constant-time comparison with the expected signature.
bool peer_signature_ok(const std::vector<unsigned char>& key, const std::string& method,
                       const std::string& path, const std::string& range, int64_t date,
                       const std::string& signature);

std::vector<unsigned char> from_hex(const std::string& hex);  // EINVAL when not hex

}  // namespace recall
