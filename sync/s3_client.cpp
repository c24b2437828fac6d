#include "sync/s3_client.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <pugixml.hpp>
#include <random>
#include <thread>

#include "base/error.h"
#include "base/file_io.h"
#include "base/ids.h"
#include "base/sha256.h"
#include "sync/curl_stop.h"

namespace recall {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string sha256_of_range(int fd, uint64_t offset, uint64_t size) {
  Sha256 h;
  std::vector<std::byte> buf(1 << 20);
  for (uint64_t done = 0; done < size;) {
    size_t n = pread_full(fd, std::span(buf.data(), std::min<uint64_t>(buf.size(), size - done)),
                          offset + done);
    if (n == 0) throw Error(EIO, "the file to upload is shorter than expected");
    h.update(std::span<const std::byte>(buf.data(), n));
    done += n;
  }
  return to_hex(h.finish());
}

bool transient_curl(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

// The text of the first element called `name` anywhere in an XML document.
std::string xml_text(const std::string& xml, const char* name) {
  pugi::xml_document doc;
  if (!doc.load_buffer(xml.data(), xml.size())) return "";
  pugi::xpath_node n = doc.select_node((std::string("//") + name).c_str());
  return n ? n.node().text().as_string() : "";
}

}  // namespace

std::string uri_encode(const std::string& s, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string canonical_query(std::vector<std::pair<std::string, std::string>> query) {
  for (auto& [k, v] : query) {
    k = uri_encode(k, false);
    v = uri_encode(v, false);
  }
  std::sort(query.begin(), query.end());
  std::string out;
  for (const auto& [k, v] : query) {
    if (!out.empty()) out += '&';
    out += k + "=" + v;
  }
  return out;
}

struct S3Client::Request {
  std::string method = "GET";
  std::string url;
  std::string payload_sha{kEmptySha256};
  std::vector<std::string> headers;
  // A body from memory or from a file range.
  std::string mem;
  int fd = -1;
  uint64_t offset = 0, size = 0;
  uint64_t sent = 0;
  // Where a GET's body goes (else into Response::body).
  std::span<std::byte> sink;
  size_t sink_used = 0;
  // Or a stream of [range_start, range_end]: each attempt asks for what it
  // has not delivered yet.
  const std::function<bool(std::span<const std::byte>)>* stream = nullptr;
  uint64_t range_start = 0, range_end = 0, streamed = 0;
  bool stopped = false;        // the stream's sink said stop (or threw: error)
  bool cancelled = false;      // the client's cancel flag was set
  std::exception_ptr error;    // what the sink threw (not through libcurl)
  bool ignored_range = false;  // a 200 answer to a range request
  Response* response = nullptr;
};

S3Client::S3Client(S3Config config) : config_(std::move(config)) {
  global_init();
  curl_.reset(curl_easy_init());
  if (!curl_) throw Error(ENOMEM, "cannot start libcurl");
  while (!config_.endpoint.empty() && config_.endpoint.back() == '/') config_.endpoint.pop_back();
}

S3Client::~S3Client() = default;

std::string S3Client::key_for(const std::string& owner_id, const std::string& sha256) const {
  return (config_.prefix.empty() ? "" : config_.prefix + "/") + owner_id + "/" + sha256;
}

std::string S3Client::url(const std::string& key,
                          const std::vector<std::pair<std::string, std::string>>& query) const {
  std::string u = config_.endpoint + "/" + uri_encode(config_.bucket, false);
  if (!key.empty()) u += "/" + uri_encode(key, true);
  if (!query.empty()) u += "?" + canonical_query(query);
  return u;
}

void S3Client::fail(const Response& r, const std::string& what) const {
  std::string code = xml_text(r.body, "Code");
  std::string msg = what + ": HTTP " + std::to_string(r.status) + (code.empty() ? "" : " " + code);
  if (r.status == 404) throw Error(ENOENT, msg);
  // S3 takes no request dated 15 minutes away from its clock, and libcurl
  // dates the signature by this device's. A HEAD's refusal has no body to
  // say so: a large gap to the answer's Date says it.
  std::optional<int64_t> ahead;  // the server's clock minus this one's, in s
  if (r.server_time) ahead = *r.server_time - now_ms() / 1000;
  const bool skewed = code == "RequestTimeTooSkewed" ||
                      (r.status == 403 && ahead && std::abs(*ahead) >= kSkewedClock);
  if (skewed) {
    std::string by;
    if (ahead)
      by = " by " + std::to_string(std::abs(*ahead) / 60) + " min (" +
           (*ahead < 0 ? "ahead of" : "behind") + " the server's)";
    throw Error(EACCES,
                msg + ": this device's clock is off" + by + "; set it (timedatectl set-ntp true)");
  }
  if (r.status == 403) throw Error(EACCES, msg + " (check the access key, secret and region)");
  if (r.status >= 500) throw Error(EIO, msg);
  throw Error(EINVAL, msg);
}

S3Client::Response S3Client::perform(Request& req) {
  CURL* c = curl_.get();
  std::mt19937_64 rng(std::random_device{}());
  std::string last_error;
  bool answered = false;  // the last attempt got a (5xx) answer, not silence
  // Asked while a transfer runs and while a retry waits: whether to go on.
  std::function<bool()> keep_going = [this, &req] {
    if (cancel_ && cancel_->load()) {
      req.cancelled = true;
      return false;
    }
    if (!req.stream || sink_wants_more(*req.stream, req.error)) return true;
    req.stopped = true;
    return false;
  };
  // True when the sink stopped the request; throws what it threw, or
  // ECANCELED when the cancel flag did.
  auto stopped_early = [&req] {
    if (req.error) std::rethrow_exception(req.error);
    if (req.cancelled)
      throw Error(ECANCELED, "S3 " + req.method + " cancelled: recallfs is stopping");
    return req.stopped;
  };
  for (int attempt = 0; attempt < std::max(1, config_.attempts); ++attempt) {
    if (attempt > 0) {
      // Exponential backoff with full jitter: 100 ms, 200 ms, ... up to 5 s.
      auto cap = std::min<int64_t>(5000, 100LL << std::min(attempt, 10));
      auto until = std::chrono::steady_clock::now() +
                   std::chrono::milliseconds(rng() % static_cast<uint64_t>(cap) + 1);
      while (keep_going()) {
        auto left = until - std::chrono::steady_clock::now();
        if (left <= std::chrono::steady_clock::duration::zero()) break;
        std::this_thread::sleep_for(
            std::min<std::chrono::steady_clock::duration>(left, std::chrono::milliseconds(100)));
      }
    }
    Response resp;
    if (stopped_early()) return resp;
    req.response = &resp;
    req.sent = 0;
    req.sink_used = 0;
    curl_easy_reset(c);
    std::string sigv4 = "aws:amz:" + config_.region + ":s3";
    curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4.c_str());
    curl_easy_setopt(c, CURLOPT_USERNAME, config_.access_key.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, config_.secret_key.c_str());
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);  // a stall is a failure
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(config_.stall_seconds));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_slist* headers = nullptr;
    std::string sha = "x-amz-content-sha256: " + req.payload_sha;
    headers = curl_slist_append(headers, sha.c_str());
    for (const std::string& h : req.headers) headers = curl_slist_append(headers, h.c_str());
    std::string range;
    if (req.stream) {
      range = "Range: bytes=" + std::to_string(req.range_start + req.streamed) + "-" +
              std::to_string(req.range_end);
      headers = curl_slist_append(headers, range.c_str());
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    if (req.method == "HEAD") {
      curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (req.method == "PUT") {
      curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
      uint64_t total = req.fd >= 0 ? req.size : req.mem.size();
      curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(total));
      curl_easy_setopt(c, CURLOPT_READDATA, &req);
      curl_easy_setopt(
          c, CURLOPT_READFUNCTION, +[](char* buf, size_t sz, size_t n, void* ud) -> size_t {
            auto* r = static_cast<Request*>(ud);
            size_t want = sz * n;
            if (r->fd >= 0) {
              size_t left = static_cast<size_t>(r->size - r->sent);
              size_t got =
                  pread_full(r->fd, std::as_writable_bytes(std::span(buf, std::min(want, left))),
                             r->offset + r->sent);
              r->sent += got;
              return got;
            }
            size_t left = r->mem.size() - static_cast<size_t>(r->sent);
            size_t k = std::min(want, left);
            std::memcpy(buf, r->mem.data() + r->sent, k);
            r->sent += k;
            return k;
          });
    } else if (req.method == "POST") {
      curl_easy_setopt(c, CURLOPT_POST, 1L);
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.mem.c_str());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.mem.size()));
    } else if (req.method != "GET") {
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &req);
    curl_easy_setopt(
        c, CURLOPT_WRITEFUNCTION, +[](char* data, size_t sz, size_t n, void* ud) -> size_t {
          auto* r = static_cast<Request*>(ud);
          size_t len = sz * n;
          if (r->stream && r->response->status / 100 == 2) {
            if (r->response->status == 200 && r->range_start + r->streamed > 0) {
              r->ignored_range = true;
              return 0;
            }
            bool more = false;
            try {
              more = (*r->stream)(std::as_bytes(std::span(data, len)));
            } catch (...) {
              r->error = std::current_exception();
            }
            if (!more) {
              r->stopped = true;
              return 0;
            }
            r->streamed += len;
            return len;
          }
          if (!r->sink.empty() && r->response->status / 100 == 2) {
            size_t k = std::min(len, r->sink.size() - r->sink_used);
            std::memcpy(r->sink.data() + r->sink_used, data, k);
            r->sink_used += k;
            return k == len ? len : 0;  // more bytes than asked for: abort
          }
          if (r->response->body.size() < (1 << 20)) r->response->body.append(data, len);
          return len;
        });
    end_transfer_when(c, &keep_going);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &req);
    curl_easy_setopt(
        c, CURLOPT_HEADERFUNCTION, +[](char* data, size_t sz, size_t n, void* ud) -> size_t {
          auto* r = static_cast<Request*>(ud);
          std::string line(data, sz * n);
          if (line.starts_with("HTTP/")) {
            size_t sp = line.find(' ');
            if (sp != std::string::npos) r->response->status = std::atol(line.c_str() + sp + 1);
          }
          std::string lower = line;
          std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
          if (lower.starts_with("etag:")) {
            std::string v = line.substr(5);
            while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' '))
              v.pop_back();
            while (!v.empty() && v.front() == ' ') v.erase(0, 1);
            r->response->etag = v;
          } else if (lower.starts_with("content-length:")) {
            r->response->content_length = std::stoull(line.substr(15));
          } else if (lower.starts_with("date:")) {
            time_t t = curl_getdate(line.substr(5).c_str(), nullptr);
            if (t != -1) r->response->server_time = static_cast<int64_t>(t);
          }
          return sz * n;
        });
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(headers);
    if (stopped_early()) return resp;
    if (req.ignored_range)
      throw Error(EIO, "the object store ignored a range request for " + req.url);
    if (rc != CURLE_OK) {
      last_error = curl_easy_strerror(rc);
      answered = false;
      if (transient_curl(rc)) continue;
      throw Error(EIO, "S3 " + req.method + " failed: " + last_error);
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
    if (resp.status >= 500) {
      last_error = "HTTP " + std::to_string(resp.status);
      answered = true;
      continue;
    }
    if (!req.sink.empty()) resp.content_length = req.sink_used;
    return resp;
  }
  if (answered)
    throw Error(EIO, "the object store at " + config_.endpoint + " answered " + last_error +
                         " to " + std::to_string(config_.attempts) + " attempts");
  throw Error(ENOTCONN, "the object store at " + config_.endpoint + " did not answer after " +
                            std::to_string(config_.attempts) + " attempts (" + last_error + ")");
}

void S3Client::create_bucket() {
  Request r;
  r.method = "PUT";
  r.url = url("", {});
  Response resp = perform(r);
  if (resp.status / 100 == 2) return;
  std::string code = xml_text(resp.body, "Code");
  if (code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists") return;
  fail(resp, "create bucket " + config_.bucket);
}

std::optional<uint64_t> S3Client::head(const std::string& key) {
  Request r;
  r.method = "HEAD";
  r.url = url(key, {});
  Response resp = perform(r);
  if (resp.status == 404) return std::nullopt;
  if (resp.status / 100 != 2) fail(resp, "head " + key);
  return resp.content_length.value_or(0);
}

void S3Client::put(const std::string& key, int fd, uint64_t offset, uint64_t size) {
  Request r;
  r.method = "PUT";
  r.url = url(key, {});
  r.fd = fd;
  r.offset = offset;
  r.size = size;
  r.payload_sha = sha256_of_range(fd, offset, size);
  Response resp = perform(r);
  if (resp.status / 100 != 2) fail(resp, "put " + key);
}

size_t S3Client::get_range(const std::string& key, uint64_t offset, std::span<std::byte> buf) {
  if (buf.empty()) return 0;
  Request r;
  r.url = url(key, {});
  r.headers.push_back("Range: bytes=" + std::to_string(offset) + "-" +
                      std::to_string(offset + buf.size() - 1));
  r.sink = buf;
  Response resp = perform(r);
  if (resp.status == 416) return 0;  // at or past the end
  if (resp.status / 100 != 2) fail(resp, "get " + key);
  if (resp.status == 200 && offset > 0)
    throw Error(EIO, "the object store ignored a range request for " + key);
  return r.sink_used;
}

void S3Client::get_stream(const std::string& key, uint64_t offset, uint64_t length,
                          const std::function<bool(std::span<const std::byte>)>& sink) {
  if (length == 0) return;
  Request r;
  r.url = url(key, {});
  r.stream = &sink;
  r.range_start = offset;
  r.range_end = offset + length - 1;
  Response resp = perform(r);
  if (r.stopped) return;
  if (resp.status / 100 != 2) fail(resp, "get " + key);
  if (r.streamed != length)
    throw Error(EIO, "the object store sent " + std::to_string(r.streamed) + " of " +
                         std::to_string(length) + " bytes of " + key);
}

void S3Client::remove(const std::string& key) {
  Request r;
  r.method = "DELETE";
  r.url = url(key, {});
  Response resp = perform(r);
  if (resp.status / 100 != 2 && resp.status != 404) fail(resp, "delete " + key);
}

std::string S3Client::create_multipart(const std::string& key) {
  Request r;
  r.method = "POST";
  r.url = url(key, {{"uploads", ""}});
  Response resp = perform(r);
  if (resp.status / 100 != 2) fail(resp, "start multipart upload of " + key);
  std::string id = xml_text(resp.body, "UploadId");
  if (id.empty()) throw Error(EIO, "the object store gave no upload id for " + key);
  return id;
}

std::string S3Client::upload_part(const std::string& key, const std::string& upload_id, int number,
                                  int fd, uint64_t offset, uint64_t size) {
  Request r;
  r.method = "PUT";
  r.url = url(key, {{"partNumber", std::to_string(number)}, {"uploadId", upload_id}});
  r.fd = fd;
  r.offset = offset;
  r.size = size;
  r.payload_sha = sha256_of_range(fd, offset, size);
  Response resp = perform(r);
  if (resp.status / 100 != 2) fail(resp, "upload part " + std::to_string(number) + " of " + key);
  return resp.etag;
}

std::vector<S3Part> S3Client::list_parts(const std::string& key, const std::string& upload_id) {
  std::vector<S3Part> parts;
  std::string marker;
  for (;;) {
    std::vector<std::pair<std::string, std::string>> q = {{"uploadId", upload_id}};
    if (!marker.empty()) q.emplace_back("part-number-marker", marker);
    Request r;
    r.url = url(key, q);
    Response resp = perform(r);
    if (resp.status == 404) throw Error(ENOENT, "the upload of " + key + " is gone");
    if (resp.status / 100 != 2) fail(resp, "list parts of " + key);
    pugi::xml_document doc;
    doc.load_buffer(resp.body.data(), resp.body.size());
    for (pugi::xpath_node p : doc.select_nodes("//Part")) {
      S3Part part;
      part.number = p.node().child("PartNumber").text().as_int();
      part.etag = p.node().child("ETag").text().as_string();
      part.size = p.node().child("Size").text().as_ullong();
      parts.push_back(part);
    }
    if (xml_text(resp.body, "IsTruncated") != "true") break;
    marker = xml_text(resp.body, "NextPartNumberMarker");
    if (marker.empty()) break;
  }
  return parts;
}

void S3Client::complete_multipart(const std::string& key, const std::string& upload_id,
                                  const std::vector<S3Part>& parts) {
  std::string xml = "<CompleteMultipartUpload>";
  for (const S3Part& p : parts)
    xml += "<Part><PartNumber>" + std::to_string(p.number) + "</PartNumber><ETag>" + p.etag +
           "</ETag></Part>";
  xml += "</CompleteMultipartUpload>";
  Request r;
  r.method = "POST";
  r.url = url(key, {{"uploadId", upload_id}});
  r.mem = xml;
  r.payload_sha = sha256_hex(xml);
  r.headers.push_back("Content-Type: application/xml");
  Response resp = perform(r);
  // A 200 may still carry an error document.
  if (resp.status / 100 != 2 || !xml_text(resp.body, "Code").empty())
    fail(resp, "complete the upload of " + key);
}

void S3Client::abort_multipart(const std::string& key, const std::string& upload_id) {
  Request r;
  r.method = "DELETE";
  r.url = url(key, {{"uploadId", upload_id}});
  Response resp = perform(r);
  if (resp.status / 100 != 2 && resp.status != 404) fail(resp, "abort the upload of " + key);
}

}  // namespace recall
