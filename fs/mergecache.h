/*
** mergecache.h — private to fs/: a cache of merged profiles in front of
** store_merge, so that getattr (which must report the exact size) and the
** open/read that follow see the very same bytes without merging twice.
**
** An entry is fresh while store_generation() is unchanged and, for ranges
** relative to "now", for ttl_sec after it was computed.  Results are shared
** as refcounted buffers: an open file keeps its buffer even after the entry
** was evicted or went stale.  Only one thread computes a given key; others
** asking for it wait for that result, while other keys proceed in parallel.
** "Nothing matches" is cached like a result, other errors are not.
*/
#ifndef PROFEFS_FS_MERGECACHE_H
#define PROFEFS_FS_MERGECACHE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct fs_mcache fs_mcache;
typedef struct fs_mbuf fs_mbuf;

/* Creates a cache over st holding at most max_entries results and about
** max_bytes of merged bytes (open files may keep more alive).
** Returns NULL when out of memory. */
fs_mcache *fs_mcache_new(store *st, int ttl_sec, size_t max_entries,
                         size_t max_bytes);

/* Frees the cache; buffers still referenced stay valid until unref'd.
** Accepts NULL.  No call may be running on mc. */
void fs_mcache_free(fs_mcache *mc);

/* Returns in *out a reference to the merge of q, computing it when the
** cache has no fresh entry for key.  key must identify q fully: service,
** type, labels and either the resolved range or, for relative ranges, the
** range's text (relative is then 1).  Fails with store_merge's code and
** reason (STORE_NOTFOUND when nothing matches); *out is then unchanged. */
store_rc fs_mcache_get(fs_mcache *mc, const char *key, int relative,
                       const store_query *q, fs_mbuf **out,
                       char err[STORE_ERRMAX]);

/* What fs_mcache_compute runs for a key the cache has no fresh entry of:
** the bytes in *data (malloc'd, taken by the cache) and *len, or a
** store_rc with err (STORE_NOTFOUND is cached like a result). */
typedef store_rc (*fs_mcache_fn)(fs_mcache *mc, void *arg, void **data,
                                 size_t *len, char *err);

/* fs_mcache_get for bytes derived from merges (the views and diffs of
** fs/views.c): fn(mc, arg, ...) computes them, and may itself get other
** keys of mc (never key).  Same freshness: the store's generation and,
** when relative, the TTL. */
store_rc fs_mcache_compute(fs_mcache *mc, const char *key, int relative,
                           fs_mcache_fn fn, void *arg, fs_mbuf **out,
                           char err[STORE_ERRMAX]);

/* A reference to the latest merge of key the cache holds, fresh or not
** (NULL when none): never merges, so that stat'ing merge files stays cheap,
** and an open merge file's size is that of the bytes its handle reads. */
fs_mbuf *fs_mcache_peek(fs_mcache *mc, const char *key);

/* The merged bytes, their length and when they were computed (unix s). */
const void *fs_mbuf_data(const fs_mbuf *b);
size_t fs_mbuf_len(const fs_mbuf *b);
int64_t fs_mbuf_time(const fs_mbuf *b);

/* Drops one reference; accepts NULL. */
void fs_mbuf_unref(fs_mbuf *b);

#endif /* PROFEFS_FS_MERGECACHE_H */
