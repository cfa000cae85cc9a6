/*
** ops.c — the FUSE operations of the profefs view: short handlers that
** classify the path (path.c), ask node.c / the store, and return -errno.
**
** Open files carry an fs_handle in fi->fh:
**   H_STORED  a stored profile: its bytes, read once at open (they never
**             change, so the kernel may keep its page cache: keep_cache);
**   H_MERGE   a merge file: a reference to the cached merge that getattr
**             measured (direct_io, so reads never stop at a stale size);
**   H_WRITE   a new file: its write buffer, ingested on each flush that
**             follows new writes (writebuf.h).
** Handlers given a file handle use it rather than the path, which may be
** gone (hard_remove).
**
** Errors follow what the operation means: EROFS on a read-only mount,
** EACCES for the read-only merge tree and for changing a stored profile's
** bytes, EPERM for what the tree's shape does not allow, EINVAL for a bad
** name, ENOENT for what is not there; every refusal of a change is logged
** with its reason.  chmod/chown/utime of what exists succeed and change
** nothing (cp -p, install, rsync, tar and shutil.copy2 call them after the
** ingest).
*/
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "fs_int.h"
#include "listing.h"

#define LABELS_XATTR "user.profefs.labels"

enum { H_STORED = 1, H_MERGE, H_WRITE };

typedef struct fs_handle {
  int kind;
  /* H_STORED */
  void *data;
  store_meta meta;
  /* H_MERGE */
  fs_mbuf *mb;
  /* H_STORED, H_MERGE: the bytes held, taken from held_from (the budget) */
  size_t held;
  budget *held_from;
  /* H_WRITE */
  fs_wb *wb;
  int writer;       /* opened for writing: this handle ingests */
  char *path;       /* where the pending file is registered */
  struct fs_handle *prev, *next;  /* fs.handles, under fs.handles_mu */
} fs_handle;

static fs *ctx(void) { return fuse_get_context()->private_data; }

static fs_handle *handle_of(const struct fuse_file_info *fi) {
  return fi != NULL ? (fs_handle *)(uintptr_t)fi->fh : NULL;
}

static void handle_free(fs_handle *h) {
  if (h == NULL) return;
  budget_release(h->held_from, h->held);
  free(h->data);
  store_meta_clear(&h->meta);
  fs_mbuf_unref(h->mb);
  fs_wb_unref(h->wb);
  free(h->path);
  free(h);
}

/* Puts h on f's list of open handles and in fi->fh. */
static void handle_open(fs *f, fs_handle *h, struct fuse_file_info *fi) {
  pthread_mutex_lock(&f->handles_mu);
  h->prev = NULL;
  h->next = f->handles;
  if (f->handles != NULL) f->handles->prev = h;
  f->handles = h;
  pthread_mutex_unlock(&f->handles_mu);
  fi->fh = (uintptr_t)h;
}

/* Takes h off f's list; accepts NULL. */
static void handle_close(fs *f, fs_handle *h) {
  if (h == NULL) return;
  pthread_mutex_lock(&f->handles_mu);
  if (h->prev != NULL) h->prev->next = h->next;
  else f->handles = h->next;
  if (h->next != NULL) h->next->prev = h->prev;
  pthread_mutex_unlock(&f->handles_mu);
}

void fs_handles_free_all(fs *f) {
  fs_handle *h, *next;

  pthread_mutex_lock(&f->handles_mu);
  for (h = f->handles; h != NULL; h = next) {
    next = h->next;
    handle_free(h);
  }
  f->handles = NULL;
  pthread_mutex_unlock(&f->handles_mu);
}

/* Logs why op on path was refused and returns err (a -errno). */
static int refuse(const char *op, const char *path, int err, const char *why) {
  fs_log("%s %s: %s (%s)", op, path, strerror(-err), why);
  return err;
}

/* Parses path for a lookup: a name that is not valid cannot exist.  A path
** that cannot exist is logged with the reason, except names of the root
** starting with '.', which desktops and shells probe all the time. */
static int lookup(const char *path, fs_path *p) {
  int rc = fs_path_parse(path, (int64_t)time(NULL), p);

  if (rc == 0) return 0;
  if (!(path[0] == '/' && path[1] == '.' && strchr(path + 1, '/') == NULL))
    fs_log("no such path %s: %s", path, p->why);
  return rc == -EINVAL ? -ENOENT : rc;
}

static int is_merge_node(fs_node n) {
  return n == FS_MROOT || n == FS_MSERVICE || n == FS_MTYPE ||
         n == FS_MLABELDIR || n == FS_MFILE || n == FS_DBASE;
}

/* 1 when path is top or below it (top a reserved top-level name). */
static int is_under(const char *path, const char *top) {
  size_t n = strlen(top);

  return path[0] == '/' && strncmp(path + 1, top, n) == 0 &&
         (path[n + 1] == '/' || path[n + 1] == 0);
}

/* The merge and diff trees: read-only. */
static int is_merge_path(const char *path) {
  return is_under(path, FS_MERGE_DIR) || is_under(path, FS_DIFF_DIR);
}

/* Parses the path of a change (mkdir, create, rename...): 0, or the
** logged refusal. */
static int parse_for_change(const char *op, const char *path, fs_path *p) {
  int rc;

  if (ctx()->read_only) return refuse(op, path, -EROFS, "read-only mount");
  if (is_merge_path(path))
    return refuse(op, path, -EACCES,
                  is_under(path, FS_DIFF_DIR) ? "the diff tree is read-only"
                                              : "the merge tree is read-only");
  rc = fs_path_parse(path, (int64_t)time(NULL), p);
  if (rc != 0) return refuse(op, path, -EINVAL, p->why);
  return 0;
}

/* ---- attributes and directories ---------------------------------------- */

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  /* Every listing gives each entry's attributes (READDIRPLUS), not only
  ** the first batch of one (the kernel's "auto" mode): `ls -l` of a
  ** directory of 20,000 label sets then needs no lookup per entry. */
  if (conn->capable & FUSE_CAP_READDIRPLUS)
    conn->want = (conn->want | FUSE_CAP_READDIRPLUS) &
                 ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
  cfg->entry_timeout = FS_ENTRY_TIMEOUT;
  cfg->attr_timeout = FS_ATTR_TIMEOUT;
  cfg->negative_timeout = 0;  /* new profiles and merges appear at once */
  cfg->hard_remove = 1;       /* rm really removes, no .fuse_hidden files */
  cfg->use_ino = 0;
  cfg->direct_io = 0;
  cfg->kernel_cache = 0;
  return fuse_get_context()->private_data;
}

static int op_getattr(const char *path, struct stat *st,
                      struct fuse_file_info *fi) {
  fs *f = ctx();
  fs_handle *h = handle_of(fi);
  fs_path p;
  int rc;

  if (h != NULL) {
    if (h->kind == H_STORED) fs_stat_stored(f, &h->meta, st);
    else if (h->kind == H_MERGE) fs_stat_merge(f, h->mb, st);
    else fs_stat_pending(f, h->wb, st);
    return 0;
  }
  if (path == NULL) return -ESTALE;
  if ((rc = lookup(path, &p)) != 0) return rc;
  return fs_node_stat(f, path, &p, st);
}

static int op_access(const char *path, int mask) {
  fs *f = ctx();
  struct stat st;
  fs_path p;
  int rc;

  if ((rc = lookup(path, &p)) != 0) return rc;
  if ((rc = fs_node_stat(f, path, &p, &st)) != 0) return rc;
  if ((mask & W_OK) && f->read_only) return -EROFS;
  if ((mask & W_OK) && S_ISREG(st.st_mode) && !(st.st_mode & 0200))
    return -EACCES;
  if ((mask & X_OK) && S_ISREG(st.st_mode)) return -EACCES;
  return 0;
}

/* A directory handle holds its listing (listing.h): made at offset 0,
** served by offset, so that the kernel gets every entry's attributes. */
static int op_opendir(const char *path, struct fuse_file_info *fi) {
  fs_listing *l = fs_listing_new();

  (void)path;
  if (l == NULL) return -ENOMEM;
  fi->fh = (uint64_t)(uintptr_t)l;
  return 0;
}

static int op_releasedir(const char *path, struct fuse_file_info *fi) {
  (void)path;
  fs_listing_free((fs_listing *)(uintptr_t)fi->fh);
  fi->fh = 0;
  return 0;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
                      off_t off, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags) {
  fs_listing *l = fi != NULL ? (fs_listing *)(uintptr_t)fi->fh : NULL;
  int plus = (flags & FUSE_READDIR_PLUS) != 0;
  fs_path p;
  int rc;

  if (path == NULL) return -ESTALE;
  if (l == NULL) { /* no handle of ours: everything at once, as before */
    if ((rc = lookup(path, &p)) != 0) return rc;
    return fs_node_list(ctx(), &p, buf, filler, plus);
  }
  if (off == 0 || !fs_listing_ready(l)) {
    fuse_fill_dir_t add = fs_listing_reset(l);
    if ((rc = lookup(path, &p)) != 0 ||
        (rc = fs_node_list(ctx(), &p, l, add, plus)) != 0)
      return rc;
    fs_listing_set_ready(l);
  }
  fs_listing_emit(l, off, buf, filler, plus);
  return 0;
}

/* mkdir MNT/<svc> adds a service; mkdir of a type or label directory
** remembers it (dirset.h).  The kernel answers EEXIST itself for what
** exists, so this only sees new directories. */
static int op_mkdir(const char *path, mode_t mode) {
  fs *f = ctx();
  char err[STORE_ERRMAX] = "";
  fs_path p;
  int rc;

  (void)mode;
  if ((rc = parse_for_change("mkdir", path, &p)) != 0) return rc;
  switch (p.node) {
    case FS_SERVICE:
      rc = fs_errno(store_add_service(f->st, p.service, err));
      if (rc != 0) return refuse("mkdir", path, -rc, err);
      fs_log("created service %s", p.service);
      return 0;
    case FS_TYPE:
    case FS_LABELDIR:
      return fs_dirset_add(f->mkdirs, p.service, meta_type_name(p.type),
                           p.labels);
    case FS_FILE:
      return refuse("mkdir", path, -EINVAL,
                    "only label sets (k=v,...) are directories below a type");
    default:
      return -EEXIST;
  }
}

/* fs_dirset_foreach callback: there is a label directory. */
static int has_label_dir(const char *labels, void *arg) {
  (void)labels;
  (void)arg;
  return 1;
}

/* rmdir of an empty type or label directory forgets it; of a service with
** no profiles removes the service. */
static int op_rmdir(const char *path) {
  fs *f = ctx();
  const char *type;
  fs_path p;
  int rc;

  if ((rc = parse_for_change("rmdir", path, &p)) != 0) return rc;
  type = p.node == FS_SERVICE ? NULL : meta_type_name(p.type);
  switch (p.node) {
    case FS_SERVICE:
      return fs_rmdir_service(f, p.service);
    case FS_TYPE:
      rc = fs_type_has_profiles(f, p.service, p.type);
      if (rc == 0 &&
          fs_dirset_foreach(f->mkdirs, p.service, type, has_label_dir, NULL))
        rc = 1;
      break;
    case FS_LABELDIR:
      rc = fs_labels_stored(f, p.service, p.type, p.labels, 1);
      break;
    case FS_FILE:
      return -ENOTDIR;
    default:
      return refuse("rmdir", path, -EPERM, "not a directory that can go");
  }
  if (rc < 0) return rc;
  if (rc == 1) return -ENOTEMPTY;
  fs_dirset_del(f->mkdirs, p.service, type, p.labels);
  return 0;
}

/* ---- files ---------------------------------------------------------------- */

/* Takes the n bytes a read handle keeps (a whole profile or merge) from
** f's budget for as long as it is open: many open files must not add up
** past --max-memory.  0, or -ENOMEM when the budget has no room. */
static int handle_hold(fs *f, fs_handle *h, size_t n) {
  if (budget_reserve(f->budget, n) != 0) return -ENOMEM;
  h->held = n;
  h->held_from = f->budget;
  return 0;
}

/* A read handle on the stored profile id (whose metadata fs_stored_meta
** or a sealed buffer vouched for). */
static int open_id(fs *f, const char *id, struct fuse_file_info *fi) {
  fs_handle *h = calloc(1, sizeof *h);
  size_t len = 0;
  int err;

  if (h == NULL) return -ENOMEM;
  h->kind = H_STORED;
  err = -fs_errno(store_get(f->st, id, &h->meta, &h->data, &len, NULL));
  if (err == 0) err = handle_hold(f, h, len);
  if (err != 0) {
    handle_free(h);
    return err;
  }
  h->meta.size = (int64_t)len;
  handle_open(f, h, fi);
  fi->keep_cache = 1;  /* stored bytes never change */
  return 0;
}

static int open_merge(fs *f, const fs_path *p, struct fuse_file_info *fi) {
  fs_handle *h = calloc(1, sizeof *h);
  int err;

  if (h == NULL) return -ENOMEM;
  h->kind = H_MERGE;
  err = fs_merge_get(f, p, &h->mb);
  /* each handle counts the merge it keeps alive, shared with the cache
  ** or not: an over-count, never an under-count */
  if (err == 0) err = handle_hold(f, h, fs_mbuf_len(h->mb));
  if (err != 0) {
    handle_free(h);
    return err;
  }
  handle_open(f, h, fi);
  fi->direct_io = 1;  /* getattr reported no size: read to EOF */
  return 0;
}

/* A handle on a file being written.  Opening for writing starts a new
** buffer (and a new profile) under the name; reading shares wb. */
static int open_pending(fs *f, const char *path, const fs_path *p, fs_wb *wb,
                        int writer, struct fuse_file_info *fi) {
  fs_handle *h = calloc(1, sizeof *h);
  int err = -ENOMEM;

  if (h == NULL) goto fail;
  h->kind = H_WRITE;
  h->writer = writer;
  if (!writer) {
    h->wb = fs_wb_ref(wb);
  } else {
    /* A name of the stored shape gives the created_at of a profile
    ** without time_nanos: a copied-out tree copies back in exactly. */
    h->wb = fs_wb_new(p->service, p->type, p->labels,
                      p->has_stamp ? fs_stamp_time(p->stamp) : 0, FS_MAX_WRITE,
                      f->budget);
    h->path = strdup(path);
    if (h->wb == NULL || h->path == NULL) goto fail;
    if ((err = fs_wbtab_put(f->pending, path, h->wb)) != 0) goto fail;
  }
  handle_open(f, h, fi);
  fi->direct_io = 1;  /* the size changes under other handles' feet */
  return 0;
fail:
  handle_free(h);
  return err;
}

/* 1 when p is a stored profile that exists (its id for store_get and
** store_delete, on S3 the key, in key when not NULL), 0 when not, or
** -errno. */
static int stored_exists(fs *f, const fs_path *p, char key[FS_WB_KEY_MAX]) {
  store_meta m;
  int rc;

  if (!p->stored) return 0;
  rc = fs_stored_meta(f, p, &m);
  if (rc == -ENOENT) return 0;
  if (rc != 0) return rc;
  if (key != NULL) snprintf(key, FS_WB_KEY_MAX, "%s", store_meta_id(&m));
  store_meta_clear(&m);
  return 1;
}

static int op_open(const char *path, struct fuse_file_info *fi) {
  fs *f = ctx();
  int wr = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
  char key[FS_WB_KEY_MAX];
  fs_wb_info in;
  fs_path p;
  fs_wb *wb;
  int rc;

  if ((rc = lookup(path, &p)) != 0) return rc;
  if (p.node == FS_MFILE)
    return wr ? refuse("open", path, -EACCES,
                       p.diff ? "the diff tree is read-only"
                              : "the merge tree is read-only")
              : open_merge(f, &p, fi);
  if (p.node != FS_FILE) return -EISDIR;
  if ((rc = stored_exists(f, &p, key)) < 0) return rc;
  if (rc == 1 && !wr) return open_id(f, key, fi);
  if (wr && f->read_only) return refuse("open", path, -EROFS, "read-only mount");
  if (rc == 1)
    return refuse("open", path, -EACCES, "a stored profile never changes");
  wb = fs_wbtab_get(f->pending, path);
  if (wb == NULL) {
    /* The kernel still knows a name that was just written and forgotten:
    ** writing it again writes a new file, as after O_CREAT. */
    return wr ? open_pending(f, path, &p, NULL, 1, fi) : -ENOENT;
  }
  fs_wb_get_info(wb, &in);
  if (wr) rc = open_pending(f, path, &p, NULL, 1, fi);
  else if (in.sealed && in.stored) rc = open_id(f, in.key, fi);
  else rc = open_pending(f, path, &p, wb, 0, fi);
  fs_wb_unref(wb);
  return rc;
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
  fs *f = ctx();
  fs_path p;
  int rc;

  (void)mode;
  if ((rc = parse_for_change("create", path, &p)) != 0) return rc;
  if (p.node == FS_LABELDIR)
    return refuse("create", path, -EINVAL,
                  "a label set (k=v) names a directory, not a file");
  if (p.node != FS_FILE)
    return refuse("create", path, -EPERM,
                  "profiles are files below <service>/<type>/");
  if ((rc = stored_exists(f, &p, NULL)) != 0) return rc < 0 ? rc : -EEXIST;
  return open_pending(f, path, &p, NULL, 1, fi);
}

static int op_read(const char *path, char *buf, size_t size, off_t off,
                   struct fuse_file_info *fi) {
  fs_handle *h = handle_of(fi);
  const char *data;
  size_t len;

  (void)path;
  if (h == NULL || off < 0) return -EBADF;
  if (h->kind == H_WRITE) return (int)fs_wb_read(h->wb, buf, size, off);
  data = h->kind == H_STORED ? h->data : fs_mbuf_data(h->mb);
  len = h->kind == H_STORED ? (size_t)h->meta.size : fs_mbuf_len(h->mb);
  if ((size_t)off >= len) return 0;
  if (size > len - (size_t)off) size = len - (size_t)off;
  memcpy(buf, data + off, size);
  return (int)size;
}

/* A first write that cannot begin a profile (`printf x > f`, a text file)
** is refused there: a shell ignores the EINVAL that close would give. */
static int op_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi) {
  fs_handle *h = handle_of(fi);
  fs_path p;

  (void)path;
  if (h == NULL || h->kind != H_WRITE || !h->writer) return -EBADF;
  if (off == 0 && fs_path_parse(h->path, (int64_t)time(NULL), &p) == 0 &&
      !store_may_begin(p.type, buf, size))
    return refuse("write", h->path, -EINVAL,
                  "not a profile: begins as neither gzip nor pprof");
  return fs_wb_write(h->wb, buf, size, off);
}

/* Ingests what the writer handle h holds if it changed (writebuf.h):
** the outcome of close(2) and fsync(2). */
static int ingest(fs *f, fs_handle *h) {
  char err[STORE_ERRMAX] = "";
  char dropped[FS_WB_KEY_MAX];
  store_meta m = { 0 };
  store_rc rc;
  int did;

  rc = fs_wb_ingest(h->wb, f->st, &did, &m, dropped, err);
  if (dropped[0] != '\0')
    fs_log("deleted %s: %s was written again after a close, and its "
           "profile is its whole content", dropped, h->path);
  if (!did) return -fs_errno(rc);
  if (rc != STORE_OK) {
    fs_log("ingest of %s failed: %s", h->path, err);
    return -fs_errno(rc);
  }
  fs_log("ingested %s as %s/%s %s (%lld bytes)", h->path, m.service,
         meta_type_name(m.type), m.id, (long long)m.size);
  store_meta_clear(&m);
  return 0;
}

/* close(2) of a new file: ingest it, so that close reports the outcome. */
static int op_flush(const char *path, struct fuse_file_info *fi) {
  fs_handle *h = handle_of(fi);

  (void)path;
  if (h == NULL || h->kind != H_WRITE || !h->writer) return 0;
  return ingest(ctx(), h);
}

/* fsync means durable: the content so far becomes the file's profile. */
static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
  fs_handle *h = handle_of(fi);

  (void)path;
  (void)datasync;
  if (h == NULL || h->kind != H_WRITE || !h->writer) return 0;
  return ingest(ctx(), h);
}

/* The last close: a stored file keeps answering at its name for a while
** (writebuf.h), anything else is forgotten. */
static int op_release(const char *path, struct fuse_file_info *fi) {
  fs_handle *h = handle_of(fi);

  (void)path;
  if (h != NULL && h->kind == H_WRITE && h->writer && !fs_wb_seal(h->wb))
    fs_wbtab_drop(ctx()->pending, h->path, h->wb);
  handle_close(ctx(), h);
  handle_free(h);
  return 0;
}

/* What a setattr applies to: *wb gets the buffer of a file still being
** written (truncate applies to it), NULL for anything else that exists
** outside the merge tree (chmod/utime succeed and change nothing).
** 0 or -errno. */
static int setattr_target(const char *path, struct fuse_file_info *fi,
                          fs_wb **wb) {
  fs *f = ctx();
  fs_handle *h = handle_of(fi);
  fs_wb_info in;
  struct stat st;
  fs_path p;
  int rc;

  *wb = NULL;
  if (f->read_only) return -EROFS;
  if (h != NULL) {
    if (h->kind == H_MERGE) return -EACCES;
    if (h->kind == H_WRITE && h->writer) *wb = fs_wb_ref(h->wb);
    return 0;
  }
  if (path == NULL) return -ESTALE;
  if ((rc = lookup(path, &p)) != 0) return rc;
  if (is_merge_node(p.node)) return -EACCES;
  if ((rc = fs_node_stat(f, path, &p, &st)) != 0) return rc;
  if (p.node == FS_FILE && (*wb = fs_wbtab_get(f->pending, path)) != NULL) {
    fs_wb_get_info(*wb, &in);
    if (in.sealed) {
      fs_wb_unref(*wb);
      *wb = NULL;
    }
  }
  return 0;
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
  fs_wb *wb;
  int err = setattr_target(path, fi, &wb);

  if (err != 0) return err;
  if (wb == NULL)
    return refuse("truncate", path ? path : "(open file)", -EACCES,
                  "a stored profile never changes");
  err = fs_wb_truncate(wb, size);
  fs_wb_unref(wb);
  return err;
}

static int setattr_noop(const char *path, struct fuse_file_info *fi) {
  fs_wb *wb;
  int err = setattr_target(path, fi, &wb);

  fs_wb_unref(wb);
  return err;
}

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
  (void)mode;
  return setattr_noop(path, fi);
}

static int op_chown(const char *path, uid_t uid, gid_t gid,
                    struct fuse_file_info *fi) {
  (void)uid;
  (void)gid;
  return setattr_noop(path, fi);
}

static int op_utimens(const char *path, const struct timespec tv[2],
                      struct fuse_file_info *fi) {
  (void)tv;
  return setattr_noop(path, fi);
}

/* Deletes the profile id (logged); 0 or -errno. */
static int delete_id(fs *f, const char *id, const char *path) {
  char err[STORE_ERRMAX] = "";
  int rc = -fs_errno(store_delete(f->st, id, err));

  if (rc == 0) fs_log("deleted %s (%s)", id, path);
  else if (rc != -ENOENT) fs_log("delete of %s (%s) failed: %s", id, path, err);
  return rc == -ENOENT ? 0 : rc;
}

/* Forgets the file being written or just written at path, deleting the
** profile it became when writing it created that profile; one that was
** stored already (the same bytes pushed by an agent or written as another
** file: ingest is idempotent) is someone else's and stays.  0, -ENOENT
** when there is none, or -errno. */
static int unlink_written(fs *f, const char *path) {
  char id[FS_WB_KEY_MAX];
  fs_wb *wb = fs_wbtab_get(f->pending, path);
  int rc = 0, owned;

  if (wb == NULL) return -ENOENT;
  fs_wb_cancel(wb, id, &owned);
  fs_wbtab_drop(f->pending, path, wb);
  fs_wb_unref(wb);
  if (id[0] != '\0' && owned)
    rc = delete_id(f, id, path);
  else if (id[0] != '\0')
    fs_log("kept %s (%s): it was stored before this file was written, "
           "only the name goes", id, path);
  return rc;
}

/* rm of a stored profile deletes it; rm of a file being written cancels
** its ingest; rm of one just written deletes the profile it became if
** writing it created that profile, else removes only the name. */
static int op_unlink(const char *path) {
  fs *f = ctx();
  char key[FS_WB_KEY_MAX];
  fs_path p;
  int rc;

  if ((rc = parse_for_change("unlink", path, &p)) != 0) return rc;
  if (p.node != FS_FILE) return -EISDIR;
  if ((rc = stored_exists(f, &p, key)) < 0) return rc;
  if (rc == 1) return delete_id(f, key, path);
  return unlink_written(f, path);
}

static int same_dir(const fs_path *a, const fs_path *b) {
  return strcmp(a->service, b->service) == 0 && a->type == b->type &&
         strcmp(a->labels, b->labels) == 0;
}

/* rename(2) of a file being written or just written to another name of the
** same directory (a temporary name, then the real one: rsync, editors).
** Anything crossing directories is EXDEV, so that mv copies (ingesting
** with the new place's service, type and labels) and then removes. */
static int op_rename(const char *from, const char *to, unsigned int flags) {
  fs *f = ctx();
  char key[FS_WB_KEY_MAX];
  fs_path pf, pt;
  fs_wb_info in;
  fs_wb *wb, *old;
  int rc;

  if ((rc = parse_for_change("rename", from, &pf)) != 0 ||
      (rc = parse_for_change("rename", to, &pt)) != 0)
    return rc;
  if (flags & RENAME_EXCHANGE)
    return refuse("rename", from, -EINVAL, "exchange is not supported");
  if (pf.node != FS_FILE || pt.node != FS_FILE || !same_dir(&pf, &pt))
    return refuse("rename", from, -EXDEV,
                  "another directory: copy, then remove");
  if ((rc = stored_exists(f, &pf, NULL)) < 0) return rc;
  if (rc == 1)
    return refuse("rename", from, -EPERM,
                  "a stored profile's name is its time and id");
  if ((wb = fs_wbtab_get(f->pending, from)) == NULL) return -ENOENT;
  fs_wb_get_info(wb, &in);
  fs_wb_unref(wb);
  /* What to names is replaced, unless it is this very profile. */
  if ((rc = stored_exists(f, &pt, key)) < 0) return rc;
  old = fs_wbtab_get(f->pending, to);
  if ((rc == 1 || old != NULL) && (flags & RENAME_NOREPLACE)) {
    fs_wb_unref(old);
    return -EEXIST;
  }
  if (rc == 1 && strcmp(pt.id, in.id) != 0) rc = delete_id(f, key, to);
  else rc = 0;
  if (old != NULL) {
    fs_wb_info oin;
    fs_wb_get_info(old, &oin);
    /* An identical file written again is the same profile (idempotent
    ** ingest, rsync's second run): only a different one goes. */
    if (old != wb && rc == 0 &&
        (oin.id[0] == '\0' || strcmp(oin.id, in.id) != 0))
      rc = unlink_written(f, to);
    fs_wb_unref(old);
  }
  if (rc != 0) return rc;
  return fs_wbtab_move(f->pending, from, to);
}

static int op_refuse(const char *op, const char *path) {
  fs *f = ctx();
  return f->read_only ? -EROFS
                      : refuse(op, path, -EPERM, "profiles are regular files");
}

static int op_link(const char *from, const char *to) {
  (void)to;
  return op_refuse("link", from);
}

static int op_mknod(const char *path, mode_t mode, dev_t dev) {
  (void)mode;
  (void)dev;
  return op_refuse("mknod", path);
}

/* df: the repository's size as used (what it holds, or its files on disk
** when the backend knows), and as available what its data directory's
** filesystem has free, or 1 PiB where there is no bound to tell (S3, a
** remote server); one block per 4 KiB. */
static int op_statfs(const char *path, struct statvfs *sv) {
  store_stats s = { 0 };
  int64_t bytes = 0, avail = -1;

  (void)path;
  memset(sv, 0, sizeof *sv);
  if (store_get_stats(ctx()->st, &s) == STORE_OK) {
    bytes = s.disk_bytes > s.bytes ? s.disk_bytes : s.bytes;
    avail = s.disk_avail;
  }
  if (bytes < 0) bytes = 0;
  if (avail < 0) avail = (int64_t)1 << 50;
  sv->f_bsize = 4096;
  sv->f_frsize = 4096;
  sv->f_blocks = (fsblkcnt_t)((bytes + 4095) / 4096 + avail / 4096);
  sv->f_bfree = sv->f_bavail = (fsblkcnt_t)(avail / 4096);
  sv->f_files = s.profiles > 0 ? (fsfilcnt_t)s.profiles : 0;
  sv->f_namemax = 255;
  return 0;
}

/* Regular files are always ready.  ENOSYS makes the kernel stop asking and
** answer poll/epoll itself; the handle must still be freed (libfuse hands
** it over even when it would leak it without a poll op). */
static int op_poll(const char *path, struct fuse_file_info *fi,
                   struct fuse_pollhandle *ph, unsigned *reventsp) {
  (void)path;
  (void)fi;
  (void)reventsp;
  fuse_pollhandle_destroy(ph);
  return -ENOSYS;
}

/* ---- extended attributes ----------------------------------------------- */

/* The labels of the stored profile at path into *labels (caller frees). */
static int stored_labels(const char *path, char **labels) {
  store_meta m;
  fs_path p;
  int rc;

  if ((rc = lookup(path, &p)) != 0) return rc;
  if (p.node != FS_FILE || !p.stored) return -ENODATA;
  if ((rc = fs_stored_meta(ctx(), &p, &m)) != 0) return rc;
  *labels = m.labels;
  m.labels = NULL;
  store_meta_clear(&m);
  return 0;
}

static int op_getxattr(const char *path, const char *name, char *value,
                       size_t size) {
  char *labels = NULL;
  size_t len;
  int rc;

  /* Only user.* attributes exist here: ACLs (system.*) and security
  ** labels are not supported, and saying so (ENOTSUP, not "none set")
  ** lets `ls -l` stop asking them of every entry after the first: it
  ** remembers the device.  With 20,000 label directories those were
  ** 60,000 round trips through FUSE, most of an `ls -l`. */
  if (strcmp(name, LABELS_XATTR) != 0)
    return strncmp(name, "user.", 5) == 0 ? -ENODATA : -ENOTSUP;
  if ((rc = stored_labels(path, &labels)) != 0) return rc;
  len = strlen(labels);
  if (size > 0 && size < len) rc = -ERANGE;
  else if (size > 0) memcpy(value, labels, len);
  free(labels);
  return rc != 0 ? rc : (int)len;
}

static int op_listxattr(const char *path, char *list, size_t size) {
  static const char names[] = LABELS_XATTR;  /* with its NUL */
  char *labels = NULL;
  int rc = stored_labels(path, &labels);

  free(labels);
  if (rc == -ENODATA) return 0;
  if (rc != 0) return rc;
  if (size == 0) return (int)sizeof names;
  if (size < sizeof names) return -ERANGE;
  memcpy(list, names, sizeof names);
  return (int)sizeof names;
}

static int op_setxattr(const char *path, const char *name, const char *value,
                       size_t size, int flags) {
  (void)path;
  (void)name;
  (void)value;
  (void)size;
  (void)flags;
  return -ENOTSUP;
}

static int op_removexattr(const char *path, const char *name) {
  (void)path;
  (void)name;
  return -ENOTSUP;
}

static const struct fuse_operations ops = {
  .init = op_init,
  .getattr = op_getattr,
  .access = op_access,
  .opendir = op_opendir,
  .readdir = op_readdir,
  .releasedir = op_releasedir,
  .mkdir = op_mkdir,
  .rmdir = op_rmdir,
  .open = op_open,
  .create = op_create,
  .read = op_read,
  .write = op_write,
  .flush = op_flush,
  .release = op_release,
  .fsync = op_fsync,
  .statfs = op_statfs,
  .truncate = op_truncate,
  .chmod = op_chmod,
  .chown = op_chown,
  .utimens = op_utimens,
  .unlink = op_unlink,
  .rename = op_rename,
  .link = op_link,
  .mknod = op_mknod,
  .getxattr = op_getxattr,
  .listxattr = op_listxattr,
  .setxattr = op_setxattr,
  .removexattr = op_removexattr,
  .poll = op_poll,
};

const struct fuse_operations *fs_operations(void) { return &ops; }
