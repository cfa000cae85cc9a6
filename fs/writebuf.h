/*
** writebuf.h — private to fs/: files written into the view, which become
** profiles when they are closed.
**
** An fs_wb is the in-memory content of one new file plus where it will be
** ingested (service, type, labels, and a created_at hint taken from a name
** of the stored shape, so that a copied-out tree copies back in exactly).
**
** A flush (close(2) of any descriptor) or an fsync ingests the whole
** content when it changed since the last attempt; a flush with nothing new
** repeats the last outcome.  When a later ingest succeeds, the profile of
** the earlier one is deleted; when it fails, that profile is deleted too:
** the file's profile is always its whole content, never a prefix (shells
** close dup'ed descriptors while a later command still writes).  Deleted,
** that is, when this buffer's ingest created it: ingest is idempotent, and
** bytes that were stored already (an agent pushed them, another file
** holds them) answer with that profile, which is not the buffer's to
** delete — it stays, and the buffer only forgets it.  A flush of
** an empty buffer does nothing, because shells open, dup2 and close a
** redirection target before the command writes anything.
**
** Once its last writer is released a buffer is sealed: its content is
** freed, and if it was stored it keeps answering for its path for a while
** (fs_wbtab), so that what tools do after close() — stat, utime, chmod,
** rename of a temporary name (install, cp -p, rsync, tar, an editor) —
** finds the file they just wrote.
**
** An fs_wbtab maps the paths of files being written or just written to
** their buffers, so that getattr/setattr/rename by path see them.
**
** Both are safe to use from many threads; buffers are refcounted.  No
** lock is held while the store works: a slow ingest makes the other
** operations on its own buffer wait (writes, truncate, the last close,
** rm), never anything else.
*/
#ifndef PROFEFS_FS_WRITEBUF_H
#define PROFEFS_FS_WRITEBUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store.h"

typedef struct fs_wb fs_wb;
typedef struct fs_wbtab fs_wbtab;

/* A new empty buffer (one reference) that may grow to max bytes, to be
** ingested as service/type with the canonical labels; created_hint > 0 is
** the created_at of a profile without time_nanos.  Its memory is taken
** from budget b (NULL: none; writes past what b gives fail with -ENOMEM),
** which must outlive it.  NULL on OOM. */
fs_wb *fs_wb_new(const char *service, meta_type type, const char *labels,
                 int64_t created_hint, size_t max, budget *b);
fs_wb *fs_wb_ref(fs_wb *wb);
void fs_wb_unref(fs_wb *wb);   /* accepts NULL */

/* pwrite into the buffer.  Returns size, or -EFBIG past max, -ENOMEM, or
** -EIO once the buffer was cancelled or sealed. */
int fs_wb_write(fs_wb *wb, const void *data, size_t size, off_t off);

/* pread from the buffer; returns the number of bytes copied (0 once
** sealed: read a sealed file through its stored profile). */
size_t fs_wb_read(fs_wb *wb, void *data, size_t size, off_t off);

/* Sets the length (new bytes are zero).  0 or -EFBIG / -ENOMEM / -EIO. */
int fs_wb_truncate(fs_wb *wb, off_t size);

/* Longest id a store uses (S3: the object key) that a buffer remembers. */
#define FS_WB_KEY_MAX 1024

/* What getattr needs to know of a buffer. */
typedef struct fs_wb_info {
  size_t size;
  int64_t ctime;        /* when the buffer was made (unix s) */
  int sealed;           /* no writer left */
  int stored;           /* the current content is the profile id */
  char id[META_ID_LEN + 1];  /* as in file names (S3: the digest) */
  char key[FS_WB_KEY_MAX];   /* store_meta_id: for store_get / delete */
  int64_t created_at;   /* of the stored profile */
} fs_wb_info;
void fs_wb_get_info(fs_wb *wb, fs_wb_info *out);

/* The ingest target of wb (constant strings, valid while wb is). */
const char *fs_wb_service(const fs_wb *wb);
meta_type fs_wb_type(const fs_wb *wb);
const char *fs_wb_labels(const fs_wb *wb);

/* Ingests the whole content into st when it changed since the last
** attempt (*did = 1, out filled on success when not NULL, err on failure),
** and deletes the profile of an earlier attempt of this buffer when it is
** no longer the content and that attempt created it (its id in dropped,
** else dropped[0] == 0).
** Otherwise (*did = 0) returns the last attempt's result again (STORE_OK
** when there was none: an empty or cancelled buffer). */
store_rc fs_wb_ingest(fs_wb *wb, store *st, int *did, store_meta *out,
                      char dropped[FS_WB_KEY_MAX], char err[STORE_ERRMAX]);

/* Marks the buffer so that it is never ingested (the file was removed).
** Returns the id (store_meta_id) of the profile its content was stored
** as, if any, in key (key[0] == 0 otherwise), and in *owned whether this
** buffer's ingest created it: the caller may delete it only then. */
void fs_wb_cancel(fs_wb *wb, char key[FS_WB_KEY_MAX], int *owned);

/* The last writer is gone: frees the content.  Returns 1 when the buffer's
** content is stored (the path should keep answering), 0 otherwise. */
int fs_wb_seal(fs_wb *wb);

/* A table whose sealed entries are forgotten ttl_sec after sealing.  NULL
** on OOM. */
fs_wbtab *fs_wbtab_new(int ttl_sec);
void fs_wbtab_free(fs_wbtab *tab);        /* accepts NULL */

/* Maps path to wb (taking a reference), replacing an earlier mapping.
** 0 or -ENOMEM. */
int fs_wbtab_put(fs_wbtab *tab, const char *path, fs_wb *wb);

/* A new reference to the buffer of path, or NULL. */
fs_wb *fs_wbtab_get(fs_wbtab *tab, const char *path);

/* Removes the mapping of path when it maps to wb (any buffer when wb is
** NULL); returns 1 when something was removed. */
int fs_wbtab_drop(fs_wbtab *tab, const char *path, const fs_wb *wb);

/* Moves the mapping of from to to (replacing any mapping of to).  0, or
** -ENOENT when from is not mapped, or -ENOMEM. */
int fs_wbtab_move(fs_wbtab *tab, const char *from, const char *to);

#endif /* PROFEFS_FS_WRITEBUF_H */
