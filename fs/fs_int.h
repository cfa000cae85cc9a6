/*
** fs_int.h — private to fs/: the state of one mount and the helpers the
** FUSE handlers (ops.c) share with the rest of the component.
**
**   fs.c         mount, session thread, start/stop, logging, errno mapping
**   ops.c        the fuse_operations table: short handlers returning -errno
**   node.c       what exists in the view, its attributes and listings
**   path.c       path text -> fs_path                       (path.h)
**   mergecache.c merged profiles shared by getattr and open (mergecache.h)
**   writebuf.c   files being written, ingested on close    (writebuf.h)
**   dirset.c     label directories made with mkdir         (dirset.h)
**   listing.c    an open directory's listing, by offset    (listing.h)
*/
#ifndef PROFEFS_FS_INT_H
#define PROFEFS_FS_INT_H

#define FUSE_USE_VERSION 312
#include <fuse.h>
#include <fuse_lowlevel.h>  /* fuse_session_exit */

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>

#include "dirset.h"
#include "fs.h"
#include "mergecache.h"
#include "path.h"
#include "view.h"
#include "writebuf.h"

/* Largest file that can be written into the view (as the HTTP body limit). */
#define FS_MAX_WRITE (32u << 20)

/* How long the name a file was written under keeps answering after its
** close (for the utime/chmod/rename that tools do next). */
#define FS_WRITTEN_TTL_SEC 60

/* How long merges of ranges relative to "now" are reused. */
#define FS_MERGE_TTL_SEC 2

/* Kernel cache timeouts: directory contents change all the time. */
#define FS_ATTR_TIMEOUT 1.0
#define FS_ENTRY_TIMEOUT 1.0

struct fs {
  store *st;               /* not owned */
  char *mountpoint;        /* absolute */
  int read_only;
  budget *budget;          /* not owned; write buffers take from it */
  int64_t window_sec;
  int64_t mounted_at;      /* unix seconds: the times of directories */
  uid_t uid;
  gid_t gid;
  struct fuse *fuse;
  struct fuse_session *se;
  pthread_t thread;
  int thread_started;
  atomic_int ended;        /* the session loop returned */
  fs_mcache *mc;
  fs_wbtab *pending;       /* paths of files being written or just written */
  fs_dirset *mkdirs;       /* type and label directories made with mkdir */
  pthread_mutex_t handles_mu;
  struct fs_handle *handles; /* open files; the kernel may never release
                             ** some before an unmount (ops.c) */
};

/* One line on stderr, prefixed "fs: ". */
void fs_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The one mapping of store results to errno values (0 for STORE_OK). */
int fs_errno(store_rc rc);

/* The fuse_operations of the view (ops.c). */
const struct fuse_operations *fs_operations(void);

/* Frees the handles of files still open (ops.c): FUSE_RELEASE is sent
** after close() returns, so an unmount can overtake it.  Call only after
** the session loop has ended. */
void fs_handles_free_all(fs *f);

/* ---- node.c ------------------------------------------------------------ */

/* Attributes of a directory of the view. */
void fs_stat_dir(const fs *f, struct stat *st);

/* 1 when service exists, 0 when not, or -errno. */
int fs_service_exists(fs *f, const char *service);

/* 1 when service/type holds a profile, 0 when none, or -errno. */
int fs_type_has_profiles(fs *f, const char *service, meta_type type);

/* 1 when a stored profile of service/type has exactly the label set labels
** (exact) or one the filter labels matches (!exact); 0 or -errno. */
int fs_labels_stored(fs *f, const char *service, meta_type type,
                     const char *labels, int exact);

/* rmdir of a service: removes it when it holds no profiles and no
** directories made with mkdir.  0 or -errno (-ENOTEMPTY). */
int fs_rmdir_service(fs *f, const char *service);

/* 1 when the type directory service/type exists (made by mkdir or holding
** profiles), 0 when not, or -errno. */
int fs_type_exists(fs *f, const char *service, meta_type type);

/* 1 when the label directory labels of service/type exists (made by mkdir
** or holding profiles: of exactly that label set when exact, else of any
** set the filter labels matches), 0 when not, or -errno. */
int fs_labeldir_exists(fs *f, const char *service, meta_type type,
                       const char *labels, int exact);

/* Metadata of the stored profile p names (p->stored), checking that it has
** p's service and type, that its labels match p's label dir and that the
** time stamp of the name is its created_at.  0 (caller clears *m) or -errno
** (-ENOENT when any of that does not hold). */
int fs_stored_meta(fs *f, const fs_path *p, store_meta *m);

/* Attributes of a stored profile; m->size must be known (>= 0). */
void fs_stat_stored(const fs *f, const store_meta *m, struct stat *st);

/* The cache key of the FS_MFILE p (its service, type, labels, range,
** view and diff base), and its store query (strings point into p). */
#define FS_MKEY_MAX (FS_PATH_MAX + 128)
void fs_merge_key(const fs_path *p, char key[FS_MKEY_MAX]);
void fs_merge_query(const fs_path *p, store_query *q);

/* views.c: the bytes of the FS_MFILE p that is a view (p->view) or a diff
** (p->diff), under key, through the cache: rendered from the merges of
** its range(s), which are cached under their own keys.  STORE_OK and a
** reference in *out, or a store_rc and err (STORE_NOTFOUND when a range
** is empty, STORE_MISMATCH when a diff's sides differ in type). */
store_rc fs_view_get(fs *f, const fs_path *p, const char *key, fs_mbuf **out,
                     char err[STORE_ERRMAX]);

/* The merge that the FS_MFILE path p names, through the cache: 0 and a
** reference in *out, or -errno (-ENOENT when nothing matches).  Only open
** merges: getattr never does. */
int fs_merge_get(fs *f, const fs_path *p, fs_mbuf **out);

/* Attributes of a merge file with content b; of a file being written (or
** written and closed: then those of the profile it became). */
void fs_stat_merge(const fs *f, const fs_mbuf *b, struct stat *st);
void fs_stat_pending(const fs *f, fs_wb *wb, struct stat *st);

/* getattr by path: whether p (the parse of path) exists, and its
** attributes.  0 or -errno. */
int fs_node_stat(fs *f, const char *path, const fs_path *p, struct stat *st);

/* readdir of the directory p: calls filler for ".", ".." and every entry.
** plus: the kernel asked for attributes (READDIRPLUS).  0 or -errno. */
int fs_node_list(fs *f, const fs_path *p, void *buf, fuse_fill_dir_t filler,
                 int plus);

#endif /* PROFEFS_FS_INT_H */
