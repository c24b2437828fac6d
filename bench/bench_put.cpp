// put of a 1 GiB file vs the slower of `openssl dgst -sha256` and a durable
// copy (`dd conv=fsync`) of the same file: hashing and durable writing
// should overlap, not add up (target >= 0.9).
//
//   bench_put [DIR]     DIR: where the data lives (default ./bench-data)
#include <filesystem>

#include "bench/bench_util.h"
#include "cas/blob_store.h"

int main(int argc, char** argv) {
  using namespace recall;
  using namespace recall::bench;
  namespace fs = std::filesystem;
  fs::path dir = bench_dir(argc, argv);
  fs::path src = dir / "put-source.bin";
  const uint64_t size = 1ull << 30;
  if (!fs::exists(src) || fs::file_size(src) != size) make_random_file(src, size, 1);
  warm(src);

  double openssl = time_shell("openssl dgst -sha256 '" + src.string() + "' > /dev/null");
  fs::path copy = dir / "put-copy.bin";
  double dd = time_shell("dd if='" + src.string() + "' of='" + copy.string() +
                         "' bs=1M conv=fsync status=none");
  fs::remove(copy);

  fs::path data = dir / "put-store";
  fs::remove_all(data);
  fs::create_directories(data);
  double ours;
  {
    auto store = BlobStore::open(data, {.create = true});
    warm(src);
    auto t0 = std::chrono::steady_clock::now();
    store->put_file(src);
    ours = seconds_since(t0);
  }
  fs::remove_all(data);
  std::printf(
      "openssl dgst: %.3f s (%.0f MB/s), dd conv=fsync: %.3f s (%.0f MB/s), put: %.3f s (%.0f "
      "MB/s)\n",
      openssl, size / openssl / 1e6, dd, size / dd / 1e6, ours, size / ours / 1e6);
  print_ratio("put 1 GiB", ours, std::max(openssl, dd), "max(openssl, dd)", 0.9);
  return 0;
}
