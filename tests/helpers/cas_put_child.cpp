// Test helper: opens a BlobStore in DATA_DIR and puts COUNT random blobs,
// printing "put <i> <sha256>" after each. The durability test kills it with
// SIGKILL at random moments and then checks what it left behind.
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>

#include "cas/blob_store.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: cas_put_child DATA_DIR SEED COUNT\n");
    return 2;
  }
  std::mt19937_64 rng(std::strtoull(argv[2], nullptr, 10));
  int count = std::atoi(argv[3]);
  auto store = recall::BlobStore::open(argv[1], {.create = true});
  for (int i = 0; i < count; ++i) {
    // Mostly small objects, some of several MiB so kills land mid-write too.
    size_t size = (rng() % 4 == 0) ? rng() % (3 << 20) : rng() % 65536;
    std::string data(size, '\0');
    for (auto& c : data) c = static_cast<char>(rng());
    std::istringstream in(data);
    recall::PutResult r = store->put(in);
    std::printf("put %d %s\n", i, r.sha256.c_str());
    std::fflush(stdout);
  }
  return 0;
}
