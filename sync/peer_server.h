// PeerServer — serves this device's blobs to the account's other devices:
//   GET|HEAD /v1/blobs/<sha256>   (Range: bytes=A-B, A-, -N)
// over HTTP with libmicrohttpd, bytes sent straight from the object's file.
// Only requests signed with the account's peer key (sync/peer_auth.h) are
// served; unsigned, stale, wrongly signed (another account's key) and
// malformed requests (bad hashes, traversal, absurd ranges) get a 4xx and
// nothing else. Blobs that are not here: 404.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cas/blob_store.h"

struct MHD_Daemon;

namespace recall {

class PeerServer {
 public:
  using KeyFn = std::function<std::optional<std::vector<unsigned char>>()>;
  // Listens on `listen` ("127.0.0.1:0" picks a free port). EADDRINUSE etc.
  PeerServer(BlobStore& blobs, const std::string& listen, KeyFn key);
  ~PeerServer();
  PeerServer(const PeerServer&) = delete;
  PeerServer& operator=(const PeerServer&) = delete;
  // host:port actually bound.
  const std::string& address() const { return address_; }

  struct Impl;  // (public so the request handler can reach it)

 private:
  std::unique_ptr<Impl> impl_;
  std::string address_;
};

}  // namespace recall
