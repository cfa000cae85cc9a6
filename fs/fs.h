/*
** fs.h — the repository as a FUSE filesystem (libfuse3, multi-threaded).
**
** Layout (DESIGN.md "FUSE view"):
**   MNT/<service>/<type>/[<labels>/]<YYYYMMDD>T<HHMMSS>Z_<id>.pb.gz   stored
**   MNT/merge/<service>/<type>/[<labels>/]<from>..<to>                 merged
** Writing a new file under <service>/<type>/ ingests it on close; a bad
** profile fails close() with EINVAL.  The same view serves a local store and
** a remote one (store_open_remote), since it only calls store.h.
*/
#ifndef PROFEFS_FS_H
#define PROFEFS_FS_H

#include <stdint.h>

#include "store.h"

#define FS_ERRMAX 256

typedef struct fs_options {
  const char *mountpoint;  /* required, an existing directory */
  int read_only;           /* refuse writes with EROFS */
  int64_t window_sec;      /* type-dir listing window back from now; 0 = all */
  int debug;               /* libfuse debug output */
  int allow_other;         /* -o allow_other (root only) */
  budget *budget;          /* write buffers are taken from it (ENOMEM when
                           ** it has no room); NULL = none; outlives fs */
} fs_options;

typedef struct fs fs;

/* Mounts st at opts->mountpoint and serves it from background threads.
** st must outlive the mount. Fails with -1 and a reason in err. */
int fs_start(store *st, const fs_options *opts, fs **out, char err[FS_ERRMAX]);

/* 1 once the session ended by itself (e.g. `umount MNT` from outside). */
int fs_ended(const fs *f);

/* Unmounts, waits for the FUSE threads and frees f; accepts NULL. */
void fs_stop(fs *f);

#endif /* PROFEFS_FS_H */
