/*
** local_vfs.c — a thin SQLite VFS over the default one that gathers the
** writes SQLite makes to a WAL file and hands them to the system in one
** write.  The writer's connection and the checkpoint thread's use it.
**
** Why: SQLite writes each WAL frame with two pwrite calls (the 24-byte frame
** header, then the page), so a group commit of twenty pages costs forty
** system calls, which take about as long as the fdatasync that follows
** (measured here: 40 pwrites ~110 us, one write of the same bytes ~15 us).
** The frames of a commit are written at increasing, contiguous offsets and
** nothing reads them before the sync that ends the commit, so they can wait
** in memory until then.
**
** Rules that keep this invisible to SQLite:
**   - only files opened as a WAL (SQLITE_OPEN_WAL) gather; the others pass
**     straight through;
**   - a write that does not continue the gathered range, one that would
**     make it larger than GATHER_MAX, and every other method of the file
**     (read, sync, truncate, size, locks, shared memory, file controls,
**     close) first write out what is gathered, so that whatever reads the
**     file, this connection or any other, sees exactly what SQLite wrote;
**   - with synchronous=FULL every commit syncs its frames before SQLite
**     publishes them in the wal-index, so no other connection can see a
**     commit whose frames are still here;
**   - a failed write-out is the result of the call that caused it, and is
**     also kept and returned by the next xSync: SQLite ignores the result
**     of some calls (file-control hints, unlocks), and "acknowledged means
**     on disk" must not rest on it passing every error on; so a commit
**     whose frames did not all reach the file fails at its sync.  The
**     gathered bytes are dropped either way, as SQLite then abandons the
**     transaction.
**
** The VFS object belongs to one store: it is registered under a name made
** from its address and unregistered when the store closes.
*/
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "local.h"

/* Largest run gathered before it is written out (a bound on memory for
** big transactions such as retention's; a group commit is far smaller). */
#define GATHER_MAX ((size_t)1 << 20)
/* Largest write handed to the default VFS: its unix write masks the
** length to 17 bits (seekAndWriteFd), so a longer one would be cut short
** (and a multiple of 128 KiB reported as a full disk). */
#define WRITE_MAX ((size_t)124 << 10)

struct store_local_vfs {
  sqlite3_vfs base;   /* base.pAppData is the default VFS */
  char name[40];
  unsigned epoch;     /* bumped when a transaction is abandoned (atomic) */
};

/* One open file: the default VFS's file follows it in the same allocation. */
typedef struct gfile {
  sqlite3_file base;
  sqlite3_file *real;
  int gather;               /* a WAL: writes are gathered */
  unsigned char *buf;       /* gathered bytes, for file offsets [off, off+len) */
  size_t len, cap;
  sqlite3_int64 off;
  int failed;               /* a failed write-out not yet reported by xSync */
  unsigned failed_epoch;    /* the VFS's epoch when it failed */
  store_local_vfs *vfs;
} gfile;

#define ROUND8(n) (((n) + 7) & ~(size_t)7)

static sqlite3_vfs *real_vfs(sqlite3_vfs *v) { return v->pAppData; }

/* Writes out the gathered bytes; returns SQLITE_OK or the first error,
** which g->failed keeps for the next xSync. */
static int flush(gfile *g) {
  int rc = SQLITE_OK;
  for (size_t done = 0, n; done < g->len && rc == SQLITE_OK; done += n) {
    n = g->len - done < WRITE_MAX ? g->len - done : WRITE_MAX;
    rc = g->real->pMethods->xWrite(g->real, g->buf + done, (int)n,
                                   g->off + (sqlite3_int64)done);
  }
  g->len = 0;
  if (rc != SQLITE_OK && g->failed == SQLITE_OK) {
    g->failed = rc;
    g->failed_epoch = __atomic_load_n(&g->vfs->epoch, __ATOMIC_ACQUIRE);
  }
  return rc;
}

/* ---- the file methods: flush, then the default VFS's ------------------------ */

static int g_close(sqlite3_file *f) {
  gfile *g = (gfile *)f;
  int rc = flush(g), rc2 = g->real->pMethods->xClose(g->real);
  free(g->buf);
  g->buf = NULL;
  return rc != SQLITE_OK ? rc : rc2;
}

static int g_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off) {
  gfile *g = (gfile *)f;
  int rc = flush(g);
  return rc != SQLITE_OK ? rc : g->real->pMethods->xRead(g->real, p, n, off);
}

static int g_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off) {
  gfile *g = (gfile *)f;
  size_t len = (size_t)n;
  if (!g->gather) return g->real->pMethods->xWrite(g->real, p, n, off);
  if (g->len > 0 && (off != g->off + (sqlite3_int64)g->len ||
                     g->len + len > GATHER_MAX)) {
    int rc = flush(g);
    if (rc != SQLITE_OK) return rc;
  }
  if (len > WRITE_MAX) return g->real->pMethods->xWrite(g->real, p, n, off);
  if (g->len + len > g->cap) {
    size_t cap = g->cap ? g->cap : 64 * 1024;
    while (cap < g->len + len) cap *= 2;
    unsigned char *nb = realloc(g->buf, cap);
    if (nb == NULL) { /* no memory to gather: write through */
      int rc = flush(g);
      return rc != SQLITE_OK ? rc : g->real->pMethods->xWrite(g->real, p, n, off);
    }
    g->buf = nb;
    g->cap = cap;
  }
  if (g->len == 0) g->off = off;
  memcpy(g->buf + g->len, p, len);
  g->len += len;
  return SQLITE_OK;
}

static int g_truncate(sqlite3_file *f, sqlite3_int64 size) {
  gfile *g = (gfile *)f;
  int rc = flush(g);
  return rc != SQLITE_OK ? rc : g->real->pMethods->xTruncate(g->real, size);
}

static int g_sync(sqlite3_file *f, int flags) {
  gfile *g = (gfile *)f;
  int rc = flush(g);
  /* an earlier write-out failed: what SQLite wants synced is not all in
  ** the file, whatever it made of that error */
  if (rc == SQLITE_OK &&
      g->failed_epoch == __atomic_load_n(&g->vfs->epoch, __ATOMIC_ACQUIRE))
    rc = g->failed;
  g->failed = SQLITE_OK;
  return rc != SQLITE_OK ? rc : g->real->pMethods->xSync(g->real, flags);
}

static int g_file_size(sqlite3_file *f, sqlite3_int64 *size) {
  gfile *g = (gfile *)f;
  int rc = flush(g);
  return rc != SQLITE_OK ? rc : g->real->pMethods->xFileSize(g->real, size);
}

static int g_lock(sqlite3_file *f, int level) {
  gfile *g = (gfile *)f;
  int rc = flush(g);
  return rc != SQLITE_OK ? rc : g->real->pMethods->xLock(g->real, level);
}

static int g_unlock(sqlite3_file *f, int level) {
  gfile *g = (gfile *)f;
  int rc = flush(g);
  return rc != SQLITE_OK ? rc : g->real->pMethods->xUnlock(g->real, level);
}

static int g_check_reserved(sqlite3_file *f, int *out) {
  gfile *g = (gfile *)f;
  int rc = flush(g);
  return rc != SQLITE_OK ? rc
                         : g->real->pMethods->xCheckReservedLock(g->real, out);
}

static int g_file_control(sqlite3_file *f, int op, void *arg) {
  gfile *g = (gfile *)f;
  int rc = flush(g);
  return rc != SQLITE_OK ? rc
                         : g->real->pMethods->xFileControl(g->real, op, arg);
}

static int g_sector_size(sqlite3_file *f) {
  gfile *g = (gfile *)f;
  return g->real->pMethods->xSectorSize(g->real);
}

static int g_device_characteristics(sqlite3_file *f) {
  gfile *g = (gfile *)f;
  return g->real->pMethods->xDeviceCharacteristics(g->real);
}

static int g_shm_map(sqlite3_file *f, int pg, int pgsz, int extend,
                     void volatile **pp) {
  gfile *g = (gfile *)f;
  int rc = flush(g);
  return rc != SQLITE_OK
             ? rc
             : g->real->pMethods->xShmMap(g->real, pg, pgsz, extend, pp);
}

static int g_shm_lock(sqlite3_file *f, int offset, int n, int flags) {
  gfile *g = (gfile *)f;
  int rc = flush(g);
  return rc != SQLITE_OK
             ? rc
             : g->real->pMethods->xShmLock(g->real, offset, n, flags);
}

static void g_shm_barrier(sqlite3_file *f) {
  gfile *g = (gfile *)f;
  g->real->pMethods->xShmBarrier(g->real);
}

static int g_shm_unmap(sqlite3_file *f, int delete_flag) {
  gfile *g = (gfile *)f;
  int rc = flush(g);
  return rc != SQLITE_OK ? rc
                         : g->real->pMethods->xShmUnmap(g->real, delete_flag);
}

static int g_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp) {
  gfile *g = (gfile *)f;
  int rc = flush(g);
  if (rc != SQLITE_OK) return rc;
  if (g->real->pMethods->iVersion < 3) {
    *pp = NULL; /* "not mapped": SQLite reads instead */
    return SQLITE_OK;
  }
  return g->real->pMethods->xFetch(g->real, off, n, pp);
}

static int g_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p) {
  gfile *g = (gfile *)f;
  if (g->real->pMethods->iVersion < 3) return SQLITE_OK;
  return g->real->pMethods->xUnfetch(g->real, off, p);
}

static const sqlite3_io_methods gather_methods = {
  .iVersion = 3,
  .xClose = g_close,
  .xRead = g_read,
  .xWrite = g_write,
  .xTruncate = g_truncate,
  .xSync = g_sync,
  .xFileSize = g_file_size,
  .xLock = g_lock,
  .xUnlock = g_unlock,
  .xCheckReservedLock = g_check_reserved,
  .xFileControl = g_file_control,
  .xSectorSize = g_sector_size,
  .xDeviceCharacteristics = g_device_characteristics,
  .xShmMap = g_shm_map,
  .xShmLock = g_shm_lock,
  .xShmBarrier = g_shm_barrier,
  .xShmUnmap = g_shm_unmap,
  .xFetch = g_fetch,
  .xUnfetch = g_unfetch,
};

/* ---- the VFS methods: xOpen wraps, the rest is the default VFS's ------------ */

static int v_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *f,
                  int flags, int *out_flags) {
  gfile *g = (gfile *)f;
  sqlite3_vfs *r = real_vfs(v);
  memset(g, 0, sizeof *g);
  g->real = (sqlite3_file *)((char *)g + ROUND8(sizeof *g));
  g->gather = (flags & SQLITE_OPEN_WAL) != 0;
  g->vfs = (store_local_vfs *)v;
  int rc = r->xOpen(r, name, g->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    /* SQLite closes a file only when its pMethods is set: ours stays NULL,
    ** so close the default VFS's here if it left one half open. */
    if (g->real->pMethods != NULL) g->real->pMethods->xClose(g->real);
    return rc;
  }
  g->base.pMethods = &gather_methods;
  return SQLITE_OK;
}

static int v_delete(sqlite3_vfs *v, const char *name, int sync_dir) {
  return real_vfs(v)->xDelete(real_vfs(v), name, sync_dir);
}

static int v_access(sqlite3_vfs *v, const char *name, int flags, int *out) {
  return real_vfs(v)->xAccess(real_vfs(v), name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *v, const char *name, int n,
                           char *out) {
  return real_vfs(v)->xFullPathname(real_vfs(v), name, n, out);
}

static void *v_dlopen(sqlite3_vfs *v, const char *name) {
  return real_vfs(v)->xDlOpen(real_vfs(v), name);
}

static void v_dlerror(sqlite3_vfs *v, int n, char *msg) {
  real_vfs(v)->xDlError(real_vfs(v), n, msg);
}

static void (*v_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void) {
  return real_vfs(v)->xDlSym(real_vfs(v), h, sym);
}

static void v_dlclose(sqlite3_vfs *v, void *h) {
  real_vfs(v)->xDlClose(real_vfs(v), h);
}

static int v_randomness(sqlite3_vfs *v, int n, char *out) {
  return real_vfs(v)->xRandomness(real_vfs(v), n, out);
}

static int v_sleep(sqlite3_vfs *v, int us) {
  return real_vfs(v)->xSleep(real_vfs(v), us);
}

static int v_current_time(sqlite3_vfs *v, double *out) {
  return real_vfs(v)->xCurrentTime(real_vfs(v), out);
}

static int v_get_last_error(sqlite3_vfs *v, int n, char *msg) {
  return real_vfs(v)->xGetLastError(real_vfs(v), n, msg);
}

static int v_current_time_int64(sqlite3_vfs *v, sqlite3_int64 *out) {
  return real_vfs(v)->xCurrentTimeInt64(real_vfs(v), out);
}

static int v_set_system_call(sqlite3_vfs *v, const char *name,
                             sqlite3_syscall_ptr p) {
  return real_vfs(v)->xSetSystemCall(real_vfs(v), name, p);
}

static sqlite3_syscall_ptr v_get_system_call(sqlite3_vfs *v,
                                             const char *name) {
  return real_vfs(v)->xGetSystemCall(real_vfs(v), name);
}

static const char *v_next_system_call(sqlite3_vfs *v, const char *name) {
  return real_vfs(v)->xNextSystemCall(real_vfs(v), name);
}

store_rc store_local_vfs_new(store_local_vfs **out, char *err) {
  assert(out != NULL);
  sqlite3_vfs *r = sqlite3_vfs_find(NULL);
  if (r == NULL || r->iVersion < 3)
    return store_seterr(err, STORE_IO, "SQLite has no usable default VFS");
  store_local_vfs *v = calloc(1, sizeof *v);
  if (v == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  snprintf(v->name, sizeof v->name, "profefs-gather-%p", (void *)v);
  v->base = (sqlite3_vfs){
    .iVersion = 3,
    .szOsFile = (int)(ROUND8(sizeof(gfile)) + (size_t)r->szOsFile),
    .mxPathname = r->mxPathname,
    .zName = v->name,
    .pAppData = r,
    .xOpen = v_open,
    .xDelete = v_delete,
    .xAccess = v_access,
    .xFullPathname = v_full_pathname,
    .xDlOpen = v_dlopen,
    .xDlError = v_dlerror,
    .xDlSym = v_dlsym,
    .xDlClose = v_dlclose,
    .xRandomness = v_randomness,
    .xSleep = v_sleep,
    .xCurrentTime = v_current_time,
    .xGetLastError = v_get_last_error,
    .xCurrentTimeInt64 = v_current_time_int64,
    .xSetSystemCall = v_set_system_call,
    .xGetSystemCall = v_get_system_call,
    .xNextSystemCall = v_next_system_call,
  };
  int rc = sqlite3_vfs_register(&v->base, 0);
  if (rc != SQLITE_OK) {
    free(v);
    return store_seterr(err, STORE_IO, "cannot register a SQLite VFS: %s",
                        sqlite3_errstr(rc));
  }
  *out = v;
  return STORE_OK;
}

const char *store_local_vfs_name(const store_local_vfs *v) {
  assert(v != NULL);
  return v->name;
}

void store_local_vfs_free(store_local_vfs *v) {
  if (v == NULL) return;
  sqlite3_vfs_unregister(&v->base);
  free(v);
}

void store_local_vfs_abandon(store_local_vfs *v) {
  if (v != NULL) __atomic_add_fetch(&v->epoch, 1, __ATOMIC_RELEASE);
}
