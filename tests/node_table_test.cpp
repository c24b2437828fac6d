// NodeTable: node ids for paths, as the kernel looks names up, renames,
// unlinks and forgets them; the listing state the adapter keeps; and the
// listings the Vfs keeps (ListingCache).
#include "fs/node_table.h"

#include <gtest/gtest.h>

#include <set>

#include "fs/listing_cache.h"
#include "fs/listing_state.h"

namespace recall {
namespace {

TEST(NodeTable, PathsFollowRenamesOfTheFoldersAbove) {
  NodeTable t;
  uint64_t works = t.remember(NodeTable::kRoot, "works");
  uint64_t a = t.remember(works, "A");
  uint64_t f = t.remember(a, "paper.pdf");
  EXPECT_EQ(t.path(NodeTable::kRoot), "/");
  EXPECT_EQ(t.path(f), "/works/A/paper.pdf");
  EXPECT_EQ(t.child_path(a, "new.txt"), "/works/A/new.txt");
  EXPECT_EQ(t.remember(works, "A"), a) << "a name known is the same node";
  t.moved(works, "A", works, "B");
  EXPECT_EQ(t.path(f), "/works/B/paper.pdf") << "everything under a renamed folder moves";
  EXPECT_EQ(t.find("/works/B/paper.pdf").node, f);
  EXPECT_EQ(t.find("/works/A/paper.pdf").node, 0u);
}

TEST(NodeTable, ARenameOverANameDetachesTheNodeItReplaces) {
  NodeTable t;
  uint64_t inbox = t.remember(NodeTable::kRoot, "inbox");
  uint64_t tmp = t.remember(inbox, "a.pdf.tmp");
  uint64_t old = t.remember(inbox, "a.pdf");
  t.add_open_handle(old, 7, false);
  t.moved(inbox, "a.pdf.tmp", inbox, "a.pdf");
  EXPECT_EQ(t.path(tmp), "/inbox/a.pdf");
  EXPECT_EQ(t.path(old), std::nullopt) << "the replaced node has no name any more";
  EXPECT_EQ(t.open_handle(old), 7u) << "but its open handle still reaches the file";
  t.add_open_handle(old, 8, true);
  EXPECT_EQ(t.open_handle(old, true), 8u) << "a truncation takes the one open for writing";
  t.remove_open_handle(old, 8);
  EXPECT_EQ(t.open_handle(old), 7u) << "another open and close of it changes nothing";
  EXPECT_EQ(t.open_handle(old, true), std::nullopt) << "none is open for writing now";
  t.remove_open_handle(old, 7);
  EXPECT_EQ(t.open_handle(old), std::nullopt);
  EXPECT_EQ(t.remember(inbox, "a.pdf"), tmp);
}

TEST(NodeTable, NodesGoWhenTheKernelForgetsEveryLookup) {
  NodeTable t;
  uint64_t inbox = t.remember(NodeTable::kRoot, "inbox");
  uint64_t f = t.remember(inbox, "x");
  EXPECT_EQ(t.remember(inbox, "x"), f);  // two lookups held
  t.forget(f, 1);
  EXPECT_EQ(t.path(f), "/inbox/x");
  t.forget(f, 1);
  EXPECT_EQ(t.path(f), std::nullopt);
  uint64_t again = t.remember(inbox, "x");
  EXPECT_NE(again, f) << "node ids are never reused";
  t.removed(inbox, "x");
  EXPECT_EQ(t.path(again), std::nullopt);
  EXPECT_EQ(t.size(), 2u);  // inbox, and the unlinked node until forgotten
  t.forget(again, 1);
  EXPECT_EQ(t.size(), 1u);
  t.forget(NodeTable::kRoot, 1);  // never goes
  EXPECT_EQ(t.path(NodeTable::kRoot), "/");
}

TEST(NodeTable, ARemovedFolderKeepsItsLastAttributesUntilForgotten) {
  NodeTable t;
  uint64_t works = t.remember(NodeTable::kRoot, "works");
  uint64_t w = t.remember(works, "W");
  EXPECT_EQ(t.node_of(works, "W"), w);
  EXPECT_EQ(t.node_of(works, "V"), 0u) << "a name the kernel never looked up";
  EXPECT_EQ(t.kept_attributes(w), std::nullopt);
  struct stat st {};
  st.st_mode = S_IFDIR | 0755;
  st.st_ino = 42;
  t.removed(works, "W");
  t.keep_attributes(w, st);
  EXPECT_EQ(t.path(w), std::nullopt);
  ASSERT_TRUE(t.kept_attributes(w));
  EXPECT_EQ(t.kept_attributes(w)->st_ino, 42u);
  EXPECT_EQ(t.node_of(works, "W"), 0u) << "the name is free for a new folder";
  t.forget(w, 1);
  EXPECT_EQ(t.kept_attributes(w), std::nullopt);
}

TEST(NodeTable, FindSaysHowFarTheKernelKnowsAPath) {
  NodeTable t;
  uint64_t works = t.remember(NodeTable::kRoot, "works");
  NodeTable::Found f = t.find("/works/New title/file.pdf");
  EXPECT_EQ(f.parent, works) << "the deepest folder known";
  EXPECT_EQ(f.name, "New title") << "and the name in it whose listing may be stale";
  EXPECT_EQ(f.node, 0u);
  f = t.find("/works");
  EXPECT_EQ(f.parent, NodeTable::kRoot);
  EXPECT_EQ(f.name, "works");
  EXPECT_EQ(f.node, works);
  f = t.find("/");
  EXPECT_EQ(f.parent, 0u);
  EXPECT_EQ(f.node, NodeTable::kRoot);
}

TEST(Listings, KeepsTheLastListingOfEachFolderUntilReadToTheEnd) {
  Listings l;
  auto listing = std::make_shared<HashedListing>(Vfs::DirListing{});
  l.keep(7, {listing, l.version()});
  EXPECT_EQ(l.find(7).listing, listing);
  EXPECT_TRUE(l.current(l.find(7)));
  l.changed();
  EXPECT_FALSE(l.current(l.find(7))) << "it may show a name removed since";
  for (uint64_t node = 100; node < 100 + Listings::kMaxKept; ++node) l.keep(node, {listing, 0});
  EXPECT_EQ(l.find(7).listing, nullptr) << "the oldest folder's goes when too many are kept";
  // A big listing pushes older folders out (memory), but stays itself.
  Vfs::DirListing big;
  struct stat st {};
  for (size_t i = 0; i < Listings::kMaxEntries + 10; ++i)
    big.entries.emplace_back(std::to_string(i), st);
  auto huge = std::make_shared<HashedListing>(std::move(big));
  l.keep(5000, {huge, 0});
  EXPECT_EQ(l.find(5000).listing, huge);
  EXPECT_EQ(l.find(100).listing, nullptr);
  l.keep(100 + Listings::kMaxKept - 1, {listing, 0});
  l.done(100 + Listings::kMaxKept - 1, listing.get());
  EXPECT_EQ(l.find(100 + Listings::kMaxKept - 1).listing, nullptr);
}

// A listing taken for a reader that wants only names has no st_blocks for
// its files: a reader given files' attributes must never page through it.
TEST(Listings, AReaderGivenFilesAttributesGetsOnlyAListingWithTheirBlocks) {
  Listings l;
  Vfs::DirListing with;
  Vfs::DirListing names_only;
  names_only.file_blocks = false;
  auto full = std::make_shared<HashedListing>(std::move(with));
  auto bare = std::make_shared<HashedListing>(std::move(names_only));
  EXPECT_FALSE(bare->file_blocks);
  l.keep(7, {bare, l.version()});
  EXPECT_EQ(l.find(7, true).listing, nullptr) << "only a names-only listing is kept";
  EXPECT_EQ(l.find(7).listing, bare);
  l.keep(7, {full, l.version()});
  l.keep(7, {bare, l.version()});  // the newest is names-only again
  EXPECT_EQ(l.find(7, true).listing, full);
  EXPECT_EQ(l.find(7, false).listing, bare);
}

TEST(HashedListing, AnOffsetResumesAfterTheSameNameInAnyListingOfTheFolder) {
  struct stat st {};
  Vfs::DirListing before;
  for (const char* n : {".", "..", "e", "a", "-dash", "c", "b", "d"})
    before.entries.emplace_back(n, st);
  HashedListing first(std::move(before));
  std::vector<std::string> order;
  for (const auto& e : first.entries) order.push_back(e.name);
  EXPECT_EQ(order, (std::vector<std::string>{".", "..", "-dash", "a", "b", "c", "d", "e"}));
  std::set<uint32_t> cookies;
  for (const auto& e : first.entries) {
    EXPECT_TRUE(cookies.insert(e.cookie).second) << "cookies are unique in a listing";
    EXPECT_LT(e.cookie, 1u << 31) << "fits a 32-bit off_t";
  }
  // A reader got ".", "..", "-dash", "a"; then "a" and "c" were removed and
  // "aa" added. It resumes after "a" whatever the new listing holds.
  uint64_t offset = first.entries[3].cookie;
  ASSERT_EQ(first.name_of(offset), "a");
  Vfs::DirListing after;
  for (const char* n : {".", "..", "e", "-dash", "b", "d", "aa"}) after.entries.emplace_back(n, st);
  HashedListing second(std::move(after));
  std::vector<std::string> rest;
  for (size_t i = second.resume_after(*first.name_of(offset)); i < second.entries.size(); ++i)
    rest.push_back(second.entries[i].name);
  EXPECT_EQ(rest, (std::vector<std::string>{"aa", "b", "d", "e"}));
  EXPECT_EQ(second.resume_after("."), 1u);
  EXPECT_EQ(second.resume_after(".."), 2u);
}

std::shared_ptr<const ListingCache::Listing> listing_of(size_t n, const std::string& tag = "f") {
  auto l = std::make_shared<ListingCache::Listing>();
  for (size_t i = 0; i < n; ++i) l->push_back({tag + std::to_string(i), EntryFacts{}});
  return l;
}

TEST(ListingCache, ServesAListingOnlyAtTheGenerationItWasReadAt) {
  ListingCache c;
  c.keep("d0/", 7, listing_of(3));
  ASSERT_NE(c.find("d0/", 7), nullptr);
  EXPECT_EQ(c.find("d0/", 7)->size(), 3u);
  EXPECT_EQ(c.find("d1w/", 7), nullptr) << "another folder";
  EXPECT_EQ(c.find("d0/", 8), nullptr) << "the catalog changed since";
  EXPECT_EQ(c.find("d0/", 7), nullptr) << "a listing found old is dropped";
  EXPECT_EQ(c.entries(), 0u);
}

TEST(ListingCache, AListingReadEarlierDoesNotReplaceANewerOne) {
  ListingCache c;
  c.keep("w", 5, listing_of(2, "new"));
  c.keep("w", 4, listing_of(1, "old"));  // a slow reader, finishing late
  auto kept = c.find("w", 5);
  ASSERT_NE(kept, nullptr);
  EXPECT_EQ((*kept)[0].shown, "new0");
  c.keep("w", 6, listing_of(1, "newer"));
  ASSERT_NE(c.find("w", 6), nullptr);
  EXPECT_EQ((*c.find("w", 6))[0].shown, "newer0");
  EXPECT_EQ(c.entries(), 2u) << "one listing of one entry, counted with its folder";
}

TEST(ListingCache, KeepsAtMostItsBoundTheFoldersListedLeastRecentlyGoingFirst) {
  ListingCache c;
  const size_t per = 9999;  // 10000 with its folder
  const size_t fit = ListingCache::kMaxEntries / (per + 1);
  for (size_t i = 0; i < fit; ++i) c.keep("d" + std::to_string(i), 1, listing_of(per));
  EXPECT_EQ(c.entries(), fit * (per + 1));
  ASSERT_NE(c.find("d0", 1), nullptr);  // now the most recently listed
  c.keep("extra", 1, listing_of(per));
  EXPECT_LE(c.entries(), ListingCache::kMaxEntries);
  EXPECT_NE(c.find("d0", 1), nullptr) << "listed last, so kept";
  EXPECT_EQ(c.find("d1", 1), nullptr) << "listed least recently, so gone";
  EXPECT_NE(c.find("extra", 1), nullptr);
  c.keep("huge", 1, listing_of(ListingCache::kMaxEntries));
  EXPECT_EQ(c.find("huge", 1), nullptr) << "a listing past the bound is not kept";
  EXPECT_NE(c.find("extra", 1), nullptr) << "and drops nothing";
}

TEST(StatInterest, AThreadThatStatsFilesGetsTheirAttributesForAWhile) {
  StatInterest s;
  auto t0 = StatInterest::Clock::now();
  EXPECT_FALSE(s.wants_file_attrs(42, t0)) << "find -type f never stats a file";
  s.noted(42, t0);
  EXPECT_TRUE(s.wants_file_attrs(42, t0 + std::chrono::seconds(1)));
  EXPECT_FALSE(s.wants_file_attrs(43, t0)) << "per thread";
  EXPECT_FALSE(s.wants_file_attrs(42, t0 + StatInterest::kInterest + std::chrono::seconds(1)));
}

}  // namespace
}  // namespace recall
