/*
** ops.c — the FUSE operations of the profefs view: short handlers that
** classify the path (path.c), ask node.c / the store, and return -errno.
**
** Open files carry an fs_handle in fi->fh:
**   H_STORED  a stored profile: its bytes, read once at open (they never
**             change, so the kernel may keep its page cache: keep_cache);
**   H_MERGE   a merge file: a reference to the cached merge that getattr
**             measured (direct_io, so reads never stop at a stale size);
**   H_WRITE   a new file: its write buffer, ingested on the first flush.
** Handlers given a file handle use it rather than the path, which may be
** gone (hard_remove).
*/
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs_int.h"

#define LABELS_XATTR "user.profefs.labels"

enum { H_STORED = 1, H_MERGE, H_WRITE };

typedef struct fs_handle {
  int kind;
  /* H_STORED */
  void *data;
  store_meta meta;
  /* H_MERGE */
  fs_mbuf *mb;
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

/* Parses path for a lookup: a name that is not valid cannot exist. */
static int lookup(const char *path, fs_path *p) {
  int rc = fs_path_parse(path, (int64_t)time(NULL), p);
  return rc == -EINVAL ? -ENOENT : rc;
}

static int is_merge_node(fs_node n) {
  return n == FS_MROOT || n == FS_MSERVICE || n == FS_MTYPE ||
         n == FS_MLABELDIR || n == FS_MFILE;
}

/* ---- attributes and directories ---------------------------------------- */

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  (void)conn;
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

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
                      off_t off, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags) {
  fs_path p;
  int rc;

  (void)off;
  (void)fi;
  if (path == NULL) return -ESTALE;
  if ((rc = lookup(path, &p)) != 0) return rc;
  return fs_node_list(ctx(), &p, buf, filler, (flags & FUSE_READDIR_PLUS) != 0);
}

/* mkdir MNT/<svc> adds a service; mkdir of a label directory remembers it. */
static int op_mkdir(const char *path, mode_t mode) {
  fs *f = ctx();
  char err[STORE_ERRMAX];
  const char *slash = strrchr(path, '/');
  fs_path p;
  int rc;

  (void)mode;
  if (f->read_only) return -EROFS;
  rc = fs_path_parse(path, (int64_t)time(NULL), &p);
  if (rc == -ENOENT && slash == path) return -EINVAL;  /* bad service name */
  if (rc == -ENOENT) return -EPERM;                     /* not a place for it */
  if (rc != 0) return rc;
  switch (p.node) {
    case FS_SERVICE:
      rc = fs_errno(store_add_service(f->st, p.service, err));
      if (rc != 0) return -rc;
      fs_log("created service %s", p.service);
      return 0;
    case FS_LABELDIR:
    case FS_MLABELDIR:
      return fs_dirset_add(f->mkdirs, p.service, meta_type_name(p.type),
                           p.labels);
    case FS_FILE:
      return -EINVAL;  /* only label sets can be directories here */
    case FS_MFILE:
      return -EACCES;
    default:
      return -EEXIST;
  }
}

static int op_rmdir(const char *path) {
  fs *f = ctx();
  fs_path p;
  int rc;

  if (f->read_only) return -EROFS;
  if ((rc = lookup(path, &p)) != 0) return rc;
  if (p.node != FS_LABELDIR && p.node != FS_MLABELDIR) return -EPERM;
  fs_dirset_del(f->mkdirs, p.service, meta_type_name(p.type), p.labels);
  rc = fs_labeldir_exists(f, p.service, p.type, p.labels);
  if (rc < 0) return rc;
  return rc == 1 ? -ENOTEMPTY : 0;
}

/* ---- files ---------------------------------------------------------------- */

static int open_stored(fs *f, const fs_path *p, struct fuse_file_info *fi) {
  fs_handle *h = calloc(1, sizeof *h);
  size_t len = 0;
  store_rc rc;
  int err;

  if (h == NULL) return -ENOMEM;
  h->kind = H_STORED;
  err = fs_stored_meta(f, p, &h->meta);
  if (err == 0) {
    rc = store_get(f->st, store_meta_id(&h->meta), NULL, &h->data, &len, NULL);
    err = -fs_errno(rc);
    h->meta.size = (int64_t)len;
  }
  if (err != 0) {
    handle_free(h);
    return err;
  }
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
  if (err != 0) {
    handle_free(h);
    return err;
  }
  handle_open(f, h, fi);
  fi->direct_io = 1;
  return 0;
}

/* A handle on a file being written.  Opening for writing starts a new
** buffer (and a new ingest) under the same name; reading shares wb. */
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
    h->wb = fs_wb_new(p->service, p->type, p->labels, FS_MAX_WRITE,
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

static int op_open(const char *path, struct fuse_file_info *fi) {
  fs *f = ctx();
  int wr = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
  store_meta m;
  fs_path p;
  fs_wb *wb;
  int rc;

  if ((rc = lookup(path, &p)) != 0) return rc;
  if (p.node == FS_MFILE) return wr ? -EACCES : open_merge(f, &p, fi);
  if (p.node != FS_FILE) return -EISDIR;
  if (p.stored && !wr && (rc = open_stored(f, &p, fi)) != -ENOENT) return rc;
  if (p.stored && wr && (rc = fs_stored_meta(f, &p, &m)) != -ENOENT) {
    if (rc != 0) return rc;
    store_meta_clear(&m);
    return f->read_only ? -EROFS : -EACCES;  /* stored bytes never change */
  }
  if ((wb = fs_wbtab_get(f->pending, path)) == NULL) return -ENOENT;
  rc = wr && f->read_only ? -EROFS : open_pending(f, path, &p, wb, wr, fi);
  fs_wb_unref(wb);
  return rc;
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
  fs *f = ctx();
  store_meta m;
  fs_path p;
  int rc;

  (void)mode;
  if (f->read_only) return -EROFS;
  rc = fs_path_parse(path, (int64_t)time(NULL), &p);
  if (rc == -ENOENT)  /* no files at this place */
    return strncmp(path, "/" FS_MERGE_DIR "/", 7) == 0 ? -EACCES : -EPERM;
  if (rc != 0) return rc;
  if (is_merge_node(p.node)) return -EACCES;
  if (p.node == FS_LABELDIR) return -EINVAL;  /* label sets name directories */
  if (p.node != FS_FILE) return -EPERM;
  if (p.stored && fs_stored_meta(f, &p, &m) == 0) {
    store_meta_clear(&m);
    return -EEXIST;
  }
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

static int op_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi) {
  fs_handle *h = handle_of(fi);

  (void)path;
  if (h == NULL || h->kind != H_WRITE || !h->writer) return -EBADF;
  return fs_wb_write(h->wb, buf, size, off);
}

/* close(2) of a new file: ingest it, so that close reports the outcome. */
static int op_flush(const char *path, struct fuse_file_info *fi) {
  fs *f = ctx();
  fs_handle *h = handle_of(fi);
  char err[STORE_ERRMAX] = "";
  store_meta m = { 0 };
  store_rc rc;
  int did;

  (void)path;
  if (h == NULL || h->kind != H_WRITE || !h->writer) return 0;
  rc = fs_wb_ingest(h->wb, f->st, &did, &m, err);
  if (!did) return 0;
  /* The name was only a way in: the profile lives under its own name. */
  fs_wbtab_drop(f->pending, h->path, h->wb);
  if (rc != STORE_OK) {
    fs_log("ingest of %s failed: %s", h->path, err);
    return -fs_errno(rc);
  }
  fs_log("ingested %s as %s/%s %s (%lld bytes)", h->path, m.service,
         meta_type_name(m.type), m.id, (long long)m.size);
  store_meta_clear(&m);
  return 0;
}

static int op_release(const char *path, struct fuse_file_info *fi) {
  fs_handle *h = handle_of(fi);

  (void)path;
  if (h != NULL && h->kind == H_WRITE && h->writer)
    fs_wbtab_drop(ctx()->pending, h->path, h->wb);
  handle_close(ctx(), h);
  handle_free(h);
  return 0;
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)path;
  (void)datasync;
  (void)fi;
  return 0;  /* new files become durable when closed */
}

/* The write buffer that a setattr on path / fi applies to, or NULL with
** *err set: files being written accept truncate/chmod/utimens, nothing
** else does. */
static fs_wb *setattr_target(const char *path, struct fuse_file_info *fi,
                             int *err) {
  fs *f = ctx();
  fs_handle *h = handle_of(fi);
  fs_path p;

  *err = -EPERM;
  if (h != NULL) {
    if (h->kind == H_WRITE && h->writer) return fs_wb_ref(h->wb);
    *err = f->read_only ? -EROFS : -EACCES;
    return NULL;
  }
  if (path == NULL) return NULL;
  if ((*err = lookup(path, &p)) != 0) return NULL;
  if (p.node == FS_FILE) {
    fs_wb *wb = fs_wbtab_get(f->pending, path);
    if (wb != NULL) return wb;
  }
  *err = f->read_only ? -EROFS : p.node == FS_FILE || p.node == FS_MFILE
                                     ? -EACCES : -EPERM;
  return NULL;
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
  int err;
  fs_wb *wb = setattr_target(path, fi, &err);

  if (wb == NULL) return err;
  err = fs_wb_truncate(wb, size);
  fs_wb_unref(wb);
  return err;
}

/* chmod, chown and utimens succeed, doing nothing, on files being written
** (cp -p and install call them); a stored profile is immutable. */
static int setattr_noop(const char *path, struct fuse_file_info *fi) {
  int err;
  fs_wb *wb = setattr_target(path, fi, &err);

  if (wb == NULL) return err;
  fs_wb_unref(wb);
  return 0;
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

/* rm of a stored profile deletes it; rm of a file being written cancels
** its ingest. */
static int op_unlink(const char *path) {
  fs *f = ctx();
  char err[STORE_ERRMAX] = "";
  store_meta m;
  fs_path p;
  fs_wb *wb;
  int rc;

  if (f->read_only) return -EROFS;
  if ((rc = lookup(path, &p)) != 0) return rc;
  if (p.node == FS_MFILE) return -EACCES;
  if (p.node != FS_FILE) return -EPERM;
  if (p.stored && (rc = fs_stored_meta(f, &p, &m)) != -ENOENT) {
    if (rc != 0) return rc;
    rc = -fs_errno(store_delete(f->st, store_meta_id(&m), err));
    store_meta_clear(&m);
    if (rc == 0) fs_log("deleted %s (%s)", p.id, path);
    return rc;
  }
  if ((wb = fs_wbtab_get(f->pending, path)) == NULL) return -ENOENT;
  fs_wb_cancel(wb);
  fs_wbtab_drop(f->pending, path, wb);
  fs_wb_unref(wb);
  return 0;
}

static int op_refuse(void) { return ctx()->read_only ? -EROFS : -EPERM; }

static int op_rename(const char *from, const char *to, unsigned int flags) {
  (void)from;
  (void)to;
  (void)flags;
  return op_refuse();
}

static int op_link(const char *from, const char *to) {
  (void)from;
  (void)to;
  return op_refuse();
}

static int op_mknod(const char *path, mode_t mode, dev_t dev) {
  (void)path;
  (void)mode;
  (void)dev;
  return op_refuse();
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

  if (strcmp(name, LABELS_XATTR) != 0) return -ENODATA;
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
  .readdir = op_readdir,
  .mkdir = op_mkdir,
  .rmdir = op_rmdir,
  .open = op_open,
  .create = op_create,
  .read = op_read,
  .write = op_write,
  .flush = op_flush,
  .release = op_release,
  .fsync = op_fsync,
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
