/*
** mergepipe.h — private to store/: a streaming merge fed one stored row at
** a time, in order, by any backend (SQLite rows, fetched S3 objects, ...),
** that prepares rows on a second thread when the merge is long.
**
** A row is the stored bytes of a profile or of a rollup (gzip or plain
** pprof).  The result is byte for byte pprof_merge_add over the same rows
** in push order, and the error reported is that of the first failing row,
** whatever the number of threads.
**
** Memory: the accumulator plus at most STORE_MERGEPIPE_SLOTS rows in
** flight (a copy of the bytes and their decoded form), each of at most
** STORE_MERGEPIPE_BIG bytes; a bigger row is merged on the pushing thread
** after the rows before it, never held in a slot.
**
** Thread safety: one pipe is used by one thread at a time (the pusher);
** the worker thread it may start is its own business.
*/
#ifndef PROFEFS_STORE_MERGEPIPE_H
#define PROFEFS_STORE_MERGEPIPE_H

#include <stddef.h>

#include "backend.h"

#define STORE_MERGEPIPE_SLOTS 8
#define STORE_MERGEPIPE_MIN 16 /* rows merged before a worker starts */
#define STORE_MERGEPIPE_BIG ((size_t)256 << 10)

typedef struct store_mergepipe store_mergepipe;

/* A pipe whose accumulator inflates no profile past max_inflate bytes (0:
** pprof's default).  threads is 1 (every row on the pushing thread) or 2
** (a worker prepares rows once STORE_MERGEPIPE_MIN have been merged; a
** pipe that cannot start it stays on one thread).  STORE_NOMEM on
** failure; *out is unchanged then.  Free with store_mergepipe_free. */
store_rc store_mergepipe_new(size_t max_inflate, int threads,
                             store_mergepipe **out, char *err);

/* Adds the next row: len bytes at data, copied if kept (data may be reused
** on return).  what and name say what the row is in an error message
** ("stored profile", id); what must be a static string.  Returns the
** failure of this row or of an earlier one still in flight (STORE_BADPROFILE,
** STORE_MISMATCH, STORE_NOMEM); after a failure the pipe only accepts
** store_mergepipe_free. */
store_rc store_mergepipe_push(store_mergepipe *p, const char *what,
                              const char *name, const void *data, size_t len,
                              char *err);

/* Merges every row still in flight; its failure as for push.  Call it
** before a failure of the backend's own is reported, so that an earlier
** row's failure comes first, as one at a time. */
store_rc store_mergepipe_drain(store_mergepipe *p, char *err);

/* Drains and encodes the merge of every row pushed: *out is malloc'd (the
** caller frees it), *len its size.  STORE_IO (cannot encode), STORE_NOMEM
** or a row's failure; *out and *len are unchanged on failure. */
store_rc store_mergepipe_finish(store_mergepipe *p, void **out, size_t *len,
                                char *err);

/* Rows pushed so far. */
size_t store_mergepipe_rows(const store_mergepipe *p);

/* Stops the worker and frees everything; accepts NULL. */
void store_mergepipe_free(store_mergepipe *p);

#endif /* PROFEFS_STORE_MERGEPIPE_H */
