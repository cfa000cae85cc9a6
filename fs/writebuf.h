/*
** writebuf.h — private to fs/: files being written into the view, which
** become profiles when they are closed.
**
** An fs_wb is the in-memory content of one new file plus where it will be
** ingested (service, type, labels).  It is ingested at most once: the first
** flush (close(2)) with data ingests it, whatever the outcome; later flushes
** (dup'ed descriptors, forked children) are no-ops.  A flush of an empty
** buffer does nothing, because shells open, dup2 and close a redirection
** target before the command writes anything.
**
** An fs_wbtab maps the paths of files still open for writing to their
** buffers, so that getattr/truncate by path see them (cp and shell
** redirection stat the file they are writing).
**
** Both are safe to use from many threads; buffers are refcounted.
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
** ingested as service/type with the canonical labels.  Its memory is
** taken from budget b (NULL: none; writes past what b gives fail with
** -ENOMEM), which must outlive it.  NULL on OOM. */
fs_wb *fs_wb_new(const char *service, meta_type type, const char *labels,
                 size_t max, budget *b);
fs_wb *fs_wb_ref(fs_wb *wb);
void fs_wb_unref(fs_wb *wb);   /* accepts NULL */

/* pwrite into the buffer.  Returns size, or -EFBIG past max, -ENOMEM, or
** -EIO once the buffer was ingested or cancelled. */
int fs_wb_write(fs_wb *wb, const void *data, size_t size, off_t off);

/* pread from the buffer; returns the number of bytes copied. */
size_t fs_wb_read(fs_wb *wb, void *data, size_t size, off_t off);

/* Sets the length (new bytes are zero).  0 or -EFBIG / -ENOMEM / -EIO. */
int fs_wb_truncate(fs_wb *wb, off_t size);

/* Current length and creation time (unix seconds). */
size_t fs_wb_size(fs_wb *wb);
int64_t fs_wb_ctime(const fs_wb *wb);

/* Ingests the buffer into st unless it is empty, cancelled or was already
** ingested (then STORE_OK and *did == 0).  Otherwise *did = 1 and the
** result of store_ingest is returned (err filled, out filled on success
** when not NULL). */
store_rc fs_wb_ingest(fs_wb *wb, store *st, int *did, store_meta *out,
                      char err[STORE_ERRMAX]);

/* Marks the buffer so that it is never ingested (the file was removed). */
void fs_wb_cancel(fs_wb *wb);

fs_wbtab *fs_wbtab_new(void);             /* NULL on OOM */
void fs_wbtab_free(fs_wbtab *tab);        /* accepts NULL */

/* Maps path to wb (taking a reference), replacing an earlier mapping.
** 0 or -ENOMEM. */
int fs_wbtab_put(fs_wbtab *tab, const char *path, fs_wb *wb);

/* A new reference to the buffer of path, or NULL. */
fs_wb *fs_wbtab_get(fs_wbtab *tab, const char *path);

/* Removes the mapping of path when it maps to wb (any buffer when wb is
** NULL); returns 1 when something was removed. */
int fs_wbtab_drop(fs_wbtab *tab, const char *path, const fs_wb *wb);

#endif /* PROFEFS_FS_WRITEBUF_H */
