/*
** powercut.c — a FUSE passthrough that can lose what a power cut loses,
** for tests/integration/powercut.sh (issue 13).
**
**     powercut UNDER GRAVE MOUNTPOINT [FUSE options]
**
** Serves directory UNDER at MOUNTPOINT.  Everything is passed through to
** UNDER at once (so it plays the page cache), but what is not yet durable
** is remembered so that it can be undone:
**   - data: before the first change to a page of a file since its last
**     fsync/fdatasync, the page's old bytes (and the file's old size) are
**     kept in memory;
**   - directory entries: a create, mkdir, unlink, rmdir or rename stays
**     undoable until the directory holding the new name is fsync'ed (strict
**     POSIX: fsync of a file does not make its name durable; a directory
**     whose name is undone is lost with all it holds).  Removed
**     files and directories wait in GRAVE (same file system as UNDER),
**     where an undo takes them back from.
** Creating the file /.powercut in the mount is the cut: every change that
** was not durable is undone in UNDER (pages written back, sizes restored,
** entries undone newest first), and from then on every operation fails
** with EIO, as on a machine that lost power.  Afterwards the test unmounts
** and restarts its program on UNDER itself, which then holds exactly what
** had reached the disk.  Without a cut, unmounting keeps everything (the
** removed files in GRAVE are deleted).
**
** Operations run one at a time (the single-threaded FUSE loop), so a cut
** falls between two operations, never inside one.
*/
#define FUSE_USE_VERSION 31

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define PAGE 4096
#define CUT_NAME "/.powercut"

/* The old bytes of one page of a file, from before its first change. */
typedef struct saved_page {
  off_t pageno;
  size_t len; /* < PAGE for the last page of the durable size */
  unsigned char *old;
} saved_page;

/* A file changed since its last fsync. */
typedef struct undo_file {
  struct undo_file *next;
  dev_t dev;
  ino_t ino;
  int fd;       /* our own descriptor, read-write, to write back */
  off_t dsize;  /* durable size */
  saved_page *pages;
  size_t npages, cap;
} undo_file;

enum { OP_CREATE, OP_MKDIR, OP_UNLINK, OP_RMDIR, OP_RENAME };

/* A directory change not yet made durable by an fsync of its directory. */
typedef struct dir_op {
  struct dir_op *next, *prev;
  int kind;
  char *path;  /* created / removed name; rename: the old name */
  char *path2; /* rename: the new name */
  char *grave; /* removed entry (or the one a rename replaced) in GRAVE */
} dir_op;

typedef struct pc {
  int under;           /* directory descriptor of UNDER */
  int grave;           /* directory descriptor of GRAVE */
  unsigned long ngrave;
  int cut;             /* 1 once the power is gone */
  undo_file *files;
  dir_op *ops, *last;  /* oldest first */
  unsigned long cuts_undone_pages, cuts_undone_ops;
} pc;

static pc *ctx(void) { return fuse_get_context()->private_data; }

/* The path relative to UNDER ("." for the root). */
static const char *rel(const char *path) {
  return path[1] == '\0' ? "." : path + 1;
}

/* The parent directory of path ("/" for a top-level name), malloc'd. */
static char *parent_of(const char *path) {
  const char *slash = strrchr(path, '/');
  size_t n = slash == path ? 1 : (size_t)(slash - path);
  char *p = malloc(n + 1);
  if (p == NULL) abort();
  memcpy(p, path, n);
  p[n] = '\0';
  return p;
}

static char *xstrdup(const char *s) {
  char *d = s ? strdup(s) : NULL;
  if (s != NULL && d == NULL) abort();
  return d;
}

/* ---- data undo -------------------------------------------------------- */

static undo_file *find_file(pc *p, const struct stat *st) {
  undo_file *u;
  for (u = p->files; u != NULL; u = u->next)
    if (u->dev == st->st_dev && u->ino == st->st_ino) return u;
  return NULL;
}

/* The undo record of the file open as fd, created (durable size = its
** size now) when it has none.  NULL with errno on failure. */
static undo_file *track(pc *p, int fd) {
  struct stat st;
  char proc[64];
  undo_file *u;

  if (fstat(fd, &st) != 0) return NULL;
  if ((u = find_file(p, &st)) != NULL) return u;
  if ((u = calloc(1, sizeof *u)) == NULL) abort();
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  if ((u->fd = open(proc, O_RDWR | O_CLOEXEC)) < 0) {
    free(u);
    return NULL;
  }
  u->dev = st.st_dev;
  u->ino = st.st_ino;
  u->dsize = st.st_size;
  u->next = p->files;
  p->files = u;
  return u;
}

static int page_saved(const undo_file *u, off_t pageno) {
  for (size_t i = 0; i < u->npages; i++)
    if (u->pages[i].pageno == pageno) return 1;
  return 0;
}

/* Keeps the durable bytes of the pages [off, off + len) touches. */
static int save_range(undo_file *u, off_t off, off_t len) {
  off_t first = off / PAGE, last = (off + len - 1) / PAGE, pg;

  if (len <= 0) return 0;
  for (pg = first; pg <= last && pg * PAGE < u->dsize; pg++) {
    saved_page s;
    ssize_t got;
    if (page_saved(u, pg)) continue;
    s.pageno = pg;
    s.len = (size_t)(u->dsize - pg * PAGE < PAGE ? u->dsize - pg * PAGE : PAGE);
    if ((s.old = malloc(s.len)) == NULL) abort();
    got = pread(u->fd, s.old, s.len, pg * PAGE);
    if (got < 0) {
      free(s.old);
      return -errno;
    }
    if ((size_t)got < s.len) memset(s.old + got, 0, s.len - (size_t)got);
    if (u->npages == u->cap) {
      u->cap = u->cap ? 2 * u->cap : 64;
      if ((u->pages = realloc(u->pages, u->cap * sizeof *u->pages)) == NULL)
        abort();
    }
    u->pages[u->npages++] = s;
  }
  return 0;
}

static void file_free(undo_file *u) {
  for (size_t i = 0; i < u->npages; i++) free(u->pages[i].old);
  free(u->pages);
  close(u->fd);
  free(u);
}

/* The file open as fd is durable now: forget its undo record. */
static void durable_file(pc *p, int fd) {
  struct stat st;
  undo_file **up, *u;

  if (fstat(fd, &st) != 0) return;
  for (up = &p->files; (u = *up) != NULL; up = &u->next)
    if (u->dev == st.st_dev && u->ino == st.st_ino) {
      *up = u->next;
      file_free(u);
      return;
    }
}

/* ---- directory undo ------------------------------------------------------ */

static void op_add(pc *p, int kind, const char *path, const char *path2,
                   const char *grave) {
  dir_op *o = calloc(1, sizeof *o);
  if (o == NULL) abort();
  o->kind = kind;
  o->path = xstrdup(path);
  o->path2 = xstrdup(path2);
  o->grave = xstrdup(grave);
  o->prev = p->last;
  if (p->last) p->last->next = o; else p->ops = o;
  p->last = o;
}

static void op_unlink(pc *p, dir_op *o) {
  if (o->prev) o->prev->next = o->next; else p->ops = o->next;
  if (o->next) o->next->prev = o->prev; else p->last = o->prev;
  free(o->path);
  free(o->path2);
  free(o->grave);
  free(o);
}

/* Deletes what waits in GRAVE under name (a file or an empty directory). */
static void grave_delete(pc *p, const char *name) {
  if (name != NULL && unlinkat(p->grave, name, 0) != 0)
    unlinkat(p->grave, name, AT_REMOVEDIR);
}

/* Moves the entry path of UNDER into GRAVE; its new name in *name. */
static int to_grave(pc *p, const char *path, char name[32]) {
  snprintf(name, 32, "g%lu", ++p->ngrave);
  return renameat(p->under, rel(path), p->grave, name) == 0 ? 0 : -errno;
}

/* Directory dir was fsync'ed: the changes to names in it are durable. */
static void durable_dir(pc *p, const char *dir) {
  dir_op *o, *next;

  for (o = p->ops; o != NULL; o = next) {
    char *par = parent_of(o->kind == OP_RENAME ? o->path2 : o->path);
    next = o->next;
    if (strcmp(par, dir) == 0) {
      grave_delete(p, o->grave);
      op_unlink(p, o);
    }
    free(par);
  }
}

/* ---- the cut ----------------------------------------------------------- */

static void power_cut(pc *p) {
  undo_file *u;
  dir_op *o;

  for (u = p->files; u != NULL; u = p->files) {
    for (size_t i = 0; i < u->npages; i++) {
      if (pwrite(u->fd, u->pages[i].old, u->pages[i].len,
                 u->pages[i].pageno * PAGE) != (ssize_t)u->pages[i].len)
        perror("powercut: write back");
      p->cuts_undone_pages++;
    }
    if (ftruncate(u->fd, u->dsize) != 0) perror("powercut: truncate back");
    p->files = u->next;
    file_free(u);
  }
  /* newest first, so that each undo finds the names as they were */
  while ((o = p->last) != NULL) {
    switch (o->kind) {
    case OP_CREATE: unlinkat(p->under, rel(o->path), 0); break;
    case OP_MKDIR:
      /* a directory whose own name was never synced is lost with what is
      ** in it, durable or not (fsck would find it orphaned) */
      if (unlinkat(p->under, rel(o->path), AT_REMOVEDIR) != 0) {
        char name[32];
        to_grave(p, o->path, name);
      }
      break;
    case OP_UNLINK:
    case OP_RMDIR: renameat(p->grave, o->grave, p->under, rel(o->path)); break;
    case OP_RENAME:
      renameat(p->under, rel(o->path2), p->under, rel(o->path));
      if (o->grave) renameat(p->grave, o->grave, p->under, rel(o->path2));
      break;
    }
    p->cuts_undone_ops++;
    op_unlink(p, o);
  }
  syncfs(p->under);
  p->cut = 1;
  fprintf(stderr, "powercut: cut: %lu pages and %lu directory changes undone\n",
          p->cuts_undone_pages, p->cuts_undone_ops);
}

#define DEAD_CHECK(p) do { if ((p)->cut) return -EIO; } while (0)

/* ---- operations ------------------------------------------------------- */

static int pc_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  pc *p = ctx();
  DEAD_CHECK(p);
  if (fi != NULL) return fstat((int)fi->fh, st) == 0 ? 0 : -errno;
  return fstatat(p->under, rel(path), st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static int pc_access(const char *path, int mask) {
  pc *p = ctx();
  DEAD_CHECK(p);
  return faccessat(p->under, rel(path), mask, 0) == 0 ? 0 : -errno;
}

static int pc_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
                      off_t off, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags) {
  pc *p = ctx();
  int fd;
  DIR *d;
  struct dirent *e;

  (void)off; (void)fi; (void)flags;
  DEAD_CHECK(p);
  if ((fd = openat(p->under, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    return -errno;
  if ((d = fdopendir(fd)) == NULL) {
    close(fd);
    return -errno;
  }
  while ((e = readdir(d)) != NULL)
    if (fill(buf, e->d_name, NULL, 0, 0)) break;
  closedir(d);
  return 0;
}

static int pc_mkdir(const char *path, mode_t mode) {
  pc *p = ctx();
  DEAD_CHECK(p);
  if (mkdirat(p->under, rel(path), mode) != 0) return -errno;
  op_add(p, OP_MKDIR, path, NULL, NULL);
  return 0;
}

static int pc_remove(const char *path, int kind) {
  pc *p = ctx();
  char name[32];
  struct stat st;
  int rc;

  DEAD_CHECK(p);
  if (fstatat(p->under, rel(path), &st, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
  if (kind == OP_RMDIR) {
    /* rmdir's checks first: it must be an empty directory */
    int fd = openat(p->under, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *e;
    int n = 0;
    if (d == NULL) {
      if (fd >= 0) close(fd);
      return -ENOTDIR;
    }
    while ((e = readdir(d)) != NULL)
      if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    if (n > 0) return -ENOTEMPTY;
  } else if (S_ISDIR(st.st_mode)) {
    return -EISDIR;
  }
  if ((rc = to_grave(p, path, name)) != 0) return rc;
  op_add(p, kind, path, NULL, name);
  return 0;
}

static int pc_unlink(const char *path) { return pc_remove(path, OP_UNLINK); }
static int pc_rmdir(const char *path) { return pc_remove(path, OP_RMDIR); }

static int pc_rename(const char *from, const char *to, unsigned int flags) {
  pc *p = ctx();
  char name[32];
  struct stat st;
  int replaced;

  DEAD_CHECK(p);
  if (flags != 0) return -EINVAL;
  if (fstatat(p->under, rel(from), &st, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
  replaced = fstatat(p->under, rel(to), &st, AT_SYMLINK_NOFOLLOW) == 0;
  /* the replaced entry goes to GRAVE first, so that an undo can bring it
  ** back; the rename then finds no target */
  if (replaced && to_grave(p, to, name) != 0) return -errno;
  if (renameat(p->under, rel(from), p->under, rel(to)) != 0) {
    int e = -errno;
    if (replaced) renameat(p->grave, name, p->under, rel(to));
    return e;
  }
  op_add(p, OP_RENAME, from, to, replaced ? name : NULL);
  return 0;
}

static int pc_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
  pc *p = ctx();
  undo_file *u;
  int rc = 0, fd;

  DEAD_CHECK(p);
  fd = fi ? (int)fi->fh : openat(p->under, rel(path), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  if ((u = track(p, fd)) == NULL) rc = -errno;
  else if (size < u->dsize && (rc = save_range(u, size, u->dsize - size)) != 0) {
  } else if (ftruncate(fd, size) != 0) rc = -errno;
  if (fi == NULL) close(fd);
  return rc;
}

static int pc_open_common(const char *path, int flags, mode_t mode, int create,
                          struct fuse_file_info *fi) {
  pc *p = ctx();
  int existed = 0, fd;
  struct stat st;

  if (create && strcmp(path, CUT_NAME) == 0) {
    if (!p->cut) power_cut(p);
    return -EIO;
  }
  DEAD_CHECK(p);
  if (create) existed = fstatat(p->under, rel(path), &st, 0) == 0;
  /* O_TRUNC is a change of the data like any other: done by hand below */
  fd = openat(p->under, rel(path), (flags & ~O_TRUNC) | O_CLOEXEC, mode);
  if (fd < 0) return -errno;
  if (create && !existed) op_add(p, OP_CREATE, path, NULL, NULL);
  if (flags & O_TRUNC) {
    undo_file *u = track(p, fd);
    if (u == NULL || save_range(u, 0, u->dsize) != 0 || ftruncate(fd, 0) != 0) {
      int e = -errno;
      close(fd);
      return e ? e : -EIO;
    }
  }
  fi->fh = (uint64_t)fd;
  fi->keep_cache = 0;
  return 0;
}

static int pc_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
  return pc_open_common(path, fi->flags | O_CREAT, mode, 1, fi);
}

static int pc_open(const char *path, struct fuse_file_info *fi) {
  return pc_open_common(path, fi->flags, 0, 0, fi);
}

static int pc_read(const char *path, char *buf, size_t size, off_t off,
                   struct fuse_file_info *fi) {
  ssize_t n;
  (void)path;
  DEAD_CHECK(ctx());
  n = pread((int)fi->fh, buf, size, off);
  return n < 0 ? -errno : (int)n;
}

static int pc_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi) {
  pc *p = ctx();
  undo_file *u;
  ssize_t n;
  int rc;

  (void)path;
  DEAD_CHECK(p);
  if ((u = track(p, (int)fi->fh)) == NULL) return -errno;
  if ((rc = save_range(u, off, (off_t)size)) != 0) return rc;
  n = pwrite((int)fi->fh, buf, size, off);
  return n < 0 ? -errno : (int)n;
}

static int pc_fallocate(const char *path, int mode, off_t off, off_t len,
                        struct fuse_file_info *fi) {
  pc *p = ctx();
  undo_file *u;
  int rc;

  (void)path;
  DEAD_CHECK(p);
  if ((u = track(p, (int)fi->fh)) == NULL) return -errno;
  if ((rc = save_range(u, off, len)) != 0) return rc;
  return fallocate((int)fi->fh, mode, off, len) == 0 ? 0 : -errno;
}

static int pc_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
  pc *p = ctx();
  (void)path;
  DEAD_CHECK(p);
  if ((datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh)) != 0) return -errno;
  durable_file(p, (int)fi->fh);
  return 0;
}

static int pc_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi) {
  pc *p = ctx();
  (void)datasync; (void)fi;
  DEAD_CHECK(p);
  durable_dir(p, path);
  return 0;
}

static int pc_opendir(const char *path, struct fuse_file_info *fi) {
  pc *p = ctx();
  struct stat st;
  (void)fi;
  DEAD_CHECK(p);
  if (fstatat(p->under, rel(path), &st, 0) != 0) return -errno;
  return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int pc_release(const char *path, struct fuse_file_info *fi) {
  (void)path;
  close((int)fi->fh);
  return 0;
}

static int pc_flush(const char *path, struct fuse_file_info *fi) {
  (void)path; (void)fi;
  DEAD_CHECK(ctx());
  return 0;
}

static int pc_statfs(const char *path, struct statvfs *sv) {
  (void)path;
  return fstatvfs(ctx()->under, sv) == 0 ? 0 : -errno;
}

static int pc_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
  pc *p = ctx();
  DEAD_CHECK(p);
  if (fi != NULL) return fchmod((int)fi->fh, mode) == 0 ? 0 : -errno;
  return fchmodat(p->under, rel(path), mode, 0) == 0 ? 0 : -errno;
}

static int pc_chown(const char *path, uid_t uid, gid_t gid,
                    struct fuse_file_info *fi) {
  pc *p = ctx();
  DEAD_CHECK(p);
  if (fi != NULL) return fchown((int)fi->fh, uid, gid) == 0 ? 0 : -errno;
  return fchownat(p->under, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static int pc_utimens(const char *path, const struct timespec tv[2],
                      struct fuse_file_info *fi) {
  pc *p = ctx();
  DEAD_CHECK(p);
  if (fi != NULL) return futimens((int)fi->fh, tv) == 0 ? 0 : -errno;
  return utimensat(p->under, rel(path), tv, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static void *pc_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  (void)conn;
  /* the kernel must ask us about every name and attribute: a cut changes
  ** them behind its back */
  cfg->entry_timeout = 0;
  cfg->attr_timeout = 0;
  cfg->negative_timeout = 0;
  cfg->use_ino = 1;
  return ctx();
}

static void pc_destroy(void *data) {
  pc *p = data;
  /* an unmount without a cut keeps everything */
  while (p->ops != NULL) {
    grave_delete(p, p->ops->grave);
    op_unlink(p, p->ops);
  }
  while (p->files != NULL) {
    undo_file *u = p->files;
    p->files = u->next;
    file_free(u);
  }
}

static const struct fuse_operations ops = {
  .getattr = pc_getattr,
  .access = pc_access,
  .readdir = pc_readdir,
  .opendir = pc_opendir,
  .mkdir = pc_mkdir,
  .unlink = pc_unlink,
  .rmdir = pc_rmdir,
  .rename = pc_rename,
  .truncate = pc_truncate,
  .create = pc_create,
  .open = pc_open,
  .read = pc_read,
  .write = pc_write,
  .fallocate = pc_fallocate,
  .fsync = pc_fsync,
  .fsyncdir = pc_fsyncdir,
  .release = pc_release,
  .flush = pc_flush,
  .statfs = pc_statfs,
  .chmod = pc_chmod,
  .chown = pc_chown,
  .utimens = pc_utimens,
  .init = pc_init,
  .destroy = pc_destroy,
};

int main(int argc, char **argv) {
  pc p = {0};
  char **fargs;
  int i, n = 0, rc;

  if (argc < 4) {
    fprintf(stderr, "usage: powercut UNDER GRAVE MOUNTPOINT [FUSE options]\n");
    return 2;
  }
  p.under = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  p.grave = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (p.under < 0 || p.grave < 0) {
    perror("powercut: UNDER and GRAVE must be directories");
    return 1;
  }
  /* argv for fuse_main: the mount point, in the foreground, one thread */
  if ((fargs = calloc((size_t)argc + 4, sizeof *fargs)) == NULL) return 1;
  fargs[n++] = argv[0];
  fargs[n++] = argv[3];
  fargs[n++] = "-f";
  fargs[n++] = "-s";
  for (i = 4; i < argc; i++) fargs[n++] = argv[i];
  rc = fuse_main(n, fargs, &ops, &p);
  free(fargs);
  close(p.under);
  close(p.grave);
  return rc;
}
