#include "sync/peer_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "base/error.h"
#include "base/ids.h"
#include "base/sha256.h"
#include "sync/peer_auth.h"

namespace recall {

struct PeerServer::Impl {
  BlobStore& blobs;
  KeyFn key;
  MHD_Daemon* daemon = nullptr;
};

namespace {

MHD_Result reply(MHD_Connection* c, unsigned status, const std::string& text,
                 const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  MHD_Response* r = MHD_create_response_from_buffer(text.size(), const_cast<char*>(text.data()),
                                                    MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(r, "Content-Type", "text/plain");
  for (const auto& [name, value] : headers) MHD_add_response_header(r, name.c_str(), value.c_str());
  MHD_Result ok = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ok;
}

// "bytes=A-B", "bytes=A-" or "bytes=-N" for an object of `size` bytes.
// nullopt: malformed (400). {start, end} with start > end: not satisfiable.
std::optional<std::pair<uint64_t, uint64_t>> parse_range(const std::string& h, uint64_t size) {
  if (!h.starts_with("bytes=") || h.find(',') != std::string::npos) return std::nullopt;
  std::string spec = h.substr(6);
  size_t dash = spec.find('-');
  if (dash == std::string::npos) return std::nullopt;
  std::string a = spec.substr(0, dash), b = spec.substr(dash + 1);
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() <= 19 && s.find_first_not_of("0123456789") == std::string::npos;
  };
  if (a.empty()) {  // the last N bytes
    if (!digits(b)) return std::nullopt;
    uint64_t n = std::stoull(b);
    if (n == 0) return std::make_pair(uint64_t{1}, uint64_t{0});
    return std::make_pair(size > n ? size - n : 0, size ? size - 1 : 0);
  }
  if (!digits(a) || (!b.empty() && !digits(b))) return std::nullopt;
  uint64_t start = std::stoull(a);
  uint64_t end =
      b.empty() ? (size ? size - 1 : 0) : std::min<uint64_t>(std::stoull(b), size ? size - 1 : 0);
  if (start >= size || (!b.empty() && std::stoull(b) < start))
    return std::make_pair(uint64_t{1}, uint64_t{0});
  return std::make_pair(start, end);
}

MHD_Result handle(void* cls, MHD_Connection* c, const char* url, const char* method, const char*,
                  const char*, size_t*, void** con_cls) {
  auto* impl = static_cast<PeerServer::Impl*>(cls);
  static int marker;
  if (*con_cls == nullptr) {  // headers only so far: answer on the next call
    *con_cls = &marker;
    return MHD_YES;
  }
  std::string m = method, path = url;
  if (m != "GET" && m != "HEAD") return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET or HEAD only\n");
  const std::string prefix = "/v1/blobs/";
  if (!path.starts_with(prefix)) return reply(c, MHD_HTTP_NOT_FOUND, "not found\n");
  std::string sha = path.substr(prefix.size());
  if (!is_sha256_hex(sha)) return reply(c, MHD_HTTP_BAD_REQUEST, "not a blob name\n");
  const char* date = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Recall-Date");
  const char* sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Recall-Signature");
  const char* range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
  if (!date || !sig) return reply(c, MHD_HTTP_UNAUTHORIZED, "unsigned request\n");
  std::string ds = date;
  if (ds.empty() || ds.size() > 18 || ds.find_first_not_of("0123456789") != std::string::npos)
    return reply(c, MHD_HTTP_BAD_REQUEST, "bad date\n");
  int64_t when = std::stoll(ds), now = now_ms() / 1000;
  if (when < now - kPeerSkew.count() || when > now + kPeerSkew.count())
    // With this server's time: a client whose clock is off dates its next
    // request by it (the signature still binds the date).
    return reply(c, MHD_HTTP_UNAUTHORIZED, "stale request\n",
                 {{"X-Recall-Now", std::to_string(now)}});
  std::optional<std::vector<unsigned char>> key = impl->key();
  if (!key || !peer_signature_ok(*key, m, path, range ? range : "", when, sig))
    return reply(c, MHD_HTTP_FORBIDDEN, "bad signature\n");

  UniqueFd fd;
  try {
    fd = impl->blobs.open_object(sha);
  } catch (const Error&) {
    return reply(c, MHD_HTTP_NOT_FOUND, "not here\n");
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "stat failed\n");
  uint64_t size = static_cast<uint64_t>(st.st_size);
  uint64_t start = 0, end = size ? size - 1 : 0;
  unsigned status = MHD_HTTP_OK;
  if (range) {
    auto r = parse_range(range, size);
    if (!r) return reply(c, MHD_HTTP_BAD_REQUEST, "bad range\n");
    if (r->first > r->second) {
      MHD_Response* resp = MHD_create_response_from_buffer(0, nullptr, MHD_RESPMEM_PERSISTENT);
      std::string cr = "bytes */" + std::to_string(size);
      MHD_add_response_header(resp, "Content-Range", cr.c_str());
      MHD_Result ok = MHD_queue_response(c, MHD_HTTP_RANGE_NOT_SATISFIABLE, resp);
      MHD_destroy_response(resp);
      return ok;
    }
    start = r->first;
    end = r->second;
    status = MHD_HTTP_PARTIAL_CONTENT;
  }
  uint64_t len = size ? end - start + 1 : 0;
  // The response owns the fd and sends from it (sendfile when it can).
  MHD_Response* resp = MHD_create_response_from_fd_at_offset64(len, fd.release(), start);
  if (!resp) return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "no response\n");
  MHD_add_response_header(resp, "Accept-Ranges", "bytes");
  MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
  if (status == MHD_HTTP_PARTIAL_CONTENT) {
    std::string cr =
        "bytes " + std::to_string(start) + "-" + std::to_string(end) + "/" + std::to_string(size);
    MHD_add_response_header(resp, "Content-Range", cr.c_str());
  }
  MHD_Result ok = MHD_queue_response(c, status, resp);
  MHD_destroy_response(resp);
  return ok;
}

}  // namespace

PeerServer::PeerServer(BlobStore& blobs, const std::string& listen, KeyFn key)
    : impl_(new Impl{blobs, std::move(key), nullptr}) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos)
    throw Error(EINVAL, "peer address must be host:port: " + quote(listen));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(listen.substr(colon + 1))));
  if (::inet_pton(AF_INET, listen.substr(0, colon).c_str(), &addr.sin_addr) != 1)
    throw Error(EINVAL, "peer address must be an IPv4 host:port: " + quote(listen));
  impl_->daemon = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, nullptr, nullptr,
      &handle, impl_.get(), MHD_OPTION_SOCK_ADDR, reinterpret_cast<sockaddr*>(&addr),
      MHD_OPTION_THREAD_POOL_SIZE, 4u, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
  if (!impl_->daemon) throw Error(EADDRINUSE, "cannot serve peers on " + listen);
  const MHD_DaemonInfo* info = MHD_get_daemon_info(impl_->daemon, MHD_DAEMON_INFO_BIND_PORT);
  address_ =
      listen.substr(0, colon) + ":" + std::to_string(info ? info->port : ntohs(addr.sin_port));
}

PeerServer::~PeerServer() {
  if (impl_ && impl_->daemon) MHD_stop_daemon(impl_->daemon);
}

}  // namespace recall
