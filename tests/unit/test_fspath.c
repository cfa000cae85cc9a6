/*
** test_fspath.c — unit tests of fs/path.c: how every path of the FUSE view
** is classified (node, service, type, labels, stored id and stamp, merge
** range), which names are invalid (EINVAL) or cannot exist (ENOENT), and
** the stored file names.
*/
#include "path.h"
#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* 2023-11-14T22:13:20Z */
#define NOW 1700000000LL
#define ID "bo51acqs8snb9srq3p10"

static fs_path p;

static int parse(const char *path) { return fs_path_parse(path, NOW, &p); }

static void test_dirs(void) {
  CHECK_I64(parse("/"), 0);
  CHECK_I64(p.node, FS_ROOT);

  CHECK_I64(parse("/merge"), 0);
  CHECK_I64(p.node, FS_MROOT);

  CHECK_I64(parse("/api"), 0);
  CHECK_I64(p.node, FS_SERVICE);
  CHECK_STR(p.service, "api");
  CHECK_STR(p.labels, "");

  CHECK_I64(parse("/my service:8080"), 0);
  CHECK_STR(p.service, "my service:8080");

  CHECK_I64(parse("/api/cpu"), 0);
  CHECK_I64(p.node, FS_TYPE);
  CHECK_I64(p.type, META_CPU);
  CHECK_I64(parse("/api/trace"), 0);
  CHECK_I64(p.type, META_TRACE);
  CHECK_I64(parse("/api/threadcreate"), 0);
  CHECK_I64(p.type, META_THREADCREATE);

  CHECK_I64(parse("/api/cpu/k=v"), 0);
  CHECK_I64(p.node, FS_LABELDIR);
  CHECK_STR(p.labels, "k=v");
  CHECK_STR(p.service, "api");

  CHECK_I64(parse("/api/heap/env=prod,region=eu%2Fwest"), 0);
  CHECK_I64(p.node, FS_LABELDIR);
  CHECK_STR(p.labels, "env=prod,region=eu%2Fwest");

  CHECK_I64(parse("/merge/api"), 0);
  CHECK_I64(p.node, FS_MSERVICE);
  CHECK_STR(p.service, "api");
  CHECK_I64(parse("/merge/api/mutex"), 0);
  CHECK_I64(p.node, FS_MTYPE);
  CHECK_I64(p.type, META_MUTEX);
  CHECK_I64(parse("/merge/api/mutex/a=1,b=2"), 0);
  CHECK_I64(p.node, FS_MLABELDIR);
  CHECK_STR(p.labels, "a=1,b=2");
}

static void test_files(void) {
  CHECK_I64(parse("/api/cpu/20231114T221320Z_" ID ".pb.gz"), 0);
  CHECK_I64(p.node, FS_FILE);
  CHECK(p.stored);
  CHECK_STR(p.id, ID);
  CHECK_STR(p.stamp, "20231114T221320Z");
  CHECK_STR(p.labels, "");
  CHECK_STR(p.name, "20231114T221320Z_" ID ".pb.gz");

  CHECK_I64(parse("/api/cpu/k=v/20231114T221320Z_" ID ".pb.gz"), 0);
  CHECK_I64(p.node, FS_FILE);
  CHECK(p.stored);
  CHECK_STR(p.labels, "k=v");
  CHECK_STR(p.id, ID);

  CHECK_I64(parse("/api/trace/20231114T221320Z_" ID ".trace"), 0);
  CHECK(p.stored);
  /* the extension must fit the type */
  CHECK_I64(parse("/api/trace/20231114T221320Z_" ID ".pb.gz"), 0);
  CHECK(!p.stored);
  CHECK_I64(parse("/api/cpu/20231114T221320Z_" ID ".trace"), 0);
  CHECK(!p.stored);
  /* ids are lower-case base32hex; stamps are digits */
  CHECK_I64(parse("/api/cpu/20231114T221320Z_BO51ACQS8SNB9SRQ3P10.pb.gz"), 0);
  CHECK(!p.stored);
  CHECK_I64(parse("/api/cpu/20231114T221320Z_bo51acqs8snb9srq3pzz.pb.gz"), 0);
  CHECK(!p.stored);
  CHECK_I64(parse("/api/cpu/2023111xT221320Z_" ID ".pb.gz"), 0);
  CHECK(!p.stored);
  CHECK_I64(parse("/api/cpu/20231114T221320_" ID ".pb.gz"), 0);
  CHECK(!p.stored);
  CHECK_I64(parse("/api/cpu/20231114T221320Z_" ID ".pb.gzz"), 0);
  CHECK(!p.stored);

  /* rsync's temporary name for a stored name keeps its time stamp */
  CHECK_I64(parse("/api/trace/.20231114T221320Z_" ID ".trace.Gu5Uti"), 0);
  CHECK(!p.stored);
  CHECK(p.has_stamp);
  CHECK_STR(p.stamp, "20231114T221320Z");
  CHECK_I64(fs_stamp_time(p.stamp), NOW);
  CHECK_I64(parse("/api/cpu/x.pb.gz"), 0);
  CHECK(!p.has_stamp);

  /* any other valid name is a new file */
  CHECK_I64(parse("/api/cpu/k=v/anything"), 0);
  CHECK_I64(p.node, FS_FILE);
  CHECK(!p.stored);
  CHECK_STR(p.name, "anything");
  CHECK_STR(p.labels, "k=v");
  /* a label dir in any key order resolves to the canonical set */
  CHECK_I64(parse("/api/cpu/b=2,a=1"), 0);
  CHECK_I64(p.node, FS_LABELDIR);
  CHECK_STR(p.labels, "a=1,b=2");
  CHECK_I64(parse("/api/cpu/region=eu,host=a/x"), 0);
  CHECK_I64(p.node, FS_FILE);
  CHECK_STR(p.labels, "host=a,region=eu");
  CHECK_STR(p.name, "x");
  CHECK_I64(parse("/merge/api/cpu/region=eu,host=a/now-1h..now"), 0);
  CHECK_I64(p.node, FS_MFILE);
  CHECK_STR(p.labels, "host=a,region=eu");
  /* below a label dir, a name with '=' is a file */
  CHECK_I64(parse("/api/cpu/k=v/x=y"), 0);
  CHECK_I64(p.node, FS_FILE);
  CHECK_STR(p.labels, "k=v");
  CHECK_STR(p.name, "x=y");
}

static void test_merge_files(void) {
  CHECK_I64(parse("/merge/api/cpu/now-1h..now"), 0);
  CHECK_I64(p.node, FS_MFILE);
  CHECK_I64(p.from, NOW - 3600);
  CHECK_I64(p.to, NOW);
  CHECK(p.relative);
  CHECK_STR(p.name, "now-1h..now");

  CHECK_I64(parse("/merge/api/cpu/now-1h30m..now-5m"), 0);
  CHECK_I64(p.from, NOW - 5400);
  CHECK_I64(p.to, NOW - 300);
  CHECK(p.relative);

  CHECK_I64(parse("/merge/api/cpu/1700000000..1700003600"), 0);
  CHECK_I64(p.node, FS_MFILE);
  CHECK_I64(p.from, 1700000000);
  CHECK_I64(p.to, 1700003600);
  CHECK(!p.relative);

  CHECK_I64(parse("/merge/api/heap/2023-11-14T22:13:20..2023-11-14T23:13:20"), 0);
  CHECK_I64(p.from, 1700000000);
  CHECK_I64(p.to, 1700003600);
  CHECK_I64(p.type, META_HEAP);

  CHECK_I64(parse("/merge/api/cpu/2023-11-14T22:13:20Z..2023-11-14T23:13:20+01:00"), 0);
  CHECK_I64(p.from, 1700000000);
  CHECK_I64(p.to, 1700000000);

  CHECK_I64(parse("/merge/api/cpu/1700000000..now"), 0);
  CHECK(p.relative);
  CHECK_I64(p.to, NOW);

  CHECK_I64(parse("/merge/api/cpu/k=v/now-7d..now"), 0);
  CHECK_I64(p.node, FS_MFILE);
  CHECK_STR(p.labels, "k=v");
  CHECK_I64(p.from, NOW - 7 * 86400);

  /* names that cannot be a range */
  CHECK_I64(parse("/merge/api/cpu/1700003600..1700000000"), -ENOENT);
  CHECK_I64(parse("/merge/api/cpu/yesterday..now"), -ENOENT);
  CHECK_I64(parse("/merge/api/cpu/..now"), -ENOENT);
  CHECK_I64(parse("/merge/api/cpu/now.."), -ENOENT);
  CHECK_I64(parse("/merge/api/cpu/now"), -ENOENT);
  CHECK_I64(parse("/merge/api/cpu/1..2..3"), -ENOENT);
  CHECK_I64(parse("/merge/api/cpu/now-1x..now"), -ENOENT);
  CHECK_I64(parse("/merge/api/cpu/k=v/x"), -ENOENT);
  CHECK_I64(parse("/merge/api/cpu/now-1h..now/x"), -ENOENT);
  /* traces are never merged */
  CHECK_I64(parse("/merge/api/trace"), -ENOENT);
  CHECK_I64(parse("/merge/api/trace/now-1h..now"), -ENOENT);
}

static void test_invalid(void) {
  char longname[300];

  /* the last component: an invalid name (create reports EINVAL) */
  CHECK_I64(parse("/api/cpu/a\001b"), -EINVAL);
  CHECK_I64(parse("/api/cpu/k=v/a\x7f"), -EINVAL);
  CHECK_I64(parse("/api/cpu/new\nline"), -EINVAL);
  CHECK_I64(parse("/bad\tservice"), -EINVAL);
  CHECK_I64(parse("/merge/api/cpu/now-1h..now\001"), -EINVAL);
  memset(longname, 'a', 256);
  strcpy(longname + 256, "");
  {
    char path[400];
    snprintf(path, sizeof path, "/api/cpu/%s", longname);
    CHECK_I64(parse(path), -EINVAL);
    longname[255] = '\0';
    snprintf(path, sizeof path, "/api/cpu/%s", longname);
    CHECK_I64(parse(path), 0);
    CHECK_I64(p.node, FS_FILE);
  }
  /* well-formed names that cannot exist */
  CHECK_I64(parse("/.hidden"), -ENOENT);
  CHECK_I64(parse("/api/CPU"), -ENOENT);
  CHECK_I64(parse("/api/bogus"), -ENOENT);
  CHECK_I64(parse("/api/bogus/x"), -ENOENT);
  CHECK_I64(parse("/bad\001svc/cpu"), -ENOENT);
  CHECK_I64(parse("/api/cpu/x/y"), -ENOENT);
  CHECK_I64(parse("/api/cpu/a=%zz"), -ENOENT);  /* '=' but not a label set */
  CHECK(p.why != NULL);
  CHECK_I64(parse("/merge/api/cpu/garbage"), -ENOENT);
  CHECK_STR(p.why, "not a range <from>..<to>");
  CHECK_I64(parse("/merge/api/cpu/now..now-1h"), -ENOENT);
  CHECK_STR(p.why, "bad time in range, or from after to");
  CHECK_I64(parse("/api/bogus"), -ENOENT);
  CHECK(strstr(p.why, "not a type") != NULL);
  CHECK_I64(parse("/api/cpu/k=v/x/y"), -ENOENT);
  CHECK_I64(parse("/api/cpu/k=v/l=w/x"), -ENOENT);
  CHECK_I64(parse("/merge/api/cpu/k=v/now-1h..now/a/b"), -ENOENT);
  CHECK_I64(parse("relative/path"), -ENOENT);

  CHECK(!fs_name_valid(""));
  CHECK(!fs_name_valid("."));
  CHECK(!fs_name_valid(".."));
  CHECK(!fs_name_valid("a/b"));
  CHECK(fs_name_valid("...")); /* odd but valid */
  CHECK(fs_name_valid("k=v"));
}

static void test_names(void) {
  char name[FS_NAME_MAX], id[META_ID_LEN + 1], stamp[17];

  fs_name_format(ID, META_CPU, NOW, name);
  CHECK_STR(name, "20231114T221320Z_" ID ".pb.gz");
  CHECK(fs_name_stored(name, META_CPU, id, stamp));
  CHECK_STR(id, ID);
  CHECK_STR(stamp, "20231114T221320Z");
  CHECK(!fs_name_stored(name, META_TRACE, NULL, NULL));

  fs_name_format(ID, META_TRACE, 0, name);
  CHECK_STR(name, "19700101T000000Z_" ID ".trace");
  CHECK(fs_name_stored(name, META_TRACE, NULL, NULL));

  /* OUT parameters untouched when the shape does not fit */
  strcpy(id, "unchanged");
  CHECK(!fs_name_stored("x.pb.gz", META_CPU, id, stamp));
  CHECK_STR(id, "unchanged");
}

static void test_range(void) {
  int64_t from = -1, to = -1;
  int rel = -1;

  CHECK_I64(fs_range_parse("now-2h..now-1h", NOW, &from, &to, &rel), 0);
  CHECK_I64(from, NOW - 7200);
  CHECK_I64(to, NOW - 3600);
  CHECK_I64(rel, 1);
  CHECK_I64(fs_range_parse("5..5", NOW, &from, &to, &rel), 0);
  CHECK_I64(from, 5);
  CHECK_I64(to, 5);
  CHECK_I64(rel, 0);
  from = to = 77;
  CHECK_I64(fs_range_parse("6..5", NOW, &from, &to, &rel), -1);
  CHECK_I64(from, 77);
  CHECK_I64(to, 77);
}

int main(void) {
  test_dirs();
  test_files();
  test_merge_files();
  test_invalid();
  test_names();
  test_range();
  return check_done("test_fspath");
}
