// verify of 2 GiB in 200 objects vs single-core `openssl dgst -sha256` over
// the same files, both from a warm page cache (target >= 1.6 on 2 cores).
//
//   bench_verify [DIR]
#include <filesystem>
#include <sstream>
#include <thread>

#include "bench/bench_util.h"
#include "cas/blob_store.h"

int main(int argc, char** argv) {
  using namespace recall;
  using namespace recall::bench;
  namespace fs = std::filesystem;
  fs::path dir = bench_dir(argc, argv);
  fs::path data = dir / "verify-store";
  fs::remove_all(data);
  fs::create_directories(data);
  auto store = BlobStore::open(data, {.create = true});
  fs::path tmp = dir / "verify-obj.bin";
  const int objects = 200;
  const uint64_t each = (2ull << 30) / objects;
  std::string files;
  for (int i = 0; i < objects; ++i) {
    make_random_file(tmp, each, 100 + static_cast<uint64_t>(i));
    PutResult r = store->put_file(tmp);
    files += " '" + store->object_path(r.sha256).string() + "'";
  }
  fs::remove(tmp);
  std::system(("cat" + files + " > /dev/null").c_str());  // warm cache for both

  double openssl = time_shell("openssl dgst -sha256" + files + " > /dev/null");
  auto t0 = std::chrono::steady_clock::now();
  VerifyReport r = store->verify();
  double ours = seconds_since(t0);
  if (r.checked != objects || !r.modified.empty()) {
    std::fprintf(stderr, "verify checked %llu objects, %zu modified\n",
                 static_cast<unsigned long long>(r.checked), r.modified.size());
    return 1;
  }
  std::printf("2 GiB in %d objects, %u cores: openssl dgst %.3f s, verify %.3f s\n", objects,
              std::thread::hardware_concurrency(), openssl, ours);
  print_ratio("verify 2 GiB", ours, openssl, "openssl dgst (1 core)", 1.6);
  store.reset();
  fs::remove_all(data);
  return 0;
}
