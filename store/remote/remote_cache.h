/*
** remote_cache.h — private to store/: a thread-safe LRU cache of byte
** strings bounded by total size, used by the remote backend.
**
** Entries are (key, generation) -> bytes.  A lookup only hits when the
** generation it asks for equals the one the entry was stored with, so a
** caller caches derived answers (lists, merges) under store_generation()
** and immutable ones (stored profiles) under generation 0.
*/
#ifndef PROFEFS_STORE_REMOTE_CACHE_H
#define PROFEFS_STORE_REMOTE_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct store_rcache store_rcache;

/* A cache holding at most max_bytes of values (keys count too); a value
** larger than max_bytes / 4 is never kept.  NULL when out of memory. */
store_rcache *store_rcache_new(size_t max_bytes);

/* Frees c and every entry; accepts NULL. */
void store_rcache_free(store_rcache *c);

/* On a hit returns 1 with a malloc'd copy of the value in *data (caller
** frees; one extra NUL byte follows it) and its length in *len, and marks
** the entry most recently used.  Returns 0 on a miss (or when out of
** memory); *data and *len are then unchanged. */
int store_rcache_get(store_rcache *c, const char *key, uint64_t gen,
                     void **data, size_t *len);

/* Stores a copy of data under key, replacing any entry of that key, and
** evicts least recently used entries to stay under the bound.  Silently
** does nothing when the value is too large or memory is short: a cache
** may always forget. */
void store_rcache_put(store_rcache *c, const char *key, uint64_t gen,
                      const void *data, size_t len);

/* Forgets key (any generation). */
void store_rcache_del(store_rcache *c, const char *key);

/* Bytes currently held (keys + values), for tests. */
size_t store_rcache_bytes(store_rcache *c);

#endif /* PROFEFS_STORE_REMOTE_CACHE_H */
