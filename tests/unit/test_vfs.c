/*
** test_vfs.c — unit test of store/sqlite/local_vfs.c, the writer's VFS that
** gathers WAL writes: a write-out that fails in a call whose result SQLite
** may ignore (a file-control hint) must still fail the next xSync, once
** (issue 13).  Writes are made to fail by RLIMIT_FSIZE, in a child process
** so that the limit stays there.  Also store_local_digest (profiles.c),
** the idempotency digest stores hold in profiles.digest: it must keep
** the values earlier versions wrote with zlib's crc32 and adler32.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "local.h"
#include "check.h"

#define LIMIT (64 << 10)

static void child(const char *dir) {
  char err[STORE_ERRMAX], db[512], wal[520];
  store_local_vfs *lv = NULL;
  sqlite3_vfs *v;
  sqlite3_file *f;
  static unsigned char page[96 << 10];
  struct rlimit rl = {LIMIT, LIMIT};
  int out = 0;
  FILE *fp;

  signal(SIGXFSZ, SIG_IGN);
  CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
  snprintf(db, sizeof db, "%s/x.db", dir);
  fp = fopen(db, "w"); /* the unix VFS takes a WAL's mode from its database */
  if (fp) fclose(fp);
  memset(wal, 0, sizeof wal); /* a file name ends with extra NULs */
  snprintf(wal, sizeof wal - 8, "%s/x.db-wal", dir);
  CHECK_I64(store_local_vfs_new(&lv, err), STORE_OK);
  v = sqlite3_vfs_find(store_local_vfs_name(lv));
  CHECK(v != NULL);
  f = calloc(1, (size_t)v->szOsFile);
  CHECK_I64(v->xOpen(v, wal, f,
                     SQLITE_OPEN_WAL | SQLITE_OPEN_CREATE | SQLITE_OPEN_READWRITE,
                     &out), SQLITE_OK);
  memset(page, 'w', sizeof page);
  /* within the limit: gathered, written and synced */
  CHECK_I64(f->pMethods->xWrite(f, page, 32 << 10, 0), SQLITE_OK);
  CHECK_I64(f->pMethods->xSync(f, SQLITE_SYNC_NORMAL), SQLITE_OK);
  /* past it: the write-out fails inside a file control, whose result
  ** SQLite ignores when it is a hint */
  CHECK_I64(f->pMethods->xWrite(f, page, 48 << 10, 32 << 10), SQLITE_OK);
  CHECK(f->pMethods->xFileControl(f, SQLITE_FCNTL_HAS_MOVED, &out) != SQLITE_OK);
  CHECK(f->pMethods->xSync(f, SQLITE_SYNC_NORMAL) != SQLITE_OK);
  CHECK_I64(f->pMethods->xSync(f, SQLITE_SYNC_NORMAL), SQLITE_OK); /* once */
  f->pMethods->xClose(f);
  free(f);
  store_local_vfs_free(lv);
  exit(check_done("test_vfs (child)"));
}

/* The digest as the versions before libdeflate computed it. */
static int64_t zlib_digest(const unsigned char *p, size_t n) {
  uLong crc = crc32(crc32(0L, Z_NULL, 0), p, (uInt)n);
  uLong adler = adler32(adler32(0L, Z_NULL, 0), p, (uInt)n);
  return (int64_t)(((uint64_t)crc << 32) | (uint64_t)(adler & 0xffffffffu));
}

static void digest_kept(void) {
  static unsigned char b[100000];
  size_t sizes[] = {0, 1, 7, 64, 4095, 7843, sizeof b};
  for (size_t i = 0; i < sizeof b; i++) b[i] = (unsigned char)(rand() >> 7);
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
    CHECK_I64(store_local_digest(b, sizes[i]), zlib_digest(b, sizes[i]));
  memset(b, 0xff, sizeof b);  /* adler32's sums at their largest */
  CHECK_I64(store_local_digest(b, sizeof b), zlib_digest(b, sizeof b));
}

int main(void) {
  char dir[] = "/tmp/profefs-vfs.XXXXXX", cmd[128];
  int status = 0;
  pid_t pid;

  digest_kept();
  CHECK(mkdtemp(dir) != NULL);
  if ((pid = fork()) == 0) child(dir);
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  CHECK(system(cmd) == 0);
  return check_done("test_vfs");
}
