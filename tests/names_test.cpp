// fs/names and fs/tree: escaping, shortening, collision names; every listed
// name resolves back to the entry it was listed for.
#include "fs/names.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "base/error.h"
#include "base/ids.h"
#include "base/utf8.h"
#include "fs/library.h"
#include "fs/tree.h"
#include "tests/test_util.h"

namespace recall {
namespace {
using test::TempDir;

bool is_valid_file_name(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.size() <= 255 &&
         s.find('/') == std::string::npos && s.find('\0') == std::string::npos;
}

TEST(Names, OrdinaryNamesShowAsThemselves) {
  for (std::string n : std::vector<std::string>{
           "paper.pdf", "Attention Is All You Need", "-leading dash", " spaces ", "new\nline",
           "100% sure.pdf", "caf\xc3\xa9", "cafe\xcc\x81", "%20encoded", std::string(255, 'x'),
           // Names that look escaped, as URL-encoded downloads are: typed
           // through the mount, they must be listed as typed (rsync renames
           // its temporary file to the name and then looks it up).
           "50%25 off.pdf", "a%2Fb", "%2E", "x%2Ey", "%00"}) {
    EXPECT_EQ(escape_name(n), n);
  }
}

TEST(Names, NamesThatCannotBeFileNamesAreEscapedReversibly) {
  EXPECT_EQ(escape_name("Input/Output"), "Input%2FOutput");
  EXPECT_EQ(escape_name("."), "%2E");
  EXPECT_EQ(escape_name(".."), "%2E%2E");
  EXPECT_EQ(escape_name(std::string("a\0b", 3)), "a%00b");
  EXPECT_EQ(escape_name("a/%2Fb"), "a%2F%252Fb");  // a literal escape in it stays literal
  EXPECT_EQ(unescape_name("a%2F%252Fb"), "a/%2Fb");
  std::mt19937_64 rng(42);
  const std::string alphabet = std::string("ab/.%2F5E0\0 x", 13);
  for (int i = 0; i < 20000; ++i) {
    std::string raw;
    size_t len = 1 + rng() % 12;
    for (size_t k = 0; k < len; ++k) raw += alphabet[rng() % alphabet.size()];
    std::string shown = escape_name(raw);
    ASSERT_TRUE(is_valid_file_name(shown)) << shown;
    ASSERT_EQ(is_file_name(raw), is_valid_file_name(raw));
    // A name that can be a file name shows as itself; any other is escaped.
    ASSERT_EQ(is_file_name(raw) ? shown : unescape_name(shown), raw) << shown;
  }
}

TEST(Names, LongNamesAreShortenedAndKeepTheirExtension) {
  std::string raw = std::string(300, 'T') + ".pdf";
  std::string shown = escape_name(raw);
  EXPECT_LE(shown.size(), 255u);
  EXPECT_TRUE(shown.ends_with(".pdf"));
  auto s = parse_shortened(shown);
  ASSERT_TRUE(s);
  EXPECT_TRUE(raw.starts_with(s->raw_prefix));
  EXPECT_NE(escape_name(raw + "x"), shown);
  // Multi-byte characters are never cut in half.
  std::string greek;
  for (int i = 0; i < 200; ++i) greek += "\xce\xb1";  // alpha
  std::string g = escape_name(greek);
  EXPECT_LE(g.size(), 255u);
  EXPECT_NE(static_cast<unsigned char>(g[g.find('~') - 1]), 0xce);
  EXPECT_FALSE(parse_shortened("short~0123456789.pdf"));
}

TEST(Names, CollisionNames) {
  EXPECT_EQ(collision_name("paper.pdf", 2), "paper (2).pdf");
  EXPECT_EQ(collision_name("README", 3), "README (3)");
  EXPECT_EQ(collision_name(".bashrc", 2), ".bashrc (2)");
  auto c = parse_collision("paper (12).pdf");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->base, "paper.pdf");
  EXPECT_EQ(c->n, 12u);
  EXPECT_FALSE(parse_collision("paper (1).pdf"));
  EXPECT_FALSE(parse_collision("paper (02).pdf"));
  EXPECT_FALSE(parse_collision("paper.pdf"));
  EXPECT_LE(collision_name(std::string(255, 'y'), 2).size(), 255u);
}

TEST(Names, Utf8IsCheckedAsTheServerChecksIt) {
  for (std::string ok : {"", "plain", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x93\x9a",
                         "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf" /* U+10FFFF */})
    EXPECT_TRUE(is_valid_utf8(ok)) << ok;
  for (std::string bad :
       {std::string("a\0b", 3), std::string("caf\xe9"), std::string("\xc0\xaf"),
        std::string("\xe0\x80\xaf") /* overlong */, std::string("\xed\xa0\x80") /* a surrogate */,
        std::string("\xf4\x90\x80\x80") /* past U+10FFFF */,
        std::string("\xe2\x82") /* cut short */, std::string("\x80"), std::string("\xff")})
    EXPECT_FALSE(is_valid_utf8(bad)) << quote(bad);
  try {
    require_utf8("caf\xe9\n.txt", "a file name");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), EILSEQ);
    EXPECT_EQ(e.message(), "a file name is not valid UTF-8: 'caf\\xe9\\x0a.txt'");
  }
}

TEST(Names, ScratchFilesOfEditorsAndDesktops) {
  for (const char* n : {".paper.pdf.swp", "~$report.docx", ".~lock.report.odt#", ".DS_Store",
                        "._paper.pdf", "lu12345.tmp", "paper.pdf~", ".#notes.org"})
    EXPECT_TRUE(is_scratch_name(n)) << n;
  for (const char* n : {"paper.pdf", "swp", "notes.txt", ".bashrc", "temp.pdf"})
    EXPECT_FALSE(is_scratch_name(n)) << n;
}

class TreeTest : public ::testing::Test {
 protected:
  void SetUp() override { lib = Library::open(dir / "lib", {.create = true}); }
  // Each add lands in a later millisecond, so creation order is collision order.
  Asset add(const Place& place, const std::string& name, const std::string& content) {
    int64_t t = now_ms();
    while (now_ms() == t) {
    }
    test::write_file(dir / "src", content);
    return lib->add_file(dir / "src", place, name);
  }
  // Every name listed in `dir_path` resolves to the node it was listed with.
  std::vector<std::string> check_listing(const std::string& dir_path) {
    Tree tree(lib->catalog(), lib->blobs());
    std::vector<std::string> names;
    tree.list(tree.resolve(dir_path), [&](const std::string& shown, const Node& n) {
      names.push_back(shown);
      EXPECT_TRUE(is_valid_file_name(shown)) << shown;
      Node back = tree.resolve(dir_path + "/" + shown);
      EXPECT_EQ(back.kind, n.kind) << shown;
      if (n.entry) {
        EXPECT_EQ(back.entry->id, n.entry->id) << shown;
      }
      if (n.work) {
        EXPECT_EQ(back.work->id, n.work->id) << shown;
      }
      return true;
    });
    std::set<std::string> unique(names.begin(), names.end());
    EXPECT_EQ(unique.size(), names.size()) << "two entries listed under one name";
    return names;
  }
  TempDir dir;
  std::unique_ptr<Library> lib;
};

TEST_F(TreeTest, CollidingNamesAreToldApartAndAllReachable) {
  add(Place{}, "paper.pdf", "first");
  add(Place{}, "paper.pdf", "second");
  add(Place{}, "paper (2).pdf", "a real name that looks like a collision name");
  add(Place{}, "paper.pdf", "third");
  auto names = check_listing("inbox");
  EXPECT_EQ(names, (std::vector<std::string>{"paper (2).pdf", "paper.pdf", "paper (3).pdf",
                                             "paper (4).pdf"}));
  Tree tree(lib->catalog(), lib->blobs());
  EXPECT_EQ(tree.resolve("inbox/paper (3).pdf").sha256, test::sha256_of("second"));
  EXPECT_EQ(tree.resolve("inbox/paper (2).pdf").sha256,
            test::sha256_of("a real name that looks like a collision name"));
  EXPECT_THROW(tree.resolve("inbox/paper (5).pdf"), Error);
}

TEST_F(TreeTest, OddTitlesAndNamesAreEscapedAndResolve) {
  Work a = lib->catalog().create_work("Input/Output Systems");
  lib->catalog().create_work("..");
  lib->catalog().create_work(std::string(400, 'L') + " a very long title");
  lib->catalog().create_work("Same");
  lib->catalog().create_work("Same");
  add(Place{a.id, ""}, "a/b.pdf", "slash in a file name");
  add(Place{a.id, ""}, std::string(300, 'n') + ".pdf", "long");
  add(Place{a.id, ""}, std::string(300, 'n') + ".pdf", "long, twice");
  auto works = check_listing("works");
  EXPECT_EQ(works.size(), 5u);
  EXPECT_NE(std::find(works.begin(), works.end(), "Input%2FOutput Systems"), works.end());
  EXPECT_NE(std::find(works.begin(), works.end(), "Same (2)"), works.end());
  auto files = check_listing("works/Input%2FOutput Systems");
  EXPECT_EQ(files.size(), 3u);
  EXPECT_NE(std::find(files.begin(), files.end(), "a%2Fb.pdf"), files.end());
}

TEST_F(TreeTest, AnEscapedNameGivesWayToTheSameNameShownAsItself) {
  // "a/b" shows escaped as "a%2Fb", which is also a name of its own.
  add(Place{}, "a/b", "slash");
  add(Place{}, "a%2Fb", "literal one");
  add(Place{}, "a%2Fb", "literal two");
  add(Place{}, "a/b (2)", "slash, (2)");  // escapes to what the literal's second would be
  add(Place{}, "x/y", "only escaped");
  auto names = check_listing("inbox");
  EXPECT_EQ(names.size(), 5u);
  Tree tree(lib->catalog(), lib->blobs());
  auto content_of = [&](const std::string& shown) {
    std::string sha = tree.resolve("inbox/" + shown).sha256;
    for (const char* c : {"slash", "literal one", "literal two", "slash, (2)", "only escaped"})
      if (test::sha256_of(c) == sha) return std::string(c);
    return std::string("?");
  };
  EXPECT_EQ(content_of("a%2Fb"), "literal one");
  EXPECT_EQ(content_of("a%2Fb (2)"), "slash, (2)");
  EXPECT_EQ(content_of("a%2Fb (3)"), "literal two");
  EXPECT_EQ(content_of("a%2Fb (4)"), "slash");
  EXPECT_EQ(content_of("x%2Fy"), "only escaped");
  EXPECT_THROW(tree.resolve("inbox/a%2Fb (5)"), Error);
}

// A 255-byte name ending in " (2)", twice: its collision name, cut and
// counted, would be the name itself.
TEST_F(TreeTest, ALongNameThatLooksLikeACollisionNameIsToldApartFromItself) {
  std::string raw = std::string(251, 'x') + " (2)";
  add(Place{}, raw, "one");
  add(Place{}, raw, "two");
  auto names = check_listing("inbox");
  EXPECT_EQ(names.size(), 2u);
}

TEST_F(TreeTest, APlaceShowsAtThePathItIsListedUnder) {
  Catalog& cat = lib->catalog();
  Work first = cat.create_work("Notes");
  Work second = cat.create_work("Notes");
  Work slash = cat.create_work("A/B");
  add(Place{second.id, ""}, "drafts", "a file, older than the folder of its name");
  cat.create_folder(Place{second.id, ""}, "drafts", false, 0755);
  cat.create_folder(Place{second.id, "drafts"}, "x%2Ey", false, 0755);
  Tree tree(lib->catalog(), lib->blobs());
  EXPECT_EQ(tree.shown_path(Place{}), "/inbox");
  EXPECT_EQ(tree.shown_path(Place{first.id, ""}), "/works/Notes");
  EXPECT_EQ(tree.shown_path(Place{second.id, ""}), "/works/Notes (2)");
  EXPECT_EQ(tree.shown_path(Place{slash.id, ""}), "/works/A%2FB");
  EXPECT_EQ(tree.shown_path(Place{second.id, "drafts/x%2Ey"}), "/works/Notes (2)/drafts (2)/x%2Ey");
  for (const Place& p : {Place{second.id, "drafts"}, Place{second.id, "drafts/x%2Ey"}})
    EXPECT_EQ(tree.resolve(tree.shown_path(p)).place, p);
  EXPECT_EQ(tree.shown_path(Place{second.id, "nothing"}), "");
}

TEST_F(TreeTest, ResolvesTheFixedTopAndReportsErrors) {
  Tree tree(lib->catalog(), lib->blobs());
  EXPECT_EQ(tree.resolve("").kind, Node::Kind::Root);
  EXPECT_EQ(tree.resolve("/works").kind, Node::Kind::WorksDir);
  EXPECT_TRUE(tree.resolve("inbox").is_inbox());
  Asset a = add(Place{}, "f.txt", "content");
  EXPECT_EQ(tree.resolve("blobs/" + a.sha256).kind, Node::Kind::Blob);
  try {
    tree.resolve("inbox/f.txt/deeper");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ENOTDIR);
  }
  try {
    tree.resolve("nothing");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ENOENT);
  }
  EXPECT_THROW(tree.resolve("blobs/" + std::string(64, 'a')), Error);
}

}  // namespace
}  // namespace recall
