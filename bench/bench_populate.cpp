// Fills a library with WORKS works of PER_WORK assets each (100 distinct
// small blobs shared among them), through the catalog in large
// transactions: the fast way to a 100k-asset library for the listing bench.
//
//   bench_populate DATA_DIR WORKS PER_WORK
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>

#include "fs/library.h"

int main(int argc, char** argv) {
  using namespace recall;
  if (argc != 4) {
    std::fprintf(stderr, "usage: bench_populate DATA_DIR WORKS PER_WORK\n");
    return 2;
  }
  auto lib = Library::open(argv[1], {.create = true});
  int works = std::atoi(argv[2]), per_work = std::atoi(argv[3]);
  std::vector<BlobMeta> blobs;
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100; ++i) {
    std::string data(4096, '\0');
    for (auto& c : data) c = static_cast<char>(rng());
    std::istringstream in(data);
    blobs.push_back(Library::blob_meta(lib->blobs().put(in), "blob" + std::to_string(i)));
  }
  Catalog& cat = lib->catalog();
  for (int w = 0; w < works; ++w) {
    cat.batch([&] {
      Work work = cat.create_work("Work " + std::to_string(w));
      for (int a = 0; a < per_work; ++a) {
        NewAsset n;
        n.place = Place{work.id, ""};
        n.filename = "file-" + std::to_string(a) + ".pdf";
        n.blob = blobs[static_cast<size_t>(w * per_work + a) % blobs.size()];
        cat.add_asset(n);
      }
    });
  }
  std::printf("%d works, %d assets\n", works, works * per_work);
  return 0;
}
