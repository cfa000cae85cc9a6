/*
** test_store.c — unit tests of the local store (store.h over store/sqlite/)
** with the real Go fixtures of $TESTS_DIR/fixtures and small hand-built
** profiles whose time_nanos we choose.
**
** Besides the API (ingest/find/get/merge/delete/retain/services and their
** exact error codes), it checks that hourly rollups never change a merge
** (late arrivals, deletes, retention, races), that a merge long enough to
** run on two threads gives the one-thread bytes and first error,
** concurrency (8 threads ingesting), reopening,
** a SIGKILL of a process right after its ingests were acknowledged, and a
** full disk (a small tmpfs in a private mount namespace, when root).
**
** With PROFEFS_STORE_BENCH=1 in the environment it also prints timings:
** durable ingests/s from 8 threads with 8 KB profiles, the merge of 1000
** stored cpu profiles, and a 7-day merge (one profile a minute) without and
** with rollups.
*/
#include "pprof.h"
#include "rollup.h" /* the shared rollup policy (store/) */
#include "store.h"
#include "check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/* rc must be want; on a mismatch the store's reason is shown. */
#define CHECK_RC(call, want) check_rc((call), (want), __FILE__, __LINE__, #call)

static void check_rc(store_rc got, store_rc want, const char *file, int line,
                     const char *expr) {
  check_result(got == want, file, line, "%s: rc %s, want %s", expr,
               store_strerror(got), store_strerror(want));
}

/* ---- fixtures and hand-built profiles --------------------------------------- */

typedef struct buf {
  unsigned char *p;
  size_t n, cap;
} buf;

static void put(buf *b, const void *p, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
    if (b->p == NULL) abort();
  }
  memcpy(b->p + b->n, p, n);
  b->n += n;
}

static void put_varint(buf *b, uint64_t v) {
  unsigned char c[10];
  int n = 0;
  do {
    c[n] = (unsigned char)(v & 0x7f);
    v >>= 7;
    if (v) c[n] |= 0x80;
    n++;
  } while (v);
  put(b, c, (size_t)n);
}

/* A length-delimited field holding the bytes of inner. */
static void put_msg(buf *b, int field, const buf *inner) {
  put_varint(b, (uint64_t)field << 3 | 2);
  put_varint(b, inner->n);
  put(b, inner->p, inner->n);
}

/* A plain (not gzipped) pprof profile: sample type samples/count (or
** alt/bytes when alt), nsamples samples over 4 locations, time_nanos =
** sec * 1e9 (0 when sec == 0). */
static buf make_profile(int64_t sec, int nsamples, unsigned seed, int alt) {
  buf p = {0}, m = {0};
  const char *strs[] = {"", "samples", "count", "alt", "bytes"};
  m.n = 0;
  put_varint(&m, 1 << 3);
  put_varint(&m, alt ? 3 : 1);
  put_varint(&m, 2 << 3);
  put_varint(&m, alt ? 4 : 2);
  put_msg(&p, 1, &m); /* sample_type */
  for (int i = 0; i < nsamples; i++) {
    buf s = {0}, locs = {0}, vals = {0};
    seed = seed * 1103515245u + 12345u;
    put_varint(&locs, 1 + (seed >> 8) % 4);
    put_varint(&locs, 1 + (seed >> 12) % 4);
    put_varint(&vals, 1 + (seed >> 16) % 1000);
    put_msg(&s, 1, &locs);
    put_msg(&s, 2, &vals);
    put_msg(&p, 2, &s); /* sample */
    free(s.p);
    free(locs.p);
    free(vals.p);
  }
  for (int id = 1; id <= 4; id++) {
    m.n = 0;
    put_varint(&m, 1 << 3);
    put_varint(&m, (uint64_t)id);
    put_msg(&p, 4, &m); /* location */
  }
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
    put_varint(&p, 6 << 3 | 2);
    put_varint(&p, strlen(strs[i]));
    put(&p, strs[i], strlen(strs[i]));
  }
  if (sec > 0) {
    put_varint(&p, 9 << 3);
    put_varint(&p, (uint64_t)sec * 1000000000u);
  }
  free(m.p);
  return p;
}

static buf read_fixture(const char *name) {
  const char *dir = getenv("TESTS_DIR");
  char path[1024];
  snprintf(path, sizeof path, "%s/fixtures/%s", dir ? dir : "tests", name);
  buf b = {0};
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "cannot open fixture %s: %s\n", path, strerror(errno));
    exit(1);
  }
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) put(&b, chunk, n);
  fclose(f);
  return b;
}

static buf cpu_fixture(int i) {
  char name[64];
  snprintf(name, sizeof name, "cpu_%03d.pb.gz", i % 15);
  return read_fixture(name);
}

/* ---- temp dirs ------------------------------------------------------------------ */

static int rm_one(const char *p, const struct stat *sb, int flag,
                  struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

static void rm_rf(const char *dir) {
  nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *temp_dir(void) {
  const char *tmp = getenv("TMPDIR");
  char tmpl[1024];
  snprintf(tmpl, sizeof tmpl, "%s/test_store.XXXXXX", tmp ? tmp : "/tmp");
  char *d = mkdtemp(tmpl);
  if (d == NULL) abort();
  return strdup(d);
}

static store *open_store(const char *dir) {
  char err[STORE_ERRMAX] = "";
  store *st = NULL;
  store_rc rc = store_open(dir, NULL, &st, err);
  if (rc != STORE_OK) {
    fprintf(stderr, "store_open(%s): %s: %s\n", dir, store_strerror(rc), err);
    exit(1);
  }
  return st;
}

static store_rc ingest(store *st, const char *service, meta_type t,
                       const char *labels, int64_t hint, const buf *b,
                       store_meta *m) {
  char err[STORE_ERRMAX] = "";
  store_rc rc = store_ingest(st, service, t, labels, hint, b->p, b->n, m, err);
  if (rc != STORE_OK && getenv("VERBOSE")) fprintf(stderr, "ingest: %s\n", err);
  return rc;
}

static store_query query(const char *service, meta_type t, const char *labels,
                         int64_t from, int64_t to, long limit) {
  return (store_query){service, t, labels, from, to, limit, 0};
}

static size_t count(store *st, store_query q) {
  store_meta_list l = {0, NULL};
  char err[STORE_ERRMAX] = "";
  store_rc rc = store_find(st, &q, &l, err);
  if (rc != STORE_OK) {
    fprintf(stderr, "find: %s\n", err);
    return (size_t)-1;
  }
  size_t n = l.n;
  store_meta_list_free(&l);
  return n;
}

static int64_t sqlite_int(const char *dir, const char *sql, char *text,
                          size_t textlen) {
  char path[1024];
  sqlite3 *db;
  sqlite3_stmt *s;
  int64_t v = -1;
  snprintf(path, sizeof path, "%s/profefs.db", dir);
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
    return -1;
  if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
    if (sqlite3_step(s) == SQLITE_ROW) {
      v = sqlite3_column_int64(s, 0);
      if (text != NULL) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        snprintf(text, textlen, "%s", t ? t : "");
      }
    }
    sqlite3_finalize(s);
  }
  sqlite3_close(db);
  return v;
}

static int integrity_ok(const char *dir) {
  char res[256] = "";
  sqlite_int(dir, "PRAGMA integrity_check", res, sizeof res);
  if (strcmp(res, "ok") != 0) fprintf(stderr, "integrity_check: %s\n", res);
  return strcmp(res, "ok") == 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- opening ---------------------------------------------------------------------- */

/* One open store per data directory (issue 13): a second open, also
** read-only, is refused naming the holder's pid, until the first closes. */
static void test_lock(void) {
  char *dir = temp_dir(), err[STORE_ERRMAX], want[128];
  store_options ro = {.read_only = 1};
  store *st = open_store(dir), *second = NULL;

  snprintf(want, sizeof want, "is in use by process %ld (lock file ",
           (long)getpid());
  err[0] = '\0';
  CHECK_I64(store_open(dir, NULL, &second, err), STORE_IO);
  CHECK(second == NULL);
  CHECK(strstr(err, want) != NULL);
  CHECK(strstr(err, dir) != NULL);
  err[0] = '\0';
  CHECK_I64(store_open(dir, &ro, &second, err), STORE_IO);
  CHECK(strstr(err, want) != NULL);
  store_close(st);
  CHECK_I64(store_open(dir, &ro, &second, err), STORE_OK);
  store_close(second);
  st = open_store(dir);
  store_close(st);
  rm_rf(dir);
  free(dir);
}

/* A batch whose BEGIN fails writes nothing, so its requests must fail.
** They were answered STORE_OK (the batch's reason was left STORE_OK), with
** the id of a profile never stored: at a power cut, BEGIN fails on the
** first I/O error and the HTTP answer was 200 for a lost profile
** (powercut.sh, 1 run in 6).  Here BEGIN fails for a write lock another
** connection holds past the busy timeout (10 s), which is deterministic. */
static void test_begin_fails(void) {
  char *dir = temp_dir(), path[512], err[STORE_ERRMAX] = "";
  store *st = open_store(dir);
  buf p = make_profile(777, 5, 3, 0);
  store_meta m = {0}, g = {0};
  sqlite3 *db = NULL;
  void *data = NULL;
  size_t len = 0;

  snprintf(path, sizeof path, "%s/profefs.db", dir);
  CHECK(sqlite3_open(path, &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
  store_rc rc = store_ingest(st, "begin", META_CPU, "k=v", 0, p.p, p.n, &m, err);
  CHECK(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(db);
  CHECK_RC(rc, STORE_IO);
  CHECK(strstr(err, "cannot begin a transaction") != NULL);
  if (rc == STORE_OK) /* then it must at least be there */
    CHECK_RC(store_get(st, m.id, &g, &data, &len, err), STORE_OK);
  /* the writer goes on once the lock is gone */
  store_meta_clear(&m);
  CHECK_RC(store_ingest(st, "begin", META_CPU, "k=v", 0, p.p, p.n, &m, err),
           STORE_OK);
  CHECK_RC(store_get(st, m.id, &g, &data, &len, err), STORE_OK);
  CHECK_I64((int64_t)len, (int64_t)p.n);
  store_meta_clear(&m);
  store_meta_clear(&g);
  free(data);
  free(p.p);
  store_close(st);
  rm_rf(dir);
  free(dir);
}

static void test_open_errors(void) {
  char *dir = temp_dir(), path[1024], err[STORE_ERRMAX];
  store *st = NULL;

  err[0] = '\0';
  CHECK_I64(store_open("/nonexistent-profefs/a/b", NULL, &st, err), STORE_IO);
  CHECK(st == NULL);
  CHECK(strstr(err, "/nonexistent-profefs/a/b") != NULL);
  CHECK(strstr(err, "parent directory does not exist") != NULL);

  snprintf(path, sizeof path, "%s/file", dir);
  close(open(path, O_CREAT | O_WRONLY, 0644));
  CHECK_I64(store_open(path, NULL, &st, err), STORE_IO);
  CHECK(strstr(err, "not a directory") != NULL);

  /* A directory holding something else under our database's name. */
  snprintf(path, sizeof path, "%s/garbage", dir);
  mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/garbage/profefs.db", dir);
  FILE *f = fopen(path, "w");
  fputs("this is not a database, it is plain text padded to a page......",
        f);
  for (int i = 0; i < 100; i++) fputs("0123456789", f);
  fclose(f);
  snprintf(path, sizeof path, "%s/garbage", dir);
  CHECK_I64(store_open(path, NULL, &st, err), STORE_IO);
  CHECK(strstr(err, "not a profefs store") != NULL);
  if (getenv("VERBOSE")) fprintf(stderr, "garbage: %s\n", err);

  /* Another application's SQLite database. */
  snprintf(path, sizeof path, "%s/foreign", dir);
  mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/foreign/profefs.db", dir);
  sqlite3 *db;
  sqlite3_open(path, &db);
  sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL);
  sqlite3_close(db);
  snprintf(path, sizeof path, "%s/foreign", dir);
  CHECK_I64(store_open(path, NULL, &st, err), STORE_IO);
  CHECK(strstr(err, "not a profefs store") != NULL);

  /* Read-only open of a directory without a store. */
  store_options ro = {.read_only = 1};
  snprintf(path, sizeof path, "%s/empty", dir);
  mkdir(path, 0755);
  CHECK_I64(store_open(path, &ro, &st, err), STORE_IO);
  CHECK(strstr(err, "no profefs store") != NULL);
  CHECK(st == NULL);

  /* A store is created in a missing directory (whose parent exists), and
  ** can then be opened read-only, refusing writes. */
  snprintf(path, sizeof path, "%s/new", dir);
  st = open_store(path);
  buf p = make_profile(1000, 3, 1, 0);
  CHECK_RC(ingest(st, "svc", META_CPU, "", 0, &p, NULL), STORE_OK);
  store_close(st);
  st = NULL;
  CHECK_I64(store_open(path, &ro, &st, err), STORE_OK);
  CHECK_RC(ingest(st, "svc", META_CPU, "", 0, &p, NULL), STORE_READONLY);
  CHECK_RC(store_add_service(st, "x", NULL), STORE_READONLY);
  CHECK_RC(store_delete(st, "00000000000000000000", NULL), STORE_READONLY);
  CHECK_RC(store_retain(st, 5000, NULL, NULL), STORE_READONLY);
  CHECK_I64(count(st, query("svc", META_CPU, NULL, 0, 5000, 0)), 1);
  store_close(st);
  /* The file is marked as ours. */
  CHECK_I64(sqlite_int(path, "PRAGMA application_id", NULL, 0), 0x70726f66);
  CHECK_I64(sqlite_int(path, "PRAGMA auto_vacuum", NULL, 0), 2);
  char mode[32];
  sqlite_int(path, "PRAGMA journal_mode", mode, sizeof mode);
  CHECK_STR(mode, "wal");

  free(p.p);
  rm_rf(dir);
  free(dir);
}

/* ---- ingest, get, stat, created_at ---------------------------------------------------- */

/* Ingest is idempotent: the same bytes, service, type, labels and
** created_at answer with the first id; any difference is a new profile.
** The answer says which (the FUSE view deletes only what it created). */
static void test_idempotent(store *st) {
  buf p = make_profile(4242, 5, 3, 0);
  store_meta a = {0}, b = {0}, c = {0};
  CHECK_RC(ingest(st, "idem", META_CPU, "k=v", 0, &p, &a), STORE_OK);
  CHECK_I64(a.ingested, STORE_INGESTED_NEW);
  CHECK_RC(ingest(st, "idem", META_CPU, "k=v", 0, &p, &b), STORE_OK);
  CHECK_STR(b.id, a.id);
  CHECK_I64(b.created_at, a.created_at);
  CHECK_I64(b.ingested, STORE_INGESTED_EXISTING);
  CHECK_RC(ingest(st, "idem", META_CPU, "k=w", 0, &p, &c), STORE_OK);
  CHECK(strcmp(c.id, a.id) != 0);
  CHECK_I64(c.ingested, STORE_INGESTED_NEW);
  CHECK_I64(count(st, query("idem", META_CPU, NULL, 0, 9999, 0)), 2);
  store_meta_clear(&a);
  store_meta_clear(&b);
  store_meta_clear(&c);
  free(p.p);
}

static void test_ingest_get(store *st) {
  char err[STORE_ERRMAX];
  buf cpu = cpu_fixture(0);
  int64_t nanos = 0;
  CHECK_I64(pprof_check(cpu.p, cpu.n, 0, &nanos, NULL), PPROF_OK);
  CHECK(nanos > 0);

  /* created_at is the profile's own time; the hint is ignored then. */
  store_meta m = {0};
  uint64_t gen = store_generation(st);
  CHECK_RC(ingest(st, "api", META_CPU, "region=eu", 12345, &cpu, &m), STORE_OK);
  CHECK(store_generation(st) != gen);
  CHECK(meta_id_valid(m.id));
  CHECK_STR(m.service, "api");
  CHECK_STR(m.labels, "region=eu");
  CHECK_I64(m.type, META_CPU);
  CHECK_I64(m.created_at, nanos / 1000000000);
  CHECK_I64(m.size, cpu.n);

  /* The stored bytes come back exactly, with the same metadata. */
  void *data = NULL;
  size_t len = 0;
  store_meta g = {0};
  CHECK_RC(store_get(st, m.id, &g, &data, &len, err), STORE_OK);
  CHECK_I64(len, cpu.n);
  CHECK(data != NULL && memcmp(data, cpu.p, cpu.n) == 0);
  CHECK_STR(g.id, m.id);
  CHECK_STR(g.service, "api");
  CHECK_STR(g.labels, "region=eu");
  CHECK_I64(g.created_at, m.created_at);
  CHECK_I64(g.size, cpu.n);
  free(data);
  store_meta_clear(&g);
  CHECK_RC(store_get(st, m.id, NULL, &data, &len, err), STORE_OK);
  free(data);

  store_meta s = {0};
  CHECK_RC(store_stat(st, m.id, &s, err), STORE_OK);
  CHECK_STR(s.labels, "region=eu");
  CHECK_I64(s.size, cpu.n);
  CHECK_I64(s.type, META_CPU);
  store_meta_clear(&s);

  /* No time_nanos: the hint, else now. */
  buf plain = make_profile(0, 5, 7, 0);
  CHECK_RC(ingest(st, "api", META_HEAP, "", 1500000000, &plain, &s), STORE_OK);
  CHECK_I64(s.created_at, 1500000000);
  CHECK_STR(s.labels, "");
  store_meta_clear(&s);
  int64_t before = time(NULL);
  CHECK_RC(ingest(st, "api", META_HEAP, NULL, 0, &plain, &s), STORE_OK);
  CHECK(s.created_at >= before && s.created_at <= time(NULL));
  store_meta_clear(&s);

  /* Traces are stored as they are, whatever they contain. */
  buf trace = {0};
  put(&trace, "go 1.19 trace\0\0\0\x01\x02", 18);
  CHECK_RC(ingest(st, "api", META_TRACE, "", 1600000000, &trace, &s), STORE_OK);
  CHECK_I64(s.created_at, 1600000000);
  CHECK_RC(store_get(st, s.id, NULL, &data, &len, err), STORE_OK);
  CHECK(len == 18 && memcmp(data, trace.p, 18) == 0);
  free(data);
  store_meta_clear(&s);

  /* Unknown and malformed ids; outputs untouched on failure. */
  data = (void *)&len;
  CHECK_I64(store_get(st, "00000000000000000000", NULL, &data, &len, err),
            STORE_NOTFOUND);
  CHECK_STR(err, "no profile with id 00000000000000000000");
  CHECK(data == (void *)&len);
  CHECK_I64(store_get(st, "xyz", NULL, &data, &len, err), STORE_INVALID);
  CHECK_STR(err, "invalid id \"xyz\"");
  CHECK_I64(store_stat(st, "0000000000000000000V", &s, err), STORE_INVALID);
  CHECK_I64(store_stat(st, "vvvvvvvvvvvvvvvvvvvv", &s, err), STORE_NOTFOUND);
  CHECK_I64(store_delete(st, "", err), STORE_INVALID);
  CHECK_STR(err, "missing id");

  store_meta_clear(&m);
  free(cpu.p);
  free(plain.p);
  free(trace.p);
}

static void test_bad_input(store *st) {
  char err[STORE_ERRMAX];
  buf p = make_profile(1000, 3, 1, 0);
  store_meta m = {.size = 42};

  CHECK_I64(store_ingest(st, "", META_CPU, "", 0, p.p, p.n, &m, err),
            STORE_INVALID);
  CHECK_STR(err, "missing service");
  CHECK_I64(store_ingest(st, NULL, META_CPU, "", 0, p.p, p.n, &m, err),
            STORE_INVALID);
  CHECK_I64(store_ingest(st, "a/b", META_CPU, "", 0, p.p, p.n, &m, err),
            STORE_INVALID);
  CHECK_STR(err, "invalid service name \"a/b\": contains '/'");
  {
    char lng[301];
    memset(lng, 'a', 300);
    lng[300] = '\0';
    CHECK_I64(store_ingest(st, lng, META_CPU, "", 0, p.p, p.n, &m, err),
              STORE_INVALID);
    CHECK(strstr(err, "...\": longer than 255 bytes") != NULL);
  }
  CHECK_I64(store_ingest(st, ".hidden", META_CPU, "", 0, p.p, p.n, &m, err),
            STORE_INVALID);
  CHECK_I64(store_ingest(st, "s", (meta_type)99, "", 0, p.p, p.n, &m, err),
            STORE_INVALID);
  CHECK_STR(err, "unknown type 99");
  CHECK_I64(store_ingest(st, "s", META_NTYPES, "", 0, p.p, p.n, &m, err),
            STORE_INVALID);
  CHECK_I64(store_ingest(st, "s", META_CPU, "b=1,a=2", 0, p.p, p.n, &m, err),
            STORE_INVALID);
  CHECK_STR(err, "invalid labels \"b=1,a=2\"");
  CHECK_I64(store_ingest(st, "s", META_CPU, "a", 0, p.p, p.n, &m, err),
            STORE_INVALID);

  /* Bytes that are no profile. */
  static const char garbage[] = "\x1f\x8b\x08\x00garbage that is no gzip";
  CHECK_I64(store_ingest(st, "s", META_CPU, "", 0, garbage, sizeof garbage,
                         &m, err), STORE_BADPROFILE);
  CHECK(strncmp(err, "malformed profile (", 19) == 0);
  CHECK_I64(store_ingest(st, "s", META_CPU, "", 0, "\xff\xff\xff", 3, &m, err),
            STORE_BADPROFILE);
  CHECK(strncmp(err, "malformed profile (", 19) == 0);
  CHECK_I64(store_ingest(st, "s", META_CPU, "", 0, p.p, 0, &m, err),
            STORE_BADPROFILE);
  CHECK_STR(err, "malformed profile (empty)");
  CHECK_I64(store_ingest(st, "s", META_TRACE, "", 0, p.p, 0, &m, err),
            STORE_BADPROFILE);
  buf nosamples = make_profile(1000, 0, 1, 0);
  CHECK_I64(store_ingest(st, "s", META_CPU, "", 0, nosamples.p, nosamples.n,
                         &m, err), STORE_BADPROFILE);
  CHECK(strncmp(err, "malformed profile (", 19) == 0);
  buf cpu = cpu_fixture(1);
  cpu.p[cpu.n / 2] ^= 0x55; /* corrupt deflate data or CRC */
  CHECK_I64(store_ingest(st, "s", META_CPU, "", 0, cpu.p, cpu.n, &m, err),
            STORE_BADPROFILE);
  CHECK(strncmp(err, "malformed profile (", 19) == 0);
  cpu.n /= 2; /* truncated gzip */
  CHECK_I64(store_ingest(st, "s", META_CPU, "", 0, cpu.p, cpu.n, &m, err),
            STORE_BADPROFILE);
  CHECK(strncmp(err, "malformed profile (", 19) == 0);
  CHECK_I64(m.size, 42); /* out untouched */
  CHECK(m.service == NULL);

  /* Queries. */
  store_meta_list l = {7, NULL};
  store_query q = query("s", META_CPU, NULL, 10, 9, 0);
  CHECK_I64(store_find(st, &q, &l, err), STORE_INVALID);
  CHECK_STR(err, "invalid time range (from is after to)");
  CHECK_I64(l.n, 7);
  q = query("s", META_CPU, "x", 0, 9, 0);
  CHECK_I64(store_find(st, &q, &l, err), STORE_INVALID);
  q = query("s", META_CPU, NULL, 0, 9, -1);
  CHECK_I64(store_find(st, &q, &l, err), STORE_INVALID);
  q = query(NULL, META_CPU, NULL, 0, 9, 0);
  CHECK_I64(store_find(st, &q, &l, err), STORE_INVALID);
  CHECK_STR(err, "missing service");
  q = query("s", (meta_type)-1, NULL, 0, 9, 0);
  CHECK_I64(store_find(st, &q, &l, err), STORE_INVALID);
  void *out = NULL;
  size_t len = 0;
  q = query("s", META_CPU, NULL, 10, 9, 0);
  CHECK_I64(store_merge(st, &q, &out, &len, NULL, err), STORE_INVALID);
  CHECK_I64(store_add_service(st, "a/b", err), STORE_INVALID);
  CHECK_I64(store_add_service(st, "", err), STORE_INVALID);
  char **names = NULL;
  size_t n = 0;
  CHECK_I64(store_label_sets(st, "..", META_CPU, &names, &n, err),
            STORE_INVALID);
  const char *ids[] = {"bad"};
  CHECK_I64(store_merge_ids(st, ids, 1, &out, &len, err), STORE_INVALID);
  CHECK_I64(store_merge_ids(st, ids, 0, &out, &len, err), STORE_INVALID);
  CHECK(out == NULL);

  /* A 1 MB service name is refused with a short message. */
  char *huge = malloc(1 << 20);
  memset(huge, 'x', (1 << 20) - 1);
  huge[(1 << 20) - 1] = '\0';
  CHECK_I64(store_ingest(st, huge, META_CPU, "", 0, p.p, p.n, &m, err),
            STORE_INVALID);
  CHECK(strlen(err) < 200);
  free(huge);

  free(p.p);
  free(nosamples.p);
  free(cpu.p);
}

/* ---- find: time range, labels, limit, order ------------------------------------------ */

static void test_find(store *st) {
  char err[STORE_ERRMAX];
  /* Profiles at 1000, 2000 (two of them), 3000 with various labels. */
  static const struct {
    int64_t t;
    const char *labels;
  } in[] = {
    {3000, "a=1,b=2"}, {1000, "a=1"}, {2000, "a=2,b=2"}, {2000, ""},
  };
  store_meta m[4];
  for (int i = 0; i < 4; i++) {
    buf p = make_profile(in[i].t, 4, (unsigned)i, 0);
    CHECK_RC(ingest(st, "find", META_BLOCK, in[i].labels, 0, &p, &m[i]),
             STORE_OK);
    CHECK_I64(m[i].created_at, in[i].t);
    free(p.p);
  }

  /* Inclusive edges. */
  CHECK_I64(count(st, query("find", META_BLOCK, NULL, 1000, 3000, 0)), 4);
  CHECK_I64(count(st, query("find", META_BLOCK, "", 1000, 3000, 0)), 4);
  CHECK_I64(count(st, query("find", META_BLOCK, NULL, 1001, 2999, 0)), 2);
  CHECK_I64(count(st, query("find", META_BLOCK, NULL, 2000, 2000, 0)), 2);
  CHECK_I64(count(st, query("find", META_BLOCK, NULL, 3000, 3000, 0)), 1);
  CHECK_I64(count(st, query("find", META_BLOCK, NULL, 3001, 9000, 0)), 0);
  CHECK_I64(count(st, query("find", META_BLOCK, NULL, 0, 999, 0)), 0);
  /* Other service or type: nothing. */
  CHECK_I64(count(st, query("find", META_MUTEX, NULL, 0, 9000, 0)), 0);
  CHECK_I64(count(st, query("fin", META_BLOCK, NULL, 0, 9000, 0)), 0);
  CHECK_I64(count(st, query("nosuch", META_BLOCK, NULL, 0, 9000, 0)), 0);

  /* Label subset match. */
  CHECK_I64(count(st, query("find", META_BLOCK, "a=1", 0, 9000, 0)), 2);
  CHECK_I64(count(st, query("find", META_BLOCK, "b=2", 0, 9000, 0)), 2);
  CHECK_I64(count(st, query("find", META_BLOCK, "a=1,b=2", 0, 9000, 0)), 1);
  CHECK_I64(count(st, query("find", META_BLOCK, "a=2", 0, 9000, 0)), 1);
  CHECK_I64(count(st, query("find", META_BLOCK, "c=3", 0, 9000, 0)), 0);
  CHECK_I64(count(st, query("find", META_BLOCK, "b=2", 2500, 9000, 0)), 1);

  /* Order: created_at, then id; limit keeps the oldest. */
  store_meta_list l = {0, NULL};
  store_query q = query("find", META_BLOCK, NULL, 0, 9000, 0);
  CHECK_RC(store_find(st, &q, &l, err), STORE_OK);
  CHECK_I64(l.n, 4);
  if (l.n == 4) {
    CHECK_STR(l.v[0].id, m[1].id);
    const char *lo = strcmp(m[2].id, m[3].id) < 0 ? m[2].id : m[3].id;
    const char *hi = strcmp(m[2].id, m[3].id) < 0 ? m[3].id : m[2].id;
    CHECK_STR(l.v[1].id, lo);
    CHECK_STR(l.v[2].id, hi);
    CHECK_STR(l.v[3].id, m[0].id);
    CHECK_STR(l.v[3].labels, "a=1,b=2");
    CHECK_STR(l.v[3].service, "find");
    CHECK_I64(l.v[3].type, META_BLOCK);
    CHECK_I64(l.v[3].size, m[0].size);
  }
  store_meta_list_free(&l);
  q = query("find", META_BLOCK, NULL, 0, 9000, 2);
  CHECK_RC(store_find(st, &q, &l, err), STORE_OK);
  CHECK_I64(l.n, 2);
  if (l.n == 2) CHECK_STR(l.v[0].id, m[1].id);
  store_meta_list_free(&l);
  /* The limit applies after the label filter. */
  q = query("find", META_BLOCK, "b=2", 0, 9000, 1);
  CHECK_RC(store_find(st, &q, &l, err), STORE_OK);
  CHECK_I64(l.n, 1);
  if (l.n == 1) CHECK_STR(l.v[0].id, m[2].id);
  store_meta_list_free(&l);

  /* Label sets: distinct, sorted, without the empty set. */
  char **sets = NULL;
  size_t n = 0;
  CHECK_RC(store_label_sets(st, "find", META_BLOCK, &sets, &n, err), STORE_OK);
  CHECK_I64(n, 3);
  if (n == 3) {
    CHECK_STR(sets[0], "a=1");
    CHECK_STR(sets[1], "a=1,b=2");
    CHECK_STR(sets[2], "a=2,b=2");
  }
  store_names_free(sets, n);
  CHECK_RC(store_label_sets(st, "find", META_HEAP, &sets, &n, err), STORE_OK);
  CHECK_I64(n, 0);
  store_names_free(sets, n);

  for (int i = 0; i < 4; i++) store_meta_clear(&m[i]);
}

/* ---- merge -------------------------------------------------------------------------------- */

/* The merge of the given stored ids, in that order, done by pprof directly. */
static buf expected_merge(store *st, const char *const *ids, size_t n) {
  pprof_merge *m = pprof_merge_new(0);
  buf out = {0};
  for (size_t i = 0; i < n; i++) {
    void *data;
    size_t len;
    if (store_get(st, ids[i], NULL, &data, &len, NULL) != STORE_OK) abort();
    CHECK_I64(pprof_merge_add(m, data, len, NULL), PPROF_OK);
    free(data);
  }
  void *res = NULL;
  size_t len = 0;
  CHECK_I64(pprof_merge_result(m, &res, &len, NULL), PPROF_OK);
  out.p = res;
  out.n = len;
  pprof_merge_free(m);
  return out;
}

static void test_merge(store *st) {
  char err[STORE_ERRMAX];
  /* The 15 cpu fixtures, two of them with a label. */
  for (int i = 0; i < 15; i++) {
    buf p = cpu_fixture(i);
    CHECK_RC(ingest(st, "merging", META_CPU, i % 7 == 0 ? "k=v" : "", 0, &p,
                    NULL), STORE_OK);
    free(p.p);
  }
  store_meta_list l = {0, NULL};
  store_query q = query("merging", META_CPU, NULL, 0, INT64_MAX / 2, 0);
  CHECK_RC(store_find(st, &q, &l, err), STORE_OK);
  CHECK_I64(l.n, 15);
  const char *ids[15];
  for (size_t i = 0; i < l.n && i < 15; i++) {
    ids[i] = l.v[i].id;
    if (i > 0) /* sorted by created_at, then id */
      CHECK(l.v[i - 1].created_at < l.v[i].created_at ||
            (l.v[i - 1].created_at == l.v[i].created_at &&
             strcmp(l.v[i - 1].id, l.v[i].id) < 0));
  }

  /* The store's merge is the pprof merge of the same bytes in the same order. */
  void *out = NULL;
  size_t len = 0, n = 0;
  CHECK_RC(store_merge(st, &q, &out, &len, &n, err), STORE_OK);
  CHECK_I64(n, 15);
  buf want = expected_merge(st, ids, l.n);
  CHECK_I64(len, want.n);
  CHECK(out != NULL && len == want.n && memcmp(out, want.p, len) == 0);
  int64_t merged_nanos = 0;
  CHECK_I64(pprof_check(out, len, 0, &merged_nanos, NULL), PPROF_OK);
  CHECK_I64(merged_nanos / 1000000000, l.v[0].created_at); /* earliest */
  free(out);
  free(want.p);

  /* Limit and label filter select what is merged. */
  q.limit = 3;
  CHECK_RC(store_merge(st, &q, &out, &len, &n, err), STORE_OK);
  CHECK_I64(n, 3);
  want = expected_merge(st, ids, 3);
  CHECK(len == want.n && memcmp(out, want.p, len) == 0);
  free(out);
  free(want.p);
  q.limit = 0;
  q.labels = "k=v";
  CHECK_RC(store_merge(st, &q, &out, &len, &n, err), STORE_OK);
  CHECK_I64(n, 3); /* fixtures 0, 7 and 14 */
  free(out);

  /* merge_ids gives the same as the same ids through pprof. */
  CHECK_RC(store_merge_ids(st, ids + 4, 2, &out, &len, err), STORE_OK);
  want = expected_merge(st, ids + 4, 2);
  CHECK(len == want.n && memcmp(out, want.p, len) == 0);
  free(out);
  free(want.p);

  /* Nothing matches. */
  out = NULL;
  q.labels = "k=nope";
  CHECK_I64(store_merge(st, &q, &out, &len, &n, err), STORE_NOTFOUND);
  /* what was asked, and what the service holds of the type instead */
  CHECK(strncmp(err, "no cpu profiles of merging with labels k=nope from "
                "1970-01-01T00:00:00Z to ", 60) == 0);
  CHECK(strstr(err, "; merging holds 15 cpu profiles from ") != NULL);
  q.labels = NULL;
  q.from = 0;
  q.to = 10;
  CHECK_I64(store_merge(st, &q, &out, &len, &n, err), STORE_NOTFOUND);
  q.type = META_TRACE;
  CHECK_I64(store_merge(st, &q, &out, &len, &n, err), STORE_UNSUPPORTED);
  CHECK(out == NULL);

  /* merge_ids: missing id, mixed types, traces. */
  store_meta heap = {0}, trace = {0};
  buf h = read_fixture("heap_000.pb.gz");
  CHECK_RC(ingest(st, "merging", META_HEAP, "", 0, &h, &heap), STORE_OK);
  buf t = {0};
  put(&t, "trace bytes", 11);
  CHECK_RC(ingest(st, "merging", META_TRACE, "", 0, &t, &trace), STORE_OK);
  const char *missing[] = {ids[0], "00000000000000000000"};
  CHECK_I64(store_merge_ids(st, missing, 2, &out, &len, err), STORE_NOTFOUND);
  CHECK_STR(err, "no profile with id 00000000000000000000");
  const char *mixed[] = {ids[0], heap.id};
  CHECK_I64(store_merge_ids(st, mixed, 2, &out, &len, err), STORE_INVALID);
  CHECK(strstr(err, "different types") != NULL);
  const char *traces[] = {trace.id};
  CHECK_I64(store_merge_ids(st, traces, 1, &out, &len, err),
            STORE_UNSUPPORTED);
  CHECK(out == NULL);

  /* Different sample types under one type (other): STORE_MISMATCH. */
  buf a = make_profile(5000, 3, 1, 0), b = make_profile(5001, 3, 2, 1);
  CHECK_RC(ingest(st, "mix", META_OTHER, "", 0, &a, NULL), STORE_OK);
  CHECK_RC(ingest(st, "mix", META_OTHER, "", 0, &b, NULL), STORE_OK);
  q = query("mix", META_OTHER, NULL, 0, 9999, 0);
  CHECK_I64(store_merge(st, &q, &out, &len, &n, err), STORE_MISMATCH);
  CHECK(out == NULL);
  q.limit = 1;
  CHECK_RC(store_merge(st, &q, &out, &len, &n, err), STORE_OK);
  CHECK_I64(n, 1);
  free(out);

  free(a.p);
  free(b.p);
  free(h.p);
  free(t.p);
  store_meta_clear(&heap);
  store_meta_clear(&trace);
  store_meta_list_free(&l);
}

/* ---- delete, retention, services, stats ------------------------------------------------ */

static void test_delete_services(store *st) {
  char err[STORE_ERRMAX];
  buf p = make_profile(7000, 3, 3, 0);
  store_meta m = {0};
  CHECK_RC(ingest(st, "zeta", META_MUTEX, "", 0, &p, &m), STORE_OK);
  CHECK_RC(ingest(st, "alpha", META_MUTEX, "", 0, &p, NULL), STORE_OK);
  CHECK_RC(store_add_service(st, "mid", err), STORE_OK);
  CHECK_RC(store_add_service(st, "mid", err), STORE_OK);
  CHECK_RC(store_add_service(st, "alpha", err), STORE_OK);

  char **names = NULL;
  size_t n = 0;
  CHECK_RC(store_services(st, &names, &n, err), STORE_OK);
  /* Earlier tests made api, find, idem, merging and mix. */
  static const char *want[] = {"alpha", "api", "find", "idem", "merging",
                               "mid", "mix", "zeta"};
  CHECK_I64(n, 8);
  for (size_t i = 0; i < n && i < 8; i++) CHECK_STR(names[i], want[i]);
  store_names_free(names, n);

  store_stats before, after;
  CHECK_RC(store_get_stats(st, &before), STORE_OK);
  uint64_t gen = store_generation(st);
  CHECK_RC(store_delete(st, m.id, err), STORE_OK);
  CHECK(store_generation(st) != gen);
  void *data = NULL;
  size_t len;
  CHECK_I64(store_get(st, m.id, NULL, &data, &len, err), STORE_NOTFOUND);
  CHECK_I64(store_delete(st, m.id, err), STORE_NOTFOUND);
  CHECK_I64(count(st, query("zeta", META_MUTEX, NULL, 0, 9999, 0)), 0);
  CHECK_RC(store_get_stats(st, &after), STORE_OK);
  CHECK_I64(after.profiles, before.profiles - 1);
  CHECK_I64(after.bytes, before.bytes - (int64_t)p.n);
  /* The service stays (like a directory), until removed once empty. */
  CHECK_RC(store_services(st, &names, &n, err), STORE_OK);
  CHECK_I64(n, 8);
  store_names_free(names, n);
  CHECK_I64(store_remove_service(st, "api", err), STORE_INVALID);
  CHECK(strstr(err, "still holds profiles") != NULL);
  CHECK_I64(store_remove_service(st, "nosuch", err), STORE_NOTFOUND);
  CHECK_RC(store_remove_service(st, "zeta", err), STORE_OK);
  CHECK_RC(store_services(st, &names, &n, err), STORE_OK);
  CHECK_I64(n, 7);
  store_names_free(names, n);

  store_meta_clear(&m);
  free(p.p);
}

static void test_stats(store *st) {
  store_stats s;
  CHECK_RC(store_get_stats(st, &s), STORE_OK);
  /* Sum of what is stored, checked against find over everything. */
  char **names = NULL;
  size_t n = 0, total = 0;
  int64_t bytes = 0;
  CHECK_RC(store_services(st, &names, &n, NULL), STORE_OK);
  for (size_t i = 0; i < n; i++)
    for (int t = 0; t < META_NTYPES; t++) {
      store_meta_list l = {0, NULL};
      store_query q = query(names[i], (meta_type)t, NULL, INT64_MIN / 2,
                            INT64_MAX / 2, 0);
      CHECK_RC(store_find(st, &q, &l, NULL), STORE_OK);
      total += l.n;
      for (size_t k = 0; k < l.n; k++) bytes += l.v[k].size;
      store_meta_list_free(&l);
    }
  store_names_free(names, n);
  CHECK_I64(s.profiles, total);
  CHECK_I64(s.bytes, bytes);
  CHECK(s.disk_bytes > bytes);
  CHECK(s.ingests > 0 && s.commits > 0 && s.commits <= s.ingests + 10);
}

static double run_workers(store *st, int nthreads, int per, const buf *profiles,
                          int nprofiles, int with_reader);

static void test_retention(void) {
  char *dir = temp_dir(), err[STORE_ERRMAX];
  store *st = open_store(dir);
  /* 2400 old profiles of 7 KB (more than one retention step) in services
  ** conc0..conc2, and a few young ones; only created_at < cutoff goes. */
  int nold = 8 * 300;
  buf p = make_profile(50000, 700, 5, 0);
  run_workers(st, 8, 300, &p, 1, 0);
  buf edge = make_profile(100000, 3, 5, 0), young = make_profile(200000, 3, 5, 0);
  buf before_edge = make_profile(99999, 3, 5, 0);
  CHECK_RC(ingest(st, "conc0", META_CPU, "", 0, &edge, NULL), STORE_OK);
  CHECK_RC(ingest(st, "conc0", META_CPU, "", 0, &young, NULL), STORE_OK);
  CHECK_RC(ingest(st, "conc0", META_CPU, "", 0, &before_edge, NULL), STORE_OK);
  CHECK_RC(ingest(st, "conc1", META_HEAP, "", 0, &young, NULL), STORE_OK);
  store_stats s0, s1;
  CHECK_RC(store_get_stats(st, &s0), STORE_OK);
  CHECK_I64(s0.profiles, nold + 4);

  size_t deleted = 0;
  uint64_t gen = store_generation(st);
  CHECK_RC(store_retain(st, 100000, &deleted, err), STORE_OK);
  CHECK_I64(deleted, nold + 1);
  CHECK(store_generation(st) != gen);
  CHECK_I64(count(st, query("conc0", META_CPU, NULL, 0, 1000000, 0)), 2);
  CHECK_I64(count(st, query("conc0", META_CPU, NULL, 100000, 100000, 0)), 1);
  CHECK_I64(count(st, query("conc1", META_CPU, NULL, 0, 1000000, 0)), 0);
  CHECK_I64(count(st, query("conc1", META_HEAP, NULL, 0, 1000000, 0)), 1);
  CHECK_RC(store_get_stats(st, &s1), STORE_OK);
  CHECK_I64(s1.profiles, 3);
  /* The space went back to the file system (17 MB of blobs). */
  CHECK(s1.disk_bytes < s0.disk_bytes / 4);
  if (getenv("VERBOSE"))
    fprintf(stderr, "retention: disk %lld -> %lld bytes\n",
            (long long)s0.disk_bytes, (long long)s1.disk_bytes);

  /* Again: nothing more to delete, and the young are still there. */
  CHECK_RC(store_retain(st, 100000, &deleted, err), STORE_OK);
  CHECK_I64(deleted, 0);
  store_close(st);
  CHECK(integrity_ok(dir));
  char fl[32];
  sqlite_int(dir, "PRAGMA freelist_count", fl, sizeof fl);
  CHECK(atoi(fl) < 100);

  free(p.p);
  free(edge.p);
  free(young.p);
  free(before_edge.p);
  rm_rf(dir);
  free(dir);
}

typedef struct retain_arg {
  store *st;
  double seconds;
  size_t deleted;
} retain_arg;

static void *retain_worker(void *arg) {
  retain_arg *a = arg;
  double t0 = now_s();
  CHECK_RC(store_retain(a->st, 100000, &a->deleted, NULL), STORE_OK);
  a->seconds = now_s() - t0;
  return NULL;
}

/* Retention while a long read (a merge) holds an old snapshot: the space
** it frees is checkpointed without waiting for that reader, so ingests do
** not stall behind the writer (issue 13: an ingest took 9.9 s, the busy
** timeout, while a long merge ran). */
static void test_retention_reader(void) {
  char *dir = temp_dir(), path[1024];
  store *st = open_store(dir);
  buf old = make_profile(50000, 200, 7, 0), young = make_profile(200000, 3, 7, 0);
  sqlite3 *rd = NULL;
  pthread_t th;
  retain_arg a = {.st = st};

  for (int i = 0; i < 200; i++) {
    char labels[32];
    snprintf(labels, sizeof labels, "n=%d", i);
    CHECK_RC(ingest(st, "ret", META_CPU, labels, 0, &old, NULL), STORE_OK);
  }
  /* the long reader: a snapshot taken before retention's commits */
  snprintf(path, sizeof path, "%s/profefs.db", dir);
  CHECK(sqlite3_open_v2(path, &rd, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
  CHECK(sqlite3_exec(rd, "BEGIN; SELECT count(*) FROM profiles;", NULL, NULL,
                     NULL) == SQLITE_OK);
  pthread_create(&th, NULL, retain_worker, &a);
  usleep(200 * 1000);
  double t0 = now_s();
  CHECK_RC(ingest(st, "ret", META_CPU, "", 0, &young, NULL), STORE_OK);
  double ingest_s = now_s() - t0;
  pthread_join(th, NULL);
  sqlite3_exec(rd, "COMMIT", NULL, NULL, NULL);
  sqlite3_close(rd);
  if (getenv("VERBOSE"))
    fprintf(stderr, "retention beside a reader: retain %.2f s, ingest %.2f s\n",
            a.seconds, ingest_s);
  CHECK_I64(a.deleted, 200);
  CHECK(ingest_s < 2.0);
  CHECK(a.seconds < 4.0);
  CHECK_I64(count(st, query("ret", META_CPU, NULL, 0, 1000000, 0)), 1);
  store_close(st);
  CHECK(integrity_ok(dir));
  free(old.p);
  free(young.p);
  rm_rf(dir);
  free(dir);
}

static void test_toobig(void) {
  char *dir = temp_dir(), err[STORE_ERRMAX];
  store_options opts = {.max_inflate = 1000};
  store *st = NULL;
  CHECK_RC(store_open(dir, &opts, &st, err), STORE_OK);
  buf cpu = cpu_fixture(2);
  CHECK_I64(store_ingest(st, "s", META_CPU, "", 0, cpu.p, cpu.n, NULL, err),
            STORE_TOOBIG);
  store_close(st);
  free(cpu.p);
  rm_rf(dir);
  free(dir);
}

/* ---- hourly rollups ----------------------------------------------------------------------- */

#define H 3600

/* The store's merge of q, which must succeed; *n gets the count. */
static buf merged(store *st, store_query q, size_t *n) {
  char err[STORE_ERRMAX] = "";
  buf b = {0};
  void *out = NULL;
  size_t len = 0;
  store_rc rc = store_merge(st, &q, &out, &len, n, err);
  if (rc != STORE_OK) fprintf(stderr, "merge: %s\n", err);
  CHECK_RC(rc, STORE_OK);
  b.p = out;
  b.n = len;
  return b;
}

/* What merging q profile by profile gives: pprof over find's ids. */
static buf merged_raw(store *st, store_query q, size_t *n) {
  store_meta_list l = {0, NULL};
  CHECK_RC(store_find(st, &q, &l, NULL), STORE_OK);
  const char **ids = calloc(l.n + 1, sizeof *ids);
  for (size_t i = 0; i < l.n; i++) ids[i] = l.v[i].id;
  buf b = l.n ? expected_merge(st, ids, l.n) : (buf){0};
  *n = l.n;
  free(ids);
  store_meta_list_free(&l);
  return b;
}

static int same(buf a, buf b) {
  return a.n == b.n && a.n > 0 && memcmp(a.p, b.p, a.n) == 0;
}

/* Merge of q equals the profile-by-profile merge, byte for byte (one label
** set: rollups keep the time order, so even ids and order agree). */
#define CHECK_MERGE_SAME(st, q)                                              \
  do {                                                                       \
    size_t n1_ = 0, n2_ = 0;                                                 \
    buf a_ = merged(st, q, &n1_), b_ = merged_raw(st, q, &n2_);              \
    CHECK_I64(n1_, n2_);                                                     \
    CHECK(same(a_, b_));                                                     \
    free(a_.p);                                                              \
    free(b_.p);                                                              \
  } while (0)

static int64_t rollup_rows(const char *dir) {
  return sqlite_int(dir, "SELECT count(*) FROM rollups", NULL, 0);
}

static void add_at(store *st, const char *service, meta_type t,
                   const char *labels, int64_t sec, unsigned seed, int alt,
                   store_meta *m) {
  buf p = make_profile(sec, 20, seed, alt);
  CHECK_RC(ingest(st, service, t, labels, 0, &p, m), STORE_OK);
  free(p.p);
}

static void test_rollups(void) {
  char *dir = temp_dir(), err[STORE_ERRMAX];
  store *st = open_store(dir);
  int64_t h0 = 470000; /* hour numbers: year 2023, long complete */
  store_meta first = {0};
  /* Hours h0..h0+2: 5 profiles each; one profile in h0+3. */
  for (int h = 0; h < 3; h++)
    for (int k = 0; k < 5; k++)
      add_at(st, "roll", META_CPU, "", (h0 + h) * H + k * 600 + 7,
             (unsigned)(h * 5 + k), 0, h == 0 && k == 0 ? &first : NULL);
  add_at(st, "roll", META_CPU, "", (h0 + 3) * H + 5, 99, 0, NULL);
  store_query all = query("roll", META_CPU, NULL, h0 * H, (h0 + 4) * H, 0);
  size_t n = 0;
  buf before = merged(st, all, &n);
  CHECK_I64(n, 16);
  CHECK_I64(rollup_rows(dir), 0);

  size_t built = 99;
  CHECK_RC(store_maintain(st, &built, err), STORE_OK);
  /* Hours h0..h0+2, their day and week; h0+3 has one profile: none. */
  CHECK_I64(built, 5);
  CHECK_I64(rollup_rows(dir), 5);
  buf after = merged(st, all, &n);
  CHECK_I64(n, 16);
  CHECK(same(before, after));
  free(before.p);
  free(after.p);
  CHECK_RC(store_maintain(st, &built, err), STORE_OK);
  CHECK_I64(built, 0); /* nothing changed */

  /* Ranges cutting hours use only the rollups of whole hours inside. */
  CHECK_MERGE_SAME(st, query("roll", META_CPU, NULL, h0 * H + 1200,
                             (h0 + 2) * H + 600, 0));
  CHECK_MERGE_SAME(st, query("roll", META_CPU, NULL, (h0 + 1) * H,
                             (h0 + 2) * H - 1, 0));
  CHECK_MERGE_SAME(st, query("roll", META_CPU, NULL, (h0 + 1) * H,
                             (h0 + 2) * H - 2, 0));
  CHECK_MERGE_SAME(st, query("roll", META_CPU, NULL, 0, INT64_MAX / 2, 0));
  /* A limit takes the oldest profiles, not rollups. */
  CHECK_MERGE_SAME(st, query("roll", META_CPU, NULL, 0, INT64_MAX / 2, 7));

  /* A late arrival in hour h0+1 drops the rollups of its hour, day and
  ** week at once... */
  add_at(st, "roll", META_CPU, "", (h0 + 1) * H + 3599, 77, 0, NULL);
  CHECK_I64(rollup_rows(dir), 2);
  CHECK_MERGE_SAME(st, all);
  CHECK_RC(store_maintain(st, &built, err), STORE_OK);
  CHECK_I64(built, 3); /* ...and they are built again */
  CHECK_MERGE_SAME(st, all);

  /* So does a delete. */
  CHECK_RC(store_delete(st, first.id, err), STORE_OK);
  CHECK_I64(rollup_rows(dir), 2);
  CHECK_MERGE_SAME(st, all);
  CHECK_RC(store_maintain(st, &built, err), STORE_OK);
  CHECK_I64(built, 3);
  CHECK_MERGE_SAME(st, all);

  /* A second label set in hour h0+1: rollups of "" and of k=v, for the
  ** hour, the day and the week. */
  add_at(st, "roll", META_CPU, "k=v", (h0 + 1) * H + 100, 50, 0, NULL);
  add_at(st, "roll", META_CPU, "k=v", (h0 + 1) * H + 200, 51, 0, NULL);
  CHECK_I64(rollup_rows(dir), 2);
  CHECK_RC(store_maintain(st, &built, err), STORE_OK);
  CHECK_I64(built, 6);
  CHECK_I64(rollup_rows(dir), 8);
  CHECK_MERGE_SAME(st, query("roll", META_CPU, "k=v", 0, INT64_MAX / 2, 0));
  /* Across label sets too, byte for byte (rollups by filter). */
  CHECK_MERGE_SAME(st, all);
  size_t n18 = 0;
  buf b18 = merged(st, all, &n18);
  CHECK_I64(n18, 18);
  free(b18.p);

  /* An hour whose profiles cannot be merged gets no rollup, and merging it
  ** still reports the mismatch. */
  add_at(st, "mix", META_OTHER, "", h0 * H + 1, 1, 0, NULL);
  add_at(st, "mix", META_OTHER, "", h0 * H + 2, 2, 1, NULL);
  CHECK_RC(store_maintain(st, &built, err), STORE_OK);
  CHECK_I64(built, 0);
  void *out = NULL;
  size_t len;
  store_query q = query("mix", META_OTHER, NULL, 0, INT64_MAX / 2, 0);
  CHECK_I64(store_merge(st, &q, &out, &len, &n, err), STORE_MISMATCH);

  /* Retention takes the rollups of the hours it empties. */
  size_t deleted = 0;
  CHECK_RC(store_retain(st, (h0 + 1) * H, &deleted, err), STORE_OK);
  CHECK_I64(deleted, 4 + 2); /* roll h0 (first one deleted before), mix */
  /* Left: hours h0+1 ("", k=v), h0+2 (""); the day and week of k=v,
  ** whose profiles retention did not touch. */
  CHECK_I64(rollup_rows(dir), 5);
  CHECK_MERGE_SAME(st, query("roll", META_CPU, "", 0, INT64_MAX / 2, 0));
  CHECK_MERGE_SAME(st, query("roll", META_CPU, "k=v", 0, INT64_MAX / 2, 0));
  CHECK_RC(store_maintain(st, &built, err), STORE_OK);
  CHECK_I64(built, 4); /* "" and k=v again for the day and the week */
  CHECK_I64(sqlite_int(dir, "SELECT count(*) FROM rollup_dirty", NULL, 0), 0);
  CHECK_MERGE_SAME(st, query("roll", META_CPU, "", 0, INT64_MAX / 2, 0));

  store_close(st);
  CHECK(integrity_ok(dir));
  store_options ro = {.read_only = 1};
  CHECK_RC(store_open(dir, &ro, &st, err), STORE_OK);
  CHECK_I64(store_maintain(st, &built, err), STORE_READONLY);
  CHECK_MERGE_SAME(st, query("roll", META_CPU, "", 0, INT64_MAX / 2, 0));
  store_close(st);
  store_meta_clear(&first);
  rm_rf(dir);
  free(dir);
}

/* A store of schema 1 (before rollups) is upgraded when opened read-write,
** its old hours then get rollups. */
typedef struct merge_arg {
  store *st;
  store_query q;
  atomic_int done;
} merge_arg;

static void *merge_worker(void *arg) {
  merge_arg *a = arg;
  size_t n = 0;
  buf b = merged(a->st, a->q, &n);
  CHECK_I64(n, a->q.limit);
  free(b.p);
  atomic_store(&a->done, 1);
  return NULL;
}

/* A merge reads in slices, each in its own snapshot (issue 13: one
** snapshot for a whole long merge kept the WAL from being copied back):
** while a long merge runs, what is committed beside it can be checkpointed
** completely.  Sliced merges give the same bytes as profile by profile,
** with rollups (hour slices) and with a limit (second slices, some seconds
** holding two profiles). */
static void test_merge_slices(void) {
  char *dir = temp_dir(), err[STORE_ERRMAX], path[1024];
  store *st = open_store(dir);
  const int64_t t0 = 470100 * H, n = 1400;
  size_t built = 0;
  /* big enough that merging them takes a while beside the ingests below */
  for (int64_t i = 0; i < n; i++) {
    buf big = make_profile(t0 + (i / 2) * 9 + (i % 2) * (i % 3 == 0), 300,
                           (unsigned)i, 0);
    CHECK_RC(ingest(st, "sl", META_CPU, "", 0, &big, NULL), STORE_OK);
    free(big.p);
  }
  CHECK_RC(store_maintain(st, &built, err), STORE_OK);
  CHECK(built >= 1);
  CHECK_MERGE_SAME(st, query("sl", META_CPU, "", t0, t0 + 4 * H, 0));
  CHECK_MERGE_SAME(st, query("sl", META_CPU, "", t0 + 100, t0 + 3 * H + 5, 0));
  CHECK_MERGE_SAME(st, query("sl", META_CPU, "", t0, t0 + 4 * H, 1000));

  merge_arg a = {.st = st, .q = query("sl", META_CPU, "", t0, t0 + 4 * H, n)};
  atomic_init(&a.done, 0);
  sqlite3 *db = NULL;
  snprintf(path, sizeof path, "%s/profefs.db", dir);
  CHECK(sqlite3_open(path, &db) == SQLITE_OK);
  sqlite3_busy_timeout(db, 0);
  /* reads the header, so that the connection knows the WAL */
  CHECK(sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL,
                     NULL) == SQLITE_OK);
  pthread_t th;
  pthread_create(&th, NULL, merge_worker, &a);
  /* first_log: the WAL's frames just after the merge began; frames up to
  ** it copied back while the merge runs (or the WAL started over, which
  ** needs them all copied) mean the merge let go of its first snapshot */
  int first_log = -1, progressed = 0, tries = 0;
  buf p = make_profile(t0, 5, 99, 0);
  while (!atomic_load(&a.done)) {
    int log = -1, done = -1;
    char labels[32];
    snprintf(labels, sizeof labels, "k=%d", tries); /* new rows, new frames */
    CHECK_RC(ingest(st, "beside", META_CPU, labels, 0, &p, NULL), STORE_OK);
    if (sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log,
                                  &done) == SQLITE_OK &&
        !atomic_load(&a.done)) {
      if (first_log < 0) first_log = log;
      else if (done >= first_log || log < first_log) progressed = 1;
    }
    tries++;
    usleep(20 * 1000);
  }
  pthread_join(th, NULL);
  if (getenv("VERBOSE"))
    fprintf(stderr, "merge slices: %d ingests and checkpoints beside the "
            "merge, frames after its start copied back: %d\n", tries,
            progressed);
  CHECK(tries >= 3);
  CHECK(progressed);
  sqlite3_close(db);
  store_close(st);
  CHECK(integrity_ok(dir));
  free(p.p);
  rm_rf(dir);
  free(dir);
}

static void test_upgrade(void) {
  char *dir = temp_dir(), err[STORE_ERRMAX], path[1024];
  store *st = open_store(dir);
  store_meta first = {0};
  static const char *const sets[4] = {"", "pod=a,region=eu",
                                       "pod=b,region=eu", "pod=a,region=eu"};
  for (int k = 0; k < 4; k++)
    add_at(st, "old", META_CPU, sets[k], 470200 * H + k, (unsigned)k, 0,
           k == 0 ? &first : NULL);
  store_close(st);
  snprintf(path, sizeof path, "%s/profefs.db", dir);
  sqlite3 *db;
  CHECK(sqlite3_open(path, &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db,
                     /* Back to what schema 1 had. */
                     "DROP TRIGGER label_pairs_added;"
                     "DROP TRIGGER label_pairs_removed;"
                     "DROP TABLE label_pairs;"
                     "DROP INDEX profiles_by_labels;"
                     "DROP INDEX profiles_same;"
                     "ALTER TABLE profiles DROP COLUMN digest;"
                     "DROP TRIGGER rollups_added; DROP TRIGGER rollups_removed;"
                     "DROP TRIGGER rollup_data_unused;"
                     "DROP TABLE rollups; DROP TABLE rollup_dirty;"
                     "DROP TABLE rollup_data;"
                     "DROP TRIGGER blobs_removed; DROP TRIGGER series_removed;"
                     "CREATE TRIGGER profiles_removed AFTER DELETE ON profiles"
                     " BEGIN DELETE FROM blobs WHERE rowid = old.rowid;"
                     " UPDATE series SET profiles = profiles - 1,"
                     "  bytes = bytes - old.size WHERE service = old.service"
                     "  AND type = old.type AND labels = old.labels;"
                     " DELETE FROM series WHERE service = old.service"
                     "  AND type = old.type AND labels = old.labels"
                     "  AND profiles = 0; END;"
                     "PRAGMA user_version=1;",
                     NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(db);

  store_options ro = {.read_only = 1};
  st = NULL;
  CHECK_I64(store_open(dir, &ro, &st, err), STORE_IO);
  CHECK(strstr(err, "older schema") != NULL);
  /* the upgrade says what it does on stderr (it may read every profile) */
  char logpath[1100], said[512] = "";
  snprintf(logpath, sizeof logpath, "%s/upgrade.log", dir);
  fflush(stderr);
  int saved = dup(2), logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  CHECK(saved >= 0 && logfd >= 0);
  dup2(logfd, 2);
  st = open_store(dir);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(logfd);
  FILE *lf = fopen(logpath, "r");
  size_t got = lf ? fread(said, 1, sizeof said - 1, lf) : 0;
  said[got] = '\0';
  if (lf) fclose(lf);
  CHECK(strstr(said, "upgrading") != NULL && strstr(said, "schema 1 to 5") != NULL);
  CHECK(strstr(said, "upgraded in") != NULL);
  CHECK_I64(sqlite_int(dir, "PRAGMA user_version", NULL, 0), 5);
  /* version 5 indexed the label pairs of the sets stored before it */
  CHECK_I64(sqlite_int(dir, "SELECT count(*) FROM label_pairs", NULL, 0), 4);
  CHECK_RC(store_has_labels(st, "old", META_CPU, "pod=b,region=eu", 1, err),
           STORE_OK);
  CHECK_RC(store_has_labels(st, "old", META_CPU, "pod=b", 1, err),
           STORE_NOTFOUND);
  CHECK_RC(store_has_labels(st, "old", META_CPU, "pod=b", 0, err), STORE_OK);
  CHECK_RC(store_has_labels(st, "old", META_CPU, "pod=c", 0, err),
           STORE_NOTFOUND);
  store_meta_list ml = {0};
  CHECK_RC(store_find(st, &(store_query){"old", META_CPU, "pod=a", 0,
                                         INT64_MAX / 2, 0, 0}, &ml, err),
           STORE_OK);
  CHECK_I64(ml.n, 2);
  store_meta_list_free(&ml);
  /* version 4 computed the digest of the profiles stored before it, so a
  ** repeat of one of them is still recognised */
  CHECK_I64(sqlite_int(dir, "SELECT count(*) FROM profiles WHERE digest IS NULL",
                       NULL, 0), 0);
  store_meta again = {0};
  add_at(st, "old", META_CPU, "", 470200 * H, 0, 0, &again);
  CHECK_STR(again.id, first.id);
  CHECK_I64(sqlite_int(dir, "SELECT count(*) FROM profiles", NULL, 0), 4);
  store_meta_clear(&first);
  store_meta_clear(&again);
  size_t built = 0;
  CHECK_RC(store_maintain(st, &built, err), STORE_OK);
  /* its hour, day and week, each with "", region=eu, pod=a and the set
  ** pod=a,region=eu (pod=b has one profile: not worth one) */
  CHECK_I64(built, 12);
  CHECK_MERGE_SAME(st, query("old", META_CPU, NULL, 0, INT64_MAX / 2, 0));
  store_close(st);
  rm_rf(dir);
  free(dir);
}

/* ---- the rollup policy (store/rollup.c) ----------------------------------------------- */

/* Plans pick the biggest rollup at each point, raw profiles between,
** coalesced, never a rollup above top or crossing the range's end. */
static void test_rollup_plan(void) {
  int64_t w = 2800 * 7 * 86400; /* a week's start */
  CHECK_I64(store_rollup_slot(2, w + 5), w);
  CHECK_I64(store_rollup_slot(1, w + 86400 + 7), w + 86400);
  CHECK_I64(store_rollup_slot(0, -1), -3600);
  CHECK(store_rollup_slot_valid(0, 3600) && !store_rollup_slot_valid(0, 0));
  CHECK(!store_rollup_slot_valid(1, 3600));
  CHECK(store_rollup_due(0, 3600, 3600 + 3600 + STORE_ROLLUP_GRACE));
  CHECK(!store_rollup_due(0, 3600, 3600 + 3600 + STORE_ROLLUP_GRACE - 1));
  store_rollup_have have[] = {
    {0, w + 86400},     /* hour inside day 1, which is there too */
    {1, w + 86400},     /* day 1 */
    {0, w + 3600},      /* hour 1 of day 0 */
    {0, w + 2 * 3600},  /* hour 2 */
    {2, w},             /* the week */
    {1, w + 2 * 86400}, /* day 2 */
    {0, w + 7 * 86400}, /* an hour of the next week */
  };
  store_rollup_piece *p = NULL;
  size_t n = 0;
  /* The whole week: one piece. */
  CHECK_RC(store_rollup_plan(w, w + 7 * 86400 - 1, 2, have, 7, &p, &n, NULL),
           STORE_OK);
  CHECK_I64(n, 1);
  if (n == 1) CHECK(p[0].level == 2 && p[0].from == w);
  free(p);
  /* Up to days only, from 30 min into the week to day 3 + 1 s: raw to
  ** hour 1, hours 1 and 2, raw to day 1, days 1 and 2, raw to the end. */
  CHECK_RC(store_rollup_plan(w + 1800, w + 3 * 86400, 1, have, 7, &p, &n,
                             NULL), STORE_OK);
  const store_rollup_piece want[] = {
    {-1, w + 1800, w + 3599}, {0, w + 3600, w + 7199},
    {0, w + 7200, w + 10799}, {-1, w + 10800, w + 86399},
    {1, w + 86400, w + 2 * 86400 - 1}, {1, w + 2 * 86400, w + 3 * 86400 - 1},
    {-1, w + 3 * 86400, w + 3 * 86400}};
  CHECK_I64(n, 7);
  for (size_t i = 0; i < n && i < 7; i++)
    CHECK(p[i].level == want[i].level && p[i].from == want[i].from &&
          p[i].to == want[i].to);
  free(p);
  /* A range ending inside day 0: raw, hours 1 and 2, raw (the day and the
  ** week do not fit). */
  CHECK_RC(store_rollup_plan(w, w + 86400 - 2, 2, have, 7, &p, &n, NULL),
           STORE_OK);
  CHECK_I64(n, 4);
  if (n == 4) CHECK(p[0].level == -1 && p[3].level == -1 && p[3].to == w + 86398);
  free(p);
  /* No rollups usable (top -1): one raw piece. */
  CHECK_RC(store_rollup_plan(w, w + 86400, -1, have, 7, &p, &n, NULL),
           STORE_OK);
  CHECK_I64(n, 1);
  if (n == 1) CHECK(p[0].level == -1 && p[0].from == w && p[0].to == w + 86400);
  free(p);

  /* Filters: "", each pair, each whole set of several pairs. */
  const char *sets[] = {"dc=x,host=h1", "dc=x,host=h2", "host=h1"};
  int64_t counts[] = {3, 2, 4};
  char **f = NULL;
  int64_t *fc = NULL;
  size_t nf = 0;
  CHECK_RC(store_rollup_filters(sets, counts, 3, &f, &fc, &nf, NULL), STORE_OK);
  const char *wantf[] = {"", "host=h1", "dc=x", "dc=x,host=h1", "dc=x,host=h2",
                         "host=h2"};
  const int64_t wantc[] = {9, 7, 5, 3, 2, 2};
  CHECK_I64(nf, 6);
  for (size_t i = 0; i < nf && i < 6; i++) {
    CHECK_STR(f[i], wantf[i]);
    CHECK_I64(fc[i], wantc[i]);
  }
  store_names_free(f, nf);
  free(fc);
  /* Many pods (issue 21): "" and the pairs of region, whose values are
  ** few; none for pod (a value per set) nor for whole sets. */
  enum { PODS = STORE_ROLLUP_FEW_SETS + 1 };
  char *many[PODS];
  int64_t ones[PODS];
  for (int i = 0; i < PODS; i++) {
    CHECK(asprintf(&many[i], "pod=p%03d,region=r%d", i, i % 3) > 0);
    ones[i] = 1;
  }
  CHECK_RC(store_rollup_filters((const char *const *)many, ones, PODS, &f,
                                &fc, &nf, NULL), STORE_OK);
  const char *wantm[] = {"", "region=r0", "region=r1", "region=r2"};
  CHECK_I64(nf, 4);
  for (size_t i = 0; i < nf && i < 4; i++) CHECK_STR(f[i], wantm[i]);
  store_names_free(f, nf);
  free(fc);
  /* One set fewer, at both bounds: every pod and whole set again. */
  CHECK_RC(store_rollup_filters((const char *const *)many, ones, PODS - 1,
                                &f, &fc, &nf, NULL), STORE_OK);
  CHECK_I64(nf, 4 + 2 * (PODS - 1));
  store_names_free(f, nf);
  free(fc);
  for (int i = 0; i < PODS; i++) free(many[i]);
  /* Digests: order and boundaries count. */
  uint64_t a = store_rollup_digest(store_rollup_digest(STORE_ROLLUP_DIGEST0, "ab"), "c");
  uint64_t b = store_rollup_digest(store_rollup_digest(STORE_ROLLUP_DIGEST0, "a"), "bc");
  uint64_t c = store_rollup_digest(store_rollup_digest(STORE_ROLLUP_DIGEST0, "c"), "ab");
  CHECK(a != b && a != c);
}

/* ---- rollups by filter, days and weeks ------------------------------------------------ */

#define DAY 86400

/* Every filter of a month-like history, over the whole of it and over a
** range cutting weeks, days and hours, merges byte for byte as the
** profiles one by one (label subsets included). */
static void check_filters(store *st, int64_t w0) {
  static const char *const filters[] = {
    "", "dc=x", "host=h1", "dc=x,host=h1", "dc=x,host=h1,pod=p1", "pod=p1",
    "host=h1,pod=p1", "host=h4"};
  for (size_t i = 0; i < sizeof filters / sizeof *filters; i++) {
    CHECK_MERGE_SAME(st, query("fleet", META_CPU, filters[i], 0,
                               INT64_MAX / 2, 0));
    CHECK_MERGE_SAME(st, query("fleet", META_CPU, filters[i],
                               w0 + 5 * H + 17, w0 + 8 * DAY + 3 * H, 0));
  }
}

static int64_t rollups_where(const char *dir, const char *where) {
  char sql[512];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM rollups WHERE %s", where);
  return sqlite_int(dir, sql, NULL, 0);
}

/* Nine days of 5 hosts (host=hN,dc=x, a few with pod=p1 too): rollups of
** hours, days and weeks, for "", each pair and each whole set, are exact
** and are dropped in the transaction of a late arrival, a delete or a
** retention pass, for the filters that match the profile only. */
static void test_rollup_levels(void) {
  char *dir = temp_dir(), err[STORE_ERRMAX], where[256];
  store *st = open_store(dir);
  int64_t w0 = 2800 * 7 * (int64_t)DAY; /* a week's start, in 2023 */
  store_meta victim = {0};
  for (int i = 0; i < 9 * 36; i++) { /* one every 40 minutes */
    char labels[64];
    int host = i % 5;
    snprintf(labels, sizeof labels, i % 7 == 3 ? "dc=x,host=h%d,pod=p1"
                                               : "dc=x,host=h%d", host);
    add_at(st, "fleet", META_CPU, labels, w0 + i * 2400 + 11, (unsigned)i, 0,
           i == 5 * 36 + 6 ? &victim : NULL);
  }
  check_filters(st, w0);
  size_t built = 0;
  CHECK_RC(store_maintain(st, &built, err), STORE_OK);
  CHECK(built > 0);
  CHECK_I64(rollups_where(dir, "level = 2 AND filter = ''"), 2);
  CHECK_I64(rollups_where(dir, "level = 1 AND filter = 'host=h1'"), 9);
  CHECK_I64(rollups_where(dir, "level = 1 AND filter = 'dc=x'"), 9);
  CHECK_I64(rollups_where(dir, "level = 0 AND filter = 'host=h1'"), 0);
  /* Filters of the same profiles share their bytes. */
  CHECK(sqlite_int(dir, "SELECT count(*) FROM rollup_data", NULL, 0) <
        sqlite_int(dir, "SELECT count(DISTINCT data) FROM rollups", NULL, 0) +
            rollups_where(dir, "filter = 'dc=x'"));
  CHECK_I64(sqlite_int(dir, "SELECT count(*) FROM rollups WHERE data IN"
                            " (SELECT data FROM rollups WHERE filter = '')"
                            " AND filter = 'dc=x'", NULL, 0),
            rollups_where(dir, "filter = 'dc=x'"));
  check_filters(st, w0);

  /* A late arrival for host=h2 in day 3: the rollups it matches go at
  ** once (its hour, day and week), host=h1's stay. */
  int64_t late = w0 + 3 * DAY + 100;
  add_at(st, "fleet", META_CPU, "dc=x,host=h2", late, 999, 0, NULL);
  snprintf(where, sizeof where,
           "filter IN ('', 'dc=x', 'host=h2', 'dc=x,host=h2') AND"
           " ((level = 1 AND start = %lld) OR (level = 2 AND start = %lld))",
           (long long)(w0 + 3 * DAY), (long long)w0);
  CHECK_I64(rollups_where(dir, where), 0);
  snprintf(where, sizeof where, "filter = 'host=h1' AND level = 1"
           " AND start = %lld", (long long)(w0 + 3 * DAY));
  CHECK_I64(rollups_where(dir, where), 1);
  check_filters(st, w0);
  CHECK_RC(store_maintain(st, &built, err), STORE_OK);
  CHECK(built > 0);
  check_filters(st, w0);

  /* A delete of one of host=h1's profiles (day 5, no pod): pod=p1's
  ** rollup of that day stays. */
  CHECK_RC(store_delete(st, victim.id, err), STORE_OK);
  snprintf(where, sizeof where, "filter IN ('', 'host=h1', 'dc=x,host=h1')"
           " AND level = 1 AND start = %lld",
           (long long)(victim.created_at / DAY * DAY));
  CHECK_I64(rollups_where(dir, where), 0);
  snprintf(where, sizeof where, "filter = 'pod=p1' AND level = 1"
           " AND start = %lld", (long long)(victim.created_at / DAY * DAY));
  CHECK_I64(rollups_where(dir, where), 1);
  check_filters(st, w0);
  CHECK_RC(store_maintain(st, &built, err), STORE_OK);
  check_filters(st, w0);

  /* Retention up to day 1 + 7 hours: the slots it cuts are rebuilt. */
  size_t deleted = 0;
  CHECK_RC(store_retain(st, w0 + DAY + 7 * H, &deleted, err), STORE_OK);
  CHECK_I64(deleted, 36 + 11);
  snprintf(where, sizeof where, "level = 2 AND start = %lld", (long long)w0);
  CHECK_I64(rollups_where(dir, where), 0);
  check_filters(st, w0);
  CHECK_RC(store_maintain(st, &built, err), STORE_OK);
  CHECK(rollups_where(dir, where) > 0);
  check_filters(st, w0);
  CHECK_I64(sqlite_int(dir, "SELECT count(*) FROM rollup_dirty", NULL, 0), 0);

  store_close(st);
  CHECK(integrity_ok(dir));
  store_meta_clear(&victim);
  rm_rf(dir);
  free(dir);
}

typedef struct late_arg {
  store *st;
  int64_t h0;
  int n, failures;
} late_arg;

static void *late_worker(void *arg) {
  late_arg *a = arg;
  for (int i = 0; i < a->n; i++) {
    buf p = make_profile((a->h0 + i % 6) * H + (i * 37) % H, 10,
                         (unsigned)i, 0);
    if (store_ingest(a->st, "late", META_HEAP, "", 0, p.p, p.n, NULL,
                     NULL) != STORE_OK)
      a->failures++;
    free(p.p);
  }
  return NULL;
}

/* Late arrivals racing rollup passes: in the end every merge still equals
** the profile-by-profile merge. */
static void test_rollup_race(void) {
  char *dir = temp_dir();
  store *st = open_store(dir);
  late_arg a[2] = {{st, 470100, 150, 0}, {st, 470100, 150, 0}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, late_worker, &a[i]);
  size_t total = 0, built;
  for (int i = 0; i < 20; i++) {
    built = 0;
    CHECK_RC(store_maintain(st, &built, NULL), STORE_OK);
    total += built;
  }
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  CHECK_I64(a[0].failures + a[1].failures, 0);
  CHECK_RC(store_maintain(st, &built, NULL), STORE_OK);
  store_query q = query("late", META_HEAP, NULL, 0, INT64_MAX / 2, 0);
  CHECK_MERGE_SAME(st, q);
  CHECK_I64(rollup_rows(dir), 8); /* 6 hours, their day and week */
  if (getenv("VERBOSE"))
    fprintf(stderr, "rollup race: %zu rollups built while ingesting\n", total);
  store_close(st);
  rm_rf(dir);
  free(dir);
}

/* ---- concurrency, reopen ------------------------------------------------------------------- */

typedef struct worker {
  store *st;
  int index, n;
  const buf *profiles; /* nprofiles to cycle through */
  int nprofiles;
  char (*ids)[META_ID_LEN + 1];
  int failures;
} worker;

static void *ingest_worker(void *arg) {
  worker *w = arg;
  char service[32], labels[32], err[STORE_ERRMAX];
  snprintf(service, sizeof service, "conc%d", w->index % 3);
  for (int i = 0; i < w->n; i++) {
    store_meta m;
    const buf *p = &w->profiles[(w->index + i) % w->nprofiles];
    /* distinct profiles: ingest is idempotent */
    snprintf(labels, sizeof labels, "w=%d-%d", w->index, i);
    store_rc rc = store_ingest(w->st, service, META_CPU, labels, 0, p->p,
                               p->n, &m, err);
    if (rc != STORE_OK) {
      fprintf(stderr, "worker %d: %s\n", w->index, err);
      w->failures++;
      continue;
    }
    memcpy(w->ids[i], m.id, META_ID_LEN + 1);
    store_meta_clear(&m);
  }
  return NULL;
}

/* Reads while the workers write: merges and finds must keep working. */
typedef struct reader_arg {
  store *st;
  volatile int stop;
  int ok, failures;
} reader_arg;

static void *read_worker(void *arg) {
  reader_arg *r = arg;
  while (!r->stop) {
    store_query q = query("conc0", META_CPU, NULL, 0, INT64_MAX / 2, 20);
    void *out = NULL;
    size_t len, n;
    store_rc rc = store_merge(r->st, &q, &out, &len, &n, NULL);
    if (rc == STORE_OK) r->ok++, free(out);
    else if (rc != STORE_NOTFOUND) r->failures++;
  }
  return NULL;
}

/* nthreads x per ingests of profiles; returns elapsed seconds. */
static double run_workers(store *st, int nthreads, int per, const buf *profiles,
                          int nprofiles, int with_reader) {
  pthread_t th[16], rt;
  worker w[16];
  reader_arg ra = {st, 0, 0, 0};
  double t0 = now_s();
  if (with_reader) pthread_create(&rt, NULL, read_worker, &ra);
  for (int i = 0; i < nthreads; i++) {
    w[i] = (worker){st, i, per, profiles, nprofiles, NULL, 0};
    w[i].ids = calloc((size_t)per, sizeof *w[i].ids);
    pthread_create(&th[i], NULL, ingest_worker, &w[i]);
  }
  for (int i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
  double dt = now_s() - t0;
  if (with_reader) {
    ra.stop = 1;
    pthread_join(rt, NULL);
    CHECK_I64(ra.failures, 0);
    CHECK(ra.ok > 0);
  }
  /* Every acknowledged id is there, with its bytes. */
  int missing = 0, failures = 0;
  for (int i = 0; i < nthreads; i++) {
    failures += w[i].failures;
    for (int k = 0; k < per && with_reader; k++) {
      store_meta m;
      if (store_stat(st, w[i].ids[k], &m, NULL) != STORE_OK) missing++;
      else store_meta_clear(&m);
    }
    free(w[i].ids);
  }
  CHECK_I64(failures, 0);
  CHECK_I64(missing, 0);
  return dt;
}

static void test_concurrency_reopen(void) {
  char *dir = temp_dir();
  store *st = open_store(dir);
  buf cpu[15];
  for (int i = 0; i < 15; i++) cpu[i] = cpu_fixture(i);

  store_stats s0, s1;
  CHECK_RC(store_get_stats(st, &s0), STORE_OK);
  double dt = run_workers(st, 8, 200, cpu, 15, 1);
  CHECK_RC(store_get_stats(st, &s1), STORE_OK);
  CHECK_I64(s1.profiles, 1600);
  CHECK_I64(s1.ingests - s0.ingests, 1600);
  size_t total = 0;
  for (int i = 0; i < 3; i++) {
    char service[16];
    snprintf(service, sizeof service, "conc%d", i);
    total += count(st, query(service, META_CPU, NULL, 0, INT64_MAX / 2, 0));
  }
  CHECK_I64(total, 1600);
  /* Group commit did group: fewer commits than ingests. */
  CHECK(s1.commits - s0.commits < 1600);
  printf("8 threads x 200 cpu ingests: %.0f/s, %lld commits\n", 1600 / dt,
         (long long)(s1.commits - s0.commits));

  /* Everything is still there after close and reopen. */
  store_close(st);
  CHECK(integrity_ok(dir));
  st = open_store(dir);
  total = 0;
  for (int i = 0; i < 3; i++) {
    char service[16];
    snprintf(service, sizeof service, "conc%d", i);
    total += count(st, query(service, META_CPU, NULL, 0, INT64_MAX / 2, 0));
  }
  CHECK_I64(total, 1600);
  store_stats s2;
  CHECK_RC(store_get_stats(st, &s2), STORE_OK);
  CHECK_I64(s2.profiles, 1600);
  CHECK_I64(s2.bytes, s1.bytes);
  store_close(st);

  for (int i = 0; i < 15; i++) free(cpu[i].p);
  rm_rf(dir);
  free(dir);
}

/* ---- kill -9 right after acknowledgements ------------------------------------------------ */

typedef struct crash_arg {
  store *st;
  int fd;
} crash_arg;

static void *crash_worker(void *arg) {
  crash_arg *a = arg;
  buf p = cpu_fixture(3);
  char labels[64];
  for (long i = 0;; i++) {
    store_meta m;
    /* distinct per thread and request: ingest is idempotent */
    snprintf(labels, sizeof labels, "n=%lx-%ld", (unsigned long)pthread_self(), i);
    if (store_ingest(a->st, "crash", META_CPU, labels, 0, p.p, p.n, &m,
                     NULL) != STORE_OK)
      _exit(3);
    /* Acknowledged: from now on it must survive anything. */
    if (write(a->fd, m.id, META_ID_LEN + 1) != META_ID_LEN + 1) _exit(4);
    store_meta_clear(&m);
  }
  return NULL;
}

/* Four threads ingest (so batches hold several requests) until killed. */
static void crash_child(const char *dir, int fd) {
  crash_arg a = {open_store(dir), fd};
  pthread_t th[4];
  for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, crash_worker, &a);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  _exit(5);
}

static void test_crash(void) {
  char *dir = temp_dir();
  store *st = open_store(dir); /* create it before the children race */
  store_close(st);
  int fds[2];
  CHECK(pipe(fds) == 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    crash_child(dir, fds[1]);
  }
  close(fds[1]);
  size_t n = 0, cap = 1024;
  char (*ids)[META_ID_LEN + 1] = malloc(cap * sizeof *ids);
  int killed = 0;
  ssize_t r;
  char rec[META_ID_LEN + 1];
  while ((r = read(fds[0], rec, sizeof rec)) == (ssize_t)sizeof rec) {
    if (n == cap) ids = realloc(ids, (cap *= 2) * sizeof *ids);
    memcpy(ids[n++], rec, sizeof rec);
    if (n == 300 && !killed) {
      kill(pid, SIGKILL);
      killed = 1;
    }
  }
  close(fds[0]);
  int status;
  waitpid(pid, &status, 0);
  CHECK(killed);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

  st = open_store(dir);
  int missing = 0;
  for (size_t i = 0; i < n; i++) {
    store_meta m;
    if (store_stat(st, ids[i], &m, NULL) != STORE_OK) missing++;
    else store_meta_clear(&m);
  }
  CHECK(n >= 300);
  CHECK_I64(missing, 0);
  size_t stored = count(st, query("crash", META_CPU, NULL, 0, INT64_MAX / 2, 0));
  CHECK(stored >= n);
  store_close(st);
  CHECK(integrity_ok(dir));
  free(ids);
  rm_rf(dir);
  free(dir);
}

/* ---- full disk (tmpfs in a private mount namespace) --------------------------------------- */

/* Runs in a child; returns the number of failed checks, or 77 to skip. */
static int diskfull_child(const char *dir) {
  int fails_before = check_fails;
  if (geteuid() != 0 || unshare(CLONE_NEWNS) != 0 ||
      mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
      mount("tmpfs", dir, "tmpfs", 0, "size=3m") != 0)
    return 77;
  char data[1024], filler[1024], err[STORE_ERRMAX];
  snprintf(data, sizeof data, "%s/data", dir);
  snprintf(filler, sizeof filler, "%s/filler", dir);
  store *st = open_store(data);
  buf p = make_profile(1000, 700, 9, 0);
  store_meta first;
  CHECK_RC(ingest(st, "full", META_CPU, "", 0, &p, &first), STORE_OK);

  /* Take all the space that is left, then ingest until refused. */
  int fd = open(filler, O_CREAT | O_WRONLY, 0644);
  static char zeros[65536];
  while (write(fd, zeros, sizeof zeros) > 0) {}
  close(fd);
  store_rc rc = STORE_OK;
  int acked = 1;
  for (int i = 0; i < 1000 && rc == STORE_OK; i++) {
    char labels[32];
    snprintf(labels, sizeof labels, "n=%d", i);  /* ingest is idempotent */
    rc = store_ingest(st, "full", META_CPU, labels, 0, p.p, p.n, NULL, err);
    acked += rc == STORE_OK;
  }
  CHECK_I64(rc, STORE_NOSPACE);
  CHECK(strstr(err, "no space left on device") != NULL);
  /* Reads still work. */
  store_meta m;
  CHECK_RC(store_stat(st, first.id, &m, NULL), STORE_OK);
  store_meta_clear(&m);

  /* Space comes back: the same store works again, nothing is lost. */
  unlink(filler);
  CHECK_RC(ingest(st, "full", META_CPU, "after=1", 0, &p, NULL), STORE_OK);
  CHECK_I64(count(st, query("full", META_CPU, NULL, 0, 2000, 0)), acked + 1);
  store_close(st);
  CHECK(integrity_ok(data));
  st = open_store(data);
  CHECK_I64(count(st, query("full", META_CPU, NULL, 0, 2000, 0)), acked + 1);
  store_close(st);
  store_meta_clear(&first);
  free(p.p);
  umount(dir);
  return check_fails - fails_before;
}

static void test_diskfull(void) {
  char *dir = temp_dir();
  pid_t pid = fork();
  if (pid == 0) _exit(diskfull_child(dir));
  int status;
  waitpid(pid, &status, 0);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  if (code == 77) {
    printf("disk full test skipped (needs root and tmpfs)\n");
  } else {
    check_result(code == 0, __FILE__, __LINE__, "disk full test: %d failures",
                 code);
  }
  rm_rf(dir);
  free(dir);
}

/* ---- measurements (PROFEFS_STORE_BENCH=1) ----------------------------------------------- */

static uint64_t get_varint(const unsigned char **p, const unsigned char *end) {
  uint64_t v = 0;
  for (int shift = 0; *p < end && shift < 64; shift += 7) {
    unsigned char c = *(*p)++;
    v |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) break;
  }
  return v;
}

/* The top-level fields of the protobuf in, but field 9 (time_nanos). */
static buf drop_time_nanos(const buf *in) {
  buf out = {0};
  const unsigned char *p = in->p, *end = in->p + in->n;
  while (p < end) {
    const unsigned char *start = p;
    uint64_t key = get_varint(&p, end);
    switch (key & 7) {
    case 0: get_varint(&p, end); break;
    case 1: p += 8; break;
    case 2: p += get_varint(&p, end); break;
    case 5: p += 4; break;
    default: p = end; break;
    }
    if (p > end) p = end;
    if (key >> 3 != 9) put(&out, start, (size_t)(p - start));
  }
  return out;
}

/* Fixture i % 15, inflated, with time_nanos set to sec. */
static buf retimed_cpu(int i, int64_t sec) {
  buf gz = cpu_fixture(i), raw = {0};
  z_stream z = {0};
  unsigned char out[65536];
  inflateInit2(&z, 16 + MAX_WBITS);
  z.next_in = gz.p;
  z.avail_in = (uInt)gz.n;
  int zrc;
  do {
    z.next_out = out;
    z.avail_out = sizeof out;
    zrc = inflate(&z, Z_NO_FLUSH);
    put(&raw, out, sizeof out - z.avail_out);
  } while (zrc == Z_OK);
  inflateEnd(&z);
  buf p = drop_time_nanos(&raw);
  free(raw.p);
  put_varint(&p, 9 << 3);
  put_varint(&p, (uint64_t)sec * 1000000000u);
  free(gz.p);
  return p;
}

typedef struct week_arg {
  store *st;
  int index, n;
  int64_t base;
} week_arg;

static void *week_worker(void *arg) {
  week_arg *a = arg;
  for (int j = a->index; j < a->n; j += 8) {
    buf p = retimed_cpu(j, a->base + (int64_t)j * 60);
    ingest(a->st, "week", META_CPU, "", 0, &p, NULL);
    free(p.p);
  }
  return NULL;
}

static void bench_merge(store *st, store_query q, const char *what) {
  void *out;
  size_t len, n = 0;
  double t0 = now_s();
  store_rc rc = store_merge(st, &q, &out, &len, &n, NULL);
  printf("bench: %s: %zu profiles in %.3f s (%s)\n", what, n, now_s() - t0,
         store_strerror(rc));
  if (rc == STORE_OK) free(out);
}

/* 7 days of one cpu profile a minute: merge without and with rollups. */
static void bench_week(void) {
  char *dir = temp_dir();
  store *st = open_store(dir);
  int64_t base = 1701000000, n = 7 * 24 * 60;
  pthread_t th[8];
  week_arg a[8];
  for (int i = 0; i < 8; i++) {
    a[i] = (week_arg){st, i, (int)n, base};
    pthread_create(&th[i], NULL, week_worker, &a[i]);
  }
  for (int i = 0; i < 8; i++) pthread_join(th[i], NULL);
  store_query q = query("week", META_CPU, NULL, base, base + n * 60, 0);
  bench_merge(st, q, "7-day merge, no rollups");
  size_t built = 0;
  double t0 = now_s();
  store_maintain(st, &built, NULL);
  printf("bench: building %zu rollups: %.3f s\n", built, now_s() - t0);
  for (int i = 0; i < 3; i++) bench_merge(st, q, "7-day merge, rollups");
  buf late = retimed_cpu(3, base + 3 * 86400 + 17);
  ingest(st, "week", META_CPU, "", 0, &late, NULL);
  free(late.p);
  bench_merge(st, q, "7-day merge after a late arrival");
  store_close(st);
  rm_rf(dir);
  free(dir);
}

static void bench(void) {
  char *dir = temp_dir();
  store *st = open_store(dir);
  buf p[8];
  for (int i = 0; i < 8; i++) p[i] = make_profile(1000 + i, 810, (unsigned)i, 0);
  printf("bench: profile size %zu bytes\n", p[0].n);
  for (int round = 0; round < 3; round++) {
    double dt = run_workers(st, 8, 1000, p, 8, 0);
    printf("bench: 8 threads x 1000 durable ingests of 8 KB: %.0f ingests/s\n",
           8000 / dt);
  }
  store_stats s;
  store_get_stats(st, &s);
  printf("bench: %lld ingests in %lld commits\n", (long long)s.ingests,
         (long long)s.commits);

  for (int i = 0; i < 1000; i++) {
    buf c = cpu_fixture(i);
    ingest(st, "bench", META_CPU, "", 0, &c, NULL);
    free(c.p);
  }
  store_query q = query("bench", META_CPU, NULL, 0, INT64_MAX / 2, 0);
  for (int round = 0; round < 3; round++) {
    void *out;
    size_t len, n = 0;
    double t0 = now_s();
    store_rc rc = store_merge(st, &q, &out, &len, &n, NULL);
    double dt = now_s() - t0;
    printf("bench: merge of %zu stored cpu profiles: %.3f s (%s, %zu bytes)\n",
           n, dt, store_strerror(rc), rc == STORE_OK ? len : 0);
    if (rc == STORE_OK) free(out);
  }
  store_close(st);
  for (int i = 0; i < 8; i++) free(p[i].p);
  rm_rf(dir);
  free(dir);
}

/* ---- merging on two cores ------------------------------------------------------------ */

/* in as one gzip member (zlib). */
static buf gzipped(const buf *in) {
  buf out = {0};
  z_stream z = {0};
  if (deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK)
    abort();
  out.cap = deflateBound(&z, (uLong)in->n);
  out.p = malloc(out.cap);
  z.next_in = in->p;
  z.avail_in = (uInt)in->n;
  z.next_out = out.p;
  z.avail_out = (uInt)out.cap;
  if (out.p == NULL || deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
  out.n = z.total_out;
  deflateEnd(&z);
  return out;
}

/* Many profiles of one service, second, labels and size that differ only
** in their bytes (here the gzip header's MTIME): each is a profile of its
** own, and a repeat of any one answers with its id.  Before the digest
** index each ingest read the blobs of all those before it. */
static void test_same_second(void) {
  char *dir = temp_dir();
  store *st = open_store(dir);
  buf raw = make_profile(4343, 5, 7, 0), gz = gzipped(&raw);
  enum { N = 300 };
  char ids[N][META_ID_LEN + 1];
  for (int i = 0; i < N; i++) {
    store_meta m = {0};
    gz.p[4] = (unsigned char)(i + 1);
    gz.p[5] = (unsigned char)((i + 1) >> 8);
    CHECK_RC(ingest(st, "same", META_CPU, "", 0, &gz, &m), STORE_OK);
    memcpy(ids[i], m.id, sizeof ids[i]);
    store_meta_clear(&m);
  }
  CHECK_I64(count(st, query("same", META_CPU, NULL, 0, 9999, 0)), N);
  for (int i = 0; i < N; i += 37) {
    store_meta m = {0};
    gz.p[4] = (unsigned char)(i + 1);
    gz.p[5] = (unsigned char)((i + 1) >> 8);
    CHECK_RC(ingest(st, "same", META_CPU, "", 0, &gz, &m), STORE_OK);
    CHECK_STR(m.id, ids[i]);
    store_meta_clear(&m);
  }
  CHECK_I64(count(st, query("same", META_CPU, NULL, 0, 9999, 0)), N);
  store_close(st);
  rm_rf(dir);
  free(dir);
  free(raw.p);
  free(gz.p);
}

/* Overwrites the stored bytes of profile id behind the store's back. */
static void set_blob(const char *dir, const char *id, const buf *data) {
  char path[1024];
  sqlite3 *db;
  sqlite3_stmt *s;
  snprintf(path, sizeof path, "%s/profefs.db", dir);
  CHECK(sqlite3_open(path, &db) == SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  CHECK(sqlite3_prepare_v2(db, "UPDATE blobs SET data = ?1 WHERE rowid ="
                           " (SELECT rowid FROM profiles WHERE id = ?2)",
                           -1, &s, NULL) == SQLITE_OK);
  sqlite3_bind_blob(s, 1, data->p, (int)data->n, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
  CHECK(sqlite3_step(s) == SQLITE_DONE);
  CHECK_I64(sqlite3_changes(db), 1);
  sqlite3_finalize(s);
  sqlite3_close(db);
}

/* Appends to the plain profile p a string and a comment naming it, so that
** the merged result lists p's comment where p was committed. */
static void add_comment(buf *p, const char *text) {
  const unsigned char *q = p->p, *end = p->p + p->n;
  uint64_t nstr = 0;
  while (q < end) { /* count the string table */
    uint64_t key = get_varint(&q, end);
    switch (key & 7) {
    case 0: get_varint(&q, end); break;
    case 1: q += 8; break;
    case 2: q += get_varint(&q, end); break;
    case 5: q += 4; break;
    default: q = end; break;
    }
    nstr += key == (6 << 3 | 2);
  }
  put_varint(p, 6 << 3 | 2);
  put_varint(p, strlen(text));
  put(p, text, strlen(text));
  put_varint(p, 13 << 3);
  put_varint(p, nstr);
}

/* A merge long enough for the second thread: the same bytes as pprof over
** the same rows one at a time (merge and merge_ids), and the error of the
** first bad row in row order, as one at a time would report it.  Each row
** carries a comment of its own, so the result shows the commit order; row
** BIG is stored plain and padded (an unknown field) past the size the
** merge keeps off the second thread. */
static void test_parallel_merge(void) {
  enum { N = 150, BAD = 70, ALIEN = 110, BIG = 40 };
  char *dir = temp_dir(), err[STORE_ERRMAX], want[STORE_ERRMAX];
  char perr[PPROF_ERRMAX] = "";
  store *st = open_store(dir);
  int64_t base = 3000000000; /* 2065: no hour of these ends, no rollups */
  for (int i = 0; i < N; i++) {
    char text[32];
    buf raw = retimed_cpu(i, base + i);
    snprintf(text, sizeof text, "row %d", i);
    add_comment(&raw, text);
    if (i == BIG) {
      static unsigned char pad[300 << 10];
      put_varint(&raw, 100 << 3 | 2);
      put_varint(&raw, sizeof pad);
      put(&raw, pad, sizeof pad);
    }
    buf gz = gzipped(&raw);
    CHECK_RC(ingest(st, "par", META_CPU, i % 3 ? "" : "k=v", 0,
                    i % 4 && i != BIG ? &gz : &raw, NULL), STORE_OK);
    free(raw.p);
    free(gz.p);
  }
  store_query q = query("par", META_CPU, NULL, base, base + N, 0);
  CHECK_MERGE_SAME(st, q);
  store_meta_list l = {0, NULL};
  CHECK_RC(store_find(st, &q, &l, err), STORE_OK);
  CHECK_I64(l.n, N);
  const char *ids[N];
  for (size_t i = 0; i < N; i++) ids[i] = i < l.n ? l.v[i].id : "";
  size_t n = 0;
  void *out = NULL;
  size_t len = 0;
  buf all = merged(st, q, &n), gz_ok;
  CHECK_RC(store_merge_ids(st, ids, N, &out, &len, err), STORE_OK);
  CHECK(same(all, (buf){out, len, len}));
  free(out);

  /* Row BAD truncated (a gzip error), row ALIEN of other sample types. */
  void *data = NULL;
  CHECK_RC(store_get(st, ids[BAD], NULL, &data, &len, err), STORE_OK);
  gz_ok = (buf){data, len, len};
  CHECK_RC(store_get(st, ids[ALIEN], NULL, &data, &len, err), STORE_OK);
  buf orig = {data, len, len};
  buf half = {gz_ok.p, gz_ok.n / 2, gz_ok.n / 2};
  buf alien = make_profile(base + ALIEN, 5, 9, 1);
  set_blob(dir, ids[BAD], &half);
  set_blob(dir, ids[ALIEN], &alien);
  pprof_merge *m = pprof_merge_new(0);
  CHECK_I64(pprof_merge_add(m, half.p, half.n, perr), PPROF_EGZIP);
  pprof_merge_free(m);
  snprintf(want, sizeof want, "stored profile %s: %s", ids[BAD], perr);
  out = NULL;
  CHECK_I64(store_merge(st, &q, &out, &len, &n, err), STORE_BADPROFILE);
  CHECK_STR(err, want);
  CHECK_I64(store_merge_ids(st, ids, N, &out, &len, err), STORE_BADPROFILE);
  CHECK_STR(err, want);
  CHECK(out == NULL);
  set_blob(dir, ids[BAD], &gz_ok);
  CHECK_I64(store_merge(st, &q, &out, &len, &n, err), STORE_MISMATCH);
  CHECK(strstr(err, "alt/bytes") != NULL);
  CHECK(out == NULL);
  CHECK_RC(store_merge_ids(st, ids, ALIEN, &out, &len, err), STORE_OK);
  free(out);

  /* Repaired: the same bytes as before. */
  set_blob(dir, ids[ALIEN], &orig);
  buf again = merged(st, q, &n);
  CHECK(same(all, again));
  CHECK_I64(n, N);

  free(orig.p);
  free(again.p);
  free(alien.p);
  free(gz_ok.p);
  free(all.p);
  store_meta_list_free(&l);
  store_close(st);
  rm_rf(dir);
  free(dir);
}

int main(void) {
  if (getenv("PROFEFS_STORE_BENCH")) {
    bench();
    bench_week();
    return 0;
  }
  test_open_errors();
  test_lock();
  test_begin_fails();
  char *dir = temp_dir();
  store *st = open_store(dir);
  test_ingest_get(st);
  test_idempotent(st);
  test_bad_input(st);
  test_find(st);
  test_merge(st);
  test_delete_services(st);
  test_stats(st);
  store_close(st);
  CHECK(integrity_ok(dir));
  rm_rf(dir);
  free(dir);

  test_toobig();
  test_rollups();
  test_rollup_plan();
  test_rollup_levels();
  test_rollup_race();
  test_upgrade();
  test_same_second();
  test_retention();
  test_retention_reader();
  test_merge_slices();
  test_concurrency_reopen();
  test_parallel_merge();
  test_crash();
  test_diskfull();
  return check_done("test_store");
}
